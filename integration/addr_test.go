package integration

import (
	"strings"
	"testing"
)

// labState is what a refused vm up must leave as it was: links, libvirt
// networks and domains, vmnet's VM state.
func labState(t *testing.T, s string) string {
	t.Helper()
	r := sb(t, s, "sh", "-c", "ip -o link | cut -d: -f2; echo --; virsh -c qemu:///system net-list --all --name; echo --; "+
		"virsh -c qemu:///system list --all --name; echo --; find /var/lib/vmnet -mindepth 1 | sort")
	if r.code != 0 {
		t.Fatalf("read the sandbox's state: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// refused runs vm up on spec and wants it refused as bad input, before
// anything changed, with one line that names field and says want, and a
// hint that names a free address.
func refused(t *testing.T, s, spec, vmName, field, want, free string) {
	t.Helper()
	before := labState(t, s)
	r := sb(t, s, vmnetBin(t), "vm", "up", "--accel", "tcg", "--no-check", writeSpec(t, spec))
	t.Logf("vm up → exit %d\n%s%s", r.code, r.stdout, r.stderr)
	if r.code != 2 {
		t.Errorf("vm up exited %d, want 2 (bad input)", r.code)
	}
	var errLines []string
	for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		if strings.HasPrefix(l, "vmnet: ") {
			errLines = append(errLines, l)
		}
	}
	if len(errLines) != 1 || !strings.Contains(errLines[0], field+": ") || !strings.Contains(errLines[0], want) {
		t.Errorf("error lines %q, want one naming %s and saying %q", errLines, field, want)
	}
	if !strings.Contains(r.stderr, "hint: ") || !strings.Contains(r.stderr, free) {
		t.Errorf("no hint naming the free address %s:\n%s", free, r.stderr)
	}
	if after := labState(t, s); after != before {
		t.Errorf("a refused vm up changed the sandbox:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if r := sb(t, s, "virsh", "-c", "qemu:///system", "dominfo", vmName); r.code == 0 {
		t.Errorf("domain %s exists after a refused up", vmName)
	}
	if r := sb(t, s, "test", "-e", "/var/lib/vmnet/vms/"+vmName); r.code == 0 {
		t.Errorf("/var/lib/vmnet/vms/%s exists after a refused up", vmName)
	}
}

// Issue 7, item 2: a guest given an address someone already holds on its
// link is refused before anything is made. The first case is the report: the
// host's own address on br0, which made vm up's checks ping the host itself.
func TestStaticAddressHeldByOthers(t *testing.T) {
	s := newSandbox(t)

	t.Run("the host's address on an existing bridge", func(t *testing.T) {
		sbVmnet(t, s, "bridge", "create", "br0", "--address", "192.0.2.1/24")
		refused(t, s, "name: dup\nimage: tiny\nnics:\n  - bridge: br0\n    address: 192.0.2.1/24\nready:\n  console: VMNET-READY\n",
			"dup", "nics[0].address", "the host's address on br0", "192.0.2.2/24")
	})
	t.Run("another VM's static address on the bridge", func(t *testing.T) {
		// web's record, as vm up writes it before anything else.
		rec := `{"owner": "vmnet", "name": "web", "hash": "x", "nics": [{"bridge": "br0", "mac": "52:54:00:00:00:01", "static": "192.0.2.2/24"}], "files": []}`
		if r := sb(t, s, "sh", "-c", "mkdir -p /var/lib/vmnet/vms/web && cat > /var/lib/vmnet/vms/web/vmnet.json <<'EOF'\n"+rec+"\nEOF\n"); r.code != 0 {
			t.Fatalf("write web's record: %s", r.stderr)
		}
		t.Cleanup(func() { sb(t, s, "rm", "-rf", "/var/lib/vmnet/vms") })
		refused(t, s, "name: dup\nimage: tiny\nnics:\n  - bridge: br0\n    address: 192.0.2.2/24\n",
			"dup", "nics[0].address", "VM web's NIC eth0", "192.0.2.3/24")
	})
	t.Run("outside the bridge's subnet", func(t *testing.T) {
		refused(t, s, "name: dup\nimage: tiny\nnics:\n  - bridge: br0\n    address: 203.0.113.5/24\n",
			"dup", "nics[0].address", "is not in bridge br0's subnet 192.0.2.0/24", "192.0.2.2/24")
	})
	t.Run("a network's host address and DHCP pool", func(t *testing.T) {
		sbVmnet(t, s, "net", "create", "iso0", "--mode", "isolated", "--cidr", "198.51.100.0/24")
		refused(t, s, "name: dup\nimage: tiny\nnics:\n  - network: iso0\n    address: 198.51.100.1/24\n",
			"dup", "nics[0].address", "the host's address on network iso0", "198.51.100.2/24")
		refused(t, s, "name: dup\nimage: tiny\nnics:\n  - network: iso0\n    address: 198.51.100.200/24\n",
			"dup", "nics[0].address", "inside network iso0's DHCP pool 198.51.100.128-198.51.100.254", "198.51.100.2/24")
	})
	t.Run("the address requires would give a bridge not made yet", func(t *testing.T) {
		refused(t, s, "name: dup\nimage: tiny\nnics:\n  - network: nat9\n  - bridge: br9\n    address: 192.0.2.1/24\n"+
			"requires:\n  networks:\n    - name: nat9\n      cidr: 203.0.113.0/24\n  bridges:\n    - name: br9\n      address: 192.0.2.1/24\n",
			"dup", "nics[1].address", "the host's address on br9", "192.0.2.2/24")
		if r := sb(t, s, "ip", "link", "show", "br9"); r.code == 0 {
			t.Errorf("br9 was made for a refused up")
		}
	})
}
