// Package prefault maps the program's own executable into its page tables
// with one madvise(MADV_POPULATE_READ) per segment, instead of one page fault
// per page as the code runs for the first time.
//
// Why: the hako CLI and the runtime's Go commands are short-lived, and most
// of what they run, they run once. On the VMs we measure, a page fault costs
// ~14 µs (every fault is an exit to the hypervisor), and a `hako version`
// takes ~450 of them, ~6 ms: more than a whole Go hello world (5.7 ms). The
// kernel maps 16 pages of page cache per read fault (fault-around), so the
// text alone is still ~100 faults; one populate call maps it all, faulting
// nothing, for the price of the page-table entries (12 MB of text and
// read-only data: ~3000 entries, 24 KiB of page tables).
// bench/runtime/prefault.sh measures it; HAKO_NOPREFAULT=1 turns it off.
//
// Only short-lived programs import it. hako-shim lives as long as its
// container, and its share of the text pages (proportional set size) is
// most of what an idle container costs: with the whole text mapped in each
// shim, bench/engine measured 1028 KiB per idle container against 966-980
// without, over the 1 MiB target. hakod starts once. Importing the package
// is all it takes; its init runs early because it needs only syscall
// (package inits run in import-path order once their imports are done),
// after the Go runtime's own start-up.
//
// MADV_POPULATE_READ is Linux 5.14; on an older kernel the call fails and the
// program faults as before.
package prefault

import "syscall"

// Linux's madvise advice values (5.14+); syscall has no names for them.
const (
	madvPopulateRead  = 22
	madvPopulateWrite = 23
)

func init() {
	if _, off := syscall.Getenv("HAKO_NOPREFAULT"); !off {
		populate()
	}
}

// populate maps every file-backed segment of the executable: read-only ones
// read (text, read-only data, the pcln table), the writable one (initialized
// data) write, so that its copy-on-write happens once rather than a page at
// a time. The BSS is anonymous memory and left alone (in the hako CLI it
// includes a 32 MiB FIPS buffer nothing touches).
func populate() {
	var exe [4096]byte
	n, err := syscall.Readlink("/proc/self/exe", exe[:])
	if err != nil || n <= 0 || n >= len(exe) {
		return
	}
	fd, err := syscall.Open("/proc/self/maps", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	// The executable's mappings come first; one page holds them.
	var buf [4096]byte
	m, _ := syscall.Read(fd, buf[:])
	syscall.Close(fd)
	for _, seg := range segments(buf[:max(m, 0)], string(exe[:n])) {
		advice := uintptr(madvPopulateRead)
		if seg.writable {
			advice = madvPopulateWrite
		}
		syscall.Syscall(syscall.SYS_MADVISE, seg.start, seg.end-seg.start, advice)
	}
}

// segment is one mapping of the executable.
type segment struct {
	start, end uintptr
	writable   bool
}

// segments returns the readable mappings of path in maps (the text of
// /proc/self/maps, possibly cut short), in order. A line reads
// "START-END PERMS OFFSET DEV INODE PATH".
func segments(maps []byte, path string) []segment {
	var segs []segment
	for len(maps) > 0 {
		line := maps
		next := len(maps)
		for i, c := range maps {
			if c == '\n' {
				line, next = maps[:i], i+1
				break
			}
		}
		cut := next == len(maps) && (len(maps) == 0 || maps[len(maps)-1] != '\n')
		maps = maps[next:]
		if cut {
			break // the last line was cut short by the read
		}
		f := fields(line, 6)
		if len(f) < 6 || string(f[5]) != path || len(f[1]) < 2 || f[1][0] != 'r' {
			continue
		}
		start, end, ok := addrRange(f[0])
		if !ok {
			continue
		}
		segs = append(segs, segment{start: start, end: end, writable: f[1][1] == 'w'})
	}
	return segs
}

// fields splits line at runs of spaces into at most n fields, the last
// taking the rest of the line (a path may hold spaces).
func fields(line []byte, n int) [][]byte {
	var f [][]byte
	for len(line) > 0 && len(f) < n {
		for len(line) > 0 && line[0] == ' ' {
			line = line[1:]
		}
		if len(line) == 0 {
			break
		}
		end := len(line)
		if len(f) < n-1 {
			for i, c := range line {
				if c == ' ' {
					end = i
					break
				}
			}
		}
		f = append(f, line[:end])
		line = line[end:]
	}
	return f
}

// addrRange parses "START-END" in hexadecimal.
func addrRange(s []byte) (start, end uintptr, ok bool) {
	cur, seenDash, digits := uintptr(0), false, 0
	for _, c := range s {
		var d uintptr
		switch {
		case c >= '0' && c <= '9':
			d = uintptr(c - '0')
		case c >= 'a' && c <= 'f':
			d = uintptr(c-'a') + 10
		case c == '-' && !seenDash && digits > 0:
			start, cur, seenDash, digits = cur, 0, true, 0
			continue
		default:
			return 0, 0, false
		}
		cur = cur<<4 | d
		digits++
	}
	if !seenDash || digits == 0 || cur <= start {
		return 0, 0, false
	}
	return start, cur, true
}
