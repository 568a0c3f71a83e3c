package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// MakeRootfs builds a minimal busybox root filesystem in dir: the static
// busybox binary, the applet links the workloads call, and the mount points
// every runtime's default spec mounts on.
func MakeRootfs(dir, busybox string) error {
	for _, d := range []string{"bin", "proc", "dev", "sys", "tmp", "etc", "root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return fmt.Errorf("rootfs: %w", err)
		}
	}
	src, err := os.Open(busybox)
	if err != nil {
		return fmt.Errorf("rootfs: busybox: %w", err)
	}
	defer src.Close()
	dst, err := os.OpenFile(filepath.Join(dir, "bin", "busybox"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return fmt.Errorf("rootfs: copy %s: %w", busybox, err)
	}
	if err := dst.Close(); err != nil {
		return fmt.Errorf("rootfs: copy %s: %w", busybox, err)
	}
	for _, applet := range []string{"true", "sh"} {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", applet)); err != nil {
			return fmt.Errorf("rootfs: %w", err)
		}
	}
	return nil
}

// GenerateSpec asks the runtime for its default config.json in bundle
// ("RUNTIME spec --bundle DIR", as runc, crun and hako-runtime all take it).
func GenerateSpec(runtime, bundle string) error {
	out, err := exec.Command(runtime, "spec", "--bundle", bundle).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s spec --bundle %s: %w: %s", runtime, bundle, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// AdaptSpec makes the one change every runtime's default spec gets: run
// /bin/true without a terminal. Everything else stays the runtime's own
// default, so each runtime is measured with the settings it chose.
func AdaptSpec(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read spec: %w", err)
	}
	out, err := adaptSpec(data)
	if err != nil {
		return fmt.Errorf("spec %s: %w", path, err)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		return fmt.Errorf("write spec: %w", err)
	}
	return nil
}

func adaptSpec(data []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // keep big numbers (rlimits, capabilities masks) exact
	var spec map[string]any
	if err := dec.Decode(&spec); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	proc, ok := spec["process"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("no \"process\" object")
	}
	proc["args"] = []string{"/bin/true"}
	proc["terminal"] = false
	return json.MarshalIndent(spec, "", "\t")
}
