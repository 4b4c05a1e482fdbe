package persist

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// ErrNotDetected is returned by Detect when no backend shows signs of use.
var ErrNotDetected = errors.New("no network configuration backend detected")

// Detect says which backend manages the network of the system under root
// ("/" normally) and why, in one line naming the evidence.
//
// Persistence is about the next boot, so evidence is configuration that
// will be applied then, or a daemon that is enabled or running. Files vmnet
// wrote itself never count: an earlier choice must not decide the next one.
// The first of these that holds wins:
//
//  1. netplan: *.yaml in /etc/netplan and netplan installed. netplan
//     generates networkd or NetworkManager configuration at boot, so it
//     wins over both of them.
//  2. ifupdown: an iface stanza for something other than lo in
//     /etc/network/interfaces or a file it sources, and ifup installed.
//     Debian's NetworkManager leaves such interfaces alone, so when both
//     are present ifupdown is what configures the real NICs.
//  3. NetworkManager: running (/run/NetworkManager/NetworkManager.pid or
//     devices/) or enabled (NetworkManager.service wanted by a target).
//  4. systemd-networkd: running (/run/systemd/netif/state; the directory
//     itself exists on every systemd host) or enabled. *.network files in
//     /etc/systemd/network without the daemon do nothing, so alone they are
//     no evidence.
func Detect(root string) (Backend, string, error) {
	checks := []func(string) (string, error){detectNetplan, detectIfupdown, detectNetworkManager, detectNetworkd}
	backends := []Backend{Netplan, Ifupdown, NetworkManager, Networkd}
	for i, check := range checks {
		reason, err := check(root)
		if err != nil {
			return "", "", fmt.Errorf("detect %s under %q: %w", backends[i], root, err)
		}
		if reason != "" {
			return backends[i], string(backends[i]) + ": " + reason, nil
		}
	}
	return "", "", fmt.Errorf("%w under %q (looked for netplan, ifupdown, NetworkManager and systemd-networkd): "+
		"pass --persist with one of %s", ErrNotDetected, root,
		strings.Join([]string{string(Networkd), string(NetworkManager), string(Netplan), string(Ifupdown), string(None)}, ", "))
}

func detectNetplan(root string) (string, error) {
	yamls, err := foreignFiles(root, netplanDir, "*.yaml")
	if err != nil || len(yamls) == 0 {
		return "", err
	}
	tool := firstExisting(root, "/usr/sbin/netplan", "/usr/lib/systemd/system-generators/netplan",
		"/lib/systemd/system-generators/netplan")
	if tool == "" {
		return "", nil // left over from an uninstalled netplan: nothing reads it at boot
	}
	return fmt.Sprintf("%s exists and %s is installed", yamls[0], tool), nil
}

func detectIfupdown(root string) (string, error) {
	tool := firstExisting(root, "/usr/sbin/ifup", "/sbin/ifup")
	if tool == "" {
		return "", nil
	}
	file, iface, err := ifupdownStanza(root, "/etc/network/interfaces", 0)
	if err != nil || iface == "" {
		return "", err
	}
	return fmt.Sprintf("%s configures %s and %s is installed", file, iface, tool), nil
}

func detectNetworkManager(root string) (string, error) {
	if p := firstExisting(root, "/run/NetworkManager/NetworkManager.pid", "/run/NetworkManager/devices"); p != "" {
		return "running (" + p + " exists)", nil
	}
	return enabled(root, "NetworkManager.service", "dbus-org.freedesktop.NetworkManager.service")
}

func detectNetworkd(root string) (string, error) {
	if p := firstExisting(root, "/run/systemd/netif/state"); p != "" {
		return "running (" + p + " exists)", nil
	}
	return enabled(root, "systemd-networkd.service", "systemd-networkd.socket", "dbus-org.freedesktop.network1.service")
}

// enabled reports the first unit that systemctl enable linked into
// /etc/systemd/system (wanted by a target, or as a D-Bus alias), skipping
// units masked to /dev/null.
func enabled(root string, units ...string) (string, error) {
	const dir = "/etc/systemd/system"
	for _, unit := range units {
		if masked(root, path.Join(dir, unit)) {
			continue
		}
		cands := []string{path.Join(dir, unit)}
		matches, err := filepath.Glob(filepath.Join(root, dir, "*.wants", unit))
		if err != nil {
			return "", err
		}
		for _, m := range matches {
			rel, err := filepath.Rel(root, m)
			if err != nil {
				return "", err
			}
			cands = append(cands, "/"+filepath.ToSlash(rel))
		}
		if p := firstExisting(root, cands...); p != "" {
			return "enabled (" + p + " exists)", nil
		}
	}
	return "", nil
}

func masked(root, unit string) bool {
	target, err := os.Readlink(filepath.Join(root, unit))
	return err == nil && target == "/dev/null"
}

// firstExisting returns the first of paths (absolute on the target system)
// that exists under root, following symlinks only for the type check.
func firstExisting(root string, paths ...string) string {
	for _, p := range paths {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			return p
		}
	}
	return ""
}

// foreignFiles lists dir's entries matching pattern that are regular files
// not written by vmnet, as paths on the target system, sorted.
func foreignFiles(root, dir, pattern string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(root, dir, pattern))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range matches {
		if hiddenMatch(pattern, filepath.Base(m)) {
			continue
		}
		if fi, err := os.Stat(m); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if _, mine, err := readOwner(m); err != nil {
			return nil, err
		} else if mine {
			continue
		}
		out = append(out, path.Join(dir, filepath.Base(m)))
	}
	slices.Sort(out)
	return out, nil
}

// ifupdownStanza finds the first iface stanza for an interface other than lo
// in file (a path on the target system) or the files it sources, and
// returns the file that holds it and the interface.
func ifupdownStanza(root, file string, depth int) (string, string, error) {
	if depth > 8 {
		return "", "", nil // a source loop; ifupdown itself would reject it
	}
	content, err := os.ReadFile(filepath.Join(root, file))
	if errors.Is(err, fs.ErrNotExist) {
		return "", "", nil
	}
	if err != nil {
		return "", "", err
	}
	if _, mine := parseHeader(content); mine {
		return "", "", nil
	}
	ifaces, sources := parseInterfaces(content)
	for _, name := range ifaces {
		if name != "lo" {
			return file, name, nil
		}
	}
	for _, src := range sources {
		if !path.IsAbs(src.pattern) {
			// interfaces(5): relative paths are relative to the including file.
			src.pattern = path.Join(path.Dir(file), src.pattern)
		}
		files, err := sourcedFiles(root, src)
		if err != nil {
			return "", "", err
		}
		for _, f := range files {
			if found, name, err := ifupdownStanza(root, f, depth+1); err != nil || name != "" {
				return found, name, err
			}
		}
	}
	return "", "", nil
}

// sourcedFiles expands a source line (a glob) or a source-directory line
// (every file whose name run-parts accepts) to paths on the target system.
func sourcedFiles(root string, src ifSource) ([]string, error) {
	pattern := src.pattern
	if src.dir {
		pattern = path.Join(pattern, "*")
	}
	matches, err := filepath.Glob(filepath.Join(root, pattern))
	if err != nil {
		return nil, nil // a malformed glob includes nothing, as in ifupdown
	}
	var out []string
	for _, m := range matches {
		name := filepath.Base(m)
		if hiddenMatch(pattern, name) {
			continue
		}
		if src.dir && strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != "" {
			continue // run-parts naming: no dots, so no editor backups
		}
		if fi, err := os.Stat(m); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		rel, err := filepath.Rel(root, m)
		if err != nil {
			return nil, err
		}
		out = append(out, "/"+filepath.ToSlash(rel))
	}
	slices.Sort(out)
	return out, nil
}

// ifSource is a "source" or "source-directory" line of an interfaces file.
type ifSource struct {
	pattern string
	dir     bool
}

// parseInterfaces returns the interface names of the iface stanzas and the
// source lines of an interfaces(5) file, in order. It reads only what
// Detect needs: comments and option lines are skipped, and a line ending in
// a backslash continues on the next one.
func parseInterfaces(content []byte) (ifaces []string, sources []ifSource) {
	var logical strings.Builder
	for line := range strings.Lines(string(content)) {
		line = strings.TrimRight(line, "\r\n")
		if logical.Len() == 0 && strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if cont, ok := strings.CutSuffix(line, "\\"); ok {
			logical.WriteString(cont)
			logical.WriteString(" ")
			continue
		}
		logical.WriteString(line)
		fields := strings.Fields(logical.String())
		logical.Reset()
		if len(fields) < 2 {
			continue
		}
		switch fields[0] {
		case "iface":
			ifaces = append(ifaces, fields[1])
		case "source":
			sources = append(sources, ifSource{pattern: fields[1]})
		case "source-directory", "source-dir":
			sources = append(sources, ifSource{pattern: fields[1], dir: true})
		}
	}
	return ifaces, sources
}

// hiddenMatch reports a dot-file that Go's Glob matched but glob(3), which
// netplan and ifupdown use, would not: there "*" never matches a leading dot.
func hiddenMatch(pattern, name string) bool {
	return strings.HasPrefix(name, ".") && !strings.HasPrefix(path.Base(pattern), ".")
}
