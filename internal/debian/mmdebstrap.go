package debian

import "strings"

// BootstrapSpec is one mmdebstrap run.
type BootstrapSpec struct {
	Suite    string
	Target   string // an empty or missing directory
	Mirrors  []string
	Include  []string
	Exclude  []string // dpkg path-exclude globs
	Keep     []string // dpkg path-include globs
	Archives string   // .deb files kept between builds
	Seed     string   // a tree copied into Target before any package is installed, or ""
}

// MmdebstrapArgs is the mmdebstrap command line for s:
//
//	mmdebstrap --variant=minbase --mode=root --format=directory --include=A,B,...
//	  --dpkgopt=force-unsafe-io --dpkgopt=path-exclude=... --dpkgopt=path-include=...
//	  --skip=essential/unlink --setup-hook=<link in the kept .debs>
//	  [--setup-hook=<copy Seed in>] --customize-hook=<link the new .debs out> SUITE TARGET MIRROR...
//
// minbase is Debian's required packages plus apt; Recommends are not
// installed (mmdebstrap's default). force-unsafe-io: a half-written image is
// thrown away anyway, so dpkg need not fsync each file. The .debs are
// hard-linked in and out of Archives (the same file system as the build),
// which costs nothing; essential/unlink is skipped so the essential packages
// downloaded are still there for the customize hook to keep. Seed's files
// (modes kept) are in the tree before dpkg installs anything, so packages
// read them as they install (initramfs-tools' conf.d when the kernel's
// postinst builds the initrd).
func MmdebstrapArgs(s BootstrapSpec) []string {
	args := []string{"--variant=minbase", "--mode=root", "--format=directory",
		"--include=" + strings.Join(s.Include, ","),
		"--aptopt=Acquire::Retries \"3\"",
		"--dpkgopt=force-unsafe-io"}
	for _, p := range s.Exclude {
		args = append(args, "--dpkgopt=path-exclude="+p)
	}
	for _, p := range s.Keep {
		args = append(args, "--dpkgopt=path-include="+p)
	}
	a := shellQuote(s.Archives)
	args = append(args, "--skip=essential/unlink",
		`--setup-hook=mkdir -p "$1/var/cache/apt/archives" && `+
			`for f in `+a+`/*.deb; do [ -e "$f" ] || continue; ln -f "$f" "$1/var/cache/apt/archives/" 2>/dev/null || cp "$f" "$1/var/cache/apt/archives/"; done`)
	if s.Seed != "" {
		args = append(args, `--setup-hook=cp -a `+shellQuote(s.Seed)+`/. "$1/"`)
	}
	args = append(args,
		`--customize-hook=mkdir -p `+a+` && `+
			`for f in "$1"/var/cache/apt/archives/*.deb; do [ -e "$f" ] || continue; t=`+a+`/"${f##*/}"; [ -e "$t" ] || ln "$f" "$t" 2>/dev/null || cp "$f" "$t"; done`,
		s.Suite, s.Target)
	return append(args, s.Mirrors...)
}

// shellQuote quotes s for sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
