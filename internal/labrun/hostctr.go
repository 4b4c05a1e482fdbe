package labrun

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"

	"vmnet/internal/doctor"
	"vmnet/internal/errs"
	"vmnet/internal/hostctr"
	"vmnet/internal/image"
	"vmnet/internal/lab"
	"vmnet/internal/sandbox"
	"vmnet/internal/vm"
	"vmnet/internal/vmspec"
)

// LinkProbe says which link types this host's kernel makes (doctor's
// probe in a throwaway namespace, Options.Links).
type LinkProbe func() ([]doctor.LinkSupport, error)

// checkHostModes refuses, before anything changes, a host container whose
// mode (macvlan, ipvlan) this host's kernel cannot make: the link would
// only fail after the lab's bridges and VMs were made.
func checkHostModes(l lab.Lab, probe LinkProbe) error {
	used := l.HostModesUsed()
	delete(used, lab.HostVeth) // every kernel vmnet runs on has veth (doctor checks it)
	if len(used) == 0 {
		return nil
	}
	links, err := probe()
	if err != nil {
		return fmt.Errorf("ask the kernel which link types it has: %w", err)
	}
	var list vmspec.Errors
	for _, mode := range sortedKeys(used) {
		i := slices.IndexFunc(links, func(s doctor.LinkSupport) bool { return s.Kind == mode })
		if i >= 0 && links[i].OK {
			continue
		}
		for _, name := range used[mode] {
			list = append(list, &errs.FieldError{Form: errs.PathForm, Field: "nodes." + name + ".mode", Value: mode,
				Problem: "needs the host kernel's " + mode + ", which this host's kernel does not have ('vmnet doctor' lists its link types): a container on the host gets its link from the host's kernel",
				Fix:     "put the container inside a guest, whose kernel has " + mode + ": a VM node's containers: with network: " + mode + " and parent: " + l.HostContainers[name].Network + "; or use mode: veth (the default) on the host"})
		}
	}
	if len(list) > 0 {
		return &lab.Errors{List: list}
	}
	return nil
}

// hostRootfs finds (or builds, outside a sandbox) the host containers'
// rootfs, when the lab has any.
func hostRootfs(ctx context.Context, e vm.Env, l lab.Lab) (string, error) {
	if len(l.HostOrder) == 0 {
		return "", nil
	}
	dir, err := hostctr.FindRootfs(image.DefaultDir())
	if err == nil || inSandbox() {
		return dir, err
	}
	return hostctr.BuildRootfs(ctx, image.DefaultDir(), e.Progress)
}

// upHostContainers makes the lab's host containers (hostctr.Ensure), after
// its bridges.
func upHostContainers(ctx context.Context, e vm.Env, l lab.Lab, rootfs string, res *UpResult) error {
	specs := hostctr.Plan(l, rootfs)
	if len(specs) == 0 {
		return nil
	}
	h, err := netlink.NewHandle()
	if err != nil {
		return err
	}
	defer h.Close()
	changed, err := hostctr.Ensure(ctx, hostctr.Podman{StateDir: e.StateDir, Lab: l.Name}, h, specs)
	for _, c := range changed {
		if e.Progress != nil {
			fmt.Fprintf(e.Progress, "host containers: %s\n", c)
		}
	}
	res.Changes = append(res.Changes, changed...)
	if err != nil {
		return fmt.Errorf("lab %s: %w", l.Name, err)
	}
	return nil
}

// downHostContainers removes the lab's host containers by their label.
func downHostContainers(ctx context.Context, e vm.Env, name string, res *DownResult) error {
	removed, err := hostctr.Down(ctx, hostctr.Podman{StateDir: e.StateDir, Lab: name}, e.StateDir, name)
	res.Changes = append(res.Changes, removed...)
	return err
}

// hostBridges is the bridges the lab's host containers are attached to.
func hostBridges(l lab.Lab) []string {
	var out []string
	for _, name := range l.HostOrder {
		if n := l.HostContainers[name].Network; !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// inSandbox reports whether vmnet runs inside `vmnet sandbox` (which sets
// VMNET_SANDBOX), where nothing may be downloaded.
func inSandbox() bool { return strings.TrimSpace(os.Getenv(sandbox.EnvVar)) != "" }
