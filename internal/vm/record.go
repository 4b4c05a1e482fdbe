package vm

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"vmnet/internal/domain"
	"vmnet/internal/fsperm"
)

// recordFile is the first file vmnet writes for a VM and the last it
// deletes. It lists everything vmnet makes outside the domain (DHCP
// reservations, files), so that `down` can clean up after an `up` that was
// killed before the domain, and its metadata, existed.
const recordFile = "vmnet.json"

// record is what recordFile holds.
type record struct {
	Owner string `json:"owner"` // always domain.Owner
	Name  string `json:"name"`
	Hash  string `json:"hash"` // the spec's hash
	// Lab is the lab that made the VM ("" for none): OfLab finds an up of a
	// lab that was killed before the domain, and its metadata, existed.
	Lab   string      `json:"lab,omitempty"`
	NICs  []nicRecord `json:"nics"`
	Files []string    `json:"files"`
	// Provisioned is the spec hash the guest was provisioned for; "" until
	// provisioning finished, so an up killed during it provisions again.
	Provisioned string `json:"provisioned,omitempty"`
	// Agent says the guest signals readiness through the QEMU guest agent:
	// exec then waits for the agent instead of falling back to the console.
	Agent bool `json:"agent,omitempty"`
}

// nicRecord is one NIC as planned, with the address vmnet gave it.
type nicRecord struct {
	Network  string       `json:"network,omitempty"`
	Bridge   string       `json:"bridge,omitempty"`
	Parent   string       `json:"parent,omitempty"` // macvtap: the host interface
	Mode     string       `json:"mode,omitempty"`   // macvtap: its mode
	MAC      string       `json:"mac"`
	Static   netip.Prefix `json:"static,omitzero"`   // passed on the kernel command line
	Reserved netip.Addr   `json:"reserved,omitzero"` // a DHCP reservation vmnet added
}

func recordPath(dir string) string { return filepath.Join(dir, recordFile) }

// writeRecord saves r atomically in dir.
func writeRecord(dir string, r record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := fsperm.WriteFileAtomic(recordPath(dir), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", recordPath(dir), err)
	}
	return nil
}

// readRecord loads dir's record; ok is false when there is none, or it is
// not vmnet's.
func readRecord(dir string) (r record, ok bool, err error) {
	b, err := os.ReadFile(recordPath(dir))
	if errors.Is(err, os.ErrNotExist) {
		return record{}, false, nil
	}
	if err != nil {
		return record{}, false, err
	}
	if err := json.Unmarshal(b, &r); err != nil || r.Owner != domain.Owner {
		// A torn or foreign file: the directory is not vmnet's to delete.
		return record{}, false, nil
	}
	return r, true, nil
}
