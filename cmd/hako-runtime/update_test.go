package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func cgroupFile(t *testing.T, ctrl, id, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", ctrl, "hako", id, file))
	must(t, err)
	return strings.TrimSpace(string(b))
}

func TestUpdateAndEventsAgreeWithCgroupFiles(t *testing.T) {
	r := newRT(t)
	b := newBundle(t, "sleep", "60")
	b.save()
	id := uniqueID(t)
	r.must("run", "-d", "--bundle", b.dir, id)
	r.must("update", "--memory", "100m", "--pids-limit", "42", "--cpu-quota", "50000", "--cpu-period", "100000", id)
	if v := cgroupFile(t, "memory", id, "memory.limit_in_bytes"); v != "104857600" {
		t.Errorf("memory.limit_in_bytes %s", v)
	}
	if v := cgroupFile(t, "pids", id, "pids.max"); v != "42" {
		t.Errorf("pids.max %s", v)
	}
	if v := cgroupFile(t, "cpu", id, "cpu.cfs_quota_us"); v != "50000" {
		t.Errorf("cpu.cfs_quota_us %s", v)
	}
	// --resources from a file, merged onto the update before.
	res := filepath.Join(t.TempDir(), "res.json")
	must(t, os.WriteFile(res, []byte(`{"pids":{"limit":77}}`), 0o644))
	r.must("update", "--resources", res, id)
	if v := cgroupFile(t, "pids", id, "pids.max"); v != "77" {
		t.Errorf("pids.max after --resources: %s", v)
	}
	if v := cgroupFile(t, "memory", id, "memory.limit_in_bytes"); v != "104857600" {
		t.Errorf("an update of pids changed the memory limit: %s", v)
	}
	var ev struct {
		Type string `json:"type"`
		ID   string `json:"id"`
		Data struct {
			Memory struct {
				Usage struct {
					Limit uint64 `json:"limit"`
					Usage uint64 `json:"usage"`
				} `json:"usage"`
			} `json:"memory"`
			Pids struct {
				Current uint64 `json:"current"`
				Limit   uint64 `json:"limit"`
			} `json:"pids"`
		} `json:"data"`
	}
	must(t, json.Unmarshal([]byte(r.must("events", "--stats", id)), &ev))
	usage := cgroupFile(t, "memory", id, "memory.usage_in_bytes")
	if ev.Type != "stats" || ev.ID != id || ev.Data.Memory.Usage.Limit != 104857600 || ev.Data.Pids.Limit != 77 || ev.Data.Pids.Current != 1 || ev.Data.Memory.Usage.Usage == 0 {
		t.Errorf("events --stats: %+v (memory.usage_in_bytes %s)", ev, usage)
	}
	if _, errs, code := r.run("update", "--memory", "lots", id); code == 0 || !strings.Contains(errs, "memory") {
		t.Errorf("bad --memory: %d %q", code, errs)
	}
	r.must("delete", "--force", id)
	r.assertGone(id, b)
}

func TestEventsReportOOM(t *testing.T) {
	r := newRT(t)
	// A shell that keeps doubling a string until the 16 MiB limit kills it.
	b := newBundle(t, "sh", "-c", "sleep 0.5; x=xxxxxxxxxxxxxxxx; while true; do x=$x$x; done")
	limit := int64(16 << 20)
	b.spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
	b.save()
	id := uniqueID(t)
	r.must("run", "-d", "--bundle", b.dir, id)
	cmd := exec.Command(runtimeBin, "--root", r.root, "events", "--interval", "1h", id)
	out, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	defer cmd.Process.Kill()
	got := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), `"oom"`) {
				got <- sc.Text()
				return
			}
		}
		got <- ""
	}()
	select {
	case line := <-got:
		if line == "" {
			t.Fatal("events ended without an oom event")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no oom event")
	}
	r.run("delete", "--force", id)
	r.assertGone(id, b)
}
