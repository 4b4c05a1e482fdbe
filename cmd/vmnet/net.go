package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"vmnet/internal/errs"
	"vmnet/internal/network"
	"vmnet/internal/virt"
)

func netCommand() *cli.Command {
	return &cli.Command{
		Name:  "net",
		Usage: "create, list and delete libvirt networks (nat, isolated, bridge)",
		Subcommands: []*cli.Command{
			{
				Name:      "create",
				Usage:     "define, autostart and start a libvirt network",
				ArgsUsage: "NAME",
				Description: "Creates libvirt network NAME (persistent, autostarted, started), or converges an existing vmnet\n" +
					"network to the options given: it is redefined and restarted, keeping its DHCP reservations, unless\n" +
					"guests are plugged in, in which case vmnet refuses and names what differs.\n" +
					"A second identical run changes nothing and says \"unchanged\".\n\n" +
					"The gateway is the subnet's first address; the DHCP pool defaults to the upper half of the subnet,\n" +
					"so the lower half stays free for static and reserved addresses. libvirt's bridge is vmnet-NAME.\n" +
					"A subnet that overlaps a route or another libvirt network is refused.\n\n" +
					"Examples:\n" +
					"   vmnet net create nat0 --mode nat --cidr 198.51.100.0/24\n" +
					"   vmnet net create lab --mode isolated --cidr 203.0.113.0/24 --dhcp-range 203.0.113.200-203.0.113.250\n" +
					"   vmnet bridge create br0 --address 192.0.2.1/24 && vmnet net create br0net --mode bridge --bridge br0",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "mode", Aliases: []string{"m"}, Usage: "`MODE`: nat, isolated or bridge (required)"},
					&cli.StringFlag{Name: "cidr", Usage: "subnet of a nat or isolated network, as `CIDR` (e.g. 198.51.100.0/24)"},
					&cli.StringFlag{Name: "dhcp-range", Usage: "DHCP pool `START-END`", DefaultText: "the upper half of the subnet"},
					&cli.StringFlag{Name: "bridge", Usage: "existing Linux bridge `BR` of a bridge-mode network"},
				},
				Action: netCreate,
			},
			{
				Name:        "delete",
				Aliases:     []string{"rm"},
				Usage:       "stop and undefine a vmnet network",
				ArgsUsage:   "NAME",
				Description: "Deleting a network that does not exist succeeds. vmnet deletes only networks it made,\nand none that guests are plugged into.",
				Action:      netDelete,
			},
			{
				Name:    "list",
				Aliases: []string{"ls"},
				Usage:   "list every libvirt network with its mode, subnet, DHCP pool, state and owner",
				Action:  netList,
			},
		},
	}
}

func netCreate(c *cli.Context) error {
	name, err := oneName(c)
	if err != nil {
		return err
	}
	spec := network.Spec{Name: name, Bridge: c.String("bridge")}
	if !c.IsSet("mode") {
		return &errs.FieldError{Field: "--mode", Problem: "is required",
			Fix: "give --mode nat (private subnet with outbound NAT), isolated (no way out) or bridge (an existing Linux bridge)"}
	}
	if spec.Mode, err = network.ParseMode(c.String("mode")); err != nil {
		return err
	}
	if s := c.String("cidr"); s != "" {
		if spec.CIDR, err = network.ParseCIDR(s); err != nil {
			return err
		}
	}
	if s := c.String("dhcp-range"); s != "" {
		if spec.DHCPRange, err = network.ParseDHCPRange(s); err != nil {
			return err
		}
	}
	// Refuse bad input before connecting, so a typo needs no libvirtd.
	if err := spec.Validate(); err != nil {
		return err
	}
	uri := virt.URI()
	conn, err := virt.Connect(uri)
	if err != nil {
		return err
	}
	defer conn.Close()
	k, err := network.OpenKernel(uri)
	if err != nil {
		return err
	}
	defer k.Close()
	res, err := network.Ensure(c.Context, network.Conn(conn), spec, k)
	if res != nil {
		if perr := printNetResult(c, res); perr != nil && err == nil {
			err = perr
		}
	}
	return err
}

func netDelete(c *cli.Context) error {
	name, err := oneName(c)
	if err != nil {
		return err
	}
	if err := network.ValidateName(name); err != nil {
		return err
	}
	conn, err := virt.Connect("")
	if err != nil {
		return err
	}
	defer conn.Close()
	res, err := network.Delete(network.Conn(conn), name)
	if res != nil {
		if perr := printNetResult(c, res); perr != nil && err == nil {
			err = perr
		}
	}
	return err
}

func netList(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("net list takes no arguments")
	}
	conn, err := virt.Connect("")
	if err != nil {
		return err
	}
	defer conn.Close()
	infos, err := network.List(network.Conn(conn))
	if err != nil {
		return err
	}
	if f, _ := outputFormat(c); f == "json" {
		return writeJSON(c.App.Writer, infos)
	}
	t := newTable("NAME", "MODE", "BRIDGE", "CIDR", "GATEWAY", "DHCP", "HOSTS", "STATE", "AUTOSTART", "OWNER")
	for _, in := range infos {
		state := "inactive"
		if in.Active {
			state = "active"
		}
		if !in.Persistent {
			state += " (transient)"
		}
		t.row(in.Name, string(in.Mode), dash(in.Bridge), dash(in.CIDR), dash(in.Gateway), dash(in.DHCPRange),
			fmt.Sprint(in.Hosts), state, onOff(in.Autostart), in.Owner)
	}
	return t.write(c.App.Writer)
}

func printNetResult(c *cli.Context, r *network.Result) error {
	if f, _ := outputFormat(c); f == "json" {
		return writeJSON(c.App.Writer, r)
	}
	w := c.App.Writer
	writeOutcome(w, fmt.Sprintf("network %s: %s", r.Name, r.Outcome), r.Changes)
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	return nil
}

func dash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}
