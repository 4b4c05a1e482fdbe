// Package virt opens libvirt connections and turns libvirt's errors into
// errors a user can act on. It is the one place that knows how vmnet reaches
// libvirtd; the network and domain packages take the *libvirt.Connect it returns.
package virt

import (
	"errors"
	"fmt"
	"os"

	"libvirt.org/go/libvirt"

	"vmnet/internal/sandbox"
)

// DefaultURI is the system QEMU driver: inside a vmnet sandbox it is the
// sandbox's own libvirtd.
const DefaultURI = "qemu:///system"

// URI returns the libvirt URI to use: $VMNET_LIBVIRT_URI, else $LIBVIRT_DEFAULT_URI, else DefaultURI.
func URI() string {
	for _, env := range []string{"VMNET_LIBVIRT_URI", "LIBVIRT_DEFAULT_URI"} {
		if u := os.Getenv(env); u != "" {
			return u
		}
	}
	return DefaultURI
}

// Connect opens a connection to libvirtd at uri ("" for URI()).
func Connect(uri string) (*libvirt.Connect, error) {
	if uri == "" {
		uri = URI()
	}
	conn, err := libvirt.NewConnect(uri)
	if err != nil {
		return nil, &UnreachableError{URI: uri, Err: err}
	}
	return conn, nil
}

// UnreachableError says libvirtd could not be reached, and how to fix it.
type UnreachableError struct {
	URI string
	Err error
}

func (e *UnreachableError) Error() string {
	msg := e.Err.Error()
	var lerr libvirt.Error
	if errors.As(e.Err, &lerr) {
		msg = lerr.Message
	}
	return fmt.Sprintf("cannot reach libvirtd at %s: %s", e.URI, msg)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// Hint tells the user how to get a libvirtd.
func (e *UnreachableError) Hint() string {
	if h := sandboxHint(); h != "" {
		return h
	}
	return "run vmnet inside a sandbox (vmnet sandbox up lab && vmnet sandbox exec lab -- vmnet ...), " +
		"or start libvirtd (virtlogd -d && libvirtd -d, or systemctl start libvirtd); 'vmnet doctor' checks this host"
}

// IsNotFound reports whether err is libvirt's "no such domain/network/..." error.
func IsNotFound(err error) bool {
	var lerr libvirt.Error
	if !errors.As(err, &lerr) {
		return false
	}
	switch lerr.Code {
	case libvirt.ERR_NO_DOMAIN, libvirt.ERR_NO_NETWORK, libvirt.ERR_NO_STORAGE_POOL, libvirt.ERR_NO_STORAGE_VOL,
		libvirt.ERR_NO_NWFILTER, libvirt.ERR_NO_SECRET, libvirt.ERR_NO_DOMAIN_SNAPSHOT, libvirt.ERR_NO_NETWORK_PORT:
		return true
	}
	return false
}

// IsCode reports whether err is a libvirt error with the given code.
func IsCode(err error, code libvirt.ErrorNumber) bool {
	var lerr libvirt.Error
	return errors.As(err, &lerr) && lerr.Code == code
}

// Message returns libvirt's own message for err, without the error-code prefix.
func Message(err error) string {
	var lerr libvirt.Error
	if errors.As(err, &lerr) {
		return lerr.Message
	}
	return err.Error()
}

// IsDaemonGone reports whether err says the connection to libvirtd is lost
// (libvirtd stopped, was killed or restarted): an error of libvirt's RPC
// layer, internal ("client socket is closed") or from the system ("Cannot
// recv data: Connection reset by peer", "End of file while reading data").
func IsDaemonGone(err error) bool {
	var lerr libvirt.Error
	if !errors.As(err, &lerr) {
		return false
	}
	return lerr.Domain == libvirt.FROM_RPC && (lerr.Code == libvirt.ERR_INTERNAL_ERROR || lerr.Code == libvirt.ERR_SYSTEM_ERROR)
}

// DaemonGoneError is a libvirt call that failed because libvirtd went away.
type DaemonGoneError struct {
	Op  string // what vmnet was doing, e.g. "list domains"; "" when Err says it
	Err error
}

func (e *DaemonGoneError) Error() string {
	if e.Op == "" {
		return "libvirtd stopped while vmnet was using it: " + e.Err.Error()
	}
	return fmt.Sprintf("%s: libvirtd stopped while vmnet was using it (%s)", e.Op, Message(e.Err))
}

func (e *DaemonGoneError) Unwrap() error { return e.Err }

// Hint tells the user how to get libvirtd back.
func (e *DaemonGoneError) Hint() string {
	if h := sandboxHint(); h != "" {
		return h
	}
	return "start libvirtd again (virtlogd -d && libvirtd -d, or systemctl start libvirtd), then run the command again; " +
		"'vmnet doctor' checks this host"
}

// sandboxHint is the way back to a libvirtd inside a vmnet sandbox ("" outside one).
func sandboxHint() string {
	name := os.Getenv(sandbox.EnvVar)
	if name == "" {
		return ""
	}
	return fmt.Sprintf("the libvirtd of sandbox %s is not running: 'vmnet sandbox up %s' repairs the sandbox "+
		"(its VMs keep running), then run the command again", name, name)
}

// OpError is a libvirt call that failed: what vmnet was doing and libvirt's
// own message. errors.As still finds the libvirt.Error.
type OpError struct {
	Op  string
	Err error
}

func (e *OpError) Error() string { return e.Op + ": " + Message(e.Err) }
func (e *OpError) Unwrap() error { return e.Err }

// Err wraps err from libvirt operation op: a *DaemonGoneError, with the way
// back, when libvirtd went away, else an *OpError. Err(op, nil) is nil.
func Err(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case IsDaemonGone(err):
		return &DaemonGoneError{Op: op, Err: err}
	}
	return &OpError{Op: op, Err: err}
}

// Classify is for the top of a command: an error that holds a lost
// connection to libvirtd, however it was wrapped, becomes a
// *DaemonGoneError; any other error comes back as it is.
func Classify(err error) error {
	var gone *DaemonGoneError
	var unreachable *UnreachableError // it never got in: it says so itself
	if err == nil || errors.As(err, &gone) || errors.As(err, &unreachable) || !IsDaemonGone(err) {
		return err
	}
	return &DaemonGoneError{Err: err}
}
