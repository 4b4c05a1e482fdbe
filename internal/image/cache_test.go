package image

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"

	"vmnet/internal/debian"
	"vmnet/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func TestEnsureBuildsOnceThenHits(t *testing.T) {
	src := newFakeSource()
	c := newTestCache(t, recipesCopy(t), src)
	ctx := context.Background()

	var out bytes.Buffer
	img, built, err := c.Ensure(ctx, "tiny", &out)
	if err != nil {
		t.Fatalf("first Ensure: %v\n%s", err, out.String())
	}
	if !built {
		t.Fatal("first Ensure: built = false on an empty cache")
	}
	if img.Dir != filepath.Join(c.Dir, "tiny", img.Hash[:16]) || img.Kernel != filepath.Join(img.Dir, "vmlinuz") ||
		img.Initrd != filepath.Join(img.Dir, "initrd.img") || img.Disk != "" {
		t.Errorf("paths: %+v", img)
	}
	if img.Cmdline != "console=ttyS0 quiet" || img.ReadyLine != ReadyPrefix {
		t.Errorf("Cmdline %q, ReadyLine %q", img.Cmdline, img.ReadyLine)
	}
	if want := tinyPackages; !cmp.Equal(img.Packages, want) {
		t.Errorf("Packages = %v, want %v", img.Packages, want)
	}
	if k, _ := os.ReadFile(img.Kernel); string(k) != "fake bzImage\n" {
		t.Errorf("kernel = %q", k)
	}
	for _, want := range []string{"downloading linux-image-" + testutil.FakeKver, "unpacking busybox-static", "modules in load order", "built in"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, out.String())
		}
	}

	out.Reset()
	img2, built, err := c.Ensure(ctx, "tiny", &out)
	if err != nil || built {
		t.Fatalf("second Ensure: built=%v err=%v", built, err)
	}
	if img2.Hash != img.Hash || img2.Dir != img.Dir || !img2.Built.Equal(img.Built) {
		t.Errorf("second Ensure returned another build: %+v vs %+v", img2, img)
	}
	if out.Len() != 0 {
		t.Errorf("a cache hit printed progress:\n%s", out.String())
	}
	if d, u, _ := src.counts(); d != tinyDebs || u != tinyDebs {
		t.Errorf("downloads=%d unpacks=%d, want %d and %d (one build)", d, u, tinyDebs, tinyDebs)
	}
}

// The initramfs layout is golden: modules in dependency order, busybox, the
// recipe's files, device nodes the kernel needs before devtmpfs.
func TestInitramfsGolden(t *testing.T) {
	c := newTestCache(t, recipesCopy(t), newFakeSource())
	img, _, err := c.Ensure(context.Background(), "tiny", nil)
	if err != nil {
		t.Fatal(err)
	}
	files := readInitramfs(t, img.Initrd)
	byName := map[string]cpioFile{}
	for _, f := range files {
		byName[f.Name] = f
	}
	mod := "/lib/modules/" + testutil.FakeKver + "/kernel/"
	wantOrder := mod + "drivers/virtio/virtio_pci_modern_dev.ko\n" +
		mod + "drivers/virtio/virtio_ring.ko\n" +
		mod + "drivers/virtio/virtio.ko\n" +
		mod + "drivers/virtio/virtio_pci_legacy_dev.ko\n" +
		mod + "drivers/virtio/virtio_pci.ko\n" +
		mod + "net/core/failover.ko\n" +
		mod + "drivers/net/net_failover.ko\n" +
		mod + "drivers/net/virtio_net.ko\n" +
		mod + "drivers/block/virtio_blk.ko\n" +
		mod + "drivers/char/virtio_console.ko\n" +
		mod + "drivers/char/hw_random/virtio-rng.ko\n" +
		mod + "net/vmw_vsock/vsock.ko\n" +
		mod + "net/vmw_vsock/vmw_vsock_virtio_transport_common.ko\n" +
		mod + "net/vmw_vsock/vmw_vsock_virtio_transport.ko\n"
	if diff := cmp.Diff(wantOrder, string(byName["etc/vmnet/modules"].Data)); diff != "" {
		t.Errorf("etc/vmnet/modules (-want +got):\n%s", diff)
	}
	initSrc, _ := os.ReadFile("../../images/tiny/init")
	if !bytes.Equal(byName["init"].Data, initSrc) {
		t.Error("/init is not images/tiny/init")
	}
	testutil.Golden(t, "testdata/tiny-initramfs.golden", []byte(listing(files)), *update)
}

func TestRecipeChangeRebuildsAndReplaces(t *testing.T) {
	fsys := recipesCopy(t)
	src := newFakeSource()
	c := newTestCache(t, fsys, src)
	ctx := context.Background()
	old, _, err := c.Ensure(ctx, "tiny", nil)
	if err != nil {
		t.Fatal(err)
	}
	fsys["tiny/init"] = &fstest.MapFile{Data: append(bytes.Clone(fsys["tiny/init"].Data), "# changed\n"...)}
	img, built, err := c.Ensure(ctx, "tiny", nil)
	if err != nil || !built {
		t.Fatalf("Ensure after a recipe change: built=%v err=%v", built, err)
	}
	if img.Hash == old.Hash {
		t.Fatal("hash did not change with the recipe")
	}
	if _, err := os.Stat(old.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the replaced build %s is still there (%v)", old.Dir, err)
	}
	// The .debs were reused, not downloaded again.
	if d, _, _ := src.counts(); d != tinyDebs {
		t.Errorf("downloads = %d, want %d", d, tinyDebs)
	}

	// A new kernel in apt's lists is a new recipe hash too.
	src.add("linux-image-amd64", "6.1.1000-1", "linux-image-"+testutil.FakeKver+" (= 6.1.1000-1)", nil)
	src.add("linux-image-"+testutil.FakeKver, "6.1.1000-1", "", testutil.FakeKernelTree())
	img3, built, err := c.Ensure(ctx, "tiny", nil)
	if err != nil || !built || img3.Hash == img.Hash {
		t.Fatalf("Ensure after a kernel update: built=%v err=%v same hash=%v", built, err, img3.Hash == img.Hash)
	}
	debs, _ := filepath.Glob(filepath.Join(c.Dir, debsDir, "*.deb"))
	if len(debs) != tinyDebs {
		t.Errorf("the old kernel's .deb was not pruned: %v", debs)
	}
}

func TestForceRebuilds(t *testing.T) {
	src := newFakeSource()
	c := newTestCache(t, recipesCopy(t), src)
	ctx := context.Background()
	first, _, err := c.Ensure(ctx, "tiny", nil)
	if err != nil {
		t.Fatal(err)
	}
	img, err := c.Rebuild(ctx, "tiny", nil)
	if err != nil {
		t.Fatal(err)
	}
	if img.Dir != first.Dir || !img.Built.After(first.Built) {
		t.Errorf("Rebuild: dir %s built %v, first: dir %s built %v", img.Dir, img.Built, first.Dir, first.Built)
	}
	if _, u, _ := src.counts(); u != 2*tinyDebs {
		t.Errorf("unpacks = %d, want %d (two builds)", u, 2*tinyDebs)
	}
	if imgs, _ := c.List(); len(imgs) != 1 {
		t.Errorf("List after a forced rebuild: %d images, want 1", len(imgs))
	}
}

func TestFailedBuildNeverLooksValid(t *testing.T) {
	src := newFakeSource()
	src.unpackErr = errors.New("tar subprocess returned error exit status 2")
	c := newTestCache(t, recipesCopy(t), src)
	var out bytes.Buffer
	_, built, err := c.Ensure(context.Background(), "tiny", &out)
	var be *BuildError
	if !errors.As(err, &be) || built {
		t.Fatalf("Ensure = built %v, %v; want a *BuildError", built, err)
	}
	if be.Log != filepath.Join(c.Dir, "tiny", failedLog) {
		t.Errorf("Log = %s", be.Log)
	}
	if len(be.Tail) == 0 || !strings.Contains(strings.Join(be.Tail, "\n"), "tar subprocess returned error") {
		t.Errorf("Tail = %q", be.Tail)
	}
	if !strings.Contains(out.String(), "last lines of "+be.Log) || !strings.Contains(out.String(), "| ") {
		t.Errorf("progress does not show the log's tail:\n%s", out.String())
	}
	if !strings.Contains(be.Hint(), be.Log) {
		t.Errorf("Hint %q does not name the log", be.Hint())
	}
	entries, _ := os.ReadDir(filepath.Join(c.Dir, "tiny"))
	if len(entries) != 1 || entries[0].Name() != failedLog {
		t.Errorf("tiny/ holds %v, want only %s", entries, failedLog)
	}
	if imgs, err := c.List(); err != nil || len(imgs) != 0 {
		t.Errorf("List after a failed build = %v, %v", imgs, err)
	}

	// The next build succeeds and drops the old failure's log.
	src.unpackErr = nil
	if _, built, err := c.Ensure(context.Background(), "tiny", nil); err != nil || !built {
		t.Fatalf("Ensure after fixing: built=%v err=%v", built, err)
	}
	if _, err := os.Stat(be.Log); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s survived a good build", failedLog)
	}
}

// A build killed half way leaves a .build-* directory: it is never taken for
// an image and the next build removes it. A damaged build is rebuilt.
func TestLeftoversAndDamage(t *testing.T) {
	c := newTestCache(t, recipesCopy(t), newFakeSource())
	ctx := context.Background()
	half := filepath.Join(c.Dir, "tiny", ".build-123")
	if err := os.MkdirAll(half, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(half, "vmlinuz"), []byte("half"), 0o644)
	img, built, err := c.Ensure(ctx, "tiny", nil)
	if err != nil || !built {
		t.Fatalf("Ensure: built=%v err=%v", built, err)
	}
	if _, err := os.Stat(half); !errors.Is(err, os.ErrNotExist) {
		t.Error("the killed build's directory is still there")
	}
	// Truncate the initrd: the size check in the manifest catches it.
	if err := os.WriteFile(img.Initrd, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, built, err := c.Ensure(ctx, "tiny", nil); err != nil || !built {
		t.Fatalf("Ensure of a damaged build: built=%v err=%v, want a rebuild", built, err)
	}
	// No manifest: not a build.
	os.Remove(filepath.Join(img.Dir, manifestName))
	if imgs, _ := c.List(); len(imgs) != 0 {
		t.Errorf("List shows a build without a manifest: %v", imgs)
	}
}

func TestConcurrentEnsureBuildsOnce(t *testing.T) {
	src := newFakeSource()
	src.unpackDelay = 300 * time.Millisecond
	c := newTestCache(t, recipesCopy(t), src)
	var wg sync.WaitGroup
	results := make([]bool, 3)
	hashes := make([]string, 3)
	errs := make([]error, 3)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			img, built, err := c.Ensure(context.Background(), "tiny", nil)
			results[i], hashes[i], errs[i] = built, img.Hash, err
		}()
	}
	wg.Wait()
	builds := 0
	for i := range results {
		if errs[i] != nil {
			t.Fatalf("Ensure %d: %v", i, errs[i])
		}
		if results[i] {
			builds++
		}
		if hashes[i] != hashes[0] {
			t.Errorf("Ensure %d got hash %s, Ensure 0 %s", i, hashes[i], hashes[0])
		}
	}
	if _, u, _ := src.counts(); builds != 1 || u != tinyDebs {
		t.Errorf("%d builds and %d unpacks, want 1 build (%d unpacks)", builds, u, tinyDebs)
	}
}

func TestStaleListsAreRefreshedOnce(t *testing.T) {
	src := newFakeSource()
	// The lists know no busybox-static until apt-get update.
	bb := src.pkgs["busybox-static"]
	delete(src.pkgs, "busybox-static")
	src.onRefresh = func(s *fakeSource) { s.add(bb.pkg.Name, bb.pkg.Version, "", bb.tree) }
	c := newTestCache(t, recipesCopy(t), src)
	if _, built, err := c.Ensure(context.Background(), "tiny", nil); err != nil || !built {
		t.Fatalf("Ensure: built=%v err=%v", built, err)
	}
	if _, _, r := src.counts(); r != 1 {
		t.Errorf("refreshes = %d, want 1", r)
	}

	// A package apt cannot find even after refreshing is an error with advice.
	src2 := newFakeSource()
	delete(src2.pkgs, "busybox-static")
	c2 := newTestCache(t, recipesCopy(t), src2)
	_, _, err := c2.Ensure(context.Background(), "tiny", nil)
	var h interface{ Hint() string }
	if !errors.Is(err, debian.ErrNoCandidate) || !errors.As(err, &h) || !strings.Contains(h.Hint(), filepath.Join(c2.Dir, aptStateDir)) {
		t.Errorf("Ensure without busybox-static = %v", err)
	}
}

// Lists older than a day are refreshed before resolving, so a new Debian
// kernel changes the hash as a host's daily apt update did; younger ones are
// not, and a refresh that fails (no network) only warns.
func TestOldListsAreRefreshedFirst(t *testing.T) {
	clock := newFakeClock().now()
	for _, tc := range []struct {
		name    string
		age     time.Duration
		err     error
		refresh int
	}{
		{"a day and more", listsMaxAge + time.Hour, nil, 1},
		{"fresh", time.Hour, nil, 0},
		{"offline", 3 * listsMaxAge, errors.New("apt-get: exit status 100: Temporary failure resolving 'deb.debian.org'"), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := newFakeSource()
			src.updated, src.refreshErr = clock.Add(-tc.age), tc.err
			newVersion := func(s *fakeSource) {
				bb := s.pkgs["busybox-static"]
				s.add(bb.pkg.Name, "1:1.35.0-5", "", bb.tree)
			}
			if tc.err == nil {
				src.onRefresh = newVersion
			}
			c := newTestCache(t, recipesCopy(t), src)
			var out bytes.Buffer
			img, _, err := c.Ensure(context.Background(), "tiny", &out)
			if err != nil {
				t.Fatalf("Ensure: %v\n%s", err, out.String())
			}
			if _, _, r := src.counts(); r != tc.refresh {
				t.Errorf("refreshes = %d, want %d", r, tc.refresh)
			}
			refreshed := strings.Contains(strings.Join(img.Packages, " "), "busybox-static=1:1.35.0-5")
			if refreshed != (tc.refresh == 1 && tc.err == nil) {
				t.Errorf("packages %v after %d refreshes", img.Packages, tc.refresh)
			}
			if warned := strings.Contains(out.String(), "could not be refreshed"); warned != (tc.err != nil) {
				t.Errorf("warning shown = %v:\n%s", warned, out.String())
			}
		})
	}
}

func TestRemoveAndList(t *testing.T) {
	c := newTestCache(t, recipesCopy(t), newFakeSource())
	ctx := context.Background()
	if imgs, err := c.List(); err != nil || len(imgs) != 0 {
		t.Fatalf("List of an empty cache = %v, %v", imgs, err)
	}
	if existed, err := c.Remove(ctx, "tiny"); err != nil || existed {
		t.Fatalf("Remove of a missing image = %v, %v; want false, nil", existed, err)
	}
	img, _, err := c.Ensure(ctx, "tiny", nil)
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := c.List()
	if err != nil || len(imgs) != 1 || imgs[0].Hash != img.Hash || imgs[0].Size == 0 {
		t.Fatalf("List = %+v, %v", imgs, err)
	}
	if existed, err := c.Remove(ctx, "tiny"); err != nil || !existed {
		t.Fatalf("Remove = %v, %v; want true, nil", existed, err)
	}
	if imgs, _ := c.List(); len(imgs) != 0 {
		t.Errorf("List after Remove = %v", imgs)
	}
	if debs, _ := filepath.Glob(filepath.Join(c.Dir, debsDir, "*")); len(debs) != 0 {
		t.Errorf(".debs not pruned after Remove: %v", debs)
	}
	if existed, err := c.Remove(ctx, "tiny"); err != nil || existed {
		t.Errorf("second Remove = %v, %v", existed, err)
	}
	if _, err := c.Remove(ctx, "../etc"); err == nil {
		t.Error("Remove accepted a name with a path in it")
	}
}

func TestUnknownImage(t *testing.T) {
	c := newTestCache(t, recipesCopy(t), newFakeSource())
	_, _, err := c.Ensure(context.Background(), "capstone2", nil)
	var ue *UnknownImageError
	if !errors.As(err, &ue) || !strings.Contains(ue.Hint(), "tiny") {
		t.Fatalf("Ensure of an unknown image = %v", err)
	}
}

func TestCacheDirFromEnvironment(t *testing.T) {
	t.Setenv(EnvCache, "")
	if got := DefaultDir(); got != DefaultCacheDir {
		t.Errorf("DefaultDir() = %s without $%s", got, EnvCache)
	}
	t.Setenv(EnvCache, "/srv/vmnet-images")
	if got := Default().Dir; got != "/srv/vmnet-images" {
		t.Errorf("Default().Dir = %s with $%s set", got, EnvCache)
	}
}

func TestUnwritableCacheHasAdvice(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root can write anywhere; this checks the advice a user gets")
	}
	c := newTestCache(t, recipesCopy(t), newFakeSource())
	ro := t.TempDir()
	if err := os.Chmod(ro, 0o555); err != nil {
		t.Fatal(err)
	}
	c.Dir = filepath.Join(ro, "cache")
	_, _, err := c.Ensure(context.Background(), "tiny", nil)
	var h interface{ Hint() string }
	if err == nil || !errors.As(err, &h) || !strings.Contains(h.Hint(), EnvCache) {
		t.Errorf("Ensure into an unwritable dir = %v", err)
	}
}

func TestPlannedBuildsNothing(t *testing.T) {
	src := newFakeSource()
	c := newTestCache(t, recipesCopy(t), src)
	ctx := context.Background()
	plan, err := c.Planned(ctx, "tiny")
	if err != nil {
		t.Fatal(err)
	}
	if d, u, r := src.counts(); d+u+r != 0 {
		t.Errorf("Planned downloaded %d, unpacked %d, refreshed %d", d, u, r)
	}
	if !plan.Built.IsZero() || plan.Cmdline == "" || plan.ReadyLine != ReadyPrefix {
		t.Errorf("plan = %+v", plan)
	}
	if entries, _ := os.ReadDir(c.Dir); len(entries) != 0 {
		t.Errorf("Planned wrote into the cache: %v", entries)
	}
	img, _, err := c.Ensure(ctx, "tiny", nil)
	if err != nil {
		t.Fatal(err)
	}
	if img.Kernel != plan.Kernel || img.Initrd != plan.Initrd || img.Hash != plan.Hash {
		t.Errorf("built %+v, planned %+v", img, plan)
	}
	again, err := c.Planned(ctx, "tiny")
	if err != nil || !again.Built.Equal(img.Built) {
		t.Errorf("Planned of a built image = %+v, %v", again, err)
	}
}
