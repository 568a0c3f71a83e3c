package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

func init() {
	register(command{
		name:    "kill",
		summary: "send a signal (default SIGTERM) to a container's init, or with --all to all its processes",
		usage:   "ID [SIGNAL]",
		flags: func(fs *flag.FlagSet) func(*env, []string) error {
			all := fs.Bool("all", false, "signal every process in the container")
			fs.BoolVar(all, "a", false, "signal every process in the container")
			return func(e *env, args []string) error {
				if len(args) < 1 || len(args) > 2 {
					return usagef("want ID [SIGNAL], got %d arguments", len(args))
				}
				sig := unix.SIGTERM
				if len(args) == 2 {
					var err error
					if sig, err = parseSignal(args[1]); err != nil {
						return err
					}
				}
				c, err := e.rt.Load(args[0])
				if err != nil {
					return err
				}
				return c.Signal(sig, *all)
			}
		},
	})
}

// parseSignal accepts "9", "KILL", "SIGKILL" and "sigkill".
func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("signal %d is out of range", n)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}
