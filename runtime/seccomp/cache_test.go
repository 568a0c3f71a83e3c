package seccomp

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestCompileCached: the second compile of a profile is read back from the
// cache and equals a fresh compile; another profile gets its own entry; a
// corrupt entry is recompiled and replaced; the directory stays bounded.
func TestCompileCached(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "@seccomp")
	prof := func(errno uint) *specs.LinuxSeccomp {
		return &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdir", "rmdir"}, Action: specs.ActErrno, ErrnoRet: &errno},
		}}
	}
	fresh, err := Compile(prof(1))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		got, err := CompileCached(prof(1), dir)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Instructions, fresh.Instructions) || got.Flags != fresh.Flags || got.StubLen != fresh.StubLen {
			t.Fatalf("round %d: cached program differs from a fresh compile", i)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("cache holds %d entries, want 1", len(ents))
	}
	// A corrupt entry is not trusted.
	path := filepath.Join(dir, ents[0].Name())
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := CompileCached(prof(1), dir)
	if err != nil || !reflect.DeepEqual(got.Instructions, fresh.Instructions) {
		t.Fatalf("after corruption: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) == "{not json" {
		t.Error("corrupt entry was not replaced")
	}
	// Another profile, another entry, another program.
	other, err := CompileCached(prof(2), dir)
	if err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(other.Instructions, fresh.Instructions) {
		t.Error("a different profile got the same program")
	}
	for i := uint(3); i < cacheKeep+10; i++ {
		if _, err := CompileCached(prof(i), dir); err != nil {
			t.Fatal(err)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) > cacheKeep {
		t.Errorf("cache holds %d entries, more than %d", len(ents), cacheKeep)
	}
}
