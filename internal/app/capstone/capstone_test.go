package capstone

import (
	"slices"
	"testing"
)

// TestApp: the capstone contract's names and ports: proxy → api → db on
// app-net, only the proxy's 8080 published, db's and api's ports closed.
func TestApp(t *testing.T) {
	a := App()
	if a.Name != "capstone" || a.Image != "capstone" || a.Network != "app-net" {
		t.Errorf("name %q image %q network %q", a.Name, a.Image, a.Network)
	}
	if got := a.ContainerNames(); !slices.Equal(got, []string{"db", "api", "proxy"}) {
		t.Errorf("containers %v, want db, api, proxy", got)
	}
	if e := a.Entry(); e.Name != "proxy" || e.Publish != 8080 || e.Port != 8080 {
		t.Errorf("entry %+v, want proxy publishing 8080", e)
	}
	if got := a.Published(); !slices.Equal(got, []int{8080}) {
		t.Errorf("published %v, want [8080]", got)
	}
	if !slices.Equal(a.ClosedFromHost, []int{5432, 5000}) {
		t.Errorf("closed %v, want 5432, 5000", a.ClosedFromHost)
	}
	if api, _ := a.Upstream("proxy"); api.Name != "api" || api.Port != 5000 {
		t.Errorf("behind the proxy: %+v, want api on 5000", api)
	}
	if len(a.Lookups) != 2 || a.Lookups[0].From != "api" || a.Lookups[0].Name != "db" || a.Lookups[1].From != "proxy" || a.Lookups[1].Name != "api" {
		t.Errorf("lookups %+v, want api→db, proxy→api", a.Lookups)
	}
}
