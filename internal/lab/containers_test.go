package lab

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"vmnet/internal/errs"
	"vmnet/templates"
)

// modesYAML is the built-in modes lab's file.
func modesYAML(t *testing.T) string {
	t.Helper()
	b, err := templates.Lab("modes")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestModesLabParses(t *testing.T) {
	l, err := Parse([]byte(modesYAML(t)), "modes.lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	n := l.Nodes["modes"]
	modes := map[string]string{}
	for _, name := range n.ContainerNames() {
		modes[name] = n.Containers[name].Mode()
	}
	want := map[string]string{"web": ModeBridge, "plain": ModePodman, "hostnet": ModeHost, "isolated": ModeNone,
		"lanapi": ModeMacvlan, "natipv": ModeIPvlan, "app": ModePod, "sidecar": ModePod}
	for name, m := range want {
		if modes[name] != m {
			t.Errorf("%s: mode %q, want %q", name, modes[name], m)
		}
	}
	addrs := l.ContainerAddrs("modes")
	for name, a := range map[string]string{"web": "10.89.1.205", "plain": "10.88.143.238", "lanapi": "192.0.2.50"} {
		if addrs[name] != netip.MustParseAddr(a) {
			t.Errorf("%s: address %s, want %s", name, addrs[name], a)
		}
	}
	if _, ok := addrs["hostnet"]; ok {
		t.Errorf("a host-mode container has an address of its own: %v", addrs)
	}
	s, err := l.Spec("modes")
	if err != nil || !s.Ready.Agent {
		t.Errorf("a node with containers must wait for its guest agent: ready %v, err %v", s.Ready, err)
	}
}

// TestContainerValidation: every mistake is refused with the file's line,
// the field path and a fix.
func TestContainerValidation(t *testing.T) {
	cases := []struct{ name, old, new, want, fix string }{
		{"tiny image", "image: capstone", "image: tiny",
			`modes.lab.yaml:30: nodes.modes.image: "tiny" has no container rootfs built in`, "use image: capstone"},
		{"unknown network", "{network: front, listen: 80", "{network: frnot, listen: 80",
			`modes.lab.yaml:40: nodes.modes.containers.web.network: "frnot" is not a container network of node modes (did you mean front?)`, "declare it under container-networks"},
		{"pod and network", "{pod: duo}", "{pod: duo, network: podman}",
			`nodes.modes.containers.sidecar.pod: "duo" is set together with network`, "leave network out"},
		{"parent not a NIC", "parent: br0", "parent: lan",
			`nodes.modes.containers.lanapi.parent: "lan" is not the network of one of node modes's NICs`, "use one of: br0, l3br, nat0"},
		{"parent missing", "parent: br0, ", "",
			`nodes.modes.containers.lanapi.parent is missing`, "br0, l3br, nat0"},
		{"macvlan address outside", "192.0.2.50/24", "10.0.0.5/24",
			`nodes.modes.containers.lanapi.address: "10.0.0.5/24" is not in network br0's subnet 192.0.2.0/24`, "192.0.2."},
		{"macvlan address is the VM's", "192.0.2.50/24", "192.0.2.10/24",
			`nodes.modes.containers.lanapi.address: "192.0.2.10/24" is already in use: node modes's eth1`, "use a free address"},
		{"macvlan address is the host's", "192.0.2.50/24", "192.0.2.1/24",
			`is already in use: the host's address on network br0`, "use a free address"},
		{"macvlan without address", ", address: 192.0.2.50/24", "",
			`modes.lab.yaml:44: nodes.modes.containers.lanapi.address is missing: a macvlan container needs a static address on br0`, "192.0.2."},
		{"bad port", `["8081:80"]`, `["8081:80x"]`,
			`modes.lab.yaml:40: nodes.modes.containers.web.ports[0]: "8081:80x" is not HOSTPORT:CONTAINERPORT`, `"8081:80"`},
		{"port twice", `["8082:8000"]`, `["8081:8000"]`,
			`nodes.modes.containers.web.ports[0]: "8081" is the VM's port 8081 a second time (first: container app's ports)`, "its own VM port"},
		{"port clashes with host listen", `["8082:8000"]`, `["8090:8000"]`,
			`nodes.modes.containers.hostnet.listen: "8090" is the VM's port 8090 a second time`, "its own VM port"},
		{"ports on host", "{network: host, listen: 8090}", `{network: host, listen: 8090, ports: ["80"]}`,
			`nodes.modes.containers.hostnet.ports: "80" publishes nothing with network host`, "listen is the VM's port"},
		{"address on none", "{network: none}", "{network: none, address: 10.88.0.9/16}",
			`nodes.modes.containers.isolated.address: "10.88.0.9/16" is set on a container with network none`, "leave address out"},
		{"bridge address outside", "{network: podman, listen: 80}", "{network: podman, address: 10.89.1.7/24}",
			`nodes.modes.containers.plain.address: "10.89.1.7/24" is not in container network podman's subnet 10.88.0.0/16`, "10.88."},
		{"bridge address is the gateway", "{network: front, listen: 80", "{network: front, address: 10.89.1.1/24, listen: 80",
			`is already in use: podman's gateway on that network`, "use a free address"},
		{"subnet overlaps lab", "subnet: 10.89.1.0/24", "subnet: 192.0.2.0/25",
			`nodes.modes.container-networks.front.subnet: "192.0.2.0/25" overlaps lab network br0's subnet 192.0.2.0/24`, "its own subnet"},
		{"subnet overlaps podman", "subnet: 10.89.1.0/24", "subnet: 10.88.5.0/24",
			`overlaps podman's default network's subnet 10.88.0.0/16`, "its own subnet"},
		{"bad driver", "driver: bridge", "driver: ipvlan",
			`nodes.modes.container-networks.front.driver: "ipvlan" is not a container network driver`, "driver: bridge"},
		{"reserved network name", "front: {driver", "host: {driver",
			`nodes.modes.container-networks.host: "host" is a reserved network name`, "host1"},
		{"unknown key", "{network: none}", "{network: none, lisen: 80}",
			`lisen`, ""},
		{"ipvlan l3 without a static parent address", "mode: l2", "mode: l3",
			`modes.lab.yaml:45: nodes.modes.containers.natipv.parent: "nat0" is node modes's eth0, which has no static address: an ipvlan l3 child answers no ARP`, "give node modes's NIC on nat0 an address"},
		{"ipvlan mode unknown", "mode: l2", "mode: l4",
			`nodes.modes.containers.natipv.mode: "l4" is not an ipvlan mode`, "mode: l3 (routed via the parent)"},
		{"ipvlan modes mixed on a parent", "{network: none}", "{network: ipvlan, mode: l3, parent: nat0, address: 198.51.100.61/24}",
			`nodes.modes.containers.isolated.mode: "l3" differs from container natipv's on the same parent nat0: the kernel keeps one ipvlan mode per parent NIC`, "a parent of its own"},
		{"ipvlan beside macvlan", "parent: nat0, address: 198.51.100.60/24", "parent: br0, address: 192.0.2.60/24",
			`nodes.modes.containers.lanapi.parent: "br0" is the parent of both macvlan and ipvlan containers`, "a parent of their own"},
		{"ipvlan in the DHCP pool", "198.51.100.60/24", "198.51.100.200/24",
			`nodes.modes.containers.natipv.address: "198.51.100.200/24" is inside network nat0's DHCP pool`, "198.51.100."},
		{"mode without ipvlan", "{network: none}", "{network: none, mode: l2}",
			`nodes.modes.containers.isolated.mode: "l2" is set on a container whose network is not ipvlan`, "leave mode out"},
		{"restart not a policy", "{network: podman, listen: 80}", "{network: podman, listen: 80, restart: allways}",
			`modes.lab.yaml:41: nodes.modes.containers.plain.restart: "allways" is not a podman restart policy (did you mean always?)`, "on-failure, always, unless-stopped, on-failure:N"},
		{"restart count 0", "{network: podman, listen: 80}", "{network: podman, listen: 80, restart: \"on-failure:0\"}",
			`nodes.modes.containers.plain.restart: "on-failure:0" is not on-failure:N with N a count of restarts from 1`, "on-failure:3"},
		{"restart count word", "{network: podman, listen: 80}", "{network: podman, listen: 80, restart: \"always:3\"}",
			`nodes.modes.containers.plain.restart: "always:3" is not a podman restart policy`, "on-failure:N"},
		{"restart on ipvlan", "mode: l2,", "mode: l2, restart: always,",
			`modes.lab.yaml:45: nodes.modes.containers.natipv.restart: "always" is set on an ipvlan container: vmnet gives it its link after it starts`, "leave restart out"},
		{"health without cmd", "{network: none}", "{network: none, health: {interval: 5s}}",
			`modes.lab.yaml:43: nodes.modes.containers.isolated.health.cmd is missing: a health check is a command`, "urllib"},
		{"health interval too short", "{network: none}", "{network: none, health: {cmd: \"true\", interval: 500ms}}",
			`nodes.modes.containers.isolated.health.interval: "500ms" is not a duration of at least 1s`, "interval: 30s"},
		{"health timeout not a duration", "{network: none}", "{network: none, health: {cmd: \"true\", timeout: soon}}",
			`nodes.modes.containers.isolated.health.timeout: "soon" is not a duration of at least 1s`, "timeout: 30s"},
		{"health start-period negative", "{network: none}", "{network: none, health: {cmd: \"true\", start-period: -5s}}",
			`nodes.modes.containers.isolated.health.start-period: "-5s" is not a duration of at least 0s`, "start-period: 30s"},
		{"health retries negative", "{network: none}", "{network: none, health: {cmd: \"true\", retries: -1}}",
			`nodes.modes.containers.isolated.health.retries: "-1" is not a count of failures`, "retries: 3"},
		{"health unknown key", "{network: none}", "{network: none, health: {cmd: \"true\", intervall: 5s}}",
			`intervall`, ""},
		{"image not a reference", "{network: podman, listen: 80}", "{network: podman, listen: 80, image: \"Docker.io/Nginx Latest\"}",
			`modes.lab.yaml:41: nodes.modes.containers.plain.image: "Docker.io/Nginx Latest" is not a registry reference`, "192.0.2.1:5000/web:1"},
		{"insecure without image", "{network: none}", "{network: none, insecure: true}",
			`nodes.modes.containers.isolated.insecure: "true" is set on a container without image`, "leave insecure out"},
		{"check to unknown container", "to: modes/lanapi, http: 80", "to: modes/lanpai, http: 80",
			`checks[2].to: "modes/lanpai" is not a container of node modes (did you mean lanapi?)`, "modes/app, modes/hostnet"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := modesYAML(t)
			if !strings.Contains(s, tc.old) {
				t.Fatalf("the modes lab has no %q", tc.old)
			}
			_, err := Parse([]byte(strings.Replace(s, tc.old, tc.new, 1)), "modes.lab.yaml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error:\n  %v\nwant a part:\n  %s", err, tc.want)
			}
			if !errors.Is(err, errs.ErrInvalid) {
				t.Errorf("%v is not ErrInvalid (exit 2)", err)
			}
			var h errs.Hinted
			if tc.fix != "" && (!errors.As(err, &h) || !strings.Contains(h.Hint(), tc.fix)) {
				t.Errorf("hint %q, want a part %q", h.Hint(), tc.fix)
			}
		})
	}
}

// capmacYAML is the built-in capstone-macvlan lab's file.
func capmacYAML(t *testing.T) string {
	t.Helper()
	b, err := templates.Lab("capstone-macvlan")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCapstoneMacvlanParses: the api entry attaches the app's api (it is
// no container of the node's own), with its macvlan address planned.
func TestCapstoneMacvlanParses(t *testing.T) {
	l, err := Parse([]byte(capmacYAML(t)), "capstone-macvlan.lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	n := l.Nodes["capstone"]
	if got := n.AppAttachments(); len(got) != 1 || got[0] != "api" {
		t.Errorf("app attachments %v, want [api]", got)
	}
	if got := strings.Join(n.AllContainers(), ","); got != "db,api,proxy" {
		t.Errorf("containers a check may name: %s, want db,api,proxy (api once)", got)
	}
	if a := l.ContainerAddrs("capstone")["api"]; a != netip.MustParseAddr("192.0.2.60") {
		t.Errorf("api's macvlan address %s, want 192.0.2.60", a)
	}
	if n.IsAppContainer("web") || !n.IsAppContainer("db") {
		t.Errorf("IsAppContainer: web %v, db %v", n.IsAppContainer("web"), n.IsAppContainer("db"))
	}
	s, err := l.Spec("capstone")
	if err != nil || !s.Ready.Agent || len(s.Provision.Commands) == 0 {
		t.Errorf("the node keeps the capstone app's provisioning: ready %v, %d commands, err %v", s.Ready, len(s.Provision.Commands), err)
	}
}

// TestAppAttachmentValidation: an entry naming an app container is
// refused, with the field and the fix, unless it is an attachable
// container's macvlan attachment and nothing more.
func TestAppAttachmentValidation(t *testing.T) {
	const entry = "api: {network: macvlan, parent: br0, address: 192.0.2.60/24}"
	cases := []struct{ name, new, want, fix string }{
		{"db is not attachable", "db: {network: macvlan, parent: br0, address: 192.0.2.60/24}",
			`capstone-macvlan.lab.yaml:36: nodes.capstone.containers.db: "db" is app capstone's own container db, which keeps the app's network alone: only api can gain`, "leave db out of containers"},
		{"not macvlan", "api: {network: podman}",
			`nodes.capstone.containers.api.network: "podman" is not macvlan: app capstone's container api keeps app-net`, "use network: macvlan with parent"},
		{"ipvlan", "api: {network: ipvlan, parent: br0, address: 192.0.2.60/24}",
			`nodes.capstone.containers.api.network: "ipvlan" is not macvlan`, "use network: macvlan"},
		{"network missing", "api: {parent: br0, address: 192.0.2.60/24}",
			`nodes.capstone.containers.api.network is missing: app capstone's container api`, "use network: macvlan"},
		{"listen", "api: {network: macvlan, parent: br0, address: 192.0.2.60/24, listen: 80}",
			`nodes.capstone.containers.api.listen is set on app capstone's container api, which the app starts itself`, "leave listen out"},
		{"command", "api: {network: macvlan, parent: br0, address: 192.0.2.60/24, command: sleep 1}",
			`nodes.capstone.containers.api.command is set on app capstone's container api`, "leave command out"},
		{"ports", `api: {network: macvlan, parent: br0, address: 192.0.2.60/24, ports: ["5000"]}`,
			`nodes.capstone.containers.api.ports is set on app capstone's container api`, "leave ports out"},
		{"pod", "api: {network: macvlan, parent: br0, address: 192.0.2.60/24, pod: p1}",
			`nodes.capstone.containers.api.pod is set on app capstone's container api`, "leave pod out"},
		{"restart", "api: {network: macvlan, parent: br0, address: 192.0.2.60/24, restart: always}",
			`nodes.capstone.containers.api.restart is set on app capstone's container api`, "leave restart out"},
		{"health", "api: {network: macvlan, parent: br0, address: 192.0.2.60/24, health: {cmd: \"true\"}}",
			`nodes.capstone.containers.api.health is set on app capstone's container api`, "leave health out"},
		{"image", "api: {network: macvlan, parent: br0, address: 192.0.2.60/24, image: nginx}",
			`nodes.capstone.containers.api.image is set on app capstone's container api`, "leave image out"},
		{"parent not a NIC", "api: {network: macvlan, parent: nat1, address: 192.0.2.60/24}",
			`nodes.capstone.containers.api.parent: "nat1" is not the network of one of node capstone's NICs (did you mean nat0?)`, "use one of: br0, nat0"},
		{"address missing", "api: {network: macvlan, parent: br0}",
			`nodes.capstone.containers.api.address is missing: a macvlan container needs a static address on br0`, "192.0.2."},
		{"address is the VM's", "api: {network: macvlan, parent: br0, address: 192.0.2.10/24}",
			`nodes.capstone.containers.api.address: "192.0.2.10/24" is already in use: node capstone's eth1`, "use a free address"},
		{"address outside", "api: {network: macvlan, parent: br0, address: 10.0.0.60/24}",
			`"10.0.0.60/24" is not in network br0's subnet 192.0.2.0/24`, "192.0.2."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := capmacYAML(t)
			if !strings.Contains(s, entry) {
				t.Fatalf("the capstone-macvlan lab has no %q", entry)
			}
			_, err := Parse([]byte(strings.Replace(s, entry, tc.new, 1)), "capstone-macvlan.lab.yaml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error:\n  %v\nwant a part:\n  %s", err, tc.want)
			}
			if !errors.Is(err, errs.ErrInvalid) {
				t.Errorf("%v is not ErrInvalid (exit 2)", err)
			}
			var h errs.Hinted
			if !errors.As(err, &h) || !strings.Contains(h.Hint(), tc.fix) {
				t.Errorf("hint %q, want a part %q", h.Hint(), tc.fix)
			}
		})
	}
	// Without the app, api is an ordinary container name.
	s := strings.Replace(strings.Replace(capmacYAML(t), "    app: capstone\n", "", 1), entry, "api: {network: podman, listen: 80}", 1)
	if l, err := Parse([]byte(s), "x.lab.yaml"); err != nil || l.Nodes["capstone"].IsAppContainer("api") {
		t.Errorf("api on a node without an app: %v", err)
	}
}

// TestIPvlanL3Routes: an l3 container on a NIC with a static address
// parses, and its host route is its address via that NIC's; l2 ones and
// other modes need none. The modes lab's routed is l3 on l3br; natipv
// turned l3 (with nat0 given a static address) adds its own.
func TestIPvlanL3Routes(t *testing.T) {
	routed := L3Route{Node: "modes", Container: "routed", Dst: netip.MustParsePrefix("198.19.0.60/32"), Via: netip.MustParseAddr("198.19.0.10")}
	if got := mustParse(t, modesYAML(t)).L3Routes("modes"); len(got) != 1 || got[0] != routed {
		t.Errorf("the modes lab's l3 routes: %v, want only %v (natipv is l2)", got, routed)
	}
	s := strings.Replace(strings.Replace(modesYAML(t), "mode: l2", "mode: l3", 1), "- {net: nat0}", "- {net: nat0, address: 198.51.100.10/24}", 1)
	l, err := Parse([]byte(s), "modes.lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []L3Route{{Node: "modes", Container: "natipv", Dst: netip.MustParsePrefix("198.51.100.60/32"), Via: netip.MustParseAddr("198.51.100.10")}, routed}
	if got := l.L3Routes("modes"); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("L3Routes %v, want %v", got, want)
	}
	if !l.Nodes["modes"].Containers["natipv"].IsIPvlanL3() {
		t.Error("natipv with mode: l3 is not IsIPvlanL3")
	}
}

func mustParse(t *testing.T, s string) Lab {
	t.Helper()
	l, err := Parse([]byte(s), "x.lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestImageRefs: what podman pulls is a reference, what it cannot is not.
func TestImageRefs(t *testing.T) {
	for ref, ok := range map[string]bool{
		"nginx": true, "docker.io/library/nginx:1.25": true, "192.0.2.1:5000/vmnet/busybox:1": true, "quay.io/a/b-c_d.e/f:v1.2-rc": true,
		"localhost/x@sha256:" + strings.Repeat("ab", 32): true,
		"": false, "Nginx": false, "nginx:": false, "a b": false, "docker.io/library/nginx:1.25 --privileged": false, "-rm": false, "nginx@sha256:12": false,
	} {
		if ValidImageRef(ref) != ok {
			t.Errorf("ValidImageRef(%q) = %v, want %v", ref, !ok, ok)
		}
	}
}

// TestContainerAddrsStableWhenOneIsAdded: a container or pod added to a
// lab (here ones that sort before all the others) leaves the addresses of
// those there already as they were. lab up keeps a running container whose
// settings are unchanged; were its address given away in name order, the
// new one would ask podman for an address a running one holds ("IPAM
// error: requested ip address 10.88.0.3 is already allocated").
func TestContainerAddrsStableWhenOneIsAdded(t *testing.T) {
	src := modesYAML(t)
	before, err := Parse([]byte(src), "modes.lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	added := strings.Replace(src, "    containers:\n", "    containers:\n      aaa: {network: podman, listen: 80}\n"+
		"      aab: {network: front, listen: 80}\n      aac: {pod: apod, listen: 8001}\n", 1)
	after, err := Parse([]byte(added), "modes.lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Nodes["modes"].Containers) != len(before.Nodes["modes"].Containers)+3 {
		t.Fatalf("the containers were not added: %v", after.Nodes["modes"].ContainerNames())
	}
	was, now := before.ContainerAddrs("modes"), after.ContainerAddrs("modes")
	for name, a := range was {
		if now[name] != a {
			t.Errorf("container %s: address %s once aaa, aab and aac are added, was %s", name, now[name], a)
		}
	}
	wasPod, nowPod := before.PodAddrs("modes"), after.PodAddrs("modes")
	for pod, a := range wasPod {
		if nowPod[pod] != a {
			t.Errorf("pod %s: address %s once pod apod is added, was %s", pod, nowPod[pod], a)
		}
	}
	seen := map[netip.Addr]string{}
	for name, a := range now {
		if other, dup := seen[a]; dup {
			t.Errorf("containers %s and %s both have %s", name, other, a)
		}
		seen[a] = name
	}
	for pod, a := range nowPod {
		if other, dup := seen[a]; dup {
			t.Errorf("pod %s and %s both have %s", pod, other, a)
		}
	}
}

// TestHashedFree: the same key gets the same address whatever else is
// taken before it, unless that is its address: then the next free one,
// wrapping round past the broadcast address to .2; none in a full subnet.
func TestHashedFree(t *testing.T) {
	s := netip.MustParsePrefix("10.89.1.0/24")
	a := hashedFree(s, "container web", map[netip.Addr]bool{})
	if b := hashedFree(s, "container web", map[netip.Addr]bool{netip.MustParseAddr("10.89.1.77"): a.String() != "10.89.1.77"}); b != a {
		t.Errorf("web's address %s moved to %s when another was taken", a, b)
	}
	if b := hashedFree(s, "container web", map[netip.Addr]bool{a: true}); b != a.Next() && !(a.String() == "10.89.1.254" && b.String() == "10.89.1.2") {
		t.Errorf("web's address %s was taken: got %s, want the next free one", a, b)
	}
	small := netip.MustParsePrefix("10.89.2.0/29") // .2 to .6
	taken := map[netip.Addr]bool{}
	for i := 0; i < 5; i++ {
		a := hashedFree(small, "c"+string(rune('a'+i)), taken)
		if !small.Contains(a) || a == small.Addr() || a == small.Addr().Next() || a.String() == "10.89.2.7" {
			t.Errorf("key %d got %s: not a free host address of %s after the gateway", i, a, small)
		}
	}
	if a := hashedFree(small, "full", taken); a.IsValid() {
		t.Errorf("a full subnet gave %s", a)
	}
	if a := hashedFree(netip.MustParsePrefix("10.89.3.0/31"), "x", map[netip.Addr]bool{}); a.IsValid() {
		t.Errorf("a /31 gave %s", a)
	}
}
