package labrun

import (
	"errors"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"vmnet/internal/errs"
	"vmnet/internal/lab"
)

// links is a kernel with these links, and err for any other lookup when set.
type links struct {
	have map[string]bool
	err  error
	asks []string
}

func (k *links) LinkByName(name string) (netlink.Link, error) {
	k.asks = append(k.asks, name)
	if k.have[name] {
		return &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}}, nil
	}
	if k.err != nil {
		return nil, k.err
	}
	return nil, netlink.LinkNotFoundError{}
}

// A missing parent is refused as invalid input naming the lab's field and
// the command that makes one; a present one passes; a node that does not
// use the macvtap network does not need its parent; another lookup error
// is passed on, not taken for a missing parent.
func TestCheckParents(t *testing.T) {
	l, err := lab.LoadRef("macvtap")
	if err != nil {
		t.Fatal(err)
	}
	specs, err := selectSpecs(l, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = checkParents(&links{}, l, specs)
	var fe *errs.FieldError
	if !errors.Is(err, errs.ErrInvalid) || !errors.As(err, &fe) || fe.Field != "networks.wan.parent" || !strings.Contains(fe.Fix, "ip link add mv0 type veth peer name mv0-lan") {
		t.Errorf("missing mv0: %v", err)
	}
	k := &links{have: map[string]bool{"mv0": true}}
	if err := checkParents(k, l, specs); err != nil || len(k.asks) != 1 {
		t.Errorf("mv0 present: %v, lookups %v (want one)", err, k.asks)
	}
	if err := checkParents(&links{}, l, nil); err != nil {
		t.Errorf("no node on wan: %v", err)
	}
	boom := errors.New("netlink: permission denied")
	if err := checkParents(&links{err: boom}, l, specs); !errors.Is(err, boom) || errors.Is(err, errs.ErrInvalid) {
		t.Errorf("lookup failure: %v", err)
	}
}
