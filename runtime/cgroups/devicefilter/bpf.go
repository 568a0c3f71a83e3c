package devicefilter

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// progLoadAttr is the BPF_PROG_LOAD member of union bpf_attr, up to
// expected_attach_type (the kernel zero-fills the rest).
type progLoadAttr struct {
	progType           uint32
	insnCnt            uint32
	insns              uint64
	license            uint64
	logLevel           uint32
	logSize            uint32
	logBuf             uint64
	kernVersion        uint32
	progFlags          uint32
	progName           [16]byte
	progIfindex        uint32
	expectedAttachType uint32
}

// attachAttr is the BPF_PROG_ATTACH/BPF_PROG_DETACH member.
type attachAttr struct {
	targetFD     uint32
	attachBPFFD  uint32
	attachType   uint32
	attachFlags  uint32
	replaceBPFFD uint32
}

// queryAttr is the BPF_PROG_QUERY member.
type queryAttr struct {
	targetFD    uint32
	attachType  uint32
	queryFlags  uint32
	attachFlags uint32
	progIDs     uint64
	progCnt     uint32
	_           uint32
}

// getFDAttr is the BPF_PROG_GET_FD_BY_ID member.
type getFDAttr struct {
	id        uint32
	nextID    uint32
	openFlags uint32
}

func bpf(cmd int, attr unsafe.Pointer, size uintptr) (int, error) {
	r, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(attr), size)
	if errno != 0 {
		return int(r), errno
	}
	return int(r), nil
}

// Load hands the program to the kernel verifier and returns the program fd.
// On rejection the verifier log is fetched and included in the error, since
// "EINVAL" alone says nothing about which instruction is wrong.
func Load(p Program) (int, error) {
	code := p.Bytes()
	license := []byte("Apache-2.0\x00")
	attr := progLoadAttr{
		progType: unix.BPF_PROG_TYPE_CGROUP_DEVICE,
		insnCnt:  uint32(len(p)),
		insns:    uint64(uintptr(unsafe.Pointer(&code[0]))),
		license:  uint64(uintptr(unsafe.Pointer(&license[0]))),
	}
	copy(attr.progName[:], "hako_devices")
	fd, err := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	runtime.KeepAlive(code)
	runtime.KeepAlive(license)
	if err == nil {
		return fd, nil
	}
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EACCES) {
		return -1, fmt.Errorf("bpf(BPF_PROG_LOAD) device filter: %w", err)
	}
	logBuf := make([]byte, 64*1024)
	attr.logLevel = 1
	attr.logSize = uint32(len(logBuf))
	attr.logBuf = uint64(uintptr(unsafe.Pointer(&logBuf[0])))
	fd, err2 := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	runtime.KeepAlive(code)
	runtime.KeepAlive(license)
	runtime.KeepAlive(logBuf)
	if err2 == nil {
		return fd, nil
	}
	vlog := string(bytes.TrimRight(logBuf, "\x00"))
	return -1, fmt.Errorf("bpf(BPF_PROG_LOAD) device filter rejected by the verifier: %w\n%s", err, vlog)
}

// attached returns the ids of the device programs attached to the cgroup.
func attached(dirFD int) ([]uint32, error) {
	ids := make([]uint32, 64)
	attr := queryAttr{
		targetFD:   uint32(dirFD),
		attachType: unix.BPF_CGROUP_DEVICE,
		progIDs:    uint64(uintptr(unsafe.Pointer(&ids[0]))),
		progCnt:    uint32(len(ids)),
	}
	_, err := bpf(unix.BPF_PROG_QUERY, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	runtime.KeepAlive(ids)
	if err != nil {
		return nil, fmt.Errorf("bpf(BPF_PROG_QUERY): %w", err)
	}
	return ids[:attr.progCnt], nil
}

// Attach loads the program for rules and attaches it to the cgroup2
// directory open as dirFD. Programs attached before (an earlier Attach on the
// same cgroup) are detached only after the new one is in place, so there is
// no moment without a filter.
//
// BPF_F_ALLOW_MULTI is used, as runc and systemd do, so that a program a
// parent cgroup has (systemd's, a pod's) keeps applying too.
func Attach(dirFD int, rules []Rule) error {
	old, err := attached(dirFD)
	if err != nil {
		return err
	}
	progFD, err := Load(Compile(rules))
	if err != nil {
		return err
	}
	defer unix.Close(progFD)
	attr := attachAttr{
		targetFD:    uint32(dirFD),
		attachBPFFD: uint32(progFD),
		attachType:  unix.BPF_CGROUP_DEVICE,
		attachFlags: unix.BPF_F_ALLOW_MULTI,
	}
	if _, err := bpf(unix.BPF_PROG_ATTACH, unsafe.Pointer(&attr), unsafe.Sizeof(attr)); err != nil {
		return fmt.Errorf("bpf(BPF_PROG_ATTACH) device filter: %w", err)
	}
	for _, id := range old {
		if err := detachID(dirFD, id); err != nil {
			return err
		}
	}
	return nil
}

// Detach removes every device program attached directly to the cgroup.
func Detach(dirFD int) error {
	ids, err := attached(dirFD)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := detachID(dirFD, id); err != nil {
			return err
		}
	}
	return nil
}

func detachID(dirFD int, id uint32) error {
	g := getFDAttr{id: id}
	progFD, err := bpf(unix.BPF_PROG_GET_FD_BY_ID, unsafe.Pointer(&g), unsafe.Sizeof(g))
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil // already gone
		}
		return fmt.Errorf("bpf(BPF_PROG_GET_FD_BY_ID %d): %w", id, err)
	}
	defer unix.Close(progFD)
	attr := attachAttr{
		targetFD:    uint32(dirFD),
		attachBPFFD: uint32(progFD),
		attachType:  unix.BPF_CGROUP_DEVICE,
	}
	if _, err := bpf(unix.BPF_PROG_DETACH, unsafe.Pointer(&attr), unsafe.Sizeof(attr)); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("bpf(BPF_PROG_DETACH %d): %w", id, err)
	}
	return nil
}

// AttachDir opens dir and attaches the filter for rules to it.
func AttachDir(dir string, rules []Rule) error {
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open cgroup %s for device filter: %w", dir, err)
	}
	defer unix.Close(fd)
	if err := Attach(fd, rules); err != nil {
		return fmt.Errorf("device filter on %s: %w", dir, err)
	}
	return nil
}
