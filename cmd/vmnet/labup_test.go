package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vmnet/internal/accel"
	"vmnet/internal/check"
	"vmnet/internal/labrun"
)

// TestLabUpMarkdownAndAccel: --markdown writes the checks' Markdown table
// (nothing without the flag), and lab up's JSON names the accelerator at
// the top, as the GitHub Action's report reads it.
func TestLabUpMarkdownAndAccel(t *testing.T) {
	rep := &check.Report{VM: "duo", Matrix: "lab", Started: time.Now(), Duration: time.Second,
		Results: []check.Result{{Check: check.Check{ID: "ping:host->left:eth0", Source: "host", Target: "left:eth0",
			Method: check.MethodPing, Expect: "reply"}, Pass: true, Actual: "reply"}}}
	if err := writeMarkdown("", rep); err != nil {
		t.Errorf("writeMarkdown without a path: %v", err)
	}
	path := filepath.Join(t.TempDir(), "checks.md")
	if err := writeMarkdown(path, rep); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(md), "| ✅ pass | host → left:eth0 | ping |") {
		t.Errorf("--markdown file: %v\n%s", err, md)
	}
	b, err := json.Marshal(labUpView{UpResult: &labrun.UpResult{Lab: "duo"}, Accel: accel.Choice{Type: accel.QEMU, Reason: "asked"}})
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Lab   string `json:"lab"`
		Accel struct {
			Type string `json:"type"`
		} `json:"accel"`
	}
	if err := json.Unmarshal(b, &v); err != nil || v.Lab != "duo" || v.Accel.Type != "qemu" {
		t.Errorf("lab up JSON %s: want lab duo and accel.type qemu (%v)", b, err)
	}
}
