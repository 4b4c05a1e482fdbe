package labrun

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
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

// CheckHost refuses a lab whose host containers need a link type this
// host's kernel lacks (checkHostModes); probe nil is doctor.ProbeLinks.
// lab validate runs it; lab up does the same before anything changes.
// A probe that cannot run (not root) leaves the check to lab up.
func CheckHost(l lab.Lab, probe LinkProbe) error {
	if probe == nil {
		probe = doctor.ProbeLinks
	}
	var failed bool
	err := checkHostModes(l, func() ([]doctor.LinkSupport, error) {
		links, err := probe()
		failed = err != nil
		return links, err
	})
	if failed {
		return nil
	}
	return err
}

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
				Fix:     "put the container inside a guest, whose kernel has " + mode + ": under containers: of a VM node on image capstone with a NIC on " + l.HostContainers[name].Network + ", as {network: " + mode + ", parent: " + l.HostContainers[name].Network + ", address: ...}; or use mode: veth (the default) on the host"})
		}
	}
	if len(list) > 0 {
		return l.Refuse(list)
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
	changed, err := hostctr.Ensure(ctx, hostctr.Podman{StateDir: e.StateDir, Lab: l.Name},
		func(s hostctr.Spec, pid int) error { return hostctr.Attach(h, s, pid) }, specs)
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
	h, err := netlink.NewHandle()
	if err != nil {
		return err
	}
	defer h.Close()
	removed, err := hostctr.Down(ctx, hostctr.Podman{StateDir: e.StateDir, Lab: name}, e.StateDir, name,
		func(node string) error { return hostctr.DropLinks(h, name, node) })
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

// inspectHostContainers adds the saved lab's host containers (state from
// podman, "not up" when it has none) and any other container labelled with
// the lab, each with its one NIC.
func inspectHostContainers(e vm.Env, saved lab.Lab, in *Inspection) error {
	have, err := hostctr.Podman{StateDir: e.StateDir, Lab: in.Lab}.List(context.Background())
	if err != nil {
		return err
	}
	state := map[string]string{}
	for _, h := range have {
		state[h.Node] = h.State
	}
	names := slices.Clone(saved.HostOrder)
	for _, n := range sortedKeys(state) {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	for _, n := range names {
		info := NodeInfo{Node: n, Kind: lab.NodeContainer, State: or(state[n], "not up"), NICs: []vm.NICInfo{}}
		if c, ok := saved.HostContainers[n]; ok {
			info.NICs = append(info.NICs, vm.NICInfo{Index: 0, Bridge: c.Network, Address: c.Address.Addr().String(), Source: "static",
				Mode: c.Mode, MAC: "-"})
		}
		in.Nodes = append(in.Nodes, info)
	}
	return nil
}

// listHostContainers adds each lab's host containers, found in the labs'
// podman storage under the state directory.
func listHostContainers(e vm.Env, get func(string) *Summary) error {
	entries, _ := os.ReadDir(filepath.Dir(recordDir(e.StateDir, "x")))
	for _, d := range entries {
		if !d.IsDir() || vmspec.ValidateName(d.Name()) != nil {
			continue
		}
		have, err := hostctr.Podman{StateDir: e.StateDir, Lab: d.Name()}.List(context.Background())
		if err != nil {
			return err
		}
		for _, h := range have {
			s := get(d.Name())
			s.Nodes = append(s.Nodes, h.Node)
			if h.State == "running" {
				s.Running++
			}
		}
	}
	return nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// withHostContainers keeps, when --node names some nodes, only the host
// containers among them: up makes only what it was asked for (the lab
// file saved is the whole one, l.Source).
func withHostContainers(l lab.Lab, nodes []string) lab.Lab {
	if len(nodes) == 0 {
		return l
	}
	var keep []string
	for _, n := range l.HostOrder {
		if slices.Contains(nodes, n) {
			keep = append(keep, n)
		}
	}
	l.HostOrder = keep
	return l
}
