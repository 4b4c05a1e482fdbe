package main

import (
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"vmnet/internal/hostctr"
	"vmnet/internal/image"
)

// buildCtrImage builds (or finds) the host containers' exploded rootfs
// (image ctr), which has no recipe of internal/image: it is a directory
// that podman runs from, not a guest.
func buildCtrImage(c *cli.Context, _ string) (imageBuildView, error) {
	dir := hostctr.RootfsDir(image.DefaultDir())
	outcome := "unchanged"
	if c.Bool("force") {
		if err := os.RemoveAll(dir); err != nil {
			return imageBuildView{}, err
		}
	}
	if _, err := hostctr.FindRootfs(image.DefaultDir()); err != nil {
		outcome = "built"
	}
	dir, err := hostctr.BuildRootfs(c.Context, image.DefaultDir(), c.App.ErrWriter)
	if err != nil {
		return imageBuildView{}, err
	}
	img := image.Image{Name: "ctr", Dir: dir, Hash: filepath.Base(filepath.Dir(dir)), Packages: hostctr.RootfsPackages}
	if st, err := os.Stat(dir); err == nil {
		img.Built = st.ModTime()
	}
	return imageBuildView{outcome, img}, nil
}
