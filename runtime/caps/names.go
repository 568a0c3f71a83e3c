package caps

import (
	"fmt"
	"strings"
)

// MaxKnown is the highest capability number this package has a name for
// (CAP_CHECKPOINT_RESTORE, Linux 5.9). A running kernel may know fewer; see
// LastCap.
const MaxKnown = 40

// names maps a capability number to its name, in the kernel's order
// (include/uapi/linux/capability.h). It is an array rather than a map so
// that importing this package costs no initialisation work: every runtime
// invocation pays for package init.
var names = [MaxKnown + 1]string{
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_DAC_READ_SEARCH",
	"CAP_FOWNER",
	"CAP_FSETID",
	"CAP_KILL",
	"CAP_SETGID",
	"CAP_SETUID",
	"CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST",
	"CAP_NET_ADMIN",
	"CAP_NET_RAW",
	"CAP_IPC_LOCK",
	"CAP_IPC_OWNER",
	"CAP_SYS_MODULE",
	"CAP_SYS_RAWIO",
	"CAP_SYS_CHROOT",
	"CAP_SYS_PTRACE",
	"CAP_SYS_PACCT",
	"CAP_SYS_ADMIN",
	"CAP_SYS_BOOT",
	"CAP_SYS_NICE",
	"CAP_SYS_RESOURCE",
	"CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG",
	"CAP_MKNOD",
	"CAP_LEASE",
	"CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL",
	"CAP_SETFCAP",
	"CAP_MAC_OVERRIDE",
	"CAP_MAC_ADMIN",
	"CAP_SYSLOG",
	"CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND",
	"CAP_AUDIT_READ",
	"CAP_PERFMON",
	"CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// Number returns the capability number for an exact name such as
// "CAP_CHOWN", as the runtime-spec requires them to be written.
func Number(name string) (int, bool) {
	for i, n := range names {
		if n == name {
			return i, true
		}
	}
	return 0, false
}

// Name returns the name of capability number n, or "" if n is not a
// capability this package knows.
func Name(n int) string {
	if n < 0 || n > MaxKnown {
		return ""
	}
	return names[n]
}

// All returns every capability name this package knows, in number order.
func All() []string {
	return append([]string(nil), names[:]...)
}

// Normalize turns the spellings users type on command lines ("net_admin",
// "NET_ADMIN", "cap_net_admin") into the canonical "CAP_NET_ADMIN", as
// docker's --cap-add does. "ALL" (any case) is returned as "ALL". Anything
// else is an error, so a typo never silently grants nothing.
func Normalize(name string) (string, error) {
	up := strings.ToUpper(strings.TrimSpace(name))
	if up == "ALL" {
		return up, nil
	}
	if !strings.HasPrefix(up, "CAP_") {
		up = "CAP_" + up
	}
	if _, ok := Number(up); !ok {
		return "", fmt.Errorf("unknown capability %q", name)
	}
	return up, nil
}

// NamesOf lists the names of the capabilities set in mask, in number order.
func NamesOf(mask uint64) []string {
	var out []string
	for i := 0; i <= MaxKnown; i++ {
		if mask&(1<<uint(i)) != 0 {
			out = append(out, names[i])
		}
	}
	return out
}
