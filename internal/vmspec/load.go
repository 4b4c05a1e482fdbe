package vmspec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"vmnet/internal/errs"
	"vmnet/templates"
)

// MaxSpecSize bounds a spec file; real ones are a few KiB.
const MaxSpecSize = 1 << 20

// maxErrors bounds the problems reported for one document.
const maxErrors = 10

// Load reads a spec: a built-in profile by name (a word without '/' and
// without .yaml/.yml, such as tiny), or a YAML file by path. It fills in the
// defaults and validates; paths in a file are relative to the file.
func Load(nameOrPath string) (Spec, error) {
	if IsProfileName(nameOrPath) {
		data, err := templates.Profile(nameOrPath)
		if err != nil {
			return Spec{}, &ProfileError{Name: nameOrPath}
		}
		s, err := Parse(data, "")
		if err != nil {
			return Spec{}, fmt.Errorf("built-in profile %s: %w", nameOrPath, err)
		}
		return s, nil
	}
	f, err := os.Open(nameOrPath)
	if err != nil {
		return Spec{}, fileError(nameOrPath, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSpecSize+1))
	if err != nil {
		return Spec{}, fileError(nameOrPath, err)
	}
	if len(data) > MaxSpecSize {
		return Spec{}, fileError(nameOrPath, fmt.Errorf("larger than %d bytes", MaxSpecSize))
	}
	abs, err := filepath.Abs(nameOrPath)
	if err != nil {
		return Spec{}, fileError(nameOrPath, err)
	}
	s, err := Parse(data, filepath.Dir(abs))
	if err != nil {
		return Spec{}, fmt.Errorf("%s: %w", nameOrPath, err)
	}
	return s, nil
}

// IsProfileName reports whether Load takes s for a built-in profile's name
// rather than a file path.
func IsProfileName(s string) bool {
	return s != "" && !strings.ContainsRune(s, '/') && !strings.HasSuffix(s, ".yaml") && !strings.HasSuffix(s, ".yml")
}

// ProfileError says a built-in profile does not exist.
type ProfileError struct{ Name string }

func (e *ProfileError) Error() string {
	return fmt.Sprintf("no built-in profile %q (built-in: %s)", e.Name, strings.Join(templates.ProfileNames(), ", "))
}

// Hint says how to name a file instead.
func (e *ProfileError) Hint() string {
	return "name a built-in profile, or give a spec file as a path (./" + e.Name + ".yaml)"
}

// Is makes errors.Is(err, errs.ErrInvalid) true: a wrong name is bad input.
func (e *ProfileError) Is(target error) bool { return target == errs.ErrInvalid }

// fileError says the spec file at path could not be read, with the hint
// that names what a spec argument may be.
func fileError(path string, err error) error {
	return &errs.FileError{What: "spec", Path: path, Err: err,
		Fix: "give a spec file that exists, or a built-in profile name (" + strings.Join(templates.ProfileNames(), ", ") + ")"}
}

// Parse parses one YAML spec, fills in the defaults and validates it.
// Relative paths in it (image, provision.files[].source) are taken relative
// to dir; with dir "" they stay relative and fail validation.
func Parse(data []byte, dir string) (Spec, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return Spec{}, Errors{syntaxError(err)}
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return Spec{}, Errors{{Form: errs.PathForm, Field: "spec", Problem: "is empty", Fix: "write at least name, image and nics; see the built-in profile tiny"}}
	}
	w := walker{lines: map[string]int{}, root: "spec"}
	w.walk(root.Content[0], reflect.TypeFor[Spec](), "", 0)
	if len(w.errs) > 0 {
		return Spec{}, w.errs
	}
	var s Spec
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true) // the walker already refused unknown fields; this is the backstop
	if err := dec.Decode(&s); err != nil {
		fe := syntaxError(err)
		fe.Problem = "cannot be decoded: " + strings.TrimPrefix(err.Error(), "yaml: ")
		return Spec{}, Errors{fe}
	}
	if dir != "" {
		s.resolvePaths(dir)
	}
	s.Defaults()
	if err := s.Validate(); err != nil {
		var es Errors
		if errors.As(err, &es) {
			for _, e := range es {
				e.Line = w.line(e.Field)
			}
		}
		return Spec{}, err
	}
	return s, nil
}

// CheckYAML checks the YAML document data against the Go type t the way
// Parse checks a spec, before anything is decoded: every unknown key (with
// the closest known one), every value of the wrong shape or unparsable
// size, address or duration, with its field path and line. Maps are walked
// key by key, with paths like networks.lan.cidr. root names the document in
// messages ("lab"). It returns the line of every field path met, for
// errors found later, and the errors; an empty document is an error too.
func CheckYAML(data []byte, t reflect.Type, root string) (lines map[string]int, problems Errors) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		fe := syntaxError(err)
		fe.Field = root
		return nil, Errors{fe}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, Errors{{Form: errs.PathForm, Field: root, Problem: "is empty", Fix: "write at least name and nodes"}}
	}
	w := walker{lines: map[string]int{}, root: root}
	w.walk(doc.Content[0], t, "", 0)
	return w.lines, w.errs
}

// LineOf returns the line of field in lines (from CheckYAML), or of the
// nearest enclosing field there; 0 when none is known.
func LineOf(lines map[string]int, field string) int {
	return (&walker{lines: lines}).line(field)
}

// yamlLine finds the line in yaml.v3's syntax errors, which have no
// structured form: "yaml: line 3: did not find expected key".
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError turns a YAML syntax error into a field error of the whole
// spec, with its line: bad input like any other, so exit code 2.
func syntaxError(err error) *FieldError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	return &FieldError{Form: errs.PathForm, Field: "spec", Problem: "is not valid YAML: " + msg, Line: line,
		Fix: "indent with spaces, not tabs, and quote values that contain ': ' or start with '[', '{', '*', '&' or '-'"}
}

// resolvePaths makes relative file references absolute against dir.
func (s *Spec) resolvePaths(dir string) {
	if IsImagePath(s.Image) && !filepath.IsAbs(s.Image) {
		s.Image = filepath.Join(dir, s.Image)
	}
	for i, f := range s.Provision.Files {
		if f.Source != "" && !filepath.IsAbs(f.Source) {
			s.Provision.Files[i].Source = filepath.Join(dir, f.Source)
		}
	}
}

// walker checks a YAML tree against a Go type before decoding, so every
// unknown field and every malformed value is reported with its path and
// line, instead of yaml's first error with the Go type's name in it.
type walker struct {
	errs   Errors
	lines  map[string]int // field path -> line, for errors found later by Validate
	root   string         // the document's name in messages: "spec"
	visits int            // nodes walked, aliases expanded: bounds "billion laughs" documents
}

// maxVisits bounds the nodes one spec may have, counting alias expansions.
const maxVisits = 10000

// scalarType is a Go type written as one YAML scalar, with its parser.
type scalarType struct {
	parse      func(string) error
	allowsMaps bool // Ready: a word, or a mapping checked field by field
}

var scalarTypes = map[reflect.Type]scalarType{
	reflect.TypeFor[Size]():         {parse: func(s string) error { _, err := ParseSize(s); return err }},
	reflect.TypeFor[Duration]():     {parse: func(s string) error { _, err := ParseDuration(s); return err }},
	reflect.TypeFor[FileMode]():     {parse: func(s string) error { _, err := ParseFileMode(s); return err }},
	reflect.TypeFor[Ready]():        {parse: func(s string) error { _, err := parseReadyWord(s); return err }, allowsMaps: true},
	reflect.TypeFor[netip.Prefix](): {parse: parsePrefix},
	reflect.TypeFor[netip.Addr]():   {parse: parseAddr},
}

func parsePrefix(s string) error {
	if _, err := netip.ParsePrefix(s); err == nil {
		return nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		bits := 24
		if a.Is6() {
			bits = 64
		}
		return &FieldError{Form: errs.PathForm, Value: s, Problem: "has no prefix length", Fix: fmt.Sprintf("write it with its prefix length, for example %s/%d", a, bits)}
	}
	return &FieldError{Form: errs.PathForm, Value: s, Problem: "is not an address in CIDR form", Fix: "write an address with its prefix length, for example 192.0.2.10/24"}
}

func parseAddr(s string) error {
	if _, err := netip.ParseAddr(s); err != nil {
		return &FieldError{Form: errs.PathForm, Value: s, Problem: "is not an IP address", Fix: "write an address without prefix length, for example 192.0.2.1"}
	}
	return nil
}

func (w *walker) fail(n *yaml.Node, field, value, problem, fix string) {
	if field == "" {
		field = w.root
	}
	if len(w.errs) < maxErrors {
		w.errs = append(w.errs, &FieldError{Form: errs.PathForm, Field: field, Value: value, Problem: problem, Fix: fix, Line: n.Line})
	}
}

// line returns the line of field, or of the nearest enclosing field found.
func (w *walker) line(field string) int {
	for field != "" {
		if l, ok := w.lines[field]; ok {
			return l
		}
		i := strings.LastIndexAny(field, ".[")
		if i < 0 {
			break
		}
		field = field[:i]
	}
	return 0
}

// kindName says what YAML shape a Go type needs, for messages.
func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Struct:
		return "a mapping (key: value lines)"
	case reflect.Slice:
		return "a list (lines starting with '- ')"
	case reflect.Int:
		return "a whole number"
	case reflect.Bool:
		return "true or false"
	}
	return "a single value"
}

func shapeName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return strconv.Quote(n.Value)
}

// walk checks node n, found at path, against type t, and records the line
// of every path it meets. It follows aliases, so the visit budget and the
// depth limit are what stop a document that expands without end.
func (w *walker) walk(n *yaml.Node, t reflect.Type, path string, depth int) {
	w.visits++
	if w.visits == maxVisits+1 {
		w.fail(n, path, "", fmt.Sprintf("makes the spec larger than %d values (with aliases expanded)", maxVisits), "write a smaller spec, with fewer aliases")
	}
	if w.visits > maxVisits {
		return
	}
	if depth > 20 { // only aliases can nest this deep in a spec
		w.fail(n, path, "", "nests too deeply", "write the spec without recursive aliases")
		return
	}
	if n.Kind == yaml.AliasNode {
		w.walk(n.Alias, t, path, depth+1)
		return
	}
	if path != "" {
		if _, ok := w.lines[path]; !ok {
			w.lines[path] = n.Line
		}
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // left out: the zero value, then defaults
	}
	if st, ok := scalarTypes[t]; ok && !(st.allowsMaps && n.Kind == yaml.MappingNode) {
		w.walkScalarType(n, st, path)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		w.walkStruct(n, t, path, depth)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.fail(n, path, "", "is "+shapeName(n)+"; it must be "+kindName(t), "")
			return
		}
		for i, c := range n.Content {
			w.walk(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), depth+1)
		}
	case reflect.Map:
		w.walkMap(n, t, path, depth)
	default:
		w.checkPlain(n, t, path)
	}
}

// walkMap checks a mapping of names to values of t's element type (the
// networks and nodes of a lab): each key must be a single word, each value
// is walked under path.key.
func (w *walker) walkMap(n *yaml.Node, t reflect.Type, path string, depth int) {
	if n.Kind != yaml.MappingNode {
		w.fail(n, path, "", "is "+shapeName(n)+"; it must be a mapping of names (name: value lines)", "write one entry per line, the name, a colon and its fields: web: {image: tiny}")
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		if key.Kind != yaml.ScalarNode {
			w.fail(key, path, "", "has a key that is "+shapeName(key)+"; keys here are names", "write each entry as name: value")
			continue
		}
		if first, dup := seen[key.Value]; dup {
			w.fail(key, joinPath(path, key.Value), "", fmt.Sprintf("is declared twice (first at line %d)", first), "give each entry its own name, or merge the two")
			continue
		}
		seen[key.Value] = key.Line
		w.walk(val, t.Elem(), joinPath(path, key.Value), depth+1)
	}
}

// walkScalarType checks a value of one of vmnet's own scalar types (a
// size, a MAC, a prefix...) with its parser, so the error is the parser's,
// with the field's path and line added.
func (w *walker) walkScalarType(n *yaml.Node, st scalarType, path string) {
	if n.Kind != yaml.ScalarNode {
		w.fail(n, path, "", "is "+shapeName(n)+"; it must be a single value", "write one value on the line, for example "+path+": ...")
		return
	}
	if err := st.parse(n.Value); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			w.fail(n, path, fe.Value, fe.Problem, fe.Fix)
		} else {
			w.fail(n, path, n.Value, err.Error(), "")
		}
	}
}

// walkStruct checks a mapping against struct t: each key must be one of
// its YAML field names (merge keys bring in their mappings' fields), and
// each value is walked against its field's type. It goes on after an
// unknown key, so one run reports them all.
func (w *walker) walkStruct(n *yaml.Node, t reflect.Type, path string, depth int) {
	if n.Kind != yaml.MappingNode {
		w.fail(n, path, "", "is "+shapeName(n)+"; it must be "+kindName(t), "")
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		if key.Kind == yaml.ScalarNode && key.Value == "<<" && key.ShortTag() == "!!merge" {
			w.walkMerge(val, t, path, depth+1)
			continue
		}
		fieldPath := joinPath(path, key.Value)
		f, ok := fieldByYAMLName(t, key.Value)
		if !ok {
			w.fail(key, fieldPath, "", unknownProblem(t, key.Value), "fields here: "+strings.Join(yamlNames(t), ", "))
			continue
		}
		w.walk(val, f.Type, fieldPath, depth+1)
	}
}

// checkPlain checks a whole number, a boolean or a string by its YAML tag,
// so a value of the wrong kind is named with its path and line here rather
// than by the decoder.
func (w *walker) checkPlain(n *yaml.Node, t reflect.Type, path string) {
	switch t.Kind() {
	case reflect.Int:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			w.fail(n, path, scalarValue(n), "is not a whole number", "write a number such as 2")
		} else if _, err := strconv.ParseInt(n.Value, 0, 32); err != nil {
			w.fail(n, path, n.Value, "is out of range", "write a small number such as 2")
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			w.fail(n, path, scalarValue(n), "is not true or false", "write true or false")
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			w.fail(n, path, "", "is "+shapeName(n)+"; it must be a single value", "quote the text if it contains ': ' or starts with '-', '[' or '{'")
		}
	}
}

// walkMerge checks the mappings merged into a struct with "<<: *alias".
func (w *walker) walkMerge(n *yaml.Node, t reflect.Type, path string, depth int) {
	if n.Kind == yaml.SequenceNode {
		for _, c := range n.Content {
			w.walk(c, t, path, depth+1)
		}
		return
	}
	w.walk(n, t, path, depth+1)
}

func scalarValue(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		return n.Value
	}
	return ""
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// fieldByYAMLName finds the struct field with the yaml tag name. A field
// tagged yaml:"-" (Spec.Lab) has no name in YAML: not even the key "-".
func fieldByYAMLName(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if f.IsExported() && yamlName(f) == name && name != "-" {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "" {
		return strings.ToLower(f.Name)
	}
	return name
}

func yamlNames(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		if f := t.Field(i); f.IsExported() && yamlName(f) != "-" {
			out = append(out, yamlName(f))
		}
	}
	sort.Strings(out)
	return out
}

// unknownProblem says a key is unknown, with the closest known name when it
// looks like a typo of one.
func unknownProblem(t reflect.Type, key string) string {
	if best := Closest(key, yamlNames(t)); best != "" {
		return fmt.Sprintf("is not a known field (did you mean %s?)", best)
	}
	return "is not a known field"
}

// editDistance is the Levenshtein distance, for typo suggestions.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Closest is the name among names nearest to word, when word looks like a
// typo of it (edit distance below 3); "" when none does.
func Closest(word string, names []string) string {
	best, bestDist := "", 3
	for _, name := range names {
		if d := editDistance(strings.ToLower(word), strings.ToLower(name)); d < bestDist {
			best, bestDist = name, d
		}
	}
	return best
}
