package progress

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestJSONIsDockersWireFormat(t *testing.T) {
	var buf bytes.Buffer
	j := NewJSON(&buf)
	j.Emit(Event{ID: "latest", Status: "Pulling from library/busybox"})
	j.Emit(Event{ID: "abcdef123456", Status: StatusDownloading, Current: 500, Total: 1000})
	j.Emit(Event{Error: "pull failed: boom"})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("lines: %q", lines)
	}
	var m map[string]any
	json.Unmarshal([]byte(lines[1]), &m)
	pd := m["progressDetail"].(map[string]any)
	if m["status"] != "Downloading" || m["id"] != "abcdef123456" || pd["current"] != 500.0 || pd["total"] != 1000.0 || !strings.Contains(m["progress"].(string), "500B/1kB") {
		t.Errorf("progress message %s", lines[1])
	}
	json.Unmarshal([]byte(lines[2]), &m)
	if m["error"] != "pull failed: boom" || m["errorDetail"].(map[string]any)["message"] != "pull failed: boom" {
		t.Errorf("error message %s", lines[2])
	}
}

func TestTerminalRedrawsInPlaceOnATTY(t *testing.T) {
	var buf bytes.Buffer
	term := NewTerminal(&buf, true)
	term.Emit(Event{ID: "aaa", Status: StatusPullingFSL})
	term.Emit(Event{ID: "bbb", Status: StatusPullingFSL})
	term.Emit(Event{ID: "aaa", Status: StatusDownloading, Current: 50, Total: 100})
	out := buf.String()
	if !strings.Contains(out, "\x1b[2A") || !strings.Contains(out, "aaa: Downloading [=========================>") {
		t.Errorf("no in-place redraw: %q", out)
	}
	buf.Reset()
	plain := NewTerminal(&buf, false)
	for i := 0; i < 5; i++ {
		plain.Emit(Event{ID: "aaa", Status: StatusDownloading, Current: int64(i), Total: 5})
	}
	plain.Emit(Event{ID: "aaa", Status: StatusPullComplete})
	if got := strings.Count(buf.String(), "\n"); got != 2 || strings.Contains(buf.String(), "\x1b") {
		t.Errorf("non-tty output: %q", buf.String())
	}
}

func TestThrottleKeepsStatusChanges(t *testing.T) {
	var mu sync.Mutex
	var got []Event
	f := Throttle(func(e Event) { mu.Lock(); got = append(got, e); mu.Unlock() }, time.Hour)
	f(Event{ID: "a", Status: StatusDownloading, Current: 1, Total: 10})
	for i := 2; i < 10; i++ {
		f(Event{ID: "a", Status: StatusDownloading, Current: int64(i), Total: 10})
	}
	f(Event{ID: "a", Status: StatusDownloading, Current: 10, Total: 10})
	f(Event{ID: "a", Status: StatusDownloaded})
	if len(got) != 3 || got[1].Current != 10 || got[2].Status != StatusDownloaded {
		t.Errorf("throttled: %+v", got)
	}
	if ShortID("sha256:0123456789abcdef") != "0123456789ab" || Bar(0, 0, 10) != "0B" {
		t.Error("ShortID/Bar")
	}
}
