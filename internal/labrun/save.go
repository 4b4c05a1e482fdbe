package labrun

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"vmnet/internal/doctor"
	"vmnet/internal/lab"
	"vmnet/internal/safe"
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
	var mu sync.Mutex
	var wg sync.WaitGroup
	var failed []error
	out := &lineWriter{w: e.Progress}
	for i, n := range nodes {
		ne := e
		ne.Progress = out.prefixed(n + ": ")
		safe.Go(&wg, "vm save "+n, func() (err error) {
			res.Nodes[i], err = vm.Save(ctx, ne, n)
			return err
		}, func(err error) {
			if err != nil {
				mu.Lock()
				failed = append(failed, fmt.Errorf("node %s: %w", n, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	return res, errors.Join(failed...)
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
	failed := map[string]error{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	out := &lineWriter{w: e.Progress}
	for i, s := range specs {
		ne := e
		ne.Progress = out.prefixed(s.Name + ": ")
		safe.Go(&wg, "vm restore "+s.Name, func() error {
			r, err := vm.Restore(ctx, ne, s)
			if err == nil {
				results[i] = NodeResult{Node: s.Name, UpResult: r, ReadySeconds: r.Ready.Seconds()}
			}
			return err
		}, func(err error) {
			if err != nil {
				mu.Lock()
				failed[s.Name] = err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, r := range results {
		if r.UpResult != nil {
			res.Nodes = append(res.Nodes, r)
		}
	}
	return failed
}
