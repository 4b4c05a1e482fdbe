package main

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"vmnet/internal/bridge"
	"vmnet/internal/doctor"
	"vmnet/internal/image"
	"vmnet/internal/labrun"
	"vmnet/internal/network"
	"vmnet/internal/perf"
	"vmnet/internal/report"
	"vmnet/internal/sandbox"
	"vmnet/internal/vm"
)

// outputTypes is every type writeJSON prints: the terms of jsonOutput
// (TestOutputTypesMatchJSONOutput keeps the two lists equal).
var outputTypes = []reflect.Type{
	reflect.TypeFor[bridgeView](), reflect.TypeFor[[]bridgeView](), reflect.TypeFor[resultView](),
	reflect.TypeFor[*network.Result](), reflect.TypeFor[[]network.Info](),
	reflect.TypeFor[vmUpView](), reflect.TypeFor[*vm.DownResult](), reflect.TypeFor[[]vm.Info](),
	reflect.TypeFor[sandbox.Result](), reflect.TypeFor[[]sandbox.Info](),
	reflect.TypeFor[imageBuildView](), reflect.TypeFor[[]imageBuildView](), reflect.TypeFor[[]image.Image](), reflect.TypeFor[removedView](),
	reflect.TypeFor[[]doctor.Finding](),
	reflect.TypeFor[labUpView](), reflect.TypeFor[*labrun.DownResult](), reflect.TypeFor[[]labrun.Summary](), reflect.TypeFor[*labrun.Inspection](), reflect.TypeFor[*labrun.SaveResult](),
	reflect.TypeFor[*perf.Report](),
}

// alsoWalked: the check report (check --output json prints it through
// report.JSON, not writeJSON), and JSON-tagged results that no command
// prints today, so printing them later changes no names.
var alsoWalked = []reflect.Type{
	reflect.TypeFor[report.JSONReport](), reflect.TypeFor[bridge.Result](), reflect.TypeFor[bridge.State](),
}

var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// unitWords are parts of a name that say a number is a duration or a size;
// such a number must name its unit.
var unitWords = regexp.MustCompile(`(^|_)(duration|elapsed|ready|timeout|time|size|length|age)($|_)`)
var unitSuffix = regexp.MustCompile(`_(ms|seconds|bytes)$`)

// conventionProblems walks the structs reachable from roots and returns
// every field name that is not snake_case, every time.Duration (it would
// print as nanoseconds), and every duration or size without its unit; and
// how many struct types it walked.
func conventionProblems(roots []reflect.Type) (problems []string, walked int) {
	seen := map[reflect.Type]bool{}
	var walk func(path string, typ reflect.Type)
	walk = func(path string, typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Array || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] || typ == reflect.TypeFor[time.Time]() {
			return
		}
		seen[typ] = true
		for i := range typ.NumField() {
			f := typ.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			where := path + "." + f.Name
			if f.Anonymous && tag == "" {
				walk(where, f.Type) // promoted fields, even of an unexported type
				continue
			}
			if !f.IsExported() || tag == "-" {
				continue
			}
			bad := func(format string, a ...any) { problems = append(problems, where+": "+fmt.Sprintf(format, a...)) }
			switch {
			case tag == "":
				bad("no json tag, so it prints as %q; tag it in snake_case", f.Name)
			case !snakeCase.MatchString(tag):
				bad("json name %q is not snake_case", tag)
			}
			if f.Type == reflect.TypeFor[time.Duration]() {
				bad("json %q is a time.Duration, which prints as nanoseconds; print float seconds in a field named *_seconds", tag)
			}
			switch f.Type.Kind() {
			case reflect.Int, reflect.Int64, reflect.Uint64, reflect.Float64:
				if unitWords.MatchString(tag) && !unitSuffix.MatchString(tag) {
					bad("json name %q is a duration or size without its unit; name it *_seconds, *_ms or *_bytes", tag)
				}
			}
			walk(where, f.Type)
		}
	}
	for _, typ := range roots {
		walk(typ.String(), typ)
	}
	return problems, len(seen)
}

// TestJSONOutputConvention: every struct that --output json prints uses
// snake_case names and says its units.
func TestJSONOutputConvention(t *testing.T) {
	problems, walked := conventionProblems(append(slices.Clone(outputTypes), alsoWalked...))
	for _, p := range problems {
		t.Error(p)
	}
	if walked < 20 {
		t.Errorf("walked %d struct types; the walk misses nested ones", walked)
	}
}

// The check can fail: the old vm.UpResult's readySeconds (nanoseconds, in
// camelCase) and image.Image's size (bytes, unnamed) are refused, inside a
// slice of pointers and through an embedded struct.
func TestJSONOutputConventionCatches(t *testing.T) {
	type inner struct {
		Size int64 `json:"size"`
	}
	type old struct {
		inner
		Ready time.Duration `json:"readySeconds"`
		Name  string
	}
	problems, _ := conventionProblems([]reflect.Type{reflect.TypeFor[[]*old]()})
	want := []string{`"size" is a duration or size without its unit`, `"readySeconds" is not snake_case`, `"readySeconds" is a time.Duration`, `no json tag, so it prints as "Name"`}
	for _, w := range want {
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, w) }) {
			t.Errorf("not caught: %s (problems: %q)", w, problems)
		}
	}
	if len(problems) != len(want) {
		t.Errorf("%d problems, want %d: %q", len(problems), len(want), problems)
	}
}

// outputTypes lists exactly the terms of jsonOutput, the constraint of
// writeJSON, so a type added there is walked here.
func TestOutputTypesMatchJSONOutput(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "output.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var terms []string
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok || ts.Name.Name != "jsonOutput" {
			return true
		}
		var collect func(e ast.Expr)
		collect = func(e ast.Expr) {
			if b, ok := e.(*ast.BinaryExpr); ok && b.Op == token.OR {
				collect(b.X)
				collect(b.Y)
				return
			}
			var buf bytes.Buffer
			printer.Fprint(&buf, fset, e)
			terms = append(terms, buf.String())
		}
		for _, m := range ts.Type.(*ast.InterfaceType).Methods.List {
			collect(m.Type)
		}
		return false
	})
	var listed []string
	for _, typ := range outputTypes {
		listed = append(listed, strings.ReplaceAll(typ.String(), "main.", ""))
	}
	slices.Sort(terms)
	slices.Sort(listed)
	if len(terms) == 0 || !slices.Equal(terms, listed) {
		t.Errorf("jsonOutput has %q\noutputTypes has %q\nkeep them the same", terms, listed)
	}
}
