package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	ocibundle "github.com/hako-project/hako/runtime/bundle"
	"github.com/hako-project/hako/runtime/nsexec"
)

// standbyFD is the socket a standby runtime reads its command from.
const standbyFD = 3

// standbyAnnotation is the key in the features document (`hako-runtime
// features`) that tells a shim this runtime can be started ahead of need.
const standbyAnnotation = "io.github.hako-project.hako.standby"

// standbyMsg is the one message a standby runtime reads: the command line
// after the program name and the whole environment it runs with. Its
// standard input, output and error come with it as SCM_RIGHTS, in order.
// shim/runtime writes it (Standby).
type standbyMsg struct {
	Args []string `json:"args"`
	Env  []string `json:"env"`
}

// standbyUsed is set when this process ran its command from standby; the
// command's root span says so.
var standbyUsed bool

func init() {
	register(command{
		name:    "standby",
		summary: "start ahead of need and run the command line that arrives on fd 3 (hako-shim's spare)",
		flags: func(fs *flag.FlagSet) func(*env, []string) error {
			return func(*env, []string) error {
				return usagef("standby takes no flags and no arguments, and runs alone: hako-runtime standby")
			}
		},
	})
}

// standby is `hako-runtime standby`: the process start-up of a runtime
// command (exec, the Go runtime's start, the first decoding of a spec)
// paid before the command is known. A spare hako-shim starts one while it
// waits for a container; the container's first command (run or create)
// then arrives as a standbyMsg on fd 3, a unix socket, with its stdio,
// and runs as if the process had been started with it: same arguments,
// same environment, same descriptors 0-2, same exit code. End-of-file
// before a message (the shim let it go) exits 0. Only what is fixed at
// process start cannot follow the message (GOMAXPROCS, GODEBUG, the timer
// slack, the binary): the shim uses a standby only when those match.
//
// The exit code also goes back on the socket (in decimal, one message)
// once the command is done, before the process exits: the shim goes on
// then, not ~1-2 ms later when the exit of a Go process has been reaped.
// Everything the command says (its log, its spans) is written by then.
func standby() int {
	var st unix.Stat_t
	if err := unix.Fstat(standbyFD, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		fmt.Fprintln(os.Stderr, "hako-runtime standby: fd 3 is not a socket: the standby is started by hako-shim, not by hand")
		return 2
	}
	unix.CloseOnExec(standbyFD)
	warmStandby()
	msg, fds, err := readStandby(standbyFD, nsexec.OwnText())
	if errors.Is(err, errStandbyEOF) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "hako-runtime standby: %v\n", err)
		return 2
	}
	// The socket moves out of the way of descriptors the command hands
	// on (--preserve-fds, from 3), close-on-exec: the container's init
	// gets no copy. Below 64: a descriptor beyond the table a process
	// starts with grows it, and in a process with threads that waits
	// for an RCU grace period (8.5 ms under strace here, for fd 64).
	report, err := unix.FcntlInt(standbyFD, unix.F_DUPFD_CLOEXEC, 32)
	if err != nil {
		report = -1
	}
	unix.Close(standbyFD)
	for i, fd := range fds {
		if fd != i {
			if err := unix.Dup3(fd, i, 0); err != nil {
				fmt.Fprintf(os.Stderr, "hako-runtime standby: stdio %d: %v\n", i, err)
				return 2
			}
			unix.Close(fd)
		}
	}
	os.Clearenv()
	for _, kv := range msg.Env {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			os.Setenv(k, v)
		}
	}
	os.Args = append(os.Args[:1], msg.Args...)
	standbyUsed = true
	code := run(msg.Args)
	if report >= 0 {
		_, _ = unix.Write(report, []byte(strconv.Itoa(code)))
	}
	return code
}

var errStandbyEOF = errors.New("end of file")

// readStandby reads the message and its three descriptors from fd. Right
// before the wait it drops its mappings of text (OwnText): idle, the
// executable's pages mapped in it would all be its own PSS, which hakod's
// memory counts (the constructor maps the whole of it, ~4.8 MiB here).
// Only raw system calls run between the drop and the wait; the kernel
// still maps ~1.7 MiB back at their first touches (whole large folios of
// the page cache at a time): 6.0 -> 2.9 MiB of PSS.
func readStandby(fd int, text [][2]uintptr) (*standbyMsg, []int, error) {
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(3*4))
	for _, r := range text {
		_, _, _ = unix.Syscall(unix.SYS_MADVISE, r[0], r[1]-r[0], unix.MADV_DONTNEED)
	}
	for {
		n, oobn, flags, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read the command: %w", err)
		}
		if n == 0 && oobn == 0 {
			return nil, nil, errStandbyEOF
		}
		var fds []int
		if oobn > 0 {
			cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err != nil {
				return nil, nil, fmt.Errorf("read the command's descriptors: %w", err)
			}
			for _, c := range cmsgs {
				got, err := unix.ParseUnixRights(&c)
				if err != nil {
					return nil, nil, fmt.Errorf("read the command's descriptors: %w", err)
				}
				fds = append(fds, got...)
			}
		}
		if flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 || len(fds) != 3 {
			for _, f := range fds {
				unix.Close(f)
			}
			return nil, nil, fmt.Errorf("the command came with %d descriptors (want stdin, stdout and stderr) or was cut short", len(fds))
		}
		var msg standbyMsg
		if err := json.Unmarshal(buf[:n], &msg); err != nil || len(msg.Args) == 0 {
			for _, f := range fds {
				unix.Close(f)
			}
			return nil, nil, fmt.Errorf("the command is not a standby message: %q", buf[:min(n, 200)])
		}
		return &msg, fds, nil
	}
}

// warmStandby runs, while the standby waits, what every run or create
// runs first and pays for once per process: encoding/json's tables for
// the spec's types, built at their first decoding, and the code of the
// validation. A container's own config.json then decodes in a fraction of
// the time (runtime.bundle.load in a trace).
func warmStandby() {
	s := DefaultSpec()
	one := int64(1)
	s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/w", Args: []string{"w"}, Env: []string{"A=B"}, Timeout: new(int)}}}
	s.Linux.Resources = &specs.LinuxResources{
		Devices: []specs.LinuxDeviceCgroup{{Allow: true, Type: "c", Major: &one, Minor: &one, Access: "rwm"}},
		Memory:  &specs.LinuxMemory{Limit: &one, Swap: &one},
		CPU:     &specs.LinuxCPU{Shares: new(uint64), Quota: &one, Period: new(uint64), Cpus: "0"},
		Pids:    &specs.LinuxPids{Limit: &one},
		BlockIO: &specs.LinuxBlockIO{Weight: new(uint16)},
	}
	s.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno, DefaultErrnoRet: new(uint), Architectures: []specs.Arch{specs.ArchX86_64},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"personality"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: 8, Op: specs.OpEqualTo}}}},
	}
	s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
	s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/w", Type: "c", Major: 1, Minor: 3, FileMode: new(os.FileMode), UID: new(uint32), GID: new(uint32)}}
	s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_NPROC", Hard: 1, Soft: 1})
	s.Process.User.AdditionalGids = []uint32{1}
	s.Annotations = map[string]string{"w": "w"}
	b, err := json.Marshal(s)
	if err != nil {
		return
	}
	if parsed, err := ocibundle.Parse(b); err == nil {
		_ = ocibundle.Validate(parsed, "/")
	}
}
