// Package images carries vmnet's guest image recipes inside the binary, so an
// installed vmnet builds the same guests as the source tree it came from.
//
// Each recipe is a directory named after its image (tiny/, capstone/)
// holding recipe.yaml and the files it names. tiny is a kernel and a busybox
// initramfs; capstone is a Debian system on an ext4 disk (kind rootfs). internal/image reads and builds them;
// the recipe's hash covers every file in the directory, so editing any of them
// makes the next build of that image a fresh one.
package images

import "embed"

// FS holds one directory per image recipe.
//
//go:embed tiny capstone
var FS embed.FS
