package vmspec

import (
	"fmt"
	"net/netip"

	"vmnet/internal/errs"
)

// AddrHolder is an address that something other than the NIC being checked
// already has on a link: the host, another VM, a DHCP reservation.
type AddrHolder struct {
	Addr netip.Addr
	Who  string // for people: "the host's address on br0", "VM web's NIC eth1"
}

// AddrLink is what a NIC with a static address attaches to, as far as its
// address is concerned: the subnet there, the DHCP pool, and who already
// holds which address.
type AddrLink struct {
	Name    string        // for people: "bridge br0", "network nat0"
	Subnet  netip.Prefix  // the link's subnet; invalid when unknown (a bridge without an address of that family)
	Pool    [2]netip.Addr // the DHCP pool, first and last; zero when the link has none
	Holders []AddrHolder  // the host's addresses first, then other VMs' and reservations
}

// maxFreeSearch bounds the search for a free address: holders are few, so a
// free one comes long before this in any subnet that has one.
const maxFreeSearch = 1 << 16

// CheckStatic checks the static address addr of the NIC at field (such as
// nics[1].address) against the link it attaches to. A static address must
// lie in the link's subnet with its prefix length, must not be the subnet's
// network or broadcast address, nor an address someone holds there (a check
// whose target is its own source proves nothing, and a duplicate address
// breaks both holders), nor inside the DHCP pool, where dnsmasq may lease it
// to another guest. The error's fix names a free address to use instead.
func CheckStatic(field string, addr netip.Prefix, l AddrLink) *FieldError {
	subnet := l.Subnet
	if !subnet.IsValid() {
		subnet = addr.Masked() // unknown: the NIC's own subnet is still its link's
	}
	subnet = subnet.Masked()
	a := addr.Addr()
	bad := func(problem, fixFmt string) *FieldError {
		free := "no address is free there: use a larger subnet, or remove a holder"
		if f := FreeAddress(subnet, l.Pool, holderAddrs(l.Holders, a)...); f.IsValid() {
			free = fmt.Sprintf(fixFmt, netip.PrefixFrom(f, subnet.Bits()))
		}
		return &FieldError{Form: errs.PathForm, Field: field, Value: addr.String(), Problem: problem, Fix: free}
	}
	switch {
	case a.BitLen() != subnet.Addr().BitLen() || !subnet.Contains(a):
		return bad(fmt.Sprintf("is not in %s's subnet %s", l.Name, subnet), "use an address inside "+subnet.String()+", such as %s")
	case addr.Bits() != subnet.Bits():
		return bad(fmt.Sprintf("has prefix length %d, but %s's subnet is %s", addr.Bits(), l.Name, subnet), "use prefix length "+fmt.Sprint(subnet.Bits())+", such as %s")
	case a.Is4() && subnet.Bits() < 31 && a == subnet.Addr():
		return bad("is the network address of "+subnet.String(), "use a host address, such as %s")
	case a.Is4() && subnet.Bits() < 31 && a == lastAddr(subnet):
		return bad("is the broadcast address of "+subnet.String(), "use a host address, such as %s")
	}
	for _, h := range l.Holders {
		if h.Addr == a {
			return bad("is already in use: "+h.Who, "use a free address, such as %s")
		}
	}
	if inPool(a, l.Pool) {
		return bad(fmt.Sprintf("is inside %s's DHCP pool %s-%s, where dnsmasq may lease it to another guest", l.Name, l.Pool[0], l.Pool[1]),
			"use an address below the pool, such as %s")
	}
	return nil
}

// FreeAddress is the first address of subnet that nobody in taken holds,
// outside the DHCP pool, and neither the network, broadcast nor first host
// address (.1, where vmnet puts the host); so, in the lower half of a subnet
// with vmnet's default pool. Invalid when there is none. A /31 or /32 (IPv4)
// has no network or broadcast address: each of its addresses may be free.
func FreeAddress(subnet netip.Prefix, pool [2]netip.Addr, taken ...netip.Addr) netip.Addr {
	subnet = subnet.Masked()
	if !subnet.IsValid() {
		return netip.Addr{}
	}
	held := map[netip.Addr]bool{}
	for _, t := range taken {
		held[t] = true
	}
	first, last := subnet.Addr(), lastAddr(subnet)
	if hostBits := subnet.Addr().BitLen() - subnet.Bits(); hostBits >= 2 {
		first = first.Next().Next() // past the network address and .1
		if subnet.Addr().Is4() {
			last = last.Prev() // the broadcast address
		}
	}
	a := first
	for range maxFreeSearch {
		if !a.IsValid() || !subnet.Contains(a) || last.Less(a) {
			return netip.Addr{}
		}
		switch {
		case inPool(a, pool):
			a = pool[1].Next()
		case held[a]:
			a = a.Next()
		default:
			return a
		}
	}
	return netip.Addr{}
}

func holderAddrs(hs []AddrHolder, also netip.Addr) []netip.Addr {
	out := []netip.Addr{also}
	for _, h := range hs {
		out = append(out, h.Addr)
	}
	return out
}

func inPool(a netip.Addr, pool [2]netip.Addr) bool {
	return pool[0].IsValid() && pool[1].IsValid() && a.BitLen() == pool[0].BitLen() &&
		!a.Less(pool[0]) && !pool[1].Less(a)
}

// lastAddr is the last address of p (its broadcast address, for IPv4).
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
