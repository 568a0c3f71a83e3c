package command

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
)

// Confirm asks a yes/no question as docker does: the message, " [y/N] ",
// then one line of in; only "y" (any case) is yes. A cancelled ctx (^C)
// is a no.
func Confirm(ctx context.Context, in io.Reader, out io.Writer, message string) bool {
	fmt.Fprint(out, message+" [y/N] ")
	answer := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(in)
		answer <- sc.Scan() && strings.EqualFold(strings.TrimSpace(sc.Text()), "y")
	}()
	select {
	case <-ctx.Done():
		fmt.Fprintln(out)
		return false
	case ok := <-answer:
		return ok
	}
}

// FilterFlag is docker's repeatable --filter NAME=VALUE, as the prune
// commands take it.
type FilterFlag struct{ values []string }

var _ pflag.Value = (*FilterFlag)(nil)

func (f *FilterFlag) String() string { return "" }

// Set checks the NAME=VALUE form.
func (f *FilterFlag) Set(s string) error {
	k, _, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("bad format of filter (expected name=value)")
	}
	f.values = append(f.values, s)
	return nil
}

// Type names the value in help.
func (f *FilterFlag) Type() string { return "filter" }

// Values returns NAME=VALUE strings in order.
func (f *FilterFlag) Values() []string { return f.values }
