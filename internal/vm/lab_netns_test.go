package vm

import (
	"context"
	"net/netip"
	"os"
	"testing"

	"vmnet/internal/bridge"
	"vmnet/internal/nsdo"
	"vmnet/internal/vmspec"
)

// The bridge a lab's VM requires is made with the lab's tag, in a
// throwaway network namespace.
func TestEnsureRequiredBridgeLab(t *testing.T) {
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
	e := Env{Conn: newFake(""), Bridges: h, HostID: "t", StateDir: t.TempDir()}
	spec := vmspec.Spec{Name: "web", Lab: "office",
		Requires: vmspec.Requires{Bridges: []vmspec.BridgeReq{{Name: "br0", Address: netip.MustParsePrefix("192.0.2.1/24")}}}}
	var u undoList
	if err := ensureRequired(context.Background(), e, spec, &UpResult{}, &u); err != nil {
		t.Fatal(err)
	}
	st, err := bridge.Inspect(h, "br0")
	if err != nil || !st.Managed || st.Lab != "office" {
		t.Fatalf("br0: %+v, %v; want vmnet's, of lab office", st, err)
	}
}
