package vm

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestFramedCommandThroughShell runs the framed line in a real sh and reads
// the result back as consoleExec does, with the tty's echo of the typed line
// and its carriage returns in front, which must not be taken for the markers.
func TestFramedCommandThroughShell(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh to run the framed command:", err)
	}
	const tag = "0123456789ab"
	begin := "VMNET-BEGIN-" + tag
	end := regexp.MustCompile(`VMNET-END-` + tag + `-(\d+)`)
	for _, tc := range []struct {
		name string
		argv []string
		out  string
		code int
	}{
		{"output and status", []string{"sh", "-c", "echo one; echo 'two words'; exit 3"}, "one\ntwo words\n", 3},
		{"no trailing newline", []string{"printf", "%s", "it's"}, "it's\n", 0},
		{"no output", []string{"true"}, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			line := framedCommand(tag, tc.argv)
			got, err := exec.Command(sh, "-c", line).Output()
			if err != nil {
				t.Fatalf("sh -c %q: %v", line, err)
			}
			echo := strings.ReplaceAll("# "+line, "\n", "\r\n")
			console := []byte(echo + strings.ReplaceAll(string(got), "\n", "\r\n"))
			if _, _, ok := framedResult(console[:len(console)-8], begin, end); ok {
				t.Fatalf("framedResult found a result before the END marker arrived in %q", console[:len(console)-8])
			}
			out, code, ok := framedResult(console, begin, end)
			if !ok || string(out) != tc.out || code != tc.code {
				t.Fatalf("framedResult(%q) = %q, %d, %v; want %q, %d, true", console, out, code, ok, tc.out, tc.code)
			}
		})
	}
}
