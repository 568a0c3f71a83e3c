package main

import "flag"

func init() {
	register(command{
		name:    "start",
		summary: "start a created container's process",
		usage:   "ID",
		flags: func(fs *flag.FlagSet) func(*env, []string) error {
			return func(e *env, args []string) error {
				id, err := oneID(args)
				if err != nil {
					return err
				}
				c, err := e.rt.Load(id)
				if err != nil {
					return err
				}
				return c.Start(e.ctx)
			}
		},
	})
}
