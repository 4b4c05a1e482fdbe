package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// nsID identifies a namespace by the device and inode of its nsfs file.
type nsID struct{ dev, ino uint64 }

func (n nsID) valid() bool { return n.ino != 0 }

// boundNS returns the namespace bound at path (an nsfs mount such as
// /run/netns/NAME), or an error when path is not one.
func boundNS(path string) (nsID, error) {
	var fs unix.Statfs_t
	if err := unix.Statfs(path, &fs); err != nil {
		return nsID{}, err
	}
	if int64(fs.Type) != unix.NSFS_MAGIC {
		return nsID{}, fmt.Errorf("%s is not a namespace file", path)
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nsID{}, err
	}
	return nsID{dev: uint64(st.Dev), ino: st.Ino}, nil
}

// procNS returns the namespace of kind ("net", "mnt") that process pid is in.
func procNS(pid int, kind string) (nsID, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/"+strconv.Itoa(pid)+"/ns/"+kind, &st); err != nil {
		return nsID{}, err
	}
	return nsID{dev: uint64(st.Dev), ino: st.Ino}, nil
}

// zombie reports whether pid has exited but not been reaped. The daemons'
// parent is PID 1, which may reap late: a zombie counts as gone.
func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z' || b[i+2] == 'X'
}

// inNS reports whether pid is a live process in mount namespace mnt: a
// recorded pid that was reused by an unrelated process does not count.
func inNS(pid int, mnt nsID) bool {
	if pid <= 0 || !mnt.valid() {
		return false
	}
	id, err := procNS(pid, "mnt")
	return err == nil && id == mnt && !zombie(pid)
}

// member reports whether pid is a live process in either namespace.
func member(pid int, netID, mntID nsID) bool {
	if pid <= 0 || pid == os.Getpid() {
		return false
	}
	if netID.valid() {
		if id, err := procNS(pid, "net"); err == nil && id == netID && !zombie(pid) {
			return true
		}
	}
	return inNS(pid, mntID)
}

// members lists the live processes in either namespace.
func members(netID, mntID nsID) []int {
	if !netID.valid() && !mntID.valid() {
		return nil
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err == nil && member(pid, netID, mntID) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// stopAll ends every process of the sandbox, by pid and only after checking
// that the pid is in one of its namespaces: libvirtd first (so it does not
// restart what follows), then everything but virtlogd (dnsmasq, QEMU, commands
// left by Exec), then whatever remains. SIGTERM, then SIGKILL after a grace period.
func stopAll(ctx context.Context, netID, mntID nsID, st state) error {
	isMember := func(pid int) bool { return member(pid, netID, mntID) }
	if isMember(st.LibvirtdPID) {
		stopPids(ctx, []int{st.LibvirtdPID}, isMember, 10*time.Second)
	}
	others := slices.DeleteFunc(members(netID, mntID), func(pid int) bool { return pid == st.VirtlogdPID })
	stopPids(ctx, others, isMember, 10*time.Second)
	for range 3 {
		rest := members(netID, mntID)
		if len(rest) == 0 {
			return nil
		}
		stopPids(ctx, rest, isMember, 5*time.Second)
	}
	if rest := members(netID, mntID); len(rest) > 0 {
		return fmt.Errorf("processes still running in the sandbox: %v", rest)
	}
	return nil
}

// stopPids sends SIGTERM to each pid through a pidfd (so a pid reused after
// the check is never signalled), waits up to grace, then sends SIGKILL to the
// ones left and waits a little more.
func stopPids(ctx context.Context, pids []int, isMember func(int) bool, grace time.Duration) {
	var fds []int
	for _, pid := range pids {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue // gone already
		}
		if !isMember(pid) {
			unix.Close(fd)
			continue
		}
		slog.Debug("sandbox: stopping", "pid", pid)
		if err := unix.PidfdSendSignal(fd, unix.SIGTERM, nil, 0); err != nil {
			unix.Close(fd)
			continue
		}
		fds = append(fds, fd)
	}
	fds = waitPidfds(ctx, fds, grace)
	for _, fd := range fds {
		_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
	}
	fds = waitPidfds(context.WithoutCancel(ctx), fds, 5*time.Second)
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// waitPidfds waits until the processes behind fds exit, d passes or ctx
// ends; it closes the fds of those that exited and returns the others.
func waitPidfds(ctx context.Context, fds []int, d time.Duration) []int {
	deadline := time.Now().Add(d)
	for len(fds) > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		pfds := make([]unix.PollFd, len(fds))
		for i, fd := range fds {
			pfds[i] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
		}
		_, err := unix.Poll(pfds, 100)
		if err != nil && !errors.Is(err, unix.EINTR) {
			break
		}
		left := fds[:0]
		for i, fd := range fds {
			if pfds[i].Revents != 0 {
				unix.Close(fd)
				continue
			}
			left = append(left, fd)
		}
		fds = left
	}
	return fds
}
