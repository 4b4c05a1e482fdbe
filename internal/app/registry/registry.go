// Package registry lists vmnet's built-in applications. It is the one place
// that names each app's package: the CLI hands Builtin to internal/check,
// and internal/lab validates a node's app: NAME against it.
package registry

import (
	"vmnet/internal/app"
	"vmnet/internal/app/capstone"
)

// Builtin is every built-in application.
func Builtin() app.Registry { return app.NewRegistry(capstone.App()) }
