package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hako-project/hako/runtime/cgroups"
)

func init() {
	register(command{
		name:    "update",
		summary: "change a container's resources (a --resources JSON file, - for stdin, or the flags)",
		usage:   "ID",
		flags: func(fs *flag.FlagSet) func(*env, []string) error {
			var f cgroups.UpdateFlags
			var res, resShort string
			fs.StringVar(&res, "resources", "", "JSON file of linux.resources (- reads stdin)")
			fs.StringVar(&resShort, "r", "", "JSON file of linux.resources (- reads stdin)")
			for _, v := range []struct {
				p          *string
				name, help string
			}{
				{&f.BlkioWeight, "blkio-weight", "block I/O weight (10-1000)"},
				{&f.CPUPeriod, "cpu-period", "CPU CFS period in microseconds"},
				{&f.CPUQuota, "cpu-quota", "CPU CFS quota in microseconds"},
				{&f.CPUBurst, "cpu-burst", "CPU CFS burst in microseconds"},
				{&f.CPUShare, "cpu-share", "CPU shares (relative weight)"},
				{&f.CPURtPeriod, "cpu-rt-period", "CPU realtime period in microseconds"},
				{&f.CPURtRuntime, "cpu-rt-runtime", "CPU realtime runtime in microseconds"},
				{&f.CpusetCpus, "cpuset-cpus", "CPUs to use (0-3, 0,1)"},
				{&f.CpusetMems, "cpuset-mems", "memory nodes to use"},
				{&f.CPUIdle, "cpu-idle", "1: idle scheduling policy"},
				{&f.Memory, "memory", "memory limit (512m, 1g)"},
				{&f.MemoryReservation, "memory-reservation", "memory soft limit"},
				{&f.MemorySwap, "memory-swap", "memory plus swap limit (-1: unlimited)"},
				{&f.PidsLimit, "pids-limit", "maximum number of processes"},
				{&f.KernelMemory, "kernel-memory", "ignored (kernel memory limits are obsolete)"},
				{&f.KernelMemoryTCP, "kernel-memory-tcp", "ignored (kernel memory limits are obsolete)"},
			} {
				fs.StringVar(v.p, v.name, "", v.help)
			}
			return func(e *env, args []string) error {
				id, err := oneID(args)
				if err != nil {
					return err
				}
				if res == "" {
					res = resShort
				}
				var upd *specs.LinuxResources
				if res != "" {
					var r io.Reader = os.Stdin
					if res != "-" {
						file, err := os.Open(res)
						if err != nil {
							return fmt.Errorf("--resources: %w", err)
						}
						defer file.Close()
						r = file
					}
					upd = &specs.LinuxResources{}
					if err := json.NewDecoder(r).Decode(upd); err != nil {
						return fmt.Errorf("--resources %s: %w", res, err)
					}
				} else {
					if upd, err = f.Resources(); err != nil {
						return err
					}
					for _, ig := range f.IgnoredFlags() {
						fmt.Fprintf(os.Stderr, "hako-runtime: warning: %s is ignored\n", ig)
					}
				}
				c, err := e.rt.Load(id)
				if err != nil {
					return err
				}
				return c.Update(upd)
			}
		},
	})
}
