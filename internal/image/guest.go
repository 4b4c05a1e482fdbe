package image

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"vmnet/internal/bridge"
)

// The console lines of the tiny guest (see the package comment).
const (
	ReadyPrefix = "VMNET-READY" // every NIC is configured or has failed
	NICPrefix   = "VMNET-NIC"   // one NIC is configured or has failed
)

// StaticNIC is a fixed IPv4 address for one NIC of the tiny guest.
type StaticNIC struct {
	Index   int          // N of ethN: the NIC's place in PCI order, from 0
	Address netip.Prefix // host address and prefix length, e.g. 192.0.2.10/24
	Gateway netip.Addr   // default route via this address; zero for none
	DNS     netip.Addr   // name server for /etc/resolv.conf; zero for none
}

// FieldError is a bad value for the guest's kernel command line.
type FieldError struct {
	Field   string
	Value   string
	Problem string
	Fix     string
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s %q: %s", e.Field, e.Value, e.Problem) }

// Hint says how to fix the value.
func (e *FieldError) Hint() string { return e.Fix }

// ErrInvalid matches every FieldError with errors.Is. It is the one
// invalid-input sentinel (bridge.ErrInvalid) that the CLI maps to exit code 2.
var ErrInvalid = bridge.ErrInvalid

// Is makes errors.Is(err, ErrInvalid) true for field errors.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

var hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)

// GuestArgs returns the kernel command-line words that give the tiny guest
// its hostname ("" keeps the default) and static addresses; a NIC not listed
// uses DHCP. Append them to Image.Cmdline.
func GuestArgs(hostname string, static []StaticNIC) (string, error) {
	var words []string
	if hostname != "" {
		if len(hostname) > 253 || !hostnameRE.MatchString(hostname) {
			return "", &FieldError{Field: "hostname", Value: hostname, Problem: "is not a valid hostname",
				Fix: "use letters, digits and '-' (labels of 1 to 63, separated by '.'), for example web1"}
		}
		words = append(words, "vmnet.hostname="+hostname)
	}
	nics := append([]StaticNIC(nil), static...)
	sort.Slice(nics, func(i, j int) bool { return nics[i].Index < nics[j].Index })
	for i, n := range nics {
		field := fmt.Sprintf("vmnet.ip.%d", n.Index)
		bad := func(value, problem, fix string) error {
			return &FieldError{Field: field, Value: value, Problem: problem, Fix: fix}
		}
		if n.Index < 0 {
			return "", bad(strconv.Itoa(n.Index), "NIC index is negative", "count NICs from 0 in PCI order")
		}
		if i > 0 && nics[i-1].Index == n.Index {
			return "", bad(n.Address.String(), "a second static address for the same NIC", "give each NIC at most one static address")
		}
		a := n.Address.Addr()
		if !n.Address.IsValid() || !a.Is4() || n.Address.Bits() == 0 {
			return "", bad(n.Address.String(), "is not an IPv4 address with a prefix length", "write it like 192.0.2.10/24")
		}
		if n.Address.Bits() < 31 {
			if a == n.Address.Masked().Addr() {
				return "", bad(n.Address.String(), "is the network address of its subnet", "use a host address inside "+n.Address.Masked().String())
			}
			if a == broadcast(n.Address) {
				return "", bad(n.Address.String(), "is the broadcast address of its subnet", "use a host address inside "+n.Address.Masked().String())
			}
		}
		w := field + "=" + n.Address.String()
		if n.Gateway.IsValid() {
			if !n.Gateway.Is4() || !n.Address.Contains(n.Gateway) || n.Gateway == a {
				return "", bad(n.Gateway.String(), "is not another IPv4 address in "+n.Address.Masked().String(),
					"the gateway must be on the NIC's subnet, for example "+n.Address.Masked().Addr().Next().String())
			}
			w += ",gw=" + n.Gateway.String()
		}
		if n.DNS.IsValid() {
			if n.DNS.Zone() != "" {
				return "", bad(n.DNS.String(), "has a zone", "leave out the %zone part")
			}
			w += ",dns=" + n.DNS.String()
		}
		words = append(words, w)
	}
	return strings.Join(words, " "), nil
}

// broadcast is the highest address of an IPv4 prefix.
func broadcast(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= 1<<(32-p.Bits()) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// NICStatus is what the guest reported about one NIC.
type NICStatus struct {
	Name    string       `json:"name"`          // ethN
	MAC     string       `json:"mac,omitempty"` // only in VMNET-NIC lines
	Via     string       `json:"via,omitempty"` // static or dhcp; only in VMNET-NIC lines
	Address netip.Prefix `json:"address"`       // invalid when the NIC failed
	Error   string       `json:"error,omitempty"`
}

// OK reports whether the NIC got its address.
func (n NICStatus) OK() bool { return n.Error == "" && n.Address.IsValid() }

// Ready is the guest's ready line.
type Ready struct {
	Hostname string      `json:"hostname"`
	NICs     []NICStatus `json:"nics"`
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

// ErrNotReadyLine is returned by ParseReady and ParseNIC for a line that is not of their kind.
var ErrNotReadyLine = errors.New("not a vmnet guest status line")

// ParseReady reads a VMNET-READY line, such as
// "VMNET-READY hostname=tiny eth0=192.0.2.10/24 eth1=failed:no-dhcp-lease".
// Text before the prefix (a console's noise) is ignored.
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
			if reason == "" {
				n.Error = "unknown"
			}
		} else if n.Address, err = netip.ParsePrefix(v); err != nil {
			return Ready{}, fmt.Errorf("%s line: %s=%q is neither ADDR/PREFIX nor failed:REASON", ReadyPrefix, k, v)
		}
		r.NICs = append(r.NICs, n)
	}
	return r, nil
}

// ParseNIC reads a VMNET-NIC line, such as
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
		return nil, fmt.Errorf("%w: no %s in %q", ErrNotReadyLine, prefix, line)
	}
	rest := line[i+len(prefix):]
	if rest != "" && rest[0] != ' ' && rest[0] != '\r' && rest[0] != '\t' {
		return nil, fmt.Errorf("%w: %q", ErrNotReadyLine, line)
	}
	return strings.Fields(rest), nil
}
