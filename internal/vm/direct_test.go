package vm

import (
	"errors"
	"os"
	"testing"

	"vmnet/internal/bridge"
	"vmnet/internal/errs"
	"vmnet/internal/nsdo"
	"vmnet/internal/vmspec"
)

// In a throwaway namespace with only lo: a direct NIC on lo passes, one on
// a missing parent is invalid input naming its field.
func TestCheckParents(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	ns, err := nsdo.New()
	if err != nil {
		t.Fatalf("create network namespace: %v", err)
	}
	h, err := bridge.Open(ns)
	ns.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	e := Env{Bridges: h}
	spec := vmspec.Spec{Name: "a", NICs: []vmspec.NIC{{Direct: vmspec.Direct{Parent: "lo"}}, {Bridge: "br0"}}}
	if err := checkParents(e, spec); err != nil {
		t.Errorf("parent lo: %v", err)
	}
	spec.NICs = append(spec.NICs, vmspec.NIC{Direct: vmspec.Direct{Parent: "mv0"}})
	err = checkParents(e, spec)
	var fe *errs.FieldError
	if !errors.Is(err, errs.ErrInvalid) || !errors.As(err, &fe) || fe.Field != "nics[2].direct.parent" {
		t.Errorf("missing parent mv0: %v", err)
	}
}
