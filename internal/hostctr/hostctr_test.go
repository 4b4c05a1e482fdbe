package hostctr

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"vmnet/internal/lab"
)

func vmContainer(t *testing.T) lab.Lab {
	t.Helper()
	l, err := lab.LoadRef("vm-container")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestPlan(t *testing.T) {
	specs := Plan(vmContainer(t), "/cache/ctr/rootfs")
	if len(specs) != 1 {
		t.Fatalf("%d specs, want 1", len(specs))
	}
	s := specs[0]
	if s.Node != "web" || s.Bridge != "lab0" || s.Mode != lab.HostVeth || s.Gateway.String() != "192.0.2.1" || s.Address.String() != "192.0.2.20/24" {
		t.Errorf("spec %+v", s)
	}
	if n := s.HostLink(); len(n) > 15 || n == s.tmpLink() || !strings.HasPrefix(n, "vc") {
		t.Errorf("host link %q (tmp %q): want a name of at most 15 bytes of its own", n, s.tmpLink())
	}
	args := strings.Join(RunArgs(s), " ")
	for _, want := range []string{"--network none", "--rootfs /cache/ctr/rootfs:O", "--label vmnet.lab=vm-container",
		"--label vmnet.hash=" + s.Hash(), "--cgroups=disabled", "python3 -m http.server --bind 0.0.0.0 8080"} {
		if !strings.Contains(args, want) {
			t.Errorf("podman %s\nhas no %q", args, want)
		}
	}
	changed := s
	changed.Argv = []string{"sleep", "infinity"}
	if changed.Hash() == s.Hash() {
		t.Error("a changed command keeps the hash: up would not recreate the container")
	}
}

func TestParsePS(t *testing.T) {
	data := `[{"Names":["web"],"State":"running","Pid":42,"Labels":{"vmnet.lab":"l","vmnet.node":"web","vmnet.hash":"ab"}},
	{"Names":["old"],"State":"exited","Pid":7,"Labels":{"vmnet.lab":"l"}}]`
	got, err := parsePS([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	want := []Info{{Node: "web", Lab: "l", Hash: "ab", State: "running", Pid: 42}, {Node: "old", Lab: "l", State: "exited"}}
	if !slices.Equal(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if got, err := parsePS(nil); err != nil || len(got) != 0 {
		t.Errorf("empty output: %v, %v", got, err)
	}
	if _, err := parsePS([]byte("{")); err == nil {
		t.Error("bad JSON accepted")
	}
}

// fakeRuntime records what Ensure asks of podman.
type fakeRuntime struct {
	have     []Info
	started  []string
	removed  []string
	startErr error
}

func (f *fakeRuntime) List(context.Context) ([]Info, error) { return f.have, nil }

func (f *fakeRuntime) Start(_ context.Context, s Spec) (int, error) {
	f.started = append(f.started, s.Node)
	return 100, f.startErr
}

func (f *fakeRuntime) Remove(_ context.Context, node string) error {
	f.removed = append(f.removed, node)
	return nil
}

// TestEnsure: a missing container is made, a running one with the same
// hash kept (its interface converged again), a changed or stopped one
// recreated; a failed start is returned.
func TestEnsure(t *testing.T) {
	s := Plan(vmContainer(t), "/r")[0]
	for _, tc := range []struct {
		name            string
		have            []Info
		started, change string
		removed         int
	}{
		{"missing", nil, "web", "create container web", 0},
		{"same", []Info{{Node: "web", Hash: s.Hash(), State: "running", Pid: 9}}, "", "", 0},
		{"changed", []Info{{Node: "web", Hash: "other", State: "running", Pid: 9}}, "web", "recreate container web", 1},
		{"stopped", []Info{{Node: "web", Hash: s.Hash(), State: "exited"}}, "web", "recreate container web", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeRuntime{have: tc.have}
			var attached []int
			changes, err := Ensure(context.Background(), f, func(_ Spec, pid int) error { attached = append(attached, pid); return nil }, []Spec{s})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(f.started, ",") != tc.started || len(f.removed) != tc.removed {
				t.Errorf("started %v, removed %v", f.started, f.removed)
			}
			if got := strings.Join(changes, ";"); !strings.HasPrefix(got, tc.change) || (tc.change == "") != (got == "") {
				t.Errorf("changes %q, want %q", got, tc.change)
			}
			if len(attached) != 1 || attached[0] <= 0 {
				t.Errorf("attached %v: every container gets its interface, with its pid", attached)
			}
		})
	}
	f := &fakeRuntime{startErr: errors.New("crun: boom")}
	if _, err := Ensure(context.Background(), f, func(Spec, int) error { return nil }, []Spec{s}); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("a failed start: %v", err)
	}
}

// TestDown: every labelled container is removed, with its leftover links,
// and the storage goes.
func TestDown(t *testing.T) {
	dir := t.TempDir()
	must(t, os.MkdirAll(StorageDir(dir, "l"), 0o700))
	f := &fakeRuntime{have: []Info{{Node: "a"}, {Node: "b"}}}
	var dropped []string
	out, err := Down(context.Background(), f, dir, "l", func(n string) error { dropped = append(dropped, n); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(f.removed, ",") != "a,b" || strings.Join(dropped, ",") != "a,b" || len(out) != 2 {
		t.Errorf("removed %v, links dropped for %v, said %v", f.removed, dropped, out)
	}
	if _, err := os.Stat(StorageDir(dir, "l")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the lab's podman storage is left: %v", err)
	}
}

// TestFindRootfsMissing: a rootfs that is not built is ErrNoRootfs with
// the exact command that builds it.
func TestFindRootfsMissing(t *testing.T) {
	_, err := FindRootfs(t.TempDir())
	if !errors.Is(err, ErrNoRootfs) {
		t.Fatalf("%v, want ErrNoRootfs", err)
	}
	if h := err.(interface{ Hint() string }).Hint(); !strings.Contains(h, "vmnet image build ctr") {
		t.Errorf("hint %q has no command", h)
	}
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(RootfsDir(dir), "usr", "bin"), 0o755))
	must(t, os.WriteFile(filepath.Join(RootfsDir(dir), "usr", "bin", "python3"), nil, 0o755))
	if got, err := FindRootfs(dir); err != nil || got != RootfsDir(dir) {
		t.Errorf("a built rootfs: %q, %v", got, err)
	}
}
