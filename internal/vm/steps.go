package vm

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"libvirt.org/go/libvirt"

	"vmnet/internal/domain"
	"vmnet/internal/errs"
	"vmnet/internal/virt"
	"vmnet/internal/vmspec"
)

// StepError says which step of vm up or vm down failed. errors.As and
// errors.Is see through it to the step's own error (and its hint).
type StepError struct {
	Op   string // "up" or "down"
	Step string // one of the names in upSteps or downSteps
	Err  error
}

func (e *StepError) Error() string { return fmt.Sprintf("vm %s, step %s: %v", e.Op, e.Step, e.Err) }

func (e *StepError) Unwrap() error { return e.Err }

// upStep is one named part of Up. A step that does not apply to this run
// (define, for a domain that is running already) returns nil at once.
type upStep struct {
	name string
	run  func(r *upRun) error
	// ready marks the steps after the guest is ready: a failure there keeps
	// the VM (the next up finishes the job; 'vmnet vm exec' looks inside).
	ready bool
	// locked steps run holding shared (see there): they read and change
	// what other VMs' Ups read and change too.
	locked bool
}

// upSteps are Up's steps in order.
var upSteps = []upStep{
	{name: "check addresses", run: (*upRun).checkAddresses},
	{name: "image", run: (*upRun).findImage},
	{name: "plan", run: (*upRun).makePlan},
	{name: "check MACs and addresses", run: (*upRun).checkMACs, locked: true},
	{name: "look up", run: (*upRun).lookUp, locked: true},
	{name: "require", run: (*upRun).require, locked: true},
	{name: "prepare", run: (*upRun).prepare, locked: true},
	{name: "define", run: (*upRun).define, locked: true},
	{name: "start", run: (*upRun).start},
	{name: "wait ready", run: (*upRun).waitReady},
	{name: "provision", run: (*upRun).provision, ready: true},
}

// upRun is one Up on its way: what the steps decided and made so far.
type upRun struct {
	ctx  context.Context
	e    Env
	spec vmspec.Spec
	res  *UpResult

	img     domain.ImageInfo
	plan    domain.Plan
	dom     Domain // the domain, once looked up or defined
	existed bool   // the domain was defined before this up
	active  bool   // and running
	saved   bool   // and stopped with a managed save image: start restores it
	rec     record
	boot    time.Time // when start began: Ready counts from here
	undo    undoList
}

// Up makes the VM described by spec run and waits until it is ready. A
// second Up of a running VM with the same spec changes nothing. A failure
// before the guest is ready takes back what this up made (UpFailedError);
// the error names the step (StepError).
//
// Ups of different VMs may run at once on one Env: the steps that read and
// change what VMs share run one Up at a time (shared), the others, image,
// boot and wait included, side by side.
func Up(ctx context.Context, e Env, spec vmspec.Spec) (*UpResult, error) {
	r := &upRun{ctx: ctx, e: e, spec: spec, res: &UpResult{Name: spec.Name, Accel: e.Accel}}
	var h hold
	defer h.unlock()
	defer func() {
		if r.dom != nil {
			r.dom.Free()
		}
	}()
	for _, s := range upSteps {
		if s.locked {
			h.lock()
		} else {
			h.unlock()
		}
		if err := s.run(r); err != nil {
			err = &StepError{Op: "up", Step: s.name, Err: err}
			if s.ready {
				return r.res, err
			}
			h.lock() // the rollback removes what others may be about to use
			return r.res, r.undo.run(ctx, spec, err)
		}
	}
	h.unlock()
	var err error
	if r.active {
		r.res.NICs, err = nicInfo(e.Conn, r.plan.Dir)
	} else {
		r.res.NICs = nicsOf(e.Conn, r.rec)
	}
	return r.res, err
}

// phase adds d to the UpResult's phase name (the last one when it has that name).
func (r *upRun) phase(name string, since time.Time) {
	d := time.Since(since).Seconds()
	if n := len(r.res.Phases); n > 0 && r.res.Phases[n-1].Name == name {
		r.res.Phases[n-1].Seconds += d
		return
	}
	r.res.Phases = append(r.res.Phases, Phase{Name: name, Seconds: d})
}

// checkAddresses checks the NICs before anything changes: their macvtap
// parents exist, their static addresses fit their links.
func (r *upRun) checkAddresses() error {
	if err := checkParents(r.e, r.spec); err != nil {
		return err
	}
	return checkAddresses(r.e, r.spec)
}

// findImage comes before the plan, and the plan before the networks and bridges
// the spec requires: a spec the image cannot run (ready: agent on tiny)
// changes nothing.
func (r *upRun) findImage() (err error) {
	defer r.phase("image", time.Now())
	r.img, err = r.e.Image(r.ctx, r.spec)
	return err
}

func (r *upRun) makePlan() (err error) {
	r.plan, err = domain.NewPlan(r.spec, r.img, r.e.Accel, r.e.StateDir)
	return err
}

// checkMACs refuses a MAC another domain has, and checks the static
// addresses again: the first check ran before the image, without shared,
// and another Up may have claimed an address since.
func (r *upRun) checkMACs() error {
	if err := checkAddresses(r.e, r.spec); err != nil {
		return err
	}
	return checkMACs(r.e.Conn, r.plan)
}

// lookUp finds an existing domain of that name: it must be vmnet's, from
// the same spec.
func (r *upRun) lookUp() error {
	name := r.plan.Name
	dom, err := r.e.Conn.LookupDomain(name)
	switch {
	case virt.IsNotFound(err):
		return nil
	case err != nil:
		return virt.Err(fmt.Sprintf("look up domain %q", name), err)
	}
	r.dom, r.existed = dom, true
	meta, owned, err := metadata(dom)
	if err != nil {
		return err
	}
	if !owned {
		return Foreign(name)
	}
	if meta.Hash != r.plan.SpecHash {
		return errs.WithHint(fmt.Errorf("VM %q exists with a different spec", name),
			fmt.Sprintf("run 'vmnet vm down %s' first, then 'vmnet vm up' again", name))
	}
	if r.active, err = dom.IsActive(); err != nil {
		return virt.Err(fmt.Sprintf("read state of %q", name), err)
	}
	if r.active {
		r.undo.push(keptRunning(name))
	} else if r.saved, err = dom.HasManagedSave(); err != nil {
		return virt.Err(fmt.Sprintf("look for the save image of %q", name), err)
	}
	return nil
}

// require makes the networks and bridges the spec requires.
func (r *upRun) require() error { return ensureRequired(r.ctx, r.e, r.spec, r.res, &r.undo) }

// prepare makes the VM's directory, record, disks and reservations. Its
// rollback (down, which finds all of it by the record) comes first, so a
// prepare that fails halfway is taken back too.
func (r *upRun) prepare() (err error) {
	if r.active {
		return nil
	}
	defer r.phase("define", time.Now())
	if !r.existed {
		r.undo.push(undoVM(r.e, r.plan.Name))
	}
	r.rec, err = prepare(r.e, r.plan, r.res)
	return err
}

func (r *upRun) define() error {
	if r.active {
		return nil
	}
	defer r.phase("define", time.Now())
	if r.existed {
		r.res.Outcome = "started"
		return nil
	}
	dom, err := define(r.e.Conn, r.plan)
	if err != nil {
		return err
	}
	r.dom = dom
	r.res.Changes = append(r.res.Changes, "define domain "+r.plan.Name)
	r.res.Outcome = "created"
	return nil
}

func (r *upRun) start() error {
	if r.active {
		return nil
	}
	r.e.say("start %s (%s)", r.plan.Name, r.e.Accel.Type)
	r.boot = time.Now()
	defer r.phase("boot to "+readyName(r.plan), r.boot)
	if err := r.dom.Create(); err != nil {
		return virt.Err(fmt.Sprintf("start %q", r.plan.Name), err)
	}
	if r.existed {
		r.undo.push(undoStart(r.plan.Name, r.dom))
	}
	r.res.Changes = append(r.res.Changes, "start "+r.plan.Name)
	return nil
}

// waitReady waits for the readiness the plan asks for. A VM that was
// running already is checked again: an earlier up may have been killed on
// the way.
func (r *upRun) waitReady() error {
	if r.active {
		r.res.Outcome = "unchanged"
		r.boot = time.Now()
	} else {
		defer r.phase("boot to "+readyName(r.plan), time.Now())
	}
	if err := waitReady(r.ctx, r.e, r.dom, r.plan); err != nil {
		return err
	}
	r.res.Ready = time.Since(r.boot)
	return nil
}

func (r *upRun) provision() error {
	// A plain up of a saved VM restores it too (libvirt's start does):
	// it is refreshed as --from-save does, so it never runs on with the
	// clock of the save and the saved lab's secrets.
	if r.saved {
		if err := refresh(r.ctx, r.e, r.dom, r.plan.Dir, r.spec, r.res); err != nil {
			return err
		}
		r.res.Outcome = "restored"
	}
	if err := finishProvisioning(r.ctx, r.e, r.dom, r.plan, r.spec, r.res); err != nil {
		return err
	}
	if r.active && len(r.res.Changes) > 0 {
		r.res.Outcome = "provisioned"
	}
	return nil
}

// downStep is one named part of Down. Down takes nothing back: each step
// removes what is there and succeeds when it is gone already, so a down
// that failed midway is finished by the next one.
type downStep struct {
	name string
	run  func(r *downRun) error
}

// downSteps are Down's steps in order.
var downSteps = []downStep{
	{name: "validate", run: (*downRun).validate},
	{name: "look up", run: (*downRun).lookUp},
	{name: "stop", run: (*downRun).stop},
	{name: "undefine", run: (*downRun).undefine},
	{name: "read record", run: (*downRun).readRecord},
	{name: "remove reservations", run: (*downRun).removeReservations},
	{name: "remove files", run: (*downRun).removeFiles},
	{name: "remove log", run: (*downRun).removeLog},
}

// downRun is one Down on its way.
type downRun struct {
	e    Env
	name string
	res  *DownResult

	dom     Domain
	owned   bool        // the domain exists and is vmnet's
	dir     string      // the VM's directory: its metadata's, else STATEDIR/vms/NAME
	files   []string    // the files its metadata and record list
	netNICs []nicRecord // its NICs on libvirt networks, from the domain XML
	rec     record
	recOK   bool
}

// Down removes the VM and everything vmnet made for it: the domain, its
// disks, seed and logs, and its DHCP reservations. It succeeds when the VM
// is already gone, and cleans up after an up that was killed midway (a
// lab's VM too: OfLab finds those by their record). The error names the
// step that failed (StepError). It runs holding shared: it is quick, and
// it frees addresses and may remove STATEDIR/vms, which Ups look at.
func Down(ctx context.Context, e Env, name string) (*DownResult, error) {
	shared.Lock()
	defer shared.Unlock()
	return down(ctx, e, name)
}

// down is Down for a caller that holds shared (an Up's rollback).
func down(ctx context.Context, e Env, name string) (*DownResult, error) {
	r := &downRun{e: e, name: name, res: &DownResult{Name: name, Outcome: "absent"}}
	defer func() {
		if r.dom != nil {
			r.dom.Free()
		}
	}()
	for _, s := range downSteps {
		if err := s.run(r); err != nil {
			return r.res, &StepError{Op: "down", Step: s.name, Err: err}
		}
	}
	return r.res, nil
}

func (r *downRun) validate() error {
	if err := vmspec.ValidateName(r.name); err != nil {
		return err
	}
	r.dir = filepath.Join(r.e.StateDir, "vms", r.name)
	return nil
}

// lookUp finds the domain and what its metadata says vmnet made for it.
func (r *downRun) lookUp() error {
	dom, err := r.e.Conn.LookupDomain(r.name)
	switch {
	case virt.IsNotFound(err):
		return nil
	case err != nil:
		return virt.Err(fmt.Sprintf("look up domain %q", r.name), err)
	}
	r.dom = dom
	meta, ok, err := metadata(dom)
	if err != nil {
		return err
	}
	if !ok {
		return Foreign(r.name)
	}
	r.owned = true
	if x, err := dom.XMLDesc(libvirt.DOMAIN_XML_INACTIVE); err == nil {
		r.netNICs = networkNICs(x) // for the reservations, should the record be lost
	}
	if meta.Dir != "" {
		r.dir = meta.Dir
	}
	for _, f := range meta.Files {
		r.files = append(r.files, f.Path)
	}
	return nil
}

func (r *downRun) stop() error {
	if !r.owned {
		return nil
	}
	if active, _ := r.dom.IsActive(); active {
		if err := r.dom.Destroy(); err != nil && !virt.IsCode(err, libvirt.ERR_OPERATION_INVALID) {
			return virt.Err(fmt.Sprintf("stop %q", r.name), err)
		}
		r.res.Changes = append(r.res.Changes, "stop "+r.name)
	}
	return nil
}

func (r *downRun) undefine() error {
	if !r.owned {
		return nil
	}
	flags := libvirt.DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | libvirt.DOMAIN_UNDEFINE_NVRAM
	if err := r.dom.Undefine(flags); err != nil && !virt.IsNotFound(err) {
		return virt.Err(fmt.Sprintf("undefine %q", r.name), err)
	}
	r.res.Changes = append(r.res.Changes, "undefine "+r.name)
	r.res.Outcome = "removed"
	return nil
}

func (r *downRun) readRecord() (err error) {
	r.rec, r.recOK, err = readRecord(r.dir)
	if r.recOK {
		r.files = append(r.files, r.rec.Files...)
	}
	return err
}

// removeReservations removes the DHCP reservations the record lists, or,
// without a record, those reserve made for the domain's NICs.
func (r *downRun) removeReservations() error {
	if !r.recOK {
		if r.owned {
			return removeOrphanReservations(r.e, r.res, r.name, r.netNICs)
		}
		return nil
	}
	for _, n := range r.rec.NICs {
		if n.Network == "" || !n.Reserved.IsValid() {
			continue
		}
		changed, err := r.e.Conn.RemoveHost(n.Network, n.MAC)
		if err != nil {
			return fmt.Errorf("remove the DHCP reservation of %s on %s: %w", n.MAC, n.Network, err)
		}
		if changed {
			r.res.Changes = append(r.res.Changes, fmt.Sprintf("remove reservation %s on %s", n.Reserved, n.Network))
		}
		removeLease(r.e.Conn, n.Network, n.MAC)
	}
	return nil
}

func (r *downRun) removeFiles() error {
	return removeVMDir(r.res, r.e.StateDir, filepath.Join(r.e.StateDir, "vms", r.name), r.dir, r.files, r.recOK)
}

// removeLog removes libvirt's own log of a domain that was vmnet's: it dies
// with it too.
func (r *downRun) removeLog() error {
	if !r.owned && !r.recOK {
		return nil
	}
	return removeQemuLog(r.res, r.e.qemuLogDir(), r.name)
}
