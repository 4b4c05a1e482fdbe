// Package capstone describes the capstone application: PostgreSQL, a Flask
// API in front of it and nginx in front of that, on one podman network in
// the capstone image's guest, with only nginx's port published.
package capstone

import "vmnet/internal/app"

// Name is the app's name in a lab file (app: capstone) and the name of the
// image its containers are baked into.
const Name = "capstone"

// App is the capstone app's description: the path from the host is
// proxy → api → db, each name resolved on app-net, and only the proxy's
// 8080 is published; the database's and the API's ports must stay closed
// from the host.
func App() app.App {
	return app.App{
		Name:    Name,
		Image:   Name,
		Network: "app-net",
		Containers: []app.Container{
			{Name: "db", Title: "database", Port: 5432},
			{Name: "api", Title: "API", Port: 5000},
			{Name: "proxy", Title: "proxy", Port: 8080, Publish: 8080},
		},
		HTTP:           app.HTTP{Container: "proxy", Path: "/", Expect: "200 + JSON with db.version ~ PostgreSQL", Judge: "api"},
		ClosedFromHost: []int{5432, 5000},
		Lookups:        []app.Lookup{{From: "api", Name: "db"}, {From: "proxy", Name: "api"}},
	}
}
