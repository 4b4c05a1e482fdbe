package cloudinit

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strings"
	"unicode/utf16"

	"vmnet/internal/errs"
	"vmnet/internal/fsperm"
)

// The seed image: ISO 9660 with a Joliet tree, the layout genisoimage
// -volid cidata -joliet makes. Linux mounts the Joliet tree, which keeps the
// names exactly (user-data, not USER_DAT); the primary tree carries the same
// names upper-cased, which Linux maps back to lower case when Joliet is off.
// Everything sits in the root directory. Timestamps are fixed, so the same
// seed always gives the same bytes and EnsureISO can compare them.
//
// Why not github.com/kdomanski/iso9660 (v0.4.0, the version the proxy
// serves): its ImageWriter.WriteTo stamps time.Now() into the primary
// volume descriptor (two writes of the same files differ from byte 33594,
// the creation date), hard-codes the application identifier
// "github.com/kdomanski/iso9660" (EnsureISO recognises vmnet's own seed by
// isoAppID before replacing it), writes no Joliet tree, and stages every
// file in a directory under os.TempDir() (the seed can carry secrets).
const (
	// SeedLabel is the volume label cloud-init's NoCloud looks for.
	SeedLabel = "cidata"
	// isoAppID marks an image as vmnet's (its application identifier).
	isoAppID = "VMNET CLOUD-INIT SEED"

	sectorSize = 2048
	// Fixed sectors: 0-15 system area, then the volume descriptors, the
	// path tables and the two root directories; file data follows.
	pvdSector      = 16
	svdSector      = 17
	termSector     = 18
	lPathPrimary   = 19
	mPathPrimary   = 20
	lPathJoliet    = 21
	mPathJoliet    = 22
	rootPrimary    = 23
	rootJoliet     = 24
	firstDataBlock = 25

	// maxISOFiles bounds what ReadISO reads: a seed holds three files.
	maxISOFiles = 64
)

// ErrNotOwned matches (errors.Is) a refusal to replace a file vmnet did not write.
var ErrNotOwned = errors.New("not written by vmnet")

// NotOwnedError is a seed path that holds a file vmnet did not write.
type NotOwnedError struct {
	Path string
}

func (e *NotOwnedError) Error() string {
	return fmt.Sprintf("seed image %q exists and was not written by vmnet", e.Path)
}

// Hint says how to proceed.
func (e *NotOwnedError) Hint() string {
	return "move the file away or choose another path; vmnet replaces only seed images it wrote"
}

// Is makes errors.Is(err, ErrNotOwned) true.
func (e *NotOwnedError) Is(target error) bool { return target == ErrNotOwned }

// ISOFile is one file in the root directory of an image.
type ISOFile struct {
	Name    string
	Content []byte
}

// ISOImage is what ReadISO finds in an image.
type ISOImage struct {
	Label string // volume label (the Joliet one when there is one)
	AppID string // application identifier of the primary descriptor
	Files []ISOFile
}

var isoNameRE = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,29}$`)
var isoLabelRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,16}$`)

// ISO returns the seed as an ISO 9660 image labelled cidata.
func (s Seed) ISO() ([]byte, error) {
	var b bytes.Buffer
	err := WriteISO(&b, SeedLabel, []ISOFile{
		{Name: "user-data", Content: s.UserData},
		{Name: "meta-data", Content: s.MetaData},
		{Name: "network-config", Content: s.NetworkConfig},
	})
	return b.Bytes(), err
}

type isoEntry struct {
	primaryID []byte
	jolietID  []byte
	sector    uint32
	content   []byte
}

// WriteISO writes an ISO 9660 image with a Joliet tree, volume label label,
// holding files in its root directory. Names are 1 to 30 characters of
// letters, digits, '.', '_' and '-'; the label 1 to 16 letters, digits, '_'
// and '-'.
func WriteISO(w io.Writer, label string, files []ISOFile) error {
	if !isoLabelRE.MatchString(label) {
		return &errs.FieldError{Field: "label", Value: label, Problem: "is not a valid volume label",
			Fix: "use 1 to 16 letters, digits, '_' and '-', e.g. cidata"}
	}
	entries := make([]isoEntry, 0, len(files))
	seen := map[string]bool{}
	for _, f := range files {
		upper := strings.ToUpper(f.Name)
		if !isoNameRE.MatchString(f.Name) || seen[upper] {
			return &errs.FieldError{Field: "file name", Value: f.Name, Problem: "is not a valid, unique seed file name",
				Fix: "use 1 to 30 letters, digits, '.', '_' and '-', each name once (case-insensitively)"}
		}
		seen[upper] = true
		if len(f.Content) > 1<<30 {
			return &errs.FieldError{Field: "file " + f.Name, Value: fmt.Sprint(len(f.Content)), Problem: "is too large for a seed",
				Fix: "keep seed files under 1 GiB"}
		}
		// ISO 9660 wants "NAME.EXT;VERSION": a name without a dot gets an
		// empty extension, which Linux drops again with the ";1".
		primary := upper
		if !strings.Contains(primary, ".") {
			primary += "."
		}
		entries = append(entries, isoEntry{primaryID: []byte(primary + ";1"), jolietID: ucs2(f.Name), content: f.Content})
	}

	next := uint32(firstDataBlock)
	for i := range entries {
		entries[i].sector = next
		next += sectors(len(entries[i].content))
	}
	total := next

	primaryDir, err := dirSector(rootPrimary, entries, func(e isoEntry) []byte { return e.primaryID })
	if err != nil {
		return err
	}
	jolietDir, err := dirSector(rootJoliet, entries, func(e isoEntry) []byte { return e.jolietID })
	if err != nil {
		return err
	}

	img := make([]byte, int(total)*sectorSize)
	put := func(sector uint32, b []byte) { copy(img[int(sector)*sectorSize:], b) }
	put(pvdSector, volumeDescriptor(1, label, total, lPathPrimary, mPathPrimary, rootPrimary))
	put(svdSector, volumeDescriptor(2, label, total, lPathJoliet, mPathJoliet, rootJoliet))
	put(termSector, []byte{255, 'C', 'D', '0', '0', '1', 1})
	put(lPathPrimary, pathTable(rootPrimary, binary.LittleEndian))
	put(mPathPrimary, pathTable(rootPrimary, binary.BigEndian))
	put(lPathJoliet, pathTable(rootJoliet, binary.LittleEndian))
	put(mPathJoliet, pathTable(rootJoliet, binary.BigEndian))
	put(rootPrimary, primaryDir)
	put(rootJoliet, jolietDir)
	for _, e := range entries {
		put(e.sector, e.content)
	}
	if _, err := w.Write(img); err != nil {
		return fmt.Errorf("write the seed image: %w", err)
	}
	return nil
}

func sectors(n int) uint32 { return uint32((n + sectorSize - 1) / sectorSize) }

func ucs2(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = binary.BigEndian.AppendUint16(b, u)
	}
	return b
}

// padded returns s in a field of n bytes, filled with spaces (in UCS-2 for
// the Joliet descriptor).
func padded(s string, n int, joliet bool) []byte {
	if !joliet {
		return []byte(s + strings.Repeat(" ", n-len(s)))
	}
	b := ucs2(s)
	for len(b) < n {
		b = append(b, 0, ' ')
	}
	return b[:n]
}

func both16(v uint16) []byte {
	b := binary.LittleEndian.AppendUint16(nil, v)
	return binary.BigEndian.AppendUint16(b, v)
}

func both32(v uint32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, v)
	return binary.BigEndian.AppendUint32(b, v)
}

// recordTime is every directory record's date: 2000-01-01 00:00:00 UTC
// (years since 1900, month, day, hour, minute, second, GMT offset).
var recordTime = []byte{100, 1, 1, 0, 0, 0, 0}

// volumeTime is every volume descriptor date, in the same instant.
var volumeTime = append([]byte("2000010100000000"), 0)

// dirRecord is one ECMA-119 9.1 directory record.
func dirRecord(id []byte, sector, size uint32, dir bool) []byte {
	n := 33 + len(id)
	if len(id)%2 == 0 {
		n++ // records have an even length
	}
	r := make([]byte, 0, n)
	r = append(r, byte(n), 0)
	r = append(r, both32(sector)...)
	r = append(r, both32(size)...)
	r = append(r, recordTime...)
	flags := byte(0)
	if dir {
		flags = 2
	}
	r = append(r, flags, 0, 0)
	r = append(r, both16(1)...)
	r = append(r, byte(len(id)))
	r = append(r, id...)
	for len(r) < n {
		r = append(r, 0)
	}
	return r
}

// dirSector is the root directory: ".", "..", then the files sorted by
// their identifier, which must all fit one sector.
func dirSector(self uint32, entries []isoEntry, id func(isoEntry) []byte) ([]byte, error) {
	sorted := slices.Clone(entries)
	slices.SortFunc(sorted, func(a, b isoEntry) int { return bytes.Compare(id(a), id(b)) })
	d := dirRecord([]byte{0}, self, sectorSize, true)
	d = append(d, dirRecord([]byte{1}, self, sectorSize, true)...)
	for _, e := range sorted {
		d = append(d, dirRecord(id(e), e.sector, uint32(len(e.content)), false)...)
	}
	if len(d) > sectorSize {
		return nil, &errs.FieldError{Field: "files", Value: fmt.Sprint(len(entries)), Problem: "do not fit one directory sector",
			Fix: "a seed holds a few files; put fewer in it"}
	}
	return d, nil
}

// pathTable lists the one directory, the root (ECMA-119 9.4).
func pathTable(root uint32, order binary.AppendByteOrder) []byte {
	t := []byte{1, 0}
	t = order.AppendUint32(t, root)
	t = order.AppendUint16(t, 1)
	return append(t, 0, 0) // identifier 0x00, padding to an even length
}

// volumeDescriptor is the primary (kind 1) or the Joliet supplementary
// (kind 2) volume descriptor (ECMA-119 8.4 and 8.5).
func volumeDescriptor(kind byte, label string, total, lPath, mPath, root uint32) []byte {
	joliet := kind == 2
	d := make([]byte, sectorSize)
	d[0] = kind
	copy(d[1:], "CD001")
	d[6] = 1
	copy(d[8:40], padded("LINUX", 32, joliet))
	copy(d[40:72], padded(label, 32, joliet))
	copy(d[80:88], both32(total))
	if joliet {
		copy(d[88:91], "%/E") // UCS-2 level 3
	}
	copy(d[120:124], both16(1))
	copy(d[124:128], both16(1))
	copy(d[128:132], both16(sectorSize))
	copy(d[132:140], both32(10))
	binary.LittleEndian.PutUint32(d[140:144], lPath)
	binary.BigEndian.PutUint32(d[148:152], mPath)
	copy(d[156:190], dirRecord([]byte{0}, root, sectorSize, true))
	for _, f := range [][2]int{{190, 128}, {318, 128}, {446, 128}, {702, 37}, {739, 37}, {776, 37}} {
		copy(d[f[0]:f[0]+f[1]], padded("", f[1], joliet))
	}
	copy(d[574:702], padded(isoAppID, 128, joliet))
	for _, off := range []int{813, 830, 864} {
		copy(d[off:off+17], volumeTime)
	}
	copy(d[847:864], append([]byte("0000000000000000"), 0)) // never expires
	d[881] = 1
	return d
}

// ReadISO reads back an image that WriteISO wrote, or any ISO 9660 image
// whose files sit in its root directory: the label, the application
// identifier and the root directory's files, by their Joliet names when the
// image has a Joliet tree. size is the image's size in bytes: no extent may
// reach past it.
func ReadISO(r io.ReaderAt, size int64) (*ISOImage, error) {
	extent := func(what string, sector, length uint32) ([]byte, error) {
		start := int64(sector) * sectorSize
		if start+int64(length) > size {
			return nil, fmt.Errorf("%s reaches past the end of the image", what)
		}
		b := make([]byte, length)
		if _, err := r.ReadAt(b, start); err != nil {
			return nil, fmt.Errorf("read %s: %w", what, err)
		}
		return b, nil
	}
	sector := func(n uint32) ([]byte, error) { return extent(fmt.Sprintf("sector %d", n), n, sectorSize) }
	pvd, err := sector(pvdSector)
	if err != nil {
		return nil, err
	}
	if pvd[0] != 1 || string(pvd[1:6]) != "CD001" {
		return nil, errors.New("no ISO 9660 primary volume descriptor at sector 16")
	}
	img := &ISOImage{
		Label: strings.TrimRight(string(pvd[40:72]), " "),
		AppID: strings.TrimRight(string(pvd[574:702]), " "),
	}
	root, joliet := pvd[156:190], false
	for n := uint32(svdSector); n < pvdSector+32; n++ {
		d, err := sector(n)
		if err != nil || d[0] == 255 || string(d[1:6]) != "CD001" {
			break
		}
		esc := string(d[88:91])
		if d[0] == 2 && (esc == "%/@" || esc == "%/C" || esc == "%/E") {
			root, joliet = d[156:190], true
			img.Label = strings.TrimRight(fromUCS2(d[40:72]), " ")
			break
		}
	}
	dir, err := extent("the root directory", binary.LittleEndian.Uint32(root[2:6]), binary.LittleEndian.Uint32(root[10:14]))
	if err != nil {
		return nil, err
	}
	for off := 0; off < len(dir); {
		n := int(dir[off])
		if n == 0 { // the rest of this sector is padding
			off = (off/sectorSize + 1) * sectorSize
			continue
		}
		if off+n > len(dir) || n < 34 {
			return nil, fmt.Errorf("bad directory record at offset %d", off)
		}
		if len(img.Files) == maxISOFiles {
			return nil, fmt.Errorf("more than %d files in the root directory", maxISOFiles)
		}
		rec := dir[off : off+n]
		off += n
		idLen := int(rec[32])
		if 33+idLen > len(rec) {
			return nil, errors.New("bad directory record identifier")
		}
		id := rec[33 : 33+idLen]
		if rec[25]&2 != 0 { // ".", ".." and subdirectories
			continue
		}
		name := string(id)
		if joliet {
			name = fromUCS2(id)
		}
		name = strings.TrimSuffix(strings.TrimSuffix(name, ";1"), ".")
		if !joliet {
			name = strings.ToLower(name)
		}
		content, err := extent(fmt.Sprintf("file %q", name), binary.LittleEndian.Uint32(rec[2:6]), binary.LittleEndian.Uint32(rec[10:14]))
		if err != nil {
			return nil, err
		}
		img.Files = append(img.Files, ISOFile{Name: name, Content: content})
	}
	return img, nil
}

func fromUCS2(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.BigEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

// EnsureISO writes seed s as an image at path, atomically (a temporary file
// renamed over it) with mode 0644: QEMU must read it, and it holds no
// secret. It reports changed=false, writing nothing, when the file already
// holds the same bytes, and refuses (NotOwnedError) to replace a file that
// is not a vmnet seed image.
func EnsureISO(path string, s Seed) (changed bool, err error) {
	img, err := s.ISO()
	if err != nil {
		return false, err
	}
	old, err := os.ReadFile(path)
	switch {
	case err == nil && bytes.Equal(old, img):
		return false, nil
	case err == nil:
		if got, rerr := ReadISO(bytes.NewReader(old), int64(len(old))); rerr != nil || got.AppID != isoAppID {
			return false, &NotOwnedError{Path: path}
		}
	case !errors.Is(err, fs.ErrNotExist):
		return false, fmt.Errorf("read seed image %q: %w", path, err)
	}
	if err := fsperm.WriteFileAtomic(path, img, 0o644); err != nil {
		return false, fmt.Errorf("write seed image %q: %w", path, err)
	}
	return true, nil
}
