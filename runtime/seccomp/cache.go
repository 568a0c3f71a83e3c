package seccomp

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// cacheKeep is how many compiled filters a cache directory keeps.
const cacheKeep = 32

// CompileCached is Compile with the result kept in dir, keyed by the
// profile and by everything else the program depends on: the kernel (which
// actions and flags it knows), libseccomp's version and this binary. Every
// container of an engine gets the same default profile, and compiling
// docker's (300+ rules, for three architectures) costs more than the rest
// of create together; reading it back is a file read. dir is the runtime's
// state root (root-owned, 0700), so the cache is as trusted as the state;
// a file that does not decode is ignored and replaced. An empty dir
// disables the cache.
func CompileCached(s *specs.LinuxSeccomp, dir string) (*Program, error) {
	if s == nil || dir == "" {
		return Compile(s)
	}
	key, err := cacheKey(s)
	if err != nil {
		return Compile(s)
	}
	path := filepath.Join(dir, key+".json")
	if b, err := os.ReadFile(path); err == nil {
		if p, ok := decodeCached(b); ok {
			return p, nil
		}
	}
	p, err := Compile(s)
	if err != nil || p == nil {
		return p, err
	}
	storeCached(dir, path, p)
	return p, nil
}

// cacheKey hashes the profile with the kernel release, libseccomp's
// version and the executable's identity (size and modification time: a
// rebuilt runtime may compile differently).
func cacheKey(s *specs.LinuxSeccomp) (string, error) {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return "", err
	}
	exe, err := os.Stat("/proc/self/exe")
	if err != nil {
		return "", err
	}
	maj, mnr, mic := libseccomp.GetLibraryVersion()
	h := sha256.New()
	fmt.Fprintf(h, "hako-seccomp-cache 2\n%s\n%d.%d.%d\n%d %d\n", unix.ByteSliceToString(uts.Release[:]), maj, mnr, mic,
		exe.Size(), exe.ModTime().UnixNano())
	if err := json.NewEncoder(h).Encode(s); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// cached is a Program as the cache stores it: the filter as one byte
// string (base64 in JSON), not one JSON object per instruction, which made
// reading docker's default profile back cost more than a millisecond.
type cached struct {
	Filter           []byte
	StubLen          int
	Flags            uint
	ListenerPath     string   `json:",omitempty"`
	ListenerMetadata string   `json:",omitempty"`
	Skipped          []string `json:",omitempty"`
}

func decodeCached(b []byte) (*Program, bool) {
	var c cached
	if json.Unmarshal(b, &c) != nil || len(c.Filter) == 0 {
		return nil, false
	}
	ins, err := parseInstructions(c.Filter)
	if err != nil || c.StubLen < 0 || c.StubLen > len(ins) {
		return nil, false
	}
	return &Program{Instructions: ins, StubLen: c.StubLen, Flags: c.Flags,
		ListenerPath: c.ListenerPath, ListenerMetadata: c.ListenerMetadata, Skipped: c.Skipped}, true
}

// storeCached writes p atomically (a reader never sees half a file) and
// trims the directory to the newest cacheKeep entries. Failures only cost
// the next create a compile.
func storeCached(dir, path string, p *Program) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return
	}
	if Keep(path, p) != nil {
		return
	}
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) <= cacheKeep {
		return
	}
	type aged struct {
		name string
		mod  int64
	}
	var files []aged
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			files = append(files, aged{e.Name(), fi.ModTime().UnixNano()})
		}
	}
	slices.SortFunc(files, func(a, b aged) int { return cmp.Compare(b.mod, a.mod) })
	for _, f := range files[min(cacheKeep, len(files)):] {
		os.Remove(filepath.Join(dir, f.name))
	}
}

// Keep writes p to path in the cache's format, atomically. The runtime keeps
// the filter a container's processes run under in the container's state
// directory: exec loads it with LoadKept instead of decoding, hashing and
// looking up the profile again, and gets the very filter the container's
// init got, even after the runtime binary changed.
func Keep(path string, p *Program) error {
	b, err := json.Marshal(cached{Filter: p.Bytes(), StubLen: p.StubLen, Flags: p.Flags,
		ListenerPath: p.ListenerPath, ListenerMetadata: p.ListenerMetadata, Skipped: p.Skipped})
	if err != nil {
		return err
	}
	tmp := path + ".tmp" + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// LoadKept reads a program Keep wrote.
func LoadKept(path string) (*Program, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p, ok := decodeCached(b)
	if !ok {
		return nil, fmt.Errorf("seccomp filter %s: not a kept filter", path)
	}
	return p, nil
}
