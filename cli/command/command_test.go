package command

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

func newCmd() *cobra.Command {
	root := &cobra.Command{Use: "hako"}
	c := &cobra.Command{Use: "stop [OPTIONS] CONTAINER [CONTAINER...]", DisableFlagsInUseLine: true}
	root.AddCommand(c)
	return c
}

func TestArgValidators(t *testing.T) {
	cmd := newCmd()
	for _, c := range []struct {
		fn   cobra.PositionalArgs
		args []string
		want string
	}{
		{MinArgs(1), nil, "hako: 'hako stop' requires at least 1 argument\n\nUsage:  hako stop [OPTIONS] CONTAINER [CONTAINER...]\n\nSee 'hako stop --help' for more information"},
		{MinArgs(2), []string{"a"}, "requires at least 2 arguments"},
		{MaxArgs(1), []string{"a", "b"}, "requires at most 1 argument\n\nUsage:  hako stop [OPTIONS] CONTAINER [CONTAINER...]\n\nSRun 'hako stop --help'"},
		{ExactArgs(1), nil, "hako: 'hako stop' requires 1 argument"},
		{RangeArgs(1, 2), nil, "requires at least 1 and at most 2 arguments"},
		{NoArgs, []string{"x"}, "hako: 'hako stop' accepts no arguments"},
	} {
		err := c.fn(cmd, c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want %q", c.args, err, c.want)
		}
	}
	for _, ok := range []error{MinArgs(1)(cmd, []string{"a"}), MaxArgs(1)(cmd, nil), ExactArgs(0)(cmd, nil), RangeArgs(0, 1)(cmd, nil), NoArgs(cmd, nil)} {
		if ok != nil {
			t.Errorf("valid args refused: %v", ok)
		}
	}
}

func TestFlagErrorAndWithHelp(t *testing.T) {
	cmd := newCmd()
	err := FlagError(cmd, errors.New("unknown flag: --foo"))
	var se StatusError
	if !errors.As(err, &se) || se.StatusCode != 125 ||
		se.Error() != "unknown flag: --foo\n\nUsage:  hako stop [OPTIONS] CONTAINER [CONTAINER...]\n\nRun 'hako stop --help' for more information" {
		t.Fatalf("FlagError = %#v", err)
	}
	if FlagError(cmd, nil) != nil {
		t.Fatal("nil stays nil")
	}
	if got := WithHelp(cmd, errors.New("boom")).Error(); got != "hako: boom\n\nRun 'hako stop --help' for more information" {
		t.Fatalf("WithHelp = %q", got)
	}
	if (StatusError{Cause: errors.New("c")}).Error() != "c" || (StatusError{}).Error() != "" {
		t.Fatal("StatusError text")
	}
}

func TestParallelKeepsOrder(t *testing.T) {
	var inFlight, most atomic.Int32
	names := []string{"a", "b", "c", "d"}
	errs := Parallel(names, func(n string) error {
		if v := inFlight.Add(1); v > most.Load() {
			most.Store(v)
		}
		time.Sleep(20 * time.Millisecond)
		inFlight.Add(-1)
		if n == "c" {
			return errors.New("no such container: c")
		}
		return nil
	})
	if errs[2] == nil || errs[0] != nil || errs[3] != nil {
		t.Fatalf("errors out of order: %v", errs)
	}
	if most.Load() < 2 {
		t.Fatal("not parallel")
	}
	var out strings.Builder
	err := EachPrint(&out, names, func(n string) error {
		if n == "b" || n == "d" {
			return errors.New("bad " + n)
		}
		return nil
	})
	if out.String() != "a\nc\n" || err == nil || err.Error() != "bad b\nbad d" {
		t.Fatalf("EachPrint: %q %v", out.String(), err)
	}
}
