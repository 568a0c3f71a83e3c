package main

import "flag"

func init() {
	register(command{
		name:    "run",
		summary: "create and start a container; without --detach, wait and exit with its code",
		usage:   "ID",
		flags: func(fs *flag.FlagSet) func(*env, []string) error {
			var cf createFlags
			cf.register(fs)
			detach := fs.Bool("detach", false, "return once the container runs")
			fs.BoolVar(detach, "d", false, "return once the container runs")
			return func(e *env, args []string) error {
				id, err := oneID(args)
				if err != nil {
					return err
				}
				code, err := e.rt.Run(e.ctx, cf.options(e, id), *detach)
				if err != nil {
					return err
				}
				if code != 0 {
					return exitCode(code)
				}
				return nil
			}
		},
	})
}
