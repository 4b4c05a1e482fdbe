package virt

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/vishvananda/netns"
)

// procSocket matches the URIs testutil.SandboxURI returns, which reach a libvirtd
// through its /proc/PID/root.
var procSocket = regexp.MustCompile(`^/proc/([0-9]+)/root/`)

// pidFiles are where a local libvirtd (or the modular virtqemud) notes its
// pid: a vmnet sandbox starts it with -p /run/libvirt/libvirtd.pid; the
// daemons' own default is /run/NAME.pid.
var pidFiles = []string{"/run/libvirt/libvirtd.pid", "/run/libvirtd.pid", "/run/virtqemud.pid"}

// defaultSockets are the sockets a qemu:///system URI without socket= reaches.
var defaultSockets = []string{"", "/run/libvirt/libvirt-sock", "/var/run/libvirt/libvirt-sock", "/run/libvirt/virtqemud-sock"}

// Netns returns a handle to the network namespace of the libvirtd that uri
// reaches: the bridges, taps and routes of its networks are there, so that is
// where vmnet must look for and make them. For a daemon behind
// /proc/PID/root (testutil.SandboxURI) it is PID's; for the local qemu:///system
// daemon, the one its pid file names; otherwise (a remote URI, a socket
// vmnet cannot place, no pid file) the namespace vmnet runs in. Inside a
// sandbox, or beside the host's libvirtd, that is the same namespace. The
// caller closes the handle.
func Netns(uri string) (netns.NsHandle, error) {
	return netnsOf(uri, pidFiles)
}

func netnsOf(uri string, files []string) (netns.NsHandle, error) {
	pid := daemonPID(uri, files)
	if pid == 0 {
		ns, err := netns.Get()
		if err != nil {
			return netns.None(), fmt.Errorf("open the current network namespace: %w", err)
		}
		return ns, nil
	}
	ns, err := netns.GetFromPid(pid)
	if err != nil {
		return netns.None(), fmt.Errorf("open the network namespace of libvirtd (pid %d, for %s): %w", pid, uri, err)
	}
	return ns, nil
}

// daemonPID returns the pid of the local libvirtd that uri reaches, looked up
// in files (pid files) for a default qemu:///system URI, or 0 when it cannot
// be told.
func daemonPID(uri string, files []string) int {
	u, err := url.Parse(uri)
	if err != nil || u.Host != "" || !strings.HasPrefix(u.Scheme, "qemu") || strings.Contains(u.Scheme, "+") {
		return 0 // not a local daemon: its namespace is not this host's to open
	}
	socket := u.Query().Get("socket")
	if m := procSocket.FindStringSubmatch(socket); m != nil {
		pid, _ := strconv.Atoi(m[1])
		return pid
	}
	if u.Path != "/system" || !slices.Contains(defaultSockets, socket) {
		return 0
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			continue
		}
		// A stale pid file may name a pid reused by another program.
		comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		if err == nil && slices.Contains([]string{"libvirtd", "virtqemud"}, strings.TrimSpace(string(comm))) {
			return pid
		}
	}
	return 0
}
