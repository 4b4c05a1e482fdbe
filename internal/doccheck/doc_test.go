package doccheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// interfaceMethods are the methods of error, errors.Is/As/Unwrap,
// fmt.Stringer and encoding/json's and encoding's (un)marshalers.
var interfaceMethods = map[string]bool{
	"Error": true, "Unwrap": true, "Is": true, "As": true, "String": true,
	"MarshalJSON": true, "UnmarshalJSON": true, "MarshalText": true, "UnmarshalText": true,
}

// root is the module's root, seen from this package's directory.
const root = "../.."

// TestExportedHaveDocComments fails on each exported function, method (of an
// exported type), type, constant or variable outside tests that has no doc
// comment; a commented group (const ( ... )) covers its members, as golint
// had it. The methods in interfaceMethods are exempt: their contract is the
// standard interface's, and "Error implements error" would tell no one anything.
func TestExportedHaveDocComments(t *testing.T) {
	var missing []string
	for _, dir := range []string{"cmd", "internal", "templates"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			missing = append(missing, undocumented(t, path)...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range missing {
		t.Errorf("%s has no doc comment: say in one line what it is for", m)
	}
}

// undocumented lists the exported identifiers of one file that lack a doc
// comment, as "file:line: name".
func undocumented(t *testing.T, path string) []string {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	report := func(pos token.Pos, name string) {
		p := fset.Position(pos)
		rel, _ := filepath.Rel(root, p.Filename)
		out = append(out, rel+":"+strconv.Itoa(p.Line)+": "+name)
	}
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			if !d.Name.IsExported() || d.Doc != nil {
				continue
			}
			if recv := receiver(d); recv != "" {
				if ast.IsExported(recv) && !interfaceMethods[d.Name.Name] {
					report(d.Pos(), recv+"."+d.Name.Name)
				}
				continue
			}
			report(d.Pos(), d.Name.Name)
		case *ast.GenDecl:
			if d.Tok == token.IMPORT {
				continue
			}
			for _, spec := range d.Specs {
				switch s := spec.(type) {
				case *ast.TypeSpec:
					if s.Name.IsExported() && s.Doc == nil && d.Doc == nil {
						report(s.Pos(), s.Name.Name)
					}
				case *ast.ValueSpec:
					for _, n := range s.Names {
						if n.IsExported() && s.Doc == nil && d.Doc == nil && s.Comment == nil {
							report(n.Pos(), n.Name)
						}
					}
				}
			}
		}
	}
	return out
}

// receiver returns the name of a method's receiver type, "" for a function.
func receiver(d *ast.FuncDecl) string {
	if d.Recv == nil || len(d.Recv.List) == 0 {
		return ""
	}
	typ := d.Recv.List[0].Type
	if s, ok := typ.(*ast.StarExpr); ok {
		typ = s.X
	}
	switch x := typ.(type) {
	case *ast.Ident:
		return x.Name
	case *ast.IndexExpr: // a generic type
		if id, ok := x.X.(*ast.Ident); ok {
			return id.Name
		}
	}
	return "?"
}
