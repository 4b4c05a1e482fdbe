package cloudinit

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"vmnet/internal/errs"
)

func testSeed() Seed {
	return Seed{
		UserData:      []byte("#cloud-config\npackages: [curl]\n"),
		MetaData:      []byte("instance-id: i-1\nlocal-hostname: h\n"),
		NetworkConfig: []byte(strings.Repeat("# a comment longer than one sector\n", 100) + "version: 2\n"),
	}
}

func seedFiles(s Seed) map[string]string {
	return map[string]string{"user-data": string(s.UserData), "meta-data": string(s.MetaData), "network-config": string(s.NetworkConfig)}
}

// TestISORoundTrip reads the image back with ReadISO.
func TestISORoundTrip(t *testing.T) {
	s := testSeed()
	img, err := s.ISO()
	if err != nil {
		t.Fatal(err)
	}
	if len(img)%sectorSize != 0 {
		t.Errorf("image is %d bytes, not whole sectors", len(img))
	}
	again, _ := s.ISO()
	if !bytes.Equal(img, again) {
		t.Error("the same seed gave two different images")
	}
	got, err := ReadISO(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if got.Label != SeedLabel || got.AppID != isoAppID {
		t.Errorf("label %q app %q, want %q %q", got.Label, got.AppID, SeedLabel, isoAppID)
	}
	want := seedFiles(s)
	if len(got.Files) != len(want) {
		t.Errorf("files %d, want %d", len(got.Files), len(want))
	}
	for _, f := range got.Files {
		if want[f.Name] != string(f.Content) {
			t.Errorf("%s: content differs", f.Name)
		}
	}
	// Sorted by name in the directory, as ECMA-119 wants.
	if got.Files[0].Name != "meta-data" || got.Files[2].Name != "user-data" {
		t.Errorf("directory order %s, %s, %s", got.Files[0].Name, got.Files[1].Name, got.Files[2].Name)
	}
}

func TestWriteISORejects(t *testing.T) {
	for _, c := range []struct {
		label string
		files []ISOFile
	}{
		{"", nil},
		{"way-too-long-label", nil},
		{"cid ata", nil},
		{"cidata", []ISOFile{{Name: "a/b"}}},
		{"cidata", []ISOFile{{Name: ""}}},
		{"cidata", []ISOFile{{Name: strings.Repeat("x", 31)}}},
		{"cidata", []ISOFile{{Name: "user-data"}, {Name: "USER-DATA"}}},
	} {
		if err := WriteISO(&bytes.Buffer{}, c.label, c.files); !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("WriteISO(%q, %v) error = %v, want ErrInvalid", c.label, c.files, err)
		}
	}
}

// TestISOInfo reads the image with genisoimage's isoinfo, a reader vmnet
// did not write: the label, the Joliet tree with the exact names, and each
// file's bytes.
func TestISOInfo(t *testing.T) {
	if _, err := exec.LookPath("isoinfo"); err != nil {
		t.Skip("isoinfo is not installed (Debian package genisoimage)")
	}
	s, err := Capstone(capstoneGuest(t))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "seed.iso")
	if _, err := EnsureISO(path, s); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("isoinfo", "-d", "-i", path).CombinedOutput()
	if err != nil {
		t.Fatalf("isoinfo -d: %v\n%s", err, out)
	}
	for _, want := range []string{"Volume id: cidata\n", "Joliet with UCS level 3 found", "Logical block size is: 2048"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("isoinfo -d lacks %q:\n%s", want, out)
		}
	}
	out, err = exec.Command("isoinfo", "-f", "-J", "-i", path).CombinedOutput()
	if err != nil || string(out) != "/meta-data\n/network-config\n/user-data\n" {
		t.Errorf("isoinfo -f -J = %q, %v", out, err)
	}
	for name, want := range seedFiles(s) {
		got, err := exec.Command("isoinfo", "-J", "-x", "/"+name, "-i", path).Output()
		if err != nil || string(got) != want {
			t.Errorf("isoinfo -J -x /%s: %d bytes, want %d (%v)", name, len(got), len(want), err)
		}
	}
	// The primary tree too, for readers without Joliet.
	out, err = exec.Command("isoinfo", "-f", "-i", path).CombinedOutput()
	if err != nil || string(out) != "/META-DATA.;1\n/NETWORK-CONFIG.;1\n/USER-DATA.;1\n" {
		t.Errorf("isoinfo -f = %q, %v", out, err)
	}
	if got, err := exec.Command("isoinfo", "-x", "/USER-DATA.;1", "-i", path).Output(); err != nil || string(got) != string(s.UserData) {
		t.Errorf("isoinfo -x /USER-DATA.;1: %d bytes (%v)", len(got), err)
	}
	if b, err := exec.Command("blkid", "-o", "value", "-s", "LABEL", path).Output(); err == nil && strings.TrimSpace(string(b)) != SeedLabel {
		t.Errorf("blkid label %q, want %s", b, SeedLabel)
	}
}

// TestISOKernelMount mounts the image with Linux's isofs, in a private
// mount namespace, as cloud-init does in the guest.
func TestISOKernelMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	fsList, _ := os.ReadFile("/proc/filesystems")
	if !strings.Contains(string(fsList), "iso9660") {
		t.Skip("this kernel has no iso9660 file system (not in /proc/filesystems)")
	}
	s := testSeed()
	dir := t.TempDir()
	path := filepath.Join(dir, "seed.iso")
	if _, err := EnsureISO(path, s); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	script := `mount -t iso9660 -o ro,loop "$1" "$2" || exit 1
for f in user-data meta-data network-config; do printf '%s %s\n' "$f" "$(wc -c <"$2/$f")"; done
umount "$2"`
	out, err := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", path, mnt).CombinedOutput()
	if err != nil {
		t.Fatalf("mount the seed: %v\n%s", err, out)
	}
	for name, content := range seedFiles(s) {
		if !strings.Contains(string(out), name+" "+strconv.Itoa(len(content))+"\n") {
			t.Errorf("mounted %s is not %d bytes:\n%s", name, len(content), out)
		}
	}
}

func TestEnsureISO(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "seed.iso")
	s := testSeed()
	changed, err := EnsureISO(path, s)
	if err != nil || !changed {
		t.Fatalf("first EnsureISO = %v, %v; want changed", changed, err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o644 {
		t.Errorf("seed mode %v (%v), want 0644", info.Mode(), err)
	}
	if changed, err := EnsureISO(path, s); err != nil || changed {
		t.Errorf("second EnsureISO = %v, %v; want unchanged", changed, err)
	}
	s.MetaData = []byte("instance-id: i-2\nlocal-hostname: h\n")
	if changed, err := EnsureISO(path, s); err != nil || !changed {
		t.Errorf("EnsureISO of a changed seed = %v, %v; want changed", changed, err)
	}
	img, _ := os.ReadFile(path)
	got, err := ReadISO(bytes.NewReader(img), int64(len(img)))
	if err != nil || len(got.Files) != 3 || !strings.Contains(string(got.Files[0].Content), "i-2") {
		t.Errorf("after the change: %+v, %v", got, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left beside the seed: %v", entries)
	}

	foreign := filepath.Join(dir, "foreign.iso")
	if err := os.WriteFile(foreign, []byte("not an image"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = EnsureISO(foreign, s)
	var noe *NotOwnedError
	if !errors.Is(err, ErrNotOwned) || !errors.As(err, &noe) || noe.Hint() == "" {
		t.Errorf("EnsureISO over a foreign file: %v, want NotOwnedError", err)
	}
	if b, _ := os.ReadFile(foreign); string(b) != "not an image" {
		t.Error("EnsureISO changed a foreign file")
	}
	// An ISO image of someone else: refused as well.
	var other bytes.Buffer
	if err := WriteISO(&other, "OTHER", []ISOFile{{Name: "x", Content: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	b := other.Bytes()
	copy(b[pvdSector*sectorSize+574:], padded("SOMEONE ELSE", 128, false))
	if err := os.WriteFile(foreign, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureISO(foreign, s); !errors.Is(err, ErrNotOwned) {
		t.Errorf("EnsureISO over another tool's image: %v, want ErrNotOwned", err)
	}
	if _, err := EnsureISO(filepath.Join(dir, "missing", "seed.iso"), s); err == nil {
		t.Error("EnsureISO into a missing directory: no error")
	}
}

// FuzzReadISO: EnsureISO reads whatever file is at the seed's path; no
// input may make ReadISO panic or read past the image.
func FuzzReadISO(f *testing.F) {
	img, err := testSeed().ISO()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(img)
	f.Add(img[:pvdSector*sectorSize+100])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ReadISO(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		total := 0
		for _, f := range got.Files {
			total += len(f.Content)
		}
		if len(got.Files) > maxISOFiles || total > len(b)*maxISOFiles {
			t.Fatalf("read %d bytes of files from a %d-byte image", total, len(b))
		}
	})
}
