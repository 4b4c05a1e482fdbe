package vm

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"vmnet/internal/accel"
	"vmnet/internal/domain"
	"vmnet/internal/vmspec"
)

var errInjected = errors.New("injected failure")

// stepLab is one VM on a fake libvirt with a temporary state and log directory.
type stepLab struct {
	f    *fakeLibvirt
	e    Env
	spec vmspec.Spec
	root string
	img  domain.ImageInfo
	// imgErr is what Env.Image returns.
	imgErr error
}

func newStepLab(t *testing.T) *stepLab {
	t.Helper()
	root := t.TempDir()
	l := &stepLab{root: root, img: domain.ImageInfo{Name: "fake", Kernel: "/nonexistent/vmlinuz", Ready: vmspec.Ready{Agent: true}}}
	l.f = newFake(filepath.Join(root, "log"))
	l.e = Env{
		Conn: l.f, StateDir: filepath.Join(root, "state"), QemuLogDir: filepath.Join(root, "log"),
		Accel: accel.Choice{Type: accel.QEMU, Reason: "test"},
		Image: func(context.Context, vmspec.Spec) (domain.ImageInfo, error) { return l.img, l.imgErr },
	}
	cidr := netip.MustParsePrefix("198.51.100.0/24")
	l.spec = vmspec.Spec{
		Name: "web", Image: "fake",
		// One NIC with a reservation, one static: every step has work to do.
		NICs:      []vmspec.NIC{{Network: "nat0"}, {Network: "nat0", Address: netip.MustParsePrefix("198.51.100.5/24")}},
		Ready:     vmspec.Ready{Agent: true},
		Timeout:   vmspec.Duration(300 * time.Millisecond),
		Provision: vmspec.Provision{Commands: []string{"true"}},
		Requires:  vmspec.Requires{Networks: []vmspec.NetworkReq{{Name: "nat0", CIDR: cidr}}},
	}
	return l
}

func (l *stepLab) up(t *testing.T) (*UpResult, error) {
	t.Helper()
	return Up(context.Background(), l.e, l.spec)
}

// residue lists what the lab still holds: domains, networks, reservations,
// files under the state and log directories.
func (l *stepLab) residue(withNetworks bool) []string {
	var out []string
	for name := range l.f.doms {
		out = append(out, "domain "+name)
	}
	for name, n := range l.f.nets {
		if withNetworks {
			out = append(out, "network "+name)
		}
		for _, h := range n.hosts {
			out = append(out, "reservation "+h.MAC+" "+h.IP.String()+" on "+name)
		}
	}
	for _, dir := range []string{l.e.StateDir, l.e.QemuLogDir} {
		filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() {
				out = append(out, "file "+p)
			}
			return nil
		})
	}
	return out
}

func wantStep(t *testing.T, err error, op, step string) {
	t.Helper()
	var se *StepError
	if !errors.As(err, &se) || se.Op != op || se.Step != step {
		t.Fatalf("error %v, want a StepError of %s step %q", err, op, step)
	}
	if !strings.Contains(err.Error(), "step "+step+":") {
		t.Errorf("error %q does not name step %q", err, step)
	}
}

// A good run first: the fake and the steps work together, and a second up
// changes nothing.
func TestUpDownOnFake(t *testing.T) {
	l := newStepLab(t)
	res, err := l.up(t)
	if err != nil {
		t.Fatalf("up: %v", err)
	}
	if res.Outcome != "created" || len(l.f.doms) != 1 || len(l.f.nets["nat0"].hosts) != 1 {
		t.Fatalf("up: outcome %q, state %v", res.Outcome, l.residue(true))
	}
	var names []string
	for _, p := range res.Phases {
		names = append(names, p.Name)
	}
	if got := strings.Join(names, ","); got != "image,define,boot to agent,provision: true" {
		t.Errorf("phases %s", got)
	}
	if res, err := l.up(t); err != nil || res.Outcome != "unchanged" {
		t.Fatalf("second up: %v, %+v", err, res)
	}
	if _, err := Down(context.Background(), l.e, "web"); err != nil {
		t.Fatalf("down: %v", err)
	}
	if left := l.residue(false); len(left) > 0 {
		t.Errorf("down left %q", left)
	}
}

// A failure injected at each step of Up takes back everything that up
// made: no domain, network, reservation or file stays. A failure after the
// guest is ready keeps the VM (as before the steps: the next up finishes
// the job), and a down then removes it all. Every step needs a case here.
func TestUpFailsAtEachStep(t *testing.T) {
	inject := map[string]func(l *stepLab){
		"check addresses":          func(l *stepLab) { l.f.fail["Networks"] = errInjected },
		"image":                    func(l *stepLab) { l.imgErr = errInjected },
		"plan":                     func(l *stepLab) { l.img.Kernel = "relative/vmlinuz" },
		"check MACs and addresses": func(l *stepLab) { l.f.fail["ListDomains"] = errInjected },
		"look up":                  func(l *stepLab) { l.f.fail["LookupDomain"] = errInjected },
		"require":                  func(l *stepLab) { l.f.fail["EnsureNetwork"] = errInjected },
		"prepare":                  func(l *stepLab) { l.f.fail["AddHost"] = errInjected },
		"define":                   func(l *stepLab) { l.f.fail["DefineDomain"] = errInjected },
		"start":                    func(l *stepLab) { l.f.fail["Domain.Create"] = errInjected },
		"wait ready":               func(l *stepLab) { l.f.fail["QemuAgentCommand guest-ping"] = errInjected },
		"provision":                func(l *stepLab) { l.f.fail["QemuAgentCommand guest-exec"] = errInjected },
	}
	for _, s := range upSteps {
		if _, ok := inject[s.name]; !ok {
			t.Errorf("step %q of up has no failure case", s.name)
		}
	}
	for name, fn := range inject {
		t.Run(name, func(t *testing.T) {
			var ready bool
			found := false
			for _, s := range upSteps {
				if s.name == name {
					found, ready = true, s.ready
				}
			}
			if !found {
				t.Fatalf("no step %q in upSteps", name)
			}
			l := newStepLab(t)
			fn(l)
			_, err := l.up(t)
			wantStep(t, err, "up", name)
			if ready {
				if _, ok := l.f.doms["web"]; !ok {
					t.Fatalf("the ready VM is gone after a failure in step %q", name)
				}
				l.f.fail = map[string]error{}
				if _, err := Down(context.Background(), l.e, "web"); err != nil {
					t.Fatalf("down: %v", err)
				}
			}
			if left := l.residue(!ready); len(left) > 0 {
				t.Errorf("after a failure in step %q, left: %q", name, left)
			}
		})
	}
}

// A failure injected at each step of Down names the step, and the next
// down, once the cause is gone, leaves nothing: each step finishes what
// the failed one left. Every step needs a case here.
func TestDownFailsAtEachStep(t *testing.T) {
	const name = "web"
	type injection struct {
		name string                         // what down is asked to remove
		fn   func(t *testing.T, l *stepLab) // makes the step fail
		heal func(t *testing.T, l *stepLab)
	}
	dir := func(l *stepLab) string { return filepath.Join(l.e.StateDir, "vms", name) }
	var record []byte
	inject := map[string]injection{
		"validate": {name: "bad/name"},
		"look up":  {fn: func(t *testing.T, l *stepLab) { l.f.fail["LookupDomain"] = errInjected }},
		"stop":     {fn: func(t *testing.T, l *stepLab) { l.f.fail["Domain.Destroy"] = errInjected }},
		"undefine": {fn: func(t *testing.T, l *stepLab) { l.f.fail["Domain.Undefine"] = errInjected }},
		"read record": {
			fn: func(t *testing.T, l *stepLab) {
				p := recordPath(dir(l))
				var err error
				if record, err = os.ReadFile(p); err != nil {
					t.Fatal(err)
				}
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
				if err := os.Mkdir(p, 0o700); err != nil { // reading it fails
					t.Fatal(err)
				}
			},
			heal: func(t *testing.T, l *stepLab) {
				p := recordPath(dir(l))
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, record, 0o600); err != nil {
					t.Fatal(err)
				}
			},
		},
		"remove reservations": {fn: func(t *testing.T, l *stepLab) { l.f.fail["RemoveHost"] = errInjected }},
		"remove files": {
			fn: func(t *testing.T, l *stepLab) {
				if err := os.WriteFile(filepath.Join(dir(l), "notes.txt"), []byte("mine"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			heal: func(t *testing.T, l *stepLab) { os.Remove(filepath.Join(dir(l), "notes.txt")) },
		},
		"remove log": {
			fn: func(t *testing.T, l *stepLab) {
				// A directory where a rotated log would be: removing it fails.
				if err := os.MkdirAll(filepath.Join(l.e.QemuLogDir, name+".log.1", "x"), 0o700); err != nil {
					t.Fatal(err)
				}
			},
			heal: func(t *testing.T, l *stepLab) { os.RemoveAll(filepath.Join(l.e.QemuLogDir, name+".log.1")) },
		},
	}
	for _, s := range downSteps {
		if _, ok := inject[s.name]; !ok {
			t.Errorf("step %q of down has no failure case", s.name)
		}
	}
	for step, in := range inject {
		t.Run(step, func(t *testing.T) {
			if !slices.ContainsFunc(downSteps, func(s downStep) bool { return s.name == step }) {
				t.Fatalf("no step %q in downSteps", step)
			}
			l := newStepLab(t)
			if _, err := l.up(t); err != nil {
				t.Fatalf("up: %v", err)
			}
			target := name
			if in.name != "" {
				target = in.name
			}
			if in.fn != nil {
				in.fn(t, l)
			}
			_, err := Down(context.Background(), l.e, target)
			wantStep(t, err, "down", step)
			l.f.fail = map[string]error{}
			if in.heal != nil {
				in.heal(t, l)
			}
			if _, err := Down(context.Background(), l.e, name); err != nil {
				t.Fatalf("second down: %v", err)
			}
			if left := l.residue(false); len(left) > 0 {
				t.Errorf("after a failure in step %q and a second down, left: %q", step, left)
			}
		})
	}
}
