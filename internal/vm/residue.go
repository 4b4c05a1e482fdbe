package vm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"libvirt.org/go/libvirtxml"

	"vmnet/internal/domain"
	"vmnet/internal/errs"
	"vmnet/internal/network"
)

// DefaultQemuLogDir is where libvirt's QEMU driver keeps one log per
// domain (NAME.log, and NAME.log.N once virtlogd has rotated it).
const DefaultQemuLogDir = "/var/log/libvirt/qemu"

func (e Env) qemuLogDir() string {
	if e.QemuLogDir != "" {
		return e.QemuLogDir
	}
	return DefaultQemuLogDir
}

// vmnetFileName matches the names vmnet gives the files in a VM's
// directory: the disks, the seed, the console log, the secrets directory
// and the record, and the temporary files the seed and the record are
// written through (fsperm.WriteFileAtomic's ".NAME" plus digits, and the
// ".seed.iso.*" and "vmnet.json.tmp" of older vmnets).
var vmnetFileName = regexp.MustCompile(`^(` + regexp.QuoteMeta(domain.OverlayFile) + `|disk[0-9]+\.qcow2|` +
	regexp.QuoteMeta(domain.SeedFile) + `|\.` + regexp.QuoteMeta(domain.SeedFile) + `.+|` +
	regexp.QuoteMeta(domain.ConsoleLogFile) + `|secrets|` + regexp.QuoteMeta(recordFile) + `(\.tmp)?|` +
	`\.` + regexp.QuoteMeta(recordFile) + `[0-9]+)$`)

// removeVMDir removes the files vmnet made in the VM's directory dir and
// then dir itself. files are those the domain's metadata and the record
// list; only those directly in dir are touched (metadata is data, not a
// licence). Without a record (missing, or torn by a crash) the directory
// is still recognised as vmnet's when it is home, STATEDIR/vms/NAME, where
// only vmnet writes: then every file vmnet names that way goes too. Files
// of any other name are left, and the directory with them, with an error
// that lists them.
func removeVMDir(res *DownResult, stateDir, home, dir string, files []string, recOK bool) error {
	for _, f := range files {
		if filepath.Dir(f) != dir {
			continue
		}
		if err := os.Remove(f); err == nil {
			res.Changes = append(res.Changes, "remove "+f)
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", f, err)
		}
	}
	if !recOK && dir != home {
		return nil // neither the record nor the place says the directory is vmnet's
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var foreign []string
	for _, en := range entries {
		n := en.Name()
		switch {
		case !vmnetFileName.MatchString(n):
			foreign = append(foreign, n)
		case n == recordFile:
			// The record goes last: a down killed midway, or refused for a
			// foreign file, still finds the directory to be vmnet's.
		case n == "secrets":
			if err := os.RemoveAll(filepath.Join(dir, n)); err != nil {
				return err
			}
			res.Changes = append(res.Changes, "remove the VM's secrets")
		default:
			p := filepath.Join(dir, n)
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("remove %s: %w", p, err)
			}
			res.Changes = append(res.Changes, "remove "+p)
		}
	}
	if len(foreign) > 0 {
		slices.Sort(foreign)
		return errs.WithHint(fmt.Errorf("remove %s: it holds files vmnet did not make: %s", dir, strings.Join(foreign, ", ")),
			fmt.Sprintf("move them away (vmnet removed its own files and the VM), then run 'vmnet vm down %s' again",
				filepath.Base(dir)))
	}
	if err := os.Remove(recordPath(dir)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	res.Changes = append(res.Changes, "remove "+dir)
	res.Outcome = "removed"
	os.Remove(filepath.Dir(dir)) // STATEDIR/vms, when this was the last VM
	os.Remove(stateDir)
	return nil
}

// removeQemuLog removes libvirt's log of domain name (NAME.log and its
// rotations NAME.log.N). Only for a domain vmnet owned: the caller knows.
func removeQemuLog(res *DownResult, logDir, name string) error {
	paths := []string{filepath.Join(logDir, name+".log")}
	rotated, _ := filepath.Glob(filepath.Join(logDir, name+".log.[0-9]*"))
	for _, p := range append(paths, rotated...) {
		if err := os.Remove(p); err == nil {
			res.Changes = append(res.Changes, "remove "+p)
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove libvirt's log %s: %w", p, err)
		}
	}
	return nil
}

// networkNICs lists the NICs of a domain's XML that are on a libvirt network.
func networkNICs(x string) []nicRecord {
	var d libvirtxml.Domain
	if d.Unmarshal(x) != nil || d.Devices == nil {
		return nil
	}
	var out []nicRecord
	for _, i := range d.Devices.Interfaces {
		if i.MAC != nil && i.Source != nil && i.Source.Network != nil {
			out = append(out, nicRecord{Network: i.Source.Network.Network, MAC: strings.ToLower(i.MAC.Address)})
		}
	}
	return out
}

// removeOrphanReservations removes the DHCP reservations of a vmnet VM
// whose record is lost: on each network NIC of its domain, the reservation
// with the NIC's MAC and the VM's name as host name, as reserve makes them.
// A reservation someone else made for that MAC has another name and stays.
func removeOrphanReservations(e Env, res *DownResult, name string, nics []nicRecord) error {
	for _, n := range nics {
		hosts, err := e.Conn.Hosts(n.Network)
		var nf *network.NotFoundError
		if errors.As(err, &nf) {
			continue
		}
		if err != nil {
			return err
		}
		for _, h := range hosts {
			if !strings.EqualFold(h.MAC, n.MAC) || h.Hostname != name {
				continue
			}
			changed, err := e.Conn.RemoveHost(n.Network, n.MAC)
			if err != nil {
				return fmt.Errorf("remove the DHCP reservation of %s on %s: %w", n.MAC, n.Network, err)
			}
			if changed {
				res.Changes = append(res.Changes, fmt.Sprintf("remove reservation %s on %s", h.IP, n.Network))
			}
			removeLease(e.Conn, n.Network, n.MAC)
		}
	}
	return nil
}
