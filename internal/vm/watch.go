package vm

import (
	"context"
	"fmt"
	"strings"
	"time"

	"vmnet/internal/accel"
	"vmnet/internal/safe"
	"vmnet/internal/tty"
)

// A provisioning command such as vmnet-app-wait runs for tens of seconds and
// the guest agent returns its output only at the end: without these a
// person sees nothing move.
const (
	tickEvery  = time.Second      // the elapsed time is redrawn on a terminal
	lookEvery  = 10 * time.Second // the guest's containers are looked at: podman ps costs the guest ~1 s of CPU under TCG, taken from what is awaited
	plainEvery = 10 * time.Second // the least time between two status lines in a log
)

// psArgv lists the guest's containers, oldest first (the capstone's db,
// api, proxy), one "NAME\tSTATUS" line each.
var psArgv = []string{"podman", "ps", "-a", "--sort", "created", "--format", "{{.Names}}\t{{.Status}}"}

// runWatched runs the provisioning command c in the guest and, while it
// runs, shows how long it has run and the state of the guest's containers:
// "waiting for CMD: db healthy, api starting (12s)".
func runWatched(ctx context.Context, e Env, dom Domain, c string) (stdout, stderr []byte, code int, err error) {
	run := func() {
		stdout, stderr, code, err = agentExec(ctx, dom, []string{"/bin/sh", "-c", c}, accel.Timeout(e.Accel.Type, accel.ProvisionKVM))
	}
	if e.Progress == nil {
		run()
		return
	}
	look := func(ctx context.Context) string {
		out, _, code, err := agentExec(ctx, dom, psArgv, 20*time.Second)
		if err != nil || code != 0 {
			return "" // no podman, or the agent is busy: the elapsed time still moves
		}
		return containerSummary(string(out))
	}
	watch(ctx, tty.NewStatus(e.Progress, plainEvery), c, tickEvery, lookEvery, look, run)
	return
}

// watch calls run and, until it returns, shows on st what is awaited and
// for how long, asking look every lookEvery (first after one interval, so
// a short command costs nothing) for what the guest is doing.
func watch(ctx context.Context, st *tty.Status, what string, tick, lookEvery time.Duration, look func(context.Context) string, run func()) {
	ctx, cancel := context.WithCancel(ctx)
	stopped := make(chan struct{})
	safe.Go(nil, "watch "+what, func() error {
		defer close(stopped)
		start, seen, lastLook := time.Now(), "", time.Now()
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
			if time.Since(lastLook) >= lookEvery {
				// A look that fails (the agent busy, podman slow) keeps the last state seen.
				if now := look(ctx); now != "" {
					seen = now
				}
				lastLook = time.Now()
				if ctx.Err() != nil {
					return nil
				}
			}
			st.Show(waitLine(what, seen, time.Since(start)))
		}
	}, nil)
	run()
	cancel()
	<-stopped
	st.Clear()
}

// waitLine is the status shown while a command runs.
func waitLine(what, containers string, elapsed time.Duration) string {
	secs := int(elapsed.Round(time.Second) / time.Second)
	if containers == "" {
		return fmt.Sprintf("waiting for %s (%ds)", what, secs)
	}
	return fmt.Sprintf("waiting for %s: %s (%ds)", what, containers, secs)
}

// containerSummary turns podman ps lines (NAME\tSTATUS) into "db healthy,
// api starting, proxy running".
func containerSummary(ps string) string {
	var parts []string
	for _, line := range strings.Split(strings.TrimSpace(ps), "\n") {
		name, status, ok := strings.Cut(line, "\t")
		if !ok || name == "" {
			continue
		}
		parts = append(parts, name+" "+containerState(status))
	}
	return strings.Join(parts, ", ")
}

// containerState reads podman's STATUS column: "Up 5 seconds ago
// (healthy)", "Up 2 seconds ago", "Exited (1) 3 seconds ago", "Created".
func containerState(status string) string {
	status = strings.TrimSpace(status)
	if strings.HasPrefix(status, "Up") {
		// A health check's state is the last parenthesis.
		if i := strings.LastIndex(status, "("); i >= 0 && strings.HasSuffix(status, ")") {
			return status[i+1 : len(status)-1]
		}
		return "running"
	}
	if rest, ok := strings.CutPrefix(status, "Exited ("); ok {
		if code, _, ok := strings.Cut(rest, ")"); ok {
			return "exited " + code
		}
	}
	word, _, _ := strings.Cut(status, " ")
	return strings.ToLower(word)
}
