// Package volume is `hako volume`: create, ls, inspect, rm and prune,
// with docker's flags, output and exit statuses. Flags that need a newer
// Engine API than the daemon speaks (docker's cluster volumes, prune
// --all) are refused with docker's message, as docker's CLI does.
package volume

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/hako-project/hako/cli/apiclient"
	"github.com/hako-project/hako/cli/command"
	"github.com/hako-project/hako/cli/opts"
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
	ok, err := api.SupportsVersion(ctx, minVersion)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%q requires API version %s, but the Docker daemon API version is %s", "--"+used[0], minVersion, api.ClientVersion())
	}
	return api, nil
}

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
		fs.Var(&opts.List{}, n, "")
		_ = fs.MarkHidden(n)
	}
}
