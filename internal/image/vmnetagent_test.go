package image

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The capstone guest's vmnet-agent, run by the host's sh on a fake sysfs:
// it finds the guest agent's port by its name among other virtio-serial
// ports (as the guest's kernel lists them, before udev has made any link)
// and would run qemu-ga on that device; a port that never appears ends in
// a clear error instead of a qemu-ga on the wrong port.
func TestVmnetAgentScript(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh here")
	}
	run := func(t *testing.T, ports map[string]string, devs ...string) (string, error) {
		sys, dev := t.TempDir(), t.TempDir()
		for port, name := range ports {
			os.MkdirAll(filepath.Join(sys, port), 0o755)
			os.WriteFile(filepath.Join(sys, port, "name"), []byte(name+"\n"), 0o444)
		}
		for _, d := range devs {
			// A character device is what the script waits for; /dev/null
			// stands in for the port's node.
			if err := os.Symlink("/dev/null", filepath.Join(dev, d)); err != nil {
				t.Fatal(err)
			}
		}
		cmd := exec.Command(sh, "../../images/capstone/vmnet-agent")
		cmd.Env = append(os.Environ(), "VMNET_VIRTIO_PORTS="+sys, "VMNET_DEV="+dev, "VMNET_AGENT_DRY_RUN=1", "VMNET_AGENT_WAIT_TRIES=5")
		out, err := cmd.CombinedOutput()
		return strings.ReplaceAll(strings.TrimSpace(string(out)), dev, "DEV"), err
	}
	t.Run("found among other ports", func(t *testing.T) {
		got, err := run(t, map[string]string{"vport1p1": "org.example.other", "vport2p1": "org.qemu.guest_agent.0", "vport2p2": ""},
			"vport1p1", "vport2p1", "vport2p2")
		if err != nil || got != "DEV/vport2p1" {
			t.Errorf("vmnet-agent = %q, %v; want DEV/vport2p1", got, err)
		}
	})
	t.Run("no such port", func(t *testing.T) {
		got, err := run(t, map[string]string{"vport1p1": "org.example.other"}, "vport1p1")
		if err == nil || !strings.Contains(got, "no virtio-serial port named org.qemu.guest_agent.0") {
			t.Errorf("vmnet-agent = %q, %v; want an error naming the missing port", got, err)
		}
	})
	t.Run("port without its device node yet", func(t *testing.T) {
		got, err := run(t, map[string]string{"vport2p1": "org.qemu.guest_agent.0"})
		if err == nil || strings.Contains(got, "DEV/vport2p1") {
			t.Errorf("vmnet-agent = %q, %v; want it to wait for the node, then fail", got, err)
		}
	})
}
