package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// partLab is two tiny nodes: first on the bridge lan alone; second on lan
// and on the NAT network side, which only it uses.
const partLab = `name: part
networks:
  lan:  {kind: bridge, address: 192.0.2.1/24}
  side: {kind: nat, cidr: 198.51.100.0/24}
nodes:
  first:
    image: tiny
    nics: [{net: lan, address: 192.0.2.11/24}]
  second:
    image: tiny
    nics:
      - {net: side}
      - {net: lan, address: 192.0.2.12/24}
`

// lab up --node first brings up first and the network it uses, not second
// nor the network only second uses, and ends with first's checks only; a
// full up then brings up the rest and leaves first unchanged.
func TestLabUpNode(t *testing.T) {
	tinyImage(t)
	s := newSandbox(t)
	file := filepath.Join(t.TempDir(), "part.lab.yaml")
	if err := os.WriteFile(file, []byte(partLab), 0o644); err != nil {
		t.Fatal(err)
	}
	up, r := labUp(t, s, file, "--node", "first")
	if r.code != 0 || len(up.Nodes) != 1 || up.Nodes[0].Node != "first" || up.Nodes[0].Outcome != "created" {
		t.Fatalf("lab up --node first: exit %d, nodes %+v; want first created alone\n%s", r.code, up.Nodes, r.stderr)
	}
	if len(up.Check.Results) == 0 {
		t.Error("lab up --node first ran no checks")
	}
	for _, res := range up.Check.Results {
		if strings.Contains(res.ID+res.Source+res.Target, "second") || !res.Pass {
			t.Errorf("check %s (%s → %s): pass %v; want only first's checks, passing", res.ID, res.Source, res.Target, res.Pass)
		}
	}
	state := sb(t, s, "sh", "-c", "virsh -c qemu:///system list --all --name; virsh -c qemu:///system net-list --all --name; ip -o link").stdout
	if !strings.Contains(state, "first") || strings.Contains(state, "second") || strings.Contains(state, "side") || !strings.Contains(state, "lan") {
		t.Errorf("after --node first, want domain first and bridge lan, no domain second and no network side:\n%s", state)
	}
	up, r = labUp(t, s, file)
	outcomes := map[string]string{}
	for _, n := range up.Nodes {
		outcomes[n.Node] = n.Outcome
	}
	if r.code != 0 || outcomes["first"] != "unchanged" || outcomes["second"] != "created" || up.Check.Failed != 0 {
		t.Errorf("full lab up after --node first: exit %d, nodes %v, %d checks failed; want first unchanged, second created, all green\n%s",
			r.code, outcomes, up.Check.Failed, r.stderr)
	}
	if !strings.Contains(strings.Join(up.Changes, " "), "side") {
		t.Errorf("full lab up made %v, want the network side among them", up.Changes)
	}
	if down := sb(t, s, vmnetBin(t), "lab", "down", "part"); down.code != 0 {
		t.Fatalf("lab down part: exit %d\n%s%s", down.code, down.stdout, down.stderr)
	}
	labResidue(t, s)
}
