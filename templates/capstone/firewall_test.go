package capstone

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const nftConf = "guest/etc/nftables.conf"

// TestNftablesCheck is `nft -c -f` on the ruleset, in a throwaway netns (nft
// -c still talks to the kernel).
func TestNftablesCheck(t *testing.T) {
	needRoot(t)
	needTools(t, "ip", "nft")
	ns := newNetns(t, "nftc")
	if out, err := cmdContext(t, 20*time.Second, "ip", "netns", "exec", ns, "nft", "-c", "-f", nftConf); err != nil {
		t.Fatalf("nft -c -f %s: %v\n%s", nftConf, err, out)
	}
	broken := filepath.Join(t.TempDir(), "broken.conf")
	if err := os.WriteFile(broken, []byte("table inet vmnet { chain input { type filter hook input priority filter; policy maybe; } }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := cmdContext(t, 20*time.Second, "ip", "netns", "exec", ns, "nft", "-c", "-f", broken); err == nil {
		t.Error("nft -c accepted a broken ruleset")
	}
}

// server is a Python HTTP server in a netns, started by the test, stopped by pid.
func startServer(t *testing.T, ns, addr string, port int) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(fmt.Sprintf("%s %s:%d\n", ns, addr, port)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, "/usr/bin/python3", "-m", "http.server", fmt.Sprint(port), "--bind", addr, "--directory", dir)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	url := fmt.Sprintf("http://%s:%d/", addr, port)
	if err := waitFor(10*time.Second, func() error {
		_, err := cmdContext(t, 3*time.Second, "ip", "netns", "exec", ns, "curl", "-fsS", "--max-time", "1", url)
		return err
	}); err != nil {
		t.Fatalf("server %s in %s: %v\n%s", url, ns, err, out.String())
	}
}

// reach says whether an HTTP GET from ns to url gets an answer within
// limit seconds: a dropped SYN never gets one, so a path expected closed
// needs only a short limit, and one expected open gets a long one.
func reach(t *testing.T, ns, url string, limit int) bool {
	_, err := cmdContext(t, time.Duration(limit+5)*time.Second, "ip", "netns", "exec", ns, "curl", "-fsS",
		"--max-time", fmt.Sprint(limit), "-o", "/dev/null", url)
	return err == nil
}

// TestFirewall loads the guest's ruleset into a guest netns wired like the
// capstone guest: eth0 to an "outside" netns (the host's side of br0), a
// bridge podman1 with app-net's subnet and a "container" netns behind it,
// and netavark's rules for the published port made with iptables-nft as
// netavark makes them. Every path is tried before the firewall (all open:
// the topology works) and after it (only the contract's paths open), then
// after a reload and after nftables.service's stop (netavark's rules stay).
func TestFirewall(t *testing.T) {
	needRoot(t)
	needTools(t, "ip", "nft", "iptables", "curl", "ping", "/usr/bin/python3")
	out := newNetns(t, "out")
	guest := newNetns(t, "gst")
	ctr := newNetns(t, "ctr")
	gx := func(args ...string) string {
		return mustRun(t, "ip", append([]string{"netns", "exec", guest}, args...)...)
	}

	// outside <-> guest eth0, like the host's br0 and the guest's NIC on it.
	mustRun(t, "ip", "-n", guest, "link", "add", "eth0", "type", "veth", "peer", "name", "br0", "netns", out)
	mustRun(t, "ip", "-n", guest, "addr", "add", "192.0.2.10/24", "dev", "eth0")
	mustRun(t, "ip", "-n", guest, "link", "set", "eth0", "up")
	mustRun(t, "ip", "-n", out, "addr", "add", "192.0.2.1/24", "dev", "br0")
	mustRun(t, "ip", "-n", out, "link", "set", "br0", "up")
	// guest's podman1 bridge (app-net's gateway) <-> a container.
	mustRun(t, "ip", "-n", guest, "link", "add", "podman1", "type", "bridge")
	mustRun(t, "ip", "-n", guest, "addr", "add", "10.89.0.1/24", "dev", "podman1")
	mustRun(t, "ip", "-n", guest, "link", "set", "podman1", "up")
	mustRun(t, "ip", "-n", guest, "link", "add", "veth0", "type", "veth", "peer", "name", "eth0", "netns", ctr)
	mustRun(t, "ip", "-n", guest, "link", "set", "veth0", "master", "podman1", "up")
	mustRun(t, "ip", "-n", ctr, "addr", "add", "10.89.0.2/24", "dev", "eth0")
	mustRun(t, "ip", "-n", ctr, "link", "set", "eth0", "up")
	mustRun(t, "ip", "-n", ctr, "route", "add", "default", "via", "10.89.0.1")
	// Someone outside routes app-net's subnet through the guest: the path
	// the firewall must close.
	mustRun(t, "ip", "-n", out, "route", "add", "10.89.0.0/24", "via", "192.0.2.10")
	// What netavark does for app-net and -p 8080:8080 (iptables-nft).
	gx("sysctl", "-qw", "net.ipv4.ip_forward=1")
	gx("iptables", "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", "8080", "-m", "addrtype", "--dst-type", "LOCAL",
		"-j", "DNAT", "--to-destination", "10.89.0.2:8080")
	gx("iptables", "-t", "nat", "-A", "POSTROUTING", "-s", "10.89.0.0/24", "!", "-d", "10.89.0.0/24", "-j", "MASQUERADE")
	gx("iptables", "-A", "FORWARD", "-d", "10.89.0.0/24", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")
	gx("iptables", "-A", "FORWARD", "-s", "10.89.0.0/24", "-j", "ACCEPT")

	startServer(t, ctr, "10.89.0.2", 8080) // proxy
	startServer(t, ctr, "10.89.0.2", 5000) // api
	startServer(t, ctr, "10.89.0.2", 5432) // db
	startServer(t, guest, "0.0.0.0", 5432) // something on the guest itself
	startServer(t, guest, "10.89.0.1", 53) // aardvark-dns's address (TCP stands in for both)
	startServer(t, out, "192.0.2.1", 8000) // a server outside

	type path struct {
		name, from, url string
		open            bool // with the firewall
	}
	paths := []path{
		{"published 8080 to the proxy", out, "http://192.0.2.10:8080/", true},
		{"guest's own 5432 from outside", out, "http://192.0.2.10:5432/", false},
		{"aardvark-dns from outside, via a route", out, "http://10.89.0.1:53/", false},
		{"api directly via a route", out, "http://10.89.0.2:5000/", false},
		{"db directly via a route", out, "http://10.89.0.2:5432/", false},
		{"proxy's IP, not DNATed", out, "http://10.89.0.2:8080/", false},
		{"container to outside", ctr, "http://192.0.2.1:8000/", true},
		{"container to aardvark-dns", ctr, "http://10.89.0.1:53/", true},
		{"container to the guest's 5432", ctr, "http://10.89.0.1:5432/", false},
	}
	check := func(stage string, firewall bool) {
		t.Helper()
		var wg sync.WaitGroup
		for _, p := range paths {
			wg.Add(1)
			go func() {
				defer wg.Done()
				want := p.open || !firewall
				limit := 2
				if want {
					limit = 10
				}
				if got := reach(t, p.from, p.url, limit); got != want {
					t.Errorf("%s: %s (%s): reachable = %v, want %v", stage, p.name, p.url, got, want)
				}
			}()
		}
		wg.Wait()
		ping := exec.Command("ip", "netns", "exec", out, "ping", "-c1", "-W2", "192.0.2.10").Run() == nil
		if !ping {
			t.Errorf("%s: ping from outside to the guest fails", stage)
		}
	}

	check("no firewall", false)
	gx("nft", "-f", nftConf)
	check("firewall", true)
	// A reload is idempotent and leaves netavark's tables alone.
	gx("nft", "-f", nftConf)
	tables := gx("nft", "list", "tables")
	for _, want := range []string{"table inet vmnet", "table ip nat", "table ip filter"} {
		if strings.Count(tables, want+"\n") != 1 {
			t.Errorf("after a reload, nft list tables has %q %d times, want once:\n%s", want, strings.Count(tables, want+"\n"), tables)
		}
	}
	check("reloaded firewall", true)
	// nftables.service stop, as the drop-in does it: only vmnet's table goes.
	gx("nft", "delete", "table", "inet", "vmnet")
	if tables := gx("nft", "list", "tables"); strings.Contains(tables, "vmnet") || !strings.Contains(tables, "table ip nat") {
		t.Errorf("after the stop: %s", tables)
	}
	check("stopped firewall", false)
	dropIn, err := os.ReadFile("guest/etc/systemd/system/nftables.service.d/vmnet.conf")
	if err != nil || !strings.Contains(string(dropIn), "ExecStop=\nExecStop=-/usr/sbin/nft delete table inet vmnet\n") {
		t.Errorf("the nftables.service drop-in does not replace ExecStop with the delete tried here (%v)", err)
	}
}
