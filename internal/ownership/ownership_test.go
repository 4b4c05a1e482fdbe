package ownership

import (
	"encoding/xml"
	"strings"
	"testing"
)

// Both shapes vmnet has written are found by namespace: a domain's <vm
// owner=...> element and a network's <owner>vmnet</owner>; the bare form
// only when asked for.
func TestFind(t *testing.T) {
	type vm struct {
		Owner string `xml:"owner,attr"`
	}
	for _, tc := range []struct {
		name, x, local string
		bare, want     bool
	}{
		{"domain", `<metadata><vm xmlns="https://vmnet.dev/xmlns/1" owner="vmnet"/></metadata>`, "vm", false, true},
		{"domain, bare from virDomainGetMetadata", `<vm owner="vmnet"/>`, "vm", true, true},
		{"bare not asked for", `<vm owner="vmnet"/>`, "vm", false, false},
		{"network", `<vmnet:owner xmlns:vmnet="https://vmnet.dev/xmlns/1">vmnet</vmnet:owner>`, "owner", false, true},
		{"other namespace", `<x:vm xmlns:x="urn:x" owner="vmnet"/>`, "vm", true, false},
		{"malformed", `<vm xmlns="https://vmnet.dev/xmlns/1" owner="vmnet">`, "vm", false, false},
	} {
		var v vm
		var s string
		var got bool
		if tc.local == "vm" {
			got = Find(tc.x, tc.local, tc.bare, &v) && v.Owner == Owner
		} else {
			got = Find(tc.x, tc.local, tc.bare, &s) && s == Owner
		}
		if got != tc.want {
			t.Errorf("%s: found %v, want %v", tc.name, got, tc.want)
		}
	}
}

// Encode writes the mark so that Owned reads it back, and refuses a value
// that is not vmnet's element of that name.
func TestEncode(t *testing.T) {
	x, err := Encode("network", NewMark("network"))
	if err != nil {
		t.Fatal(err)
	}
	if want := `<network xmlns="https://vmnet.dev/xmlns/1" owner="vmnet"></network>`; x != want {
		t.Errorf("Encode = %s, want %s", x, want)
	}
	if !Owned(x, "network", false) || Owned(x, "vm", false) {
		t.Errorf("Owned(%s) is not true for network only", x)
	}
	other := NewMark("network")
	other.Owner = "alice"
	for _, tc := range []struct {
		name  string
		local string
		v     any
	}{
		{"other owner", "network", other},
		{"other name", "vm", NewMark("network")},
		{"no namespace", "network", Mark{XMLName: xml.Name{Local: "network"}, Owner: Owner}},
	} {
		if x, err := Encode(tc.local, tc.v); err == nil {
			t.Errorf("%s: Encode = %s, want an error", tc.name, x)
		}
	}
}

// A lab's mark carries the lab and reads back with it; a mark without the
// attribute (every mark before labs) still reads as owned, with no lab.
func TestMarkLab(t *testing.T) {
	m := NewMark("network")
	m.Lab = "office"
	x, err := Encode("network", m)
	if err != nil {
		t.Fatal(err)
	}
	if want := `<network xmlns="https://vmnet.dev/xmlns/1" owner="vmnet" lab="office"></network>`; x != want {
		t.Errorf("Encode = %s, want %s", x, want)
	}
	got, ok := ReadMark(x, "network", false)
	if !ok || got.Lab != "office" {
		t.Errorf("ReadMark(%s) = %+v, %v; want lab office", x, got, ok)
	}
	for _, old := range []string{
		`<network xmlns="https://vmnet.dev/xmlns/1" owner="vmnet"/>`,
		`<metadata><network xmlns="https://vmnet.dev/xmlns/1" owner="vmnet"></network></metadata>`,
	} {
		got, ok := ReadMark(old, "network", false)
		if !ok || got.Lab != "" {
			t.Errorf("ReadMark(%s) = %+v, %v; want owned, no lab", old, got, ok)
		}
	}
	if _, ok := ReadMark(`<network xmlns="https://vmnet.dev/xmlns/1" owner="alice" lab="office"/>`, "network", false); ok {
		t.Error("a mark of another owner reads as vmnet's")
	}
	if x, err := Encode("network", NewMark("network")); err != nil || strings.Contains(x, "lab") {
		t.Errorf("a mark without a lab encodes as %s, %v; want no lab attribute", x, err)
	}
}

func TestCheckLab(t *testing.T) {
	for lab, ok := range map[string]bool{"": true, "office": true, "lab-2": true, "a": true, strings.Repeat("a", 63): true,
		strings.Repeat("a", 64): false, "Office": false, "2lab": false, "lab-": false, "my lab": false, "a=b": false, "lab.x": false} {
		err := CheckLab("lab", lab)
		if (err == nil) != ok {
			t.Errorf("CheckLab(%q) = %v, want ok %v", lab, err, ok)
		}
		if err != nil && !strings.Contains(err.Error(), "lab") {
			t.Errorf("CheckLab(%q) = %v; the error does not name the field", lab, err)
		}
	}
}
