package lab

import (
	"errors"
	"strings"
	"testing"

	"vmnet/internal/errs"
)

// TestContainerRefs: checks may start or end in a container of a node's
// app; anything else is refused with the file's line, the field and the
// choices.
func TestContainerRefs(t *testing.T) {
	ok := []struct{ name, old, new string }{
		{"from container", "{from: client, to: web:lan, ping: true}", "{from: web/api, to: web/db, tcp: 5432}"},
		{"to container", "{from: client, to: web:lan, ping: true}", "{from: web, to: web/proxy, ping: true}"},
		{"container to node", "{from: client, to: web:lan, ping: true}", "{from: web/proxy, to: client, ping: true}"},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse([]byte(edit(t, tc.old, tc.new)), "office.lab.yaml"); err != nil {
				t.Fatal(err)
			}
		})
	}
	bad := []struct{ name, old, new, want, fix string }{
		{"unknown container", "{from: client, to: web:lan, ping: true}", "{from: web/dbb, to: client, ping: true}",
			`office.lab.yaml:19: checks[0].from: "web/dbb" is not a container of app capstone (did you mean db?)`, "use one of: web/db, web/api, web/proxy"},
		{"node without app", "{from: client, to: web:lan, ping: true}", "{from: web, to: client/db, ping: true}",
			`office.lab.yaml:19: checks[0].to: "client/db" names a container on node client, which has no app`, "use NODE/CONTAINER with a node that has an app (web)"},
		{"missing node", "{from: client, to: web:lan, ping: true}", "{from: wbe/db, to: client, ping: true}",
			`checks[0].from: "wbe/db" names a node that is not in this lab (did you mean web?)`, "(web)"},
		{"own source", "{from: client, to: web:lan, ping: true}", "{from: web/db, to: web/db, ping: true}",
			`checks[0].to: "web/db" is the check's own source`, "check from another container"},
		{"no app anywhere", "    app: capstone", "", "names a container on node web, which has no app", "none of this lab's nodes has an app"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			s := edit(t, tc.old, tc.new)
			if tc.name == "no app anywhere" {
				s = strings.Replace(s, "{from: client, to: web:lan, ping: true}", "{from: client, to: web/db, ping: true}", 1)
			}
			_, err := Parse([]byte(s), "office.lab.yaml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error:\n  %v\nwant a part:\n  %s", err, tc.want)
			}
			var h errs.Hinted
			if !errors.As(err, &h) || !strings.Contains(h.Hint(), tc.fix) {
				t.Errorf("hint %q, want a part %q", h.Hint(), tc.fix)
			}
		})
	}
}
