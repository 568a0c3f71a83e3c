package seccomp

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// seccompData is struct seccomp_data, the input of a seccomp filter.
type seccompData struct {
	nr   int32
	arch uint32
	ip   uint64
	args [6]uint64
}

func (d seccompData) bytes() []byte {
	b := make([]byte, 64)
	binary.NativeEndian.PutUint32(b[0:], uint32(d.nr))
	binary.NativeEndian.PutUint32(b[4:], d.arch)
	binary.NativeEndian.PutUint64(b[8:], d.ip)
	for i, a := range d.args {
		binary.NativeEndian.PutUint64(b[16+8*i:], a)
	}
	return b
}

// runBPF interprets a classic BPF seccomp program the way the kernel
// does, so tests can check a compiled filter's decisions without loading
// it. It supports the instructions libseccomp and the ENOSYS stub emit and
// fails on anything else rather than guessing.
func runBPF(prog []unix.SockFilter, d seccompData) (uint32, error) {
	in := d.bytes()
	var a, x uint32
	var mem [16]uint32
	for pc := 0; pc < len(prog); pc++ {
		ins := prog[pc]
		switch ins.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			if ins.K%4 != 0 || int(ins.K)+4 > len(in) {
				return 0, fmt.Errorf("pc %d: load at %d", pc, ins.K)
			}
			a = binary.NativeEndian.Uint32(in[ins.K:])
		case unix.BPF_LD | unix.BPF_MEM:
			a = mem[ins.K]
		case unix.BPF_LDX | unix.BPF_MEM:
			x = mem[ins.K]
		case unix.BPF_LD | unix.BPF_IMM:
			a = ins.K
		case unix.BPF_LDX | unix.BPF_IMM:
			x = ins.K
		case unix.BPF_ST:
			mem[ins.K] = a
		case unix.BPF_STX:
			mem[ins.K] = x
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K:
			a &= ins.K
		case unix.BPF_ALU | unix.BPF_OR | unix.BPF_K:
			a |= ins.K
		case unix.BPF_MISC | unix.BPF_TAX:
			x = a
		case unix.BPF_MISC | unix.BPF_TXA:
			a = x
		case unix.BPF_JMP | unix.BPF_JA:
			pc += int(ins.K)
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K,
			unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K, unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K,
			unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_X, unix.BPF_JMP | unix.BPF_JGT | unix.BPF_X,
			unix.BPF_JMP | unix.BPF_JGE | unix.BPF_X, unix.BPF_JMP | unix.BPF_JSET | unix.BPF_X:
			v := ins.K
			if ins.Code&0x08 == unix.BPF_X {
				v = x
			}
			var cond bool
			switch ins.Code & 0xf0 {
			case unix.BPF_JEQ:
				cond = a == v
			case unix.BPF_JGT:
				cond = a > v
			case unix.BPF_JGE:
				cond = a >= v
			case unix.BPF_JSET:
				cond = a&v != 0
			}
			if cond {
				pc += int(ins.Jt)
			} else {
				pc += int(ins.Jf)
			}
		case unix.BPF_RET | unix.BPF_K:
			return ins.K, nil
		case unix.BPF_RET | unix.BPF_A:
			return a, nil
		default:
			return 0, fmt.Errorf("pc %d: instruction %#x not supported by the test interpreter", pc, ins.Code)
		}
	}
	return 0, fmt.Errorf("program fell off its end")
}
