package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"vmnet/internal/check"
	"vmnet/internal/report/junitxsd"
)

// TestCheckJUnitValidates: the file --junit FILE writes (the command
// line's path, lab check's and vm up's) meets the Jenkins JUnit schema and
// vmnet's strict one, for a failing check with evidence and a passing one.
func TestCheckJUnitValidates(t *testing.T) {
	rep := &check.Report{VM: "office", Matrix: check.MatrixLab, Started: time.Date(2026, 11, 26, 5, 0, 0, 0, time.UTC), Duration: 1500 * time.Millisecond,
		Accel: "qemu", Results: []check.Result{
			{Check: check.Check{ID: "ping:host->office:eth0", Source: "host", Target: "office:eth0", Method: check.MethodPing, Expect: "reply"},
				Pass: false, Actual: "no reply <&>", Hop: "tap", Cause: check.CauseTapNotAttached, Evidence: []string{"vnet0 is not a port of br0"}, Duration: time.Second},
			{Check: check.Check{ID: "ping:host->office:eth1", Source: "host", Target: "office:eth1", Method: check.MethodPing, Expect: "reply"},
				Pass: true, Actual: "reply", Duration: 2 * time.Millisecond},
		}}
	path := filepath.Join(t.TempDir(), "office.xml")
	app := &cli.App{Name: "vmnet", Writer: &bytes.Buffer{}, Commands: []*cli.Command{{Name: "check"}}}
	set := flag.NewFlagSet("vmnet", flag.ContinueOnError)
	set.String("output", "table", "")
	set.String("junit", "", "")
	if err := set.Parse([]string{"--junit", path}); err != nil {
		t.Fatal(err)
	}
	c := cli.NewContext(app, set, nil)
	c.Command = app.Commands[0]
	if err := checkOutput(c, rep, "table"); err == nil {
		t.Fatal("checkOutput: a failing report returned nil")
	}
	msg, err := junitxsd.ValidateAll(path)
	if errors.Is(err, junitxsd.ErrNoXmllint) && os.Getenv("CI") != "true" {
		t.Skip(err)
	}
	if err != nil || msg != "" {
		b, _ := os.ReadFile(path)
		t.Fatalf("--junit %s does not validate: %v\n%s\n%s", path, err, msg, b)
	}
}
