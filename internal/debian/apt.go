// Package debian gets Debian packages for vmnet's image builds: the version
// apt would install (apt-cache), the .deb file (apt-get download) and its
// files (dpkg-deb -x), dpkg's record of an installed system, and the
// mmdebstrap command line that installs one. apt runs on a private state of
// vmnet's own (Debian bookworm from a chosen mirror, private.go), so the host
// may be Debian or Ubuntu: its own apt sources are never read.
package debian

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"vmnet/internal/errs"
	"vmnet/internal/fsperm"
)

// Package is one version of a Debian package as apt knows it.
type Package struct {
	Name     string
	Version  string
	Arch     string
	SHA256   string // of the .deb, from the archive's Packages index
	Size     int64  // of the .deb
	Filename string // pool path, e.g. pool/main/b/busybox/busybox-static_1.35.0-4_amd64.deb
	Depends  string
}

// String is NAME=VERSION, as apt-get takes it.
func (p Package) String() string { return p.Name + "=" + p.Version }

// debName is the file name the .deb is kept under in the cache.
func (p Package) DebName() string { return path.Base(p.Filename) }

// Source gets Debian packages. Apt is the real one; tests use a fake that
// serves synthetic packages.
type Source interface {
	// Candidate returns the version apt would install for spec (NAME or
	// NAME=VERSION), or an error wrapping ErrNoCandidate.
	Candidate(ctx context.Context, spec string) (Package, error)
	// Candidates is Candidate for many specs at once, in their order: one
	// apt-cache run costs about as much as one package.
	Candidates(ctx context.Context, specs []string) ([]Package, error)
	// Refresh updates the package lists (apt-get update).
	Refresh(ctx context.Context, log Log) error
	// Download fetches p's .deb into the empty directory dir and returns its path.
	Download(ctx context.Context, p Package, dir string, log Log) (string, error)
	// Unpack extracts the files of a .deb into dir (dpkg-deb -x).
	Unpack(ctx context.Context, deb, dir string, log Log) error
}

// Log is where a build shows its steps and keeps the output of the commands
// it runs.
type Log interface {
	// Step shows and logs one step of the build.
	Step(format string, a ...any)
	// Count runs work while showing size() against total bytes.
	Count(label string, total int64, size func() int64, work func() error) error
	// Run runs a command in dir with its output in the log; the error names
	// the command and carries the last line it printed.
	Run(ctx context.Context, dir, name string, args ...string) error
}

// ErrNoCandidate is wrapped when apt knows no installable version of a package.
var ErrNoCandidate = errors.New("no installable version")

const aptToolsHint = "vmnet builds guest images from Debian packages with apt-get, apt-cache and dpkg-deb: " +
	"run it on Debian or Ubuntu"

// Apt is the Source that runs the host's apt-cache, apt-get and dpkg-deb on
// a private apt state (see WritePrivateState): Debian bookworm's lists from
// the chosen mirror, whatever the host's own apt sources are.
type Apt struct {
	// State is the private apt state's directory (in the image cache).
	State string
	// Mirrors chooses Debian's mirrors; nil is HostMirrors.
	Mirrors func() (Mirrors, error)
	// Memo is a file that remembers what apt-cache said while apt's state is
	// unchanged ("" for none). Where apt keeps no binary cache (Docker-made
	// systems), each apt-cache run parses all package lists, about 0.5 s: a
	// cache hit should not cost seconds.
	Memo string
}

var _ Source = Apt{}

// prepare writes the private state and returns its APT_CONFIG file.
func (a Apt) prepare() (string, error) {
	if a.State == "" {
		return "", errors.New("vmnet's apt state: no directory given (debian.Apt.State)")
	}
	choose := a.Mirrors
	if choose == nil {
		choose = HostMirrors
	}
	m, err := choose()
	if err != nil {
		return "", err
	}
	return WritePrivateState(a.State, m)
}

// aptState lists the files of the private state whose change can change
// apt's candidates: the package lists, the sources and the settings.
func (a Apt) aptState() []string {
	files, _ := filepath.Glob(filepath.Join(a.State, "state/lists/*"))
	return append(files, filepath.Join(a.State, "apt.conf"), filepath.Join(a.State, "etc/sources.list"))
}

// aptFingerprint identifies apt's state by its files' names, sizes and times.
func aptFingerprint(files []string) string {
	h := sha256.New()
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil && fi.Mode().IsRegular() {
			fmt.Fprintf(h, "%s\x00%d\x00%d\x00", f, fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// aptMemo is the memo file's content.
type aptMemo struct {
	Fingerprint string             `json:"fingerprint"`
	Candidates  map[string]Package `json:"candidates"`
}

func (a Apt) recall(fp, spec string) (Package, bool) {
	if a.Memo == "" {
		return Package{}, false
	}
	var m aptMemo
	data, err := os.ReadFile(a.Memo)
	if err != nil || json.Unmarshal(data, &m) != nil || m.Fingerprint != fp {
		return Package{}, false
	}
	p, ok := m.Candidates[spec]
	return p, ok
}

// remember adds an answer to the memo; failing to is harmless.
func (a Apt) remember(fp, spec string, p Package) {
	if a.Memo == "" {
		return
	}
	var m aptMemo
	if data, err := os.ReadFile(a.Memo); err != nil || json.Unmarshal(data, &m) != nil || m.Fingerprint != fp {
		m = aptMemo{Fingerprint: fp}
	}
	if m.Candidates == nil {
		m.Candidates = map[string]Package{}
	}
	m.Candidates[spec] = p
	data, err := json.Marshal(m)
	if err != nil || fsperm.MkdirAll(filepath.Dir(a.Memo), 0o755) != nil {
		return
	}
	// Written whole and renamed: concurrent readers never see half a file.
	fsperm.WriteFileAtomic(a.Memo, data, 0o644)
}

// Env gives apt's tools stable, parseable, non-interactive output.
func Env() []string {
	return append(os.Environ(), "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive")
}

// aptCommand is the command line that runs name (apt-get) on the private
// state conf: env APT_CONFIG=CONF NAME ARGS..., so the log shows a command
// that can be run again as it stands.
func aptCommand(conf, name string, args ...string) (string, []string) {
	return "env", append([]string{"APT_CONFIG=" + conf, name}, args...)
}

// Candidate asks apt-cache, or the memo while apt's state is unchanged.
func (a Apt) Candidate(ctx context.Context, spec string) (Package, error) {
	conf, err := a.prepare()
	if err != nil {
		return Package{}, err
	}
	fp := aptFingerprint(a.aptState())
	if p, ok := a.recall(fp, spec); ok {
		return p, nil
	}
	p, err := aptCacheShow(ctx, conf, spec)
	if err == nil {
		a.remember(fp, spec, p)
	}
	return p, err
}

// Candidates asks apt-cache once for the specs the memo does not answer.
func (a Apt) Candidates(ctx context.Context, specs []string) ([]Package, error) {
	conf, err := a.prepare()
	if err != nil {
		return nil, err
	}
	fp := aptFingerprint(a.aptState())
	out := make([]Package, len(specs))
	var ask []string
	for i, spec := range specs {
		p, ok := a.recall(fp, spec)
		if !ok {
			ask = append(ask, spec)
			continue
		}
		out[i] = p
	}
	if len(ask) == 0 {
		return out, nil
	}
	got, err := aptCacheShowAll(ctx, conf, ask)
	if err != nil {
		return nil, err
	}
	for i, spec := range specs {
		if p, ok := got[spec]; ok {
			out[i] = p
			a.remember(fp, spec, p)
		}
	}
	return out, nil
}

// aptCacheShow asks apt-cache for the candidate version of spec.
func aptCacheShow(ctx context.Context, conf, spec string) (Package, error) {
	got, err := aptCacheShowAll(ctx, conf, []string{spec})
	if err != nil {
		return Package{}, err
	}
	return got[spec], nil
}

// aptCacheShowAll asks apt-cache, on the state of the APT_CONFIG file conf,
// for the candidate versions of specs (NAME or NAME=VERSION) in one run; the error wraps ErrNoCandidate and names the
// first spec apt knows no version of.
func aptCacheShowAll(ctx context.Context, conf string, specs []string) (map[string]Package, error) {
	// Equals: APT_CONFIG=CONF apt-cache show --no-all-versions SPEC...
	cmd := exec.CommandContext(ctx, "apt-cache", append([]string{"show", "--no-all-versions"}, specs...)...)
	cmd.Env = append(Env(), "APT_CONFIG="+conf)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if errors.Is(err, exec.ErrNotFound) {
		return nil, errs.WithHint(fmt.Errorf("resolve Debian package %s: %w", strings.Join(specs, " "), err), aptToolsHint)
	}
	// A record per spec, in their order; NAME=VERSION is found by both.
	byName := map[string]Package{}
	for _, s := range parseStanzas(string(out)) {
		p, err := stanzaPackage(s)
		if err != nil {
			return nil, err
		}
		if _, dup := byName[p.Name]; !dup {
			byName[p.Name] = p
		}
		byName[p.String()] = p
	}
	got := map[string]Package{}
	for _, spec := range specs {
		p, ok := byName[spec]
		if !ok {
			msg := lastLine(stderr.String())
			if msg == "" && err != nil {
				msg = err.Error()
			}
			if msg == "" {
				msg = "no such package in the lists"
			}
			return nil, fmt.Errorf("Debian package %s: %w (apt-cache: %s)", spec, ErrNoCandidate, msg)
		}
		got[spec] = p
	}
	return got, nil
}

// Refresh runs apt-get update on the private state.
func (a Apt) Refresh(ctx context.Context, log Log) error {
	conf, err := a.prepare()
	if err != nil {
		return err
	}
	// Builds of two images in two processes share the state: one updates
	// while the other waits (apt-get would fail on its lists lock), then
	// takes that update.
	asked := time.Now()
	unlock, err := lockFile(filepath.Join(a.State, "update.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	if a.Updated().After(asked) {
		log.Step("vmnet's Debian lists were updated meanwhile by another vmnet")
		return nil
	}
	log.Step("updating vmnet's Debian %s package lists (apt-get update)", Suite)
	name, args := aptCommand(conf, "apt-get", "-q", "update")
	if err := log.Run(ctx, "", name, args...); err != nil {
		return errs.WithHint(fmt.Errorf("apt-get update of vmnet's Debian lists (%s): %w", a.State, err),
			"vmnet needs Debian's package lists to build an image: check that the mirror is reachable, or choose another with $"+
				EnvMirror+" and $"+EnvSecurityMirror)
	}
	// apt keeps a list's mtime at the mirror's Last-Modified: the stamp is
	// the time of the update itself.
	return fsperm.WriteFileAtomic(filepath.Join(a.State, updatedStamp), nil, 0o644)
}

// lockFile takes an exclusive flock on file, waiting for it; unlock releases it.
func lockFile(file string) (unlock func(), err error) {
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock vmnet's apt state: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock vmnet's apt state %s: %w", file, err)
	}
	return func() { f.Close() }, nil
}

// updatedStamp is touched by every successful Refresh.
const updatedStamp = "updated"

// Updated is when Refresh last succeeded on the private state (zero: never).
func (a Apt) Updated() time.Time {
	fi, err := os.Stat(filepath.Join(a.State, updatedStamp))
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// Download runs apt-get download in dir, showing the .deb's size as it grows.
func (a Apt) Download(ctx context.Context, p Package, dir string, log Log) (string, error) {
	conf, err := a.prepare()
	if err != nil {
		return "", err
	}
	// apt-get download writes the .deb into dir as it arrives: its size is the progress.
	// Equals: cd DIR && APT_CONFIG=CONF apt-get download NAME=VERSION.
	name, args := aptCommand(conf, "apt-get", "-q", "download", p.String())
	err = log.Count(p.Name, p.Size, func() int64 { return DirSize(dir) }, func() error {
		return log.Run(ctx, dir, name, args...)
	})
	if err != nil {
		return "", errs.WithHint(fmt.Errorf("download %s: %w", p, err),
			"check that Debian's mirror is reachable from here (inside a vmnet sandbox there is no network: "+
				"build the image outside it first with: vmnet image build IMAGE)")
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	if len(debs) != 1 {
		return "", fmt.Errorf("download %s: apt-get download left %d .deb files in %s, want 1", p, len(debs), dir)
	}
	return debs[0], nil
}

// Unpack runs dpkg-deb -x.
func (Apt) Unpack(ctx context.Context, deb, dir string, log Log) error {
	if err := log.Run(ctx, "", "dpkg-deb", "-x", deb, dir); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return errs.WithHint(fmt.Errorf("unpack %s: %w", filepath.Base(deb), err), aptToolsHint)
		}
		return fmt.Errorf("unpack %s: %w", filepath.Base(deb), err)
	}
	return nil
}

// parseStanzas splits apt's RFC 822-style output into one map per record.
// Continuation lines (starting with a space) are joined to their field.
func parseStanzas(text string) []map[string]string {
	var out []map[string]string
	var cur map[string]string
	var last string
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			cur, last = nil, ""
		case line[0] == ' ' || line[0] == '\t':
			if cur != nil && last != "" {
				cur[last] += "\n" + strings.TrimSpace(line)
			}
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			if cur == nil {
				cur = map[string]string{}
				out = append(out, cur)
			}
			last = k
			cur[k] = strings.TrimSpace(v)
		}
	}
	return out
}

// stanzaPackage reads the fields vmnet needs from one apt-cache show record.
func stanzaPackage(s map[string]string) (Package, error) {
	p := Package{
		Name: s["Package"], Version: s["Version"], Arch: s["Architecture"],
		SHA256: s["SHA256"], Filename: s["Filename"], Depends: s["Depends"],
	}
	size, err := strconv.ParseInt(s["Size"], 10, 64)
	if p.Name == "" || p.Version == "" || p.Filename == "" || len(p.SHA256) != 64 || err != nil {
		return Package{}, fmt.Errorf("apt-cache show %s: record without Package, Version, Filename, Size or SHA256", p.Name)
	}
	p.Size = size
	return p, nil
}

// dependency is the first alternative of one entry of a Depends field.
type dependency struct {
	Name, Op, Version string
}

// parseDepends reads a Depends field: "a (>= 1), b | c, d:any".
func parseDepends(s string) []dependency {
	var out []dependency
	for _, entry := range strings.Split(s, ",") {
		alt, _, _ := strings.Cut(entry, "|")
		alt = strings.TrimSpace(alt)
		if alt == "" {
			continue
		}
		var d dependency
		name, rest, _ := strings.Cut(alt, "(")
		d.Name, _, _ = strings.Cut(strings.TrimSpace(name), ":")
		if c, _, ok := strings.Cut(rest, ")"); ok {
			f := strings.Fields(c)
			if len(f) == 2 {
				d.Op, d.Version = f[0], f[1]
			}
		}
		out = append(out, d)
	}
	return out
}

// kernelImageRE matches the package that holds a kernel (linux-image-6.1.0-28-amd64),
// not a metapackage that depends on one (linux-image-amd64).
var kernelImageRE = regexp.MustCompile(`^linux-image-[0-9]`)

// ResolveKernel follows a kernel metapackage to the kernel package it depends on.
func ResolveKernel(ctx context.Context, src Source, spec string) (Package, error) {
	p, err := src.Candidate(ctx, spec)
	if err != nil || kernelImageRE.MatchString(p.Name) {
		return p, err
	}
	for _, d := range parseDepends(p.Depends) {
		if !kernelImageRE.MatchString(d.Name) {
			continue
		}
		dep := d.Name
		if d.Op == "=" {
			dep += "=" + d.Version
		}
		return src.Candidate(ctx, dep)
	}
	return Package{}, fmt.Errorf("kernel package %s is not a linux-image-VERSION package and depends on none (Depends: %s)", p, p.Depends)
}

// lastLine returns the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// DirSize is the total size of the regular files under dir: how far a
// download into dir has come, and how much a built image takes.
func DirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
