package doctor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"vmnet/internal/accel"
)

// fakeHost builds a Host from files under a temp dir and canned command output.
func fakeHost(t *testing.T, files map[string]string, iptables string, kvmOK bool) Host {
	t.Helper()
	root := t.TempDir()
	for rel, content := range files {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return Host{
		Proc: filepath.Join(root, "proc"),
		Dev:  filepath.Join(root, "dev"),
		Run: func(ctx context.Context, name string, args ...string) (string, error) {
			switch name {
			case "qemu-system-x86_64":
				return "QEMU emulator version 7.2.0\nCopyright", nil
			case "iptables":
				return iptables, nil
			}
			return "", errors.New("not found")
		},
		Libvirt: func() (string, error) { return "9.0.0", nil },
		KVM: func(context.Context) (accel.Choice, error) {
			if kvmOK {
				return accel.Choice{Type: accel.KVM, Cause: accel.CauseWorks, Reason: "KVM: a test guest reached 64-bit mode"}, nil
			}
			return accel.Choice{Type: accel.QEMU, Cause: accel.CauseGuestHangs, Fix: accel.FixFor(accel.CauseGuestHangs),
				Reason: "a test guest did not run within 5s", Steps: []string{"/dev/kvm opened", "test guest: hung"}}, nil
		},
	}
}

func byCheck(fs []Finding) map[string]Finding {
	m := map[string]Finding{}
	for _, f := range fs {
		m[f.Check] = f
	}
	return m
}

func TestDoctorHealthyHost(t *testing.T) {
	h := fakeHost(t, map[string]string{
		"dev/kvm": "", "dev/vhost-net": "", "dev/net/tun": "",
		"proc/sys/net/ipv4/ip_forward": "1\n",
	}, "-P FORWARD ACCEPT\n", true)
	fs := Run(context.Background(), h)
	if Worst(fs) != OK {
		t.Fatalf("healthy host: %+v", fs)
	}
}

func TestDoctorFindsEachProblem(t *testing.T) {
	h := fakeHost(t, map[string]string{
		"dev/kvm": "",
		"proc/sys/net/bridge/bridge-nf-call-iptables": "1\n",
		"proc/sys/net/ipv4/ip_forward":                "0\n",
	}, "-P FORWARD DROP\n-A FORWARD -j DOCKER-USER\n", false)
	h.Libvirt = func() (string, error) { return "", errors.New("cannot reach libvirtd at qemu:///system") }
	fs := byCheck(Run(context.Background(), h))
	for check, want := range map[string]Status{
		"libvirtd": Fail, "kvm": Warn, "vhost-net": Warn, "tun": Fail,
		"br_netfilter": Warn, "forward policy": Warn, "ip_forward": Warn, "qemu": OK,
	} {
		f := fs[check]
		if f.Status != want {
			t.Errorf("%s: status %s, want %s (%s)", check, f.Status, want, f.Detail)
		}
		if f.Status != OK && f.Fix == "" {
			t.Errorf("%s: a problem without a fix", check)
		}
	}
	if k := fs["kvm"]; !strings.Contains(k.Detail, "did not run") || k.Fix != accel.FixFor(accel.CauseGuestHangs) || len(k.Steps) != 2 {
		t.Errorf("kvm finding does not carry the probe's reason, fix and steps: %+v", k)
	}
	if !strings.Contains(fs["kvm"].Detail, "did not run") {
		t.Errorf("kvm detail does not say why: %q", fs["kvm"].Detail)
	}
	if Worst(Run(context.Background(), h)) != Fail {
		t.Error("Worst is not fail")
	}
}
