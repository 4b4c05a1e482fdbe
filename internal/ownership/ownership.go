// Package ownership reads vmnet's ownership mark in the <metadata> of the
// libvirt objects it makes, domains and networks alike: one decoder, by
// namespace URI (never by prefix or text), so a definition libvirt has
// reformatted still counts, and so do the shapes older vmnet versions wrote.
package ownership

import (
	"encoding/xml"
	"strings"
)

// Namespace is vmnet's XML namespace in libvirt metadata.
const Namespace = "https://vmnet.dev/xmlns/1"

// Owner is the owner vmnet writes; an object without it is not vmnet's.
const Owner = "vmnet"

// Find decodes into v the first element named local in vmnet's namespace in
// x (an object's whole XML, or the content of its <metadata>). With bare, a
// root element without a namespace counts too: virDomainGetMetadata returns
// vmnet's element with the namespace stripped, having selected it by it.
// It is false when there is none, or it does not decode.
func Find(x, local string, bare bool, v any) bool {
	dec := xml.NewDecoder(strings.NewReader(x))
	root := true
	for {
		tok, err := dec.Token()
		if err != nil { // io.EOF, or XML that does not parse
			return false
		}
		se, isStart := tok.(xml.StartElement)
		if !isStart {
			continue
		}
		ours := se.Name.Space == Namespace || bare && root && se.Name.Space == ""
		root = false
		if !ours || se.Name.Local != local {
			continue
		}
		se.Name.Space = Namespace // so a v with a namespaced XMLName matches
		return dec.DecodeElement(v, &se) == nil
	}
}
