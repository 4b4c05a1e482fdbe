package vm

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"vmnet/internal/agent"
	"vmnet/internal/errs"
	"vmnet/internal/fsperm"
	"vmnet/internal/vmspec"
)

// secretPath is where the host keeps a VM's generated secret.
func secretPath(dir, name string) string { return filepath.Join(dir, "secrets", name) }

// secret returns the VM's secret name, generating it on first use. It is
// random per VM (so per lab), and lives on the host only in a 0700
// directory as a 0600 file.
func secret(dir, name string) ([]byte, error) {
	p := secretPath(dir, name)
	if b, err := os.ReadFile(p); err == nil {
		return b, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(filepath.Dir(p), 0o700); err != nil {
		return nil, err
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	// URL-safe base64: no quotes, spaces or shell metacharacters to trip over.
	s := []byte(base64.RawURLEncoding.EncodeToString(raw))
	return s, fsperm.WriteFileAtomic(p, s, 0o600)
}

// provision writes the spec's files into the guest and runs its commands,
// through the guest agent. Secrets never appear in an error or a log line.
func provision(ctx context.Context, e Env, dom Domain, dir string, spec vmspec.Spec, res *UpResult) error {
	p := spec.Provision
	for _, f := range p.Files {
		var content []byte
		var err error
		switch {
		case f.Secret != "":
			content, err = secret(dir, f.Secret)
		case f.Source != "":
			content, err = os.ReadFile(f.Source)
		default:
			content = []byte(f.Content)
		}
		if err != nil {
			return fmt.Errorf("provision %s: %w", f.Path, err)
		}
		mode := os.FileMode(f.Mode)
		if mode == 0 {
			mode = 0o644
		}
		if err := writeGuestFile(ctx, dom, f.Path, content, mode); err != nil {
			return fmt.Errorf("provision %s: %w", f.Path, err)
		}
		what := "write " + f.Path
		if f.Secret != "" {
			what += " (secret " + f.Secret + ")"
		}
		res.Changes = append(res.Changes, what)
	}
	return runCommands(ctx, e, dom, spec, p.Commands, res)
}

// runCommands runs each command in the guest in order, with /bin/sh -c,
// timing each; a non-zero exit stops there with the output's tail.
func runCommands(ctx context.Context, e Env, dom Domain, spec vmspec.Spec, cmds []string, res *UpResult) error {
	for _, c := range cmds {
		e.say("run in the guest: %s", c)
		start := time.Now()
		stdout, stderr, code, err := runWatched(ctx, e, dom, c)
		res.Phases = append(res.Phases, Phase{Name: "provision: " + c, Seconds: time.Since(start).Seconds()})
		if err != nil {
			return fmt.Errorf("provision: %s: %w", c, err)
		}
		if code != 0 {
			return errs.WithHint(fmt.Errorf("provision: %q exited %d in the guest:\n%s", c, code, tail(string(stdout)+string(stderr), 20)),
				fmt.Sprintf("look inside with 'vmnet vm exec %s -- journalctl -b --no-pager -n 100'", spec.Name))
		}
		res.Changes = append(res.Changes, "run "+c)
	}
	return nil
}

// writeGuestFile puts content at p in the guest with mode: written to a
// temporary file in the same directory, given its mode, then renamed, so the
// file never exists with other permissions or half written.
func writeGuestFile(ctx context.Context, dom Domain, p string, content []byte, mode os.FileMode) error {
	dir := path.Dir(p)
	tmp := path.Join(dir, ".vmnet-"+path.Base(p)+".tmp")
	if err := guestRun(ctx, dom, "mkdir", "-p", dir); err != nil {
		return err
	}
	// Created empty with the final mode before any byte goes in.
	if err := guestRun(ctx, dom, "install", "-m", fmt.Sprintf("%o", mode.Perm()), "/dev/null", tmp); err != nil {
		return err
	}
	if err := agent.New(dom).WriteFile(tmp, content); err != nil {
		return err
	}
	return guestRun(ctx, dom, "mv", "-f", tmp, p)
}

// guestRun runs a short command in the guest and fails on a non-zero exit.
func guestRun(ctx context.Context, dom Domain, argv ...string) error {
	stdout, stderr, code, err := agentExec(ctx, dom, argv, time.Minute)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("%s exited %d in the guest: %s", strings.Join(argv, " "), code, strings.TrimSpace(string(stdout)+string(stderr)))
	}
	return nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i := range lines {
		lines[i] = "  | " + lines[i]
	}
	return strings.Join(lines, "\n")
}
