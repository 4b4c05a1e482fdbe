package initramfs

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// fakeModule returns a minimal ELF relocatable object with a .modinfo
// section, which is all readModinfo looks at.
func fakeModule(name string, deps ...string) []byte {
	modinfo := "license=GPL\x00depends=" + strings.Join(deps, ",") + "\x00name=" + name + "\x00vermagic=6.1.0\x00"
	shstrtab := "\x00.modinfo\x00.shstrtab\x00"
	const ehsize, shentsize = 64, 64
	infoOff := uint64(ehsize)
	strOff := infoOff + uint64(len(modinfo))
	shOff := (strOff + uint64(len(shstrtab)) + 7) &^ 7
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, elf.Header64{
		Ident:     [elf.EI_NIDENT]byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)},
		Type:      uint16(elf.ET_REL),
		Machine:   uint16(elf.EM_X86_64),
		Version:   uint32(elf.EV_CURRENT),
		Shoff:     shOff,
		Ehsize:    ehsize,
		Shentsize: shentsize,
		Shnum:     3,
		Shstrndx:  2,
	})
	b.WriteString(modinfo)
	b.WriteString(shstrtab)
	for uint64(b.Len()) < shOff {
		b.WriteByte(0)
	}
	for _, s := range []elf.Section64{
		{},
		{Name: 1, Type: uint32(elf.SHT_PROGBITS), Off: infoOff, Size: uint64(len(modinfo)), Addralign: 1},
		{Name: 10, Type: uint32(elf.SHT_STRTAB), Off: strOff, Size: uint64(len(shstrtab)), Addralign: 1},
	} {
		binary.Write(&b, binary.LittleEndian, s)
	}
	return b.Bytes()
}

const fakeKver = "6.1.0-99-amd64"

// fakeKernelTree is an unpacked kernel package with the modules the tiny
// recipe needs, their real dependencies, some unrelated ones and a built-in.
func fakeKernelTree() map[string][]byte {
	mods := map[string][]string{
		"drivers/virtio/virtio_ring.ko":                      nil,
		"drivers/virtio/virtio.ko":                           {"virtio_ring"},
		"drivers/virtio/virtio_pci_modern_dev.ko":            nil,
		"drivers/virtio/virtio_pci_legacy_dev.ko":            nil,
		"drivers/virtio/virtio_pci.ko":                       {"virtio_pci_modern_dev", "virtio_ring", "virtio", "virtio_pci_legacy_dev"},
		"net/core/failover.ko":                               nil,
		"drivers/net/net_failover.ko":                        {"failover"},
		"drivers/net/virtio_net.ko":                          {"net_failover", "virtio", "virtio_ring"},
		"drivers/block/virtio_blk.ko":                        {"virtio", "virtio_ring"},
		"drivers/char/virtio_console.ko":                     {"virtio", "virtio_ring"},
		"drivers/char/hw_random/virtio-rng.ko":               {"virtio", "virtio_ring"},
		"net/vmw_vsock/vsock.ko":                             nil,
		"net/vmw_vsock/vmw_vsock_virtio_transport_common.ko": {"vsock"},
		"net/vmw_vsock/vmw_vsock_virtio_transport.ko":        {"virtio", "vmw_vsock_virtio_transport_common", "virtio_ring", "vsock"},
		"drivers/net/e1000/e1000.ko":                         nil,
		"fs/fuse/virtiofs.ko":                                {"fuse", "virtio", "virtio_ring"},
	}
	tree := map[string][]byte{
		"boot/vmlinuz-" + fakeKver:                     []byte("fake bzImage\n"),
		"boot/config-" + fakeKver:                      []byte("CONFIG_PACKET=y\n"),
		"lib/modules/" + fakeKver + "/modules.builtin": []byte("kernel/fs/fuse/fuse.ko\nkernel/drivers/char/hw_random/rng-core.ko\n"),
	}
	for p, deps := range mods {
		name := strings.TrimSuffix(filepath.Base(p), ".ko")
		tree["lib/modules/"+fakeKver+"/kernel/"+p] = fakeModule(modName(name), deps...)
	}
	return tree
}

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
