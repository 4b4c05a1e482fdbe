package sandbox

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"vmnet/internal/errs"
)

// documentedName is ValidateName's rule as its doc comment states it,
// written without its regexp: 1 to MaxNameLen characters from a-z, 0-9 and
// '-', starting and ending with a letter or digit.
func documentedName(s string) bool {
	if len(s) < 1 || len(s) > MaxNameLen {
		return false
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
	for i := 0; i < len(s); i++ {
		if !alnum(s[i]) && (s[i] != '-' || i == 0 || i == len(s)-1) {
			return false
		}
	}
	return true
}

// FuzzValidateName: a sandbox name becomes a netns, directory and file
// name; ValidateName accepts exactly the documented names and refuses the
// rest with an invalid-input error that quotes the name.
func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"lab", "lab1", "it-3fa2c1", "ht-0a1b2c", "a", "-a", "a-", "Lab", "a_b", "a.b", "../x", "a\n", "abcdefghijklmnopqrstu", "abcdefghijklmnopqrst", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateName(s)
		if want := documentedName(s); (err == nil) != want {
			t.Fatalf("ValidateName(%q) = %v; the documented rule says valid=%v", s, err, want)
		}
		if err != nil && (!errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), strconv.Quote(s))) {
			t.Fatalf("ValidateName(%q): %v: not errs.ErrInvalid, or the name is not in the message", s, err)
		}
	})
}

// escapeMount is the kernel's escaping of a path in mountinfo (seq_file's
// mangle_path with " \t\n\\"): each of those bytes as a backslash and three
// octal digits.
func escapeMount(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; strings.IndexByte(" \t\n\\", c) >= 0 {
			b.WriteByte('\\')
			b.WriteByte('0' + c>>6)
			b.WriteByte('0' + c>>3&7)
			b.WriteByte('0' + c&7)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// FuzzUnescapeMount: any path the kernel writes into mountinfo comes back
// as it was.
func FuzzUnescapeMount(f *testing.F) {
	for _, s := range []string{"/", "/run/netns/lab 1", "/ends in a space ", `/a\b`, "/tab\there", "/new\nline", `/\040`, "/é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		if got := unescapeMount(escapeMount(path)); got != path {
			t.Fatalf("unescapeMount(%q) = %q, want %q", escapeMount(path), got, path)
		}
	})
}

// FuzzMountPoints: mountPoints reads /proc/PID/mountinfo. It must not fail
// or panic on any text of sane line length, must return one mount point
// per line with the five fields the format starts with, and each is that
// line's fifth field unescaped. Seeded with this machine's own mountinfo.
func FuzzMountPoints(f *testing.F) {
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("36 35 98:0 /mnt1 /mnt\\040two rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n"))
	f.Add([]byte("1 2 0:3 / /run/vmnet-sandbox/a\\134b rw - tmpfs tmpfs rw\n\n1 2 3\n"))
	f.Add([]byte("x y z w /short"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := mountPoints(bytes.NewReader(data))
		if err != nil {
			if len(data) >= 1<<20 {
				return // a line as long as the scanner's 1 MiB buffer is refused, as it should be
			}
			t.Fatalf("mountPoints: %v", err)
		}
		var want []string
		for _, line := range strings.Split(string(data), "\n") {
			// bufio.ScanLines also drops a \r before the \n.
			if f := strings.Fields(strings.TrimSuffix(line, "\r")); len(f) >= 5 {
				want = append(want, unescapeMount(f[4]))
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%d mount points, want %d: %q", len(got), len(want), got)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("mount point %d: %q, want %q", i, got[i], want[i])
			}
		}
	})
}
