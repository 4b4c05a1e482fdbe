package accel

import "time"

// TCGSlowdown is how many times longer a guest may take under TCG than
// under KVM: software emulation runs a boot roughly ten times slower
// (cloud-in-a-bottle#338 measured it; here a capstone guest needs ~19 s to
// its agent under TCG, ~2 s under KVM on GitHub's runners).
const TCGSlowdown = 10

// Time budgets under KVM; Timeout gives the one for the chosen accelerator.
const (
	// BootKVM bounds a boot to readiness (the spec's ready: agent, console
	// line or address) when the spec sets no timeout: 30 s under KVM, 5 min
	// under TCG.
	BootKVM = 30 * time.Second
	// ProvisionKVM bounds one provisioning command in the guest (a
	// container stack coming up, a download): 5 min under KVM, 50 min
	// under TCG. Not 30 s: much of a command's time is its own waiting
	// (the capstone's vmnet-app-wait allows itself 600 s), which KVM does
	// not shorten, and the agent giving up first would hide the command's
	// own diagnosis.
	ProvisionKVM = 5 * time.Minute
)

// Timeout scales kvm, a time budget under KVM, to the accelerator typ (a
// Choice's Type): kvm itself for KVM, TCGSlowdown times it for QEMU (TCG)
// and for anything unknown, since a budget too long only costs time when
// something already failed and one too short fails a slow guest that
// would have worked. Every accelerator-dependent timeout goes through it.
func Timeout(typ string, kvm time.Duration) time.Duration {
	if typ == KVM {
		return kvm
	}
	return kvm * TCGSlowdown
}

// Converge gives how long lab up reruns failing checks by default: 30 s
// under KVM, 2 min under TCG and for anything unknown. Not TCGSlowdown
// times the KVM one: a check that truly fails (a break-and-debug
// exercise) is reported only after this long, and the wait is for a
// container's server to start listening, which under TCG on a starved
// 2-core host took more than 30 s (the modes lab's ten containers,
// started while two other guests booted, failed CI that way).
func Converge(typ string) time.Duration {
	if typ == KVM {
		return ConvergeKVM
	}
	return convergeTCG
}

const (
	// ConvergeKVM is lab up's default --converge under KVM.
	ConvergeKVM = 30 * time.Second
	convergeTCG = 2 * time.Minute
)
