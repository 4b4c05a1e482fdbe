package image

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

func TestCapstoneTemplates(t *testing.T) {
	r, err := loadRecipe(recipesCopy(t), "capstone")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.loadTemplates(capstoneTemplates()); err != nil {
		t.Fatal(err)
	}
	pkgs, err := r.appPackages()
	if err != nil || !cmp.Equal(pkgs, []string{"postgresql-15", "python3-flask", "nginx-light"}) {
		t.Errorf("appPackages = %v, %v", pkgs, err)
	}
	units, err := r.enableUnits()
	if err != nil || units[len(units)-1] != "vmnet-app.target" || units[0] != "vmnet-net.service" {
		t.Errorf("enableUnits = %v, %v", units, err)
	}
	var got []string
	for _, f := range r.guestFiles() {
		got = append(got, f.Dst+" "+f.Mode.String())
	}
	want := []string{
		"etc/nftables.conf -rw-r--r--",
		"etc/systemd/system/vmnet-app.target -rw-r--r--",
		"usr/local/lib/vmnet/app/api.py -rw-r--r--",
		"usr/local/lib/vmnet/app/entrypoint.sh -rwxr-xr-x",
		"usr/local/sbin/vmnet-app-wait -rwxr-xr-x",
	}
	if !cmp.Equal(got, want) {
		t.Errorf("guestFiles:\n%s", cmp.Diff(want, got))
	}
}

func TestGuestMode(t *testing.T) {
	for p, want := range map[string]fs.FileMode{
		"usr/local/sbin/vmnet-app-wait":   0o755,
		"usr/local/bin/x":                 0o755,
		"usr/lib/x/run.sh":                0o755,
		"etc/nftables.conf":               0o644,
		"etc/bin.conf":                    0o644,
		"usr/local/sbin/x/y":              0o644, // in a directory below sbin/, not in sbin/
		"etc/systemd/system/x.service":    0o644,
		"usr/local/lib/vmnet/app/api.py":  0o644,
		"usr/local/lib/vmnet/app/init.sh": 0o755,
	} {
		if got := guestMode(p); got != want {
			t.Errorf("guestMode(%q) = %o, want %o", p, got, want)
		}
	}
}

func TestTemplateErrors(t *testing.T) {
	tests := []struct {
		name       string
		change     func(fstest.MapFS)
		file       string
		line       int
		problemHas string
	}{
		{"no tree", func(m fstest.MapFS) {
			for k := range m {
				delete(m, k)
			}
			m["other/x"] = &fstest.MapFile{}
		}, "", 0, "no such templates tree"},
		{"no package list", func(m fstest.MapFS) { delete(m, "capstone/container-packages.txt") }, containerPackagesFile, 0, "is missing"},
		{"empty package list", func(m fstest.MapFS) {
			m["capstone/container-packages.txt"] = &fstest.MapFile{Data: []byte("# nothing\n\n")}
		}, containerPackagesFile, 0, "names no package"},
		{"bad package", func(m fstest.MapFS) {
			m["capstone/container-packages.txt"] = &fstest.MapFile{Data: []byte("curl\nPython3\n")}
		}, containerPackagesFile, 2, "is not a Debian package name"},
		{"two packages on a line", func(m fstest.MapFS) {
			m["capstone/container-packages.txt"] = &fstest.MapFile{Data: []byte("curl wget\n")}
		}, containerPackagesFile, 1, "one name a line"},
		{"bad unit", func(m fstest.MapFS) {
			m["capstone/enable.txt"] = &fstest.MapFile{Data: []byte("# x\nvmnet-app\n")}
		}, enableFile, 2, "is not a systemd unit name"},
		{"guest file over an image file", func(m fstest.MapFS) {
			m["capstone/guest/etc/fstab"] = &fstest.MapFile{Data: []byte("x\n")}
		}, "guest/etc/fstab", 0, "clashes with images/capstone/recipe.yaml (files: /etc/fstab)"},
		{"guest file inside the app rootfs", func(m fstest.MapFS) {
			m["capstone/guest/var/lib/vmnet/app-rootfs/etc/x"] = &fstest.MapFile{Data: []byte("x\n")}
		}, "guest/var/lib/vmnet/app-rootfs/etc/x", 0, "app_rootfs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := loadRecipe(recipesCopy(t), "capstone")
			if err != nil {
				t.Fatal(err)
			}
			m := capstoneTemplates()
			tt.change(m)
			err = r.loadTemplates(m)
			var te *TemplateError
			if !errors.As(err, &te) {
				t.Fatalf("loadTemplates = %v, want a *TemplateError", err)
			}
			if te.File != tt.file || te.Line != tt.line || !strings.Contains(te.Problem, tt.problemHas) || te.Hint() == "" {
				t.Errorf("error %q: file %q line %d, want %q line %d with %q", err, te.File, te.Line, tt.file, tt.line, tt.problemHas)
			}
		})
	}
}
