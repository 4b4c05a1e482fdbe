package image

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"vmnet/internal/valid"
)

// The parts of a templates tree (vmnet/templates, e.g. templates/capstone)
// that a kind rootfs recipe uses; the capstone lab's contract names them.
const (
	guestTreeDir          = "guest"                  // copied into the guest's root at the same paths
	enableFile            = "enable.txt"             // systemd units to enable, one a line
	containerPackagesFile = "container-packages.txt" // the app rootfs's Debian packages, one a line
)

// TemplateError is a mistake in the templates tree an image is built from.
type TemplateError struct {
	Image   string
	Tree    string // e.g. capstone
	File    string // path inside the tree, e.g. enable.txt
	Line    int    // 0 when the whole file is meant
	Problem string
}

func (e *TemplateError) Error() string {
	where := "templates/" + e.Tree + "/" + e.File
	if e.Line > 0 {
		where += fmt.Sprintf(":%d", e.Line)
	}
	return fmt.Sprintf("image %q: %s: %s", e.Image, where, e.Problem)
}

// Hint says where the templates live.
func (e *TemplateError) Hint() string {
	return fmt.Sprintf("fix templates/%s/%s in the vmnet source tree and rebuild vmnet", e.Tree, e.File)
}

// guestFile is a file of the templates' guest tree and where it goes.
type guestFile struct {
	Dst  string // path in the guest, relative to its root
	Mode fs.FileMode
	Data []byte
}

// loadTemplates reads the recipe's templates tree from tfs into r.tmpl and
// checks the parts the build uses.
func (r *recipe) loadTemplates(tfs fs.FS) error {
	if r.Templates == "" {
		return nil
	}
	bad := func(file string, line int, problem string) error {
		return &TemplateError{Image: r.Name, Tree: r.Templates, File: file, Line: line, Problem: problem}
	}
	sub, err := fs.Sub(tfs, r.Templates)
	if err == nil {
		_, err = fs.Stat(sub, ".")
	}
	if err != nil {
		return bad("", 0, "this vmnet has no such templates tree")
	}
	r.tmpl = map[string][]byte{}
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !d.Type().IsRegular() {
			return bad(p, 0, "is neither a file nor a directory")
		}
		data, err := fs.ReadFile(sub, p)
		r.tmpl[p] = data
		return err
	})
	if err != nil {
		return fmt.Errorf("read templates/%s for image %q: %w", r.Templates, r.Name, err)
	}
	if r.AppRootfs != "" {
		pkgs, err := r.appPackages()
		if err != nil {
			return err
		}
		if len(pkgs) == 0 {
			return bad(containerPackagesFile, 0, "names no package; the app rootfs needs at least one (one Debian package a line)")
		}
	}
	if _, err := r.enableUnits(); err != nil {
		return err
	}
	claimed := map[string]string{}
	for _, f := range r.Files {
		claimed[f.Dst] = "files"
	}
	for dst := range r.Symlinks {
		claimed[dst] = "symlinks"
	}
	for _, d := range r.Dirs {
		claimed[d.Path] = "dirs"
	}
	if r.AppRootfs != "" {
		claimed[r.AppRootfs] = "app_rootfs"
	}
	for _, f := range r.guestFiles() {
		for p := f.Dst; p != "."; p = path.Dir(p) {
			if field, ok := claimed[p]; ok {
				return bad(guestTreeDir+"/"+f.Dst, 0, fmt.Sprintf("clashes with images/%s/%s (%s: /%s); "+
					"the image's own files and the templates' guest tree must not overlap", r.Name, recipeFile, field, p))
			}
		}
	}
	return nil
}

// appPackages is the templates' container-packages.txt: one Debian package a
// line, blank lines and # comments ignored.
func (r *recipe) appPackages() ([]string, error) {
	return r.tmplList(containerPackagesFile, true, valid.IsDebPackage, "is not a Debian package name")
}

// enableUnits is the recipe's enable list followed by the templates' enable.txt.
func (r *recipe) enableUnits() ([]string, error) {
	units, err := r.tmplList(enableFile, false, unitRE.MatchString, "is not a systemd unit name such as vmnet-app.target")
	if err != nil {
		return nil, err
	}
	return append(append([]string(nil), r.Enable...), units...), nil
}

// tmplList reads a list file of the templates tree: one word a line, blank
// lines and # comments ignored, each word checked by ok.
func (r *recipe) tmplList(file string, required bool, ok func(string) bool, problem string) ([]string, error) {
	data, found := r.tmpl[file]
	if !found {
		if required {
			return nil, &TemplateError{Image: r.Name, Tree: r.Templates, File: file, Problem: "is missing"}
		}
		return nil, nil
	}
	var words []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
			continue
		case len(f) > 1:
			return nil, &TemplateError{Image: r.Name, Tree: r.Templates, File: file, Line: n, Problem: fmt.Sprintf("%q: one name a line", strings.TrimSpace(line))}
		case !ok(f[0]):
			return nil, &TemplateError{Image: r.Name, Tree: r.Templates, File: file, Line: n, Problem: fmt.Sprintf("%q %s", f[0], problem)}
		}
		words = append(words, f[0])
	}
	return words, sc.Err()
}

// guestFiles lists the templates' guest tree, sorted, with the modes the
// lab's contract gives them.
func (r *recipe) guestFiles() []guestFile {
	var out []guestFile
	for p, data := range r.tmpl {
		dst, ok := strings.CutPrefix(p, guestTreeDir+"/")
		if !ok {
			continue
		}
		out = append(out, guestFile{Dst: dst, Mode: guestMode(dst), Data: data})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Dst < out[j].Dst })
	return out
}

// guestMode is a guest file's mode: 0755 for a script (*.sh) or a file in a
// bin/ or sbin/ directory, 0644 for everything else.
func guestMode(p string) fs.FileMode {
	dir := path.Base(path.Dir(p))
	if strings.HasSuffix(p, ".sh") || dir == "bin" || dir == "sbin" {
		return 0o755
	}
	return 0o644
}
