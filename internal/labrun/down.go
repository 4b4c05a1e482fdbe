package labrun

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"vmnet/internal/bridge"
	"vmnet/internal/domain"
	"vmnet/internal/lab"
	"vmnet/internal/safe"
	"vmnet/internal/vm"
	"vmnet/internal/vmspec"
)

// DownResult says what Down removed.
type DownResult struct {
	Lab     string   `json:"lab"`
	Outcome string   `json:"outcome"` // removed, absent
	Changes []string `json:"changes"`
}

// Down removes everything that carries lab name's tag: its VMs (with their
// disks, logs and DHCP reservations, vm.Down), then the libvirt networks
// and Linux bridges the lab made, then the lab's saved file. It needs no
// lab file: the tags are on the objects. A lab that is already gone is
// removed successfully, and so is what an up killed midway left behind.
func Down(ctx context.Context, e vm.Env, name string) (*DownResult, error) {
	if err := vmspec.ValidateName(name); err != nil {
		return nil, err
	}
	res := &DownResult{Lab: name, Outcome: "absent", Changes: []string{}}
	if err := downNodes(ctx, e, name, res); err != nil {
		return res, err
	}
	// Host containers that cannot be removed (podman gone, its storage
	// broken) do not stop the networks' removal, but keep the record,
	// whose directory holds their storage: the next down finds them.
	ctrErr := downHostContainers(ctx, e, name, res)
	if err := downNetworks(ctx, e, name, res); err != nil {
		return res, errors.Join(ctrErr, err)
	}
	if ctrErr != nil {
		return res, fmt.Errorf("lab %s: host containers: %w", name, ctrErr)
	}
	if err := removeRecord(e.StateDir, name, res); err != nil {
		return res, err
	}
	if len(res.Changes) > 0 {
		res.Outcome = "removed"
	}
	return res, nil
}

// downNodes runs vm.Down for every VM tagged with the lab, all at once.
func downNodes(ctx context.Context, e vm.Env, name string, res *DownResult) error {
	nodes, err := vm.OfLab(e, name)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var failed []error
	for _, n := range nodes {
		safe.Go(&wg, "vm down "+n, func() error {
			r, err := vm.Down(ctx, e, n)
			if err != nil {
				return fmt.Errorf("node %s: %w", n, err)
			}
			mu.Lock()
			defer mu.Unlock()
			if r.Outcome != "absent" {
				res.Changes = append(res.Changes, "remove node "+n)
			}
			return nil
		}, func(err error) {
			if err != nil {
				mu.Lock()
				failed = append(failed, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(res.Changes)
	return errors.Join(failed...)
}

// downNetworks removes the libvirt networks and then the bridges tagged
// with the lab.
func downNetworks(ctx context.Context, e vm.Env, name string, res *DownResult) error {
	nets, err := e.Conn.Networks()
	if err != nil {
		return err
	}
	for _, n := range nets {
		if n.Lab != name {
			continue
		}
		if _, err := e.Conn.DeleteNetwork(n.Name); err != nil {
			return fmt.Errorf("network %s of lab %s: %w", n.Name, name, err)
		}
		res.Changes = append(res.Changes, "remove network "+n.Name)
	}
	brs, err := bridge.List(e.Bridges)
	if err != nil {
		return err
	}
	for _, b := range brs {
		if b.Lab != name {
			continue
		}
		if _, err := bridge.Delete(ctx, e.Bridges, b.Name, bridge.Options{HostID: e.HostID}); err != nil {
			return fmt.Errorf("bridge %s of lab %s: %w", b.Name, name, err)
		}
		res.Changes = append(res.Changes, "remove bridge "+b.Name)
	}
	return nil
}

// removeRecord removes the lab's saved file and the directories that held
// only it.
func removeRecord(stateDir, name string, res *DownResult) error {
	dir := recordDir(stateDir, name)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove lab %s's saved file: %w", name, err)
	}
	res.Changes = append(res.Changes, "remove "+dir+" (the saved lab file and last check)")
	os.Remove(filepath.Dir(dir)) // STATEDIR/labs, when this was the last lab
	if stateDir == "" {
		stateDir = domain.DefaultStateDir
	}
	os.Remove(stateDir) // when nothing else of vmnet's is left in it
	return nil
}

// Summary is one lab as list shows it: found by its tags and its saved
// file.
type Summary struct {
	Lab      string   `json:"lab"`
	Nodes    []string `json:"nodes"`
	Running  int      `json:"running"`
	Networks []string `json:"networks"` // the libvirt networks and bridges it made
	File     bool     `json:"file"`     // its lab file is saved (check and inspect by name work)
}

// List finds every lab in e: each name a VM, network or bridge is tagged
// with, or a lab file is saved under.
func List(e vm.Env) ([]Summary, error) {
	by := map[string]*Summary{}
	get := func(name string) *Summary {
		if by[name] == nil {
			by[name] = &Summary{Lab: name, Nodes: []string{}, Networks: []string{}}
		}
		return by[name]
	}
	vms, err := vm.List(e)
	if err != nil {
		return nil, err
	}
	for _, v := range vms {
		if v.Lab != "" {
			s := get(v.Lab)
			s.Nodes = append(s.Nodes, v.Name)
			if v.State == "running" {
				s.Running++
			}
		}
	}
	if err := listNetworks(e, get); err != nil {
		return nil, err
	}
	if err := listHostContainers(e, get); err != nil {
		return nil, err
	}
	entries, _ := os.ReadDir(filepath.Dir(recordDir(e.StateDir, "x")))
	for _, d := range entries {
		if d.IsDir() && vmspec.ValidateName(d.Name()) == nil {
			get(d.Name()).File = true
		}
	}
	out := make([]Summary, 0, len(by))
	for _, k := range sortedKeys(by) {
		out = append(out, *by[k])
	}
	return out, nil
}

// listNetworks adds the networks and bridges tagged with a lab.
func listNetworks(e vm.Env, get func(string) *Summary) error {
	nets, err := e.Conn.Networks()
	if err != nil {
		return err
	}
	for _, n := range nets {
		if n.Lab != "" {
			get(n.Lab).Networks = append(get(n.Lab).Networks, n.Name)
		}
	}
	brs, err := bridge.List(e.Bridges)
	if err != nil {
		return err
	}
	for _, b := range brs {
		if b.Lab != "" {
			get(b.Lab).Networks = append(get(b.Lab).Networks, b.Name)
		}
	}
	return nil
}

// Inspection is one lab in detail: each node with its state and NICs, and
// each network with whether the lab made it.
type Inspection struct {
	Lab      string        `json:"lab"`
	Nodes    []NodeInfo    `json:"nodes"`
	Networks []NetworkInfo `json:"networks"`
}

// NodeInfo is one node of an inspected lab.
type NodeInfo struct {
	Node       string          `json:"node"`
	Kind       string          `json:"kind,omitempty"` // container for a container on the host; "" for a VM
	State      string          `json:"state"`          // running, shut off, ..., or "not up"
	NICs       []vm.NICInfo    `json:"nics"`
	Containers []ContainerInfo `json:"containers,omitempty"` // as the saved lab file plans them
}

// ContainerInfo is one container of a node as its lab plans it: its
// network mode, the network it is on, its address (the one vmnet gives it)
// and its published ports.
type ContainerInfo struct {
	Name    string   `json:"name"`
	Mode    string   `json:"mode"`              // podman, bridge, host, none, macvlan, ipvlan or pod
	Network string   `json:"network,omitempty"` // its container-network, pod, or lab network (macvlan, ipvlan)
	Address string   `json:"address,omitempty"`
	Ports   []string `json:"ports,omitempty"`
}

// containerInfos describes node's containers from the lab file, in name
// order.
func containerInfos(l lab.Lab, node string) []ContainerInfo {
	n := l.Nodes[node]
	addrs, pods := l.ContainerAddrs(node), l.PodAddrs(node)
	var out []ContainerInfo
	for _, name := range n.ContainerNames() {
		c := n.Containers[name]
		info := ContainerInfo{Name: name, Mode: c.Mode(), Network: c.Network, Ports: c.Ports}
		switch {
		case c.Pod != "":
			info.Network = "pod " + c.Pod
			if a := pods[c.Pod]; a.IsValid() {
				info.Address = a.String()
			}
		case c.OnLabNetwork():
			info.Network = c.Parent
		}
		if a, ok := addrs[name]; ok && a.IsValid() {
			info.Address = a.String()
		}
		out = append(out, info)
	}
	return out
}

// NetworkInfo is one network of an inspected lab.
type NetworkInfo struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`             // nat, isolated or bridge
	Subnet string `json:"subnet,omitempty"` // from the lab file
	Made   bool   `json:"made"`             // tagged with the lab: its down removes it
}

// Inspect describes lab name: the nodes and networks of its saved file
// (nodes that are not up say so), and whatever else carries its tag. A lab
// that is neither saved nor tagged anywhere is an error.
func Inspect(e vm.Env, name string) (*Inspection, error) {
	if err := vmspec.ValidateName(name); err != nil {
		return nil, err
	}
	saved, serr := Saved(e.StateDir, name)
	if serr != nil && !errors.Is(serr, ErrNoRecord) {
		return nil, serr
	}
	vms, err := vm.List(e)
	if err != nil {
		return nil, err
	}
	in := &Inspection{Lab: name, Nodes: []NodeInfo{}, Networks: []NetworkInfo{}}
	seen := map[string]bool{}
	for _, n := range saved.NodeOrder {
		info := NodeInfo{Node: n, State: "not up", NICs: []vm.NICInfo{}, Containers: containerInfos(saved, n)}
		if i := slices.IndexFunc(vms, func(v vm.Info) bool { return v.Name == n && v.Lab == name }); i >= 0 {
			info.State, info.NICs = vms[i].State, vms[i].NICs
		}
		in.Nodes, seen[n] = append(in.Nodes, info), true
	}
	for _, v := range vms {
		if v.Lab == name && !seen[v.Name] {
			in.Nodes = append(in.Nodes, NodeInfo{Node: v.Name, State: v.State, NICs: v.NICs})
		}
	}
	if err := inspectHostContainers(e, saved, in); err != nil {
		return nil, err
	}
	if err := inspectNetworks(e, saved, in); err != nil {
		return nil, err
	}
	if serr != nil && len(in.Nodes) == 0 && len(in.Networks) == 0 {
		return nil, serr
	}
	return in, nil
}

// inspectNetworks lists the saved lab's networks and the ones tagged with
// it.
func inspectNetworks(e vm.Env, saved lab.Lab, in *Inspection) error {
	tagged := map[string]bool{}
	summaries, err := List(e)
	if err != nil {
		return err
	}
	for _, s := range summaries {
		if s.Lab == in.Lab {
			for _, n := range s.Networks {
				tagged[n] = true
			}
		}
	}
	for _, n := range saved.NetworkOrder {
		net := saved.Networks[n]
		in.Networks = append(in.Networks, NetworkInfo{Name: n, Kind: net.Kind, Subnet: net.Subnet().String(), Made: tagged[n]})
		delete(tagged, n)
	}
	for _, n := range sortedKeys(tagged) {
		in.Networks = append(in.Networks, NetworkInfo{Name: n, Made: true})
	}
	return nil
}

// Forget removes lab name's saved file once no VM of the lab is left: `vm
// down` of a one-node lab's node (vm up capstone) leaves nothing of the lab
// in vmnet's state directory. Its networks stay, as vm down leaves them;
// `lab down` removes them. It says whether it removed the file.
func Forget(e vm.Env, name string) (bool, error) {
	if name == "" {
		return false, nil
	}
	left, err := vm.OfLab(e, name)
	if err != nil || len(left) > 0 {
		return false, err
	}
	var res DownResult
	if err := removeRecord(e.StateDir, name, &res); err != nil {
		return false, err
	}
	return len(res.Changes) > 0, nil
}
