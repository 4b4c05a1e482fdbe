package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"vmnet/internal/accel"
	"vmnet/internal/doctor"
	"vmnet/internal/virt"
)

func doctorCommand() *cli.Command {
	return &cli.Command{
		Name:  "doctor",
		Usage: "check what this host can do for vmnet, and how to fix what is missing (changes nothing)",
		Description: "Checks libvirtd, QEMU, KVM (by running a test guest, not just looking at /dev/kvm), tun,\n" +
			"vhost-net, br_netfilter, the FORWARD policy and ip_forward, and which link types the kernel makes\n" +
			"(bridge, veth, macvlan, macvtap in each mode, vxlan, tun, ipvlan, wireguard, vlan, bond, dummy: each\n" +
			"tried in a throwaway network namespace). Exit code 1 when a check fails.",
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("doctor takes no arguments")
			}
			h := doctor.Real(libvirtVersion, kvmProbe)
			findings := doctor.Run(c.Context, h)
			if f, _ := outputFormat(c); f == "json" {
				if err := writeJSON(c.App.Writer, findings); err != nil {
					return err
				}
			} else {
				t := newTable("CHECK", "STATUS", "DETAIL")
				for _, f := range findings {
					t.row(f.Check, strings.ToUpper(string(f.Status)), f.Detail)
					for _, s := range f.Steps {
						t.row("", "", "tried: "+s)
					}
					if f.Fix != "" {
						t.row("", "", "fix: "+f.Fix)
					}
				}
				if err := t.write(c.App.Writer); err != nil {
					return err
				}
			}
			if doctor.Worst(findings) == doctor.Fail {
				return fmt.Errorf("some checks failed; see the fixes above")
			}
			return nil
		},
	}
}

func libvirtVersion() (string, error) {
	conn, err := virt.Connect("")
	if err != nil {
		return "", err
	}
	defer conn.Close()
	v, err := conn.GetLibVersion()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d.%d.%d at %s", v/1000000, v/1000%1000, v%1000, virt.URI()), nil
}

// kvmProbe is the accelerator probe doctor reports: the one vm up uses,
// with its cache, and libvirt's domain capabilities when libvirtd answers
// (the libvirt check reports a libvirtd that does not).
func kvmProbe(ctx context.Context) (accel.Choice, error) {
	conn, err := virt.Connect("")
	if err != nil {
		return accel.Probe(ctx, accel.WantAuto)
	}
	defer conn.Close()
	return accel.ProbeLibvirt(ctx, accel.WantAuto, conn)
}
