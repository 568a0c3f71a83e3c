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
	c := &command.Cli{
		In:      streams.NewIn(env.Stdin),
		Out:     streams.NewOut(env.Stdout),
		Err:     streams.NewOut(env.Stderr),
		Getenv:  env.Getenv,
		Version: env.Version,
		Log:     slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	defer c.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		// The first signal cancels the command (so it can clean up and
		// print its trace); later ones get the default behaviour back.
		if _, ok := <-sigc; ok {
			signal.Stop(sigc)
			cancel()
		}
	}()
	defer signal.Stop(sigc)

	g := &globalFlags{}
	root := NewRootCommand(c, g)
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
	pf := root.PersistentFlags()
	pf.StringVarP(&g.host, "host", "H", "", "Daemon socket to connect to (default: $HAKO_HOST, then $DOCKER_HOST, then unix:///run/hako/hako.sock)")
	pf.BoolVar(&g.trace, "trace", false, "Trace the command through the daemon and print the span tree on stderr")
	// Like docker's, these go before the command name only: run and ps
	// use -l for themselves.
	fs := root.Flags()
	fs.BoolVarP(&g.debug, "debug", "D", false, "Enable debug mode")
	fs.StringVarP(&g.logLevel, "log-level", "l", "", `Set the logging level ("debug", "info", "warn", "error")`)
	fs.StringVar(&g.config, "config", "", "Location of client config files (default: $DOCKER_CONFIG, then ~/.docker)")
	fs.BoolVarP(&g.version, "version", "v", false, "Print version information and quit")
	root.TraverseChildren = true

	top := []func(*command.Cli) *cobra.Command{
		container.NewRunCommand, container.NewCreateCommand, container.NewStartCommand,
		container.NewStopCommand, container.NewRestartCommand, container.NewKillCommand,
		container.NewRmCommand, container.NewPsCommand, container.NewLogsCommand,
		container.NewExecCommand, container.NewAttachCommand, container.NewWaitCommand,
		image.NewPullCommand, image.NewPushCommand, image.NewImagesCommand, image.NewRmiCommand,
		image.NewTagCommand, image.NewImportCommand, image.NewSaveCommand, image.NewLoadCommand,
		system.NewInfoCommand, system.NewVersionCommand, system.NewInspectCommand,
		container.NewStatsCommand, container.NewTopCommand, container.NewCpCommand, container.NewDiffCommand,
		container.NewCommitCommand, container.NewExportCommand, container.NewUpdateCommand,
	}
	for _, mk := range top {
		root.AddCommand(setup(mk(c)))
	}
	root.AddCommand(management(c, "container", "Manage containers", map[string]func(*command.Cli) *cobra.Command{
		"attach": container.NewAttachCommand, "create": container.NewCreateCommand, "exec": container.NewExecCommand,
		"kill": container.NewKillCommand, "logs": container.NewLogsCommand, "ls": container.NewPsCommand, "port": container.NewPortCommand,
		"restart": container.NewRestartCommand, "rm": container.NewRmCommand, "run": container.NewRunCommand,
		"start": container.NewStartCommand, "stop": container.NewStopCommand, "wait": container.NewWaitCommand,
		"stats": container.NewStatsCommand, "top": container.NewTopCommand, "cp": container.NewCpCommand,
		"diff": container.NewDiffCommand, "commit": container.NewCommitCommand, "export": container.NewExportCommand,
		"update": container.NewUpdateCommand, "prune": container.NewPruneCommand,
	}))
	root.AddCommand(management(c, "image", "Manage images", map[string]func(*command.Cli) *cobra.Command{
		"import": image.NewImportCommand, "load": image.NewLoadCommand, "ls": image.NewImagesCommand,
		"pull": image.NewPullCommand, "push": image.NewPushCommand, "rm": image.NewRmiCommand,
		"save": image.NewSaveCommand, "tag": image.NewTagCommand, "prune": image.NewPruneCommand,
	}))
	root.AddCommand(management(c, "system", "Manage the daemon", map[string]func(*command.Cli) *cobra.Command{
		"info": system.NewInfoCommand, "df": system.NewDfCommand, "prune": system.NewPruneCommand,
	}))
	vol := management(c, "volume", "Manage volumes", map[string]func(*command.Cli) *cobra.Command{
		"create": volume.NewCreateCommand, "inspect": volume.NewInspectCommand, "ls": volume.NewListCommand,
		"prune": volume.NewPruneCommand, "rm": volume.NewRemoveCommand,
	})
	vol.Use = "volume COMMAND" // docker's usage line for this group (not for image or container)
	root.AddCommand(vol)
	root.AddCommand(setup(container.NewPortCommand(c)))
	root.AddCommand(management(c, "network", "Manage networks", map[string]func(*command.Cli) *cobra.Command{
		"connect": network.NewConnectCommand, "create": network.NewCreateCommand, "disconnect": network.NewDisconnectCommand,
		"inspect": network.NewInspectCommand, "ls": network.NewListCommand, "prune": network.NewPruneCommand,
		"rm": network.NewRemoveCommand,
	}))
	return root
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
