package check

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"

	"vmnet/internal/bridge"
)

// KernelHost is the real Host: ICMP, TCP and HTTP from the network namespace
// of a netlink handle (the one vmnet runs in for `vmnet check`, a throwaway
// one in tests), and link state over netlink. Sockets are made inside the
// namespace and keep working from any thread afterwards.
type KernelHost struct {
	K bridge.Kernel
}

var _ Host = KernelHost{}

// maxBody is how much of an HTTP answer is kept: enough for the API's JSON
// and an error page.
const maxBody = 64 << 10

// Ping sends ICMP echo from the namespace (bridge.Ping, a raw socket).
func (h KernelHost) Ping(ctx context.Context, to netip.Addr, timeout time.Duration) error {
	err := bridge.Ping(ctx, h.K, to, timeout)
	if errors.Is(err, bridge.ErrNoAnswer) {
		return fmt.Errorf("ping %s: %w", to, ErrNoAnswer)
	}
	return err
}

// dial connects inside the namespace.
func (h KernelHost) dial(ctx context.Context, addr string, timeout time.Duration) (net.Conn, error) {
	var conn net.Conn
	err := h.K.Do(func() error {
		d := net.Dialer{Timeout: timeout}
		var err error
		conn, err = d.DialContext(ctx, "tcp", addr)
		return err
	})
	if err != nil {
		return nil, classify(err)
	}
	return conn, nil
}

// classify maps connect errors to ErrRefused and ErrNoAnswer.
func classify(err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET):
		return fmt.Errorf("%w (%v)", ErrRefused, err)
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%w (%v)", ErrNoAnswer, err)
	}
	return err
}

// Dial opens a TCP connection and closes it at once.
func (h KernelHost) Dial(ctx context.Context, to netip.AddrPort, timeout time.Duration) error {
	conn, err := h.dial(ctx, to.String(), timeout)
	if err != nil {
		return err
	}
	return conn.Close()
}

// Get does one HTTP GET without keep-alive or proxies (the environment's
// proxy settings are for the real network, not the lab).
func (h KernelHost) Get(ctx context.Context, url string, timeout time.Duration) (int, []byte, error) {
	tr := &http.Transport{
		Proxy:             nil,
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return h.dial(ctx, addr, timeout)
		},
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: timeout}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, ErrRefused) || errors.Is(err, ErrNoAnswer) {
			return 0, nil, err // from dial, inside *url.Error
		}
		return 0, nil, classify(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return resp.StatusCode, body, fmt.Errorf("read the answer of %s: %w", url, classify(err))
	}
	return resp.StatusCode, body, nil
}

// Link reads a link's state over netlink (ip -d link show NAME; ip addr).
func (h KernelHost) Link(name string) (Link, error) {
	l, err := h.K.LinkByName(name)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return Link{Name: name}, nil
	}
	if err != nil {
		return Link{}, fmt.Errorf("read link %s: %w", name, err)
	}
	a := l.Attrs()
	out := Link{Name: name, Exists: true, Up: a.Flags&net.FlagUp != 0, OperState: a.OperState.String()}
	if a.MasterIndex > 0 {
		if m, err := h.K.LinkByIndex(a.MasterIndex); err == nil {
			out.Master = m.Attrs().Name
		} else {
			out.Master = fmt.Sprintf("link %d", a.MasterIndex)
		}
	}
	addrs, err := h.K.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return out, fmt.Errorf("list addresses of %s: %w", name, err)
	}
	for _, ad := range addrs {
		ip, ok := netip.AddrFromSlice(ad.IP)
		if !ok {
			continue
		}
		ones, _ := ad.Mask.Size()
		out.Addrs = append(out.Addrs, netip.PrefixFrom(ip.Unmap(), ones))
	}
	return out, nil
}

var _ Neighbours = KernelHost{}

// Neigh reads the host's neighbour table (ip neigh show ADDR) in the
// namespace: the MAC of a's entry, or "" when it has none (or an
// incomplete one).
func (h KernelHost) Neigh(a netip.Addr) (string, error) {
	var mac string
	err := h.K.Do(func() error {
		list, err := netlink.NeighList(0, netlink.FAMILY_V4)
		for _, n := range list {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap() == a && len(n.HardwareAddr) > 0 {
				mac = n.HardwareAddr.String()
			}
		}
		return err
	})
	return mac, err
}
