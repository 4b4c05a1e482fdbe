package initramfs

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Module is a kernel module found in an unpacked kernel package.
type Module struct {
	Name    string   // normalised: '-' written as '_', as the kernel compares them
	Path    string   // relative to /lib/modules/KVER, e.g. kernel/drivers/net/virtio_net.ko
	Depends []string // normalised names, from modinfo's depends=
}

// modName normalises a module name: the kernel treats '-' and '_' alike.
func modName(s string) string { return strings.ReplaceAll(s, "-", "_") }

// readModinfo returns a module's name and dependencies from its .modinfo ELF
// section, the same data `modinfo -F depends` prints.
func readModinfo(file string) (name string, depends []string, err error) {
	f, err := elf.Open(file)
	if err != nil {
		return "", nil, fmt.Errorf("read kernel module %s: %w", file, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return "", nil, fmt.Errorf("read kernel module %s: no .modinfo section", file)
	}
	data, err := sec.Data()
	if err != nil {
		return "", nil, fmt.Errorf("read kernel module %s: %w", file, err)
	}
	return parseModinfo(data)
}

// parseModinfo reads NUL-separated key=value strings.
func parseModinfo(data []byte) (name string, depends []string, err error) {
	for _, kv := range bytes.Split(data, []byte{0}) {
		k, v, ok := strings.Cut(string(kv), "=")
		if !ok {
			continue
		}
		switch k {
		case "name":
			name = modName(v)
		case "depends":
			for _, d := range strings.Split(v, ",") {
				if d = strings.TrimSpace(d); d != "" {
					depends = append(depends, modName(d))
				}
			}
		}
	}
	return name, depends, nil
}

// scanModules indexes every module under root (/lib/modules/KVER of an
// unpacked kernel package) by name.
func scanModules(root string) (map[string]Module, error) {
	mods := map[string]Module{}
	err := filepath.WalkDir(filepath.Join(root, "kernel"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		base := d.Name()
		switch {
		case strings.HasSuffix(base, ".ko"):
		case strings.Contains(base, ".ko."):
			// busybox's insmod in the guest cannot read compressed modules.
			return fmt.Errorf("kernel module %s is compressed; vmnet needs a kernel with uncompressed modules (Debian 12's)", p)
		default:
			return nil
		}
		name, deps, err := readModinfo(p)
		if err != nil {
			return err
		}
		if name == "" {
			name = modName(strings.TrimSuffix(base, ".ko"))
		}
		rel, _ := filepath.Rel(root, p)
		mods[name] = Module{Name: name, Path: filepath.ToSlash(rel), Depends: deps}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return mods, nil
}

// readBuiltin reads modules.builtin: the modules compiled into the kernel.
// A missing file means none are known.
func readBuiltin(file string) (map[string]bool, error) {
	f, err := os.Open(file)
	if os.IsNotExist(err) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	builtin := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		base := filepath.Base(strings.TrimSpace(sc.Text()))
		if base != "." && base != "" {
			builtin[modName(strings.TrimSuffix(base, ".ko"))] = true
		}
	}
	return builtin, sc.Err()
}

// loadOrder returns want and everything they depend on, each after its
// dependencies, in the order insmod must load them. Built-in modules need no
// loading and are left out. Ties keep the order of want and of depends=.
func loadOrder(want []string, mods map[string]Module, builtin map[string]bool) ([]Module, error) {
	var order []Module
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var visit func(name string, chain []string) error
	visit = func(name string, chain []string) error {
		name = modName(name)
		switch state[name] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("kernel modules depend on each other in a cycle: %s", strings.Join(append(chain, name), " -> "))
		}
		m, ok := mods[name]
		if !ok {
			if builtin[name] {
				state[name] = done
				return nil
			}
			if len(chain) == 0 {
				return fmt.Errorf("kernel module %s: not in the kernel package (neither a module nor built in)", name)
			}
			return fmt.Errorf("kernel module %s, needed by %s: not in the kernel package", name, chain[len(chain)-1])
		}
		state[name] = visiting
		for _, d := range m.Depends {
			if err := visit(d, append(chain, name)); err != nil {
				return err
			}
		}
		state[name] = done
		order = append(order, m)
		return nil
	}
	for _, w := range want {
		if err := visit(w, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// Names lists the names of mods, in order.
func Names(mods []Module) []string {
	names := make([]string, len(mods))
	for i, m := range mods {
		names[i] = m.Name
	}
	return names
}

// KernelVersion finds the one /lib/modules/KVER directory of an unpacked kernel package.
func KernelVersion(root string) (string, error) {
	entries, err := os.ReadDir(filepath.Join(root, "lib", "modules"))
	if err != nil {
		return "", fmt.Errorf("kernel package has no /lib/modules: %w", err)
	}
	var vers []string
	for _, e := range entries {
		if e.IsDir() {
			vers = append(vers, e.Name())
		}
	}
	sort.Strings(vers)
	if len(vers) != 1 {
		return "", fmt.Errorf("kernel package has %d directories in /lib/modules (%s), want 1", len(vers), strings.Join(vers, ", "))
	}
	return vers[0], nil
}

// LoadOrder returns the modules want names and everything they depend on,
// each after its dependencies, as insmod must load them, from the modules
// directory modRoot (/lib/modules/KVER of an unpacked kernel package).
// Built-in modules (modules.builtin) are left out.
func LoadOrder(modRoot string, want []string) ([]Module, error) {
	mods, err := scanModules(modRoot)
	if err != nil {
		return nil, err
	}
	builtin, err := readBuiltin(filepath.Join(modRoot, "modules.builtin"))
	if err != nil {
		return nil, err
	}
	return loadOrder(want, mods, builtin)
}
