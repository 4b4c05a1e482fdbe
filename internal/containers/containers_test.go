package containers

import (
	"context"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"vmnet/internal/lab"
	"vmnet/templates"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func modes(t *testing.T) lab.Lab {
	t.Helper()
	l, err := lab.LoadRef("modes")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// render writes steps one per block: what, test, then each command, every
// argument quoted, so a golden diff shows exactly what podman gets.
func render(steps []Step) string {
	var b strings.Builder
	q := func(argv []string) string {
		out := make([]string, len(argv))
		for i, a := range argv {
			out[i] = strconv.Quote(a)
		}
		return strings.Join(out, " ")
	}
	for _, s := range steps {
		b.WriteString("# " + s.What + "\n  test: " + q(s.Test) + "\n")
		for _, d := range s.Do {
			b.WriteString("  do:   " + q(d) + "\n")
		}
	}
	return b.String()
}

func TestPlanGolden(t *testing.T) {
	got := render(Plan(modes(t), "modes"))
	path := filepath.Join("testdata", "modes.plan.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("plan differs from %s (run with -update after checking):\n%s", path, got)
	}
}

// TestPlanModes: each mode gets its own podman flags, and the order is
// networks, image and pods, firewall, containers.
func TestPlanModes(t *testing.T) {
	steps := Plan(modes(t), "modes")
	run := map[string][]string{}
	var order []string
	for i, s := range steps {
		kind, _, _ := strings.Cut(s.Label, " ")
		if kind == "ipvlan" { // right after its container
			if prev := steps[i-1]; prev.Label != "container "+strings.TrimPrefix(s.Label, "ipvlan ") {
				t.Errorf("%s comes after %s, not after its container", s.Label, prev.Label)
			}
			continue
		}
		if len(order) == 0 || order[len(order)-1] != kind {
			order = append(order, kind)
		}
		if kind == "container" {
			run[strings.TrimPrefix(s.Label, "container ")] = s.Do[1]
		}
	}
	if want := []string{"network", "image", "pod", "firewall", "container"}; !slices.Equal(order, want) {
		t.Errorf("step order %v, want %v", order, want)
	}
	for name, want := range map[string][]string{
		"web": {"--network", "front", "--ip", "10.89.1.205", "-p", "8081:80"}, "plain": {"--network", "podman", "--ip", "10.88.143.238"},
		"hostnet": {"--network", "host"}, "isolated": {"--network", "none"}, "lanapi": {"--network", "vmnet-macvlan-br0", "--ip", "192.0.2.50"},
		"app": {"--pod", "duo"}, "natipv": {"--network", "none"}, "sidecar": {"--pod", "duo"},
	} {
		argv := strings.Join(run[name], " ")
		if !strings.Contains(argv, strings.Join(want, " ")) || !strings.HasSuffix(argv, "--rootfs /var/lib/vmnet/app-rootfs:O sh -c "+Command(modes(t).Nodes["modes"].Containers[name])) {
			t.Errorf("%s: podman %s\nwant %v and the rootfs at the end", name, argv, want)
		}
		if name == "app" && strings.Contains(argv, "-p ") {
			t.Errorf("a pod member publishes itself (podman refuses): %s", argv)
		}
	}
	for _, s := range steps {
		if s.Label == "container web" && strings.Join(s.Do[len(s.Do)-1][:3], " ") != "podman exec web" {
			t.Errorf("web (listen 80) is not waited for after its start: %v", s.Do)
		}
	}
	if p := Plan(lab.Lab{Nodes: map[string]lab.Node{"x": {}}}, "x"); p != nil {
		t.Errorf("a node without containers has steps: %v", p)
	}
}

// fakeGuest answers tests from a set of done steps and records commands.
type fakeGuest struct {
	done map[string]bool // test argv joined → passes
	ran  [][]string
	fail string // a Do argv (joined) that exits 1
}

func (g *fakeGuest) Exec(_ context.Context, argv []string, _ time.Duration) (string, string, int, error) {
	key := strings.Join(argv, " ")
	if g.done[key] {
		return "", "", 0, nil
	}
	if key == g.fail {
		return "", "Error: boom", 1, nil
	}
	g.ran = append(g.ran, argv)
	return "", "", 1, nil // tests fail, commands are recorded
}

// TestEnsureIdempotent: steps whose test passes are not done; a second
// run over a guest where everything is in place changes nothing; a failed
// command stops with the step, the command and podman's words.
func TestEnsureIdempotent(t *testing.T) {
	steps := Plan(modes(t), "modes")
	done := map[string]bool{}
	for _, s := range steps {
		done[strings.Join(s.Test, " ")] = true
	}
	g := &fakeGuest{done: done}
	changed, err := Ensure(context.Background(), g, steps)
	if err != nil || len(changed) != 0 || len(g.ran) != 0 {
		t.Fatalf("all in place: changed %v, ran %v, err %v", changed, g.ran, err)
	}
	g = &fakeGuest{done: map[string]bool{}}
	g.fail = strings.Join(steps[len(steps)-1].Do[1], " ") // the last container's podman run
	g.done[g.fail] = false
	changed, err = Ensure(context.Background(), okDo{g}, steps)
	var se *StepError
	if !errors.As(err, &se) || se.Step.Label != steps[len(steps)-1].Label || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("err %v, want the last step's failure with podman's words", err)
	}
	if len(changed) != len(steps)-1 {
		t.Errorf("changed %d steps before the failure, want %d", len(changed), len(steps)-1)
	}
}

// okDo makes every command but the failing one exit 0 (tests still fail).
type okDo struct{ g *fakeGuest }

func (o okDo) Exec(ctx context.Context, argv []string, d time.Duration) (string, string, int, error) {
	out, errOut, code, err := o.g.Exec(ctx, argv, d)
	if code == 1 && errOut == "" && !isTest(argv) {
		code = 0
	}
	return out, errOut, code, err
}

func isTest(argv []string) bool {
	return (len(argv) > 3 && argv[0] == "sh" && (argv[3] == "vmnet-test" || argv[3] == "vmnet-fw")) || slices.Contains(argv, "exists")
}

func capmac(t *testing.T) lab.Lab {
	t.Helper()
	l, err := lab.LoadRef("capstone-macvlan")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestPlanAppAttachment: the capstone-macvlan lab's api entry starts no
// container: it makes the macvlan network on the guest's br0 NIC, then
// attaches the app's running api with its address and gives its unit the
// drop-in that attaches it again after every start.
func TestPlanAppAttachment(t *testing.T) {
	steps := Plan(capmac(t), "capstone")
	var labels []string
	for _, s := range steps {
		labels = append(labels, s.Label)
		for _, d := range s.Do {
			if slices.Contains(d, "run") && d[0] == "podman" {
				t.Errorf("%s runs a container: %v", s.Label, d)
			}
		}
	}
	if want := []string{"network vmnet-macvlan-br0", "attachment api"}; !slices.Equal(labels, want) {
		t.Fatalf("steps %v, want %v", labels, want)
	}
	if got := strings.Join(steps[0].Do[1], " "); !strings.Contains(got, "-d macvlan -o parent=eth1 --subnet 192.0.2.0/24 --gateway 192.0.2.1") {
		t.Errorf("macvlan network: %s", got)
	}
	at := steps[1]
	if got := strings.Join(at.Do[1], " "); !strings.HasSuffix(got, "vmnet-attach vmnet-macvlan-br0 api 192.0.2.60 "+AttachMAC(capmac(t), "capstone", "api")) {
		t.Errorf("attach: %s", got)
	}
	dropIn := at.Do[0][len(at.Do[0])-1]
	if at.Do[0][len(at.Do[0])-2] != "/etc/systemd/system/vmnet-app-api.service.d/vmnet-macvlan.conf" ||
		!strings.Contains(dropIn, "\n[Service]\nExecStartPost=/usr/bin/podman network connect --ip 192.0.2.60 --mac-address "+AttachMAC(capmac(t), "capstone", "api")+" vmnet-macvlan-br0 api") {
		t.Errorf("drop-in %v", at.Do[0][len(at.Do[0])-2:])
	}
	golden := render(steps)
	path := filepath.Join("testdata", "capstone-macvlan.plan.golden")
	if *update {
		if err := os.WriteFile(path, []byte(golden), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if want, err := os.ReadFile(path); err != nil || string(want) != golden {
		t.Errorf("plan differs from %s (run with -update after checking; %v):\n%s", path, err, golden)
	}
}

// TestAttachMAC: the attachment's MAC is a locally administered unicast
// one, the same for the same lab, node and container, another for another
// lab.
func TestAttachMAC(t *testing.T) {
	l := capmac(t)
	m := AttachMAC(l, "capstone", "api")
	if len(m) != 17 || !strings.HasPrefix(m, "02:") || m != AttachMAC(l, "capstone", "api") {
		t.Errorf("MAC %q: want 02:xx:xx:xx:xx:xx, stable", m)
	}
	other := l
	other.Name = "other"
	if AttachMAC(other, "capstone", "api") == m {
		t.Errorf("two labs' api share the MAC %s", m)
	}
}

// TestAttachStepShell runs the attach step's drop-in command and its test
// with sh, a stand-in podman and systemctl, and the drop-in in a temporary
// directory: the test passes once the drop-in is written and podman
// reports the address, and fails when either differs.
func TestAttachStepShell(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	bin, dir := t.TempDir(), t.TempDir()
	addr := filepath.Join(dir, "addr")
	stub := "#!/bin/sh\ncat " + strconv.Quote(addr) + " 2>/dev/null || true\n"
	for _, name := range []string{"podman", "systemctl"} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(stub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	step := Plan(capmac(t), "capstone")[1]
	file := filepath.Join(dir, "vmnet-app-api.service.d", "vmnet-macvlan.conf")
	swap := func(argv []string) *exec.Cmd {
		argv = slices.Clone(argv)
		for i, a := range argv {
			if a == AttachDropIn("api") {
				argv[i] = file
			}
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), "PATH="+bin+":/usr/bin:/bin")
		return cmd
	}
	if err := swap(step.Test).Run(); err == nil {
		t.Fatal("the test passes before the step is done")
	}
	if out, err := swap(step.Do[0]).CombinedOutput(); err != nil {
		t.Fatalf("drop-in: %v: %s", err, out)
	}
	if err := swap(step.Test).Run(); err == nil {
		t.Error("the test passes while podman reports no macvlan address")
	}
	os.WriteFile(addr, []byte("192.0.2.60 02:00:00:00:00:01\n"), 0o644)
	if err := swap(step.Test).Run(); err == nil {
		t.Error("the test passes with another MAC")
	}
	os.WriteFile(addr, []byte("192.0.2.60 "+AttachMAC(capmac(t), "capstone", "api")+"\n"), 0o644)
	if err := swap(step.Test).Run(); err != nil {
		t.Errorf("the test fails with the drop-in written and the address attached: %v", err)
	}
	os.WriteFile(file, []byte("[Service]\n"), 0o644)
	if err := swap(step.Test).Run(); err == nil {
		t.Error("the test passes with another drop-in")
	}
}

// withContainer is the modes lab with its container name's entry set to
// entry (YAML flow mapping), and more such name, entry pairs, parsed.
func withContainer(t *testing.T, name, entry string, more ...string) lab.Lab {
	t.Helper()
	set := map[string]string{name: entry}
	for i := 0; i+1 < len(more); i += 2 {
		set[more[i]] = more[i+1]
	}
	b, err := templates.Lab("modes")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for i, line := range lines {
		if k, _, _ := strings.Cut(strings.TrimSpace(line), ":"); set[k] != "" && strings.HasPrefix(line, "      ") {
			lines[i] = "      " + k + ": " + set[k]
		}
	}
	l, err := lab.Parse([]byte(strings.Join(lines, "\n")), "modes.lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// stepOf is the plan's step labelled label.
func stepOf(t *testing.T, l lab.Lab, label string) Step {
	t.Helper()
	for _, s := range Plan(l, "modes") {
		if s.Label == label {
			return s
		}
	}
	t.Fatalf("no step %q", label)
	return Step{}
}

// TestPolicyArgs: restart and health reach podman run before the rootfs,
// with the capstone's health timing where the lab leaves it out; the
// default (no) adds no flag, so labs without restart keep their hash;
// lab up waits for a health check to pass; a changed policy changes the
// hash, so a second up replaces the container.
func TestPolicyArgs(t *testing.T) {
	plain := stepOf(t, modes(t), "container plain")
	for _, tc := range []struct{ entry, want string }{
		{"{network: podman, listen: 80, restart: on-failure}", "--restart on-failure --rootfs"},
		{"{network: podman, listen: 80, restart: \"on-failure:3\"}", "--restart on-failure:3 --rootfs"},
		{"{network: podman, listen: 80, restart: always, health: {cmd: \"test -e /proc/1\"}}",
			"--restart always --health-cmd test -e /proc/1 --health-interval 30s --health-timeout 10s --health-retries 3 --health-start-period 0s --rootfs"},
		{"{network: podman, listen: 80, health: {cmd: \"true\", interval: 5s, timeout: 2s, retries: 1, start-period: 20s}}",
			"--health-cmd true --health-interval 5s --health-timeout 2s --health-retries 1 --health-start-period 20s --rootfs"},
	} {
		s := stepOf(t, withContainer(t, "plain", tc.entry), "container plain")
		if argv := strings.Join(s.Do[1], " "); !strings.Contains(argv, tc.want) {
			t.Errorf("%s: podman %s\nwant a part %q", tc.entry, argv, tc.want)
		}
		if slices.Equal(s.Test, plain.Test) {
			t.Errorf("%s: the hash is the one without it: a second up would keep the old container", tc.entry)
		}
		last := strings.Join(s.Do[len(s.Do)-1], " ")
		if health := strings.Contains(tc.entry, "health"); health != strings.Contains(last, "podman healthcheck run") {
			t.Errorf("%s: health %v, but the last command is %s", tc.entry, health, last)
		}
	}
	no := stepOf(t, withContainer(t, "plain", "{network: podman, listen: 80, restart: \"no\"}"), "container plain")
	if !slices.Equal(no.Test, plain.Test) || strings.Contains(strings.Join(no.Do[1], " "), "--restart") {
		t.Errorf("restart: no changes the container: %v", no.Do[1])
	}
}

// TestWaitHealthyShell: the health wait passes once podman's health check
// does and fails, saying how to run it, when it never does (a fake podman
// on PATH that passes from its third call or never).
func TestWaitHealthyShell(t *testing.T) {
	for _, tc := range []struct {
		passFrom int
		code     int
	}{{3, 0}, {1000, 1}} {
		dir := t.TempDir()
		fake := "#!/bin/sh\nn=$(cat " + dir + "/n 2>/dev/null || echo 0); n=$((n+1)); echo $n >" + dir + "/n\n[ \"$1 $2 $3\" = \"healthcheck run web\" ] && [ $n -ge " + strconv.Itoa(tc.passFrom) + " ]\n"
		if err := os.WriteFile(filepath.Join(dir, "podman"), []byte(fake), 0o755); err != nil {
			t.Fatal(err)
		}
		argv := waitHealthy("web")
		argv[len(argv)-1] = "4" // seconds, not ListenWait
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code != tc.code || (code != 0 && !strings.Contains(string(out), "podman healthcheck run web")) {
			t.Errorf("passing from call %d: exit %d, want %d: %s", tc.passFrom, code, tc.code, out)
		}
	}
}

// TestIPvlanL3Step: an l3 container's link is made in mode l3 with a
// default route out of eth0 (no ARP, no gateway to resolve); its l2
// twin's via the host's address; the mode is in the container's hash, so
// changing it replaces the container and its link.
func TestIPvlanL3Step(t *testing.T) {
	l2 := modes(t)
	l3 := withContainer(t, "natipv", "{network: ipvlan, mode: l3, parent: br0, address: 192.0.2.60/24, listen: 80}",
		"lanapi", "{network: podman}") // br0 cannot carry macvlan and ipvlan
	argv := stepOf(t, l3, "ipvlan natipv").Do[0]
	if got := strings.Join(argv[len(argv)-3:], " "); got != "l3 dev eth0" {
		t.Errorf("l3 link: mode and route %q, want \"l3 dev eth0\"", got)
	}
	if !strings.Contains(argv[2], `type ipvlan mode "$5"`) || !strings.Contains(argv[2], `ip route add default "$6" "$7"`) {
		t.Errorf("the script does not use the mode and route arguments: %s", argv[2])
	}
	argv = stepOf(t, l2, "ipvlan natipv").Do[0]
	if got := strings.Join(argv[len(argv)-3:], " "); got != "l2 via 198.51.100.1" {
		t.Errorf("l2 link: mode and route %q, want \"l2 via 198.51.100.1\"", got)
	}
	if !strings.Contains(strings.Join(RunArgs(l3, "modes", "natipv"), " "), "vmnet.ipvlan-mode=l3") {
		t.Errorf("the l3 mode is not in the container's hash: %v", RunArgs(l3, "modes", "natipv"))
	}
}

// TestRegistryImage: a container with image runs it instead of the
// rootfs (its own command, or command with /bin/sh -c), after one pull per
// reference (TLS verification off when one of its containers is
// insecure, before the pods and containers), and is waited for from the
// guest's bash in its namespace (the image may have none).
func TestRegistryImage(t *testing.T) {
	l := withContainer(t, "plain", "{network: podman, listen: 80, image: \"192.0.2.1:5000/vmnet/busybox:1\", insecure: true, command: \"exec busybox httpd -f -p 80\"}",
		"isolated", "{network: none, image: \"192.0.2.1:5000/vmnet/busybox:1\"}")
	steps := Plan(l, "modes")
	pulls := 0
	for i, s := range steps {
		if strings.HasPrefix(s.Label, "image 192.0.2.1") {
			pulls++
			if got := strings.Join(s.Do[0], " "); got != "podman pull -q --tls-verify=false 192.0.2.1:5000/vmnet/busybox:1" || strings.Join(s.Test, " ") != "podman image exists 192.0.2.1:5000/vmnet/busybox:1" {
				t.Errorf("pull step: test %v do %s", s.Test, got)
			}
			if first := slices.IndexFunc(steps, func(s Step) bool {
				return strings.HasPrefix(s.Label, "pod ") || strings.HasPrefix(s.Label, "container ")
			}); first < i {
				t.Errorf("the pull comes after %s", steps[first].Label)
			}
		}
	}
	if pulls != 1 {
		t.Errorf("%d pull steps for one reference, want 1", pulls)
	}
	plain := stepOf(t, l, "container plain")
	if argv := strings.Join(plain.Do[1], " "); !strings.HasSuffix(argv, "--entrypoint /bin/sh 192.0.2.1:5000/vmnet/busybox:1 -c exec busybox httpd -f -p 80") || strings.Contains(argv, "--rootfs") {
		t.Errorf("plain: podman %s", argv)
	}
	if wait := strings.Join(plain.Do[2], " "); !strings.Contains(wait, "nsenter -t \"$pid\" -n bash") {
		t.Errorf("plain is not waited for from outside: %s", wait)
	}
	if argv := RunArgs(l, "modes", "isolated"); argv[len(argv)-1] != "192.0.2.1:5000/vmnet/busybox:1" {
		t.Errorf("isolated without command: podman %v, want the image's own command", argv)
	}
	secure := withContainer(t, "isolated", "{network: none, image: nginx}")
	if s := stepOf(t, secure, "image nginx"); strings.Join(s.Do[0], " ") != "podman pull -q nginx" {
		t.Errorf("a verified pull: %v", s.Do[0])
	}
}

// TestBootStep: a container with restart: always makes lab up enable
// podman-restart.service (the capstone image disables it) before the
// containers start; on-failure, unless-stopped and the modes lab's
// containers (no restart) add no step.
func TestBootStep(t *testing.T) {
	for _, tc := range []struct {
		entry string
		want  bool
	}{{"{network: podman, listen: 80, restart: always}", true}, {"{network: podman, listen: 80, restart: on-failure}", false},
		{"{network: podman, listen: 80, restart: unless-stopped}", false}, {"{network: podman, listen: 80}", false}} {
		steps := Plan(withContainer(t, "plain", tc.entry), "modes")
		i := slices.IndexFunc(steps, func(s Step) bool { return s.Label == "unit "+RestartUnit })
		if (i >= 0) != tc.want {
			t.Errorf("%s: a step enabling %s: %v, want %v", tc.entry, RestartUnit, i >= 0, tc.want)
			continue
		}
		if i < 0 {
			continue
		}
		s := steps[i]
		if strings.Join(s.Test, " ") != "systemctl is-enabled --quiet "+RestartUnit || strings.Join(s.Do[0], " ") != "systemctl enable --quiet "+RestartUnit || !strings.Contains(s.What, "plain") {
			t.Errorf("the step: %+v", s)
		}
		if c := slices.IndexFunc(steps, func(s Step) bool { return strings.HasPrefix(s.Label, "container ") }); c < i {
			t.Errorf("the unit is enabled at step %d, after the first container's (%d)", i, c)
		}
	}
}

// TestPlanKeepsRunningContainers: containers and a pod added to the modes
// lab, sorting before the others, leave every existing container's and
// pod's step as it was (its test, with its settings' hash, and its
// commands): a second lab up keeps them running and starts the new ones,
// whose addresses are not the running ones'.
func TestPlanKeepsRunningContainers(t *testing.T) {
	b, err := templates.Lab("modes")
	if err != nil {
		t.Fatal(err)
	}
	added := strings.Replace(string(b), "    containers:\n", "    containers:\n      aaa: {network: podman, listen: 80}\n"+
		"      aab: {network: front, listen: 80}\n      aac: {pod: apod, listen: 8001}\n", 1)
	more, err := lab.Parse([]byte(added), "modes.lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	after := map[string]Step{}
	for _, s := range Plan(more, "modes") {
		after[s.Label] = s
	}
	for _, s := range Plan(modes(t), "modes") {
		a, ok := after[s.Label]
		if !ok || !slices.Equal(a.Test, s.Test) || !slices.EqualFunc(a.Do, s.Do, slices.Equal[[]string]) {
			t.Errorf("%s changes once aaa, aab and pod apod are added:\n  %q\nwas\n  %q", s.Label, a.Do, s.Do)
		}
	}
	for _, label := range []string{"container aaa", "container aab", "container aac", "pod apod"} {
		if _, ok := after[label]; !ok {
			t.Errorf("no step %s", label)
		}
	}
}
