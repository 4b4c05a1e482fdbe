package integration

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// uplinkLab makes a host namespace whose eth0 (192.0.2.10/24, 2001:db8::10/64)
// has a default route via 192.0.2.1, a static route via 192.0.2.254, a route
// in policy table 100 and an IPv6 default route; eth0's veth peer gw0 sits
// in a second namespace, the gateway, which answers ping only when answering
// is set. Both are removed when the test ends. The saved uplink state goes to
// a temporary directory (VMNET_STATE_DIR), never to the machine's /var/lib.
func uplinkLab(t *testing.T, answering bool) (host, gw string) {
	t.Helper()
	vmnetBin(t)
	t.Setenv("VMNET_STATE_DIR", t.TempDir())
	b := make([]byte, 4)
	rand.Read(b)
	host, gw = "hu-h"+hex.EncodeToString(b), "hu-g"+hex.EncodeToString(b)
	for _, ns := range []string{host, gw} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	for _, args := range [][]string{
		{"-n", host, "link", "add", "eth0", "type", "veth", "peer", "name", "gw0", "netns", gw},
		{"-n", host, "addr", "add", "192.0.2.10/24", "dev", "eth0"},
		{"-n", host, "addr", "add", "2001:db8::10/64", "dev", "eth0", "nodad"},
		{"-n", host, "link", "set", "eth0", "up"},
		{"-n", gw, "link", "set", "gw0", "up"},
		{"-n", host, "route", "add", "default", "via", "192.0.2.1", "dev", "eth0"},
		{"-n", host, "route", "add", "203.0.113.0/24", "via", "192.0.2.254", "dev", "eth0", "metric", "50", "proto", "static"},
		{"-n", host, "route", "add", "198.51.100.0/24", "via", "192.0.2.253", "dev", "eth0", "table", "100"},
		{"-n", host, "-6", "route", "add", "default", "via", "2001:db8::1", "dev", "eth0"},
	} {
		run(t, "ip", args...)
	}
	if answering {
		run(t, "ip", "-n", gw, "addr", "add", "192.0.2.1/24", "dev", "gw0")
	}
	// Let the kernel act on the new carrier (linkdown flags, IPv6 multicast route).
	poll(t, "eth0's routes to settle", func() bool {
		out := run(t, "ip", "-n", host, "-d", "route", "show", "table", "all", "dev", "eth0")
		return !strings.Contains(out, "linkdown") && strings.Contains(out, "ff00::/8")
	})
	return host, gw
}

func poll(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// netState is a namespace's links, addresses and routes in every table, as
// ip -d -j prints them, without what changes by itself: counters, lifetimes,
// IPv6 link-local addresses and their routes (the kernel's, at its own pace).
func netState(t *testing.T, ns string) string {
	t.Helper()
	var links []map[string]any
	must(t, json.Unmarshal([]byte(run(t, "ip", "-n", ns, "-d", "-j", "link", "show")), &links))
	var out []string
	for _, l := range links {
		out = append(out, fmt.Sprintf("link %v %v mtu=%v master=%v flags=%v operstate=%v promiscuity=%v",
			l["ifname"], l["address"], l["mtu"], l["master"], l["flags"], l["operstate"], l["promiscuity"]))
	}
	var addrs []struct {
		Ifname   string           `json:"ifname"`
		AddrInfo []map[string]any `json:"addr_info"`
	}
	must(t, json.Unmarshal([]byte(run(t, "ip", "-n", ns, "-j", "addr", "show")), &addrs))
	for _, l := range addrs {
		for _, a := range l.AddrInfo {
			if strings.HasPrefix(fmt.Sprint(a["local"]), "fe80:") {
				continue
			}
			delete(a, "valid_life_time")
			delete(a, "preferred_life_time")
			b, _ := json.Marshal(a)
			out = append(out, "addr "+l.Ifname+" "+string(b))
		}
	}
	var routes []map[string]any
	must(t, json.Unmarshal([]byte(run(t, "ip", "-n", ns, "-d", "-j", "route", "show", "table", "all")), &routes))
	for _, r := range routes {
		if strings.HasPrefix(fmt.Sprint(r["dst"]), "fe80:") {
			continue
		}
		b, _ := json.Marshal(r)
		out = append(out, "route "+string(b))
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func diffState(t *testing.T, what, before, after string) {
	t.Helper()
	if before == after {
		return
	}
	b, a := strings.Split(before, "\n"), strings.Split(after, "\n")
	var d []string
	for _, l := range b {
		if !slices.Contains(a, l) {
			d = append(d, "- "+l)
		}
	}
	for _, l := range a {
		if !slices.Contains(b, l) {
			d = append(d, "+ "+l)
		}
	}
	t.Fatalf("%s: the namespace is not as it was before (- before, + after):\n%s", what, strings.Join(d, "\n"))
}

// killedTakeover starts bridge create --uplink eth0 in host with a long
// confirm timeout and SIGKILLs it once the takeover is done and it waits
// for the probe: eth0 is a port of br0 and the default route is on br0.
func killedTakeover(t *testing.T, host string) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", host, vmnetBin(t), "bridge", "create", "br0", "--uplink", "eth0", "--confirm-timeout", "120s")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	must(t, cmd.Start()) // ip netns exec execs vmnet: the pid is vmnet's own
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-done
		}
	}()
	poll(t, "the takeover before the probe", func() bool {
		link, _ := exec.Command("ip", "-n", host, "-o", "link", "show", "eth0").Output()
		route, _ := exec.Command("ip", "-n", host, "route", "show", "default").Output()
		return strings.Contains(string(link), "master br0") && strings.Contains(string(route), "dev br0")
	})
	must(t, cmd.Process.Signal(os.Kill))
	err := <-done
	t.Logf("killed vmnet (%v) said: %s", err, out.String())
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != -1 {
		t.Fatalf("vmnet was not killed by the signal: %v", err)
	}
}

// A create killed while it waits for the probe, then bridge delete: eth0
// gets back everything, routes in every table included.
func TestUplinkKilledTakeoverThenDelete(t *testing.T) {
	host, _ := uplinkLab(t, false)
	before := netState(t, host)
	killedTakeover(t, host)
	mustVmnet(t, host, "bridge", "delete", "br0")
	diffState(t, "after the kill and bridge delete", before, netState(t, host))
}

// A create killed while it waits for the probe, then the next create: it
// restores eth0 first, says so, then takes it over; delete gives it all back.
func TestUplinkKilledTakeoverThenCreateAgain(t *testing.T) {
	host, gw := uplinkLab(t, false)
	before := netState(t, host)
	killedTakeover(t, host)
	run(t, "ip", "-n", gw, "addr", "add", "192.0.2.1/24", "dev", "gw0") // the gateway answers now
	r := mustVmnet(t, host, "bridge", "create", "br0", "--uplink", "eth0", "--confirm-timeout", "10s")
	if !strings.Contains(r.stdout, "a previous run") || !strings.Contains(r.stdout, "restored eth0") {
		t.Errorf("create after a kill did not say it restored eth0 first:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "confirmed: 192.0.2.1 answered through br0") {
		t.Errorf("create after a kill did not take eth0 over:\n%s", r.stdout)
	}
	for _, want := range []string{"default via 192.0.2.1 dev br0", "203.0.113.0/24 via 192.0.2.254 dev br0"} {
		if out := run(t, "ip", "-n", host, "route"); !strings.Contains(out, want) {
			t.Errorf("route %q is not on br0:\n%s", want, out)
		}
	}
	if out := run(t, "ip", "-n", host, "route", "show", "table", "100"); !strings.Contains(out, "198.51.100.0/24 via 192.0.2.253 dev br0") {
		t.Errorf("the table 100 route is not on br0:\n%s", out)
	}
	mustVmnet(t, host, "bridge", "delete", "br0")
	diffState(t, "after the takeover and bridge delete", before, netState(t, host))
}

// A NIC without carrier is refused as bad input (exit 2) before anything
// changes; with --allow-no-carrier the takeover cannot be confirmed and
// rolls back to exactly the state before, routes included.
func TestUplinkNoCarrier(t *testing.T) {
	host, gw := uplinkLab(t, true)
	run(t, "ip", "-n", gw, "link", "set", "gw0", "down")
	poll(t, "eth0 to lose its carrier", func() bool {
		return strings.Contains(run(t, "ip", "-n", host, "link", "show", "eth0"), "NO-CARRIER")
	})
	before := netState(t, host)
	r := vmnet(t, host, "bridge", "create", "br0", "--uplink", "eth0")
	if r.code != 2 || !strings.HasPrefix(r.stderr, `vmnet: --uplink "eth0": has no carrier`) || !strings.Contains(r.stderr, "hint: ") ||
		!strings.Contains(r.stderr, "--allow-no-carrier") {
		t.Errorf("create on a NIC without carrier: exit %d, stderr %q; want exit 2 naming the NIC, the reason and the fix", r.code, r.stderr)
	}
	diffState(t, "after the refusal", before, netState(t, host))
	r = vmnet(t, host, "bridge", "create", "br0", "--uplink", "eth0", "--allow-no-carrier", "--confirm-timeout", "1s")
	if r.code != 1 || !strings.Contains(r.stderr, "rolled back") || strings.Contains(r.stderr, "incomplete") {
		t.Errorf("create --allow-no-carrier: exit %d, stderr %q; want a complete rollback", r.code, r.stderr)
	}
	diffState(t, "after the rollback", before, netState(t, host))
	run(t, "ip", "-n", gw, "link", "set", "gw0", "up")
	poll(t, "eth0's routes to come back", func() bool {
		out := run(t, "ip", "-n", host, "route")
		return strings.Contains(out, "default via 192.0.2.1 dev eth0") && !strings.Contains(out, "linkdown")
	})
}
