package cloudinit

import (
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"vmnet/internal/errs"
	"vmnet/templates"
)

// Where the capstone's files live in templates.Capstone and in the guest.
const (
	capstoneGuestDir     = "capstone/guest"
	capstoneEnableList   = "capstone/enable.txt"
	capstonePackageList  = "capstone/container-packages.txt"
	capstoneRootfsScript = "capstone/cloud-init/vmnet-app-rootfs"

	// GuestPackageList is where the container rootfs's package list lands in
	// a cloud-image guest, for vmnet-app-rootfs.
	GuestPackageList = "/usr/local/lib/vmnet/container-packages.txt"
	// GuestRootfsScript builds the container rootfs in a cloud-image guest.
	GuestRootfsScript = "/usr/local/sbin/vmnet-app-rootfs"
	// SecretsDir holds the database password that vmnet writes through the
	// guest agent; it must exist, root-only, before the agent runs.
	SecretsDir = "/etc/vmnet/secrets"
)

// CapstonePackages are the Debian/Ubuntu packages a stock cloud image gets
// for the capstone lab: podman with netavark and aardvark-dns (DNS on
// app-net) and iptables (netavark's NAT), D-Bus (podman's systemd cgroup
// manager and health-check timers), nftables (the firewall), the QEMU guest
// agent (vmnet's only way in), mmdebstrap and Debian's keyring (the
// containers' rootfs), curl (vmnet-app-wait).
var CapstonePackages = []string{
	"podman", "netavark", "aardvark-dns", "iptables", "dbus", "nftables",
	"qemu-guest-agent", "mmdebstrap", "debian-archive-keyring", "curl", "ca-certificates",
}

// Capstone renders the seed that makes guest g, booted from a stock Debian
// 12 or Ubuntu 24.04 cloud image with internet access, the capstone lab's
// guest: every file of templates/capstone/guest/ at its path (modes as the
// image build sets them), the packages above, the units of enable.txt
// enabled and the firewall loaded, the container rootfs built with
// mmdebstrap from container-packages.txt, and the app started at the end
// when vmnet has already delivered the password.
func Capstone(g Guest) (Seed, error) {
	ud, err := CapstoneUserData(templates.Capstone)
	if err != nil {
		return Seed{}, err
	}
	return Render(g, ud)
}

// CapstoneUserData builds the capstone's user-data from fsys, laid out as
// templates.Capstone (capstone/guest/, capstone/enable.txt, ...).
func CapstoneUserData(fsys fs.FS) (UserData, error) {
	files, err := GuestFiles(fsys, capstoneGuestDir)
	if err != nil {
		return UserData{}, err
	}
	list, err := fs.ReadFile(fsys, capstonePackageList)
	if err != nil {
		return UserData{}, fmt.Errorf("read the container package list: %w", err)
	}
	script, err := fs.ReadFile(fsys, capstoneRootfsScript)
	if err != nil {
		return UserData{}, fmt.Errorf("read the container rootfs script: %w", err)
	}
	files = append(files,
		File{Path: GuestPackageList, Mode: 0o644, Content: list},
		File{Path: GuestRootfsScript, Mode: 0o755, Content: script})
	enable, err := fs.ReadFile(fsys, capstoneEnableList)
	if err != nil {
		return UserData{}, fmt.Errorf("read the list of units to enable: %w", err)
	}
	units, err := ParseUnitList(string(enable))
	if err != nil {
		return UserData{}, err
	}
	return UserData{
		Comment: "vmnet capstone lab: the app (db, api, proxy on podman network app-net),\n" +
			"its systemd units and its firewall, for a stock Debian 12 or Ubuntu 24.04 cloud image.\n" +
			"No secret is in this file: vmnet writes the database password to\n" +
			SecretsDir + "/db-password through the QEMU guest agent after boot.",
		BootCmd: [][]string{
			// Every boot, before the agent can run: the password's directory,
			// root-only, so the file is never readable by others.
			{"install", "-d", "-m", "0700", "-o", "root", "-g", "root", SecretsDir},
		},
		Packages: CapstonePackages,
		Files:    files,
		RunCmd: [][]string{
			{"systemctl", "daemon-reload"},
			{"systemd-tmpfiles", "--create", "/etc/tmpfiles.d/vmnet-app.conf"},
			append([]string{"systemctl", "enable"}, units...),
			{"systemctl", "restart", "nftables.service"},
			{"systemctl", "start", "qemu-guest-agent.service"},
			{GuestRootfsScript},
			// vmnet may have written the password and tried to start the app
			// while the rootfs was still being built (the units then skip):
			// start it now. Otherwise vmnet starts it when it writes the password.
			{"sh", "-c", "if [ -f " + SecretsDir + "/db-password ]; then systemctl start --no-block vmnet-app.target; fi"},
		},
	}, nil
}

// GuestFileMode is the mode the capstone's guest files get, in the image
// and through cloud-init alike: 0755 for a name ending in .sh or a file in a
// bin/ or sbin/ directory, 0644 for everything else.
func GuestFileMode(p string) fs.FileMode {
	dir := path.Base(path.Dir(p))
	if strings.HasSuffix(p, ".sh") || dir == "bin" || dir == "sbin" {
		return 0o755
	}
	return 0o644
}

// GuestFiles lists every regular file under root in fsys as the file it
// becomes in the guest: the path below root, made absolute, with
// GuestFileMode. Sorted by path.
func GuestFiles(fsys fs.FS, root string) ([]File, error) {
	var files []File
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file", p)
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		guestPath := "/" + strings.TrimPrefix(p, root+"/")
		files = append(files, File{Path: guestPath, Mode: GuestFileMode(guestPath), Content: b})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the guest files under %s: %w", root, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("read the guest files under %s: no files", root)
	}
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return files, nil
}

// unitSuffixes are the unit types a list may enable.
var unitSuffixes = []string{".service", ".target", ".timer", ".socket", ".path", ".mount"}

// ParseUnitList reads a list of systemd units, one per line, with '#'
// comments and blank lines (templates/capstone/enable.txt).
func ParseUnitList(text string) ([]string, error) {
	var units []string
	for i, line := range strings.Split(text, "\n") {
		line, _, _ = strings.Cut(line, "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		ok := !strings.ContainsAny(line, " \t/") && slices.ContainsFunc(unitSuffixes, func(s string) bool {
			return strings.HasSuffix(line, s) && len(line) > len(s)
		})
		if !ok {
			return nil, &errs.FieldError{Field: fmt.Sprintf("enable.txt line %d", i+1), Value: line, Problem: "is not a systemd unit name",
				Fix: "write one unit per line with its type, e.g. vmnet-app.target"}
		}
		units = append(units, line)
	}
	return units, nil
}
