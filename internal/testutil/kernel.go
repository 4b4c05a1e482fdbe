package testutil

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"path/filepath"
	"strings"
)

// FakeModule returns a minimal ELF relocatable object with a .modinfo
// section naming the module and its dependencies: all that
// initramfs reads of a module.
func FakeModule(name string, deps ...string) []byte {
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

// FakeKver is the kernel version of FakeKernelTree.
const FakeKver = "6.1.0-99-amd64"

// FakeKernelTree is an unpacked kernel package, by path, with the modules the tiny
// recipe needs, their real dependencies, some unrelated ones and a built-in.
func FakeKernelTree() map[string][]byte {
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
		"boot/vmlinuz-" + FakeKver:                     []byte("fake bzImage\n"),
		"boot/config-" + FakeKver:                      []byte("CONFIG_PACKET=y\n"),
		"lib/modules/" + FakeKver + "/modules.builtin": []byte("kernel/fs/fuse/fuse.ko\nkernel/drivers/char/hw_random/rng-core.ko\n"),
	}
	for p, deps := range mods {
		name := strings.TrimSuffix(filepath.Base(p), ".ko")
		tree["lib/modules/"+FakeKver+"/kernel/"+p] = FakeModule(strings.ReplaceAll(name, "-", "_"), deps...)
	}
	return tree
}
