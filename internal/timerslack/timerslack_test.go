package timerslack

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/internal/timerslack/timerslacktest"
)

// slackOf reads a thread's (or process's) timer slack from /proc.
func slackOf(t *testing.T, tid string) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + tid + "/timerslack_ns")
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// childSlack is the slack of a process started by start(cmd).
func childSlack(t *testing.T, start func(*exec.Cmd) error) string {
	t.Helper()
	cmd := exec.Command("/bin/cat", "/proc/self/timerslack_ns")
	var out strings.Builder
	cmd.Stdout = &out
	if err := start(cmd); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out.String())
}

// TestCoarsenAndFork: every thread of the process gets the coarse slack,
// threads made later too; a process started with Fork gets the original
// and one started without it the coarse one (so the test sees the
// difference Fork makes); the thread Fork used is coarse again after.
func TestCoarsenAndFork(t *testing.T) {
	// A slack of our own choosing, on the main thread and sysmon alike,
	// so that "original" cannot be mistaken for the kernel's default.
	const start = 123457
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, start, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	canSetOthers := true
	for _, task := range tasks {
		if err := os.WriteFile("/proc/"+task.Name()+"/timerslack_ns", []byte(strconv.Itoa(start)), 0); err != nil {
			canSetOthers = false // no CAP_SYS_NICE
		}
	}

	Coarsen()
	if original != start {
		t.Fatalf("original = %d, want %d", original, start)
	}
	cur, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	if err != nil || cur != Coarse {
		t.Fatalf("calling thread's slack %d (%v), want %d", cur, err, Coarse)
	}
	if canSetOthers {
		tasks, _ := os.ReadDir("/proc/self/task")
		for _, task := range tasks {
			if s := slackOf(t, task.Name()); s != Coarse {
				t.Errorf("thread %s: slack %d after Coarsen, want %d", task.Name(), s, Coarse)
			}
		}
	}
	// A thread made now copies a coarse one.
	done := make(chan int)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		v, _ := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
		done <- v
	}()
	if v := <-done; v != Coarse {
		t.Errorf("a new thread's slack is %d, want %d", v, Coarse)
	}

	if got := childSlack(t, func(c *exec.Cmd) error { return Fork(c.Start) }); got != strconv.Itoa(start) {
		t.Errorf("a process started with Fork has slack %s, want the original %d", got, start)
	}
	if got := childSlack(t, (*exec.Cmd).Start); got != strconv.Itoa(Coarse) {
		t.Errorf("a process started without Fork has slack %s, want the coarse %d", got, Coarse)
	}
	if cur, _ := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0); cur != Coarse {
		t.Errorf("the thread Fork used kept slack %d, want %d", cur, Coarse)
	}

	// Again: nothing changes, the original stays known.
	Coarsen()
	if original != start {
		t.Errorf("a second Coarsen made the original %d, want %d", original, start)
	}
}

// TestCoarsenFromBirth: a program started with the coarse slack and
// $_HAKO_TIMERSLACK (as hakod starts a shim, and hako-runtime's constructor
// hands over to its Go side) takes the variable as its original and removes
// it; one started with another slack ignores the variable.
func TestCoarsenFromBirth(t *testing.T) {
	if os.Getenv("TIMERSLACK_TEST_CHILD") == "1" {
		Coarsen()
		_, kept := os.LookupEnv(EnvOriginal)
		cur, _ := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
		fmt.Printf("original=%d current=%d kept=%v\n", original, cur, kept)
		os.Exit(0)
	}
	for _, c := range []struct {
		slack int
		want  string
	}{
		{Coarse, "original=77777 current=2000000 kept=false"},
		// Not started coarse: the variable is not to be trusted.
		{88888, "original=88888 current=2000000 kept=false"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCoarsenFromBirth$")
		cmd.Env = append(os.Environ(), "TIMERSLACK_TEST_CHILD=1", EnvOriginal+"=77777")
		var out []byte
		var err error
		timerslacktest.With(t, c.slack, func() { out, err = cmd.Output() })
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(out)); !strings.Contains(got, c.want) {
			t.Errorf("started with slack %d: %q, want %q", c.slack, got, c.want)
		}
	}
}
