package main

import "flag"

func init() {
	for _, v := range []struct {
		name, summary string
		pause         bool
	}{
		{"pause", "freeze every process of a container", true},
		{"resume", "thaw a paused container", false},
	} {
		register(command{
			name:    v.name,
			summary: v.summary,
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
					if v.pause {
						return c.Pause()
					}
					return c.Resume()
				}
			},
		})
	}
}
