package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAdaptSpecChangesOnlyArgsAndTerminal(t *testing.T) {
	in := `{"ociVersion":"1.0.2","process":{"terminal":true,"args":["sh"],"cwd":"/",
	"rlimits":[{"type":"RLIMIT_NOFILE","hard":18446744073709551615,"soft":1024}]},
	"root":{"path":"rootfs","readonly":true},"x-unknown":{"kept":[1,2]}}`
	out, err := adaptSpec([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	proc := got["process"].(map[string]any)
	if args := proc["args"].([]any); len(args) != 1 || args[0] != "/bin/true" {
		t.Errorf("args = %v", args)
	}
	if proc["terminal"] != false || proc["cwd"] != "/" {
		t.Errorf("process = %v", proc)
	}
	if !strings.Contains(string(out), "18446744073709551615") {
		t.Errorf("a 64-bit rlimit lost precision:\n%s", out)
	}
	if _, ok := got["x-unknown"]; !ok || got["root"].(map[string]any)["readonly"] != true {
		t.Errorf("other fields not kept: %v", got)
	}
}

func TestAdaptSpecRejects(t *testing.T) {
	for name, in := range map[string]string{
		"not JSON":      `{`,
		"array":         `[]`,
		"no process":    `{"root":{"path":"rootfs"}}`,
		"process value": `{"process":"sh"}`,
	} {
		if _, err := adaptSpec([]byte(in)); err == nil {
			t.Errorf("%s: accepted %s", name, in)
		}
	}
}

func TestAdaptSpecFileErrorsLeaveFileAlone(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config.json")
	if err := AdaptSpec(p); err == nil {
		t.Error("missing file accepted")
	}
	if err := os.WriteFile(p, []byte(`{"root":{}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := AdaptSpec(p); err == nil {
		t.Error("spec without process accepted")
	}
	if data, _ := os.ReadFile(p); string(data) != `{"root":{}}` {
		t.Errorf("rejected spec was rewritten: %s", data)
	}
}

func TestMakeRootfs(t *testing.T) {
	busybox := filepath.Join(t.TempDir(), "busybox")
	if err := os.WriteFile(busybox, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "rootfs")
	if err := MakeRootfs(dir, busybox); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, "bin", "true"))
	if err != nil || st.Mode()&0o111 == 0 {
		t.Fatalf("bin/true: %v %v", st, err)
	}
	if l, _ := os.Readlink(filepath.Join(dir, "bin", "true")); l != "busybox" {
		t.Errorf("bin/true -> %q", l)
	}
	for _, d := range []string{"proc", "dev", "sys"} {
		if st, err := os.Stat(filepath.Join(dir, d)); err != nil || !st.IsDir() {
			t.Errorf("mount point %s missing", d)
		}
	}
	if err := MakeRootfs(filepath.Join(t.TempDir(), "r"), "/nonexistent/busybox"); err == nil {
		t.Error("missing busybox accepted")
	}
}
