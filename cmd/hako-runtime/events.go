package main

import (
	"encoding/json"
	"flag"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hako-project/hako/runtime/cgroups"
)

func init() {
	register(command{
		name:    "events",
		summary: "print a container's events (OOM kills, and stats every --interval) as JSON lines",
		usage:   "ID",
		flags: func(fs *flag.FlagSet) func(*env, []string) error {
			stats := fs.Bool("stats", false, "print the container's statistics once and exit")
			interval := fs.Duration("interval", 5*time.Second, "how often to print statistics")
			return func(e *env, args []string) error {
				id, err := oneID(args)
				if err != nil {
					return err
				}
				c, err := e.rt.Load(id)
				if err != nil {
					return err
				}
				ctx, stop := signal.NotifyContext(e.ctx, os.Interrupt, syscall.SIGTERM)
				defer stop()
				enc := json.NewEncoder(os.Stdout)
				return c.Events(ctx, *interval, *stats, func(ev cgroups.Event) error { return enc.Encode(ev) })
			}
		},
	})
}
