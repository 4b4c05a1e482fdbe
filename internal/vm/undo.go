package vm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"libvirt.org/go/libvirt"

	"vmnet/internal/bridge"
	"vmnet/internal/virt"
	"vmnet/internal/vmspec"
)

// UpFailedError is an up that failed once it had started the guest: what
// it then removed of what it had made, what existed before and stays, and
// what is left because removing it failed.
type UpFailedError struct {
	Err     error
	Removed []string
	Kept    []string
	Left    []string // each with the command that removes it
	hint    string   // instead of Err's, when that no longer fits
	// removedOrLeft names the required networks and bridges this up made
	// ("network NAME", "bridge NAME"): the others existed and are kept.
	removedOrLeft []string
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

// undoList is what one Up made, one rollback per change, collected as
// each step succeeds (a step whose failure can leave part of its work, like
// prepare, adds its rollback before it starts). An up whose guest never
// gets ready runs them last first and keeps what existed before it.
type undoList struct {
	fns []rollback
}

// rollback takes back one change of a failed up and says so in st.
type rollback func(ctx context.Context, st *undoState)

// undoState is what the rollbacks of one failed up tell each other and the user.
type undoState struct {
	u *UpFailedError
	// vmRuns says the VM still runs: it ran before this up, or stopping or
	// removing it failed. Its networks and bridges then stay.
	vmRuns bool
}

func (l *undoList) push(fn rollback) { l.fns = append(l.fns, fn) }

// run takes back what this up made after it failed with err, in reverse
// order: the VM (as down does: domain, files, DHCP reservations, logs),
// then the networks and bridges it created. err comes back unchanged when
// this up had made nothing.
func (l *undoList) run(ctx context.Context, spec vmspec.Spec, err error) error {
	if len(l.fns) == 0 {
		return err
	}
	ctx = context.WithoutCancel(ctx) // an interrupted up still cleans up
	st := &undoState{u: &UpFailedError{Err: err}}
	for i := len(l.fns) - 1; i >= 0; i-- {
		l.fns[i](ctx, st)
	}
	// What existed before this up stays as it was.
	for _, b := range spec.Requires.Bridges {
		if !slices.Contains(st.u.removedOrLeft, "bridge "+b.Name) {
			st.u.Kept = append(st.u.Kept, "bridge "+b.Name)
		}
	}
	for _, n := range spec.Requires.Networks {
		if !slices.Contains(st.u.removedOrLeft, "network "+n.Name) {
			st.u.Kept = append(st.u.Kept, "network "+n.Name)
		}
	}
	return st.u
}

// undoVM removes a VM this up made, as down does.
func undoVM(e Env, name string) rollback {
	return func(ctx context.Context, st *undoState) {
		u := st.u
		if _, derr := down(ctx, e, name); derr != nil { // Up holds shared
			u.Left = append(u.Left, fmt.Sprintf("VM %s (%s): remove it with 'vmnet vm down %s'", name, derr, name))
			st.vmRuns = true
			return
		}
		u.Removed = append(u.Removed, "VM "+name+" (domain, files, DHCP reservations)")
		var re *ReadyError
		if errors.As(u.Err, &re) {
			// 'vmnet vm console' has nothing to show any more.
			u.hint = "the console's last lines are above; raise 'timeout' in the spec if the guest is only slow"
		}
	}
}

// undoStart stops again a VM that was defined and shut off before this up
// started it, and keeps the rest of it.
func undoStart(name string, dom Domain) rollback {
	return func(ctx context.Context, st *undoState) {
		u := st.u
		if derr := dom.Destroy(); derr != nil && !virt.IsCode(derr, libvirt.ERR_OPERATION_INVALID) {
			u.Left = append(u.Left, fmt.Sprintf("VM %s is running (%s): stop and remove it with 'vmnet vm down %s'", name, virt.Message(derr), name))
			st.vmRuns = true
		} else {
			u.Removed = append(u.Removed, "the run of VM "+name+" (stopped again)")
		}
		u.Kept = append(u.Kept, fmt.Sprintf("VM %s, defined and shut off as before ('vmnet vm down %s' removes it)", name, name))
	}
}

// keptRunning notes that the VM ran before this up: it stays, and so do
// the networks and bridges it runs on.
func keptRunning(name string) rollback {
	return func(ctx context.Context, st *undoState) {
		st.u.Kept = append(st.u.Kept, fmt.Sprintf("VM %s, running as before ('vmnet vm down %s' removes it)", name, name))
		st.vmRuns = true
	}
}

// undoNetwork deletes a network this up created, unless the VM still runs
// on it, or another VM was put on it meanwhile (an Up running beside this
// one, which found it made). A VM that existed shut off finds it made
// again by the next up.
func undoNetwork(e Env, vm, n string) rollback {
	return func(ctx context.Context, st *undoState) {
		u := st.u
		u.removedOrLeft = append(u.removedOrLeft, "network "+n)
		if st.vmRuns {
			u.Left = append(u.Left, fmt.Sprintf("network %s: remove it with 'vmnet net delete %s' once the VM is gone", n, n))
			return
		}
		if other := usedBy(e, vm, func(nic nicRecord) bool { return nic.Network == n }); other != "" {
			u.Left = append(u.Left, fmt.Sprintf("network %s, which %s uses now: remove it with 'vmnet net delete %s' when no VM does", n, other, n))
			return
		}
		if _, derr := e.Conn.DeleteNetwork(n); derr != nil {
			u.Left = append(u.Left, fmt.Sprintf("network %s (%s): remove it with 'vmnet net delete %s'", n, derr, n))
		} else {
			u.Removed = append(u.Removed, "network "+n)
		}
	}
}

// undoBridge deletes a bridge this up created, unless the VM still runs on
// it, or another VM was put on it (it may not be plugged in yet), or
// something else plugged into it since.
func undoBridge(e Env, vm, b string) rollback {
	return func(ctx context.Context, st *undoState) {
		u := st.u
		u.removedOrLeft = append(u.removedOrLeft, "bridge "+b)
		if st.vmRuns {
			u.Left = append(u.Left, fmt.Sprintf("bridge %s: remove it with 'vmnet bridge delete %s' once the VM is gone", b, b))
			return
		}
		if other := usedBy(e, vm, func(nic nicRecord) bool { return nic.Bridge == b }); other != "" {
			u.Left = append(u.Left, fmt.Sprintf("bridge %s, which %s uses now: remove it with 'vmnet bridge delete %s' when no VM does", b, other, b))
			return
		}
		bs, ierr := bridge.Inspect(e.Bridges, b)
		switch {
		case errors.Is(ierr, bridge.ErrNotFound):
			return
		case ierr != nil:
			u.Left = append(u.Left, fmt.Sprintf("bridge %s (%s): remove it with 'vmnet bridge delete %s'", b, ierr, b))
			return
		case len(bs.Ports) > 0:
			// Something else plugged in since (another VM): not this up's to cut off.
			u.Left = append(u.Left, fmt.Sprintf("bridge %s, which has ports %s now: remove it with 'vmnet bridge delete %s' when they are gone",
				b, strings.Join(bs.Ports, ", "), b))
			return
		}
		if _, derr := bridge.Delete(ctx, e.Bridges, b, bridge.Options{}); derr != nil {
			u.Left = append(u.Left, fmt.Sprintf("bridge %s (%s): remove it with 'vmnet bridge delete %s'", b, derr, b))
		} else {
			u.Removed = append(u.Removed, "bridge "+b)
		}
	}
}

// usedBy names the first VM but vm whose record has a NIC that on says is
// on the network or bridge ("VM web1"); "" when there is none. When the
// records cannot be read it says so: the network or bridge then stays.
func usedBy(e Env, vm string, on func(nicRecord) bool) string {
	others, err := otherRecords(e.StateDir, vm)
	if err != nil {
		return fmt.Sprintf("perhaps another VM (%v)", err)
	}
	for _, r := range others {
		if slices.ContainsFunc(r.NICs, on) {
			return "VM " + r.Name
		}
	}
	return ""
}
