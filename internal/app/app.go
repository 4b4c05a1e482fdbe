// Package app describes a built-in application: the containers a node with
// app: NAME runs in its guest, the podman network they share, the ports they
// serve and publish, the ports that must stay closed, the HTTP path from
// outside and what its answer must hold, the names they find each other by.
// The description is data: internal/check plans and diagnoses the app's
// checks from it, and internal/lab validates a lab's app: NAME against a
// Registry of them, so neither holds an app's constants. Each app lives in a
// package of its own under this one (capstone); registry lists them.
package app

import (
	"slices"
	"strings"
)

// App is one application's description.
type App struct {
	Name string
	// Image is the built-in image the app's containers are baked into.
	Image string
	// Network is the podman network the app's containers share, and
	// resolve each other's names on (aardvark-dns).
	Network string
	// Containers are in path order from the back end out: each one's
	// upstream is the one before it (capstone: db, api, proxy).
	Containers []Container
	// HTTP is the path from outside: a GET to the port one container
	// publishes, which goes through the containers behind it.
	HTTP HTTP
	// ClosedFromHost are the ports that must stay closed from the host on
	// each of the VM's NICs, in check order: only the published port is
	// meant to be reachable there.
	ClosedFromHost []int
	// Lookups are the names the containers look up on Network along the
	// app's own paths, in check order.
	Lookups []Lookup
}

// Container is one of an app's containers.
type Container struct {
	Name string
	// Title names its service in a diagnosis: "the API answered 500".
	Title string
	// Port is the port it serves on the app's network.
	Port int
	// Publish is the port on the VM that podman forwards to Port (-p
	// Publish:Port), or 0 when it publishes none.
	Publish int
}

// HTTP is the app's path from outside and what its answer must be.
type HTTP struct {
	// Container is the container that publishes the port the GET goes to.
	Container string
	Path      string
	// Expect says for people what the answer must be.
	Expect string
	// Judge names how internal/check judges the answer (its Want).
	Judge string
}

// Lookup is a name container From must resolve on the app's network.
type Lookup struct{ From, Name string }

// ContainerNames are the app's containers' names, in path order.
func (a App) ContainerNames() []string {
	out := make([]string, len(a.Containers))
	for i, c := range a.Containers {
		out[i] = c.Name
	}
	return out
}

// Container is the app's container name; ok is false when it has none.
func (a App) Container(name string) (c Container, ok bool) {
	i := slices.IndexFunc(a.Containers, func(c Container) bool { return c.Name == name })
	if i < 0 {
		return Container{}, false
	}
	return a.Containers[i], true
}

// Upstream is the container behind name on the app's path (the one before
// it in Containers); ok is false for the last one and for a name that is not
// the app's.
func (a App) Upstream(name string) (c Container, ok bool) {
	i := slices.IndexFunc(a.Containers, func(c Container) bool { return c.Name == name })
	if i < 1 {
		return Container{}, false
	}
	return a.Containers[i-1], true
}

// Entry is the container the HTTP path enters by.
func (a App) Entry() Container {
	c, _ := a.Container(a.HTTP.Container)
	return c
}

// Published are the ports the app's containers publish on the VM.
func (a App) Published() []int {
	var out []int
	for _, c := range a.Containers {
		if c.Publish != 0 {
			out = append(out, c.Publish)
		}
	}
	return out
}

// Registry is the applications a node may run, by name.
type Registry struct{ apps []App }

// NewRegistry holds apps, in the order Names lists them.
func NewRegistry(apps ...App) Registry { return Registry{apps: slices.Clone(apps)} }

// Lookup is the app called name; ok is false when there is none.
func (r Registry) Lookup(name string) (a App, ok bool) {
	i := slices.IndexFunc(r.apps, func(a App) bool { return a.Name == name })
	if i < 0 {
		return App{}, false
	}
	return r.apps[i], true
}

// Names are the apps' names.
func (r Registry) Names() []string {
	out := make([]string, len(r.apps))
	for i, a := range r.apps {
		out[i] = a.Name
	}
	return out
}

// Containers are each app's containers, by app name, in path order.
func (r Registry) Containers() map[string][]string {
	out := map[string][]string{}
	for _, a := range r.apps {
		out[a.Name] = a.ContainerNames()
	}
	return out
}

// Images are the image each app runs on, by app name.
func (r Registry) Images() map[string]string {
	out := map[string]string{}
	for _, a := range r.apps {
		out[a.Name] = a.Image
	}
	return out
}

// String lists the names: "capstone", "a or b", "a, b or c".
func (r Registry) String() string {
	n := r.Names()
	if len(n) < 2 {
		return strings.Join(n, "")
	}
	return strings.Join(n[:len(n)-1], ", ") + " or " + n[len(n)-1]
}
