package domain

import (
	"encoding/xml"

	"vmnet/internal/ownership"
)

// Namespace is vmnet's XML namespace in a domain's <metadata>.
const Namespace = ownership.Namespace

// Owner is the owner attribute vmnet writes; a domain without it is not vmnet's.
const Owner = ownership.Owner

// Meta is vmnet's record on a domain it made: that it is vmnet's, which
// spec it came from, and every file vmnet made for it, so `down` can clean
// up even after an `up` that was killed half way. Lab is the lab that made
// the VM ("" for none, and for every domain made before labs).
type Meta struct {
	XMLName xml.Name `xml:"https://vmnet.dev/xmlns/1 vm" json:"-"`
	Owner   string   `xml:"owner,attr" json:"owner"`
	Spec    string   `xml:"spec,attr" json:"spec"`
	Hash    string   `xml:"hash,attr" json:"hash"`
	Lab     string   `xml:"lab,attr,omitempty" json:"lab,omitempty"`
	Dir     string   `xml:"dir" json:"dir"`
	Files   []File   `xml:"file" json:"files"`
}

func (m Meta) marshal() (string, error) { return ownership.Encode("vm", m) }

// ParseMetadata finds vmnet's record in a domain's XML, or takes the
// element alone as virDomainGetMetadata returns it (libvirt strips the
// namespace there, having selected the element by it). ok is false when
// there is none, or it does not say vmnet owns the domain.
func ParseMetadata(domainXML string) (Meta, bool) {
	var m Meta
	if !ownership.Find(domainXML, "vm", true, &m) || m.Owner != Owner {
		return Meta{}, false
	}
	return m, true
}
