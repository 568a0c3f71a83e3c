// Package specgen turns an image config plus run options into an OCI
// runtime spec the way docker does: the image's Entrypoint, Cmd, Env,
// WorkingDir, User, ExposedPorts, Volumes, StopSignal and Labels merged with
// what the user asked for, on top of docker's default spec (capabilities,
// masked and read-only paths, default mounts, namespaces, device rules and
// the default seccomp profile).
//
// It does no I/O except reading /etc/passwd and /etc/group from a given
// rootfs (resolved inside that rootfs) to resolve User. Creating the
// working directory, volumes, /etc/hosts and resolv.conf is the engine's job.
//
// # Merge rules (docker's)
//
//   - Entrypoint: a nil RunOptions.Entrypoint keeps the image's. A non-nil
//     empty one, or [""] (docker run --entrypoint ""), clears it.
//   - Cmd: when the user gives an Entrypoint (even an empty one) the image's
//     Cmd is dropped and only the user's Cmd is used; otherwise the user's
//     Cmd replaces the image's when non-empty.
//   - The process runs Entrypoint followed by Cmd; nothing left is an error
//     ("no command specified").
//   - Env: the user's variables, then the image's ones the user did not
//     set. The process gets PATH (docker's default unless set), HOSTNAME and,
//     with a tty, TERM=xterm, each replaced in place by a merged variable of
//     the same name, then the other merged variables, then HOME from the
//     user's passwd entry if still unset (runc's rule). A bare "NAME" removes
//     NAME.
//   - WorkingDir: the user's if set, else the image's, else "/"; it must be
//     absolute.
//   - User: the user's if set, else the image's, else root; resolved to
//     uid, gid and supplementary groups against the rootfs.
//   - ExposedPorts, Volumes: union of image and user ("80" means "80/tcp").
//   - StopSignal: the user's, else the image's, else SIGTERM.
//   - Labels: the image's, with the user's overriding equal keys.
package specgen

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/hako-project/hako/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// DefaultPathEnv is docker's PATH for Linux containers.
const DefaultPathEnv = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Config is the result of merging image config and run options: what the
// container runs with, before it is turned into a spec.
type Config struct {
	Entrypoint   []string
	Cmd          []string
	Env          []string
	WorkingDir   string
	User         string
	ExposedPorts []string
	Volumes      []string
	StopSignal   string
	Labels       map[string]string
}

// Args is the command line the container runs: Entrypoint then Cmd.
func (c Config) Args() []string {
	return append(append([]string{}, c.Entrypoint...), c.Cmd...)
}

// Merge applies docker's rules (see the package doc) to the image config
// and the user's options. It does no I/O.
func Merge(img ocispec.ImageConfig, opts RunOptions) (Config, error) {
	var c Config
	switch {
	case opts.Entrypoint == nil:
		c.Entrypoint = clone(img.Entrypoint)
		if len(opts.Cmd) > 0 {
			c.Cmd = clone(opts.Cmd)
		} else {
			c.Cmd = clone(img.Cmd)
		}
	default:
		if !(len(opts.Entrypoint) == 1 && opts.Entrypoint[0] == "") {
			c.Entrypoint = clone(opts.Entrypoint)
		}
		c.Cmd = clone(opts.Cmd)
	}
	if len(c.Entrypoint)+len(c.Cmd) == 0 {
		return Config{}, fmt.Errorf("%w: no command specified (the image has no Entrypoint or Cmd and none was given)", errdefs.ErrInvalid)
	}
	c.Env = mergeEnv(img.Env, opts.Env)
	for _, e := range c.Env {
		if k, _, _ := strings.Cut(e, "="); k == "" {
			return Config{}, fmt.Errorf("%w: environment variable %q has no name", errdefs.ErrInvalid, e)
		}
	}
	c.WorkingDir = img.WorkingDir
	if opts.WorkingDir != "" {
		c.WorkingDir = opts.WorkingDir
	}
	if c.WorkingDir == "" {
		c.WorkingDir = "/"
	}
	if !strings.HasPrefix(c.WorkingDir, "/") {
		return Config{}, fmt.Errorf("%w: the working directory %q is invalid, it needs to be an absolute path", errdefs.ErrInvalid, c.WorkingDir)
	}
	c.User = img.User
	if opts.User != "" {
		c.User = opts.User
	}
	ports := map[string]bool{}
	for p := range img.ExposedPorts {
		np, err := normalizePort(p)
		if err != nil {
			return Config{}, fmt.Errorf("image exposed port: %w", err)
		}
		ports[np] = true
	}
	for _, p := range opts.ExposedPorts {
		np, err := normalizePort(p)
		if err != nil {
			return Config{}, err
		}
		ports[np] = true
	}
	c.ExposedPorts = sortedKeys(ports)
	vols := map[string]bool{}
	for v := range img.Volumes {
		vols[v] = true
	}
	for _, v := range opts.Volumes {
		if !strings.HasPrefix(v, "/") {
			return Config{}, fmt.Errorf("%w: volume %q must be an absolute path", errdefs.ErrInvalid, v)
		}
		vols[v] = true
	}
	c.Volumes = sortedKeys(vols)
	c.StopSignal = img.StopSignal
	if opts.StopSignal != "" {
		c.StopSignal = opts.StopSignal
	}
	if c.StopSignal == "" {
		c.StopSignal = "SIGTERM"
	}
	if _, err := ParseSignal(c.StopSignal); err != nil {
		return Config{}, err
	}
	c.Labels = map[string]string{}
	for k, v := range img.Labels {
		c.Labels[k] = v
	}
	for k, v := range opts.Labels {
		c.Labels[k] = v
	}
	return c, nil
}

func clone(s []string) []string {
	if s == nil {
		return nil
	}
	return append([]string{}, s...)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// mergeEnv is docker's merge: the user's variables in their order, then
// the image's variables the user did not set.
func mergeEnv(image, user []string) []string {
	if len(user) == 0 {
		return clone(image)
	}
	out := clone(user)
	for _, e := range image {
		k, _, _ := strings.Cut(e, "=")
		if !hasEnv(user, k) {
			out = append(out, e)
		}
	}
	return out
}

// replaceOrAppend replaces variables of base that over sets (by name) and
// appends the others. A bare "NAME" in over removes NAME, as in docker.
func replaceOrAppend(base, over []string) []string {
	idx := map[string]int{}
	for i, e := range base {
		k, _, _ := strings.Cut(e, "=")
		idx[k] = i
	}
	var removed []string
	for _, e := range over {
		k, _, hasEq := strings.Cut(e, "=")
		if !hasEq {
			removed = append(removed, k)
			continue
		}
		if i, ok := idx[k]; ok {
			base[i] = e
			continue
		}
		idx[k] = len(base)
		base = append(base, e)
	}
	for _, k := range removed {
		if i, ok := idx[k]; ok {
			base[i] = ""
		}
	}
	out := base[:0]
	for _, e := range base {
		if e != "" {
			out = append(out, e)
		}
	}
	return out
}

func hasEnv(env []string, name string) bool {
	for _, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == name {
			return true
		}
	}
	return false
}

func normalizePort(p string) (string, error) {
	port, proto, ok := strings.Cut(p, "/")
	if !ok {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	switch proto {
	case "tcp", "udp", "sctp":
	default:
		return "", fmt.Errorf("%w: port %q: unknown protocol %q", errdefs.ErrInvalid, p, proto)
	}
	lo, hi, isRange := strings.Cut(port, "-")
	for _, s := range []string{lo, hi} {
		if !isRange && s == hi {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("%w: port %q: %q is not a port number", errdefs.ErrInvalid, p, s)
		}
	}
	return port + "/" + proto, nil
}

// ParseSignal parses docker's signal forms: "SIGTERM", "TERM", "15",
// "SIGRTMIN+3".
func ParseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("%w: invalid signal number %d", errdefs.ErrInvalid, n)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if rest, ok := strings.CutPrefix(name, "SIGRTMIN"); ok {
		off := 0
		if rest != "" {
			n, err := strconv.Atoi(strings.TrimPrefix(rest, "+"))
			if err != nil || !strings.HasPrefix(rest, "+") {
				return 0, fmt.Errorf("%w: invalid signal %q", errdefs.ErrInvalid, s)
			}
			off = n
		}
		if 34+off > 64 {
			return 0, fmt.Errorf("%w: invalid signal %q", errdefs.ErrInvalid, s)
		}
		return unix.Signal(34 + off), nil
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("%w: invalid signal %q", errdefs.ErrInvalid, s)
}
