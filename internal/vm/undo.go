package vm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"libvirt.org/go/libvirt"

	"vmnet/internal/bridge"
	"vmnet/internal/network"
	"vmnet/internal/virt"
	"vmnet/internal/vmspec"
)

// made is what one Up created, so that an up whose guest never gets ready
// takes back exactly that and keeps what existed before it.
type made struct {
	bridges  []string // created by ensureRequired
	networks []string // created (defined) by ensureRequired
	running  bool     // the domain existed and was running
	vm       bool     // the domain did not exist: this up made its files, reservations and domain
	started  bool     // a domain that existed shut off was started by this up
}

func (m made) any() bool {
	return len(m.bridges) > 0 || len(m.networks) > 0 || m.vm || m.started || m.running
}

// UpFailedError is an up that failed once it had started the guest: what
// it then removed of what it had made, what existed before and stays, and
// what is left because removing it failed.
type UpFailedError struct {
	Err     error
	Removed []string
	Kept    []string
	Left    []string // each with the command that removes it
	hint    string   // instead of Err's, when that no longer fits
}

func (e *UpFailedError) Error() string {
	var b strings.Builder
	b.WriteString(e.Err.Error())
	if len(e.Removed) > 0 {
		fmt.Fprintf(&b, "\nremoved what this up made: %s", strings.Join(e.Removed, ", "))
	}
	if len(e.Kept) > 0 {
		fmt.Fprintf(&b, "\nkept what existed before this up: %s", strings.Join(e.Kept, ", "))
	}
	if len(e.Left) > 0 {
		fmt.Fprintf(&b, "\nleft behind (removing it failed): %s", strings.Join(e.Left, "; "))
	}
	return b.String()
}

func (e *UpFailedError) Unwrap() error { return e.Err }

// Hint is the failure's own hint.
func (e *UpFailedError) Hint() string {
	if e.hint != "" {
		return e.hint
	}
	var h interface{ Hint() string }
	if errors.As(e.Err, &h) {
		return h.Hint()
	}
	return ""
}

// undoUp takes back what this up made after it failed with err before the
// guest was ready, in reverse order: the VM (as down does: domain, files,
// DHCP reservations, logs), then the networks and bridges it created. err
// comes back unchanged when this up had made nothing.
func undoUp(ctx context.Context, e Env, spec vmspec.Spec, dom *libvirt.Domain, m made, err error) error {
	if !m.any() {
		return err
	}
	ctx = context.WithoutCancel(ctx) // an interrupted up still cleans up
	u := &UpFailedError{Err: err}
	name := spec.Name
	switch {
	case m.vm:
		if _, derr := Down(ctx, e, name); derr != nil {
			u.Left = append(u.Left, fmt.Sprintf("VM %s (%s): remove it with 'vmnet vm down %s'", name, derr, name))
		} else {
			u.Removed = append(u.Removed, "VM "+name+" (domain, files, DHCP reservations)")
			var re *ReadyError
			if errors.As(err, &re) {
				// 'vmnet vm console' has nothing to show any more.
				u.hint = "the console's last lines are above; raise 'timeout' in the spec if the guest is only slow"
			}
		}
	case m.started:
		// It was defined and shut off before: stop it again, keep the rest.
		if derr := dom.Destroy(); derr != nil && !virt.IsCode(derr, libvirt.ERR_OPERATION_INVALID) {
			u.Left = append(u.Left, fmt.Sprintf("VM %s is running (%s): stop and remove it with 'vmnet vm down %s'", name, virt.Message(derr), name))
		} else {
			u.Removed = append(u.Removed, "the run of VM "+name+" (stopped again)")
		}
		u.Kept = append(u.Kept, fmt.Sprintf("VM %s, defined and shut off as before ('vmnet vm down %s' removes it)", name, name))
	case m.running:
		u.Kept = append(u.Kept, fmt.Sprintf("VM %s, running as before ('vmnet vm down %s' removes it)", name, name))
	}
	// What this up created goes, back to how things were, unless the VM
	// still runs on it (it ran before, or stopping it failed). A VM that
	// existed shut off finds its networks and bridges made again by the next up.
	vmRuns := m.running || len(u.Left) > 0
	for i := len(m.networks) - 1; i >= 0; i-- {
		n := m.networks[i]
		if vmRuns {
			u.Left = append(u.Left, fmt.Sprintf("network %s: remove it with 'vmnet net delete %s' once the VM is gone", n, n))
			continue
		}
		if _, derr := network.Delete(e.Conn, n); derr != nil {
			u.Left = append(u.Left, fmt.Sprintf("network %s (%s): remove it with 'vmnet net delete %s'", n, derr, n))
		} else {
			u.Removed = append(u.Removed, "network "+n)
		}
	}
	for i := len(m.bridges) - 1; i >= 0; i-- {
		b := m.bridges[i]
		if vmRuns {
			u.Left = append(u.Left, fmt.Sprintf("bridge %s: remove it with 'vmnet bridge delete %s' once the VM is gone", b, b))
			continue
		}
		st, ierr := bridge.Inspect(e.Bridges, b)
		switch {
		case errors.Is(ierr, bridge.ErrNotFound):
			continue
		case ierr != nil:
			u.Left = append(u.Left, fmt.Sprintf("bridge %s (%s): remove it with 'vmnet bridge delete %s'", b, ierr, b))
			continue
		case len(st.Ports) > 0:
			// Something else plugged in since (another VM): not this up's to cut off.
			u.Left = append(u.Left, fmt.Sprintf("bridge %s, which has ports %s now: remove it with 'vmnet bridge delete %s' when they are gone",
				b, strings.Join(st.Ports, ", "), b))
			continue
		}
		if _, derr := bridge.Delete(ctx, e.Bridges, b, bridge.Options{}); derr != nil {
			u.Left = append(u.Left, fmt.Sprintf("bridge %s (%s): remove it with 'vmnet bridge delete %s'", b, derr, b))
		} else {
			u.Removed = append(u.Removed, "bridge "+b)
		}
	}
	for _, b := range spec.Requires.Bridges {
		if !slices.Contains(m.bridges, b.Name) {
			u.Kept = append(u.Kept, "bridge "+b.Name)
		}
	}
	for _, n := range spec.Requires.Networks {
		if !slices.Contains(m.networks, n.Name) {
			u.Kept = append(u.Kept, "network "+n.Name)
		}
	}
	return u
}
