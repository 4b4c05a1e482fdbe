package labrun

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"vmnet/internal/errs"
	"vmnet/internal/lab"
	"vmnet/internal/vm"
	"vmnet/internal/vmspec"
)

func office(t *testing.T) lab.Lab {
	t.Helper()
	l, err := lab.Load("../../examples/office.lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// --node picks nodes in lab order; an unknown one is invalid input (exit 2)
// naming the flag and the lab's nodes.
func TestSelectSpecs(t *testing.T) {
	l := office(t)
	specs, err := selectSpecs(l, []string{"client"})
	if err != nil || len(specs) != 1 || specs[0].Name != "client" {
		t.Fatalf("--node client: %v, %v", specs, err)
	}
	all, err := selectSpecs(l, nil)
	if err != nil || len(all) != 2 || all[0].Name != "web" {
		t.Fatalf("all nodes: %v, %v", all, err)
	}
	_, err = selectSpecs(l, []string{"db"})
	var fe *errs.FieldError
	if !errors.Is(err, errs.ErrInvalid) || !errors.As(err, &fe) || fe.Field != "--node" || !strings.Contains(fe.Hint(), "web, client") {
		t.Errorf("--node db: %v", err)
	}
}

// Only the networks a selected node uses are made: --node client needs lan
// and back, not nat0.
func TestUsedNetworks(t *testing.T) {
	l := office(t)
	specs, _ := selectSpecs(l, []string{"client"})
	var nets []string
	for _, n := range used(l.Requires().Networks, specs, func(n vmNet) string { return n.Name }) {
		nets = append(nets, n.Name)
	}
	var brs []string
	for _, b := range used(l.Requires().Bridges, specs, func(b vmBridge) string { return b.Name }) {
		brs = append(brs, b.Name)
	}
	if strings.Join(nets, ",") != "back" || strings.Join(brs, ",") != "lan" {
		t.Errorf("client uses networks %v and bridges %v, want back and lan", nets, brs)
	}
}

// The lab's outcome: created when every node was, unchanged only when
// nothing changed anywhere.
func TestOutcome(t *testing.T) {
	node := func(o string) NodeResult { return NodeResult{UpResult: &vm.UpResult{Outcome: o}} }
	for _, tc := range []struct {
		changes []string
		nodes   []NodeResult
		want    string
	}{
		{[]string{"create bridge lan"}, []NodeResult{node("created"), node("created")}, "created"},
		{nil, []NodeResult{node("unchanged"), node("unchanged")}, "unchanged"},
		{[]string{"create bridge lan"}, []NodeResult{node("unchanged")}, "changed"},
		{nil, []NodeResult{node("created"), node("unchanged")}, "changed"},
		{nil, []NodeResult{node("started")}, "changed"},
	} {
		if got := outcome(&UpResult{Changes: tc.changes, Nodes: tc.nodes}); got != tc.want {
			t.Errorf("changes %v, nodes %v: %s, want %s", tc.changes, tc.nodes, got, tc.want)
		}
	}
}

// Concurrent nodes' progress comes out in whole lines, each with its
// node's name; a partial line waits for its end.
func TestPrefixedLines(t *testing.T) {
	var b bytes.Buffer
	l := &lineWriter{w: &b}
	web, client := l.prefixed("web: "), l.prefixed("client: ")
	web.Write([]byte("boot"))
	client.Write([]byte("ready\n"))
	web.Write([]byte("ing\nready\n"))
	if got, want := b.String(), "client: ready\nweb: booting\nweb: ready\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if (&lineWriter{}).prefixed("x") != nil {
		t.Error("no progress writer should give a nil writer")
	}
}

type (
	vmNet    = vmspec.NetworkReq
	vmBridge = vmspec.BridgeReq
)

// inspect lists a node's containers as the lab plans them: each mode, the
// network it sits on, the address vmnet gives it and its ports.
func TestContainerInfos(t *testing.T) {
	l, err := lab.LoadRef("modes")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]ContainerInfo{}
	for _, c := range containerInfos(l, "modes") {
		got[c.Name] = c
	}
	for name, want := range map[string]ContainerInfo{
		"lanapi":   {Name: "lanapi", Mode: "macvlan", Network: "br0", Address: "192.0.2.50"},
		"hostnet":  {Name: "hostnet", Mode: "host", Network: "host"},
		"isolated": {Name: "isolated", Mode: "none", Network: "none"},
	} {
		g := got[name]
		if g.Name != want.Name || g.Mode != want.Mode || g.Network != want.Network || g.Address != want.Address {
			t.Errorf("%s: %+v, want %+v", name, g, want)
		}
	}
	if app := got["app"]; app.Mode != "pod" || app.Network != "pod duo" || app.Address == "" || len(app.Ports) != 1 {
		t.Errorf("app (a pod member): %+v", app)
	}
	if web := got["web"]; web.Network != "front" || !strings.HasPrefix(web.Address, "10.89.1.") {
		t.Errorf("web (on container-network front): %+v", web)
	}
	if len(got) != 10 {
		t.Errorf("%d containers, want the modes lab's 10", len(got))
	}
}

// TestAtOnce: every node's run happens, each with its name on its progress
// lines; a failing or panicking run is reported under its node.
func TestAtOnce(t *testing.T) {
	var buf bytes.Buffer
	ran := make([]bool, 3)
	failed := atOnce(vm.Env{Progress: &buf}, []string{"a", "b", "c"}, "test", func(i int, ne vm.Env) error {
		ran[i] = true
		fmt.Fprintf(ne.Progress, "step %d\n", i)
		switch i {
		case 1:
			return errors.New("b broke")
		case 2:
			panic("c panicked")
		}
		return nil
	})
	if !ran[0] || !ran[1] || !ran[2] {
		t.Errorf("ran %v, want every node", ran)
	}
	if len(failed) != 2 || failed["b"] == nil || failed["c"] == nil || failed["a"] != nil {
		t.Errorf("failed %v, want b and c", failed)
	}
	for _, want := range []string{"a: step 0\n", "b: step 1\n", "c: step 2\n"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("progress %q lacks %q", buf.String(), want)
		}
	}
}
