package containers

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// StepTimeout bounds one guest command: a podman run under TCG takes a few
// seconds, a pod's first start more.
const StepTimeout = 300 * time.Second

// Guest runs a command in a node's guest (vm.Exec through the guest agent).
type Guest interface {
	Exec(ctx context.Context, argv []string, timeout time.Duration) (stdout, stderr string, code int, err error)
}

// StepError says which step failed, with the command and its output.
type StepError struct {
	Step Step
	Argv []string
	Code int
	Out  string
	Err  error
}

func (e *StepError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Step.What, strings.Join(e.Argv, " "), e.Err)
	}
	return fmt.Sprintf("%s: %s exited %d: %s", e.Step.What, strings.Join(e.Argv, " "), e.Code, firstLines(e.Out, 3))
}

func (e *StepError) Unwrap() error { return e.Err }

// Hint says where to look.
func (e *StepError) Hint() string {
	return "'vmnet vm exec NODE -- podman ps -a' and 'podman logs NAME' in the guest show what podman did"
}

// Ensure runs the steps in order: a step whose test passes is left alone,
// the others are done. It returns what it changed, one line per step done;
// none when everything was in place already.
func Ensure(ctx context.Context, g Guest, steps []Step) ([]string, error) {
	var changed []string
	for _, s := range steps {
		if _, _, code, err := g.Exec(ctx, s.Test, StepTimeout); err != nil {
			return changed, &StepError{Step: s, Argv: s.Test, Err: err}
		} else if code == 0 {
			continue
		}
		for _, argv := range s.Do {
			stdout, stderr, code, err := g.Exec(ctx, argv, StepTimeout)
			if err != nil || code != 0 {
				return changed, &StepError{Step: s, Argv: argv, Code: code, Out: stderr + stdout, Err: err}
			}
		}
		changed = append(changed, s.What)
	}
	return changed, nil
}

// firstLines is the first n non-empty lines of s, joined.
func firstLines(s string, n int) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" && len(out) < n {
			out = append(out, l)
		}
	}
	return strings.Join(out, " / ")
}
