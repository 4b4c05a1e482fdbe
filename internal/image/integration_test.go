package image

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// requireIntegration skips unless this is a root run that asked for the
// integration tier and has the tools it needs.
func requireIntegration(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: it makes a network namespace with bridges and taps")
	}
	if os.Getenv("VMNET_INTEGRATION") != "1" {
		t.Skip("set VMNET_INTEGRATION=1 to run: it downloads about 70 MB of Debian packages and boots QEMU under TCG")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (Debian packages: qemu-system-x86 dnsmasq-base iproute2 iputils-ping)", tool)
		}
	}
}

// TestTinyGuest builds the tiny image for real into a fresh cache, checks
// that a second Ensure is a cache hit, then boots it under QEMU (TCG) on taps
// in a throwaway network namespace: once with one static NIC (timed), once
// with a static NIC, a DHCP NIC served by dnsmasq and a DHCP NIC nobody serves.
func TestTinyGuest(t *testing.T) {
	requireIntegration(t, "qemu-system-x86_64", "ip", "dnsmasq", "ping", "apt-get", "apt-cache", "dpkg-deb")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	c := New(t.TempDir())
	var progress bytes.Buffer
	start := time.Now()
	img, built, err := c.Ensure(ctx, "tiny", &progress)
	cold := time.Since(start)
	t.Logf("build progress:\n%s", progress.String())
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	if !built {
		t.Fatal("Ensure into an empty cache did not build")
	}
	start = time.Now()
	again, built, err := c.Ensure(ctx, "tiny", nil)
	hit := time.Since(start)
	if err != nil || built || again.Hash != img.Hash {
		t.Fatalf("second Ensure: built=%v err=%v hash %s vs %s", built, err, again.Hash, img.Hash)
	}
	t.Logf("MEASURE cold build %.1fs (download, unpack, initramfs); cache hit %.0fms; image %s",
		cold.Seconds(), float64(hit.Microseconds())/1000, mib(img.Size))

	// The real initramfs: the real busybox and the real modules, virtio_pci among them.
	files := readInitramfs(t, img.Initrd)
	have := map[string]cpioFile{}
	for _, f := range files {
		have[f.Name] = f
	}
	if bb := have["bin/busybox"]; len(bb.Data) < 1<<20 || bb.Mode&0o111 == 0 {
		t.Errorf("bin/busybox: %d bytes, mode %o", len(bb.Data), bb.Mode)
	}
	for _, m := range []string{"virtio_pci.ko", "virtio_net.ko", "net_failover.ko", "virtio_blk.ko"} {
		if !strings.Contains(string(have["etc/vmnet/modules"].Data), "/"+m) {
			t.Errorf("etc/vmnet/modules lacks %s:\n%s", m, have["etc/vmnet/modules"].Data)
		}
	}

	lab := newTapLab(t)

	t.Run("static", func(t *testing.T) {
		args, err := GuestArgs("tiny-static", []StaticNIC{
			{Index: 0, Address: netip.MustParsePrefix("192.0.2.10/24"), Gateway: netip.MustParseAddr("192.0.2.1")},
		})
		if err != nil {
			t.Fatal(err)
		}
		g := lab.boot(t, img, args, "tap0")
		pinged := lab.firstPing(t, g, "192.0.2.10")
		ready := g.waitFor(t, ReadyPrefix, 90*time.Second)
		r, err := ParseReady(ready.text)
		if err != nil {
			t.Fatal(err)
		}
		if n, ok := r.NIC("eth0"); r.Hostname != "tiny-static" || !ok || n.Address != netip.MustParsePrefix("192.0.2.10/24") {
			t.Errorf("ready line: %q", ready.text)
		}
		var first time.Duration
		select {
		case first = <-pinged:
		case <-time.After(30 * time.Second):
			t.Fatal("no answer to ping within 30s of the ready line")
		}
		t.Logf("MEASURE TCG boot, one static NIC: ready after %.1fs, first ping answered after %.1fs", ready.at.Seconds(), first.Seconds())
		if out, err := lab.exec("ping", "-c", "3", "-i", "0.2", "-W", "2", "192.0.2.10"); err != nil {
			t.Errorf("ping 192.0.2.10: %v\n%s", err, out)
		}
	})

	t.Run("static+dhcp+no-dhcp", func(t *testing.T) {
		args, err := GuestArgs("tiny-mixed", []StaticNIC{
			{Index: 0, Address: netip.MustParsePrefix("192.0.2.10/24")},
			{Index: 5, Address: netip.MustParsePrefix("192.0.2.15/24")}, // no such NIC: reported, not fatal
		})
		if err != nil {
			t.Fatal(err)
		}
		g := lab.boot(t, img, args+" vmnet.dhcp_timeout=8", "tap0", "tap1", "tap2")
		ready := g.waitFor(t, ReadyPrefix, 120*time.Second)
		r, err := ParseReady(ready.text)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("MEASURE TCG boot, static + DHCP + unserved DHCP (timeout 8s): ready after %.1fs", ready.at.Seconds())
		if r.Hostname != "tiny-mixed" || len(r.NICs) != 4 {
			t.Fatalf("ready line: %q", ready.text)
		}
		if n, _ := r.NIC("eth0"); n.Address != netip.MustParsePrefix("192.0.2.10/24") {
			t.Errorf("eth0: %+v", n)
		}
		eth1, _ := r.NIC("eth1")
		if !eth1.OK() || !netip.MustParsePrefix("198.51.100.0/24").Contains(eth1.Address.Addr()) || eth1.Address.Bits() != 24 {
			t.Fatalf("eth1 (DHCP from dnsmasq): %+v", eth1)
		}
		if n, _ := r.NIC("eth2"); n.OK() || n.Error != "no-dhcp-lease" {
			t.Errorf("eth2 (nobody serves DHCP): %+v", n)
		}
		if n, _ := r.NIC("eth5"); n.Error != "no-such-nic" {
			t.Errorf("eth5 (static address for a NIC the guest lacks): %+v", n)
		}
		// The lease dnsmasq handed out is the address the guest reports.
		leases, _ := os.ReadFile(lab.leases)
		if !strings.Contains(string(leases), "52:54:00:00:00:11 "+eth1.Address.Addr().String()+" tiny-mixed") {
			t.Errorf("dnsmasq's leases do not show %s for 52:54:00:00:00:11 and tiny-mixed:\n%s", eth1.Address.Addr(), leases)
		}
		// The NIC without a server did not hold up the others.
		nic1 := g.waitFor(t, NICPrefix+" eth1 ", time.Second)
		nic2 := g.waitFor(t, NICPrefix+" eth2 ", time.Second)
		if nic1.at >= nic2.at {
			t.Errorf("eth1 was reported (%.1fs) after eth2's DHCP timeout (%.1fs)", nic1.at.Seconds(), nic2.at.Seconds())
		}
		t.Logf("MEASURE TCG boot, the guest's lines:\n%s", g.vmnetLines())
		if n, err := ParseNIC(nic1.text); err != nil || n.MAC != "52:54:00:00:00:11" || n.Via != "dhcp" {
			t.Errorf("eth1's line %q: %+v, %v", nic1.text, n, err)
		}
		for _, addr := range []string{"192.0.2.10", eth1.Address.Addr().String()} {
			if out, err := lab.exec("ping", "-c", "2", "-i", "0.2", "-W", "2", addr); err != nil {
				t.Errorf("ping %s: %v\n%s", addr, err, out)
			}
		}
	})
}

// tapLab is a throwaway network namespace with three bridges, each with one
// tap for a guest: br0 192.0.2.1/24, br1 198.51.100.1/24 with dnsmasq serving
// DHCP, br2 with no address and no DHCP.
type tapLab struct {
	ns     string
	dir    string
	leases string
}

func newTapLab(t *testing.T) *tapLab {
	t.Helper()
	l := &tapLab{ns: fmt.Sprintf("vmnet-imgtest-%d", os.Getpid()), dir: t.TempDir()}
	l.leases = filepath.Join(l.dir, "leases")
	if out, err := exec.Command("ip", "netns", "add", l.ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v\n%s", l.ns, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", l.ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", l.ns, err, out)
		}
	})
	steps := [][]string{{"link", "set", "lo", "up"}}
	for i := 0; i < 3; i++ {
		br, tap := fmt.Sprintf("br%d", i), fmt.Sprintf("tap%d", i)
		steps = append(steps,
			[]string{"link", "add", br, "type", "bridge"},
			[]string{"tuntap", "add", tap, "mode", "tap"},
			[]string{"link", "set", tap, "master", br, "up"},
			[]string{"link", "set", br, "up"})
	}
	steps = append(steps,
		[]string{"addr", "add", "192.0.2.1/24", "dev", "br0"},
		[]string{"addr", "add", "198.51.100.1/24", "dev", "br1"})
	for _, s := range steps {
		if out, err := exec.Command("ip", append([]string{"-n", l.ns}, s...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip -n %s %s: %v\n%s", l.ns, strings.Join(s, " "), err, out)
		}
	}
	log := filepath.Join(l.dir, "dnsmasq.log")
	dnsmasq := exec.Command("ip", "netns", "exec", l.ns, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
		"--port=0", "--interface=br1", "--bind-interfaces", "--dhcp-range=198.51.100.50,198.51.100.99,255.255.255.0,1h",
		"--dhcp-leasefile="+l.leases, "--pid-file=", "--log-dhcp", "--log-facility="+log)
	if err := dnsmasq.Start(); err != nil {
		t.Fatalf("start dnsmasq: %v", err)
	}
	// ip netns exec execs dnsmasq: this pid is dnsmasq's.
	t.Cleanup(func() {
		dnsmasq.Process.Kill()
		dnsmasq.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(log)
			t.Logf("dnsmasq log:\n%s", b)
		}
	})
	return l
}

// exec runs a command inside the lab's namespace.
func (l *tapLab) exec(name string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", l.ns, name}, args...)...).CombinedOutput()
	return string(out), err
}

// consoleLine is a line of the guest's serial console and when it came,
// counted from QEMU's start.
type consoleLine struct {
	text string
	at   time.Duration
}

// guest is a QEMU process and its serial console.
type guest struct {
	start time.Time
	mu    sync.Mutex
	lines []consoleLine
	seen  chan struct{} // closed and replaced on each new line
}

// boot starts QEMU with img on the given taps (MACs 52:54:00:00:00:1N),
// stopped by pid when the test ends. This is the bare QEMU command line:
//
//	qemu-system-x86_64 -accel tcg -cpu max -m 256 -smp 1 -nodefaults -no-user-config
//	  -display none -serial stdio -no-reboot -kernel vmlinuz -initrd initrd.img
//	  -append "console=ttyS0 quiet vmnet.hostname=... vmnet.ip.0=..."
//	  -netdev tap,id=n0,ifname=tap0,script=no,downscript=no -device virtio-net-pci,netdev=n0,mac=52:54:00:00:00:10 ...
func (l *tapLab) boot(t *testing.T, img Image, args string, taps ...string) *guest {
	t.Helper()
	qemu := []string{"netns", "exec", l.ns, "qemu-system-x86_64",
		"-accel", "tcg", "-cpu", "max", "-m", "256", "-smp", "1", "-nodefaults", "-no-user-config",
		"-display", "none", "-serial", "stdio", "-no-reboot",
		"-kernel", img.Kernel, "-initrd", img.Initrd, "-append", img.Cmdline + " " + args}
	for i, tap := range taps {
		qemu = append(qemu,
			"-netdev", fmt.Sprintf("tap,id=n%d,ifname=%s,script=no,downscript=no", i, tap),
			"-device", fmt.Sprintf("virtio-net-pci,netdev=n%d,mac=52:54:00:00:00:1%d", i, i))
	}
	cmd := exec.Command("ip", qemu...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	g := &guest{seen: make(chan struct{})}
	g.start = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start qemu: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			g.mu.Lock()
			g.lines = append(g.lines, consoleLine{text: strings.TrimRight(sc.Text(), "\r"), at: time.Since(g.start)})
			close(g.seen)
			g.seen = make(chan struct{})
			g.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill() // ip netns exec execs qemu: this pid is qemu's
		<-done
		cmd.Wait()
		if t.Failed() {
			g.mu.Lock()
			var b strings.Builder
			for _, l := range g.lines {
				fmt.Fprintf(&b, "[%6.2fs] %s\n", l.at.Seconds(), l.text)
			}
			g.mu.Unlock()
			t.Logf("serial console:\n%sqemu stderr: %s", b.String(), stderr.String())
		}
	})
	return g
}

// vmnetLines returns the guest's VMNET-* lines with their times.
func (g *guest) vmnetLines() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var b strings.Builder
	for _, l := range g.lines {
		if i := strings.Index(l.text, "VMNET-"); i >= 0 {
			fmt.Fprintf(&b, "[%5.1fs] %s\n", l.at.Seconds(), l.text[i:])
		}
	}
	return b.String()
}

// waitFor returns the first console line containing s, failing the test
// after timeout.
func (g *guest) waitFor(t *testing.T, s string, timeout time.Duration) consoleLine {
	t.Helper()
	deadline := time.After(timeout)
	for {
		g.mu.Lock()
		for _, l := range g.lines {
			if strings.Contains(l.text, s) {
				g.mu.Unlock()
				return l
			}
		}
		seen := g.seen
		g.mu.Unlock()
		select {
		case <-seen:
		case <-deadline:
			t.Fatalf("no %q on the serial console within %s", s, timeout)
		}
	}
}

// firstPing pings addr from the lab every 200 ms from now on (one ping
// process each, overlapping: ping's own output is block-buffered in a pipe)
// and reports, counted from QEMU's start, when the first answer came.
func (l *tapLab) firstPing(t *testing.T, g *guest, addr string) <-chan time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	res := make(chan time.Duration, 1)
	var wg sync.WaitGroup
	go func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		var once sync.Once
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				cmd := exec.CommandContext(ctx, "ip", "netns", "exec", l.ns, "ping", "-n", "-q", "-c", "1", "-W", "1", addr)
				if cmd.Run() == nil {
					at := time.Since(g.start)
					once.Do(func() { res <- at; cancel() })
				}
			}()
		}
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return res
}
