// Package apparmor validates process.apparmorProfile against the host and
// says what hako-runtime's init must write to confine the container.
//
// The init (C, before the Go runtime) cannot decide anything; it only writes
// the bytes this package prepares. Loading profiles is not this package's
// job: like runc, hako-runtime only asks the kernel to switch to a profile
// that the administrator (or the engine) has already loaded.
package apparmor

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Unconfined is the profile name meaning "no AppArmor confinement".
const Unconfined = "unconfined"

// Exec attribute files, as seen by the init inside the container's /proc.
// Kernels with LSM stacking (5.1+) give AppArmor its own directory; older
// ones only have the shared file. The init is single-threaded, so
// /proc/self is its only thread.
const (
	ExecAttrPath         = "/proc/self/attr/apparmor/exec"
	ExecAttrFallbackPath = "/proc/self/attr/exec"
)

// field is the spec field every error names; runc exec's --apparmor flag
// overrides the same field.
const field = "process.apparmorProfile"

// host reads AppArmor's state below root; tests point it at a fake tree.
type host struct{ root string }

func (h host) path(p string) string { return filepath.Join(h.root, p) }

// Enabled reports whether the running kernel has AppArmor enabled: its
// securityfs directory exists and the module parameter says "Y", which is
// the check runc and libapparmor make.
func Enabled() bool { return host{root: "/"}.enabled() }

func (h host) enabled() bool {
	if _, err := os.Stat(h.path("/sys/kernel/security/apparmor")); err != nil {
		return false
	}
	b, err := os.ReadFile(h.path("/sys/module/apparmor/parameters/enabled"))
	return err == nil && len(b) > 0 && b[0] == 'Y'
}

// CheckProfile validates a process.apparmorProfile value for this host.
//
// The empty name asks for nothing and is always fine, and so is
// "unconfined" where AppArmor is off, because that is already the state of
// every process there. Any other name on a host without AppArmor is an
// error: silently running a container unconfined that asked to be confined
// would be a security bug. Where AppArmor is on, the profile must be
// loaded; the list of loaded profiles is checked when it is readable.
func CheckProfile(name string) error { return host{root: "/"}.checkProfile(name) }

func (h host) checkProfile(name string) error {
	if name == "" {
		return nil
	}
	if err := validName(name); err != nil {
		return fmt.Errorf("%s %q: %w", field, name, err)
	}
	if !h.enabled() {
		if name == Unconfined {
			return nil
		}
		return fmt.Errorf("%s %q: AppArmor is not enabled on this host", field, name)
	}
	if name == Unconfined {
		return nil
	}
	loaded, err := h.loaded(name)
	if err != nil {
		// Not being able to read the list (it is root-only) is not proof
		// that the profile is missing; the kernel will say so at exec.
		if errors.Is(err, fs.ErrPermission) {
			return nil
		}
		return fmt.Errorf("%s %q: %w", field, name, err)
	}
	if !loaded {
		return fmt.Errorf("%s %q: no such AppArmor profile is loaded (see /sys/kernel/security/apparmor/profiles)", field, name)
	}
	return nil
}

// loaded reports whether the kernel's profile list names the profile.
// Each line is "NAME (MODE)"; names may contain spaces.
func (h host) loaded(name string) (bool, error) {
	f, err := os.Open(h.path("/sys/kernel/security/apparmor/profiles"))
	if err != nil {
		return false, fmt.Errorf("read loaded AppArmor profiles: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.LastIndex(line, " ("); i >= 0 {
			line = line[:i]
		}
		if line == name {
			return true, nil
		}
	}
	if err := sc.Err(); err != nil {
		return false, fmt.Errorf("read loaded AppArmor profiles: %w", err)
	}
	return false, nil
}

// validName refuses what the kernel's "exec" command cannot carry: the
// name is the rest of one line.
func validName(name string) error {
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("profile name contains control character %U", r)
		}
	}
	return nil
}

// Write is what the init must do for a profile: write Data to the first of
// Paths that exists (on ENOENT try the next), once, after /proc is mounted
// in the container and before the execve of the user's program; the
// profile takes effect at that execve.
type Write struct {
	Paths []string
	Data  []byte
}

// ExecWrite checks name with CheckProfile and returns the write the init
// must perform, or nil when there is nothing to do (no profile, or
// "unconfined" on a host without AppArmor).
func ExecWrite(name string) (*Write, error) { return host{root: "/"}.execWrite(name) }

func (h host) execWrite(name string) (*Write, error) {
	if err := h.checkProfile(name); err != nil {
		return nil, err
	}
	if name == "" || !h.enabled() {
		return nil, nil
	}
	return &Write{
		Paths: []string{ExecAttrPath, ExecAttrFallbackPath},
		Data:  []byte("exec " + name),
	}, nil
}
