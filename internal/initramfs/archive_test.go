package initramfs

import (
	"bytes"
	"testing"
)

func TestCpioRoundTrip(t *testing.T) {
	f := New()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(f.File("etc/vmnet/modules", 0o644, []byte("/lib/x.ko\n")))
	must(f.File("init", 0o755, []byte("#!/bin/sh\n")))
	must(f.Symlink("bin/sh", "busybox"))
	must(f.CharDev("dev/console", 0o600, 5, 1))
	must(f.Dir("tmp", 0o1777))
	must(f.File("empty", 0o644, nil))
	var a, b bytes.Buffer
	must(f.Write(&a))
	must(f.Write(&b))
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two writes of the same archive differ")
	}
	if a.Len()%4 != 0 {
		t.Errorf("archive length %d is not a multiple of 4", a.Len())
	}
	files, err := parseCpio(a.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	want := "d 0755 bin/\n" +
		"l 0777 bin/sh -> busybox\n" +
		"d 0755 dev/\n" +
		"c 0600 dev/console 5,1\n" +
		"f 0644 empty\n" +
		"d 0755 etc/\n" +
		"d 0755 etc/vmnet/\n" +
		"f 0644 etc/vmnet/modules\n" +
		"f 0755 init\n" +
		"d 1777 tmp/\n"
	if got := listing(files); got != want {
		t.Errorf("listing:\n%s\nwant:\n%s", got, want)
	}
	// Parents come before their children in the archive itself.
	seen := map[string]bool{}
	for _, f := range files {
		if i := bytes.LastIndexByte([]byte(f.Name), '/'); i > 0 && !seen[f.Name[:i]] {
			t.Errorf("%s comes before its directory", f.Name)
		}
		seen[f.Name] = true
	}
}

func TestCpioRefuses(t *testing.T) {
	f := New()
	if err := f.File("init", 0o755, nil); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"twice":          f.File("init", 0o644, nil),
		"under a file":   f.File("init/x", 0o644, nil),
		"absolute":       f.File("/etc/passwd", 0o644, nil),
		"escaping":       f.File("../x", 0o644, nil),
		"not clean":      f.File("a//b", 0o644, nil),
		"dir over file":  f.Dir("init", 0o755),
		"link over file": f.Symlink("init", "x"),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A directory may be named again (its mode is then the last one given).
	if err := f.Dir("tmp", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := f.Dir("tmp", 0o1777); err != nil {
		t.Errorf("a directory named twice: %v", err)
	}
}
