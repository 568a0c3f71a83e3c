package main

import (
	"errors"
	"flag"
)

func init() {
	register(command{
		name: "init",
		flags: func(fs *flag.FlagSet) func(*env, []string) error {
			return func(*env, []string) error {
				// The container init runs in runtime/nsexec's constructor and
				// never reaches Go; getting here means it was run by hand.
				return errors.New("init is internal: hako-runtime starts it itself")
			}
		},
	})
}
