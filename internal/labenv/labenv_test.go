package labenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"vmnet/internal/image"
	"vmnet/internal/sandbox"
	"vmnet/internal/testutil"
)

// The domain learns from the image whether a guest agent can answer.
func TestFromImageAgent(t *testing.T) {
	tiny := fromImage(image.Image{Name: "tiny", Kernel: "/k", Initrd: "/i", ReadyLine: "VMNET-READY"})
	if !tiny.NoAgent || tiny.Ready.Console != "VMNET-READY" {
		t.Errorf("tiny: %+v, want NoAgent and the console line", tiny)
	}
	capstone := fromImage(image.Image{Name: "capstone", Kernel: "/k", Initrd: "/i", Disk: "/d", ReadyAgent: true})
	if capstone.NoAgent || !capstone.Ready.Agent {
		t.Errorf("capstone: %+v, want an agent", capstone)
	}
}

// Open reaches a sandboxed libvirtd from outside its namespaces, as the
// tests do: the bridges and routes handles must be in that daemon's network
// namespace, not in the one the test runs in.
func TestOpenKernelInLibvirtdNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: starts a sandboxed libvirtd")
	}
	if testing.Short() {
		t.Skip("starts libvirtd: skipped with -short")
	}
	if _, err := exec.LookPath("libvirtd"); err != nil {
		t.Skip("libvirtd is not installed (bash scripts/deps.sh installs it)")
	}
	b := make([]byte, 3)
	rand.Read(b)
	name := "hw-" + hex.EncodeToString(b)
	t.Cleanup(func() { sandbox.Down(context.Background(), name) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := sandbox.Up(ctx, name); err != nil {
		t.Fatal(err)
	}
	uri, err := testutil.SandboxURI(name)
	if err != nil {
		t.Fatal(err)
	}
	env, done, err := Open(ctx, Options{URI: uri, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer done()

	// Proved first, so that a handle in the wrong namespace makes nothing there.
	want, err := netns.GetFromName("vmnet-" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	var in netns.NsHandle
	if err := env.Bridges.Do(func() (err error) { in, err = netns.Get(); return err }); err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if !in.Equal(want) {
		t.Fatalf("bridges handle is in network namespace %s, want the sandbox's %s", in, want)
	}
	links, err := env.Bridges.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	if !slices.Equal(names, []string{"lo"}) {
		t.Fatalf("bridges handle sees links %v, want the sandbox's [lo]", names)
	}
	lo, err := env.Routes.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if lo.Attrs().Index != links[0].Attrs().Index {
		t.Errorf("routes handle's lo has index %d, bridges handle's %d", lo.Attrs().Index, links[0].Attrs().Index)
	}
	// What a profile's bridge does: made through env.Bridges, seen in the sandbox.
	if err := env.Bridges.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "hwbr0"}}); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ip", "-n", "vmnet-"+name, "-o", "link", "show", "hwbr0").CombinedOutput()
	if err != nil {
		t.Errorf("hwbr0 is not in the sandbox's namespace: %v: %s", err, out)
	}
	if _, err := netlink.LinkByName("hwbr0"); err == nil {
		t.Errorf("hwbr0 appeared in the test's own namespace")
	}
}

// Inside a sandbox, an image that is not built is refused at once, and the
// refusal names the commands to run outside: the image's own build and the
// build of every image a lab file needs. Outside a sandbox it is no error
// (lab up builds the image itself).
func TestImageMissingInSandboxNamesTheBuild(t *testing.T) {
	t.Setenv(image.EnvCache, t.TempDir()) // an empty cache: nothing is built
	t.Setenv(sandbox.EnvVar, "")
	if err := builtInSandbox(context.Background(), "tiny"); err != nil {
		t.Fatalf("outside a sandbox: %v, want nil", err)
	}
	t.Setenv(sandbox.EnvVar, "hl-nomirror")
	err := builtInSandbox(context.Background(), "tiny")
	if err == nil {
		t.Fatal("an unbuilt image in a sandbox: nil error, want a refusal")
	}
	var h interface{ Hint() string }
	if !errors.As(err, &h) {
		t.Fatalf("%v: no hint", err)
	}
	for _, want := range []string{"image tiny is not built", "sandbox hl-nomirror"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	for _, want := range []string{"outside the sandbox", "vmnet image build tiny", "vmnet image build --lab FILE"} {
		if !strings.Contains(h.Hint(), want) {
			t.Errorf("hint %q does not name %q", h.Hint(), want)
		}
	}
}
