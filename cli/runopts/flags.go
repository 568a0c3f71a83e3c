// Package runopts turns the flags of `hako run` and `hako create` into the
// Engine API's container create request (container.Config, HostConfig,
// NetworkingConfig), with docker's defaults, validation and error
// messages. It does no I/O beyond reading the files a flag names
// (--env-file, --label-file, a seccomp profile).
package runopts

import (
	"time"

	"github.com/spf13/pflag"
)

// Options holds the parsed flags shared by run and create.
type Options struct {
	attach       *List
	env          *List
	envFile      *List
	labels       *List
	labelFile    *List
	volumes      *List
	mounts       *List
	tmpfs        *List
	volumesFrom  *List
	volDriver    string
	publish      *List
	expose       *List
	capAdd       *List
	capDrop      *List
	securityOpt  *List
	logOpts      *List
	devices      *List
	groupAdd     *List
	extraHosts   *List
	dns          *List
	dnsSearch    *List
	dnsOptions   *List
	sysctls      *List
	ulimits      UlimitList
	networks     NetworkList
	aliases      *List
	links        *List
	linkLocalIPs *List
	ipv4         string
	ipv6         string
	macAddress   string

	Interactive bool
	TTY         bool
	AutoRemove  bool
	Name        string
	Workdir     string
	User        string
	Entrypoint  string
	Hostname    string
	Domainname  string
	ReadOnly    bool
	Privileged  bool
	Init        bool
	PublishAll  bool
	Restart     string
	LogDriver   string
	Runtime     string
	StopSignal  string
	StopTimeout int
	Pull        string
	Platform    string
	Quiet       bool
	IpcMode     string
	PidMode     string
	UTSMode     string
	CgroupnsMod string
	CgroupParnt string
	OomScoreAdj int

	memory     MemBytes
	memorySwap MemSwapBytes
	memoryRes  MemBytes
	shmSize    MemBytes
	cpus       NanoCPUs
	cpuShares  int64
	cpusetCpus string
	pidsLimit  int64
	swappiness int64
	oomKillOff bool

	healthCmd           string
	healthInterval      time.Duration
	healthTimeout       time.Duration
	healthStartPeriod   time.Duration
	healthStartInterval time.Duration
	healthRetries       int
	noHealthcheck       bool
}

// AddFlags registers the container flags on fs with docker's names,
// shorthands and defaults.
func AddFlags(fs *pflag.FlagSet) *Options {
	o := &Options{
		attach:       NewList(validateAttach),
		env:          NewList(nil),
		envFile:      NewList(nil),
		labels:       NewList(validateLabel),
		labelFile:    NewList(nil),
		volumes:      NewList(nil),
		mounts:       NewList(validateMountFlag),
		tmpfs:        NewList(nil),
		volumesFrom:  NewList(nil),
		publish:      NewList(nil),
		expose:       NewList(nil),
		capAdd:       NewList(nil),
		capDrop:      NewList(nil),
		securityOpt:  NewList(nil),
		logOpts:      NewList(validateLogOpt),
		devices:      NewList(nil),
		groupAdd:     NewList(nil),
		extraHosts:   NewList(validateExtraHost),
		dns:          NewList(validateIP),
		dnsSearch:    NewList(nil),
		dnsOptions:   NewList(nil),
		sysctls:      NewList(validateSysctl),
		aliases:      NewList(nil),
		links:        NewList(validateLink),
		linkLocalIPs: NewList(nil),
	}
	fs.SetInterspersed(false)
	// -h is --hostname here, so --help gets no shorthand.
	fs.Bool("help", false, "Print usage")
	fs.VarP(o.attach, "attach", "a", "Attach to STDIN, STDOUT or STDERR")
	fs.BoolVarP(&o.Interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	fs.BoolVarP(&o.TTY, "tty", "t", false, "Allocate a pseudo-TTY")
	fs.BoolVar(&o.AutoRemove, "rm", false, "Automatically remove the container and its associated anonymous volumes when it exits")
	fs.StringVar(&o.Name, "name", "", "Assign a name to the container")
	fs.VarP(o.env, "env", "e", "Set environment variables")
	fs.Var(o.envFile, "env-file", "Read in a file of environment variables")
	fs.StringVarP(&o.Workdir, "workdir", "w", "", "Working directory inside the container")
	fs.StringVarP(&o.User, "user", "u", "", "Username or UID (format: <name|uid>[:<group|gid>])")
	fs.StringVar(&o.Entrypoint, "entrypoint", "", "Overwrite the default ENTRYPOINT of the image")
	fs.StringVarP(&o.Hostname, "hostname", "h", "", "Container host name")
	fs.StringVar(&o.Domainname, "domainname", "", "Container NIS domain name")
	fs.VarP(o.volumes, "volume", "v", "Bind mount a volume")
	fs.Var(o.mounts, "mount", "Attach a filesystem mount to the container")
	fs.Var(o.tmpfs, "tmpfs", "Mount a tmpfs directory")
	fs.Var(o.volumesFrom, "volumes-from", "Mount volumes from the specified container(s)")
	fs.StringVar(&o.volDriver, "volume-driver", "", "Optional volume driver for the container")
	fs.BoolVar(&o.ReadOnly, "read-only", false, "Mount the container's root filesystem as read only")
	fs.VarP(&o.memory, "memory", "m", "Memory limit")
	fs.Var(&o.memorySwap, "memory-swap", "Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
	fs.Var(&o.memoryRes, "memory-reservation", "Memory soft limit")
	fs.Int64Var(&o.swappiness, "memory-swappiness", -1, "Tune container memory swappiness (0 to 100)")
	fs.BoolVar(&o.oomKillOff, "oom-kill-disable", false, "Disable OOM Killer")
	fs.IntVar(&o.OomScoreAdj, "oom-score-adj", 0, "Tune host's OOM preferences (-1000 to 1000)")
	fs.Var(&o.shmSize, "shm-size", "Size of /dev/shm")
	fs.Var(&o.cpus, "cpus", "Number of CPUs")
	fs.Int64VarP(&o.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fs.StringVar(&o.cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fs.Int64Var(&o.pidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")
	fs.Var(o.capAdd, "cap-add", "Add Linux capabilities")
	fs.Var(o.capDrop, "cap-drop", "Drop Linux capabilities")
	fs.BoolVar(&o.Privileged, "privileged", false, "Give extended privileges to this container")
	fs.Var(o.securityOpt, "security-opt", "Security Options")
	fs.BoolVar(&o.Init, "init", false, "Run an init inside the container that forwards signals and reaps processes")
	fs.StringVar(&o.Restart, "restart", "no", "Restart policy to apply when a container exits")
	fs.Var(&o.networks, "network", "Connect a container to a network")
	fs.Var(&o.networks, "net", "Connect a container to a network")
	_ = fs.MarkHidden("net")
	fs.Var(o.aliases, "network-alias", "Add network-scoped alias for the container")
	fs.Var(o.aliases, "net-alias", "Add network-scoped alias for the container")
	_ = fs.MarkHidden("net-alias")
	fs.StringVar(&o.ipv4, "ip", "", "IPv4 address (e.g., 172.30.100.104)")
	fs.StringVar(&o.ipv6, "ip6", "", "IPv6 address (e.g., 2001:db8::33)")
	fs.Var(o.links, "link", "Add link to another container")
	fs.Var(o.linkLocalIPs, "link-local-ip", "Container IPv4/IPv6 link-local addresses")
	fs.StringVar(&o.macAddress, "mac-address", "", "Container MAC address (e.g., 92:d0:c6:0a:29:33)")
	fs.VarP(o.publish, "publish", "p", "Publish a container's port(s) to the host")
	fs.BoolVarP(&o.PublishAll, "publish-all", "P", false, "Publish all exposed ports to random ports")
	fs.Var(o.expose, "expose", "Expose a port or a range of ports")
	fs.VarP(o.labels, "label", "l", "Set meta data on a container")
	fs.Var(o.labelFile, "label-file", "Read in a line delimited file of labels")
	fs.StringVar(&o.LogDriver, "log-driver", "", "Logging driver for the container")
	fs.Var(o.logOpts, "log-opt", "Log driver options")
	fs.Var(&o.ulimits, "ulimit", "Ulimit options")
	fs.Var(o.devices, "device", "Add a host device to the container")
	fs.Var(o.groupAdd, "group-add", "Add additional groups to join")
	fs.Var(o.extraHosts, "add-host", "Add a custom host-to-IP mapping (host:ip)")
	fs.Var(o.dns, "dns", "Set custom DNS servers")
	fs.Var(o.dnsSearch, "dns-search", "Set custom DNS search domains")
	fs.Var(o.dnsOptions, "dns-option", "Set DNS options")
	fs.Var(o.sysctls, "sysctl", "Sysctl options")
	fs.StringVar(&o.healthCmd, "health-cmd", "", "Command to run to check health")
	fs.DurationVar(&o.healthInterval, "health-interval", 0, "Time between running the check (ms|s|m|h) (default 0s)")
	fs.DurationVar(&o.healthTimeout, "health-timeout", 0, "Maximum time to allow one check to run (ms|s|m|h) (default 0s)")
	fs.DurationVar(&o.healthStartPeriod, "health-start-period", 0, "Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)")
	fs.DurationVar(&o.healthStartInterval, "health-start-interval", 0, "Time between running the check during the start period (ms|s|m|h) (default 0s)")
	fs.IntVar(&o.healthRetries, "health-retries", 0, "Consecutive failures needed to report unhealthy")
	fs.BoolVar(&o.noHealthcheck, "no-healthcheck", false, "Disable any container-specified HEALTHCHECK")
	fs.StringVar(&o.Runtime, "runtime", "", "Runtime to use for this container")
	fs.StringVar(&o.StopSignal, "stop-signal", "", "Signal to stop the container")
	fs.IntVar(&o.StopTimeout, "stop-timeout", 0, "Timeout (in seconds) to stop a container")
	fs.StringVar(&o.Pull, "pull", "missing", `Pull image before running ("always", "missing", "never")`)
	fs.StringVar(&o.Platform, "platform", "", "Set platform if server is multi-platform capable")
	fs.BoolVarP(&o.Quiet, "quiet", "q", false, "Suppress the pull output")
	fs.StringVar(&o.IpcMode, "ipc", "", "IPC mode to use")
	fs.StringVar(&o.PidMode, "pid", "", "PID namespace to use")
	fs.StringVar(&o.UTSMode, "uts", "", "UTS namespace to use")
	fs.StringVar(&o.CgroupnsMod, "cgroupns", "", `Cgroup namespace to use (host|private)`)
	fs.StringVar(&o.CgroupParnt, "cgroup-parent", "", "Optional parent cgroup for the container")
	return o
}
