package vm

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"vmnet/internal/tty"
)

func TestContainerSummary(t *testing.T) {
	ps := "db\tUp 20 seconds ago (healthy)\napi\tUp 8 seconds ago (starting)\nproxy\tCreated\nold\tExited (137) 2 minutes ago\nplain\tUp 3 seconds ago\n"
	want := "db healthy, api starting, proxy created, old exited 137, plain running"
	if got := containerSummary(ps); got != want {
		t.Errorf("containerSummary = %q, want %q", got, want)
	}
	if got := containerSummary(""); got != "" {
		t.Errorf("no containers: %q, want empty", got)
	}
}

// While the command runs, the status says what is awaited, what the guest's
// containers do, and for how long; it stops when the command returns.
func TestWatchShowsProgress(t *testing.T) {
	var mu sync.Mutex
	var out bytes.Buffer
	w := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(p) })
	looks := make(chan struct{}, 10)
	states := []string{"db starting", "", "db healthy, api starting"}
	n := 0
	look := func(context.Context) string {
		s := states[min(n, len(states)-1)]
		n++
		looks <- struct{}{}
		return s
	}
	run := func() { <-looks; <-looks; <-looks; time.Sleep(30 * time.Millisecond) }
	watch(context.Background(), tty.NewStatus(w, 0), "vmnet-app-wait 240", 10*time.Millisecond, 20*time.Millisecond, look, run)
	mu.Lock()
	got := out.String()
	mu.Unlock()
	for _, want := range []string{"waiting for vmnet-app-wait 240 (0s)", "waiting for vmnet-app-wait 240: db starting (0s)", "waiting for vmnet-app-wait 240: db healthy, api starting (0s)"} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("no line %q in:\n%s", want, got)
		}
	}
	if i := strings.Index(got, ": db starting"); i >= 0 && strings.Contains(got[i:], "240 (0s)") {
		t.Errorf("a failed look blanked the containers seen:\n%s", got)
	}
	mu.Lock()
	after := out.Len()
	mu.Unlock()
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if out.Len() != after {
		t.Errorf("the status kept changing after the command returned:\n%s", out.String()[after:])
	}
}

func TestWaitLine(t *testing.T) {
	if got := waitLine("x", "db healthy", 12400*time.Millisecond); got != "waiting for x: db healthy (12s)" {
		t.Errorf("waitLine = %q", got)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
