package check

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"vmnet/internal/lab"
)

// The guest-side probes for TCP, HTTP and name lookups from a VM or a
// container. Guests differ: the capstone's Debian has bash, curl and
// getent; tiny has only busybox (nc, wget, nslookup). Each script tries the
// first and falls back to the second, and says what happened in its exit
// status, so the check is judged by that and never by a tool's messages:
//
//	0  connected (tcp) / got an HTTP answer, its status on the last line (http)
//	3  closed: refused, or unanswered when the tool cannot tell the two apart
//	4  no answer within the time limit
//
// any other status is a failure of the probe itself.
const (
	probeClosed   = 3
	probeNoAnswer = 4
)

// tcpScript connects to $1 port $2 within $3 seconds.
const tcpScript = `a=$1 p=$2 t=$3
if command -v bash >/dev/null 2>&1; then
	timeout "$t" bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$a" "$p" 2>/dev/null
elif command -v nc >/dev/null 2>&1; then
	timeout $((t + 1)) nc -w "$t" "$a" "$p" -e true </dev/null >/dev/null 2>&1 # busybox nc has no -z
else
	exit 127
fi
case $? in 0) exit 0;; 124|143) exit 4;; *) exit 3;; esac`

// httpScript GETs $1 within $2 seconds and prints the body, a newline and
// the HTTP status.
const httpScript = `u=$1 t=$2
if command -v curl >/dev/null 2>&1; then
	curl -s --max-time "$t" -w '\n%{http_code}' "$u"
	case $? in 0) exit 0;; 7) exit 3;; 28) exit 4;; *) exit 5;; esac
fi
command -v wget >/dev/null 2>&1 || exit 127
h=$(mktemp) b=$(mktemp)
timeout "$t" wget -q -S -O "$b" "$u" 2>"$h"; r=$?
s=$(sed -n 's/^ *HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p' "$h" | tail -n 1)
cat "$b"; rm -f "$h" "$b"
if [ -n "$s" ]; then printf '\n%s' "$s"; exit 0; fi
case $r in 124|143) exit 4;; *) exit 3;; esac`

// dnsScript looks $1 up like getent hosts (exit 2: not found), with
// busybox's nslookup where there is no getent.
const dnsScript = `n=$1
if command -v getent >/dev/null 2>&1; then getent hosts "$n"; exit $?; fi
out=$(nslookup "$n" 2>/dev/null) || exit 2
printf '%s\n' "$out" | awk -v n="$n" '/^Name:/{f=1} f && /^Address/{print $NF, n}'`

// seconds rounds a time limit up to whole seconds, at least 1, for
// timeout(1) and curl.
func seconds(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}

// probeErr maps a probe script's exit status to the Host's typed errors.
func probeErr(o observation, limit time.Duration) error {
	switch o.code {
	case 0:
		return nil
	case probeClosed:
		return fmt.Errorf("%w (the guest's probe says closed)", ErrRefused)
	case probeNoAnswer:
		return fmt.Errorf("%w (nothing within %s)", ErrNoAnswer, limit)
	}
	return fmt.Errorf("probe exit %d: %s", o.code, firstLine(o.stderr+o.stdout))
}

// guestDial is a TCP connect from the check's place in the guest. ran is
// false when the probe could not run (res.Actual says why); err is then
// the connect's outcome, typed as the Host's Dial types it.
func (r *runner) guestDial(ctx context.Context, res *Result) (ran bool, err error) {
	c := res.Check
	argv := []string{"sh", "-c", tcpScript, "vmnet-tcp", c.To.String(), strconv.Itoa(int(c.Port)), seconds(r.opt.ConnectTimeout)}
	if !r.exec(ctx, c.From, argv, res) {
		return false, nil
	}
	if c.From.Kind == OnContainer && res.obs.code >= 125 {
		res.Actual = execFailed(res.obs)
		return false, nil
	}
	return true, probeErr(res.obs, r.opt.ConnectTimeout)
}

// guestGet is an HTTP GET from the check's place in the guest, typed as
// the Host's Get; ran is false when the probe could not run.
func (r *runner) guestGet(ctx context.Context, res *Result) (ran bool, status int, body []byte, err error) {
	c := res.Check
	if !r.exec(ctx, c.From, []string{"sh", "-c", httpScript, "vmnet-http", c.Address, seconds(r.opt.HTTPTimeout)}, res) {
		return false, 0, nil, nil
	}
	o := res.obs
	if c.From.Kind == OnContainer && o.code >= 125 {
		res.Actual = execFailed(o)
		return false, 0, nil, nil
	}
	if err := probeErr(o, r.opt.HTTPTimeout); err != nil {
		return true, 0, nil, err
	}
	out := strings.TrimRight(o.stdout, "\r\n")
	i := strings.LastIndexByte(out, '\n')
	status, convErr := strconv.Atoi(strings.TrimSpace(out[i+1:]))
	if convErr != nil || status < 100 {
		return true, 0, nil, errors.New("the guest's HTTP probe printed no status")
	}
	return true, status, []byte(strings.TrimSuffix(out[:max(i, 0)], "\r")), nil
}

// judgeBody decides whether an HTTP answer is a 2xx whose body matches
// the check's regular expression.
func judgeBody(status int, body []byte, pattern string) (bool, string) {
	if status < 200 || status > 299 {
		return false, fmt.Sprintf("HTTP %d: %s", status, snippet(string(body), 80))
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return false, fmt.Sprintf("body pattern %q: %v", pattern, err)
	}
	if !re.Match(body) {
		return false, fmt.Sprintf("%d but the body does not match %q: %s", status, pattern, snippet(string(body), 60))
	}
	return true, fmt.Sprintf("%d, body matches %q", status, pattern)
}

// judgeNoReply turns a ping's outcome around for WantNoReply: it passes
// only when the ping definitely went unanswered (the host's ErrNoAnswer,
// ping's exit 1 in the guest), not when the ping could not be sent.
func judgeNoReply(res *Result) {
	replied := res.Pass
	res.Pass = false
	o := res.obs
	switch {
	case replied:
		res.Actual = "reply, but the path must be blocked"
	case res.From.Kind == OnHost && errors.Is(o.err, ErrNoAnswer):
		res.Pass = true
	case res.From.Kind != OnHost && !o.execErr && o.err == nil && o.code == 1:
		res.Pass = true
	case res.From.Kind == OnContainer && res.Mode == lab.ModeNone && !o.execErr && o.err == nil && o.code == 2:
		res.Pass = true // ping's "network is unreachable": network none has no route at all
	}
}

// gotThrough reports whether a negative check failed because its probe
// got an answer (rather than because it could not be sent).
func gotThrough(r *Result) bool {
	o := r.obs
	guestOK := r.From.Kind != OnHost && !o.execErr && o.code == 0
	switch r.Want {
	case WantNoReply:
		return (r.From.Kind == OnHost && o.err == nil) || guestOK
	case WantNoHTTP:
		return o.err == nil && o.status != 0
	case WantUnresolved:
		return guestOK
	case WantClosed:
		return o.err == nil && (r.From.Kind != OnHost || r.NIC < 0)
	}
	return false
}

// notBlocked diagnoses a negative check that got through: there is no hop
// to walk, the path works where it must not. A closed port from the host
// to a VM NIC is left to portOpen, which reads the VM's ruleset.
func (d *diagnoser) notBlocked(r *Result, f *finding) bool {
	if r.Pass || r.Unknown != "" || !r.Want.Negative() || !gotThrough(r) {
		return false
	}
	cause := CauseNotBlocked
	if r.Method == MethodTCP {
		cause = CausePortOpen
	}
	if r.BlockedBy != "" {
		f.blame(r.Source+" → "+r.Target, r.BlockedBy, "%s reached %s, which %s", r.Source, r.Address, r.Expect)
		return true
	}
	f.blame(r.Source+" → "+r.Target, cause, "%s reached %s: nothing on the way blocks %s", r.Source, r.Address, r.Method)
	return true
}

// plainHTTP diagnoses an HTTP check to a service other than an app's
// published entry (the capstone's proxy): the path, then whether anything listens.
func (d *diagnoser) plainHTTP(ctx context.Context, r *Result, nic *NIC, f *finding) {
	c, o := r.Check, r.obs
	if nic != nil {
		if d.path(ctx, *nic, c, f); f.found || c.Unknown != "" {
			return
		}
	}
	switch {
	case c.Unknown != "":
	case errors.Is(o.err, ErrRefused):
		f.blame(fmt.Sprintf("%s:%d", c.Target, c.Port), CauseNotListening, "%s refused port %d (or the probe could not tell refused from dropped)", c.Target, c.Port)
	case o.err != nil:
		hook := "input"
		if c.From.Kind != OnHost {
			hook = "output"
		}
		d.firewall(ctx, hook, fmt.Sprintf("tcp port %d", c.Port), matchPort(c.Port), f)
	default:
		f.blame(c.Target, CauseServiceError, "HTTP %d, body: %s", o.status, snippet(o.body, 160))
	}
}
