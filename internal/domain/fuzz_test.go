package domain

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzParseMetadata: ParseMetadata reads every domain's XML on a libvirt
// connection, most of them not vmnet's. It must not panic; what it accepts
// says vmnet owns the domain, and the record, written again as vmnet writes
// it, reads back the same.
func FuzzParseMetadata(f *testing.F) {
	golden, _ := filepath.Glob("testdata/*.xml")
	for _, p := range golden {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(string(b))
		}
	}
	m := Meta{Owner: Owner, Spec: "tiny", Hash: "0123456789abcdef", Dir: "/var/lib/vmnet/vms/tiny",
		Files: []File{{KindConsoleLog, "/var/lib/vmnet/vms/tiny/console.log"}}}
	if x, err := m.marshal(); err == nil {
		f.Add(x)
		f.Add("<domain type='qemu'><name>tiny</name><metadata>" + x + "</metadata></domain>")
	}
	f.Add(`<vm owner="vmnet" spec="tiny" hash="abc"><dir>/d</dir><file kind="console-log" path="/d/console.log"/></vm>`)
	f.Add(`<vmnet:vm xmlns:vmnet="https://vmnet.dev/xmlns/1" owner="vmnet"><vmnet:dir>a&amp;b</vmnet:dir></vmnet:vm>`)
	f.Add(`<domain><metadata><vm xmlns="https://vmnet.dev/xmlns/1" owner="alice"/></metadata></domain>`)
	f.Add(`<domain><metadata><vm xmlns="https://vmnet.dev/xmlns/1" owner="vmnet"`)
	f.Fuzz(func(t *testing.T, doc string) {
		got, ok := ParseMetadata(doc)
		if !ok {
			if !reflect.DeepEqual(got, Meta{}) {
				t.Fatalf("ParseMetadata(%q) = %+v with ok=false", doc, got)
			}
			return
		}
		if got.Owner != Owner {
			t.Fatalf("ParseMetadata(%q) accepted owner %q", doc, got.Owner)
		}
		x, err := got.marshal()
		if err != nil {
			t.Fatalf("marshal %+v: %v", got, err)
		}
		again, ok := ParseMetadata(x)
		again.XMLName = got.XMLName // the element's name, not vmnet's record
		if !ok || !reflect.DeepEqual(again, got) {
			t.Fatalf("ParseMetadata(%q) = %+v; written again as %s it reads %+v, %v", doc, got, x, again, ok)
		}
	})
}
