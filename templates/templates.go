// Package templates holds the files vmnet ships inside its binary: the
// built-in VM profiles (profiles/*.yaml) and the capstone lab's guest files.
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

// Capstone holds the capstone lab's files: capstone/guest/ is the tree the
// capstone image copies into the guest's root, and what cloud-init writes
// into a stock cloud image instead.
//
//go:embed all:capstone/guest capstone/cloud-init capstone/container-packages.txt capstone/enable.txt
var Capstone embed.FS

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
