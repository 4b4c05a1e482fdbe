package vm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"libvirt.org/go/libvirt"

	"vmnet/internal/agent"
	"vmnet/internal/errs"
	"vmnet/internal/virt"
)

// Info is one VM as list shows it.
type Info struct {
	Name  string    `json:"name"`
	State string    `json:"state"`         // running, shut off, ...
	Owner string    `json:"owner"`         // vmnet or other
	Lab   string    `json:"lab,omitempty"` // the lab that made it (its metadata's lab); "" for none
	NICs  []NICInfo `json:"nics"`
}

var stateNames = map[libvirt.DomainState]string{
	libvirt.DOMAIN_NOSTATE: "no state", libvirt.DOMAIN_RUNNING: "running", libvirt.DOMAIN_BLOCKED: "blocked",
	libvirt.DOMAIN_PAUSED: "paused", libvirt.DOMAIN_SHUTDOWN: "shutting down", libvirt.DOMAIN_SHUTOFF: "shut off",
	libvirt.DOMAIN_CRASHED: "crashed", libvirt.DOMAIN_PMSUSPENDED: "suspended",
}

// List returns every domain with its state and, for vmnet's, every NIC's
// network, MAC and address.
func List(e Env) ([]Info, error) {
	doms, err := e.Conn.ListDomains()
	if err != nil {
		return nil, virt.Err("list domains", err)
	}
	out := []Info{}
	for _, d := range doms {
		in, err := describe(e, d)
		d.Free()
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func describe(e Env, d Domain) (Info, error) {
	name, err := d.Name()
	if err != nil {
		return Info{}, err
	}
	in := Info{Name: name, Owner: "other", NICs: []NICInfo{}}
	if st, err := d.State(); err == nil {
		in.State = stateNames[st]
	}
	meta, owned, err := metadata(d)
	if err != nil {
		return in, err
	}
	if owned {
		in.Owner, in.Lab = "vmnet", meta.Lab
		if nics, err := nicInfo(e.Conn, meta.Dir); err == nil && nics != nil {
			in.NICs = nics
		}
	}
	return in, nil
}

// lookupOwned finds a domain vmnet made.
func lookupOwned(e Env, name string) (Domain, string, error) {
	dom, err := e.Conn.LookupDomain(name)
	if virt.IsNotFound(err) {
		return nil, "", errs.WithHint(fmt.Errorf("VM %q does not exist", name),
			"'vmnet vm list' shows the VMs; 'vmnet vm up "+name+"' makes it")
	}
	if err != nil {
		return nil, "", virt.Err(fmt.Sprintf("look up domain %q", name), err)
	}
	meta, owned, err := metadata(dom)
	if err != nil || !owned {
		dom.Free()
		if err == nil {
			err = Foreign(name)
		}
		return nil, "", err
	}
	return dom, meta.Dir, nil
}

// Console returns the guest's serial console log so far.
func Console(e Env, name string) ([]byte, error) {
	dom, dir, err := lookupOwned(e, name)
	if err != nil {
		return nil, err
	}
	dom.Free()
	b, err := os.ReadFile(filepath.Join(dir, "console.log"))
	if err != nil {
		return nil, fmt.Errorf("read the console of %q: %w", name, err)
	}
	return b, nil
}

// Exec runs argv in the guest through the QEMU guest agent, or through the
// shell on the serial console when the guest has no agent.
func Exec(ctx context.Context, e Env, name string, argv []string, timeout time.Duration) (stdout, stderr []byte, code int, err error) {
	dom, dir, err := lookupOwned(e, name)
	if err != nil {
		return nil, nil, 0, err
	}
	defer dom.Free()
	if active, _ := dom.IsActive(); !active {
		return nil, nil, 0, errs.WithHint(fmt.Errorf("VM %q is not running", name),
			"start it with 'vmnet vm up "+name+"'")
	}
	if agent.New(dom).Ping() == nil {
		return agentExec(ctx, dom, argv, timeout)
	}
	if rec, ok, _ := readRecord(dir); ok && rec.Agent {
		// The image has an agent; it is not answering yet (booting, rebooting).
		return nil, nil, 0, errs.WithHint(fmt.Errorf("the guest agent of %q is not answering", name),
			"the guest may be booting or rebooting: try again in a few seconds ('vmnet vm console "+name+"' shows where it is)")
	}
	// No agent (tiny has none): a shell on the serial console does the job;
	// its stderr comes mixed into stdout.
	out, code, err := consoleExec(ctx, dom, argv, timeout)
	return out, nil, code, err
}
