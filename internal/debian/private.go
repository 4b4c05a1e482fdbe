package debian

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"vmnet/internal/errs"
	"vmnet/internal/fsperm"
)

// vmnet resolves and downloads guest packages through an apt state of its
// own (sources, lists, pinning, an empty dpkg status), never the host's: the
// guests are Debian bookworm whatever the host runs (Ubuntu on GitHub's
// runners has neither bookworm nor linux-image-amd64 in its lists).

// Suite is the Debian release vmnet's guests are built from.
const Suite = "bookworm"

// Keyring is Debian's archive keyring: package debian-archive-keyring, on
// Debian and on Ubuntu alike.
const Keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

// The environment variables that choose Debian's mirrors.
const (
	EnvMirror         = "VMNET_DEBIAN_MIRROR"          // the main archive (bookworm, bookworm-updates)
	EnvSecurityMirror = "VMNET_DEBIAN_SECURITY_MIRROR" // the security archive (bookworm-security)
)

// Debian's own mirrors, taken when the host is not Debian; recipes name
// them in their mirrors: lines.
const (
	DefaultMirror         = "http://deb.debian.org/debian"
	DefaultSecurityMirror = "http://deb.debian.org/debian-security"
)

// Mirrors is where Debian's packages come from.
type Mirrors struct {
	Archive  string // bookworm and bookworm-updates
	Security string // bookworm-security
}

// HostMirrors chooses the mirrors on this host: ChooseMirrors over the real
// environment and file system.
func HostMirrors() (Mirrors, error) { return ChooseMirrors(os.Getenv, "/") }

// ChooseMirrors returns $VMNET_DEBIAN_MIRROR and $VMNET_DEBIAN_SECURITY_MIRROR
// where set; else, on a Debian host (root's etc/os-release), the mirrors its
// apt sources name, so a Debian host keeps the mirror it can reach; else
// Debian's own (deb.debian.org).
func ChooseMirrors(getenv func(string) string, root string) (Mirrors, error) {
	m := Mirrors{Archive: DefaultMirror, Security: DefaultSecurityMirror}
	if isDebian(root) {
		host := hostMirrors(root)
		if host.Archive != "" {
			m.Archive = host.Archive
		}
		if host.Security != "" {
			m.Security = host.Security
		}
	}
	for _, o := range []struct {
		env string
		to  *string
	}{{EnvMirror, &m.Archive}, {EnvSecurityMirror, &m.Security}} {
		v := strings.TrimRight(getenv(o.env), "/")
		if v == "" {
			continue
		}
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file") || u.Host == "" && u.Scheme != "file" {
			return Mirrors{}, errs.WithHint(fmt.Errorf("$%s=%q is not a mirror URL", o.env, v),
				"set it to a Debian mirror such as "+DefaultMirror+" (http, https or file), or unset it")
		}
		*o.to = v
	}
	return m, nil
}

// isDebian says whether root's os-release names Debian.
func isDebian(root string) bool {
	data, err := os.ReadFile(filepath.Join(root, "etc/os-release"))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "ID="); ok {
			return strings.Trim(v, `"'`) == "debian"
		}
	}
	return false
}

// sourceEntry is one deb entry of an apt sources file.
type sourceEntry struct {
	URIs, Suites []string
}

// hostMirrors reads the first main and security mirrors of root's apt
// sources (sources.list, sources.list.d/*.list and *.sources); "" where
// there is none.
func hostMirrors(root string) Mirrors {
	etc := filepath.Join(root, "etc/apt")
	var entries []sourceEntry
	lists, _ := filepath.Glob(filepath.Join(etc, "sources.list.d", "*.list"))
	for _, f := range append([]string{filepath.Join(etc, "sources.list")}, lists...) {
		data, _ := os.ReadFile(f)
		entries = append(entries, parseSourcesList(string(data))...)
	}
	deb822, _ := filepath.Glob(filepath.Join(etc, "sources.list.d", "*.sources"))
	for _, f := range deb822 {
		data, _ := os.ReadFile(f)
		entries = append(entries, parseDeb822Sources(string(data))...)
	}
	var m Mirrors
	for _, e := range entries {
		for _, s := range e.Suites {
			to := &m.Archive
			if strings.HasSuffix(s, "-security") || strings.HasSuffix(s, "/updates") {
				to = &m.Security
			}
			if *to == "" && len(e.URIs) > 0 && isMirrorURI(e.URIs[0]) {
				*to = strings.TrimRight(e.URIs[0], "/")
			}
		}
	}
	return m
}

// isMirrorURI says whether apt fetches u over the network or from a file
// tree (not a CD or a method vmnet's apt state may lack).
func isMirrorURI(u string) bool {
	return strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "file:")
}

// parseSourcesList reads one-line-style sources: "deb [opts] URI SUITE COMP...".
func parseSourcesList(text string) []sourceEntry {
	var out []sourceEntry
	for _, line := range strings.Split(text, "\n") {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		if strings.HasPrefix(f[0], "[") {
			for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
				f = f[1:]
			}
			if len(f) > 0 {
				f = f[1:]
			}
		}
		if len(f) >= 2 {
			out = append(out, sourceEntry{URIs: f[:1], Suites: f[1:2]})
		}
	}
	return out
}

// parseDeb822Sources reads deb822-style sources (Types, URIs, Suites,
// Enabled), skipping comments.
func parseDeb822Sources(text string) []sourceEntry {
	var kept []string
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, "#") {
			kept = append(kept, line)
		}
	}
	var out []sourceEntry
	for _, s := range parseStanzas(strings.Join(kept, "\n")) {
		if !slices.Contains(strings.Fields(s["Types"]), "deb") || strings.EqualFold(s["Enabled"], "no") {
			continue
		}
		out = append(out, sourceEntry{URIs: strings.Fields(s["URIs"]), Suites: strings.Fields(s["Suites"])})
	}
	return out
}

// SourcesList is the private state's sources.list: bookworm,
// bookworm-updates and bookworm-security, main, checked against Debian's
// archive keyring.
func (m Mirrors) SourcesList() string {
	var b strings.Builder
	for _, l := range m.Lines() {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// Lines are SourcesList's lines.
func (m Mirrors) Lines() []string {
	opt := "[signed-by=" + Keyring + "] "
	return []string{
		"deb " + opt + m.Archive + " " + Suite + " main",
		"deb " + opt + m.Archive + " " + Suite + "-updates main",
		"deb " + opt + m.Security + " " + Suite + "-security main",
	}
}

// Rewrite points a recipe's mirrors: lines (for mmdebstrap) at m: Debian's
// own mirrors become m's, and a line without options is checked against
// Debian's archive keyring, which a non-Debian host does not trust otherwise.
func (m Mirrors) Rewrite(lines []string) []string {
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 3 || f[0] != "deb" || strings.HasPrefix(f[1], "[") {
			out = append(out, l)
			continue
		}
		switch strings.TrimRight(f[1], "/") {
		case DefaultMirror:
			f[1] = m.Archive
		case DefaultSecurityMirror:
			f[1] = m.Security
		}
		f[1] = "[signed-by=" + Keyring + "] " + f[1]
		out = append(out, strings.Join(f, " "))
	}
	return out
}

// AptOptions are the settings of vmnet's private apt state in dir, in the
// order apt.conf gets them: every file apt reads or writes (sources, lists,
// pinning, dpkg's status, caches, logs, other config) is under dir, so the
// host's apt configuration plays no part.
func AptOptions(dir string) [][2]string {
	etc, state := filepath.Join(dir, "etc")+"/", filepath.Join(dir, "state")+"/"
	return [][2]string{
		{"Dir::Etc", etc},
		{"Dir::Etc::main", "apt.conf"},
		{"Dir::Etc::parts", "apt.conf.d"},
		{"Dir::Etc::sourcelist", "sources.list"},
		{"Dir::Etc::sourceparts", "sources.list.d"},
		{"Dir::Etc::preferences", "preferences"},
		{"Dir::Etc::preferencesparts", "preferences.d"},
		{"Dir::Etc::trusted", "trusted.gpg"},
		{"Dir::Etc::trustedparts", "trusted.gpg.d"},
		{"Dir::State", state},
		{"Dir::State::lists", "lists/"},
		{"Dir::State::status", filepath.Join(state, "status")},
		{"Dir::State::extended_states", filepath.Join(state, "extended_states")},
		{"Dir::Cache", filepath.Join(dir, "cache") + "/"},
		{"Dir::Log", filepath.Join(dir, "log") + "/"},
		// The guests are amd64 whatever the host's dpkg says.
		{"APT::Architecture", "amd64"},
		{"APT::Architectures::", "amd64"},
		{"Acquire::Languages", "none"},
		{"Acquire::Retries", "3"},
		// As root apt hands downloads to user _apt, who cannot write into
		// the cache's 0700 directories.
		{"APT::Sandbox::User", "root"},
	}
}

// AptConf renders options as an apt.conf file.
func AptConf(options [][2]string) string {
	var b bytes.Buffer
	b.WriteString("// vmnet's own apt state: written by vmnet for every build, do not edit.\n")
	for _, o := range options {
		fmt.Fprintf(&b, "%s %q;\n", o[0], o[1])
	}
	return b.String()
}

// privateDirs are the directories of the state that apt needs to exist.
var privateDirs = []string{"etc/apt.conf.d", "etc/sources.list.d", "etc/preferences.d", "etc/trusted.gpg.d",
	"state/lists/partial", "cache/archives/partial", "log"}

// WritePrivateState lays out vmnet's apt state in dir for mirrors m and
// returns the APT_CONFIG file to run apt with. Files are rewritten only when
// their content changes, so the memo's fingerprint stays while nothing does.
func WritePrivateState(dir string, m Mirrors) (string, error) {
	if _, err := os.Stat(Keyring); err != nil {
		return "", errs.WithHint(fmt.Errorf("Debian's archive keyring: %w", err),
			"install it: apt-get install debian-archive-keyring (Debian and Ubuntu both have it)")
	}
	for _, d := range privateDirs {
		if err := fsperm.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return "", fmt.Errorf("vmnet's apt state: %w", err)
		}
	}
	conf := filepath.Join(dir, "apt.conf")
	files := map[string]string{
		conf:                                   AptConf(AptOptions(dir)),
		filepath.Join(dir, "etc/sources.list"): m.SourcesList(),
		filepath.Join(dir, "state/status"):     "",
	}
	for f, text := range files {
		if old, err := os.ReadFile(f); err == nil && string(old) == text {
			continue
		}
		if err := fsperm.WriteFileAtomic(f, []byte(text), 0o644); err != nil {
			return "", fmt.Errorf("vmnet's apt state: %w", err)
		}
	}
	return conf, nil
}
