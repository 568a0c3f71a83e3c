package main

import (
	"flag"

	"github.com/hako-project/hako/runtime/container"
)

// createFlags are shared by create and run.
type createFlags struct {
	bundle, consoleSocket, pidFile string
	noPivot, noNewKeyring          bool
	preserveFDs                    int
}

func (c *createFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.bundle, "bundle", ".", "path to the bundle directory")
	fs.StringVar(&c.bundle, "b", ".", "path to the bundle directory")
	fs.StringVar(&c.consoleSocket, "console-socket", "", "unix socket to send the pty master to (process.terminal)")
	fs.StringVar(&c.pidFile, "pid-file", "", "write the container process's pid to this file")
	fs.BoolVar(&c.noPivot, "no-pivot", false, "use MS_MOVE and chroot instead of pivot_root (for ramfs roots)")
	fs.BoolVar(&c.noNewKeyring, "no-new-keyring", false, "keep the caller's session keyring")
	fs.IntVar(&c.preserveFDs, "preserve-fds", 0, "pass this many fds after stdio (3, 4, ...) to the container")
}

func (c *createFlags) options(e *env, id string) container.CreateOptions {
	listen := listenFDs()
	return container.CreateOptions{
		ID: id, Bundle: c.bundle, ConsoleSocket: c.consoleSocket, PidFile: c.pidFile,
		NoPivot: c.noPivot, NoNewKeyring: c.noNewKeyring, ListenFDs: listen,
		PreserveFDs: listen + c.preserveFDs, Trace: e.traceTo,
	}
}

func init() {
	register(command{
		name:    "create",
		summary: "create a container from a bundle; its process waits for `start`",
		usage:   "ID",
		flags: func(fs *flag.FlagSet) func(*env, []string) error {
			var cf createFlags
			cf.register(fs)
			return func(e *env, args []string) error {
				id, err := oneID(args)
				if err != nil {
					return err
				}
				_, err = e.rt.Create(e.ctx, cf.options(e, id))
				return err
			}
		},
	})
}
