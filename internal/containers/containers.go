// Package containers starts a lab node's own containers (internal/lab's
// container-networks and containers) inside its guest, through the guest
// agent: the podman networks (bridge with a subnet; macvlan on the guest NIC
// of a lab network), the pods, the containers in their network modes
// (podman run --rootfs on the image's built-in container rootfs) and the
// guest firewall's openings for what they publish. Plan is pure: a list of
// steps, each a test that says whether it is done and the commands that do
// it. Ensure runs them, so a second lab up changes nothing.
package containers

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"vmnet/internal/lab"
)

// PauseImage is the pods' infra image: podman 4.3 builds its own from
// catatonit, which the guest lacks, and there is no registry to pull one
// from, so vmnet imports one from the rootfs's own sleep (and libc).
const PauseImage = "localhost/vmnet-pause:1"

// LabLabel marks everything vmnet makes in the guest with the lab's name;
// HashLabel a container's or pod's settings, so a changed one is replaced.
const (
	LabLabel  = "vmnet.lab"
	HashLabel = "vmnet.hash"
)

// FirewallComment starts the comment of the rules vmnet adds to the
// capstone guest's table inet vmnet (which drops everything else inbound).
const FirewallComment = "vmnet-containers"

// Step is one idempotent piece of a node's containers.
type Step struct {
	What  string     // for people: "create podman network n1 (10.89.1.0/24)"
	Test  []string   // exits 0 when the step is done already
	Do    [][]string // run in turn, each must exit 0
	Label string     // the object the step makes: network n1, pod p1, container web1
}

// MacvlanNetwork is the podman network vmnet makes for macvlan containers
// on lab network net.
func MacvlanNetwork(net string) string { return "vmnet-macvlan-" + net }

// Plan is the steps that bring node's containers up in its guest, in
// order: networks, the pause image and pods, the guest firewall's
// openings, podman-restart.service when one restarts always, then the
// containers. Nothing for a node without containers.
func Plan(l lab.Lab, node string) []Step {
	n := l.Nodes[node]
	if len(n.Containers) == 0 && len(n.ContainerNetworks) == 0 {
		return nil
	}
	var out []Step
	out = append(out, networkSteps(l, node)...)
	out = append(out, pullSteps(l, node)...)
	out = append(out, podSteps(l, node)...)
	out = append(out, firewallSteps(l, node)...)
	out = append(out, bootSteps(l, node)...)
	for _, name := range n.ContainerNames() {
		if n.IsAppContainer(name) {
			out = append(out, attachStep(l, node, name))
			continue
		}
		out = append(out, containerStep(l, node, name))
		if n.Containers[name].Mode() == lab.ModeIPvlan {
			out = append(out, ipvlanStep(l, node, name))
		}
	}
	return out
}

// AppUnit is the guest's systemd unit that runs the app's container name
// (templates/capstone: vmnet-app-api.service for api).
func AppUnit(name string) string { return "vmnet-app-" + name + ".service" }

// AttachDropIn is where vmnet writes the drop-in of the unit that runs
// the app's container name, which attaches it to its macvlan network
// again after every start: the unit runs the container with --rm
// --replace, so a restarted one (Restart=always, the health watchdog, a
// reboot) starts on app-net alone.
func AttachDropIn(name string) string {
	return "/etc/systemd/system/" + AppUnit(name) + ".d/vmnet-macvlan.conf"
}

// AttachMAC is the MAC of an app container's macvlan attachment: locally
// administered, from the lab's, node's and container's names, so a
// restarted container answers at the MAC the LAN's neighbour tables (the
// host's) already have; a new random one would go unanswered until their
// entries expire.
func AttachMAC(l lab.Lab, node, name string) string {
	sum := sha256.Sum256([]byte(l.Name + "\x00" + node + "\x00" + name))
	return fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", sum[0], sum[1], sum[2], sum[3], sum[4])
}

// attachStep gives an app container (the capstone's api) its macvlan
// attachment beside the app's network: the unit's drop-in (AttachDropIn,
// then systemctl daemon-reload) and, for the container running now,
// podman network connect with its static address and MAC (AttachMAC). Its
// test: the container has that address and MAC on the macvlan network and
// the drop-in is as planned.
func attachStep(l lab.Lab, node, name string) Step {
	c := l.Nodes[node].Containers[name]
	mv, addr, mac := MacvlanNetwork(c.Parent), c.Address.Addr().String(), AttachMAC(l, node, name)
	file := AttachDropIn(name)
	dropIn := fmt.Sprintf("# vmnet lab %s: %s's macvlan attachment on %s (%s), again after every start\n[Service]\nExecStartPost=/usr/bin/podman network connect --ip %s --mac-address %s %s %s",
		l.Name, name, c.Parent, c.Address, addr, mac, mv, name)
	format := `{{with index .NetworkSettings.Networks "` + mv + `"}}{{.IPAddress}} {{.MacAddress}}{{end}}`
	return Step{What: fmt.Sprintf("attach app container %s to %s (macvlan on %s) as %s", name, mv, c.Parent, c.Address), Label: "attachment " + name,
		Test: []string{"sh", "-c", `[ "$(podman container inspect --format "$1" "$2" 2>/dev/null)" = "$3" ] && [ "$(cat "$4" 2>/dev/null)" = "$5" ]`,
			"vmnet-test", format, name, addr + " " + mac, file, dropIn},
		Do: [][]string{
			{"sh", "-c", `set -e; mkdir -p "${1%/*}"; printf '%s\n' "$2" >"$1"; systemctl daemon-reload`, "vmnet-dropin", file, dropIn},
			{"sh", "-c", `podman network disconnect -f "$1" "$2" >/dev/null 2>&1 || true; podman network connect --ip "$3" --mac-address "$4" "$1" "$2"`, "vmnet-attach", mv, name, addr, mac}}}
}

// ipvlanStep gives an ipvlan container (started with network none) its
// link: podman 4.3's netavark 1.4 has no ipvlan driver ("unsupported
// driver ipvlan"), so vmnet makes an ipvlan link in the container's mode
// (l2 or l3) on the parent's guest NIC, moves it into the container's
// namespace as eth0, gives it the address and a default route: via the
// host's address in l2, out of eth0 in l3 (which has no ARP: the parent
// routes). Its test: the container's eth0 has the address.
func ipvlanStep(l lab.Lab, node, name string) Step {
	n := l.Nodes[node]
	c := n.Containers[name]
	eth := "eth" + strconv.Itoa(n.NICFor(c.Parent))
	link := "vmipv" + hash([]string{name})[:8]
	mode, route := lab.IPvlanL2, []string{"via", l.Networks[c.Parent].HostAddr().String()}
	if c.IsIPvlanL3() {
		mode, route = lab.IPvlanL3, []string{"dev", "eth0"}
	}
	s := Step{What: fmt.Sprintf("attach container %s to ipvlan (%s) on %s as %s", name, mode, eth, c.Address), Label: "ipvlan " + name,
		Test: []string{"sh", "-c", `pid=$(podman inspect --format '{{.State.Pid}}' "$1") && [ "$(nsenter -t "$pid" -n ip -4 -o addr show dev eth0 2>/dev/null | awk '{print $4}')" = "$2" ]`,
			"vmnet-test", name, c.Address.String()},
		Do: [][]string{{"sh", "-c", `set -e; pid=$(podman inspect --format '{{.State.Pid}}' "$1"); ip link del "$3" 2>/dev/null || true
ip link add link "$2" name "$3" type ipvlan mode "$5"; ip link set "$3" netns "$pid"
nsenter -t "$pid" -n ip link set "$3" name eth0; nsenter -t "$pid" -n ip addr add "$4" dev eth0
nsenter -t "$pid" -n ip link set eth0 up; nsenter -t "$pid" -n ip route add default "$6" "$7"`, "vmnet-ipvlan", name, eth, link, c.Address.String(), mode, route[0], route[1]}}}
	s.Do = append(s.Do, waits(c, name)...)
	return s
}

// networkSteps make the node's container-networks and one macvlan network
// per lab network a macvlan container hangs off.
func networkSteps(l lab.Lab, node string) []Step {
	n := l.Nodes[node]
	var out []Step
	for _, name := range sortedKeys(n.ContainerNetworks) {
		s := n.ContainerNetworks[name].Subnet
		out = append(out, Step{What: fmt.Sprintf("create podman network %s (bridge, %s)", name, s), Label: "network " + name,
			Test: networkIs(name, "bridge "+s.String()+" "),
			Do:   [][]string{removeNetwork(name), {"podman", "network", "create", "-d", "bridge", "--subnet", s.String(), "--label", LabLabel + "=" + l.Name, name}}})
	}
	seen := map[string]bool{}
	for _, name := range n.ContainerNames() {
		c := n.Containers[name]
		if c.Mode() != lab.ModeMacvlan || seen[c.Parent] {
			continue
		}
		seen[c.Parent] = true
		net, eth := l.Networks[c.Parent], "eth"+strconv.Itoa(n.NICFor(c.Parent))
		mv := MacvlanNetwork(c.Parent)
		out = append(out, Step{What: fmt.Sprintf("create podman network %s (macvlan on %s, %s)", mv, eth, net.Subnet()), Label: "network " + mv,
			Test: networkIs(mv, "macvlan "+net.Subnet().String()+" "+eth),
			Do: [][]string{removeNetwork(mv), {"podman", "network", "create", "-d", "macvlan", "-o", "parent=" + eth, "--subnet", net.Subnet().String(),
				"--gateway", net.HostAddr().String(), "--label", LabLabel + "=" + l.Name, mv}}})
	}
	return out
}

// podSteps import the pause image and make each pod on podman's default
// network, publishing its members' ports (a pod member cannot publish).
func podSteps(l lab.Lab, node string) []Step {
	n := l.Nodes[node]
	pods := n.Pods()
	if len(pods) == 0 {
		return nil
	}
	root := lab.ContainerImages[n.Image]
	out := []Step{{What: "import the pods' infra image " + PauseImage + " from the container rootfs", Label: "image " + PauseImage,
		Test: []string{"podman", "image", "exists", PauseImage},
		Do: [][]string{{"sh", "-c", `tar -C "$1" -chf - bin/sleep lib/x86_64-linux-gnu/libc.so.6 lib64/ld-linux-x86-64.so.2 | ` +
			`podman import --change 'ENTRYPOINT=["/bin/sleep","infinity"]' - "$2" >/dev/null`, "vmnet-pause", root, PauseImage}}}}
	for _, pod := range n.PodNames() {
		args := []string{"--name", pod, "--infra-image", PauseImage, "--network", lab.ModePodman, "--ip", l.PodAddrs(node)[pod].String(), "--label", LabLabel + "=" + l.Name}
		for _, m := range pods[pod] {
			for _, p := range n.Containers[m].PublishedPorts() {
				args = append(args, "-p", fmt.Sprintf("%d:%d", p.Host, p.Container))
			}
		}
		h := hash(args)
		out = append(out, Step{What: fmt.Sprintf("create pod %s (%s)", pod, strings.Join(pods[pod], ", ")), Label: "pod " + pod,
			Test: labelIs("pod", pod, h, ""),
			Do: [][]string{{"podman", "pod", "rm", "-f", "--ignore", pod},
				append(append([]string{"podman", "pod", "create"}, args...), "--label", HashLabel+"="+h)}})
	}
	return out
}

// firewallSteps open the VM ports the containers use in the capstone
// guest's firewall, which lets nothing else in: a host-mode container's
// listen (input) and every published port (forward, after podman's DNAT).
func firewallSteps(l lab.Lab, node string) []Step {
	n := l.Nodes[node]
	var out []Step
	rule := func(chain string, port int, match ...string) {
		comment := fmt.Sprintf("%s: %s tcp %d", FirewallComment, chain, port)
		out = append(out, Step{What: fmt.Sprintf("open tcp %d (%s) in the guest firewall", port, chain), Label: "firewall " + chain + " " + strconv.Itoa(port),
			Test: []string{"sh", "-c", `nft list chain inet vmnet "$1" | grep -qF "comment \"$2\""`, "vmnet-fw", chain, comment},
			Do: [][]string{{"systemctl", "start", "nftables"},
				append(append([]string{"nft", "insert", "rule", "inet", "vmnet", chain}, match...), "accept", "comment", strconv.Quote(comment))}})
	}
	for _, name := range n.ContainerNames() {
		c := n.Containers[name]
		if c.Mode() == lab.ModeHost && c.Listen > 0 {
			rule("input", c.Listen, "tcp", "dport", strconv.Itoa(c.Listen))
		}
		for _, p := range c.PublishedPorts() {
			rule("forward", p.Host, "ct", "status", "dnat", "meta", "l4proto", "tcp", "ct", "original", "proto-dst", strconv.Itoa(p.Host))
		}
	}
	return out
}

// RestartUnit is podman's unit that starts the containers with restart
// policy always at boot; the capstone image disables it (it costs seconds
// under TCG, and the app's containers have units of their own).
const RestartUnit = "podman-restart.service"

// bootSteps enable RestartUnit when one of node's containers has restart:
// always, so that it comes back after a reboot of the guest (podman's
// restart policy acts only on exits while the guest runs). podman 4.3's
// unit starts those alone: unless-stopped and on-failure ones stay down
// after a reboot. Its test: the unit is enabled.
func bootSteps(l lab.Lab, node string) []Step {
	n := l.Nodes[node]
	var always []string
	for _, name := range n.ContainerNames() {
		if n.Containers[name].Restart == "always" && !n.IsAppContainer(name) {
			always = append(always, name)
		}
	}
	if len(always) == 0 {
		return nil
	}
	return []Step{{What: fmt.Sprintf("enable %s, which starts %s again at boot (restart: always)", RestartUnit, strings.Join(always, ", ")), Label: "unit " + RestartUnit,
		Test: []string{"systemctl", "is-enabled", "--quiet", RestartUnit},
		Do:   [][]string{{"systemctl", "enable", "--quiet", RestartUnit}}}}
}

// containerStep (re)creates one container unless it runs with the same
// settings already.
func containerStep(l lab.Lab, node, name string) Step {
	args := RunArgs(l, node, name)
	h := hash(args)
	c := l.Nodes[node].Containers[name]
	s := Step{What: fmt.Sprintf("start container %s (%s)", name, describe(c)), Label: "container " + name,
		Test: labelIs("container", name, h, " true"),
		Do: [][]string{{"podman", "rm", "-f", "--ignore", name},
			append([]string{"podman", "run", "-d", "--label", HashLabel + "=" + h}, args...)}}
	if c.Mode() != lab.ModeIPvlan { // an ipvlan one listens once attached: ipvlanStep waits
		s.Do = append(s.Do, waits(c, name)...)
	}
	return s
}

// waits are the commands that wait for a started container: until it
// accepts connections on its listen port, then until its health check
// passes.
func waits(c lab.Container, name string) [][]string {
	var out [][]string
	switch {
	case c.Listen > 0 && c.Image != "":
		out = append(out, waitListeningOutside(name, c.Listen))
	case c.Listen > 0:
		out = append(out, waitListening(name, c.Listen))
	}
	if c.Health.Set() {
		out = append(out, waitHealthy(name))
	}
	return out
}

// waitHealthy runs container name's health check (podman healthcheck run)
// until it passes, or fails saying so after ListenWait seconds: podman's
// own first check comes only after an interval.
func waitHealthy(name string) []string {
	return []string{"sh", "-c", `for i in $(seq "$2"); do podman healthcheck run "$1" >/dev/null 2>&1 && exit 0; sleep 1; done
echo "container $1's health check still fails after $2 s: podman healthcheck run $1 runs it" >&2; exit 1`, "vmnet-health", name, strconv.Itoa(ListenWait)}
}

// ListenWait is how long a started container has to accept connections
// on its listen port: python3's http.server takes a few seconds under TCG,
// and the checks right after lab up must not find it still starting.
const ListenWait = 60

// waitListening waits until container name accepts TCP connections on
// port on its own 127.0.0.1 (the VM's for host mode, the pod's for a pod
// member), or fails saying so after ListenWait seconds.
func waitListening(name string, port int) []string {
	return []string{"podman", "exec", name, "bash", "-c", `for i in $(seq $(($2 * 2))); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && exit 0; sleep 0.5; done
echo "nothing accepts connections on port $1 after $2 s: is listen the port the command serves?" >&2; exit 1`, "vmnet-wait", strconv.Itoa(port), strconv.Itoa(ListenWait)}
}

// RunArgs is podman run's arguments for a container, after "run -d": its
// name, labels, network flags, ports, restart policy and health check, then
// --rootfs ROOTFS:O sh -c COMMAND. A pod member keeps the pod's hostname
// (podman refuses another in the pod's UTS namespace).
func RunArgs(l lab.Lab, node, name string) []string {
	n := l.Nodes[node]
	c := n.Containers[name]
	args := []string{"--name", name, "--label", LabLabel + "=" + l.Name, "--cap-add", "NET_RAW"}
	if c.Mode() != lab.ModePod {
		args = append(args, "--hostname", name)
	}
	addr := l.ContainerAddrs(node)[name]
	switch c.Mode() {
	case lab.ModePod:
		args = append(args, "--pod", c.Pod)
	case lab.ModeHost, lab.ModeNone:
		args = append(args, "--network", c.Network)
	case lab.ModeIPvlan:
		args = append(args, "--network", lab.ModeNone) // ipvlanStep gives it its link
		if c.IsIPvlanL3() {                            // in the hash: a mode changed to l3 replaces the container, and its l2 link
			args = append(args, "--label", "vmnet.ipvlan-mode="+lab.IPvlanL3)
		}
	case lab.ModeMacvlan:
		args = append(args, "--network", MacvlanNetwork(c.Parent), "--ip", addr.String())
	default:
		args = append(args, "--network", or(c.Network, lab.ModePodman), "--ip", addr.String())
		for _, p := range c.PublishedPorts() {
			args = append(args, "-p", fmt.Sprintf("%d:%d", p.Host, p.Container))
		}
	}
	args = append(args, policyArgs(c)...)
	switch {
	case c.Image != "" && c.Command != "":
		return append(args, "--entrypoint", "/bin/sh", c.Image, "-c", c.Command)
	case c.Image != "":
		return append(args, c.Image) // its own entrypoint and command
	}
	return append(args, "--rootfs", lab.ContainerImages[n.Image]+":O", "sh", "-c", Command(c))
}

// pullSteps pull each registry image node's containers run, once per
// reference, with --tls-verify=false when one of them is insecure. Its
// test: podman has the image (a tag is not pulled again).
func pullSteps(l lab.Lab, node string) []Step {
	n := l.Nodes[node]
	insecure := map[string]bool{}
	var refs []string
	for _, name := range n.ContainerNames() {
		c := n.Containers[name]
		if c.Image == "" || n.IsAppContainer(name) {
			continue
		}
		if _, seen := insecure[c.Image]; !seen {
			refs = append(refs, c.Image)
		}
		insecure[c.Image] = insecure[c.Image] || c.Insecure
	}
	var out []Step
	for _, ref := range refs {
		pull := []string{"podman", "pull", "-q", ref}
		what := "pull image " + ref
		if insecure[ref] {
			pull = []string{"podman", "pull", "-q", "--tls-verify=false", ref}
			what += " (TLS verification off)"
		}
		out = append(out, Step{What: what, Label: "image " + ref, Test: []string{"podman", "image", "exists", ref}, Do: [][]string{pull}})
	}
	return out
}

// policyArgs is podman run's --restart (none for the default, no) and
// --health-* flags (the capstone's timing where health leaves it out).
func policyArgs(c lab.Container) []string {
	var out []string
	if c.Restart != "" && c.Restart != "no" {
		out = append(out, "--restart", c.Restart)
	}
	if c.Health.Set() {
		h := c.Health.Timing()
		out = append(out, "--health-cmd", h.Cmd, "--health-interval", h.Interval, "--health-timeout", h.Timeout,
			"--health-retries", strconv.Itoa(h.Retries), "--health-start-period", h.StartPeriod)
	}
	return out
}

// Command is what the container runs: its command, or an HTTP server on
// its listen port (python3 is in the capstone's rootfs), or sleep.
func Command(c lab.Container) string {
	switch {
	case c.Command != "":
		return c.Command
	case c.Listen > 0:
		return "exec python3 -m http.server " + strconv.Itoa(c.Listen)
	}
	return "exec sleep infinity"
}

// waitListeningOutside is waitListening for a container from a registry
// image, which may have no bash: the guest's bash connects inside the
// container's network namespace (nsenter -n).
func waitListeningOutside(name string, port int) []string {
	return []string{"sh", "-c", `pid=$(podman inspect --format '{{.State.Pid}}' "$1") || exit 1
for i in $(seq $(($3 * 2))); do nsenter -t "$pid" -n bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0"' "$2" 2>/dev/null && exit 0; sleep 0.5; done
echo "nothing accepts connections on port $2 after $3 s: is listen the port the image serves?" >&2; exit 1`, "vmnet-wait", name, strconv.Itoa(port), strconv.Itoa(ListenWait)}
}

// networkIs is a test that podman network name exists with want as its
// "DRIVER SUBNET INTERFACE" (a bridge's interface is podman's pick, so its
// want ends after the subnet): a network of the same name with other
// settings is replaced.
func networkIs(name, want string) []string {
	format := `{{.Driver}} {{range .Subnets}}{{.Subnet}}{{end}} {{if eq .Driver "macvlan"}}{{.NetworkInterface}}{{end}}`
	return []string{"sh", "-c", `[ "$(podman network inspect --format "$1" "$2" 2>/dev/null)" = "$3" ]`, "vmnet-test", format, name, want}
}

// removeNetwork removes podman network name and the containers on it
// (they are started again by their own steps), when it exists.
func removeNetwork(name string) []string {
	return []string{"sh", "-c", `if podman network exists "$1"; then podman network rm -f "$1" >/dev/null; fi`, "vmnet-rm", name}
}

// labelIs is a test that kind (container or pod) name exists with its
// hash label h (and, for a container, running: suffix " true").
func labelIs(kind, name, h, suffix string) []string {
	format := `{{index .Labels "` + HashLabel + `"}}`
	if kind == "container" {
		format = `{{index .Config.Labels "` + HashLabel + `"}} {{.State.Running}}`
	}
	return []string{"sh", "-c", `[ "$(podman "$1" inspect --format "$2" "$3" 2>/dev/null)" = "$4" ]`, "vmnet-test", kind, format, name, h + suffix}
}

// describe says a container's network mode for people.
func describe(c lab.Container) string {
	switch m := c.Mode(); m {
	case lab.ModePod:
		return "pod " + c.Pod
	case lab.ModeMacvlan, lab.ModeIPvlan:
		return m + " on " + c.Parent
	case lab.ModeBridge:
		return "network " + c.Network
	default:
		return "network " + m
	}
}

func hash(args []string) string {
	sum := sha256.Sum256([]byte(strings.Join(args, "\x00")))
	return hex.EncodeToString(sum[:6])
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
