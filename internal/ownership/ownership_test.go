package ownership

import (
	"encoding/xml"
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
