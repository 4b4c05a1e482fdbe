package image

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCapstoneImage builds the capstone image for real into a fresh cache
// (mmdebstrap from Debian's mirror: needs the network, about 280 MB),
// checks what the disk holds, then boots it under QEMU (TCG) in a throwaway
// network namespace: eth0 gets DHCP from dnsmasq, eth1 the static
// 192.0.2.10/24, and the guest agent answers; through it the test checks the
// addresses, podman (netavark, the app rootfs as an overlay root) and the
// firewall table. The full lab is integration/'s business.
func TestCapstoneImage(t *testing.T) {
	requireIntegration(t, "mmdebstrap", "unshare", "mkfs.ext4", "qemu-img", "debugfs", "qemu-system-x86_64", "ip", "dnsmasq", "ping")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	// VMNET_TEST_CACHE reuses a cache (and its build) between runs; by
	// default the build is a cold one into an empty cache.
	dir, fresh := os.Getenv("VMNET_TEST_CACHE"), false
	if dir == "" {
		dir, fresh = t.TempDir(), true
	}
	c := New(dir)
	var progress bytes.Buffer
	start := time.Now()
	img, built, err := c.Ensure(ctx, "capstone", &progress)
	cold := time.Since(start)
	t.Logf("build progress:\n%s", progress.String())
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	if (fresh && !built) || !img.ReadyAgent || img.Disk == "" {
		t.Fatalf("Ensure: built=%v %+v", built, img)
	}
	m, err := readManifest(img.Dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("MEASURE capstone cold build %.0fs, phases (s): %v; disk %s, initrd %s",
		cold.Seconds(), m.PhaseSeconds, mib(m.Files[diskFile]), mib(m.Files[initrdFile]))
	start = time.Now()
	if again, built, err := c.Ensure(ctx, "capstone", nil); err != nil || built || again.Hash != img.Hash {
		t.Fatalf("second Ensure: built=%v err=%v", built, err)
	}
	t.Logf("MEASURE capstone cache hit %.0fms", float64(time.Since(start).Microseconds())/1000)

	if k, err := os.ReadFile(img.Kernel); err != nil || len(k) < 0x206 || string(k[0x202:0x206]) != "HdrS" {
		t.Errorf("%s is not a bzImage: %v", img.Kernel, err)
	}

	t.Run("disk", func(t *testing.T) { checkCapstoneDisk(t, img) })
	t.Run("boot", func(t *testing.T) { bootCapstone(t, ctx, img) })
}

// checkCapstoneDisk reads the disk with debugfs: the system, the image's
// own files with their modes, the templates' guest tree, the app rootfs.
func checkCapstoneDisk(t *testing.T, img Image) {
	const app = "/var/lib/vmnet/app-rootfs"
	paths := map[string]string{ // path → "KIND MODE"
		"/usr/lib/systemd/systemd":        "regular 0755",
		"/usr/sbin/qemu-ga":               "regular 0755",
		"/usr/bin/podman":                 "regular 0755",
		"/usr/sbin/nft":                   "regular 0755",
		"/usr/local/sbin/vmnet-net":       "regular 0755",
		"/etc/vmnet/secrets":              "directory 0700",
		"/etc/cloud/cloud-init.disabled":  "regular 0644",
		"/etc/containers/containers.conf": "regular 0644",
		"/etc/nftables.conf":              "regular 0644",
		"/usr/local/sbin/vmnet-app-wait":  "regular 0755",
		// initdb ran at build time (the recipe's customize).
		"/var/lib/vmnet/pgdata":                                        "directory 0700",
		"/var/lib/vmnet/pgdata/PG_VERSION":                             "regular 0600",
		"/etc/systemd/system/sysinit.target.wants/vmnet-net.service":   "symlink 0777",
		"/etc/systemd/system/multi-user.target.wants/vmnet-app.target": "symlink 0777",
		app + "/usr/lib/postgresql/15/bin/postgres":                    "regular 0755",
		app + "/usr/sbin/nginx":                                        "regular 0755",
		app + "/usr/bin/python3.11":                                    "regular 0755",
		app + "/usr/bin/getent":                                        "regular 0755",
	}
	var list []string
	for p := range paths {
		list = append(list, p)
	}
	got := readDisk(t, img.Disk, list...)
	for p, want := range paths {
		e, ok := got[p]
		if !ok {
			t.Errorf("%s is not on the disk", p)
			continue
		}
		if s := fmt.Sprintf("%s %04o", e.kind, e.mode); s != want {
			t.Errorf("%s: %s, want %s", p, s, want)
		}
	}
	if d := got["/etc/cloud/cloud-init.disabled"]; d.kind == "" {
		t.Error("cloud-init is not disabled")
	}
}

// bootCapstone boots img with a DHCP NIC and a static one and checks the
// guest through its agent.
func bootCapstone(t *testing.T, ctx context.Context, img Image) {
	lab := newTapLab(t)
	dir := t.TempDir()
	overlay := filepath.Join(dir, "overlay.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-b", img.Disk, "-F", "qcow2", overlay).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v\n%s", err, out)
	}
	args, err := GuestArgs("capstone-test", []StaticNIC{{Index: 1, Address: netip.MustParsePrefix("192.0.2.10/24")}})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "qga.sock")
	console := filepath.Join(dir, "console.log")
	// eth0 on br1 (dnsmasq serves DHCP there), eth1 on br0 (192.0.2.1/24).
	qemu := exec.Command("ip", "netns", "exec", lab.ns, "qemu-system-x86_64",
		"-accel", "tcg", "-cpu", "max", "-m", "2048", "-smp", "2", "-nodefaults", "-no-user-config",
		"-display", "none", "-serial", "file:"+console, "-no-reboot",
		"-kernel", img.Kernel, "-initrd", img.Initrd, "-append", img.Cmdline+" "+args,
		"-drive", "file="+overlay+",if=virtio,format=qcow2",
		"-netdev", "tap,id=n0,ifname=tap1,script=no,downscript=no", "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:00:00:20",
		"-netdev", "tap,id=n1,ifname=tap0,script=no,downscript=no", "-device", "virtio-net-pci,netdev=n1,mac=52:54:00:00:00:21",
		"-chardev", "socket,id=qga0,path="+sock+",server=on,wait=off",
		"-device", "virtio-serial", "-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0")
	var stderr bytes.Buffer
	qemu.Stderr = &stderr
	start := time.Now()
	if err := qemu.Start(); err != nil {
		t.Fatalf("start qemu: %v", err)
	}
	t.Cleanup(func() {
		qemu.Process.Kill() // ip netns exec execs qemu: this pid is qemu's
		qemu.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(console)
			t.Logf("serial console:\n%s\nqemu stderr: %s", b, stderr.String())
		}
	})

	var ga *agent
	deadline := time.Now().Add(5 * time.Minute)
	for ga == nil {
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatal("the guest agent did not answer within 5 minutes")
		}
		ga, err = dialAgent(sock, 2*time.Second)
		if err != nil {
			time.Sleep(500 * time.Millisecond)
		}
	}
	defer ga.Close()
	t.Logf("MEASURE capstone TCG boot (2 vCPU, 2 GiB): guest agent answers after %.1fs", time.Since(start).Seconds())

	// eth1's address is there once networkd ran; eth0 waits for its lease.
	var addrs string
	for i := 0; i < 60; i++ {
		addrs, _ = ga.run(t, "/bin/sh", "-c", "ip -4 -o addr show eth0; ip -4 -o addr show eth1")
		if strings.Contains(addrs, "198.51.100.") && strings.Contains(addrs, "192.0.2.10/24") {
			break
		}
		time.Sleep(time.Second)
	}
	if !strings.Contains(addrs, "eth1    inet 192.0.2.10/24") || !strings.Contains(addrs, "eth0    inet 198.51.100.") {
		t.Errorf("addresses, want eth0 by DHCP from 198.51.100.0/24 and eth1 192.0.2.10/24:\n%s", addrs)
	}
	t.Logf("MEASURE capstone both NICs configured after %.1fs", time.Since(start).Seconds())
	if out, err := lab.exec("ping", "-c", "2", "-i", "0.2", "-W", "2", "192.0.2.10"); err != nil {
		t.Errorf("ping 192.0.2.10 from the host side: %v\n%s", err, out)
	}
	checks := []struct{ name, cmd, want string }{
		{"hostname", "hostname", "capstone-test\n"},
		{"networkd files", "cat /run/systemd/network/10-vmnet-eth1.network", "Address=192.0.2.10/24"},
		{"root locked", "passwd -S root | cut -d' ' -f2", "L\n"},
		{"podman", "podman info --format '{{.Host.NetworkBackend}} {{.Host.CgroupManager}}'", "netavark systemd\n"},
		{"app rootfs as overlay root", "podman run --rm --network none --rootfs /var/lib/vmnet/app-rootfs:O /usr/lib/postgresql/15/bin/postgres --version",
			"postgres (PostgreSQL) 15."},
		{"secrets dir", "stat -c '%a %U' /etc/vmnet/secrets", "700 root\n"},
		{"cloud-init stays out", "systemctl is-active cloud-init.service || true", "inactive\n"},
		{"nothing failed", "systemctl list-units --failed --no-legend --plain | grep -v vmnet-app || true", ""},
	}
	if _, err := os.Stat("../../templates/capstone/guest/etc/nftables.conf"); err == nil {
		checks = append(checks, struct{ name, cmd, want string }{"firewall", "nft list table inet vmnet | head -1", "table inet vmnet {"})
	}
	for _, c := range checks {
		out, err := ga.run(t, "/bin/sh", "-c", c.cmd)
		if err != nil || !strings.Contains(out, c.want) || (c.want == "" && out != "") {
			t.Errorf("%s: %s → %q, %v; want %q", c.name, c.cmd, out, err, c.want)
		}
	}
	out, _ := ga.run(t, "/bin/sh", "-c", "systemd-analyze; systemd-analyze blame | head -8")
	t.Logf("MEASURE capstone systemd-analyze:\n%s", out)
}

// agent speaks the QEMU guest agent's protocol on a virtio-serial socket.
type agent struct {
	conn net.Conn
	r    *bufio.Reader
}

// dialAgent connects and synchronises (guest-sync), failing when the guest
// does not answer within timeout.
func dialAgent(sock string, timeout time.Duration) (*agent, error) {
	conn, err := net.Dial("unix", sock)
	if err != nil {
		return nil, err
	}
	a := &agent{conn: conn, r: bufio.NewReader(conn)}
	id := time.Now().UnixNano() & 0xffffff
	var got int64
	if err := a.call("guest-sync", map[string]any{"id": id}, &got, timeout); err != nil || got != id {
		conn.Close()
		return nil, fmt.Errorf("guest-sync: %v (id %d, want %d)", err, got, id)
	}
	if err := a.call("guest-ping", nil, nil, timeout); err != nil {
		conn.Close()
		return nil, err
	}
	return a, nil
}

func (a *agent) Close() error { return a.conn.Close() }

// call sends one command and reads its answer, skipping stale answers of an
// earlier guest-sync that timed out.
func (a *agent) call(cmd string, args any, ret any, timeout time.Duration) error {
	req := map[string]any{"execute": cmd}
	if args != nil {
		req["arguments"] = args
	}
	data, _ := json.Marshal(req)
	a.conn.SetDeadline(time.Now().Add(timeout))
	if _, err := a.conn.Write(append(data, '\n')); err != nil {
		return err
	}
	for {
		line, err := a.r.ReadBytes('\n')
		if err != nil {
			return err
		}
		var resp struct {
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Desc string `json:"desc"`
			} `json:"error"`
		}
		if json.Unmarshal(line, &resp) != nil {
			continue
		}
		if resp.Error != nil {
			return fmt.Errorf("%s: %s", cmd, resp.Error.Desc)
		}
		if ret == nil {
			return nil
		}
		if err := json.Unmarshal(resp.Return, ret); err == nil {
			return nil
		}
	}
}

// run runs a command in the guest (guest-exec) and returns its stdout; the
// error carries the exit code and stderr.
func (a *agent) run(t *testing.T, path string, args ...string) (string, error) {
	t.Helper()
	var pid struct {
		PID int `json:"pid"`
	}
	if err := a.call("guest-exec", map[string]any{"path": path, "arg": args, "capture-output": true}, &pid, 10*time.Second); err != nil {
		return "", err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		var st struct {
			Exited   bool   `json:"exited"`
			ExitCode int    `json:"exitcode"`
			Out      string `json:"out-data"`
			Err      string `json:"err-data"`
		}
		if err := a.call("guest-exec-status", map[string]any{"pid": pid.PID}, &st, 10*time.Second); err != nil {
			return "", err
		}
		if st.Exited {
			out, _ := base64.StdEncoding.DecodeString(st.Out)
			errOut, _ := base64.StdEncoding.DecodeString(st.Err)
			if st.ExitCode != 0 {
				return string(out), fmt.Errorf("exit code %d: %s", st.ExitCode, strings.TrimSpace(string(errOut)))
			}
			return string(out), nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return "", fmt.Errorf("%s did not finish within 2 minutes", path)
}
