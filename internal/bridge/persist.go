package bridge

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"vmnet/internal/persist"
)

// Options control how Ensure and Delete act.
type Options struct {
	Persist persist.Backend // None, Auto or one backend; "" means None
	Root    string          // root directory for persistence files; "" means /
	HostID  string          // stable host identity (machine-id), for a new bridge's MAC
	DryRun  bool            // report what would change; touch nothing
	// StateDir keeps each taken-over NIC's state as it was before, for
	// rollback and release; "" means DefaultStateDir.
	StateDir string
}

func (o Options) stateDir() string {
	if o.StateDir == "" {
		return DefaultStateDir
	}
	return o.StateDir
}

func (o Options) root() string {
	if o.Root == "" {
		return "/"
	}
	return o.Root
}

// Persisted says which persistence files a run wrote or would write.
type Persisted struct {
	Backend persist.Backend `json:"backend"`
	Reason  string          `json:"reason,omitempty"` // why auto chose this backend
	Root    string          `json:"root"`
	Files   []string        `json:"files"`   // the full set for this bridge
	Changed []string        `json:"changed"` // written because new or different
	Removed []string        `json:"removed"` // vmnet's files no longer needed
}

// persistPlan is the rendered file set, checked before any live change.
type persistPlan struct {
	bridge  string
	backend persist.Backend
	reason  string
	root    string
	files   []persist.File
	note    string // advice about the host's own config
}

func renderPersist(name string, w desired, up *uplinkState, opt Options) (*persistPlan, error) {
	p := &persistPlan{bridge: name, backend: opt.Persist, root: opt.root()}
	if p.backend == "" {
		p.backend = persist.None
	}
	if p.backend == persist.Auto {
		b, reason, err := persist.Detect(p.root)
		if err != nil {
			return nil, err
		}
		p.backend, p.reason = b, reason
	}
	if p.backend == persist.None {
		return p, nil
	}
	br := persist.Bridge{
		Name:          name,
		MAC:           w.mac,
		MTU:           w.mtu,
		STP:           w.stp,
		VLANFiltering: w.vlan,
		Uplink:        w.uplink,
		Addresses:     slices.Clone(w.addresses),
	}
	if up != nil {
		br.DHCP4, br.Gateway4, br.Gateway6 = up.dhcp4, up.gw4, up.gw6
		for _, a := range up.addrs {
			p := toPrefix(a)
			if (p.Addr().Is4() && up.dhcp4) || slices.Contains(br.Addresses, p) {
				continue // DHCP gives it back at boot
			}
			br.Addresses = append(br.Addresses, p)
		}
	}
	sortPrefixes(br.Addresses)
	files, err := persist.Render(p.backend, br)
	if err != nil {
		return nil, fmt.Errorf("render %s config for %q: %w", p.backend, name, err)
	}
	if err := persist.Check(p.root, name, files); err != nil {
		return nil, err
	}
	p.files = files
	if p.backend == persist.Ifupdown && w.uplink != "" {
		p.note = ifupdownConflict(p.root, w.uplink)
	}
	return p, nil
}

// ifupdownConflict warns when the host's own interfaces file still
// configures the uplink: that stanza is not vmnet's to change, and at boot
// it would give the NIC its address back beside the bridge.
func ifupdownConflict(root, nic string) string {
	b, err := os.ReadFile(filepath.Join(root, "etc/network/interfaces"))
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "iface" && f[1] == nic {
			return fmt.Sprintf("/etc/network/interfaces still configures %s (%q): remove that stanza, or %s gets its address back at boot beside the bridge", nic, strings.TrimSpace(line), nic)
		}
	}
	return ""
}

// preview lists the files; for a dry run it also says which would change.
func (p *persistPlan) preview(dryRun bool) (*Persisted, error) {
	out := &Persisted{Backend: p.backend, Reason: p.reason, Root: p.root}
	keep := map[string]bool{}
	for _, f := range p.files {
		full := filepath.Join(p.root, f.Path)
		keep[full] = true
		out.Files = append(out.Files, full)
		if !dryRun {
			continue
		}
		old, err := os.ReadFile(full)
		fi, serr := os.Stat(full)
		if err != nil || serr != nil || !bytes.Equal(old, f.Content) || uint32(fi.Mode().Perm()) != f.Mode {
			out.Changed = append(out.Changed, full)
		}
	}
	if dryRun {
		found, err := persist.Find(p.root, p.bridge)
		if err != nil {
			return nil, err
		}
		for _, f := range found {
			if full := filepath.Join(p.root, f.Path); !keep[full] {
				out.Removed = append(out.Removed, full)
			}
		}
	}
	return out, nil
}

func (p *persistPlan) write() (*Persisted, error) {
	out, _ := p.preview(false)
	var err error
	if p.backend == persist.None {
		// Without persistence a bridge must not keep stale files from an earlier run.
		out.Removed, err = persist.Remove(p.root, p.bridge)
	} else {
		out.Changed, out.Removed, err = persist.Sync(p.root, p.bridge, p.files)
	}
	out.Changed, out.Removed = joinRoot(p.root, out.Changed), joinRoot(p.root, out.Removed)
	if err != nil {
		return out, fmt.Errorf("write %s config for %q: %w", p.backend, p.bridge, err)
	}
	return out, nil
}

func joinRoot(root string, paths []string) []string {
	var out []string
	for _, p := range paths {
		out = append(out, filepath.Join(root, p))
	}
	return out
}

// removePersist deletes vmnet's persistence files for a bridge, whatever backend wrote them.
func removePersist(name string, opt Options) (*Persisted, error) {
	out := &Persisted{Root: opt.root()}
	found, err := persist.Find(out.Root, name)
	if err != nil {
		return nil, err
	}
	for _, f := range found {
		out.Files = append(out.Files, filepath.Join(out.Root, f.Path))
		out.Backend = f.Backend
	}
	if opt.DryRun {
		out.Removed = out.Files
		return out, nil
	}
	removed, err := persist.Remove(out.Root, name)
	out.Removed = joinRoot(out.Root, removed)
	return out, err
}

// Persistence reports vmnet's persistence files for a bridge (for show/list).
func Persistence(root, name string) ([]persist.Found, error) {
	if root == "" {
		root = "/"
	}
	return persist.Find(root, name)
}
