// Package command holds what every hako command shares: the CLI's streams,
// its lazily built Engine API client, docker's exit-status error and the
// argument checks and messages docker prints. The commands themselves live
// in the container, image and system sub-packages.
package command

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/hako-project/hako/cli/apiclient"
	"github.com/hako-project/hako/cli/streams"
	"github.com/spf13/cobra"
)

// Cli is the environment commands run in.
type Cli struct {
	In  *streams.In
	Out *streams.Out
	Err *streams.Out
	Log *slog.Logger
	// Getenv is os.Getenv outside tests.
	Getenv func(string) string
	// Version is hako's version, reported by `hako version`.
	Version string

	// Host is the -H flag; resolved against the environment on first use.
	Host string
	// ConfigDir is --config: where docker's config.json (registry
	// credentials) lives; "" means $DOCKER_CONFIG, else ~/.docker.
	ConfigDir string

	client *apiclient.Client
}

// Client returns the API client, building it on first use so that
// `--help` and flag errors never touch the daemon.
func (c *Cli) Client() (*apiclient.Client, error) {
	if c.client != nil {
		return c.client, nil
	}
	host, err := apiclient.ResolveHost(c.Host, c.Getenv)
	if err != nil {
		return nil, err
	}
	cl, err := apiclient.New(host, "hako-cli/"+c.Version+" (linux)")
	if err != nil {
		return nil, err
	}
	c.client = cl
	return cl, nil
}

// ClientIfUsed returns the client when a request was sent, else nil.
func (c *Cli) ClientIfUsed() *apiclient.Client {
	if c.client != nil && c.client.Used() {
		return c.client
	}
	return nil
}

// Close releases the client's idle connections.
func (c *Cli) Close() {
	if c.client != nil {
		_ = c.client.Close()
	}
}

// StatusError ends the CLI with StatusCode, printing Status (if any).
type StatusError struct {
	Cause      error
	Status     string
	StatusCode int
}

func (e StatusError) Error() string {
	if e.Status != "" {
		return e.Status
	}
	if e.Cause != nil {
		return e.Cause.Error()
	}
	return ""
}

func (e StatusError) Unwrap() error { return e.Cause }

// WithHelp decorates err as docker's run and create do:
// "hako: ERR\n\nRun 'hako run --help' for more information".
func WithHelp(cmd *cobra.Command, err error) error {
	return fmt.Errorf("%s: %w\n\nRun '%s --help' for more information", cmd.Root().Name(), err, cmd.CommandPath())
}

// FlagError formats a flag parsing error with usage, exit status 125.
func FlagError(cmd *cobra.Command, err error) error {
	if err == nil {
		return nil
	}
	return StatusError{
		Cause:      err,
		Status:     fmt.Sprintf("%s\n\nUsage:  %s\n\nRun '%s --help' for more information", err, cmd.UseLine(), cmd.CommandPath()),
		StatusCode: 125,
	}
}

func plural(word string, n int) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// NoArgs refuses arguments (or names an unknown sub-command).
func NoArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if cmd.HasSubCommands() {
		return fmt.Errorf("%s: unknown command: %s %s\n\nUsage:  %s\n\nRun '%s --help' for more information",
			cmd.Root().Name(), cmd.CommandPath(), args[0], cmd.UseLine(), cmd.CommandPath())
	}
	return fmt.Errorf("%s: '%s' accepts no arguments\n\nUsage:  %s\n\nRun '%s --help' for more information",
		cmd.Root().Name(), cmd.CommandPath(), cmd.UseLine(), cmd.CommandPath())
}

// MinArgs requires at least n arguments.
func MinArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= n {
			return nil
		}
		return fmt.Errorf("%s: '%s' requires at least %d %s\n\nUsage:  %s\n\nSee '%s --help' for more information",
			cmd.Root().Name(), cmd.CommandPath(), n, plural("argument", n), cmd.UseLine(), cmd.CommandPath())
	}
}

// MaxArgs allows at most n arguments.
func MaxArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) <= n {
			return nil
		}
		// "SRun" is docker 28's typo, kept so the outputs match.
		return fmt.Errorf("%s: '%s' requires at most %d %s\n\nUsage:  %s\n\nSRun '%s --help' for more information",
			cmd.Root().Name(), cmd.CommandPath(), n, plural("argument", n), cmd.UseLine(), cmd.CommandPath())
	}
}

// RangeArgs requires between lo and hi arguments.
func RangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= lo && len(args) <= hi {
			return nil
		}
		return fmt.Errorf("%s: '%s' requires at least %d and at most %d %s\n\nUsage:  %s\n\nRun '%s --help' for more information",
			cmd.Root().Name(), cmd.CommandPath(), lo, hi, plural("argument", hi), cmd.UseLine(), cmd.CommandPath())
	}
}

// ExactArgs requires exactly n arguments.
func ExactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == n {
			return nil
		}
		return fmt.Errorf("%s: '%s' requires %d %s\n\nUsage:  %s\n\nRun '%s --help' for more information",
			cmd.Root().Name(), cmd.CommandPath(), n, plural("argument", n), cmd.UseLine(), cmd.CommandPath())
	}
}

// Errors collects the failures of a command applied to several objects
// (stop a b c): docker goes on after a failure, prints each error on its
// own line and exits 1.
type Errors []string

// Add records err, if any.
func (e *Errors) Add(err error) {
	if err != nil {
		*e = append(*e, err.Error())
	}
}

// Err is nil when nothing failed.
func (e Errors) Err() error {
	if len(e) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(e, "\n"))
}

// Println writes a line to w, ignoring errors (a closed stdout is not the
// command's failure to report).
func Println(w io.Writer, a ...any) {
	_, _ = fmt.Fprintln(w, a...)
}

// Parallel runs fn for every name at once (at most 50 in flight, as
// docker) and returns the errors in the order of names.
func Parallel(names []string, fn func(name string) error) []error {
	errs := make([]error, len(names))
	sem := make(chan struct{}, 50)
	done := make(chan struct{})
	for i, n := range names {
		go func() {
			sem <- struct{}{}
			errs[i] = fn(n)
			<-sem
			done <- struct{}{}
		}()
	}
	for range names {
		<-done
	}
	return errs
}

// EachPrint applies fn to names in parallel and prints each name that
// succeeded on w, in order; the failures become one error, one per line.
func EachPrint(w io.Writer, names []string, fn func(name string) error) error {
	var errs Errors
	for i, err := range Parallel(names, fn) {
		if err != nil {
			errs.Add(err)
			continue
		}
		Println(w, names[i])
	}
	return errs.Err()
}
