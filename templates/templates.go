// Package templates holds the files vmnet ships inside its binary: the
// built-in VM profiles (profiles/*.yaml), the built-in labs
// (labs/*.lab.yaml) and the capstone lab's guest files.
package templates

import (
	"embed"
	"errors"
	"io/fs"
	"path"
	"sort"
	"strings"
)

//go:embed profiles/*.yaml
var profiles embed.FS

//go:embed labs/*.lab.yaml
var labs embed.FS

// Capstone holds the capstone lab's files: capstone/guest/ is the tree the
// capstone image copies into the guest's root, and what cloud-init writes
// into a stock cloud image instead.
//
//go:embed all:capstone/guest capstone/cloud-init capstone/container-packages.txt capstone/enable.txt
var Capstone embed.FS

// ErrNoLab is matched (errors.Is) when a built-in lab does not exist.
var ErrNoLab = errors.New("no such built-in lab")

// Lab returns the YAML of the built-in lab name (labs/NAME.lab.yaml).
func Lab(name string) ([]byte, error) {
	if name == "" || strings.ContainsAny(name, `/\`) || !fs.ValidPath(name) {
		return nil, ErrNoLab
	}
	b, err := labs.ReadFile(path.Join("labs", name+".lab.yaml"))
	if err != nil {
		return nil, ErrNoLab
	}
	return b, nil
}

// LabNames lists the built-in labs, sorted.
func LabNames() []string {
	entries, _ := labs.ReadDir("labs") // embedded: cannot fail
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".lab.yaml"); ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// ErrNoProfile is matched (errors.Is) when a built-in profile does not exist.
var ErrNoProfile = errors.New("no such built-in profile")

// Profile returns the YAML of the built-in profile name.
func Profile(name string) ([]byte, error) {
	// fs.ValidPath refuses "..", "a/b" and the like, so a name can only
	// reach a file directly under profiles/.
	if name == "" || strings.ContainsAny(name, `/\`) || !fs.ValidPath(name) {
		return nil, ErrNoProfile
	}
	b, err := profiles.ReadFile(path.Join("profiles", name+".yaml"))
	if err != nil {
		return nil, ErrNoProfile
	}
	return b, nil
}

// ProfileNames lists the built-in profiles, sorted.
func ProfileNames() []string {
	entries, _ := profiles.ReadDir("profiles") // embedded: cannot fail
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".yaml"); ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}
