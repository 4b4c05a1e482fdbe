package vm

import "sync"

// shared serialises the parts of Up and Down that read what VMs share and
// then change it, so that several Ups (a lab's VMs, started at once on one
// Env) and Downs do not race: the check of a static address against the
// other VMs' records and the writing of this VM's record; the choice of a
// free DHCP reservation and adding it; the MAC check and the define; the
// look at a required network or bridge and making it (two Ups must not both
// create nat0); the removal of a network or bridge a failed up made while
// another VM is being put on it; and STATEDIR/vms, which the last Down
// removes and an Up makes again. Image, start and the wait until the guest
// is ready stay outside it: VMs still build and boot at the same time.
//
// It is one lock per process: Ups in different processes (two `vmnet vm up`
// at once) are not serialised by it.
var shared sync.Mutex

// hold is shared as one Up holds it: taken before its first step that
// needs it, given back before the first that does not, and at the end.
type hold struct{ held bool }

// lock takes shared unless this Up holds it already.
func (h *hold) lock() {
	if !h.held {
		shared.Lock()
		h.held = true
	}
}

// unlock gives shared back if this Up holds it.
func (h *hold) unlock() {
	if h.held {
		h.held = false
		shared.Unlock()
	}
}
