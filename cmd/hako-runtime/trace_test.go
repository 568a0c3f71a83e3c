package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// traceWriterEnv makes the test binary a writer of traceLines lines to its
// fd 3 (TestTraceMemfdKeepsLines).
const traceWriterEnv = "HAKO_TEST_TRACE_WRITER"

const traceLines = 20000

func writeTraceLines() int {
	f := os.NewFile(3, "trace")
	id := os.Getenv(traceWriterEnv)
	for i := range traceLines {
		if _, err := fmt.Fprintf(f, "{\"writer\":%q,\"line\":%d,\"name\":\"runtime.rootfs.mount\"}\n", id, i); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}

// TestTraceMemfdKeepsLines: several processes write lines at once to the
// memfd --trace collects spans in, as the runtime and the container's init
// do, and every line is there, whole. Without O_APPEND on it, lines were
// lost: a memfd's file position is not shared atomically between processes.
func TestTraceMemfdKeepsLines(t *testing.T) {
	f, err := traceMemfd()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const writers = 4
	var cmds []*exec.Cmd
	for w := range writers {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=w%d", traceWriterEnv, w))
		cmd.ExtraFiles = []*os.File{f}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("writer: %v", err)
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	bad := 0
	for _, l := range lines {
		if !strings.HasPrefix(l, "{\"writer\":\"w") || !strings.HasSuffix(l, "\"name\":\"runtime.rootfs.mount\"}") {
			bad++
		}
	}
	if len(lines) != writers*traceLines || bad != 0 {
		t.Fatalf("%d lines (%d spoiled) in the trace memfd, want %d whole ones", len(lines), bad, writers*traceLines)
	}
}
