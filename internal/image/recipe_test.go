package image

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"vmnet/images"
	"vmnet/internal/debian"
)

// Every embedded recipe loads with the embedded templates, as vmnet will.
func TestEmbeddedRecipesLoad(t *testing.T) {
	names, err := recipeNames(images.FS)
	if err != nil || !cmp.Equal(names, []string{"capstone", "tiny"}) {
		t.Fatalf("recipeNames = %v, %v", names, err)
	}
	c := New(t.TempDir())
	for _, n := range names {
		if _, err := c.recipe(n); err != nil {
			t.Errorf("recipe %s: %v", n, err)
		}
	}
}

func TestRecipeHash(t *testing.T) {
	base := func() (*recipe, []debian.Package) {
		r := &recipe{Name: "tiny", files: map[string][]byte{
			"recipe.yaml":   []byte("kernel: linux-image-amd64\n"),
			"init":          []byte("#!/bin/sh\n"),
			"udhcpc.script": []byte("#!/bin/sh\n"),
		}}
		pkgs := []debian.Package{
			{Name: "linux-image-6.1.0-56-amd64", Version: "6.1.192-2", Arch: "amd64", SHA256: strings.Repeat("a", 64)},
			{Name: "busybox-static", Version: "1:1.35.0-4", Arch: "amd64", SHA256: strings.Repeat("b", 64)},
		}
		return r, pkgs
	}
	r0, p0 := base()
	h0 := recipeHash(r0, p0)
	if len(h0) != 64 {
		t.Fatalf("hash %q is not 64 hex digits", h0)
	}
	tests := []struct {
		name   string
		change func(r *recipe, p []debian.Package) []debian.Package
		same   bool
	}{
		{"nothing", func(r *recipe, p []debian.Package) []debian.Package { return p }, true},
		{"package order", func(r *recipe, p []debian.Package) []debian.Package { return []debian.Package{p[1], p[0]} }, true},
		{"init edited", func(r *recipe, p []debian.Package) []debian.Package {
			r.files["init"] = []byte("#!/bin/sh\n#\n")
			return p
		}, false},
		{"recipe.yaml edited", func(r *recipe, p []debian.Package) []debian.Package {
			r.files["recipe.yaml"] = []byte("kernel: linux-image-cloud-amd64\n")
			return p
		}, false},
		{"file added", func(r *recipe, p []debian.Package) []debian.Package { r.files["motd"] = nil; return p }, false},
		{"file renamed", func(r *recipe, p []debian.Package) []debian.Package {
			r.files["init2"] = r.files["init"]
			delete(r.files, "init")
			return p
		}, false},
		// Content moved between two files must not collide.
		{"bytes moved between files", func(r *recipe, p []debian.Package) []debian.Package {
			r.files["init"] = []byte("#!/bin/sh\n#")
			r.files["udhcpc.script"] = []byte("!/bin/sh\n")
			return p
		}, false},
		{"templates file added", func(r *recipe, p []debian.Package) []debian.Package {
			r.tmpl = map[string][]byte{"enable.txt": nil}
			return p
		}, false},
		{"new kernel version", func(r *recipe, p []debian.Package) []debian.Package { p[0].Version = "6.1.193-1"; return p }, false},
		{"new kernel abi", func(r *recipe, p []debian.Package) []debian.Package {
			p[0].Name = "linux-image-6.1.0-57-amd64"
			return p
		}, false},
		{"rebuilt .deb", func(r *recipe, p []debian.Package) []debian.Package { p[1].SHA256 = strings.Repeat("c", 64); return p }, false},
		{"package dropped", func(r *recipe, p []debian.Package) []debian.Package { return p[:1] }, false},
		{"other image name", func(r *recipe, p []debian.Package) []debian.Package { r.Name = "tiny2"; return p }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, p := base()
			p = tt.change(r, p)
			h := recipeHash(r, p)
			if (h == h0) != tt.same {
				t.Errorf("hash same = %v, want %v", h == h0, tt.same)
			}
		})
	}
}

func TestRecipeErrors(t *testing.T) {
	const good = "kernel: linux-image-amd64\ncmdline: console=ttyS0\nready: VMNET-READY\n" +
		"files:\n  - {src: init, dst: init, mode: \"0755\"}\n"
	tests := []struct {
		name, yaml, field string
	}{
		{"misspelt key", good + "modlues: [virtio_net]\n", "recipe.yaml"},
		{"no kernel", "cmdline: console=ttyS0\nready: X\n", "kernel"},
		{"no ready", "kernel: k\ncmdline: console=ttyS0\n", "ready"},
		{"no console", "kernel: k\ncmdline: quiet\nready: X\n", "cmdline"},
		{"missing src", "kernel: k\ncmdline: console=ttyS0\nready: X\nfiles:\n  - {src: nope, dst: init, mode: \"0755\"}\n", "files[0].src"},
		{"escaping dst", "kernel: k\ncmdline: console=ttyS0\nready: X\nfiles:\n  - {src: init, dst: ../init, mode: \"0755\"}\n", "files[0].dst"},
		{"absolute dst", "kernel: k\ncmdline: console=ttyS0\nready: X\nfiles:\n  - {src: init, dst: /init, mode: \"0755\"}\n", "files[0].dst"},
		{"bad mode", "kernel: k\ncmdline: console=ttyS0\nready: X\nfiles:\n  - {src: init, dst: init, mode: \"rwx\"}\n", "files[0].mode"},
		{"twice", good + "symlinks:\n  init: busybox\n", "symlinks"},
		{"module path", good + "modules: [drivers/net/virtio_net.ko]\n", "modules[0]"},
		{"package without name", good + "packages:\n  - files: [bin/busybox]\n", "packages[0].name"},
		{"unknown kind", good + "kind: iso\n", "kind"},
		{"agent without a guest agent", "kernel: k\ncmdline: console=ttyS0\nready: agent\n", "ready"},
		{"rootfs field in an initramfs", good + "suite: bookworm\n", "suite"},
		{"rootfs without suite", rootfs("suite: bookworm\n", ""), "suite"},
		{"rootfs without mirrors", rootfs("mirrors: [\"deb http://deb.debian.org/debian bookworm main\"]\n", ""), "mirrors"},
		{"rootfs bad mirror", rootfs("mirrors: [\"deb http://deb.debian.org/debian bookworm main\"]\n", "mirrors: [\"http://deb.debian.org/debian\"]\n"), "mirrors[0]"},
		{"rootfs without include", rootfs("include: [systemd]\n", ""), "include"},
		{"rootfs bad package", rootfs("include: [systemd]\n", "include: [Systemd]\n"), "include[0]"},
		{"rootfs with packages", rootfs("", "packages:\n  - name: busybox-static\n"), "packages"},
		{"rootfs with modules", rootfs("", "modules: [virtio_blk]\n"), "modules"},
		{"rootfs relative exclude", rootfs("", "exclude_paths: [usr/share/man]\n"), "exclude_paths/keep_paths[0]"},
		{"rootfs bad templates", rootfs("", "templates: ../x\n"), "templates"},
		{"app rootfs without templates", rootfs("", "app_rootfs: var/lib/app\n"), "app_rootfs"},
		{"rootfs bad dir mode", rootfs("", "dirs:\n  - {path: etc/x, mode: \"999\"}\n"), "dirs[0].mode"},
		{"rootfs dir twice", rootfs("", "dirs:\n  - {path: init, mode: \"0700\"}\n"), "dirs[0].path"},
		{"rootfs bad unit", rootfs("", "enable: [vmnet-net]\n"), "enable[0]"},
		{"rootfs bad disabled unit", rootfs("", "disable: [\"a b.service\"]\n"), "disable[0]"},
		{"rootfs setup file missing", rootfs("", "setup_files:\n  - {src: nope, dst: etc/x, mode: \"0644\"}\n"), "setup_files[0].src"},
		{"rootfs setup file bad mode", rootfs("", "setup_files:\n  - {src: init, dst: etc/x, mode: \"644x\"}\n"), "setup_files[0].mode"},
		{"setup files in an initramfs", good + "setup_files:\n  - {src: init, dst: etc/x, mode: \"0644\"}\n", "setup_files"},
		{"rootfs empty customize", rootfs("", "customize: [\"  \"]\n"), "customize[0]"},
		{"customize in an initramfs", good + "customize: [true]\n", "customize"},
		{"rootfs without headroom", rootfs("disk_headroom: 1GiB\n", ""), "disk_headroom"},
		{"rootfs headroom without unit", rootfs("disk_headroom: 1GiB\n", "disk_headroom: 1024\n"), "disk_headroom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{
				"x/recipe.yaml": {Data: []byte(tt.yaml)},
				"x/init":        {Data: []byte("#!/bin/sh\n")},
			}
			_, err := loadRecipe(fsys, "x")
			var re *RecipeError
			if !errors.As(err, &re) {
				t.Fatalf("loadRecipe = %v, want a *RecipeError", err)
			}
			if re.Field != tt.field || re.Image != "x" || re.Hint() == "" {
				t.Errorf("error %q: field %q, want %q", err, re.Field, tt.field)
			}
		})
	}
}

// rootfs is a valid kind rootfs recipe with line drop left out and add added.
func rootfs(drop, add string) string {
	y := "kind: rootfs\nkernel: linux-image-amd64\ncmdline: root=/dev/vda console=ttyS0\nready: agent\n" +
		"suite: bookworm\n" +
		"mirrors: [\"deb http://deb.debian.org/debian bookworm main\"]\n" +
		"include: [systemd]\n" +
		"disk_headroom: 1GiB\n" +
		"files:\n  - {src: init, dst: init, mode: \"0755\"}\n"
	return strings.Replace(y, drop, "", 1) + add
}

func TestRootfsRecipeLoads(t *testing.T) {
	fsys := fstest.MapFS{"x/recipe.yaml": {Data: []byte(rootfs("", ""))}, "x/init": {Data: []byte("#!/bin/sh\n")}}
	r, err := loadRecipe(fsys, "x")
	if err != nil {
		t.Fatal(err)
	}
	if r.Kind != kindRootfs || !r.agentReady() || r.readyLine() != "" || r.headroom != 1<<30 {
		t.Errorf("recipe: %+v", r)
	}
}

func TestValidateName(t *testing.T) {
	for name, ok := range map[string]bool{
		"tiny": true, "capstone": true, "a-1": true, "": false, "Tiny": false, "-x": false,
		"../x": false, ".debs": false, "a/b": false, strings.Repeat("a", 33): false,
	} {
		if err := ValidateName(name); (err == nil) != ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}
