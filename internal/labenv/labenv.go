// Package labenv builds the environment that VM and check commands act in:
// the libvirt connection, netlink handles in the network namespace of that
// libvirtd, the accelerator, and how a spec's image becomes the domain's.
// It is the one place that wires these together, so the CLI only turns
// flags into Options.
package labenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"

	"vmnet/internal/accel"
	"vmnet/internal/bridge"
	"vmnet/internal/debian"
	"vmnet/internal/domain"
	"vmnet/internal/errs"
	"vmnet/internal/image"
	"vmnet/internal/sandbox"
	"vmnet/internal/virt"
	"vmnet/internal/vm"
	"vmnet/internal/vmspec"
)

// Options say which libvirtd to reach and what to prepare.
type Options struct {
	// URI is the libvirt URI; "" is virt.URI().
	URI string
	// Accel is the accelerator wanted (auto, kvm or tcg); "" probes none,
	// for commands that start no guest.
	Accel string
	// StateDir holds the VMs' files; "" is domain.DefaultStateDir.
	StateDir string
	// Progress gets the lines people watch (image builds, boot, provisioning).
	Progress io.Writer
}

// Open connects to libvirtd and opens the bridges' and routes' netlink
// handles in that daemon's network namespace (virt.Netns), so a bridge a
// profile needs is made where libvirt's guests can join it. The returned
// function closes everything Open opened.
func Open(ctx context.Context, o Options) (vm.Env, func(), error) {
	if o.URI == "" {
		o.URI = virt.URI()
	}
	if o.StateDir == "" {
		o.StateDir = domain.DefaultStateDir
	}
	var closers []func()
	done := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	conn, err := virt.Connect(o.URI)
	if err != nil {
		return vm.Env{}, nil, err
	}
	closers = append(closers, func() { conn.Close() })
	env := vm.Env{Conn: vm.LibvirtConn(conn), StateDir: o.StateDir, HostID: HostID(), Progress: o.Progress}
	if err := openKernel(&env, o.URI, &closers); err != nil {
		done()
		return vm.Env{}, nil, err
	}
	if o.Accel != "" {
		if env.Accel, err = accel.ProbeLibvirt(ctx, o.Accel, conn); err != nil {
			done()
			return vm.Env{}, nil, err
		}
	}
	progress := o.Progress
	env.Image = func(ctx context.Context, spec vmspec.Spec) (domain.ImageInfo, error) {
		return imageInfo(ctx, spec, progress)
	}
	return env, done, nil
}

// openKernel gives env its Bridges and Routes, both in the network namespace
// of the libvirtd at uri, and adds their closers.
func openKernel(env *vm.Env, uri string, closers *[]func()) error {
	ns, err := virt.Netns(uri)
	if err != nil {
		return err
	}
	defer ns.Close() // both handles keep their own reference
	k, err := bridge.Open(ns)
	if err != nil {
		return err
	}
	*closers = append(*closers, k.Close)
	routes, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("open netlink in the network namespace of libvirtd: %w", err)
	}
	*closers = append(*closers, routes.Close)
	env.Bridges, env.Routes = k, routes
	return nil
}

// HostID identifies this host for stable bridge MACs: its machine-id, else
// its hostname.
func HostID() string {
	if b, err := os.ReadFile("/etc/machine-id"); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b))
	}
	h, _ := os.Hostname()
	return h
}

// PlannedImage describes the image a spec names as it is or would be in the
// cache, building nothing (vm xml).
func PlannedImage(spec vmspec.Spec) (domain.ImageInfo, error) {
	if vmspec.IsImagePath(spec.Image) {
		return diskImage(spec.Image)
	}
	img, err := image.Planned(spec.Image)
	if err != nil {
		return domain.ImageInfo{}, err
	}
	return fromImage(img), nil
}

// imageInfo builds (when needed) the spec's image and describes it for the domain.
func imageInfo(ctx context.Context, spec vmspec.Spec, progress io.Writer) (domain.ImageInfo, error) {
	if vmspec.IsImagePath(spec.Image) {
		return diskImage(spec.Image)
	}
	if err := builtInSandbox(ctx, spec.Image); err != nil {
		return domain.ImageInfo{}, err
	}
	img, _, err := image.Ensure(ctx, spec.Image, progress)
	if err != nil {
		return domain.ImageInfo{}, err
	}
	return fromImage(img), nil
}

// builtInSandbox refuses, inside a vmnet sandbox, an image that is not
// built yet: a sandbox has no way out to Debian's mirror, so a build there
// could only fail after minutes. The error names the command to run
// outside.
func builtInSandbox(ctx context.Context, name string) error {
	sb := os.Getenv(sandbox.EnvVar)
	if sb == "" {
		return nil
	}
	img, err := image.Default().Planned(ctx, name)
	if errors.Is(err, debian.ErrNoCandidate) {
		// vmnet's own Debian lists are not fetched yet: nothing was ever built
		// in this cache, and the sandbox cannot fetch them either.
		err, img = nil, image.Image{}
	}
	if err != nil || !img.Built.IsZero() {
		return err // Planned's own error says what is wrong; a built image is fine
	}
	return errs.WithHint(fmt.Errorf("image %s is not built, and sandbox %s has no way out to Debian's mirror to build it", name, sb),
		"build it outside the sandbox first: vmnet image build "+name+" (or vmnet image build --lab FILE for every image a lab needs)")
}

// fromImage describes a built image for the domain: how it boots and what
// readiness it can give.
func fromImage(img image.Image) domain.ImageInfo {
	info := domain.ImageInfo{Name: img.Name, Kernel: img.Kernel, Initrd: img.Initrd, Cmdline: img.Cmdline, Disk: img.Disk,
		// An initramfs image (no disk) has no guest agent: the image recipes' rule.
		NoAgent: img.Disk == "" && !img.ReadyAgent}
	if img.Disk != "" {
		info.DiskFormat = "qcow2"
	}
	switch {
	case img.ReadyAgent:
		info.Ready = vmspec.Ready{Agent: true}
	case img.ReadyLine != "":
		info.Ready = vmspec.Ready{Console: img.ReadyLine}
	}
	return info
}

// diskImage describes a user's disk image given by path.
func diskImage(path string) (domain.ImageInfo, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return domain.ImageInfo{}, err
	}
	if _, err := os.Stat(abs); err != nil {
		return domain.ImageInfo{}, &errs.FieldError{Field: "image", Value: path, Problem: "cannot be read: " + err.Error(),
			Fix: "give the path of a qcow2 or raw disk image, or a built-in image name such as tiny"}
	}
	format := "qcow2"
	if ext := filepath.Ext(abs); ext == ".raw" || ext == ".img" {
		format = "raw"
	}
	// A user's disk image is taken for a stock cloud image (Debian or Ubuntu
	// genericcloud): it boots from its own disk, configures itself from a
	// NoCloud seed, and installs the guest agent that readiness waits for.
	return domain.ImageInfo{Name: abs, Disk: abs, DiskFormat: format, CloudInit: true, Ready: vmspec.Ready{Agent: true}}, nil
}
