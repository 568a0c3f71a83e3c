// Package volume is `hako volume`: create, ls, inspect, rm and prune,
// with docker's flags, output and exit statuses. Flags that need a newer
// Engine API than the daemon speaks (docker's cluster volumes, prune
// --all) are refused with docker's message, as docker's CLI does.
package volume

import (
	"context"
	"fmt"
	"strings"

	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/versions"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/hako-project/hako/cli/apiclient"
	"github.com/hako-project/hako/cli/command"
)

// requireAPI fails, with docker's words, when one of the flags of cmd that
// need API version minVersion was given and the daemon speaks an older one.
func requireAPI(ctx context.Context, cli *command.Cli, cmd *cobra.Command, minVersion string, flags ...string) (*apiclient.Client, error) {
	api, err := cli.Client()
	if err != nil {
		return nil, err
	}
	var used []string
	for _, f := range flags {
		if cmd.Flags().Changed(f) {
			used = append(used, f)
		}
	}
	if len(used) == 0 {
		return api, nil
	}
	if _, err := api.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return nil, err
	}
	if v := api.ClientVersion(); versions.LessThan(v, minVersion) {
		return nil, fmt.Errorf("%q requires API version %s, but the Docker daemon API version is %s", "--"+used[0], minVersion, v)
	}
	return api, nil
}

// mapOpt is docker's --opt: KEY=VALUE pairs into a map (a bare KEY has an
// empty value; the daemon judges it).
type mapOpt map[string]string

func (m mapOpt) String() string {
	parts := make([]string, 0, len(m))
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	return "map[" + strings.Join(parts, " ") + "]"
}

func (m mapOpt) Set(s string) error {
	k, v, _ := strings.Cut(s, "=")
	m[k] = v
	return nil
}

func (m mapOpt) Type() string { return "map" }

// listOpt is a repeatable string flag with a check per value.
type listOpt struct {
	values   []string
	validate func(string) error
}

func (l *listOpt) String() string { return "[" + strings.Join(l.values, " ") + "]" }

func (l *listOpt) Set(s string) error {
	if l.validate != nil {
		if err := l.validate(s); err != nil {
			return err
		}
	}
	l.values = append(l.values, s)
	return nil
}

func (l *listOpt) Type() string { return "list" }

// validateLabel is docker's check of a --label.
func validateLabel(s string) error {
	k, _, _ := strings.Cut(s, "=")
	k = strings.TrimSpace(k)
	if k == "" {
		return fmt.Errorf("invalid label '%s': empty name", s)
	}
	if strings.ContainsAny(k, " \t\n\v\f\r") {
		return fmt.Errorf("label '%s' contains whitespaces", k)
	}
	return nil
}

// filterOpt is docker's --filter NAME=VALUE (the name case-insensitive).
type filterOpt struct{ f client.Filters }

func newFilterOpt() *filterOpt { return &filterOpt{f: client.Filters{}} }

func (o *filterOpt) String() string {
	var parts []string
	for k, vs := range o.f {
		for v := range vs {
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, " ")
}

func (o *filterOpt) Set(s string) error {
	if s == "" {
		return nil
	}
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("bad format of filter (expected name=value)")
	}
	o.f.Add(strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v))
	return nil
}

func (o *filterOpt) Type() string { return "filter" }

// hiddenFlags registers flags docker has for features hako's daemon lacks
// (swarm's cluster volumes), hidden as docker hides them from a daemon that
// cannot serve them, so using one gets docker's refusal and not "unknown
// flag".
func hiddenFlags(fs *pflag.FlagSet, strs []string, lists []string) {
	for _, n := range strs {
		fs.String(n, "", "")
		_ = fs.MarkHidden(n)
	}
	for _, n := range lists {
		fs.Var(&listOpt{}, n, "")
		_ = fs.MarkHidden(n)
	}
}
