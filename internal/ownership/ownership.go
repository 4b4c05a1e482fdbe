// Package ownership writes and reads vmnet's ownership mark in the
// <metadata> of the libvirt objects it makes, domains and networks alike.
// One encoder writes one shape, an element in vmnet's namespace with an
// owner attribute (<vm xmlns="NS" owner="vmnet" .../>, <network xmlns="NS"
// owner="vmnet"/>); one decoder reads it by namespace URI (never by prefix
// or text), so a definition libvirt has reformatted still counts, and so do
// the shapes older vmnet versions wrote. An object a lab made carries the
// lab's name too (lab="NAME", Mark.Lab), so the lab's down finds it.
package ownership

import (
	"encoding/xml"
	"fmt"
	"strings"

	"vmnet/internal/valid"
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

// Mark is vmnet's element with only the ownership mark in it, named by
// XMLName's Local (in Namespace); richer records (a domain's) have the
// same XMLName and owner attribute and more.
//
// Lab is the lab that made the object ("" for none): `vmnet lab down NAME`
// finds what a lab made by it, after the lab's file is gone too. A mark
// without the attribute (every mark before labs) reads as Lab "".
type Mark struct {
	XMLName xml.Name
	Owner   string `xml:"owner,attr"`
	Lab     string `xml:"lab,attr,omitempty"`
}

// NewMark is the mark for an object of kind local ("network").
func NewMark(local string) Mark {
	return Mark{XMLName: xml.Name{Space: Namespace, Local: local}, Owner: Owner}
}

// Encode renders v as the element vmnet puts in an object's <metadata>.
// v is a struct whose XMLName is local in Namespace and whose owner
// attribute is Owner (Mark, or a record with the same two fields); Encode
// refuses anything Owned would not read back as vmnet's, so every object
// vmnet writes carries the same shape.
func Encode(local string, v any) (string, error) {
	b, err := xml.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode vmnet metadata: %w", err)
	}
	if !Owned(string(b), local, false) {
		return "", fmt.Errorf("encode vmnet metadata: %s is not a <%s> element in %s with owner %q", b, local, Namespace, Owner)
	}
	return string(b), nil
}

// Owned reports whether x holds a local element in vmnet's namespace whose
// owner attribute is Owner (bare as for Find).
func Owned(x, local string, bare bool) bool {
	_, ok := ReadMark(x, local, bare)
	return ok
}

// ReadMark is the mark of the local element in x (bare as for Find); ok is
// false when there is none or it does not say vmnet owns the object.
func ReadMark(x, local string, bare bool) (m Mark, ok bool) {
	if !Find(x, local, bare, &m) || m.Owner != Owner {
		return Mark{}, false
	}
	return m, true
}

// MaxLab is the longest lab name: a DNS label, like a VM's name.
const MaxLab = valid.MaxVMName

// CheckLab checks a lab tag before it goes on an object: "" (no lab) or a
// lab name under valid.LabName (the rule for VM names: 1 to 63 lowercase
// letters, digits and '-', starting with a letter and not ending with '-').
// It must survive every place a tag lives: XML attributes, JSON and a
// bridge's alias, whose fields are separated by spaces and split at '='.
func CheckLab(field, lab string) error {
	if lab == "" {
		return nil
	}
	return valid.LabName(field, lab)
}
