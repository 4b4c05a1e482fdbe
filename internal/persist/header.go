package persist

import (
	"bytes"
	"fmt"
	"strings"

	"vmnet/internal/valid"
)

// headerMarker starts the first line of every file vmnet writes. It is how
// vmnet recognises its own files (principle 3: ownership is marked on the
// object), so it must never change: files written by older versions have to
// stay recognisable. All four consumers accept "#" comment lines.
const headerMarker = "# vmnet-managed: bridge="

// header is the ownership line for a bridge's files, newline included.
func header(bridge string) string {
	return fmt.Sprintf("%s%s -- written by vmnet; removed by \"vmnet bridge delete %s\". Do not edit.\n",
		headerMarker, bridge, bridge)
}

// parseHeader returns the bridge named by content's vmnet header, and false
// when the first line is not one. Only the first line counts, so a marker
// quoted further down in a foreign file does not make it vmnet's.
func parseHeader(content []byte) (string, bool) {
	line, _, _ := bytes.Cut(content, []byte("\n"))
	rest, ok := strings.CutPrefix(strings.TrimSuffix(string(line), "\r"), headerMarker)
	if !ok {
		return "", false
	}
	name, _, _ := strings.Cut(rest, " ")
	if checkIfName(name) != nil {
		return "", false
	}
	return name, true
}

// checkIfName accepts the interface names vmnet will put into file names and
// configuration syntax: valid.InterfaceName's portable subset (what udev and
// people use: eth0, enp3s0, br-lab, vlan.10), so no backend's syntax needs
// quoting and no name can escape a directory.
func checkIfName(name string) error { return valid.InterfaceName("interface name", name) }
