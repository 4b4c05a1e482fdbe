package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLockWaitsAndNamesTheHolder: a second taker says once who holds the
// lock, gives up when its context ends, and gets the lock once it is free.
func TestLockWaitsAndNamesTheHolder(t *testing.T) {
	c := &Cache{Dir: t.TempDir()}
	unlock, err := c.lock(context.Background(), "tiny", "building tiny", nil)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(c.Dir, locksDir, "tiny.lock")
	if b, _ := os.ReadFile(file); strings.TrimSpace(string(b)) != fmt.Sprint(os.Getpid()) {
		t.Errorf("lock file holds %q, want the holder's pid", b)
	}

	var out bytes.Buffer
	p := newProgress(&out, "tiny", time.Now)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := c.lock(ctx, "tiny", "building tiny", p); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second lock while held: %v, want the context's deadline", err)
	}
	want := fmt.Sprintf("waiting for another vmnet (pid %d), which is building tiny", os.Getpid())
	if got := out.String(); strings.Count(got, want) != 1 {
		t.Errorf("progress %q, want %q once", got, want)
	}

	done := make(chan error, 1)
	go func() {
		u, err := c.lock(context.Background(), "tiny", "building tiny", nil)
		if err == nil {
			u()
		}
		done <- err
	}()
	time.Sleep(2 * lockPoll)
	unlock()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiter did not get the lock after it was released")
	}
	if b, _ := os.ReadFile(file); len(b) != 0 {
		t.Errorf("lock file holds %q after unlock, want it empty", b)
	}
}
