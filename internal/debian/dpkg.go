package debian

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// ReadStatus returns the installed packages of a dpkg status file: NAME
// (and NAME:ARCH) → VERSION.
func ReadStatus(file string) (map[string]string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read the installed system's package list: %w", err)
	}
	out := map[string]string{}
	for _, s := range parseStanzas(string(data)) {
		if !strings.HasSuffix(s["Status"], " installed") {
			continue
		}
		out[s["Package"]] = s["Version"]
		out[s["Package"]+":"+s["Architecture"]] = s["Version"]
	}
	return out, nil
}

// PruneArchives removes from a directory of kept .deb files every one that
// is not installed in status, so it holds one build's packages, not all.
func PruneArchives(dir string, status map[string]string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".deb")
		f := strings.Split(name, "_")
		if !ok || len(f) != 3 {
			continue
		}
		version, err := url.PathUnescape(f[1])
		if err == nil && (status[f[0]+":"+f[2]] == version || status[f[0]] == version && f[2] == "all") {
			continue
		}
		os.Remove(filepath.Join(dir, e.Name()))
	}
}
