package integration

import (
	"crypto/sha256"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// warmStart saves the running capstone lab of sandbox s and restores it
// with `lab up --from-save`: the restore ends with every check green, the
// host and the guest hold a new database password, the old one is refused
// by PostgreSQL and the API answers from the database with the new one.
// A second restore of the running lab is refused. It returns how long the
// save and the restore (to every check green) took.
func warmStart(t testing.TB, s string) (save, restore time.Duration) {
	const secret = "/var/lib/vmnet/vms/capstone/secrets/db-password"
	old := sb(t, s, "cat", secret).stdout
	start := time.Now()
	sbVmnet(t, s, "lab", "save", "capstone")
	save = time.Since(start)
	t.Logf("lab save capstone: %s", save.Round(100*time.Millisecond))
	if st := strings.TrimSpace(sb(t, s, "virsh", "-c", "qemu:///system", "domstate", "capstone").stdout); st != "shut off" {
		t.Fatalf("after lab save the domain is %q, want shut off", st)
	}
	if info := sb(t, s, "virsh", "-c", "qemu:///system", "dominfo", "capstone").stdout; !strings.Contains(strings.ReplaceAll(info, " ", ""), "Managedsave:yes") {
		t.Fatalf("after lab save there is no managed save image:\n%s", info)
	}

	start = time.Now()
	r := sb(t, s, vmnetBin(t), "-o", "json", "lab", "up", "capstone", "--from-save")
	restore = time.Since(start)
	t.Logf("lab up capstone --from-save: exit %d after %s\n%s", r.code, time.Since(start).Round(100*time.Millisecond), r.stderr)
	var up struct {
		Outcome string    `json:"outcome"`
		Check   checkJSON `json:"check"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &up); err != nil {
		t.Fatalf("lab up --from-save JSON: %v\n%s", err, r.stdout)
	}
	if r.code != 0 || up.Outcome != "restored" || up.Check.Failed != 0 || up.Check.Passed == 0 || up.Check.Passed != up.Check.Total {
		t.Fatalf("lab up --from-save: exit %d, outcome %q, %d of %d checks passed\n%s", r.code, up.Outcome, up.Check.Passed, up.Check.Total, r.stdout)
	}

	now := sb(t, s, "cat", secret).stdout
	if now == old || len(now) < 32 {
		t.Errorf("the host's secret did not change on restore (sha256 %x before, %x after)", sha256.Sum256([]byte(old)), sha256.Sum256([]byte(now)))
	}
	if inGuest := guest(t, s, "cat", "/etc/vmnet/secrets/db-password"); inGuest != now {
		t.Errorf("the guest's secret (sha256 %x) is not the host's new one (sha256 %x)", sha256.Sum256([]byte(inGuest)), sha256.Sum256([]byte(now)))
	}
	// The saved lab's password no longer logs in; the API (which reads the
	// file at each connection) reaches the database with the new one.
	login := sb(t, s, vmnetBin(t), "vm", "exec", "capstone", "--", "podman", "exec", "-e", "PGPASSWORD="+strings.TrimSpace(old), "db",
		"psql", "-X", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-tAc", "select 1")
	if login.code == 0 {
		t.Errorf("the old password still logs in to PostgreSQL after the restore")
	} else if !strings.Contains(login.stdout+login.stderr, "password authentication failed") {
		t.Errorf("the old password's login failed, but not as a refused password: exit %d\n%s%s", login.code, login.stdout, login.stderr)
	}
	body := sb(t, s, "curl", "-sS", "--noproxy", "*", "--max-time", "10", "http://192.0.2.10:8080/")
	if !strings.Contains(strings.ReplaceAll(body.stdout, " ", ""), `"version":"PostgreSQL15`) {
		t.Errorf("GET http://192.0.2.10:8080/ after the restore: %s%s", body.stdout, body.stderr)
	}
	if r := sb(t, s, vmnetBin(t), "lab", "up", "capstone", "--from-save"); r.code == 0 || !strings.Contains(r.stderr, "is running") {
		t.Errorf("a restore of the running lab: exit %d, %s; want refused", r.code, r.stderr)
	}
	return save, restore
}
