// Package nsexec starts a container's processes: the init of a new container
// and the processes `exec` adds to a running one.
//
// The parent (Go) decides everything and writes it down as a Program, a list
// of operations; the child re-executes this binary from a sealed copy and a
// C constructor (nsexec.c) carries the program out before the Go runtime
// starts. That split is what lets the child join mount and user namespaces
// (refused to a multi-threaded Go process) and keeps a container start cheap.
// README.md beside this file describes which process does what.
package nsexec

/*
#include "proto.h"
extern unsigned long hako_original_slack;
#include <stdint.h>
int hako_self_text(uintptr_t *starts, uintptr_t *ends, int max);
*/
import "C"

import (
	"encoding/binary"
	"encoding/json"
)

// Op is an operation code of the init program (see proto.h).
type Op uint32

// Operations, in the order a container init usually needs them.
const (
	OpFDs         Op = C.HAKO_OP_FDS
	OpTrace       Op = C.HAKO_OP_TRACE
	OpSpanBegin   Op = C.HAKO_OP_SPAN_BEGIN
	OpSpanEnd     Op = C.HAKO_OP_SPAN_END
	OpPdeathsig   Op = C.HAKO_OP_PDEATHSIG
	OpSetns       Op = C.HAKO_OP_SETNS
	OpUnshare     Op = C.HAKO_OP_UNSHARE
	OpUsernsSync  Op = C.HAKO_OP_USERNS_SYNC
	OpSetidRoot   Op = C.HAKO_OP_SETID_ROOT
	OpWrite       Op = C.HAKO_OP_WRITE
	OpFork        Op = C.HAKO_OP_FORK
	OpSetsid      Op = C.HAKO_OP_SETSID
	OpPropagation Op = C.HAKO_OP_PROPAGATION
	OpRootfs      Op = C.HAKO_OP_ROOTFS
	OpMount       Op = C.HAKO_OP_MOUNT
	OpMkdir       Op = C.HAKO_OP_MKDIR
	OpMknod       Op = C.HAKO_OP_MKNOD
	OpBindDev     Op = C.HAKO_OP_BIND_DEV
	OpSymlink     Op = C.HAKO_OP_SYMLINK
	OpHooksSync   Op = C.HAKO_OP_HOOKS_SYNC
	OpHook        Op = C.HAKO_OP_HOOK
	OpPivotRoot   Op = C.HAKO_OP_PIVOT_ROOT
	OpChroot      Op = C.HAKO_OP_CHROOT
	OpConsole     Op = C.HAKO_OP_CONSOLE
	OpRemountRO   Op = C.HAKO_OP_REMOUNT_RO
	OpMask        Op = C.HAKO_OP_MASK
	OpHostname    Op = C.HAKO_OP_HOSTNAME
	OpDomainname  Op = C.HAKO_OP_DOMAINNAME
	OpRlimit      Op = C.HAKO_OP_RLIMIT
	OpChdir       Op = C.HAKO_OP_CHDIR
	OpUser        Op = C.HAKO_OP_USER
	OpUmask       Op = C.HAKO_OP_UMASK
	OpCaps        Op = C.HAKO_OP_CAPS
	OpKeepCaps    Op = C.HAKO_OP_KEEPCAPS
	OpNoNewPrivs  Op = C.HAKO_OP_NNP
	OpSeccomp     Op = C.HAKO_OP_SECCOMP
	OpPersonality Op = C.HAKO_OP_PERSONALITY
	OpIOPrio      Op = C.HAKO_OP_IOPRIO
	OpSched       Op = C.HAKO_OP_SCHED
	OpCloseFDs    Op = C.HAKO_OP_CLOSE_FDS
	OpLookup      Op = C.HAKO_OP_LOOKUP
	OpWaitStart   Op = C.HAKO_OP_WAIT_START
	OpExec        Op = C.HAKO_OP_EXEC
	OpKeyring     Op = C.HAKO_OP_KEYRING
	maxOp         Op = C.HAKO_OP_MAX
	msgBootstrap     = C.HAKO_MSG_BOOTSTRAP
	msgPid           = C.HAKO_MSG_PID
	msgUserns        = C.HAKO_MSG_USERNS
	msgHooks         = C.HAKO_MSG_HOOKS
	msgSeccompFD     = C.HAKO_MSG_SECCOMP_FD
	msgReady         = C.HAKO_MSG_READY
	msgAck           = C.HAKO_MSG_ACK
	msgStart         = C.HAKO_MSG_START
	msgError         = C.HAKO_MSG_ERROR
	initEnv          = C.HAKO_INIT_ENV
	// The constructor's copy of internal/timerslack's constant.
	coarseSlack = C.HAKO_COARSE_SLACK
)

// OriginalTimerSlack is the timer slack (ns) this process was started with
// if the constructor made it coarse before Go started (nsexec.c), else 0.
// Hand it to timerslack.CoarsenFrom.
func OriginalTimerSlack() uint64 { return uint64(C.hako_original_slack) }

// OwnText returns the [start, end) ranges of this process's executable
// that are never written (its text and read-only data): the file holds
// their contents, so dropping their page-table entries (MADV_DONTNEED)
// loses nothing, and they fault in again from the page cache when used.
func OwnText() [][2]uintptr {
	var starts, ends [8]C.uintptr_t
	n := int(C.hako_self_text(&starts[0], &ends[0], C.int(len(starts))))
	out := make([][2]uintptr, n)
	for i := range out {
		out[i] = [2]uintptr{uintptr(starts[i]), uintptr(ends[i])}
	}
	return out
}

// Step names an operation for the trace and for error messages: Span is the
// span name (empty: no span of its own), Field the spec field it carries out
// and Attrs the span attributes.
type Step struct {
	Span  string
	Field string
	Attrs map[string]string
}

// Program is the list of operations a container process carries out. Each
// operation's fields must match what nsexec.c reads for that code.
type Program struct {
	buf []byte
	ops []Op // kept for tests and for describing a program
}

// Strs is a string list field.
type Strs []string

// Raw is a byte-string field without a trailing NUL (a BPF program).
type Raw []byte

// Add appends an operation. Fields may be string, Strs, Raw, bool or any
// integer type (sent as 8 bytes).
func (p *Program) Add(op Op, s Step, fields ...any) {
	var body []byte
	attrs := ""
	if s.Span != "" && len(s.Attrs) > 0 {
		b, _ := json.Marshal(s.Attrs)
		attrs = string(b)
	}
	body = appendStr(body, s.Span)
	body = appendStr(body, s.Field)
	body = appendStr(body, attrs)
	for _, f := range fields {
		switch v := f.(type) {
		case string:
			body = appendStr(body, v)
		case Strs:
			body = appendU64(body, uint64(len(v)))
			for _, s := range v {
				body = appendStr(body, s)
			}
		case Raw:
			body = binary.LittleEndian.AppendUint32(body, uint32(len(v)))
			body = append(body, v...)
		case bool:
			n := uint64(0)
			if v {
				n = 1
			}
			body = appendU64(body, n)
		case int:
			body = appendU64(body, uint64(v))
		case int32:
			body = appendU64(body, uint64(int64(v)))
		case int64:
			body = appendU64(body, uint64(v))
		case uint:
			body = appendU64(body, uint64(v))
		case uint32:
			body = appendU64(body, uint64(v))
		case uint64:
			body = appendU64(body, v)
		default:
			panic("nsexec: unsupported field type")
		}
	}
	p.buf = binary.LittleEndian.AppendUint32(p.buf, uint32(op))
	p.buf = binary.LittleEndian.AppendUint32(p.buf, uint32(len(body)))
	p.buf = append(p.buf, body...)
	p.ops = append(p.ops, op)
}

// Begin opens a grouping span; End closes it.
func (p *Program) Begin(span string, attrs map[string]string) {
	p.Add(OpSpanBegin, Step{Span: span, Attrs: attrs})
}

// End closes the innermost grouping span.
func (p *Program) End() { p.Add(OpSpanEnd, Step{}) }

// Ops lists the operation codes in order.
func (p *Program) Ops() []Op { return p.ops }

// Bytes is the encoded program.
func (p *Program) Bytes() []byte { return p.buf }

func appendStr(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s)+1))
	b = append(b, s...)
	return append(b, 0)
}

func appendU64(b []byte, v uint64) []byte {
	b = binary.LittleEndian.AppendUint32(b, 8)
	return binary.LittleEndian.AppendUint64(b, v)
}
