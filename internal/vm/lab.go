package vm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"vmnet/internal/errs"
	"vmnet/internal/ownership"
	"vmnet/internal/virt"
	"vmnet/internal/vmspec"
)

// OfLab returns the names of every VM that lab made, sorted and once each:
// each defined domain whose vmnet metadata carries the lab, and each VM
// directory under STATEDIR/vms with no domain of its name whose record
// carries it (an up killed after it wrote the record and before it defined
// the domain). Down removes either kind. A domain of the name decides over
// a directory: a record cannot make a domain that is not the lab's (or not
// vmnet's) the lab's. It reads only; lab "" is refused, so that no caller
// takes every VM without a lab for a lab's.
func OfLab(e Env, lab string) ([]string, error) {
	if lab == "" {
		return nil, &errs.FieldError{Field: "lab", Problem: "is missing", Form: errs.PathForm, Fix: "name the lab whose VMs to list"}
	}
	if err := ownership.CheckLab("lab", lab); err != nil {
		return nil, err
	}
	defined, out, err := domainsOfLab(e, lab)
	if err != nil {
		return nil, err
	}
	left, err := leftoversOfLab(e.StateDir, lab, defined)
	if err != nil {
		return nil, err
	}
	out = append(out, left...)
	slices.Sort(out)
	return slices.Compact(out), nil
}

// domainsOfLab lists the names of every domain (defined) and of those
// vmnet made for lab (of). A domain undefined while it looks is skipped.
func domainsOfLab(e Env, lab string) (defined map[string]bool, of []string, err error) {
	doms, err := e.Conn.ListDomains()
	if err != nil {
		return nil, nil, virt.Err("list domains", err)
	}
	defer func() {
		for _, d := range doms {
			d.Free()
		}
	}()
	defined = map[string]bool{}
	for _, d := range doms {
		name, err := d.Name()
		if virt.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, nil, virt.Err("read a domain's name", err)
		}
		meta, owned, err := metadata(d)
		if virt.IsNotFound(err) { // errors.As sees through virt.Err
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("domain %q: %w", name, err)
		}
		defined[name] = true
		if owned && meta.Lab == lab {
			of = append(of, name)
		}
	}
	return defined, of, nil
}

// leftoversOfLab lists the VM directories of lab that have no domain: each
// STATEDIR/vms/NAME whose record says lab, NAME a valid VM name (what Down
// takes) and not in defined.
func leftoversOfLab(stateDir, lab string, defined map[string]bool) ([]string, error) {
	vms := filepath.Join(stateDir, "vms")
	entries, err := os.ReadDir(vms)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the VMs' directories: %w", err)
	}
	var out []string
	for _, en := range entries {
		name := en.Name()
		if !en.IsDir() || defined[name] || vmspec.ValidateName(name) != nil {
			continue
		}
		rec, ok, err := readRecord(filepath.Join(vms, name))
		if err != nil {
			return nil, err
		}
		if ok && rec.Lab == lab {
			out = append(out, name)
		}
	}
	return out, nil
}
