package runtime

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/shim/reaper"
)

// StandbyAnnotation is the key in a runtime's features document (`RUNTIME
// features`, the runtime-spec's features.json) with which a runtime says
// it has `standby`: hako-runtime does; runc and crun do not.
const StandbyAnnotation = "io.github.hako-project.hako.standby"

// Standby is a runtime process started ahead of need (`RUNTIME standby`,
// see cmd/hako-runtime): it has paid for its exec and the Go runtime's
// start-up and waits on a socket for the command line of a container's
// first command, which Runtime then sends it instead of starting a
// process. On the machines hako is measured on that start-up is 2.4-5 ms
// of every `hako run` (the time from shim.runtime.run to hako-runtime.run
// in a trace), plus the first decoding of the spec.
//
// A standby serves one command of the same binary and base environment it
// was started with, since what a process reads at its start (GOMAXPROCS,
// the executable) cannot follow the message. Close lets it go: it reads
// end-of-file and exits 0, and the reaper collects it.
type Standby struct {
	path string
	file BinaryID
	env  []string
	sock *os.File
	pid  int
	done <-chan reaper.Exit
}

// StartStandby starts `path standby` with env through spawn (the reaper's
// Start), its end of a socket pair as fd 3.
func StartStandby(path string, env []string, spawn func(*exec.Cmd) (int, <-chan reaper.Exit, error)) (*Standby, error) {
	id, ok := StatBinary(path)
	if !ok {
		return nil, fmt.Errorf("standby runtime %s: not found", path)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("standby runtime socket: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "standby"), os.NewFile(uintptr(fds[1]), "standby")
	defer theirs.Close()
	cmd := exec.Command(path, "standby")
	cmd.Dir = "/"
	cmd.Env = env
	cmd.ExtraFiles = []*os.File{theirs}
	pid, done, err := spawn(cmd)
	if err != nil {
		ours.Close()
		return nil, fmt.Errorf("start %s standby: %w", path, err)
	}
	return &Standby{path: path, file: id, env: slices.Clone(env), sock: ours, pid: pid, done: done}, nil
}

// Close lets an unused standby go.
func (s *Standby) Close() {
	if s != nil && s.sock != nil {
		s.sock.Close()
	}
}

// fits reports whether s can run a command of path with base environment
// env: the same binary, unchanged since s started, the same environment,
// and s still waiting.
func (s *Standby) fits(path string, env []string) bool {
	select {
	case <-s.done:
		return false
	default:
	}
	id, ok := StatBinary(path)
	return ok && s.path == path && id == s.file && slices.Equal(s.env, env)
}

// hand sends s cmd's arguments (after the program name), environment and
// stdio, and returns what Spawn would have: the pid and the exit, here
// the exit code the command reports when it is done, a moment before its
// process has exited (a blocking lock it held is then released at that
// exit, which whoever takes it next waits for). s is spent either way; on
// error it has been let go.
func (s *Standby) hand(cmd *exec.Cmd) (int, <-chan reaper.Exit, error) {
	defer func() {
		if s.sock != nil {
			s.sock.Close()
		}
	}()
	b, err := json.Marshal(struct {
		Args []string `json:"args"`
		Env  []string `json:"env"`
	}{cmd.Args[1:], cmd.Env})
	if err != nil {
		return 0, nil, err
	}
	var fds [3]int
	for i, v := range []*os.File{asFile(cmd.Stdin), asFile(cmd.Stdout), asFile(cmd.Stderr)} {
		if v == nil {
			flag := os.O_WRONLY
			if i == 0 {
				flag = os.O_RDONLY
			}
			f, err := os.OpenFile(os.DevNull, flag, 0)
			if err != nil {
				return 0, nil, err
			}
			defer f.Close()
			v = f
		}
		fds[i] = int(v.Fd())
	}
	if err := unix.Sendmsg(int(s.sock.Fd()), b, unix.UnixRights(fds[:]...), nil, 0); err != nil {
		return 0, nil, fmt.Errorf("hand the command to the standby runtime: %w", err)
	}
	sock := s.sock
	s.sock = nil // the goroutine below closes it
	exit := make(chan reaper.Exit, 1)
	go func() {
		defer sock.Close()
		// The command's exit code comes on the socket before its
		// process exits; end-of-file without it (killed, crashed):
		// the exit reaped.
		var buf [16]byte
		n, err := sock.Read(buf[:])
		if code, cerr := strconv.Atoi(string(buf[:max(n, 0)])); err == nil && cerr == nil && code >= 0 && code <= 255 {
			exit <- reaper.Exit{Pid: s.pid, Status: unix.WaitStatus(code << 8), At: time.Now()}
			return
		}
		exit <- <-s.done
	}()
	return s.pid, exit, nil
}

// asFile is v as an *os.File, nil for nil or anything else (Runtime gives
// only files or nil).
func asFile(v any) *os.File {
	f, _ := v.(*os.File)
	return f
}

// BinaryID tells whether a path still names the same executable: a
// process started ahead of need from a binary since replaced (an upgrade)
// must not serve.
type BinaryID struct {
	dev, ino uint64
	mtime    unix.Timespec
}

// StatBinary is path's BinaryID; false if path cannot be stat'ed.
func StatBinary(path string) (BinaryID, bool) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return BinaryID{}, false
	}
	return BinaryID{dev: st.Dev, ino: st.Ino, mtime: st.Mtim}, true
}

// HasStandby asks the runtime at path, through its features document,
// whether it can be started ahead of need.
func HasStandby(path string) bool {
	out, err := exec.Command(path, "features").Output()
	if err != nil {
		return false
	}
	var f struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.NewDecoder(bytes.NewReader(out)).Decode(&f); err != nil {
		return false
	}
	return f.Annotations[StandbyAnnotation] == "true"
}
