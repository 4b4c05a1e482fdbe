package initramfs

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

type cpioFile struct {
	Name  string
	Mode  uint32
	Data  []byte
	Major uint32 // of a device node
	Minor uint32
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
