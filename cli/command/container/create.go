package container

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/hako-project/hako/cli/command"
	"github.com/hako-project/hako/cli/runopts"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// NewCreateCommand is `hako create`.
func NewCreateCommand(cli *command.Cli) *cobra.Command {
	var opts *runopts.Options
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Args:  command.MinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := parseRequest(cmd, cli, opts, args)
			if err != nil {
				return err
			}
			id, err := createContainer(cmd.Context(), cli, req, opts)
			if err != nil {
				// Unlike run, create reports the daemon's errors plainly.
				return err
			}
			command.Println(cli.Out, id)
			return nil
		},
	}
	opts = runopts.AddFlags(cmd.Flags())
	return cmd
}

// parseRequest validates the flags and builds the create request; its
// errors are docker's "hako: ERR\n\nRun 'hako run --help'" with status 125.
func parseRequest(cmd *cobra.Command, cli *command.Cli, opts *runopts.Options, args []string) (*runopts.Request, error) {
	fail := func(err error) error {
		return command.StatusError{Cause: err, Status: command.WithHelp(cmd, err).Error(), StatusCode: 125}
	}
	switch opts.Pull {
	case "always", "missing", "never":
	default:
		return nil, fail(fmt.Errorf("invalid pull option: '%s': must be one of \"always\", \"missing\" or \"never\"", opts.Pull))
	}
	if err := checkImageRef(args[0]); err != nil {
		return nil, fail(err)
	}
	if _, err := parsePlatform(opts.Platform); err != nil {
		return nil, fail(err)
	}
	req, err := opts.Parse(cmd.Flags(), args[0], args[1:], func(k string) (string, bool) {
		v := cli.Getenv(k)
		return v, v != ""
	})
	if err != nil {
		return nil, fail(err)
	}
	if req.Config.Tty {
		if h, w := cli.Out.Size(); h > 0 || w > 0 {
			req.HostConfig.ConsoleSize = [2]uint{h, w}
		}
	}
	return req, nil
}

// parsePlatform parses OS[/ARCH[/VARIANT]]; "" is no preference.
func parsePlatform(s string) (*ocispec.Platform, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(strings.ToLower(s), "/")
	if len(parts) > 3 || parts[0] == "" {
		return nil, fmt.Errorf("invalid platform %q: want os[/arch[/variant]]", s)
	}
	p := &ocispec.Platform{OS: parts[0]}
	if len(parts) > 1 {
		p.Architecture = parts[1]
	}
	if len(parts) > 2 {
		p.Variant = parts[2]
	}
	return p, nil
}

// createContainer creates the container, pulling its image first with
// --pull=always, or when the daemon does not have it with --pull=missing.
// Pull progress goes to stderr so that stdout carries only the ID.
func createContainer(ctx context.Context, cli *command.Cli, req *runopts.Request, opts *runopts.Options) (string, error) {
	api, err := cli.Client()
	if err != nil {
		return "", err
	}
	platform, _ := parsePlatform(opts.Platform)
	pull := func() error {
		out := cli.Err
		if opts.Quiet {
			return cli.PullImage(ctx, req.Config.Image, platform, discard{}, false)
		}
		return cli.PullImage(ctx, req.Config.Image, platform, out, out.IsTerminal())
	}
	if opts.Pull == "always" {
		if err := pull(); err != nil {
			return "", err
		}
	}
	create := func() (client.ContainerCreateResult, error) {
		return api.ContainerCreate(ctx, client.ContainerCreateOptions{
			Config: req.Config, HostConfig: req.HostConfig, NetworkingConfig: req.NetworkingConfig,
			Platform: platform, Name: opts.Name,
		})
	}
	res, err := create()
	if err != nil && cerrdefs.IsNotFound(err) && opts.Pull == "missing" && imageNotFound(err) {
		if !opts.Quiet {
			fmt.Fprintf(cli.Err, "Unable to find image '%s' locally\n", familiarWithTag(req.Config.Image))
		}
		if err := pull(); err != nil {
			return "", err
		}
		res, err = create()
	}
	if err != nil {
		return "", err
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(cli.Err, "WARNING: %s\n", w)
	}
	return res.ID, nil
}

// imageNotFound tells a missing image from other 404s of create (a
// missing network, say), by the daemon's wording.
func imageNotFound(err error) bool {
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "no such image") || strings.Contains(msg, "image") && strings.Contains(msg, "not found")
}

// familiarWithTag is the short form docker prints: "busybox:latest".
func familiarWithTag(image string) string {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return image
	}
	return reference.FamiliarString(reference.TagNameOnly(named))
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// startError maps a failed create or start to docker's exit status: 127
// when the command was not found, 126 when it could not be invoked, 125
// for anything else.
func startError(cmd *cobra.Command, err error) error {
	msg := err.Error()
	code := 125
	switch {
	case strings.Contains(msg, "executable file not found") || strings.Contains(msg, "no such file or directory") ||
		strings.Contains(msg, "system cannot find the file specified"):
		code = 127
	case strings.Contains(msg, syscall.EACCES.Error()) || strings.Contains(msg, syscall.EISDIR.Error()):
		code = 126
	}
	return command.StatusError{Cause: err, Status: command.WithHelp(cmd, err).Error(), StatusCode: code}
}

// isFlagChanged reports whether any of names was given.
func isFlagChanged(fs *pflag.FlagSet, names ...string) bool {
	for _, n := range names {
		if fs.Changed(n) {
			return true
		}
	}
	return false
}

var errConflictAttachDetach = errors.New("conflicting options: cannot specify both --attach and --detach")
