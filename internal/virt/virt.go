// Package virt opens libvirt connections and turns libvirt's errors into
// errors a user can act on. It is the one place that knows how vmnet reaches
// libvirtd; the network and domain packages take the *libvirt.Connect it returns.
package virt

import (
	"errors"
	"fmt"
	"os"

	"libvirt.org/go/libvirt"
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
