package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"vmnet/internal/errs"
	"vmnet/internal/image"
	"vmnet/internal/lab"
	"vmnet/internal/vmspec"
)

func imageCommand() *cli.Command {
	return &cli.Command{
		Name:  "image",
		Usage: "build, list and remove guest images (built from Debian packages, cached by recipe hash)",
		Description: "Images are built from recipes inside vmnet (" + strings.Join(image.Names(), ", ") + ") and Debian's packages,\n" +
			"and kept in " + image.DefaultCacheDir + " (or $" + image.EnvCache + "). An image is rebuilt only when its recipe\n" +
			"or the Debian packages it resolves to change; every VM shares the same build.\n\n" +
			"Examples:\n" +
			"   vmnet image build tiny\n" +
			"   vmnet --output json image list\n" +
			"   vmnet image rm tiny",
		Subcommands: []*cli.Command{
			{
				Name:      "build",
				Usage:     "build image NAME (or every image a lab needs) unless the cache has it (progress on stderr)",
				ArgsUsage: "NAME | --lab FILE|LAB",
				Description: "A second build of an unchanged recipe does nothing and says \"unchanged\". Progress goes to stderr:\n" +
					"live on a terminal, timestamped lines otherwise (CI logs). Build outside a sandbox: it has no way\n" +
					"out to Debian's mirror. The packages are Debian bookworm's, resolved through vmnet's own apt state\n" +
					"in the cache (.apt/), not the host's apt sources: the mirror is the host's own on Debian, else\n" +
					"http://deb.debian.org/debian; $VMNET_DEBIAN_MIRROR and $VMNET_DEBIAN_SECURITY_MIRROR choose others.\n\n" +
					"Examples:\n" +
					"   vmnet image build tiny\n" +
					"   vmnet image build --lab examples/office.lab.yaml   (capstone and tiny)",
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "force", Usage: "build again even when the cache has the image"},
					&cli.StringFlag{Name: "lab", Usage: "build every built-in image the nodes of lab `FILE|LAB` boot"},
				},
				Action: imageBuild,
			},
			{
				Name:    "list",
				Aliases: []string{"ls"},
				Usage:   "list the images in the cache",
				Action:  imageList,
			},
			{
				Name:        "rm",
				Aliases:     []string{"remove"},
				Usage:       "remove every build of image NAME from the cache",
				ArgsUsage:   "NAME",
				Description: "Removing an image that is not in the cache succeeds. A build of it in progress is waited for.",
				Action:      imageRemove,
			},
		},
	}
}

// imageNameArg returns the single NAME argument, checked, or a usage error.
func imageNameArg(c *cli.Context) (string, error) {
	name, err := oneArg(c, "tiny")
	if err != nil {
		return "", err
	}
	if err := image.ValidateName(name); err != nil {
		return "", usagef("%s: %v", commandPath(c), err)
	}
	return name, nil
}

func imageBuild(c *cli.Context) error {
	names, err := imageBuildNames(c)
	if err != nil {
		return err
	}
	format, err := outputFormat(c)
	if err != nil {
		return err
	}
	var views []imageBuildView
	for _, name := range names {
		build := buildImage
		if name == lab.HostRootfsImage {
			build = buildCtrImage
		}
		v, err := build(c, name)
		if err != nil {
			return err
		}
		views = append(views, v)
	}
	if format == "json" {
		if c.IsSet("lab") {
			return writeJSON(c.App.Writer, views)
		}
		return writeJSON(c.App.Writer, views[0])
	}
	for _, v := range views {
		img := v.Image
		if img.Name == lab.HostRootfsImage {
			fmt.Fprintf(c.App.Writer, "image %s: %s (hash %s, built %s)\n  rootfs  %s\n", img.Name, v.Outcome, img.Hash, img.Built.Local().Format(time.DateTime), img.Dir)
			continue
		}
		fmt.Fprintf(c.App.Writer, "image %s: %s (hash %s, %s, built %s)\n  kernel  %s\n  initrd  %s\n",
			img.Name, v.Outcome, shortHash(img.Hash), humanSize(img.Size), img.Built.Local().Format(time.DateTime), img.Kernel, img.Initrd)
		if img.Disk != "" {
			fmt.Fprintf(c.App.Writer, "  disk    %s\n", img.Disk)
		}

	}
	return nil
}

// imageBuildNames is what image build builds: the NAME argument, or with
// --lab every built-in image of the lab's nodes (a disk image path needs no
// build).
func imageBuildNames(c *cli.Context) ([]string, error) {
	ref := c.String("lab")
	if ref == "" {
		name, err := imageNameArg(c)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(image.Names(), name) && name != lab.HostRootfsImage {
			return nil, usagef("image build: no recipe for image %q; this vmnet builds: %s", name, strings.Join(image.Names(), ", "))
		}
		return []string{name}, nil
	}
	if c.NArg() > 0 {
		return nil, usagef("image build: give NAME or --lab, not both (got %s and --lab %s)", strings.Join(c.Args().Slice(), " "), ref)
	}
	l, err := lab.LoadRef(ref)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, img := range l.Images() {
		if !vmspec.IsImagePath(img) {
			names = append(names, img)
		}
	}
	if len(l.HostOrder) > 0 {
		names = append(names, lab.HostRootfsImage) // its container nodes' rootfs
	}
	if len(names) == 0 {
		return nil, &errs.FieldError{Field: "--lab", Value: ref, Problem: "boots only disk image paths: nothing to build", Fix: "build NAME instead, or leave image build out"}
	}
	return names, nil
}

// buildImage builds (or finds in the cache) one image.
func buildImage(c *cli.Context, name string) (imageBuildView, error) {
	cache := image.Default()
	var img image.Image
	var err error
	built := true
	if c.Bool("force") {
		img, err = cache.Rebuild(c.Context, name, c.App.ErrWriter)
	} else {
		img, built, err = cache.Ensure(c.Context, name, c.App.ErrWriter)
	}
	if err != nil {
		return imageBuildView{}, err
	}
	outcome := "built"
	if !built {
		outcome = "unchanged"
	}
	return imageBuildView{outcome, img}, nil
}

func imageList(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("image list: takes no arguments, got: %s", strings.Join(c.Args().Slice(), " "))
	}
	format, err := outputFormat(c)
	if err != nil {
		return err
	}
	imgs, err := image.List()
	if err != nil {
		return err
	}
	if format == "json" {
		if imgs == nil {
			imgs = []image.Image{}
		}
		return writeJSON(c.App.Writer, imgs)
	}
	t := newTable("NAME", "HASH", "SIZE", "BUILT", "PATH")
	for _, img := range imgs {
		t.row(img.Name, shortHash(img.Hash), humanSize(img.Size), img.Built.Local().Format(time.DateTime), img.Dir)
	}
	return t.write(c.App.Writer)
}

func imageRemove(c *cli.Context) error {
	name, err := imageNameArg(c)
	if err != nil {
		return err
	}
	format, err := outputFormat(c)
	if err != nil {
		return err
	}
	existed, err := image.Remove(c.Context, name)
	if err != nil {
		return err
	}
	outcome := "removed"
	if !existed {
		outcome = "absent, nothing to do"
	}
	if format == "json" {
		return writeJSON(c.App.Writer, removedView{Name: name, Outcome: outcome})
	}
	fmt.Fprintf(c.App.Writer, "image %s: %s\n", name, outcome)
	return nil
}

// imageBuildView is what image build prints as JSON.
type imageBuildView struct {
	Outcome string `json:"outcome"` // built or unchanged
	image.Image
}

// shortHash is the part of a recipe hash that names the build's directory.
func shortHash(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	return h
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
}
