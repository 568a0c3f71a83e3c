package main

import (
	"encoding/json"
	"flag"
	"os"
)

func init() {
	register(command{
		name:    "state",
		summary: "print a container's state as JSON",
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
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(c.Info())
			}
		},
	})
}
