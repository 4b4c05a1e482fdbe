package nsdo

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// throwaway makes a named network namespace for one test (ip netns add),
// removed in cleanup, and returns a handle to it.
func throwaway(t *testing.T) netns.NsHandle {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	b := make([]byte, 4)
	rand.Read(b)
	name := "hw-nsdo-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

// linkNames lists the links of the namespace the calling thread is in.
func linkNames(t *testing.T) []string {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	return names
}

func TestDoRunsInTheNamespace(t *testing.T) {
	ns := throwaway(t)
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "hwnsdo0"}}); err != nil {
		t.Fatal(err)
	}

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	outside := linkNames(t)

	var inside []string
	if err := Do(ns, func() error { inside = linkNames(t); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(inside)
	if !slices.Equal(inside, []string{"hwnsdo0", "lo"}) {
		t.Errorf("links inside: %v, want [hwnsdo0 lo]", inside)
	}
	if slices.Contains(outside, "hwnsdo0") {
		t.Fatalf("the test bridge is in the caller's namespace: %v", outside)
	}
	after, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	if !after.Equal(before) {
		t.Errorf("the caller's thread moved from %s to %s", before, after)
	}

	want := errors.New("from fn")
	if err := Do(ns, func() error { return want }); !errors.Is(err, want) {
		t.Errorf("Do returned %v, want fn's error", err)
	}
}

// New makes a namespace of its own without moving the caller.
func TestNew(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	ns, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if ns.Equal(before) {
		t.Fatal("New returned the caller's namespace")
	}
	after, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	if !after.Equal(before) {
		t.Errorf("the caller's thread moved from %s to %s", before, after)
	}
	var inside []string
	if err := Do(ns, func() error { inside = linkNames(t); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(inside, []string{"lo"}) {
		t.Errorf("links in the new namespace: %v, want [lo]", inside)
	}
}

// A panic in fn reaches the caller, after the thread went back.
func TestDoPanic(t *testing.T) {
	ns := throwaway(t)
	defer func() {
		if r := recover(); r != "boom" {
			t.Errorf("recovered %v, want boom", r)
		}
	}()
	Do(ns, func() error { panic("boom") })
}

// A thread that cannot go back is not reused: it ends with its goroutine, so
// no thread of this process is left in the namespace.
func TestDoSwitchBackFails(t *testing.T) {
	ns := throwaway(t)
	ran := false
	failBack := func(netns.NsHandle) error { return errors.New("injected: setns back failed") }
	err := onThread(func() error { return netns.Set(ns) }, func() error { ran = true; return nil }, failBack)
	if err == nil || !ran {
		t.Fatalf("onThread = %v (fn ran: %v), want the switch-back error", err, ran)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(ns), &st); err != nil {
		t.Fatal(err)
	}
	target := fmt.Sprintf("net:[%d]", st.Ino)
	deadline := time.Now().Add(3 * time.Second)
	for {
		// Go ends a locked thread when its goroutine exits, except the main
		// thread, which it parks for good instead (runtime.LockOSThread's
		// doc): either way the scheduler never runs anything on it again.
		left := slices.DeleteFunc(threadsIn(t, target), func(tid string) bool { return tid == strconv.Itoa(os.Getpid()) })
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("threads %v are still in the namespace: the thread was handed back to the scheduler", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// threadsIn lists this process's threads whose network namespace is target.
func threadsIn(t *testing.T, target string) []string {
	t.Helper()
	tasks, err := filepath.Glob("/proc/self/task/*")
	if err != nil {
		t.Fatal(err)
	}
	var in []string
	for _, task := range tasks {
		if l, err := os.Readlink(task + "/ns/net"); err == nil && l == target {
			in = append(in, filepath.Base(task))
		}
	}
	return in
}
