// Package nsdo runs a function inside another network namespace, the way
// containernetworking/plugins' ns.Do does: on a fresh goroutine whose OS
// thread is locked, switched into the namespace and back. A thread that
// cannot be switched back is never handed back to Go's scheduler, so no
// other goroutine ever runs in the wrong namespace.
package nsdo

import (
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/vishvananda/netns"
)

// Do runs fn on an OS thread inside the network namespace ns and returns
// fn's error (ip netns exec NS, for one function). Sockets fn opens stay in
// ns afterwards, whatever thread uses them. The caller's thread and
// namespace are untouched. A panic in fn is re-raised in the caller.
func Do(ns netns.NsHandle, fn func() error) error {
	enter := func() error {
		if err := netns.Set(ns); err != nil {
			return fmt.Errorf("enter network namespace %s: %w", ns, err)
		}
		return nil
	}
	return onThread(enter, fn, netns.Set)
}

// New makes a new, unnamed network namespace and returns a handle to it
// (unshare --net, kept open by the handle), without moving the caller: it
// is made on a thread of its own, under the same rules as Do.
func New() (netns.NsHandle, error) {
	made := netns.None()
	enter := func() (err error) {
		made, err = netns.New() // creates the namespace and enters it
		if err != nil {
			return fmt.Errorf("create a network namespace: %w", err)
		}
		return nil
	}
	if err := onThread(enter, func() error { return nil }, netns.Set); err != nil {
		if made.IsOpen() {
			made.Close()
		}
		return netns.None(), err
	}
	return made, nil
}

// onThread runs enter (which switches the thread's namespace, or fails
// without a change, as setns(2) does) and fn on a fresh goroutine with its
// thread locked, then switches back with setBack. A fresh goroutine, so the
// caller's thread, perhaps locked by the caller for its own reasons, never
// changes namespace.
func onThread(enter, fn func() error, setBack func(netns.NsHandle) error) error {
	var (
		wg       sync.WaitGroup
		err      error
		panicked any
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() { panicked = recover() }()
		runtime.LockOSThread()
		err = inside(enter, fn, setBack)
	}()
	wg.Wait()
	if panicked != nil {
		panic(panicked)
	}
	return err
}

// inside is onThread's work on the locked thread. Only a thread back in its
// own namespace is unlocked; one that is not stays locked, and Go ends the
// thread when its goroutine exits.
func inside(enter, fn func() error, setBack func(netns.NsHandle) error) (err error) {
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread() // nothing switched yet
		return fmt.Errorf("read the current network namespace: %w", err)
	}
	defer orig.Close()
	if err := enter(); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer func() {
		if berr := setBack(orig); berr != nil {
			// Leave the thread locked: it dies with this goroutine.
			err = errors.Join(err, fmt.Errorf("return to network namespace %s (this thread is discarded): %w", orig, berr))
			return
		}
		runtime.UnlockOSThread()
	}()
	return fn()
}
