package vm

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"vmnet/internal/agent"
	"vmnet/internal/domain"
	"vmnet/internal/errs"
	"vmnet/internal/fsperm"
	"vmnet/internal/virt"
	"vmnet/internal/vmspec"
)

// SaveResult says what Save did.
type SaveResult struct {
	Name    string  `json:"name"`
	Outcome string  `json:"outcome"` // saved, unchanged (saved before)
	Seconds float64 `json:"seconds"`
}

// Save stops the running VM name with its memory kept in libvirt's managed
// save image, so that Restore brings it back where it was. A VM saved
// already is left as it is.
func Save(ctx context.Context, e Env, name string) (*SaveResult, error) {
	start := time.Now()
	dom, err := ownedDomain(e, name)
	if err != nil {
		return nil, err
	}
	defer dom.Free()
	res := &SaveResult{Name: name, Outcome: "saved"}
	active, err := dom.IsActive()
	if err != nil {
		return nil, virt.Err(fmt.Sprintf("read state of %q", name), err)
	}
	if !active {
		if saved, err := dom.HasManagedSave(); err != nil {
			return nil, virt.Err(fmt.Sprintf("look for the save image of %q", name), err)
		} else if !saved {
			return nil, errs.WithHint(fmt.Errorf("VM %q is not running: there is nothing to save", name),
				"bring it up first ('vmnet lab up'), then save it")
		}
		res.Outcome = "unchanged"
		return res, nil
	}
	e.say("save %s (its memory goes to libvirt's managed save image)", name)
	if err := dom.ManagedSave(); err != nil {
		return nil, virt.Err(fmt.Sprintf("save %q", name), err)
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// ownedDomain looks up vmnet's domain name; the caller frees it.
func ownedDomain(e Env, name string) (Domain, error) {
	dom, err := e.Conn.LookupDomain(name)
	if virt.IsNotFound(err) {
		return nil, errs.WithHint(fmt.Errorf("VM %q does not exist", name), "bring the lab up first ('vmnet lab up')")
	} else if err != nil {
		return nil, virt.Err(fmt.Sprintf("look up domain %q", name), err)
	}
	if _, owned, err := metadata(dom); err != nil || !owned {
		dom.Free()
		if err != nil {
			return nil, err
		}
		return nil, Foreign(name)
	}
	return dom, nil
}

// Restore starts the saved VM of spec from its managed save image and
// makes it fit to use again: its clock set through the guest agent, each of
// its secrets replaced by a new one (in the guest in place, so containers
// that bind-mount a secret file see the new one), and the spec's restore
// commands run. A VM saved from another spec (addresses, MACs or resources
// changed since) is refused before anything changes.
func Restore(ctx context.Context, e Env, spec vmspec.Spec) (*UpResult, error) {
	res := &UpResult{Name: spec.Name, Accel: e.Accel, Outcome: "restored"}
	img, err := e.Image(ctx, spec)
	if err != nil {
		return res, err
	}
	plan, err := domain.NewPlan(spec, img, e.Accel, e.StateDir)
	if err != nil {
		return res, err
	}
	dom, err := savedDomain(e, plan)
	if err != nil {
		return res, err
	}
	defer dom.Free()
	start := time.Now()
	e.say("restore %s from its saved state (%s)", spec.Name, e.Accel.Type)
	if err := dom.Create(); err != nil {
		return res, &StepError{Op: "restore", Step: "start", Err: virt.Err(fmt.Sprintf("restore %q", spec.Name), err)}
	}
	res.Changes = append(res.Changes, "restore "+spec.Name)
	if err := waitReady(ctx, e, dom, plan); err != nil {
		return res, &StepError{Op: "restore", Step: "wait ready", Err: err}
	}
	res.Ready = time.Since(start)
	res.Phases = append(res.Phases, Phase{Name: "restore to " + readyName(plan), Seconds: res.Ready.Seconds()})
	if err := refresh(ctx, e, dom, plan.Dir, spec, res); err != nil {
		return res, &StepError{Op: "restore", Step: "refresh", Err: err}
	}
	res.NICs, err = nicInfo(e.Conn, plan.Dir)
	return res, err
}

// savedDomain finds the domain of plan: vmnet's, from the same spec, shut
// off with a managed save image.
func savedDomain(e Env, plan domain.Plan) (Domain, error) {
	dom, err := ownedDomain(e, plan.Name)
	if err != nil {
		return nil, err
	}
	refuse := func(err error) (Domain, error) { dom.Free(); return nil, err }
	meta, _, err := metadata(dom)
	if err != nil {
		return refuse(err)
	}
	if meta.Hash != plan.SpecHash {
		return refuse(errs.WithHint(fmt.Errorf("VM %q was saved from another spec: its addresses, MACs, image or resources changed since the save", plan.Name),
			"restore the lab as it was saved, or bring the changed lab up anew: 'vmnet lab down LAB', then 'vmnet lab up' without --from-save"))
	}
	if active, err := dom.IsActive(); err != nil {
		return refuse(virt.Err(fmt.Sprintf("read state of %q", plan.Name), err))
	} else if active {
		return refuse(errs.WithHint(fmt.Errorf("VM %q is running: it was not saved, or was restored already", plan.Name),
			"save it first with 'vmnet lab save LAB', or use it as it is ('vmnet lab check LAB')"))
	}
	if saved, err := dom.HasManagedSave(); err != nil {
		return refuse(virt.Err(fmt.Sprintf("look for the save image of %q", plan.Name), err))
	} else if !saved {
		return refuse(errs.WithHint(fmt.Errorf("VM %q has no saved state", plan.Name),
			"save the running lab with 'vmnet lab save LAB', or start it afresh with 'vmnet lab up LAB'"))
	}
	return dom, nil
}

// refresh makes a restored guest fit to use: the clock it stopped with is
// set to now, each secret file gets a new secret (on the host in the VM's
// 0700 secrets directory, in the guest written in place: same file, same
// mode), and the spec's restore commands make the guest take them.
func refresh(ctx context.Context, e Env, dom Domain, dir string, spec vmspec.Spec, res *UpResult) error {
	start := time.Now()
	if err := agent.New(dom).SetTime(time.Now()); err != nil {
		return fmt.Errorf("set the guest's clock: %w", err)
	}
	res.Changes = append(res.Changes, "set the guest's clock")
	for _, f := range spec.Provision.Files {
		if f.Secret == "" {
			continue
		}
		if err := rotateSecret(ctx, dom, dir, f); err != nil {
			return fmt.Errorf("new secret %s: %w", f.Secret, err)
		}
		res.Changes = append(res.Changes, "rotate secret "+f.Secret)
	}
	if err := runCommands(ctx, e, dom, spec, spec.Provision.Restore, res); err != nil {
		return err
	}
	res.Phases = append(res.Phases, Phase{Name: "refresh (clock, secrets, restore commands)", Seconds: time.Since(start).Seconds()})
	return nil
}

// rotateSecret gives the secret file f a new random secret: first whole in
// a 0600 file beside it in the guest, then copied over f in place (same
// file, same mode: a container's read-only bind mount of it sees the new
// text) and the copy removed, and only then kept on the host (atomically,
// 0600). A guest step that fails leaves host and guest with the old one.
// The secret is never in a command line: it is the one guest command's
// standard input (under TCG each agent command costs the restore time).
func rotateSecret(ctx context.Context, dom Domain, dir string, f vmspec.File) error {
	if _, err := secret(dir, f.Secret); err != nil { // the 0700 directory
		return err
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	s := []byte(base64.RawURLEncoding.EncodeToString(raw))
	r, err := agent.New(dom).ExecInput(ctx, []string{"/bin/sh", "-c", rotateScript, "sh", f.Path + ".vmnet-next", f.Path}, s, time.Minute)
	if err != nil {
		return err
	}
	if r.Code() != 0 {
		return fmt.Errorf("writing the new secret in the guest exited %d: %s", r.Code(), strings.TrimSpace(string(r.Stdout)+string(r.Stderr)))
	}
	return fsperm.WriteFileAtomic(secretPath(dir, f.Secret), s, 0o600)
}

// rotateScript NEXT FILE: standard input whole into NEXT (0600), then NEXT
// copied over FILE in place; NEXT is gone either way.
const rotateScript = `rm -f "$1" && umask 077 && cat >"$1" && cat "$1" >"$2"; rc=$?; rm -f "$1"; exit $rc`
