package container

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hako-project/hako/cli/command"
	"github.com/hako-project/hako/cli/runopts"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// NewUpdateCommand is `hako update`: new resource limits or restart
// policy for containers, running or not.
func NewUpdateCommand(cli *command.Cli) *cobra.Command {
	var (
		r                   container.Resources
		memory, reservation runopts.MemBytes
		swap                runopts.MemSwapBytes
		cpus                runopts.NanoCPUs
		kernelMemory        runopts.MemBytes
		restart             string
		pidsLimit           int64
	)
	cmd := &cobra.Command{
		Use:   "update [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Update configuration of one or more containers",
		Args:  command.MinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().NFlag() == 0 {
				return errors.New("you must provide one or more flags when using this command")
			}
			var policy container.RestartPolicy
			if restart != "" {
				p, err := runopts.ParseRestartPolicy(restart)
				if err != nil {
					return err
				}
				policy = p
			}
			res := r
			res.Memory, res.MemoryReservation, res.MemorySwap = int64(memory), int64(reservation), int64(swap)
			res.NanoCPUs = int64(cpus)
			if pidsLimit != 0 {
				res.PidsLimit = &pidsLimit
			}
			api, err := cli.Client()
			if err != nil {
				return err
			}
			var warns []string
			var errs command.Errors
			for _, name := range args {
				out, err := api.ContainerUpdate(cmd.Context(), name, client.ContainerUpdateOptions{Resources: &res, RestartPolicy: &policy})
				if err != nil {
					errs.Add(err)
				} else {
					command.Println(cli.Out, name)
				}
				warns = append(warns, out.Warnings...)
			}
			if len(warns) > 0 {
				fmt.Fprintln(cli.Out, strings.Join(warns, "\n"))
			}
			return errs.Err()
		},
	}
	fs := cmd.Flags()
	fs.Uint16Var(&r.BlkioWeight, "blkio-weight", 0, "Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)")
	fs.Int64Var(&r.CPUPeriod, "cpu-period", 0, "Limit CPU CFS (Completely Fair Scheduler) period")
	fs.Int64Var(&r.CPUQuota, "cpu-quota", 0, "Limit CPU CFS (Completely Fair Scheduler) quota")
	fs.Int64Var(&r.CPURealtimePeriod, "cpu-rt-period", 0, "Limit the CPU real-time period in microseconds")
	fs.Int64Var(&r.CPURealtimeRuntime, "cpu-rt-runtime", 0, "Limit the CPU real-time runtime in microseconds")
	fs.Int64VarP(&r.CPUShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fs.Var(&cpus, "cpus", "Number of CPUs")
	fs.StringVar(&r.CpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fs.StringVar(&r.CpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	fs.VarP(&memory, "memory", "m", "Memory limit")
	fs.Var(&reservation, "memory-reservation", "Memory soft limit")
	fs.Var(&swap, "memory-swap", "Swap limit equal to memory plus swap: -1 to enable unlimited swap")
	fs.Int64Var(&pidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")
	fs.StringVar(&restart, "restart", "", "Restart policy to apply when a container exits")
	fs.Var(&kernelMemory, "kernel-memory", "Kernel memory limit (deprecated)")
	_ = fs.MarkDeprecated("kernel-memory", "and no longer supported by the kernel")
	return cmd
}
