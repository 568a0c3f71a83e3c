package devicefilter

import (
	"encoding/binary"
	"fmt"
)

// Insn is one eBPF instruction in the kernel's struct bpf_insn layout.
type Insn struct {
	Code uint8
	Dst  uint8 // 4 bits
	Src  uint8 // 4 bits
	Off  int16
	Imm  int32
}

// Opcodes used by the generated program (see linux/bpf.h and
// linux/bpf_common.h). Only this small subset is ever emitted.
const (
	opLdxMemW   = 0x01 | 0x60        // BPF_LDX|BPF_MEM|BPF_W
	opAnd64Imm  = 0x07 | 0x50        // BPF_ALU64|BPF_AND|BPF_K
	opRsh64Imm  = 0x07 | 0x70        // BPF_ALU64|BPF_RSH|BPF_K
	opMov64Imm  = 0x07 | 0xb0        // BPF_ALU64|BPF_MOV|BPF_K
	opMov64Reg  = 0x07 | 0xb0 | 0x08 // BPF_ALU64|BPF_MOV|BPF_X
	opJeqImm    = 0x05 | 0x10        // BPF_JMP|BPF_JEQ|BPF_K
	opJneImm    = 0x05 | 0x50        // BPF_JMP|BPF_JNE|BPF_K
	opExit      = 0x05 | 0x90        // BPF_JMP|BPF_EXIT
	regCtx      = 1
	regRaw      = 2 // access_type as loaded
	regType     = 3 // device type
	regMajor    = 4
	regMinor    = 5
	regWant     = 6 // access bits not yet granted
	regScratch  = 7
	regRet      = 0
	ctxOffAcc   = 0 // offsetof(struct bpf_cgroup_dev_ctx, access_type)
	ctxOffMajor = 4
	ctxOffMinor = 8
)

// Program is a compiled device filter.
type Program []Insn

// Compile generates the filter for rules, which apply in order as the
// runtime spec says: later rules override earlier ones, and a device no rule
// allows is denied (the same result as writing "a" to devices.deny and then
// each rule to devices.allow/devices.deny on cgroup v1).
//
// The program walks the rules from last to first keeping in regWant the
// access bits of the request not yet decided. A matching allow rule decides
// its bits (clears them; once none are left the request is allowed); a
// matching deny rule that covers an undecided bit denies the request. That is
// exactly "each access bit is decided by the last rule that matches the
// device and names the bit", which is what a request for several bits at
// once (open O_RDWR) needs.
func Compile(rules []Rule) Program {
	p := Program{
		{Code: opLdxMemW, Dst: regRaw, Src: regCtx, Off: ctxOffAcc},
		{Code: opMov64Reg, Dst: regType, Src: regRaw},
		{Code: opAnd64Imm, Dst: regType, Imm: 0xffff},
		{Code: opMov64Reg, Dst: regWant, Src: regRaw},
		{Code: opRsh64Imm, Dst: regWant, Imm: 16},
		{Code: opLdxMemW, Dst: regMajor, Src: regCtx, Off: ctxOffMajor},
		{Code: opLdxMemW, Dst: regMinor, Src: regCtx, Off: ctxOffMinor},
	}
	for i := len(rules) - 1; i >= 0; i-- {
		p = append(p, ruleBlock(rules[i])...)
	}
	return append(p,
		Insn{Code: opMov64Imm, Dst: regRet, Imm: 0},
		Insn{Code: opExit},
	)
}

// ruleBlock emits: the device checks (each jumps past the block on a
// mismatch), then the decision.
func ruleBlock(r Rule) []Insn {
	var body []Insn
	if r.Allow {
		body = []Insn{
			{Code: opAnd64Imm, Dst: regWant, Imm: ^int32(r.Access)},
			{Code: opJneImm, Dst: regWant, Imm: 0, Off: 2},
			{Code: opMov64Imm, Dst: regRet, Imm: 1},
			{Code: opExit},
		}
	} else {
		body = []Insn{
			{Code: opMov64Reg, Dst: regScratch, Src: regWant},
			{Code: opAnd64Imm, Dst: regScratch, Imm: int32(r.Access)},
			{Code: opJeqImm, Dst: regScratch, Imm: 0, Off: 2},
			{Code: opMov64Imm, Dst: regRet, Imm: 0},
			{Code: opExit},
		}
	}
	type check struct {
		reg uint8
		val int32
	}
	var checks []check
	switch r.Type {
	case 'b':
		checks = append(checks, check{regType, TypeBlock})
	case 'c':
		checks = append(checks, check{regType, TypeChar})
	}
	if r.Type != 'a' {
		if r.Major >= 0 {
			checks = append(checks, check{regMajor, int32(r.Major)})
		}
		if r.Minor >= 0 {
			checks = append(checks, check{regMinor, int32(r.Minor)})
		}
	}
	out := make([]Insn, 0, len(checks)+len(body))
	for i, c := range checks {
		skip := len(checks) - i - 1 + len(body)
		out = append(out, Insn{Code: opJneImm, Dst: c.reg, Imm: c.val, Off: int16(skip)})
	}
	return append(out, body...)
}

// Bytes encodes the program as the kernel expects it (struct bpf_insn,
// host byte order; every Linux arch Go targets for containers is little
// endian except s390x, handled by binary.NativeEndian).
func (p Program) Bytes() []byte {
	b := make([]byte, 0, 8*len(p))
	for _, in := range p {
		var regs uint8
		if isBigEndian() {
			regs = in.Dst<<4 | in.Src&0xf
		} else {
			regs = in.Src<<4 | in.Dst&0xf
		}
		b = append(b, in.Code, regs)
		b = binary.NativeEndian.AppendUint16(b, uint16(in.Off))
		b = binary.NativeEndian.AppendUint32(b, uint32(in.Imm))
	}
	return b
}

func isBigEndian() bool {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], 1)
	return b[0] == 0
}

// String disassembles the program, for error messages and debugging.
func (p Program) String() string {
	s := ""
	for i, in := range p {
		s += fmt.Sprintf("%3d: code=%#02x dst=r%d src=r%d off=%d imm=%d\n", i, in.Code, in.Dst, in.Src, in.Off, in.Imm)
	}
	return s
}
