package virt

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"libvirt.org/go/libvirt"

	"vmnet/internal/sandbox"
)

var (
	socketClosed = libvirt.Error{Code: libvirt.ERR_INTERNAL_ERROR, Domain: libvirt.FROM_RPC, Message: "internal error: client socket is closed"}
	recvFailed   = libvirt.Error{Code: libvirt.ERR_SYSTEM_ERROR, Domain: libvirt.FROM_RPC, Message: "Cannot recv data: Connection reset by peer"}
	qemuInternal = libvirt.Error{Code: libvirt.ERR_INTERNAL_ERROR, Domain: libvirt.FROM_QEMU, Message: "internal error: process exited while connecting to monitor"}
	noDomain     = libvirt.Error{Code: libvirt.ERR_NO_DOMAIN, Domain: libvirt.FROM_QEMU, Message: "Domain not found"}
	rpcOther     = libvirt.Error{Code: libvirt.ERR_RPC, Domain: libvirt.FROM_RPC, Message: "packet too large"}
)

func TestIsDaemonGone(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{socketClosed, true},
		{recvFailed, true},
		{fmt.Errorf("look up network %q: %w", "nat0", socketClosed), true},
		{qemuInternal, false},
		{noDomain, false},
		{rpcOther, false},
		{errors.New("internal error: client socket is closed"), false}, // a string is not a code
		{nil, false},
	} {
		if got := IsDaemonGone(c.err); got != c.want {
			t.Errorf("IsDaemonGone(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestErrAndClassify(t *testing.T) {
	t.Setenv(sandbox.EnvVar, "")
	err := Err("list domains", socketClosed)
	var gone *DaemonGoneError
	if !errors.As(err, &gone) {
		t.Fatalf("Err of a closed socket = %#v, want a DaemonGoneError", err)
	}
	if want := "list domains: libvirtd stopped while vmnet was using it (internal error: client socket is closed)"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err, want)
	}
	if !strings.Contains(gone.Hint(), "start libvirtd") {
		t.Errorf("hint outside a sandbox: %q", gone.Hint())
	}
	t.Setenv(sandbox.EnvVar, "lab")
	if h := gone.Hint(); !strings.Contains(h, "'vmnet sandbox up lab'") {
		t.Errorf("hint in sandbox lab: %q", h)
	}
	if !IsCode(err, libvirt.ERR_INTERNAL_ERROR) {
		t.Errorf("the libvirt error is lost in %#v", err)
	}

	other := Err("start \"web\"", qemuInternal)
	if errors.As(other, &gone) || other.Error() != `start "web": internal error: process exited while connecting to monitor` {
		t.Errorf("Err of another error = %#v (%q)", other, other)
	}
	if Err("x", nil) != nil {
		t.Error("Err(op, nil) is not nil")
	}

	// At the top: an error wrapped anywhere on the way is found by its code.
	deep := fmt.Errorf("network nat0 that tiny needs: %w", fmt.Errorf("define network %q: %w", "nat0", recvFailed))
	if c := Classify(deep); !errors.As(c, &gone) || !strings.Contains(c.Error(), "libvirtd stopped") || !strings.Contains(c.Error(), "nat0") {
		t.Errorf("Classify(%v) = %v", deep, c)
	}
	if c := Classify(err); c != err {
		t.Errorf("Classify wrapped a DaemonGoneError again: %v", c)
	}
	unreachable := &UnreachableError{URI: DefaultURI, Err: recvFailed}
	if c := Classify(unreachable); c != unreachable {
		t.Errorf("Classify wrapped an UnreachableError: %v", c)
	}
	if h := unreachable.Hint(); !strings.Contains(h, "'vmnet sandbox up lab'") {
		t.Errorf("UnreachableError's hint in sandbox lab: %q", h)
	}
	if c := Classify(other); c != other {
		t.Errorf("Classify changed another error: %v", c)
	}
}
