package image

import (
	"fmt"
	"net/netip"
	"strings"
)

// The tiny guest's console lines (see the package comment). Only the
// integration tests read them; vmnet itself waits for Image.ReadyLine.
const (
	ReadyPrefix = "VMNET-READY" // every NIC is configured or has failed
	NICPrefix   = "VMNET-NIC"   // one NIC is configured or has failed
)

// StaticNIC is a fixed IPv4 address for NIC ethIndex of a test guest.
type StaticNIC struct {
	Index   int
	Address netip.Prefix
	Gateway netip.Addr
	DNS     netip.Addr
}

// GuestArgs returns the kernel command-line words for a test guest's
// hostname and static addresses, in the form the package comment gives
// (vmnet itself builds them in internal/domain).
func GuestArgs(hostname string, static []StaticNIC) (string, error) {
	var words []string
	if hostname != "" {
		words = append(words, "vmnet.hostname="+hostname)
	}
	for _, n := range static {
		if !n.Address.IsValid() {
			return "", fmt.Errorf("vmnet.ip.%d: no address", n.Index)
		}
		w := fmt.Sprintf("vmnet.ip.%d=%s", n.Index, n.Address)
		if n.Gateway.IsValid() {
			w += ",gw=" + n.Gateway.String()
		}
		if n.DNS.IsValid() {
			w += ",dns=" + n.DNS.String()
		}
		words = append(words, w)
	}
	return strings.Join(words, " "), nil
}

// NICStatus is what the guest reported about one NIC.
type NICStatus struct {
	Name, MAC, Via, Error string
	Address               netip.Prefix // invalid when the NIC failed
}

// OK reports whether the NIC got its address.
func (n NICStatus) OK() bool { return n.Error == "" && n.Address.IsValid() }

// Ready is the guest's ready line.
type Ready struct {
	Hostname string
	NICs     []NICStatus
}

// NIC returns the status of NIC name (ethN), and whether the guest reported it.
func (r Ready) NIC(name string) (NICStatus, bool) {
	for _, n := range r.NICs {
		if n.Name == name {
			return n, true
		}
	}
	return NICStatus{}, false
}

// ParseReady reads a line such as
// "VMNET-READY hostname=tiny eth0=192.0.2.10/24 eth1=failed:no-dhcp-lease".
func ParseReady(line string) (Ready, error) {
	f, err := statusFields(line, ReadyPrefix)
	if err != nil {
		return Ready{}, err
	}
	var r Ready
	for _, w := range f {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			return Ready{}, fmt.Errorf("%s line: %q is not KEY=VALUE", ReadyPrefix, w)
		}
		if k == "hostname" {
			r.Hostname = v
			continue
		}
		n := NICStatus{Name: k}
		if reason, failed := strings.CutPrefix(v, "failed:"); failed {
			n.Error = reason
		} else if n.Address, err = netip.ParsePrefix(v); err != nil {
			return Ready{}, fmt.Errorf("%s line: %s=%q is neither ADDR/PREFIX nor failed:REASON", ReadyPrefix, k, v)
		}
		r.NICs = append(r.NICs, n)
	}
	return r, nil
}

// ParseNIC reads a line such as
// "VMNET-NIC eth0 mac=52:54:00:00:00:0a via=static addr=192.0.2.10/24".
func ParseNIC(line string) (NICStatus, error) {
	f, err := statusFields(line, NICPrefix)
	if err != nil {
		return NICStatus{}, err
	}
	if len(f) == 0 {
		return NICStatus{}, fmt.Errorf("%s line without a NIC name", NICPrefix)
	}
	n := NICStatus{Name: f[0]}
	for _, w := range f[1:] {
		k, v, _ := strings.Cut(w, "=")
		switch k {
		case "mac":
			n.MAC = v
		case "via":
			n.Via = v
		case "error":
			n.Error = v
		case "addr":
			if v != "-" {
				if n.Address, err = netip.ParsePrefix(v); err != nil {
					return NICStatus{}, fmt.Errorf("%s line: addr=%q is not ADDR/PREFIX", NICPrefix, v)
				}
			}
		}
	}
	return n, nil
}

// statusFields returns the words after prefix in line.
func statusFields(line, prefix string) ([]string, error) {
	i := strings.Index(line, prefix)
	if i < 0 {
		return nil, fmt.Errorf("no %s in %q", prefix, line)
	}
	return strings.Fields(line[i+len(prefix):]), nil
}
