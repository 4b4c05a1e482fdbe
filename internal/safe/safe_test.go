package safe

import (
	"bytes"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestCallTurnsPanicIntoError(t *testing.T) {
	err := Call("check ping", func() error { panic("boom") })
	var pe *PanicError
	if !errors.As(err, &pe) || pe.What != "check ping" || pe.Value != "boom" || len(pe.Stack) == 0 {
		t.Fatalf("Call(panicking fn) = %#v, want a *PanicError with what, value and stack", err)
	}
	want := "internal error in check ping: boom; run again with --verbose and report it"
	if err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
	if err := Call("x", func() error { return nil }); err != nil {
		t.Errorf("Call(fine fn) = %v", err)
	}
	plain := errors.New("plain")
	if err := Call("x", func() error { return plain }); err != plain {
		t.Errorf("Call(failing fn) = %v, want its own error", err)
	}
}

func TestRuntimeErrorUnwraps(t *testing.T) {
	err := Call("x", func() error {
		var m map[string]int
		m["a"] = 1 // assignment to entry in nil map
		return nil
	})
	var re interface{ RuntimeError() }
	if !errors.As(err, &re) {
		t.Errorf("Call(nil map write) = %v, want the runtime.Error to unwrap", err)
	}
}

func TestGoRecoversInTheGoroutine(t *testing.T) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var got []error
	for i := range 3 {
		Go(&wg, "job", func() error {
			if i == 1 {
				var p *struct{ n int }
				return errors.New(string(rune('a' + p.n))) // nil dereference
			}
			return nil
		}, func(err error) {
			mu.Lock()
			got = append(got, err)
			mu.Unlock()
		})
	}
	wg.Wait()
	n := 0
	for _, err := range got {
		var pe *PanicError
		if errors.As(err, &pe) {
			n++
		} else if err != nil {
			t.Errorf("unexpected error %v", err)
		}
	}
	if len(got) != 3 || n != 1 {
		t.Errorf("got %d results with %d panics, want 3 with 1: %v", len(got), n, got)
	}
}

// The stack goes to the debug log only: a user without --verbose sees one line.
func TestStackAtDebugOnly(t *testing.T) {
	for _, tc := range []struct {
		level     slog.Level
		wantStack bool
	}{{slog.LevelWarn, false}, {slog.LevelDebug, true}} {
		var buf bytes.Buffer
		old := slog.Default()
		slog.SetDefault(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tc.level})))
		var wg sync.WaitGroup
		Go(&wg, "job", func() error { panic("boom") }, func(error) {})
		wg.Wait()
		slog.SetDefault(old)
		if got := strings.Contains(buf.String(), "safe_test.go"); got != tc.wantStack {
			t.Errorf("level %v: stack in the log = %v, want %v:\n%s", tc.level, got, tc.wantStack, buf.String())
		}
	}
}

// Without done, an error is logged as one line.
func TestGoWithoutDoneLogs(t *testing.T) {
	var buf bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})))
	defer slog.SetDefault(old)
	var wg sync.WaitGroup
	Go(&wg, "reader", func() error { panic("boom") }, nil)
	wg.Wait()
	if s := buf.String(); !strings.Contains(s, "internal error in reader: boom") || strings.Count(s, "\n") != 1 {
		t.Errorf("log = %q, want one line naming the panic", s)
	}
}

// Every goroutine vmnet starts goes through Go: a plain go statement in
// non-test code under cmd/ or internal/ would crash the process with a
// stack on a panic.
func TestNoPlainGoStatements(t *testing.T) {
	exempt := map[string]bool{"safe": true, "nsdo": true}
	fset := token.NewFileSet()
	for _, top := range []string{"../../cmd", "../../internal"} {
		err := filepath.WalkDir(top, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || filepath.Dir(path) == "." {
				return err
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return err
			}
			ast.Inspect(f, func(n ast.Node) bool {
				// nsdo's goroutine recovers a panic itself and re-raises it in
				// its caller, which waits for it: the panic is the caller's.
				if g, ok := n.(*ast.GoStmt); ok && !exempt[filepath.Base(filepath.Dir(path))] {
					t.Errorf("%s: a go statement; start the goroutine with safe.Go", fset.Position(g.Pos()))
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
