package image

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"vmnet/images"
	"vmnet/internal/debian"
	"vmnet/internal/testutil"
)

// tinyPackages are the packages of a tiny build from newFakeSource: the
// kernel and the recipe's own, in recipe order; tinyDebs is how many.
var tinyPackages = []string{"linux-image-" + testutil.FakeKver + "=6.1.999-1", "busybox-static=1:1.35.0-4",
	"iperf3=3.12-1", "libiperf0=3.12-1", "libsctp1=1.0.19-2", "libssl3=3.0.22-1", "libc6=2.36-9"}

const tinyDebs = 7

// fakePackage is a package the fake source serves.
type fakePackage struct {
	pkg  debian.Package
	deb  []byte            // the .deb's bytes (arbitrary; only their sha256 matters)
	tree map[string][]byte // what unpacking it gives
}

// fakeSource serves synthetic packages and counts what it is asked to do.
type fakeSource struct {
	mu          sync.Mutex
	pkgs        map[string]fakePackage // by NAME and by NAME=VERSION; NAME is the candidate
	downloads   int
	unpacks     int
	refreshes   int
	unpackErr   error
	unpackDelay time.Duration
	onRefresh   func(*fakeSource) // what apt-get update changes
	updated     time.Time         // the lists' last refresh (zero: not an updatedSource answer)
	refreshErr  error             // what Refresh returns
}

var _ updatedSource = (*fakeSource)(nil)

// Updated is when the fake's lists were last refreshed.
func (s *fakeSource) Updated() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.updated
}

var _ debian.Source = (*fakeSource)(nil)

func newFakeSource() *fakeSource {
	s := &fakeSource{pkgs: map[string]fakePackage{}}
	s.add("linux-image-amd64", "6.1.999-1", "linux-image-"+testutil.FakeKver+" (= 6.1.999-1)", nil)
	s.add("linux-image-"+testutil.FakeKver, "6.1.999-1", "kmod, linux-base (>= 4.3~), initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool", testutil.FakeKernelTree())
	s.add("busybox-static", "1:1.35.0-4", "", map[string][]byte{
		"bin/busybox":                            []byte("#!fake busybox\n"),
		"usr/share/doc/busybox-static/copyright": []byte("GPL\n"),
	})
	// iperf3 and the libraries the tiny recipe takes for it (the real
	// packages' symlinks are plain files here).
	lib := "usr/lib/x86_64-linux-gnu/"
	s.add("iperf3", "3.12-1", "libiperf0 (= 3.12-1)", map[string][]byte{"usr/bin/iperf3": []byte("\x7fELF fake iperf3\n")})
	s.add("libiperf0", "3.12-1", "libc6, libsctp1, libssl3", map[string][]byte{lib + "libiperf.so.0": []byte("libiperf.so.0.0.0"), lib + "libiperf.so.0.0.0": []byte("fake libiperf\n")})
	s.add("libsctp1", "1.0.19-2", "libc6", map[string][]byte{lib + "libsctp.so.1": []byte("libsctp.so.1.0.19"), lib + "libsctp.so.1.0.19": []byte("fake libsctp\n")})
	s.add("libssl3", "3.0.22-1", "libc6", map[string][]byte{lib + "libcrypto.so.3": []byte("fake libcrypto\n")})
	s.add("libc6", "2.36-9", "", map[string][]byte{
		"lib64/ld-linux-x86-64.so.2": []byte("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"), "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2": []byte("fake ld.so\n"),
		"lib/x86_64-linux-gnu/libc.so.6": []byte("fake libc\n"), "lib/x86_64-linux-gnu/libm.so.6": []byte("fake libm\n"),
	})
	return s
}

// add makes version the candidate of name.
func (s *fakeSource) add(name, version, depends string, tree map[string][]byte) {
	deb := []byte("fake deb " + name + " " + version)
	sum := sha256.Sum256(deb)
	p := debian.Package{
		Name: name, Version: version, Arch: "amd64", SHA256: hex.EncodeToString(sum[:]), Size: int64(len(deb)),
		Filename: fmt.Sprintf("pool/main/x/%s/%s_%s_amd64.deb", name, name, strings.ReplaceAll(version, ":", "%3a")),
		Depends:  depends,
	}
	fp := fakePackage{pkg: p, deb: deb, tree: tree}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pkgs[name] = fp
	s.pkgs[name+"="+version] = fp
}

func (s *fakeSource) Candidate(_ context.Context, spec string) (debian.Package, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fp, ok := s.pkgs[spec]
	if !ok {
		return debian.Package{}, fmt.Errorf("Debian package %s: %w", spec, debian.ErrNoCandidate)
	}
	return fp.pkg, nil
}

func (s *fakeSource) Candidates(ctx context.Context, specs []string) ([]debian.Package, error) {
	var out []debian.Package
	for _, spec := range specs {
		p, err := s.Candidate(ctx, spec)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func (s *fakeSource) Refresh(_ context.Context, log debian.Log) error {
	s.mu.Lock()
	s.refreshes++
	f, err := s.onRefresh, s.refreshErr
	s.mu.Unlock()
	if f != nil {
		f(s)
	}
	return err
}

func (s *fakeSource) byDeb(deb string) (fakePackage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, fp := range s.pkgs {
		if fp.pkg.DebName() == filepath.Base(deb) {
			return fp, true
		}
	}
	return fakePackage{}, false
}

func (s *fakeSource) Download(_ context.Context, p debian.Package, dir string, log debian.Log) (string, error) {
	s.mu.Lock()
	s.downloads++
	fp, ok := s.pkgs[p.String()]
	s.mu.Unlock()
	if !ok {
		return "", fmt.Errorf("download %s: 404 Not Found", p)
	}
	log.(*buildLog).bytes(p.Name, p.Size, p.Size)
	file := filepath.Join(dir, p.DebName())
	return file, os.WriteFile(file, fp.deb, 0o644)
}

func (s *fakeSource) Unpack(ctx context.Context, deb, dir string, log debian.Log) error {
	s.mu.Lock()
	s.unpacks++
	err, delay := s.unpackErr, s.unpackDelay
	s.mu.Unlock()
	fmt.Fprintf(log.(*buildLog).log, "fake dpkg-deb -x %s %s\n", deb, dir)
	if delay > 0 {
		time.Sleep(delay)
	}
	if err != nil {
		fmt.Fprintf(log.(*buildLog).log, "dpkg-deb: error: %v\n", err)
		return err
	}
	fp, ok := s.byDeb(deb)
	if !ok {
		return fmt.Errorf("unpack %s: unknown .deb", deb)
	}
	for p, data := range fp.tree {
		file := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(file, data, 0o755); err != nil {
			return err
		}
	}
	return nil
}

func (s *fakeSource) counts() (downloads, unpacks, refreshes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.downloads, s.unpacks, s.refreshes
}

// recipesCopy copies the embedded recipes into a map a test may change.
func recipesCopy(t *testing.T) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	err := fs.WalkDir(images.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(images.FS, p)
		m[p] = &fstest.MapFile{Data: data, Mode: 0o644}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// fakeClock ticks a second each time it is read.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

func newTestCache(t *testing.T, fsys fs.FS, src debian.Source) *Cache {
	t.Helper()
	return &Cache{Dir: t.TempDir(), recipes: fsys, src: src, now: newFakeClock().now}
}

// cpioFile is one entry read back from an initramfs.
// File type bits of a cpio mode, as in stat(2).
const (
	modeDir  = 0o040000
	modeLink = 0o120000
	modeChr  = 0o020000
)

type cpioFile struct {
	Name  string
	Mode  uint32
	Data  []byte
	Major uint32 // of a device node
	Minor uint32
}

// readInitramfs reads a gzipped newc cpio archive, checking its framing.
func readInitramfs(t *testing.T, file string) []cpioFile {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	files, err := parseCpio(data)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func parseCpio(data []byte) ([]cpioFile, error) {
	var out []cpioFile
	off := 0
	align := func(n int) int { return (n + 3) &^ 3 }
	for {
		if off+110 > len(data) {
			return nil, errors.New("cpio: truncated header")
		}
		h := data[off : off+110]
		if string(h[:6]) != "070701" {
			return nil, fmt.Errorf("cpio: bad magic %q at %d", h[:6], off)
		}
		field := func(i int) uint32 {
			v, _ := strconv.ParseUint(string(h[6+8*i:14+8*i]), 16, 32)
			return uint32(v)
		}
		mode, size, namesize := field(1), int(field(6)), int(field(11))
		nameEnd := off + 110 + namesize
		if nameEnd > len(data) || data[nameEnd-1] != 0 {
			return nil, errors.New("cpio: bad name")
		}
		name := string(data[off+110 : nameEnd-1])
		dataOff := align(nameEnd)
		if dataOff+size > len(data) {
			return nil, errors.New("cpio: truncated data")
		}
		if name == "TRAILER!!!" {
			return out, nil
		}
		out = append(out, cpioFile{Name: name, Mode: mode, Data: data[dataOff : dataOff+size], Major: field(9), Minor: field(10)})
		off = align(dataOff + size)
	}
}

// listing renders an initramfs like ls -l, without sizes (an edit of a
// recipe file is not a change of layout), for golden files.
func listing(files []cpioFile) string {
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	var b strings.Builder
	for _, f := range files {
		switch f.Mode & 0o170000 {
		case modeDir:
			fmt.Fprintf(&b, "d %04o %s/\n", f.Mode&0o7777, f.Name)
		case modeLink:
			fmt.Fprintf(&b, "l %04o %s -> %s\n", f.Mode&0o7777, f.Name, f.Data)
		case modeChr:
			fmt.Fprintf(&b, "c %04o %s %d,%d\n", f.Mode&0o7777, f.Name, f.Major, f.Minor)
		default:
			fmt.Fprintf(&b, "f %04o %s\n", f.Mode&0o7777, f.Name)
		}
	}
	return b.String()
}
