package main

import (
	"errors"
	"flag"

	"github.com/hako-project/hako/runtime/state"
)

func init() {
	register(command{
		name:    "delete",
		summary: "delete a container and everything it left (state, cgroup, processes)",
		usage:   "ID",
		flags: func(fs *flag.FlagSet) func(*env, []string) error {
			force := fs.Bool("force", false, "kill the container first if it runs")
			fs.BoolVar(force, "f", false, "kill the container first if it runs")
			return func(e *env, args []string) error {
				id, err := oneID(args)
				if err != nil {
					return err
				}
				c, err := e.rt.Load(id)
				if err != nil {
					if *force && errors.Is(err, state.ErrNotExist) {
						return nil // runc: delete --force of a missing container succeeds
					}
					return err
				}
				return c.Delete(e.ctx, *force)
			}
		},
	})
}
