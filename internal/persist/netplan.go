package persist

import (
	"bytes"
	"fmt"
	"path"

	"gopkg.in/yaml.v3"
)

// netplanMode keeps netplan quiet: it warns about world-readable files
// because they may hold Wi-Fi or 802.1X secrets.
const netplanMode = 0o600

// The netplan v2 schema subset vmnet writes. The renderer key is left out on
// purpose: the bridge then follows the host's global renderer (networkd on
// servers, NetworkManager on desktops), like the rest of its configuration.
type (
	npFile struct {
		Network npNetwork `yaml:"network"`
	}
	npNetwork struct {
		Version   int                   `yaml:"version"`
		Ethernets map[string]npEthernet `yaml:"ethernets,omitempty"`
		Bridges   map[string]npBridge   `yaml:"bridges"`
	}
	npEthernet struct {
		DHCP4 bool `yaml:"dhcp4"`
		DHCP6 bool `yaml:"dhcp6"`
		MTU   int  `yaml:"mtu,omitempty"`
	}
	npBridge struct {
		Interfaces []string  `yaml:"interfaces,omitempty,flow"`
		MACAddress string    `yaml:"macaddress"`
		MTU        int       `yaml:"mtu,omitempty"`
		DHCP4      bool      `yaml:"dhcp4"`
		DHCP6      bool      `yaml:"dhcp6"`
		AcceptRA   *bool     `yaml:"accept-ra,omitempty"`
		Addresses  []string  `yaml:"addresses,omitempty"`
		Routes     []npRoute `yaml:"routes,omitempty"`
		Parameters npParams  `yaml:"parameters"`
	}
	npRoute struct {
		To  string `yaml:"to"`
		Via string `yaml:"via"`
	}
	npParams struct {
		STP bool `yaml:"stp"`
	}
)

// renderNetplan writes one YAML file. The "60-" prefix sorts after the
// files installers and cloud-init write (00-installer-config, 50-cloud-init),
// and netplan merges files in that order, so the uplink's entry here
// (no DHCP, no addresses) overrides the NIC's earlier definition.
func renderNetplan(p *plan) ([]File, error) {
	if p.VLANFiltering {
		// netplan (0.106 here, and later releases too) has no bridge VLAN
		// filtering key, and writing the file without it would silently
		// drop the setting at the next boot.
		return nil, fmt.Errorf("VLANFiltering: netplan cannot configure bridge VLAN filtering; " +
			"persist with networkd or networkmanager instead (whichever is netplan's renderer on this host)")
	}
	br := npBridge{
		MACAddress: p.mac,
		MTU:        p.MTU,
		DHCP4:      p.DHCP4,
		Parameters: npParams{STP: p.STP},
	}
	if p.lab {
		no := false
		br.AcceptRA = &no
	}
	for _, a := range append(p.addr4, p.addr6...) {
		br.Addresses = append(br.Addresses, a.String())
	}
	for _, gw := range []string{addrString(p.gw4), addrString(p.gw6)} {
		if gw != "" {
			br.Routes = append(br.Routes, npRoute{To: "default", Via: gw})
		}
	}
	doc := npFile{Network: npNetwork{Version: 2, Bridges: map[string]npBridge{p.Name: br}}}
	if p.Uplink != "" {
		br.Interfaces = []string{p.Uplink}
		doc.Network.Bridges[p.Name] = br
		doc.Network.Ethernets = map[string]npEthernet{p.Uplink: {MTU: p.MTU}}
	}

	var buf bytes.Buffer
	buf.WriteString(header(p.Name))
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encode netplan YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode netplan YAML: %w", err)
	}
	return []File{{
		Path: path.Join(netplanDir, "60-vmnet-"+p.Name+".yaml"), Mode: netplanMode, Content: buf.Bytes(),
	}}, nil
}
