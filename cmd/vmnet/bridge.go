package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
	"github.com/vishvananda/netns"

	"vmnet/internal/bridge"
	"vmnet/internal/errs"
	"vmnet/internal/labenv"
	"vmnet/internal/persist"
)

func bridgeCommand() *cli.Command {
	rootFlag := &cli.StringFlag{Name: "root", Value: "/", Usage: "write and look for persistence files under `DIR` instead of / (as netplan generate --root-dir)"}
	dryRun := &cli.BoolFlag{Name: "dry-run", Usage: "print what would change and which files would be written; touch nothing"}
	return &cli.Command{
		Name:  "bridge",
		Usage: "create, list, show and delete persistent Linux bridges",
		Subcommands: []*cli.Command{
			{
				Name:      "create",
				Usage:     "create a bridge now (netlink) and write the host's config so it survives a reboot",
				ArgsUsage: "NAME",
				Description: "Creates bridge NAME, or converges an existing vmnet bridge to the options given, and brings it up.\n" +
					"A second identical run changes nothing and says \"unchanged\".\n\n" +
					"With --uplink IFACE the bridge takes over a NIC as an admin does for a bridged VM host: it gets the\n" +
					"NIC's MAC, the NIC's addresses and routes move to the bridge and the NIC becomes its port. vmnet then\n" +
					"pings the gateway (or --probe ADDR); without an answer within --confirm-timeout everything is rolled back.\n" +
					"Before the first change the NIC's addresses, routes (every table), MAC, MTU and master are saved to\n" +
					"/var/lib/vmnet/uplinks/NIC.json ($VMNET_STATE_DIR); a rollback, 'bridge delete' and the next create after\n" +
					"a killed run restore the NIC from it and check the result. A NIC without carrier is refused unless\n" +
					"--allow-no-carrier.\n\n" +
					"Examples:\n" +
					"   vmnet bridge create br0 --address 192.0.2.1/24 --address 2001:db8::1/64\n" +
					"   vmnet bridge create br0 --uplink eth0 --persist netplan\n" +
					"   vmnet bridge create br0 --address 192.0.2.1/24 --persist networkd --root /tmp/etc-preview --dry-run",
				Flags: []cli.Flag{
					&cli.StringSliceFlag{Name: "address", Aliases: []string{"a"}, Usage: "add address `CIDR` (IPv4 or IPv6, repeatable); the bridge ends with exactly these"},
					&cli.IntFlag{Name: "mtu", Usage: "MTU in bytes", DefaultText: "the uplink's, or 1500"},
					&cli.BoolFlag{Name: "stp", Usage: "turn on spanning tree (off by default; leave it off unless the lab has loops)"},
					&cli.BoolFlag{Name: "vlan-filtering", Usage: "turn on 802.1Q VLAN filtering"},
					&cli.StringFlag{Name: "mac", Usage: "bridge `MAC` (default: a stable address derived from the host and the name)"},
					&cli.StringFlag{Name: "uplink", Usage: "take over NIC `IFACE`: its MAC, addresses and routes move to the bridge"},
					&cli.StringFlag{Name: "probe", Usage: "after --uplink, `ADDR` that must answer ping (default: the uplink's gateway)"},
					&cli.DurationFlag{Name: "confirm-timeout", Value: bridge.DefaultConfirmTimeout, Usage: "how long to wait for the probe before rolling back"},
					&cli.BoolFlag{Name: "allow-no-carrier", Usage: "take over an --uplink that has no carrier (cable out, peer down); refused otherwise, since no probe can be answered"},
					&cli.StringFlag{Name: "persist", Value: "auto", Usage: "persistence `BACKEND`: auto, none, networkd, networkmanager, netplan or ifupdown"},
					rootFlag, dryRun,
				},
				Action: bridgeCreate,
			},
			{
				Name:        "delete",
				Aliases:     []string{"rm"},
				Usage:       "delete a vmnet bridge, give its uplink back its addresses, remove its persistence files",
				ArgsUsage:   "NAME",
				Description: "Deleting a bridge that does not exist succeeds. vmnet deletes only bridges and files it made.",
				Flags:       []cli.Flag{rootFlag, dryRun},
				Action:      bridgeDelete,
			},
			{
				Name:    "list",
				Aliases: []string{"ls"},
				Usage:   "list bridges with ports, addresses, MTU, STP, state and persistence",
				Flags:   []cli.Flag{rootFlag},
				Action:  bridgeList,
			},
			{
				Name:      "show",
				Usage:     "show one bridge",
				ArgsUsage: "NAME",
				Flags:     []cli.Flag{rootFlag},
				Action:    bridgeShow,
			},
		},
	}
}

// oneName returns the single NAME argument or a usage error.
func oneName(c *cli.Context) (string, error) { return oneArg(c, "br0") }

// oneArg returns the single NAME argument or a usage error whose example
// names example.
func oneArg(c *cli.Context, example string) (string, error) {
	switch c.NArg() {
	case 1:
		return c.Args().First(), nil
	case 0:
		return "", usagef("%s: missing NAME (for example: vmnet %s %s)", commandPath(c), commandPath(c), example)
	default:
		return "", usagef("%s: takes one NAME, got %d arguments: %s", commandPath(c), c.NArg(), strings.Join(c.Args().Slice(), " "))
	}
}

func bridgeCreate(c *cli.Context) error {
	name, err := oneName(c)
	if err != nil {
		return err
	}
	spec := bridge.Spec{
		Name:           name,
		MTU:            c.Int("mtu"),
		STP:            c.Bool("stp"),
		VLANFiltering:  c.Bool("vlan-filtering"),
		Uplink:         c.String("uplink"),
		ConfirmTimeout: c.Duration("confirm-timeout"),
		AllowNoCarrier: c.Bool("allow-no-carrier"),
	}
	for _, s := range c.StringSlice("address") {
		p, err := bridge.ParseAddress(s)
		if err != nil {
			return err
		}
		spec.Addresses = append(spec.Addresses, p)
	}
	if s := c.String("mac"); s != "" {
		if spec.MAC, err = bridge.ParseMAC(s); err != nil {
			return err
		}
	}
	if s := c.String("probe"); s != "" {
		if spec.Probe, err = bridge.ParseProbe(s); err != nil {
			return err
		}
		if spec.Uplink == "" {
			return usagef("--probe only applies with --uplink")
		}
	}
	if err := spec.Validate(); err != nil {
		return err // before netlink: a typo needs no root and touches nothing
	}
	opt, note, err := persistOptions(c)
	if err != nil {
		return err
	}
	k, err := bridge.Open(netns.None())
	if err != nil {
		return err
	}
	defer k.Close()
	res, err := bridge.Ensure(c.Context, k, spec, opt)
	if res != nil && note != "" {
		res.Notes = append(res.Notes, note)
	}
	if res != nil {
		if perr := printResult(c, res, "created"); perr != nil && err == nil {
			err = perr
		}
	}
	return err
}

func bridgeDelete(c *cli.Context) error {
	name, err := oneName(c)
	if err != nil {
		return err
	}
	if err := bridge.ValidateName("bridge name", name); err != nil {
		return err
	}
	k, err := bridge.Open(netns.None())
	if err != nil {
		return err
	}
	defer k.Close()
	dir, err := stateDir()
	if err != nil {
		return err
	}
	res, err := bridge.Delete(c.Context, k, name, bridge.Options{Root: c.String("root"), DryRun: c.Bool("dry-run"), StateDir: dir})
	if res != nil {
		if perr := printResult(c, res, "deleted"); perr != nil && err == nil {
			err = perr
		}
	}
	return err
}

// persistOptions turns --persist and --root into options, refusing to write
// the host's own files from inside a network namespace: the bridge lives
// only there, and at the next boot the host would grow a bridge it never had.
func persistOptions(c *cli.Context) (bridge.Options, string, error) {
	backend, err := persist.ParseBackend(c.String("persist"))
	if err != nil {
		return bridge.Options{}, "", &errs.FieldError{Field: "--persist", Value: c.String("persist"), Problem: "is not a persistence backend",
			Fix: "use auto (detect what manages this host), none, networkd, networkmanager, netplan or ifupdown"}
	}
	dir, err := stateDir()
	if err != nil {
		return bridge.Options{}, "", err
	}
	opt := bridge.Options{Persist: backend, Root: c.String("root"), DryRun: c.Bool("dry-run"), HostID: labenv.HostID(), StateDir: dir}
	if backend == persist.None || c.IsSet("root") {
		return opt, "", nil
	}
	init, err := inInitNetns()
	if err != nil || init {
		return opt, "", err
	}
	if backend == persist.Auto {
		opt.Persist = persist.None
		return opt, "not persisted: vmnet runs in a network namespace, whose bridges the host's own config must not describe (--persist BACKEND --root DIR writes the files elsewhere)", nil
	}
	return opt, "", errs.WithHint(
		fmt.Errorf("--persist %s would write this host's files under /etc, but vmnet runs in a network namespace whose bridge the host does not have", backend),
		"pass --root DIR to write the files elsewhere, or --persist none")
}

// stateDir is where a taken-over NIC's state is saved: $VMNET_STATE_DIR or
// bridge.DefaultStateDir, and inside a network namespace a directory of its
// own there, since another namespace may have a NIC of the same name.
func stateDir() (string, error) {
	dir := os.Getenv("VMNET_STATE_DIR")
	if dir == "" {
		dir = bridge.DefaultStateDir
	}
	init, err := inInitNetns()
	if err != nil || init {
		return dir, err
	}
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/self/ns/net", &st); err != nil {
		return "", fmt.Errorf("read own network namespace: %w", err)
	}
	return filepath.Join(dir, fmt.Sprintf("netns-%d", st.Ino)), nil
}

// inInitNetns reports whether vmnet runs in the host's own network namespace.
func inInitNetns() (bool, error) {
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		return false, fmt.Errorf("read own network namespace: %w", err)
	}
	host, err := os.Readlink("/proc/1/ns/net")
	if errors.Is(err, os.ErrPermission) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read init's network namespace: %w", err)
	}
	return self == host, nil
}

// bridgeView is a bridge as list and show print it.
type bridgeView struct {
	Name          string   `json:"name"`
	State         string   `json:"state"`
	MAC           string   `json:"mac"`
	MTU           int      `json:"mtu"`
	STP           bool     `json:"stp"`
	VLANFiltering bool     `json:"vlan_filtering"`
	Addresses     []string `json:"addresses"`
	Ports         []string `json:"ports"`
	Uplink        string   `json:"uplink,omitempty"`
	Managed       bool     `json:"managed"`
	Persistence   string   `json:"persistence"`
	Files         []string `json:"files"`
}

func viewOf(st bridge.State, root string) (bridgeView, error) {
	v := bridgeView{
		Name: st.Name, State: st.OperState, MAC: st.MAC.String(), MTU: st.MTU, STP: st.STP,
		VLANFiltering: st.VLANFiltering, Ports: nonNil(st.Ports), Uplink: st.Uplink, Managed: st.Managed,
		Addresses: []string{}, Files: []string{}, Persistence: "none",
	}
	switch {
	case !st.Up:
		v.State = "down"
	case st.OperState != "up":
		// Admin up but no carrier: a bridge has carrier only once a port has.
		v.State = "up (no carrier)"
	default:
		v.State = "up"
	}
	for _, p := range st.Addresses {
		v.Addresses = append(v.Addresses, p.String())
	}
	found, err := bridge.Persistence(root, st.Name)
	if err != nil {
		return v, err
	}
	// After a reboot the host's config recreates the bridge without vmnet's
	// alias; vmnet's files for it still make it vmnet's.
	v.Managed = v.Managed || len(found) > 0
	for _, f := range found {
		v.Persistence = string(f.Backend)
		v.Files = append(v.Files, filepath.Join(root, f.Path))
	}
	return v, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func bridgeList(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("bridge list takes no arguments")
	}
	k, err := bridge.Open(netns.None())
	if err != nil {
		return err
	}
	defer k.Close()
	states, err := bridge.List(k)
	if err != nil {
		return err
	}
	views := []bridgeView{}
	for _, st := range states {
		v, err := viewOf(st, c.String("root"))
		if err != nil {
			return err
		}
		views = append(views, v)
	}
	if f, _ := outputFormat(c); f == "json" {
		return writeJSON(c.App.Writer, views)
	}
	t := newTable("NAME", "STATE", "MTU", "STP", "ADDRESSES", "PORTS", "PERSIST", "OWNER")
	for _, v := range views {
		owner := "other"
		if v.Managed {
			owner = "vmnet"
		}
		t.row(v.Name, v.State, fmt.Sprint(v.MTU), onOff(v.STP), join(v.Addresses), join(v.Ports), v.Persistence, owner)
	}
	return t.write(c.App.Writer)
}

func bridgeShow(c *cli.Context) error {
	name, err := oneName(c)
	if err != nil {
		return err
	}
	if err := bridge.ValidateName("bridge name", name); err != nil {
		return err
	}
	k, err := bridge.Open(netns.None())
	if err != nil {
		return err
	}
	defer k.Close()
	st, err := bridge.Inspect(k, name)
	if errors.Is(err, bridge.ErrNotFound) {
		return errs.WithHint(fmt.Errorf("bridge %q does not exist", name), "'vmnet bridge list' shows the bridges here; 'vmnet bridge create "+name+"' makes it")
	}
	if err != nil {
		return err
	}
	v, err := viewOf(*st, c.String("root"))
	if err != nil {
		return err
	}
	if f, _ := outputFormat(c); f == "json" {
		return writeJSON(c.App.Writer, v)
	}
	t := newTable("FIELD", "VALUE")
	t.row("name", v.Name)
	t.row("state", v.State)
	t.row("mac", v.MAC)
	t.row("mtu", fmt.Sprint(v.MTU))
	t.row("stp", onOff(v.STP))
	t.row("vlan filtering", onOff(v.VLANFiltering))
	t.row("addresses", join(v.Addresses))
	t.row("ports", join(v.Ports))
	if v.Uplink != "" {
		t.row("uplink", v.Uplink)
	}
	t.row("owner", map[bool]string{true: "vmnet", false: "other (vmnet will not change it)"}[v.Managed])
	t.row("persistence", v.Persistence)
	for _, f := range v.Files {
		t.row("file", f)
	}
	return t.write(c.App.Writer)
}

// resultView is what create and delete print as JSON.
type resultView struct {
	Bridge  string            `json:"bridge"`
	Outcome string            `json:"outcome"` // created, changed, unchanged, deleted, absent
	DryRun  bool              `json:"dry_run"`
	Changes []string          `json:"changes"`
	Notes   []string          `json:"notes"`
	Persist *bridge.Persisted `json:"persistence,omitempty"`
}

func printResult(c *cli.Context, r *bridge.Result, verb string) error {
	v := resultView{Bridge: r.Name, DryRun: r.DryRun, Changes: nonNil(r.Changes), Notes: nonNil(r.Notes), Persist: r.Persist}
	switch {
	case r.Unchanged() && verb == "deleted":
		v.Outcome = "absent"
	case r.Unchanged():
		v.Outcome = "unchanged"
	case verb == "created" && !r.Created:
		v.Outcome = "changed"
	default:
		v.Outcome = verb
	}
	if f, _ := outputFormat(c); f == "json" {
		return writeJSON(c.App.Writer, v)
	}
	w := c.App.Writer
	prefix := ""
	if r.DryRun {
		prefix = "dry run: "
		if !r.Unchanged() {
			v.Outcome = "would be " + v.Outcome
		}
	}
	writeOutcome(w, fmt.Sprintf("%sbridge %s: %s", prefix, r.Name, v.Outcome), v.Changes)
	if p := r.Persist; p != nil {
		if p.Backend != "" && p.Backend != persist.None {
			reason := ""
			if p.Reason != "" {
				reason = " (" + p.Reason + ")"
			}
			fmt.Fprintf(w, "persistence: %s%s\n", p.Backend, reason)
		}
		for _, f := range p.Files {
			state := "unchanged"
			if slices.Contains(p.Changed, f) {
				state = "written"
				if r.DryRun {
					state = "would write"
				}
			}
			if slices.Contains(p.Removed, f) {
				state = "removed"
				if r.DryRun {
					state = "would remove"
				}
			}
			fmt.Fprintf(w, "  %s: %s\n", state, f)
		}
		for _, f := range p.Removed {
			if !slices.Contains(p.Files, f) {
				fmt.Fprintf(w, "  removed: %s\n", f)
			}
		}
	}
	for _, n := range v.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	return nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func join(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ",")
}
