package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hako-project/hako/runtime/caps"
	"github.com/hako-project/hako/runtime/container"
)

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func init() {
	register(command{
		name:    "exec",
		summary: "run another process in a running container",
		usage:   "ID [COMMAND [ARG...]]",
		flags: func(fs *flag.FlagSet) func(*env, []string) error {
			var (
				procFile, consoleSocket, cwd, user, pidFile, label, apparmor string
				tty, detach, nnp, ignorePaused                               bool
				preserve                                                     int
				envs, gids, capList                                          listFlag
			)
			fs.StringVar(&procFile, "process", "", "JSON file with the process (runtime-spec process object)")
			fs.StringVar(&procFile, "p", "", "JSON file with the process (runtime-spec process object)")
			fs.StringVar(&consoleSocket, "console-socket", "", "unix socket to send the pty master to")
			fs.StringVar(&cwd, "cwd", "", "working directory in the container")
			fs.Var(&envs, "env", "set an environment variable KEY=value (repeatable)")
			fs.Var(&envs, "e", "set an environment variable KEY=value (repeatable)")
			fs.BoolVar(&tty, "tty", false, "allocate a pseudo-terminal")
			fs.BoolVar(&tty, "t", false, "allocate a pseudo-terminal")
			fs.StringVar(&user, "user", "", "UID[:GID] to run as")
			fs.StringVar(&user, "u", "", "UID[:GID] to run as")
			fs.Var(&gids, "additional-gids", "additional group ID (repeatable)")
			fs.Var(&gids, "g", "additional group ID (repeatable)")
			fs.BoolVar(&detach, "detach", false, "return once the process runs")
			fs.BoolVar(&detach, "d", false, "return once the process runs")
			fs.StringVar(&pidFile, "pid-file", "", "write the process's pid to this file")
			fs.StringVar(&label, "process-label", "", "SELinux label for the process")
			fs.StringVar(&apparmor, "apparmor", "", "AppArmor profile for the process")
			fs.BoolVar(&nnp, "no-new-privs", false, "set no_new_privs")
			fs.Var(&capList, "cap", "add a capability (repeatable)")
			fs.Var(&capList, "c", "add a capability (repeatable)")
			fs.IntVar(&preserve, "preserve-fds", 0, "pass this many fds after stdio to the process")
			fs.BoolVar(&ignorePaused, "ignore-paused", false, "exec even if the container is paused")
			return func(e *env, args []string) error {
				if len(args) < 1 {
					return usagef("want a container ID")
				}
				c, err := e.rt.Load(args[0])
				if err != nil {
					return err
				}
				var p *specs.Process
				if procFile != "" {
					b, err := os.ReadFile(procFile)
					if err != nil {
						return fmt.Errorf("--process: %w", err)
					}
					p = &specs.Process{}
					if err := json.Unmarshal(b, p); err != nil {
						return fmt.Errorf("--process %s: %w", procFile, err)
					}
				} else {
					if len(args) < 2 {
						return usagef("give a command to run, or --process")
					}
					cfg, err := c.Config()
					if err != nil {
						return err
					}
					base := *cfg.Process
					base.Args = args[1:]
					base.Terminal = tty
					base.ConsoleSize = nil
					p = &base
				}
				if tty {
					p.Terminal = true
				}
				if cwd != "" {
					p.Cwd = cwd
				}
				p.Env = mergeEnv(p.Env, envs)
				if user != "" {
					if err := parseUser(user, &p.User); err != nil {
						return err
					}
				}
				for _, g := range gids {
					n, err := strconv.ParseUint(g, 10, 32)
					if err != nil {
						return usagef("--additional-gids %q: %v", g, err)
					}
					p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(n))
				}
				if nnp {
					p.NoNewPrivileges = true
				}
				if apparmor != "" {
					p.ApparmorProfile = apparmor
				}
				if label != "" {
					p.SelinuxLabel = label
				}
				if len(capList) > 0 {
					if p.Capabilities, err = caps.AddToAll(p.Capabilities, capList...); err != nil {
						return fmt.Errorf("--cap: %w", err)
					}
				}
				code, err := c.Exec(e.ctx, container.ExecOptions{
					Process: p, ConsoleSocket: consoleSocket, PidFile: pidFile, Detach: detach,
					PreserveFDs: preserve, IgnorePaused: ignorePaused, Trace: e.traceTo,
				})
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

// mergeEnv adds KEY=value entries, a later one replacing an earlier key.
func mergeEnv(base []string, add []string) []string {
	out := append([]string(nil), base...)
	for _, kv := range add {
		k, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, e := range out {
			if ek, _, _ := strings.Cut(e, "="); ek == k {
				out[i] = kv
				replaced = true
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}

// parseUser reads "UID[:GID]".
func parseUser(s string, u *specs.User) error {
	us, gs, hasG := strings.Cut(s, ":")
	uid, err := strconv.ParseUint(us, 10, 32)
	if err != nil {
		return usagef("--user %q: want UID[:GID] as numbers", s)
	}
	u.UID = uint32(uid)
	if hasG {
		gid, err := strconv.ParseUint(gs, 10, 32)
		if err != nil {
			return usagef("--user %q: want UID[:GID] as numbers", s)
		}
		u.GID = uint32(gid)
	}
	return nil
}
