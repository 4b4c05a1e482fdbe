package labrun

import (
	"context"
	"errors"
	"fmt"
	"time"

	"vmnet/internal/doctor"
	"vmnet/internal/lab"
	"vmnet/internal/vm"
	"vmnet/internal/vmspec"
)

// SaveResult says what Save did.
type SaveResult struct {
	Lab     string           `json:"lab"`
	Nodes   []*vm.SaveResult `json:"nodes"`
	Seconds float64          `json:"seconds"`
}

// Save saves every VM of lab name (found by its tag, no file needed) with
// its memory, all at once: each stops and keeps its state in libvirt's
// managed save image, which `lab up --from-save` restores. The networks
// stay. Saving a saved lab changes nothing.
func Save(ctx context.Context, e vm.Env, name string) (*SaveResult, error) {
	if err := vmspec.ValidateName(name); err != nil {
		return nil, err
	}
	start := time.Now()
	nodes, err := vm.OfLab(e, name)
	if err != nil {
		return nil, err
	}
	if len(nodes) == 0 {
		return nil, fmt.Errorf("lab %s has no VM here: bring it up first with 'vmnet lab up %s'", name, name)
	}
	res := &SaveResult{Lab: name, Nodes: make([]*vm.SaveResult, len(nodes))}
	failed := atOnce(e, nodes, "vm save", func(i int, ne vm.Env) (err error) {
		res.Nodes[i], err = vm.Save(ctx, ne, nodes[i])
		return err
	})
	var errList []error
	for _, n := range sortedKeys(failed) {
		errList = append(errList, fmt.Errorf("node %s: %w", n, failed[n]))
	}
	res.Seconds = time.Since(start).Seconds()
	return res, errors.Join(errList...)
}

// Restore brings a saved lab back (`lab up --from-save`): the lab's
// networks ensured as Up does, then every selected node restored from its
// saved state at once (vm.Restore: its clock set, its secrets new). A node
// that was not saved, or was saved from another spec, is refused by
// vm.Restore before it changes; a failed node is named, and the lab is left
// as it is for 'vmnet lab down'.
func Restore(ctx context.Context, e vm.Env, l lab.Lab, opt Options) (*UpResult, error) {
	start := time.Now()
	specs, err := selectSpecs(l, opt.Nodes)
	if err != nil {
		return nil, err
	}
	if opt.Links == nil {
		opt.Links = doctor.ProbeLinks
	}
	l = withHostContainers(l, opt.Nodes)
	if err := checkHostModes(l, opt.Links); err != nil {
		return nil, err
	}
	if err := planNodes(ctx, e, specs); err != nil {
		return nil, err
	}
	rootfs, err := hostRootfs(ctx, e, l)
	if err != nil {
		return nil, err
	}
	res := &UpResult{Lab: l.Name, Changes: []string{}}
	if _, err := ensureNetworks(ctx, e, l, specs, res); err != nil {
		return nil, err
	}
	failed := restoreNodes(ctx, e, specs, res)
	// Host containers are not saved (podman keeps no memory of them): they
	// are made as up makes them, and are left as they are when running.
	if len(failed) == 0 {
		if err := upHostContainers(ctx, e, l, rootfs, res); err != nil {
			failed[lab.NodeContainer+"s"] = err
		}
	}
	res.Seconds = time.Since(start).Seconds()
	if len(failed) > 0 {
		return nil, &NodeError{Lab: l.Name, Failed: failed}
	}
	res.Outcome = "restored"
	return res, nil
}

// restoreNodes runs vm.Restore for every spec at once and returns the
// nodes that failed.
func restoreNodes(ctx context.Context, e vm.Env, specs []vmspec.Spec, res *UpResult) map[string]error {
	results := make([]NodeResult, len(specs))
	failed := atOnce(e, specNames(specs), "vm restore", func(i int, ne vm.Env) error {
		r, err := vm.Restore(ctx, ne, specs[i])
		if err == nil {
			results[i] = NodeResult{Node: specs[i].Name, UpResult: r, ReadySeconds: r.Ready.Seconds()}
		}
		return err
	})
	res.Nodes = append(res.Nodes, done(results)...)
	return failed
}
