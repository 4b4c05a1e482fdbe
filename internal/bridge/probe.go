package bridge

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"vmnet/internal/safe"
)

// ErrNoAnswer is returned by Ping when the target stayed silent.
var ErrNoAnswer = errors.New("no answer to ICMP echo")

// Ping sends ICMP echo requests to target from the handle's network
// namespace, one every 250 ms, until one is answered or timeout passes
// (ping -w TIMEOUT TARGET, stopping at the first reply).
func Ping(ctx context.Context, k Kernel, target netip.Addr, timeout time.Duration) error {
	network, laddr, reqType, replyType := "ip4:icmp", "0.0.0.0", byte(8), byte(0)
	if target.Is6() {
		network, laddr, reqType, replyType = "ip6:ipv6-icmp", "::", 128, 129
	}
	var conn net.PacketConn
	// The raw socket is made inside the namespace and stays bound to it.
	if err := k.Do(func() (err error) {
		conn, err = net.ListenPacket(network, laddr)
		return err
	}); err != nil {
		return fmt.Errorf("open ICMP socket: %w", err)
	}
	defer conn.Close()

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	safe.Go(nil, "ping deadline", func() error { <-ctx.Done(); return conn.SetDeadline(time.Now()) }, nil)

	id := uint16(os.Getpid())
	dst := &net.IPAddr{IP: target.AsSlice(), Zone: target.Zone()}
	buf := make([]byte, 1500)
	for seq := uint16(1); ; seq++ {
		if err := ctx.Err(); err != nil {
			return ErrNoAnswer
		}
		msg := echo(reqType, id, seq)
		if _, err := conn.WriteTo(msg, dst); err != nil && ctx.Err() == nil {
			// No route or no neighbour yet: keep trying until the deadline.
			time.Sleep(250 * time.Millisecond)
			continue
		}
		wait := time.Now().Add(250 * time.Millisecond)
		conn.SetReadDeadline(wait)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				break // deadline: send the next request
			}
			src, ok := netip.AddrFromSlice(from.(*net.IPAddr).IP)
			if !ok || src.Unmap() != target.WithZone("") || n < 8 {
				continue
			}
			if buf[0] == replyType && binary.BigEndian.Uint16(buf[4:6]) == id {
				return nil
			}
		}
	}
}

// echo builds an ICMP (or ICMPv6) echo request. The kernel fills in the
// ICMPv6 checksum itself; for ICMPv4 it is computed here.
func echo(typ byte, id, seq uint16) []byte {
	b := make([]byte, 16)
	b[0] = typ
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], seq)
	copy(b[8:], "vmnet-ok")
	if typ == 8 {
		var sum uint32
		for i := 0; i < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		for sum>>16 != 0 {
			sum = sum&0xffff + sum>>16
		}
		binary.BigEndian.PutUint16(b[2:], ^uint16(sum))
	}
	return b
}
