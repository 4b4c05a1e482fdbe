package accel

// Cause names, in a word a program can switch on, why the probe picked
// what it picked; Fix says what a person does about it.
type Cause string

// The causes of a Choice.
const (
	CauseWorks        Cause = "kvm-works"        // the test guest reached long mode under KVM
	CauseAsked        Cause = "asked"            // --accel kvm or tcg: no test guest was run
	CauseNoDevice     Cause = "no-device"        // /dev/kvm does not exist
	CauseNoPermission Cause = "no-permission"    // /dev/kvm exists but this user may not open it read-write
	CauseBusy         Cause = "device-busy"      // another hypervisor holds VT-x/AMD-V (EBUSY)
	CauseNotKVM       Cause = "not-kvm"          // the device answers, but not as KVM API 12
	CauseCreateVM     Cause = "create-vm-failed" // KVM_CREATE_VM failed for another reason
	CauseLibvirtNoKVM Cause = "libvirt-no-kvm"   // libvirt's domain capabilities refuse type='kvm'
	CauseNestedOff    Cause = "nested-off"       // the guest did not run and the CPU has no vmx/svm flag
	CauseGuestHangs   Cause = "guest-hangs"      // the guest did not finish within the timeout
	CauseGuestFailed  Cause = "guest-failed"     // QEMU could not run the guest under KVM
)

// udevRule is the rule GitHub's runner-images maintainers give for letting
// the runner user open /dev/kvm (actions/runner-images#8542).
const udevRule = `KERNEL=="kvm", GROUP="kvm", MODE="0666", OPTIONS+="static_node=kvm"`

// PermissionFix is the fix for CauseNoPermission, in commands.
const PermissionFix = "let this user open /dev/kvm read-write: echo '" + udevRule + "' | " +
	"sudo tee /etc/udev/rules.d/99-kvm4all.rules && sudo udevadm control --reload-rules && " +
	"sudo udevadm trigger --name-match=kvm (the rule GitHub's runner-images maintainers recommend); " +
	"or sudo usermod -aG kvm $USER and log in again; or sudo chmod 0666 /dev/kvm until the next boot"

// fixes holds the fix for every cause that leaves vmnet on TCG.
var fixes = map[Cause]string{
	CauseNoDevice: "load KVM: sudo modprobe kvm_intel (or kvm_amd) after enabling VT-x/AMD-V in the firmware; " +
		"in a VM, enable nested virtualisation on its host. vmnet uses TCG meanwhile",
	CauseNoPermission: PermissionFix,
	CauseBusy: "another hypervisor (VirtualBox, VMware) holds VT-x/AMD-V: stop its VMs or unload its kernel " +
		"module, then probe again (vmnet doctor)",
	CauseNotKVM: "/dev/kvm is not the kernel's KVM device: reload the module (modprobe -r kvm_intel && " +
		"modprobe kvm_intel) or recreate the node (mknod /dev/kvm c 10 232)",
	CauseCreateVM: "the kernel refused to create a VM: dmesg says why (virtualisation disabled in the firmware?)",
	CauseLibvirtNoKVM: "libvirtd probes QEMU as its own user (libvirt-qemu) and keeps the answer: let that user " +
		"open /dev/kvm (the udev rule of " + string(CauseNoPermission) + ", or sudo usermod -aG kvm libvirt-qemu), then " +
		"restart libvirtd so it probes again (in a sandbox: vmnet sandbox down NAME, then up); " +
		"virsh domcapabilities --virttype kvm shows libvirt's answer",
	CauseNestedOff: "the CPU shows no vmx/svm flag: enable nested virtualisation on the VM host (e.g. kvm_intel " +
		"nested=1 and a CPU model with vmx), or run on bare metal; vmnet uses TCG meanwhile",
	CauseGuestHangs: "KVM accepts guests but does not run them: check dmesg for kvm errors and nested " +
		"virtualisation on the VM host; --accel tcg skips the probe",
	CauseGuestFailed: "QEMU cannot run a guest under KVM here (its error is above); --accel tcg skips the probe",
}

// FixFor returns the fix for cause, or "" when there is nothing to fix.
func FixFor(cause Cause) string { return fixes[cause] }
