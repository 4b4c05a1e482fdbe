package sandbox

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"vmnet/internal/errs"
)

func TestValidateName(t *testing.T) {
	for _, name := range []string{"a", "lab", "lab-1", "0", "a-b-c", strings.Repeat("x", MaxNameLen)} {
		if err := ValidateName(name); err != nil {
			t.Errorf("ValidateName(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range []string{"", "Lab", "lab_1", "-lab", "lab-", "la b", "lab/x", "..", "lab.1",
		strings.Repeat("x", MaxNameLen+1), "ß"} {
		err := ValidateName(name)
		if !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("ValidateName(%q) = %v, want errs.ErrInvalid", name, err)
			continue
		}
		// The message names the field and says how to fix it.
		if msg := err.Error(); !strings.Contains(msg, "NAME") || !strings.Contains(msg, "a-z, 0-9 and '-'") {
			t.Errorf("ValidateName(%q) message %q does not name the field and the fix", name, msg)
		}
	}
}

func TestMountPoints(t *testing.T) {
	const info = `27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
42 27 254:0 /run/netns /run/netns rw,relatime shared:1 - ext4 /dev/vda rw
50 27 0:4 net:[4026532177] /run/netns/vmnet-lab rw shared:1 - nsfs nsfs rw
51 27 254:0 /x /run/vmnet/sandbox/my\040lab/ns rw - ext4 /dev/vda rw
short line
`
	got, err := mountPoints(strings.NewReader(info))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/", "/run/netns", "/run/netns/vmnet-lab", "/run/vmnet/sandbox/my lab/ns"}
	if !slices.Equal(got, want) {
		t.Errorf("mountPoints = %q, want %q", got, want)
	}
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{
		`/a\040b`:   "/a b",
		`/tab\011x`: "/tab\tx",
		`/bs\134`:   `/bs\`,
		`/odd\04`:   `/odd\04`,
		`/plain`:    "/plain",
		`/not\999`:  `/not\999`,
	} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLayout(t *testing.T) {
	l := layoutFor("lab")
	if l.netnsFile != "/run/netns/vmnet-lab" || l.mntFile != "/run/vmnet/sandbox/lab/ns/mnt" || l.netns != "vmnet-lab" {
		t.Errorf("layoutFor(lab) = %+v", l)
	}
}

func TestWithoutEnv(t *testing.T) {
	got := withoutEnv([]string{"A=1", "VMNET_SANDBOX=x", "VMNET_SANDBOXES=y", "B=2"}, EnvVar)
	want := []string{"A=1", "VMNET_SANDBOXES=y", "B=2"}
	if !slices.Equal(got, want) {
		t.Errorf("withoutEnv = %q, want %q", got, want)
	}
}

// TestLockExcludes: while one command holds the state directory's lock,
// another waits for it and gives up when its context ends.
func TestLockExcludes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the lock is on " + StateDir + ", which needs root")
	}
	unlock, err := lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := lock(ctx); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "waiting for another vmnet sandbox command") {
		t.Errorf("lock while held: %v, want a wait that ends with the context", err)
	}
	unlock()
	again, err := lock(context.Background())
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	again()
}
