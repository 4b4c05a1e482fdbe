package debian

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Trimmed from `apt-cache show --no-all-versions linux-image-amd64 busybox-static` on Debian 12.
const aptShow = `Package: linux-image-amd64
Source: linux-signed-amd64 (6.1.192+2)
Version: 6.1.192-2
Installed-Size: 14
Maintainer: Debian Kernel Team <debian-kernel@lists.debian.org>
Architecture: amd64
Depends: linux-image-6.1.0-56-amd64 (= 6.1.192-2)
Description: Linux for 64-bit PCs (meta-package)
 This package depends on the latest Linux kernel and modules for use on PCs
 with AMD64, Intel 64 or VIA Nano processors.
Filename: pool/updates/main/l/linux-signed-amd64/linux-image-amd64_6.1.192-2_amd64.deb
Size: 1480
SHA256: 45457bcfc86c87585800b5656bdf2773b063a3bb95486b0e820d51e870491f8d

Package: busybox-static
Version: 1:1.35.0-4+deb12u1+b1
Architecture: amd64
Filename: pool/main/b/busybox/busybox-static_1.35.0-4+deb12u1+b1_amd64.deb
Size: 928188
SHA256: 3d3fdbe91d4660c873e14b092c213fe81c1da6362daa236eb25d0171eb108744
`

func TestParseAptShow(t *testing.T) {
	st := parseStanzas(aptShow)
	if len(st) != 2 {
		t.Fatalf("%d records, want 2", len(st))
	}
	if !strings.HasSuffix(st[0]["Description"], "\nwith AMD64, Intel 64 or VIA Nano processors.") {
		t.Errorf("continuation lines not joined: %q", st[0]["Description"])
	}
	got, err := stanzaPackage(st[1])
	if err != nil {
		t.Fatal(err)
	}
	want := Package{
		Name: "busybox-static", Version: "1:1.35.0-4+deb12u1+b1", Arch: "amd64",
		SHA256:   "3d3fdbe91d4660c873e14b092c213fe81c1da6362daa236eb25d0171eb108744",
		Size:     928188,
		Filename: "pool/main/b/busybox/busybox-static_1.35.0-4+deb12u1+b1_amd64.deb",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("busybox-static (-want +got):\n%s", diff)
	}
	if got.String() != "busybox-static=1:1.35.0-4+deb12u1+b1" || got.DebName() != "busybox-static_1.35.0-4+deb12u1+b1_amd64.deb" {
		t.Errorf("String %q debName %q", got.String(), got.DebName())
	}
	delete(st[1], "SHA256")
	if _, err := stanzaPackage(st[1]); err == nil {
		t.Error("a record without SHA256 was accepted")
	}
}

func TestParseDepends(t *testing.T) {
	tests := []struct {
		in   string
		want []dependency
	}{
		{"linux-image-6.1.0-56-amd64 (= 6.1.192-2)", []dependency{{"linux-image-6.1.0-56-amd64", "=", "6.1.192-2"}}},
		{"kmod, linux-base (>= 4.3~), initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool",
			[]dependency{{"kmod", "", ""}, {"linux-base", ">=", "4.3~"}, {"initramfs-tools", ">=", "0.120+deb8u2"}}},
		{"python3:any, libc6 (>= 2.34)", []dependency{{"python3", "", ""}, {"libc6", ">=", "2.34"}}},
		{"", nil},
	}
	for _, tt := range tests {
		if got := parseDepends(tt.in); !cmp.Equal(got, tt.want) {
			t.Errorf("parseDepends(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// mapSource answers Candidate from a map, by NAME and NAME=VERSION; it
// fetches nothing.
type mapSource map[string]Package

func (m mapSource) add(name, version, depends string) {
	p := Package{Name: name, Version: version, Depends: depends}
	m[name], m[p.String()] = p, p
}

func (m mapSource) Candidate(_ context.Context, spec string) (Package, error) {
	p, ok := m[spec]
	if !ok {
		return Package{}, fmt.Errorf("Debian package %s: %w", spec, ErrNoCandidate)
	}
	return p, nil
}

func (m mapSource) Candidates(ctx context.Context, specs []string) ([]Package, error) {
	var out []Package
	for _, spec := range specs {
		p, err := m.Candidate(ctx, spec)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func (mapSource) Refresh(context.Context, Log) error { return nil }

func (mapSource) Download(context.Context, Package, string, Log) (string, error) {
	return "", errors.New("mapSource fetches nothing")
}

func (mapSource) Unpack(context.Context, string, string, Log) error {
	return errors.New("mapSource fetches nothing")
}

const fakeKver = "6.1.0-99-amd64"

func TestResolveKernel(t *testing.T) {
	src := mapSource{}
	src.add("linux-image-amd64", "6.1.999-1", "linux-image-"+fakeKver+" (= 6.1.999-1)")
	src.add("linux-image-"+fakeKver, "6.1.999-1", "kmod, linux-base (>= 4.3~), initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool")
	src.add("linux-image-cloud-amd64", "6.1.999-1", "linux-image-6.1.0-99-cloud-amd64 (= 6.1.999-1)")
	src.add("linux-image-6.1.0-99-cloud-amd64", "6.1.999-1", "kmod")
	src.add("linux-headers-amd64", "6.1.999-1", "linux-headers-6.1.0-99-amd64")
	tests := []struct {
		spec, want, err string
	}{
		{"linux-image-amd64", "linux-image-" + fakeKver + "=6.1.999-1", ""},
		{"linux-image-cloud-amd64", "linux-image-6.1.0-99-cloud-amd64=6.1.999-1", ""},
		{"linux-image-" + fakeKver, "linux-image-" + fakeKver + "=6.1.999-1", ""},
		{"linux-headers-amd64", "", "depends on none"},
		{"linux-image-nope", "", "no installable version"},
	}
	for _, tt := range tests {
		p, err := ResolveKernel(context.Background(), src, tt.spec)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("ResolveKernel(%s) = %v, %v; want error %q", tt.spec, p, err, tt.err)
		case tt.err == "" && (err != nil || p.String() != tt.want):
			t.Errorf("ResolveKernel(%s) = %v, %v; want %s", tt.spec, p, err, tt.want)
		}
	}
	if _, err := ResolveKernel(context.Background(), src, "linux-image-nope"); !errors.Is(err, ErrNoCandidate) {
		t.Errorf("unknown package: %v does not wrap ErrNoCandidate", err)
	}
}

// shared is one private apt state for the tests that ask the real apt,
// fetched once per run (the lists are about 10 MB).
var shared struct {
	once sync.Once
	dir  string
	err  error
}

// TestMain removes the shared private state after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// sharedApt returns an Apt on the shared private state with bookworm's
// lists fetched, skipping when the mirror or apt is not there.
func sharedApt(t *testing.T) Apt {
	t.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "vmnet-debian-test-")
		if shared.err == nil {
			shared.err = Apt{State: shared.dir}.Refresh(context.Background(), testLog{t})
		}
	})
	if shared.err != nil {
		t.Skipf("no private apt state (Debian's mirror or apt is not reachable here): %v", shared.err)
	}
	return Apt{State: shared.dir}
}

// The real apt on the private state: only checks that a package it
// certainly has parses, and that an unknown one is ErrNoCandidate.
func TestAptCandidate(t *testing.T) {
	a := sharedApt(t)
	if u := a.Updated(); u.IsZero() || time.Since(u) > time.Hour {
		t.Errorf("Updated() = %v after a Refresh", u)
	}
	if u := (Apt{State: t.TempDir()}).Updated(); !u.IsZero() {
		t.Errorf("Updated() of a state never refreshed = %v", u)
	}
	if _, err := a.Candidate(context.Background(), "dpkg"); err != nil {
		if errors.Is(err, ErrNoCandidate) {
			t.Skipf("apt's package lists are empty here (%v)", err)
		}
		var h interface{ Hint() string }
		if errors.As(err, &h) {
			t.Skipf("no apt here: %v", err)
		}
		t.Fatal(err)
	}
	_, err := a.Candidate(context.Background(), "vmnet-no-such-package")
	if !errors.Is(err, ErrNoCandidate) {
		t.Errorf("unknown package: %v", err)
	}
}

func TestAptMemo(t *testing.T) {
	dir := t.TempDir()
	state := []string{filepath.Join(dir, "Packages"), filepath.Join(dir, "status")}
	os.WriteFile(state[0], []byte("Package: a\n"), 0o644)
	os.WriteFile(state[1], []byte(""), 0o644)
	fp := aptFingerprint(state)
	a := Apt{Memo: filepath.Join(dir, "cache", "memo.json")}
	if _, ok := a.recall(fp, "busybox-static"); ok {
		t.Fatal("recalled from an empty memo")
	}
	p := Package{Name: "busybox-static", Version: "1:1.35.0-4", SHA256: strings.Repeat("a", 64)}
	a.remember(fp, "busybox-static", p)
	a.remember(fp, "linux-image-amd64", Package{Name: "linux-image-amd64"})
	if got, ok := a.recall(fp, "busybox-static"); !ok || got != p {
		t.Errorf("recall = %+v, %v", got, ok)
	}
	// apt-get update rewrites the lists: the memo no longer counts.
	os.WriteFile(state[0], []byte("Package: a\nVersion: 2\n"), 0o644)
	fp2 := aptFingerprint(state)
	if fp2 == fp {
		t.Fatal("the fingerprint did not change with the package lists")
	}
	if _, ok := a.recall(fp2, "busybox-static"); ok {
		t.Error("recalled an answer from before the lists changed")
	}
	if _, ok := (Apt{}).recall(fp, "busybox-static"); ok {
		t.Error("apt without a memo file recalled something")
	}
}

// The real apt: many packages in one run, in the order asked, the memo
// answering the second time; one unknown package fails the lot with its name.
func TestAptCandidates(t *testing.T) {
	a := sharedApt(t)
	a.Memo = filepath.Join(t.TempDir(), "memo.json")
	specs := []string{"dpkg", "apt", "dpkg"}
	got, err := a.Candidates(context.Background(), specs)
	if err != nil {
		if errors.Is(err, ErrNoCandidate) {
			t.Skipf("apt's package lists are empty here (%v)", err)
		}
		var h interface{ Hint() string }
		if errors.As(err, &h) {
			t.Skipf("no apt here: %v", err)
		}
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Name != "dpkg" || got[1].Name != "apt" || got[2] != got[0] {
		t.Fatalf("candidates = %+v", got)
	}
	again, err := a.Candidates(context.Background(), specs)
	if err != nil || !cmp.Equal(again, got) {
		t.Errorf("from the memo: %+v, %v", again, err)
	}
	pinned, err := a.Candidates(context.Background(), []string{got[0].String()})
	if err != nil || pinned[0] != got[0] {
		t.Errorf("NAME=VERSION: %+v, %v", pinned, err)
	}
	_, err = a.Candidates(context.Background(), []string{"apt", "vmnet-no-such-package"})
	if !errors.Is(err, ErrNoCandidate) || !strings.Contains(err.Error(), "vmnet-no-such-package") {
		t.Errorf("unknown package: %v", err)
	}
}
