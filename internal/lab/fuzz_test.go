package lab

import (
	"errors"
	"testing"

	"vmnet/internal/errs"
	"vmnet/templates"
)

// FuzzParse: Parse never panics; a refusal is always invalid input (exit
// 2) with a field path; a lab it accepts (defaults filled in) validates
// again, and draws in every text format.
func FuzzParse(f *testing.F) {
	f.Add(readOffice(f))
	f.Add("name: a\nnodes: {b: {image: tiny, nics: [{net: n}]}}\nnetworks: {n: {kind: nat, cidr: 10.0.0.0/24}}\n")
	f.Add("name: a\nnetworks: {br-x: {kind: bridge, address: 10.1.0.1/16}}\nnodes: {b: {image: tiny, nics: [{net: br-x, address: 10.1.0.9/16}]}}\nchecks: [{from: host, to: b, dns: x.y}]\n")
	f.Add("nodes: &a {x: *a}\n")
	for _, name := range templates.LabNames() {
		if b, err := templates.Lab(name); err == nil {
			f.Add(string(b)) // containers, pods, macvtap
		}
	}
	f.Fuzz(func(t *testing.T, src string) {
		l, err := Parse([]byte(src), "f.lab.yaml")
		if err != nil {
			var fe *errs.FieldError
			if !errors.Is(err, errs.ErrInvalid) || !errors.As(err, &fe) || fe.Field == "" {
				t.Fatalf("refusal %v is not a field error of invalid input", err)
			}
			return
		}
		if es := l.validate(); len(es) > 0 {
			t.Fatalf("accepted lab does not re-validate: %v", es)
		}
		for _, format := range []string{FormatDOT, FormatMermaid} {
			if _, err := Graph(l, nil, format); err != nil {
				t.Fatalf("graph %s of an accepted lab: %v", format, err)
			}
		}
	})
}
