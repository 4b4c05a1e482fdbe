package ownership

import "testing"

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
