package check

import (
	"vmnet/internal/app"
	"vmnet/internal/app/capstone"
)

// The capstone app as the tests here name it: its description lives in
// internal/app/capstone, and these are what the tests expect of it.
const (
	MatrixCapstone = capstone.Name
	AppNetwork     = "app-net"
	ProxyPort      = 8080
	APIPort        = 5000
	DBPort         = 5432
)

// AppContainers are the capstone's containers, in path order.
var AppContainers = capstone.App().ContainerNames()

// capstoneApp is a fresh copy of the capstone's description.
func capstoneApp() *app.App {
	a := capstone.App()
	return &a
}

// apps is the registry the single-VM tests choose matrices from.
func apps() app.Registry { return app.NewRegistry(capstone.App()) }

// CapstoneMatrix is the capstone app's matrix for t.
func CapstoneMatrix(t Target) []Check {
	t.App = capstoneApp()
	return AppMatrix(t)
}
