// Command hakod is hako's container daemon: the Docker Engine API (and the
// CRI) over unix sockets, on top of the engine, the image store and an OCI
// runtime. Its flags are dockerd's where dockerd has the same thing.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/hako-project/hako/internal/timerslack"

	"github.com/hako-project/hako/api/docker"
	"github.com/hako-project/hako/engine"
	"github.com/hako-project/hako/image"
	"github.com/hako-project/hako/image/defaultimage"
	"github.com/hako-project/hako/image/registry"
	"github.com/hako-project/hako/runtime/cgroups"
	"github.com/hako-project/hako/trace/otlp"
)

var version = "0.1.0-dev"

// Config is hakod's configuration: the TOML file's keys are the long flag
// names; flags given on the command line win.
type Config struct {
	Hosts              []string          `toml:"hosts"`
	DataRoot           string            `toml:"data-root"`
	ExecRoot           string            `toml:"exec-root"`
	Pidfile            string            `toml:"pidfile"`
	Group              string            `toml:"group"`
	DefaultRuntime     string            `toml:"default-runtime"`
	Runtimes           map[string]string `toml:"runtimes"`
	InsecureRegistries []string          `toml:"insecure-registries"`
	RegistryMirrors    []string          `toml:"registry-mirrors"`
	LogLevel           string            `toml:"log-level"`
	OTLPEndpoint       string            `toml:"otlp-endpoint"`
	CgroupFavorDynMods bool              `toml:"cgroup-favordynmods"`
	CRIConfig                            // cri.go
	NetworkConfig                        // network.go
}

// defaultConfigFile is read at start when it exists and --config-file
// does not name another (dockerd has /etc/docker/daemon.json, containerd
// /etc/containerd/config.toml).
const defaultConfigFile = "/etc/hako/hakod.toml"

func defaults() Config {
	return Config{
		Hosts: []string{"unix:///run/hako/hako.sock"}, DataRoot: "/var/lib/hako", ExecRoot: "/run/hako",
		Pidfile: "/run/hako/hakod.pid", DefaultRuntime: "hako", LogLevel: "info",
	}
}

// init keeps the main thread to the main goroutine. Goroutines that move
// their thread into another namespace (pinned network namespaces, pods'
// namespaces, the private mount namespace of a docker cp) lock it and never
// unlock it, so the runtime ends the thread with them; but the main thread
// cannot end, and the runtime parks it instead, still in that namespace. The
// kernel describes the process by its main thread (/proc/self/mountinfo,
// /proc/self/ns), so a namespace goroutine landing there would change what
// hakod sees of its own mounts from then on. Locked to main, the main thread
// never runs one.
//
// It also marks every descriptor hakod inherited above stderr
// close-on-exec: hakod starts every shim directly, and a descriptor its
// own starter leaked (a test harness's pipe, say) would otherwise live on
// in each shim for as long as its container runs.
func init() {
	runtime.LockOSThread()
	_ = unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
}

func main() {
	// Before hakod starts anything: shims and containers get the slack
	// hakod was given (timerslack.Fork), the CNI plugins the coarse one.
	timerslack.Coarsen()
	if err := newCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "hakod:", err)
		os.Exit(1)
	}
}

func newCommand() *cobra.Command {
	cfg := defaults()
	var configFile string
	var addRuntimes []string
	cmd := &cobra.Command{
		Use:           "hakod",
		Short:         "hako's container daemon: the Docker Engine API on top of hako's engine",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configFile == defaultConfigFile && !cmd.Flags().Changed("config-file") {
				// As dockerd's daemon.json: read when present.
				if _, err := os.Stat(configFile); errors.Is(err, os.ErrNotExist) {
					configFile = ""
				}
			}
			if configFile != "" {
				if err := loadConfigFile(configFile, &cfg, cmd); err != nil {
					return err
				}
			}
			for _, r := range addRuntimes {
				name, path, ok := strings.Cut(r, "=")
				if !ok || name == "" || path == "" {
					return fmt.Errorf("--add-runtime %q: want NAME=PATH", r)
				}
				if cfg.Runtimes == nil {
					cfg.Runtimes = map[string]string{}
				}
				cfg.Runtimes[name] = path
			}
			return run(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringSliceVarP(&cfg.Hosts, "host", "H", cfg.Hosts, "socket to serve the Docker Engine API on (unix:///path)")
	f.StringVar(&cfg.DataRoot, "data-root", cfg.DataRoot, "root of persistent state (images, containers, logs)")
	f.StringVar(&cfg.ExecRoot, "exec-root", cfg.ExecRoot, "root of runtime state (shims, runtime state, traces)")
	f.StringVarP(&cfg.Pidfile, "pidfile", "p", cfg.Pidfile, "file to write hakod's pid to")
	f.StringVarP(&cfg.Group, "group", "G", cfg.Group, "group that may use the API socket")
	f.StringVar(&configFile, "config-file", defaultConfigFile, "TOML configuration file (keys are the long flag names); the default is read when it exists")
	f.StringVar(&cfg.DefaultRuntime, "default-runtime", cfg.DefaultRuntime, "OCI runtime containers use unless they ask (--runtime)")
	f.StringArrayVar(&addRuntimes, "add-runtime", nil, "register an OCI runtime: NAME=PATH")
	f.StringSliceVar(&cfg.InsecureRegistries, "insecure-registry", nil, "registry (host:port) reached over plain http")
	f.StringSliceVar(&cfg.RegistryMirrors, "registry-mirror", nil, "registry mirror")
	f.StringVarP(&cfg.LogLevel, "log-level", "l", cfg.LogLevel, "debug, info, warn or error")
	f.StringVar(&cfg.OTLPEndpoint, "otlp-endpoint", "", "trace every API request and export the spans (hakod, shim, runtime, init) over OTLP/HTTP to this collector: http://host:4318, https://host:4318 or host:4318 (docs/otlp.md)")
	f.BoolVar(&cfg.CgroupFavorDynMods, "cgroup-favordynmods", false, "remount the host's cgroup2 hierarchy with favordynmods, so moving a container into its cgroup does not wait for an RCU grace period (host-wide; docs/cgroups.md)")
	criFlags(f, &cfg.CRIConfig)
	networkFlags(f, &cfg.NetworkConfig)
	return cmd
}

// loadConfigFile reads the TOML file into cfg, except for what the command
// line set.
func loadConfigFile(path string, cfg *Config, cmd *cobra.Command) error {
	var file Config
	md, err := toml.DecodeFile(path, &file)
	if err != nil {
		return fmt.Errorf("--config-file %s: %w", path, err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		return fmt.Errorf("--config-file %s: unknown keys %v", path, u)
	}
	set := func(flag string, apply func()) {
		if md.IsDefined(flag) && !cmd.Flags().Changed(strings.TrimSuffix(flag, "s")) && !cmd.Flags().Changed(flag) {
			apply()
		}
	}
	set("hosts", func() { cfg.Hosts = file.Hosts })
	set("data-root", func() { cfg.DataRoot = file.DataRoot })
	set("exec-root", func() { cfg.ExecRoot = file.ExecRoot })
	set("pidfile", func() { cfg.Pidfile = file.Pidfile })
	set("group", func() { cfg.Group = file.Group })
	set("default-runtime", func() { cfg.DefaultRuntime = file.DefaultRuntime })
	set("insecure-registries", func() { cfg.InsecureRegistries = file.InsecureRegistries })
	set("registry-mirrors", func() { cfg.RegistryMirrors = file.RegistryMirrors })
	set("log-level", func() { cfg.LogLevel = file.LogLevel })
	set("otlp-endpoint", func() { cfg.OTLPEndpoint = file.OTLPEndpoint })
	set("cgroup-favordynmods", func() { cfg.CgroupFavorDynMods = file.CgroupFavorDynMods })
	applyCRIFile(set, file.CRIConfig, &cfg.CRIConfig)
	applyNetworkFile(set, file.NetworkConfig, &cfg.NetworkConfig)
	for k, v := range file.Runtimes {
		if cfg.Runtimes == nil {
			cfg.Runtimes = map[string]string{}
		}
		if _, ok := cfg.Runtimes[k]; !ok {
			cfg.Runtimes[k] = v
		}
	}
	return nil
}

func run(ctx context.Context, cfg Config) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return fmt.Errorf("--log-level %q: %w", cfg.LogLevel, err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)
	sd := takeNotifySocket() // systemd.go; before anything inherits it
	for _, d := range []string{cfg.DataRoot, cfg.ExecRoot} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	if err := writePidfile(cfg.Pidfile); err != nil {
		return err
	}
	defer os.Remove(cfg.Pidfile)

	if cfg.CgroupFavorDynMods {
		res, err := cgroups.SetFavorDynMods(cgroups.DefaultRoot, true)
		if err != nil {
			return fmt.Errorf("--cgroup-favordynmods: %w", err)
		}
		if !res.Already {
			log.Info("cgroup2 remounted with favordynmods: cgroup migrations no longer wait for an RCU grace period", "mountpoint", res.Mountpoint)
		}
	}
	runtimes, err := findRuntimes(cfg.Runtimes)
	if err != nil {
		return err
	}
	shimPath, err := besideSelf("hako-shim")
	if err != nil {
		return err
	}
	store, err := image.Open(ctx, image.Options{Root: cfg.DataRoot, Logger: log})
	if err != nil {
		return err
	}
	defer store.Close()
	if _, err := registry.ValidateMirrors(cfg.RegistryMirrors); err != nil {
		return fmt.Errorf("--registry-mirror: %w", err)
	}
	hosts, err := registryHosts(cfg.CRIConfig)
	if err != nil {
		return err
	}
	reg := registry.New(store, registry.Options{Insecure: cfg.InsecureRegistries, Mirrors: cfg.RegistryMirrors, Hosts: hosts, UserAgent: "hako/" + version, Logger: log})
	nets, err := openNetworks(ctx, cfg, log) // network.go
	if err != nil {
		return err
	}
	defer nets.Close()
	eng, err := engine.Open(ctx, engine.Config{
		DataRoot: cfg.DataRoot, ExecRoot: cfg.ExecRoot, Runtimes: runtimes, DefaultRuntime: cfg.DefaultRuntime,
		ShimPath: shimPath, GatePath: gatePath(), Images: store, Networks: nets, Log: log,
	})
	if err != nil {
		return err
	}
	defer eng.Close()
	if cfg.OTLPEndpoint != "" {
		// Started before the API serves, so no request's spans are missed;
		// closed (deferred) after the API stopped, so the last are flushed.
		exp, err := otlp.Start(otlp.Options{Endpoint: cfg.OTLPEndpoint, Dir: eng.Traces().Dir(), Log: log})
		if err != nil {
			return fmt.Errorf("--otlp-endpoint: %w", err)
		}
		defer func() {
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := exp.Close(fctx); err != nil {
				log.Warn("trace spans not exported at shutdown", "endpoint", cfg.OTLPEndpoint, "err", err)
			}
		}()
		log.Info("exporting trace spans over OTLP/HTTP", "endpoint", cfg.OTLPEndpoint)
	}
	api := docker.New(eng, docker.Config{
		Version: version, Registry: reg, Log: log, TraceAll: cfg.OTLPEndpoint != "",
		InsecureRegistries: cfg.InsecureRegistries, RegistryMirrors: cfg.RegistryMirrors,
		BuildDefaultImage: func(ctx context.Context) error {
			_, err := defaultimage.Build(ctx, store, defaultimage.Options{})
			return err
		},
	})

	srv := &http.Server{Handler: api, ReadHeaderTimeout: 30 * time.Second}
	var listeners []net.Listener
	for _, h := range cfg.Hosts {
		l, err := listen(h, cfg.Group)
		if err != nil {
			return err
		}
		listeners = append(listeners, l)
		go func() {
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("API server", "host", h, "err", err)
			}
		}()
		log.Info("API listening", "host", h)
	}
	stopCRI, err := startCRI(ctx, cfg, eng, reg, nets, log)
	if err != nil {
		return err
	}
	defer stopCRI()
	log.Info("hakod started", "version", version, "data-root", cfg.DataRoot, "exec-root", cfg.ExecRoot, "default-runtime", cfg.DefaultRuntime)
	if err := sd.notify("READY=1"); err != nil {
		log.Warn("hakod is ready, but could not say so", "err", err)
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	<-sigs
	log.Info("hakod stopping; containers keep running")
	if err := sd.notify("STOPPING=1"); err != nil {
		log.Warn("hakod is stopping, but could not say so", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	for _, l := range listeners {
		l.Close()
	}
	return nil
}

// listen opens a unix socket for the API, mode 0660, owned by root and the
// given group.
func listen(host, group string) (net.Listener, error) {
	path, ok := strings.CutPrefix(host, "unix://")
	if !ok {
		return nil, fmt.Errorf("--host %q: only unix:// sockets are supported", host)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return nil, err
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("--host %s: another daemon is listening there", host)
	}
	os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", host, err)
	}
	gid := 0
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("--group %s: %w", group, err)
		}
		gid, _ = strconv.Atoi(g.Gid)
	}
	if err := os.Chown(path, 0, gid); err != nil {
		l.Close()
		return nil, err
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// writePidfile records our pid, refusing if another hakod holds the file.
func writePidfile(path string) error {
	if b, err := os.ReadFile(path); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid != os.Getpid() && hakodRunning(pid) {
			return fmt.Errorf("pid file %s: hakod %d is running", path, pid)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())), 0o644)
}

// hakodRunning reports whether pid is a live hakod. A zombie is not: a
// hakod killed a moment ago stays one until its parent reaps it (an init
// that reaps late, a shell that started it in the background), and a
// restart right after the kill must not be refused for it.
func hakodRunning(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// "PID (COMM) STATE ...": the name may hold spaces and parentheses.
	open, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
	if open < 0 || end < open || len(stat) < end+3 {
		return false
	}
	return string(stat[open+1:end]) == "hakod" && stat[end+2] != 'Z' && stat[end+2] != 'X'
}

// gatePath is hako-runtime beside hakod, for its `gate` hook (engine
// Config.GatePath), whatever the runtimes are called; "" without it.
func gatePath() string {
	p, err := besideSelf("hako-runtime")
	if err != nil {
		return ""
	}
	return p
}

// findRuntimes returns the configured runtimes plus the ones hakod knows
// by default: hako (hako-runtime beside hakod), and runc and crun when they
// are installed.
func findRuntimes(extra map[string]string) (map[string]string, error) {
	out := map[string]string{}
	if p, err := besideSelf("hako-runtime"); err == nil {
		out["hako"] = p
	}
	for _, name := range []string{"runc", "crun"} {
		if p, err := exec.LookPath(name); err == nil {
			out[name] = p
		}
	}
	for k, v := range extra {
		p, err := exec.LookPath(v)
		if err != nil {
			return nil, fmt.Errorf("runtime %s: %w", k, err)
		}
		out[k] = p
	}
	return out, nil
}

// besideSelf finds one of hako's binaries next to hakod, or in $PATH.
func besideSelf(name string) (string, error) {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found next to hakod or in $PATH", name)
	}
	return p, nil
}
