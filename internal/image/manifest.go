package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"vmnet/internal/debian"
	"vmnet/internal/fsperm"
)

// manifestName is the file that makes a build directory a valid image. It is
// written last, so a build that was cut short never looks finished.
const manifestName = "manifest.json"

// manifestFormat is the version of the manifest's layout.
const manifestFormat = 1

// manifest describes one finished build. Paths are file names inside the
// build's directory, so the cache can be moved.
type manifest struct {
	Format       int              `json:"format"`
	Name         string           `json:"name"`
	Hash         string           `json:"hash"`
	Kernel       string           `json:"kernel"`
	Initrd       string           `json:"initrd"`
	Disk         string           `json:"disk,omitempty"`
	Cmdline      string           `json:"cmdline"`
	ReadyLine    string           `json:"ready_line"`
	ReadyAgent   bool             `json:"ready_agent,omitempty"`
	Built        time.Time        `json:"built"`
	BuildSeconds float64          `json:"build_seconds"`
	Packages     []string         `json:"packages"` // NAME=VERSION, the kernel first
	Debs         []string         `json:"debs"`     // the .deb files in the cache it was made from
	Modules      []string         `json:"modules"`  // in load order
	Files        map[string]int64 `json:"files"`    // every artefact and its size

	AppPackages  []string           `json:"app_packages,omitempty"`  // the app rootfs's packages, NAME=VERSION
	PhaseSeconds map[string]float64 `json:"phase_seconds,omitempty"` // how long each part of the build took
}

// errInvalidBuild is wrapped when a build directory is not a complete build of what was asked.
var errInvalidBuild = errors.New("not a valid build")

// writeManifest writes dir/manifest.json durably: temp file, fsync, rename.
func writeManifest(dir string, m manifest) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	return fsperm.WriteFileAtomic(filepath.Join(dir, manifestName), data, 0o644)
}

// readManifest reads dir/manifest.json.
func readManifest(dir string) (manifest, error) {
	var m manifest
	data, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("%s: %w: %v", filepath.Join(dir, manifestName), errInvalidBuild, err)
	}
	return m, nil
}

// check verifies that m describes a complete build of name with hash (any
// hash when hash is "") and that every artefact is in dir with its size.
func (m manifest) check(dir, name, hash string) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%s: %w: %s", dir, errInvalidBuild, fmt.Sprintf(format, a...))
	}
	switch {
	case m.Format != manifestFormat:
		return bad("manifest format %d, want %d", m.Format, manifestFormat)
	case m.Name != name:
		return bad("built for image %q", m.Name)
	case hash != "" && m.Hash != hash:
		return bad("hash %s, want %s", m.Hash, hash)
	case m.Kernel == "" || m.Initrd == "":
		return bad("manifest names no kernel or initrd")
	}
	for _, f := range []string{m.Kernel, m.Initrd, m.Disk} {
		if _, ok := m.Files[f]; f != "" && !ok {
			return bad("%s is not among the manifest's files", f)
		}
	}
	for f, size := range m.Files {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			return bad("%v", err)
		}
		if fi.Size() != size {
			return bad("%s has %d bytes, the manifest says %d", f, fi.Size(), size)
		}
	}
	return nil
}

// image is the Image the manifest describes, with absolute paths under dir.
func (m manifest) image(dir string) Image {
	img := Image{
		Name: m.Name, Hash: m.Hash, Dir: dir,
		Kernel: filepath.Join(dir, m.Kernel), Initrd: filepath.Join(dir, m.Initrd),
		Cmdline: m.Cmdline, ReadyLine: m.ReadyLine, ReadyAgent: m.ReadyAgent, Built: m.Built,
		Packages: m.Packages, AppPackages: m.AppPackages, Size: debian.DirSize(dir),
	}
	if m.Disk != "" {
		img.Disk = filepath.Join(dir, m.Disk)
	}
	return img
}

// fileSizes records the size of each named file in dir.
func fileSizes(dir string, names ...string) (map[string]int64, error) {
	sizes := map[string]int64{}
	for _, n := range names {
		fi, err := os.Stat(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		sizes[n] = fi.Size()
	}
	return sizes, nil
}

// syncDir makes a rename or create in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// sortImages orders by name, newest build first.
func sortImages(imgs []Image) {
	sort.Slice(imgs, func(i, j int) bool {
		if imgs[i].Name != imgs[j].Name {
			return imgs[i].Name < imgs[j].Name
		}
		return imgs[i].Built.After(imgs[j].Built)
	})
}
