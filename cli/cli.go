// Package cli is the hako command line: docker's commands, flags, output
// and exit statuses over the Docker Engine API. It builds the command
// tree, runs one command and maps its outcome to an exit status; the
// commands live in cli/command/....
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/hako-project/hako/cli/clitrace"
	"github.com/hako-project/hako/cli/command"
	"github.com/hako-project/hako/cli/command/container"
	"github.com/hako-project/hako/cli/command/image"
	"github.com/hako-project/hako/cli/command/network"
	"github.com/hako-project/hako/cli/command/system"
	"github.com/hako-project/hako/cli/command/volume"
	"github.com/hako-project/hako/cli/streams"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Env is the process environment a CLI run uses.
type Env struct {
	Args           []string
	Stdin          io.ReadCloser
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	Version        string
}

// globalFlags are the flags every command takes.
type globalFlags struct {
	host      string
	trace     bool
	debug     bool
	logLevel  string
	config    string
	version   bool
	traceSess *clitrace.Session
}

// Main runs one hako command and returns its exit status: the
// container's status for run, start -a, attach and exec; 125 when the CLI
// or the daemon failed before the container ran; 126 or 127 when its
// command could not be invoked or was not found; 1 for other failures, as
// docker does.
func Main(env Env) int {
	return run(env, newRootCommandFor)
}

// run is Main with the function that builds the command tree for the
// arguments (the tests compare the partial tree with the whole one).
func run(env Env, newTree func(c *command.Cli, g *globalFlags, args []string) *cobra.Command) int {
	c := &command.Cli{
		In:      streams.NewIn(env.Stdin),
		Out:     streams.NewOut(env.Stdout),
		Err:     streams.NewOut(env.Stderr),
		Getenv:  env.Getenv,
		Version: env.Version,
		Log:     slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	defer c.Close()

	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		// The first signal cancels the command (so it can clean up and
		// print its trace); later ones get the default behaviour back.
		// The cause is docker's status for a command the signal ends
		// (130 for SIGINT), for commands that wait for it (events).
		if sig, ok := <-sigc; ok {
			signal.Stop(sigc)
			cancel(command.StatusError{StatusCode: 128 + int(sig.(syscall.Signal))})
		}
	}()
	defer signal.Stop(sigc)

	g := &globalFlags{}
	root := newTree(c, g, env.Args)
	root.SetArgs(env.Args)
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	err := root.ExecuteContext(ctx)
	if g.traceSess != nil {
		var fetch clitrace.Fetcher
		if api := c.ClientIfUsed(); api != nil {
			fetch = api.DaemonSpans
		}
		g.traceSess.Finish(context.Background(), err, fetch, env.Stderr)
	}
	return exitStatus(err, env.Stderr)
}

// exitStatus prints err as docker does and returns the status.
func exitStatus(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var se command.StatusError
	if errors.As(err, &se) {
		if msg := se.Error(); msg != "" {
			fmt.Fprintln(stderr, msg)
		}
		if se.StatusCode == 0 {
			return 1
		}
		return se.StatusCode
	}
	fmt.Fprintln(stderr, err)
	return 1
}

// NewRootCommand builds the command tree for c; g receives the global
// flags.
func NewRootCommand(c *command.Cli, g *globalFlags) *cobra.Command {
	root := newRoot(c, g)
	for _, t := range topLevel {
		root.AddCommand(t.build(c))
	}
	return root
}

// newRootCommandFor builds the part of the command tree that args can
// reach: the root and, when args name a top-level command, that command
// alone (a management group such as `container` with all its
// sub-commands). Every hako command pays for building the tree before it
// does anything else, and the whole tree (some 80 commands, hundreds of
// flags) cost `hako ps` about 100 of its 800 page faults. Command lines
// that need more (help, an unknown or misspelt name, a flag the root does
// not know) get the whole tree, so cobra decides them as it always did.
func newRootCommandFor(c *command.Cli, g *globalFlags, args []string) *cobra.Command {
	var read globalFlags
	fs := globalFlagSet(&read)
	if name, ok := commandName(fs, args); ok {
		for _, t := range topLevel {
			if t.name == name {
				root := newRoot(c, g)
				root.AddCommand(t.build(c))
				return root
			}
		}
	} else if fs.Parse(args) == nil && fs.NArg() == 0 && read.version {
		// `hako --version`: the root prints the version and needs no
		// other command.
		return newRoot(c, g)
	}
	return NewRootCommand(c, g)
}

// newRoot is the root command with its flags and no sub-commands.
func newRoot(c *command.Cli, g *globalFlags) *cobra.Command {
	root := &cobra.Command{
		Use:           "hako [OPTIONS] COMMAND [ARG...]",
		Short:         "A container stack that explains itself; docker's command line",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			return fmt.Errorf("%s: unknown command: %s %s\n\nRun '%s --help' for more information",
				cmd.Name(), cmd.Name(), args[0], cmd.Name())
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if g.version {
				fmt.Fprintf(c.Out, "hako version %s\n", c.Version)
				return nil
			}
			cmd.SetOut(c.Out)
			return cmd.Help()
		},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			c.Host, c.ConfigDir = g.host, g.config
			level := slog.LevelWarn
			if g.debug {
				level = slog.LevelDebug
			} else if g.logLevel != "" {
				if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
					return command.StatusError{Status: fmt.Sprintf("unable to parse logging level: %s", g.logLevel), StatusCode: 125}
				}
			}
			c.Log = slog.New(slog.NewTextHandler(c.Err, &slog.HandlerOptions{Level: level}))
			if g.trace {
				name := strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
				ctx, sess, err := clitrace.Begin(cmd.Context(), name)
				if err != nil {
					return err
				}
				g.traceSess = sess
				cmd.SetContext(ctx)
			}
			return nil
		},
	}
	root.SetFlagErrorFunc(command.FlagError)
	root.DisableFlagsInUseLine = true
	root.CompletionOptions.DisableDefaultCmd = true
	addGlobalFlags(root.PersistentFlags(), root.Flags(), g)
	root.TraverseChildren = true
	return root
}

// addGlobalFlags defines the global flags: persistent ones in pf, the
// ones that go before the command name only in fs.
func addGlobalFlags(pf, fs *pflag.FlagSet, g *globalFlags) {
	pf.StringVarP(&g.host, "host", "H", "", "Daemon socket to connect to (default: $HAKO_HOST, then $DOCKER_HOST, then unix:///run/hako/hako.sock)")
	pf.BoolVar(&g.trace, "trace", false, "Trace the command through the daemon and print the span tree on stderr")
	// Like docker's, these go before the command name only: run and ps
	// use -l for themselves.
	fs.BoolVarP(&g.debug, "debug", "D", false, "Enable debug mode")
	fs.StringVarP(&g.logLevel, "log-level", "l", "", `Set the logging level ("debug", "info", "warn", "error")`)
	fs.StringVar(&g.config, "config", "", "Location of client config files (default: $DOCKER_CONFIG, then ~/.docker)")
	fs.BoolVarP(&g.version, "version", "v", false, "Print version information and quit")
}

// globalFlagSet is a flag set with the global flags alone, set in g,
// for reading the command line before the tree is built.
func globalFlagSet(g *globalFlags) *pflag.FlagSet {
	fs := pflag.NewFlagSet("hako", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addGlobalFlags(fs, fs, g)
	return fs
}

// commandName returns the top-level command name in args as cobra's
// Command.Traverse finds it on the root (TraverseChildren): the first
// argument that is neither a flag nor a flag's value. ok is false when
// args have no such argument or when telling one needs a flag the root
// does not define (cobra would guess whether it takes a value), so that
// the caller builds the whole tree and leaves the answer to cobra.
func commandName(flags *pflag.FlagSet, args []string) (name string, ok bool) {
	inFlag := false
	for _, arg := range args {
		switch {
		case strings.HasPrefix(arg, "--") && !strings.Contains(arg, "="):
			f := flags.Lookup(arg[2:])
			if f == nil {
				return "", false
			}
			inFlag = f.NoOptDefVal == ""
		case strings.HasPrefix(arg, "-") && !strings.Contains(arg, "=") && len(arg) == 2:
			f := flags.ShorthandLookup(arg[1:])
			if f == nil {
				return "", false
			}
			inFlag = f.NoOptDefVal == ""
		case inFlag:
			inFlag = false
		case len(arg) >= 3 && arg[:2] == "--" || len(arg) >= 2 && arg[0] == '-' && arg[1] != '-':
			// A flag with its value after "=", or several short flags.
		default:
			return arg, true
		}
	}
	return "", false
}

// topLevel are the root's sub-commands by name, in the order they are
// added. The names are written out so that one command can be built
// without building the others to learn theirs.
var topLevel = []struct {
	name  string
	build func(*command.Cli) *cobra.Command
}{
	{"run", setupFunc(container.NewRunCommand)},
	{"create", setupFunc(container.NewCreateCommand)},
	{"start", setupFunc(container.NewStartCommand)},
	{"stop", setupFunc(container.NewStopCommand)},
	{"restart", setupFunc(container.NewRestartCommand)},
	{"kill", setupFunc(container.NewKillCommand)},
	{"rm", setupFunc(container.NewRmCommand)},
	{"ps", setupFunc(container.NewPsCommand)},
	{"logs", setupFunc(container.NewLogsCommand)},
	{"exec", setupFunc(container.NewExecCommand)},
	{"attach", setupFunc(container.NewAttachCommand)},
	{"wait", setupFunc(container.NewWaitCommand)},
	{"pull", setupFunc(image.NewPullCommand)},
	{"push", setupFunc(image.NewPushCommand)},
	{"images", setupFunc(image.NewImagesCommand)},
	{"rmi", setupFunc(image.NewRmiCommand)},
	{"tag", setupFunc(image.NewTagCommand)},
	{"import", setupFunc(image.NewImportCommand)},
	{"save", setupFunc(image.NewSaveCommand)},
	{"load", setupFunc(image.NewLoadCommand)},
	{"info", setupFunc(system.NewInfoCommand)},
	{"version", setupFunc(system.NewVersionCommand)},
	{"inspect", setupFunc(system.NewInspectCommand)},
	{"stats", setupFunc(container.NewStatsCommand)},
	{"top", setupFunc(container.NewTopCommand)},
	{"cp", setupFunc(container.NewCpCommand)},
	{"diff", setupFunc(container.NewDiffCommand)},
	{"commit", setupFunc(container.NewCommitCommand)},
	{"export", setupFunc(container.NewExportCommand)},
	{"update", setupFunc(container.NewUpdateCommand)},
	{"pause", setupFunc(container.NewPauseCommand)},
	{"unpause", setupFunc(container.NewUnpauseCommand)},
	{"rename", setupFunc(container.NewRenameCommand)},
	{"events", setupFunc(system.NewEventsCommand)},
	{"history", setupFunc(image.NewHistoryCommand)},
	{"container", func(c *command.Cli) *cobra.Command {
		return management(c, "container", "Manage containers", map[string]func(*command.Cli) *cobra.Command{
			"attach": container.NewAttachCommand, "create": container.NewCreateCommand, "exec": container.NewExecCommand,
			"kill": container.NewKillCommand, "logs": container.NewLogsCommand, "ls": container.NewPsCommand, "port": container.NewPortCommand,
			"restart": container.NewRestartCommand, "rm": container.NewRmCommand, "run": container.NewRunCommand,
			"start": container.NewStartCommand, "stop": container.NewStopCommand, "wait": container.NewWaitCommand,
			"stats": container.NewStatsCommand, "top": container.NewTopCommand, "cp": container.NewCpCommand,
			"diff": container.NewDiffCommand, "commit": container.NewCommitCommand, "export": container.NewExportCommand,
			"update": container.NewUpdateCommand, "prune": container.NewPruneCommand,
			"pause": container.NewPauseCommand, "unpause": container.NewUnpauseCommand, "rename": container.NewRenameCommand,
			"inspect": system.NewContainerInspectCommand,
		})
	}},
	{"image", func(c *command.Cli) *cobra.Command {
		return management(c, "image", "Manage images", map[string]func(*command.Cli) *cobra.Command{
			"import": image.NewImportCommand, "load": image.NewLoadCommand, "ls": image.NewImagesCommand,
			"pull": image.NewPullCommand, "push": image.NewPushCommand, "rm": image.NewRmiCommand,
			"save": image.NewSaveCommand, "tag": image.NewTagCommand, "prune": image.NewPruneCommand,
			"history": image.NewHistoryCommand, "inspect": system.NewImageInspectCommand,
		})
	}},
	{"system", func(c *command.Cli) *cobra.Command {
		return management(c, "system", "Manage the daemon", map[string]func(*command.Cli) *cobra.Command{
			"info": system.NewInfoCommand, "df": system.NewDfCommand, "prune": system.NewPruneCommand,
			"events": system.NewEventsCommand,
		})
	}},
	{"volume", func(c *command.Cli) *cobra.Command {
		vol := management(c, "volume", "Manage volumes", map[string]func(*command.Cli) *cobra.Command{
			"create": volume.NewCreateCommand, "inspect": volume.NewInspectCommand, "ls": volume.NewListCommand,
			"prune": volume.NewPruneCommand, "rm": volume.NewRemoveCommand,
		})
		vol.Use = "volume COMMAND" // docker's usage line for this group (not for image or container)
		return vol
	}},
	{"port", setupFunc(container.NewPortCommand)},
	{"network", func(c *command.Cli) *cobra.Command {
		return management(c, "network", "Manage networks", map[string]func(*command.Cli) *cobra.Command{
			"connect": network.NewConnectCommand, "create": network.NewCreateCommand, "disconnect": network.NewDisconnectCommand,
			"inspect": network.NewInspectCommand, "ls": network.NewListCommand, "prune": network.NewPruneCommand,
			"rm": network.NewRemoveCommand,
		})
	}},
}

// setupFunc is mk with setup applied to what it builds.
func setupFunc(mk func(*command.Cli) *cobra.Command) func(*command.Cli) *cobra.Command {
	return func(c *command.Cli) *cobra.Command { return setup(mk(c)) }
}

// setup gives a command docker's usage line (no "[flags]") and flag
// error handling.
func setup(cmd *cobra.Command) *cobra.Command {
	cmd.DisableFlagsInUseLine = true
	cmd.SetFlagErrorFunc(command.FlagError)
	return cmd
}

// management builds a group such as `hako container`, whose
// sub-commands are the top-level ones under docker's names
// (`container ls` is `ps`, `image rm` is `rmi`).
func management(c *command.Cli, name, short string, subs map[string]func(*command.Cli) *cobra.Command) *cobra.Command {
	group := &cobra.Command{
		Use:   name,
		Short: short,
		Args:  command.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(c.Out)
			return cmd.Help()
		},
	}
	group.DisableFlagsInUseLine = true
	for sub, mk := range subs {
		cmd := setup(mk(c))
		_, rest, _ := strings.Cut(cmd.Use, " ")
		oldName := cmd.Name()
		cmd.Use = strings.TrimSpace(sub + " " + rest)
		if oldName != sub {
			cmd.Aliases = append(cmd.Aliases, oldName)
		}
		group.AddCommand(cmd)
	}
	return group
}
