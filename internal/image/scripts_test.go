package image

import (
	"os/exec"
	"testing"
)

// The guest's scripts run under busybox sh, which this host does not have;
// dash (/bin/sh) at least checks their syntax. The integration test runs them.
func TestGuestScriptsParse(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh here")
	}
	for _, f := range []string{"../../images/tiny/init", "../../images/tiny/udhcpc.script", "../../images/capstone/vmnet-net"} {
		if out, err := exec.Command(sh, "-n", f).CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", f, err, out)
		}
	}
}
