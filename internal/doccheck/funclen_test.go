package doccheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// maxFuncLines is the longest a function may be, from "func" to its closing
// brace. Past it a function is usually several steps in one body, and names
// for the steps would tell the reader more than the comments between them.
const maxFuncLines = 80

// TestFunctionsAreShort fails on each function outside tests that is longer
// than maxFuncLines. There is no list of exceptions: every long function
// so far read better as named steps. Tests are exempt: a table of cases
// reads best in one piece.
func TestFunctionsAreShort(t *testing.T) {
	long := map[string]int{} // key -> lines
	where := map[string]string{}
	for _, dir := range []string{"cmd", "internal", "templates", "integration"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			for key, fn := range longFunctions(t, path) {
				long[key] = fn.lines
				where[key] = fn.pos
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	keys := make([]string, 0, len(long))
	for k := range long {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Errorf("%s: %s is %d lines, over %d: split it into named steps", where[k], k, long[k], maxFuncLines)
	}
}

// longFunc is where a long function starts and how long it is.
type longFunc struct {
	pos   string // file:line, from the module's root
	lines int
}

// longFunctions returns the functions of one file over maxFuncLines, keyed
// as "package-dir.Func" or "package-dir.Type.Method".
func longFunctions(t *testing.T, path string) map[string]longFunc {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	rel, _ := filepath.Rel(root, path)
	pkg := filepath.ToSlash(filepath.Dir(rel))
	out := map[string]longFunc{}
	for _, decl := range f.Decls {
		d, ok := decl.(*ast.FuncDecl)
		if !ok || d.Body == nil {
			continue
		}
		start, end := fset.Position(d.Pos()), fset.Position(d.End())
		n := end.Line - start.Line + 1
		if n <= maxFuncLines {
			continue
		}
		name := d.Name.Name
		if recv := receiver(d); recv != "" {
			name = recv + "." + name
		}
		out[pkg+"."+name] = longFunc{pos: filepath.ToSlash(rel) + ":" + strconv.Itoa(start.Line), lines: n}
	}
	return out
}
