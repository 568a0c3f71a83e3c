package seccomp

import (
	"fmt"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// Per-architecture compilation.
//
// libseccomp's BPF generator slows down sharply with every architecture
// added to one filter: docker's profile takes about 2-3 ms for x86_64 alone
// but about 40 ms for the x86_64, x86 and x32 that docker lists, on every
// `docker run`. So hako builds one libseccomp filter per architecture and
// joins their programs behind a small dispatcher on seccomp_data.arch (and,
// for x86_64, on the x32 bit of the syscall number):
//
//	ld  [4]
//	jeq AUDIT_ARCH_X86_64, 0, next
//	ld  [0]
//	jset 0x40000000, 0, 1
//	ja  x32_program
//	ja  x86_64_program
//	next: jeq AUDIT_ARCH_I386, 0, 1
//	ja  i386_program
//	ja  first_program         ; unknown arch: its own bad-arch check refuses it
//	x86_64_program ...        ; each is libseccomp's complete program
//
// Every libseccomp program checks the architecture again and ends every
// path in a return, so each keeps exactly the meaning it has inside a
// merged filter; a test compares the two on every syscall number.

// progPart is the program of one architecture.
type progPart struct {
	arch  libseccomp.ScmpArch
	audit uint32
	prog  []unix.SockFilter
}

// buildPerArch compiles each architecture separately and joins them; with
// a single architecture it is exactly build.
func buildPerArch(def action, arches []libseccomp.ScmpArch, archFields []string, rules []rule) ([]unix.SockFilter, error) {
	if len(arches) == 1 {
		return build(def, arches, archFields, rules)
	}
	parts := make([]progPart, 0, len(arches))
	for i, a := range arches {
		audit, ok := auditArch(a)
		if !ok {
			// Cannot dispatch on it: let libseccomp merge everything.
			return build(def, arches, archFields, rules)
		}
		prog, err := build(def, []libseccomp.ScmpArch{a}, []string{archFields[i]}, rules)
		if err != nil {
			return nil, err
		}
		parts = append(parts, progPart{arch: a, audit: audit, prog: prog})
	}
	return join(parts)
}

// join places the dispatcher in front of the parts' programs.
func join(parts []progPart) ([]unix.SockFilter, error) {
	// Group the parts by audit value; only x86_64 and x32 share one.
	type group struct {
		audit     uint32
		main, x32 int // part index or -1
	}
	var groups []group
	for i, p := range parts {
		gi := -1
		for j := range groups {
			if groups[j].audit == p.audit {
				gi = j
			}
		}
		if gi < 0 {
			groups = append(groups, group{audit: p.audit, main: -1, x32: -1})
			gi = len(groups) - 1
		}
		g := &groups[gi]
		switch {
		case p.arch == libseccomp.ArchX32 && g.x32 < 0:
			g.x32 = i
		case p.arch != libseccomp.ArchX32 && g.main < 0:
			g.main = i
		default:
			return nil, fmt.Errorf("linux.seccomp: two architectures share AUDIT_ARCH %#x", p.audit)
		}
	}

	var d []unix.SockFilter
	type jumpTo struct{ at, part int }
	var jumps []jumpTo
	ja := func(part int) {
		jumps = append(jumps, jumpTo{at: len(d), part: part})
		d = append(d, unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JA})
	}
	d = append(d, unix.SockFilter{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: offArch})
	for _, g := range groups {
		if g.main >= 0 && g.x32 >= 0 {
			d = append(d,
				unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: g.audit, Jf: 4},
				unix.SockFilter{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: offNr},
				unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K, K: x32Bit, Jf: 1})
			ja(g.x32)
			ja(g.main)
			continue
		}
		only := g.main
		if only < 0 {
			only = g.x32
		}
		d = append(d, unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: g.audit, Jf: 1})
		ja(only)
	}
	ja(0)

	starts := make([]int, len(parts))
	pos := len(d)
	for i, p := range parts {
		starts[i] = pos
		pos += len(p.prog)
	}
	for _, j := range jumps {
		d[j.at].K = uint32(starts[j.part] - j.at - 1)
	}
	out := make([]unix.SockFilter, 0, pos)
	out = append(out, d...)
	for _, p := range parts {
		out = append(out, p.prog...)
	}
	return out, nil
}
