package archive_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/hako-project/hako/snapshot"
)

// mountAndCheck mounts a container snapshot, checks files present with
// content and files absent, and unmounts.
func mountAndCheck(t *testing.T, mounts []snapshot.Mount, target string, present map[string]string, absent []string) (err error) {
	if err := snapshot.MountAll(mounts, target); err != nil {
		return err
	}
	defer func() {
		if uerr := snapshot.UnmountAll(target); uerr != nil && err == nil {
			err = uerr
		}
	}()
	for p, want := range present {
		b, err := os.ReadFile(filepath.Join(target, p))
		if err != nil || string(b) != want {
			return fmt.Errorf("%s = %q, %v; want %q", p, b, err, want)
		}
	}
	for _, p := range absent {
		if _, err := os.Lstat(filepath.Join(target, p)); err == nil {
			return fmt.Errorf("%s still visible", p)
		}
	}
	return nil
}
