package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/image"
	"github.com/hako-project/hako/trace"
)

// CommitRequest is POST /commit's.
type CommitRequest struct {
	// Ref names the new image ("repo[:tag]"; "" leaves it untagged).
	Ref     string
	Author  string
	Comment string
	// Changes are Dockerfile instructions applied to the config (CMD,
	// ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD, STOPSIGNAL,
	// USER, VOLUME, WORKDIR).
	Changes []string
	// Config is the request body: fields it sets win over the container's.
	Config *container.Config
	// Pause freezes a running container while its layer is read, so the
	// layer is consistent (docker's default).
	Pause bool
}

// Commit makes an image of a container: its writable layer on top of its
// image, with the container's config as the image's config (changed by the
// request), as docker commit does. It returns the new image's ID.
func (e *Engine) Commit(ctx context.Context, ref string, req CommitRequest) (id string, err error) {
	c, err := e.Get(ref)
	if err != nil {
		return "", err
	}
	ctx, span := trace.Start(ctx, "engine.commit", "id", c.ID)
	defer func() { span.End(err) }()
	snap := c.Snapshot()
	switch snap.State.Status {
	case container.StateRemoving, "removed":
		return "", errdefs.Conflictf("You cannot commit container %s which is being removed", c.ID)
	case container.StateDead:
		return "", errdefs.Conflictf("You cannot commit container %s which is dead", c.ID)
	}
	// As dockerd: without a config in the request the changes apply to the
	// container's own (so ENV appends, and $VAR expands with its values);
	// with one, to that, which is then merged with the container's.
	cfg := cloneConfig(snap.Config)
	if req.Config != nil {
		cfg = cloneConfig(req.Config)
	}
	for _, ch := range req.Changes {
		for _, line := range strings.Split(ch, "\n") {
			if strings.TrimSpace(line) == "" {
				continue
			}
			if err := applyCommitChange(cfg, line); err != nil {
				return "", err
			}
		}
	}
	mergeCommitConfig(cfg, snap.Config)
	if req.Pause && snap.State.Status == container.StateRunning {
		c.mu.Lock()
		task := c.task
		c.mu.Unlock()
		if task != nil {
			if err := task.Pause(ctx); err != nil {
				return "", fmt.Errorf("pause container %s for the commit: %w", c.ID, err)
			}
			defer func() {
				if rerr := task.Resume(context.WithoutCancel(ctx)); rerr != nil {
					e.log.Warn("resume container after commit", "id", c.ID, "err", rerr)
				}
			}()
		}
	}
	img, err := e.images.CommitContainer(ctx, c.ID, image.CommitOptions{
		Ref: req.Ref, Author: req.Author, Comment: req.Comment, Config: imageConfig(cfg),
		CreatedBy: strings.Join(snap.Config.Cmd, " "), Healthcheck: cfg.Healthcheck, OnBuild: cfg.OnBuild, Shell: cfg.Shell,
	})
	if err != nil {
		return "", fmt.Errorf("commit container %s: %w", c.ID, err)
	}
	e.events.emitContainer(c, "commit", map[string]string{"comment": req.Comment, "imageID": img.ID.String(), "imageRef": req.Ref})
	return img.ID.String(), nil
}

// cloneConfig copies what applyCommitChange and mergeCommitConfig change
// in place: the environment, labels, ports and volumes.
func cloneConfig(c *container.Config) *container.Config {
	if c == nil {
		return &container.Config{}
	}
	cp := *c
	cp.Env = append([]string(nil), c.Env...)
	cp.Labels = maps.Clone(c.Labels)
	cp.ExposedPorts = maps.Clone(c.ExposedPorts)
	cp.Volumes = maps.Clone(c.Volumes)
	cp.OnBuild = append([]string(nil), c.OnBuild...)
	return &cp
}

// imageConfig is the OCI part of a container config.
func imageConfig(c *container.Config) *ocispec.ImageConfig {
	ic := &ocispec.ImageConfig{User: c.User, Env: c.Env, Entrypoint: c.Entrypoint, Cmd: c.Cmd,
		WorkingDir: c.WorkingDir, Labels: c.Labels, StopSignal: c.StopSignal}
	if len(c.ExposedPorts) > 0 {
		ic.ExposedPorts = map[string]struct{}{}
		for p := range c.ExposedPorts {
			ic.ExposedPorts[p.String()] = struct{}{}
		}
	}
	if len(c.Volumes) > 0 {
		ic.Volumes = maps.Clone(c.Volumes)
	}
	return ic
}

// mergeCommitConfig fills what the request left empty from the container's
// config, as docker's commit does: ports, environment (by key), labels and
// volumes are united; the command, entrypoint, user, working directory,
// stop signal and health check are taken when the request has none.
func mergeCommitConfig(user, ctr *container.Config) {
	if user.User == "" {
		user.User = ctr.User
	}
	if len(user.ExposedPorts) == 0 {
		user.ExposedPorts = ctr.ExposedPorts
	} else {
		for p := range ctr.ExposedPorts {
			user.ExposedPorts[p] = struct{}{}
		}
	}
	if len(user.Env) == 0 {
		user.Env = ctr.Env
	} else {
		have := map[string]bool{}
		for _, kv := range user.Env {
			k, _, _ := strings.Cut(kv, "=")
			have[k] = true
		}
		for _, kv := range ctr.Env {
			if k, _, _ := strings.Cut(kv, "="); !have[k] {
				user.Env = append(user.Env, kv)
			}
		}
	}
	if user.Labels == nil {
		user.Labels = map[string]string{}
	}
	for k, v := range ctr.Labels {
		if _, ok := user.Labels[k]; !ok {
			user.Labels[k] = v
		}
	}
	if len(user.Entrypoint) == 0 && len(user.Cmd) == 0 {
		user.Cmd, user.Entrypoint = ctr.Cmd, ctr.Entrypoint
	}
	if user.Healthcheck == nil {
		user.Healthcheck = ctr.Healthcheck
	}
	if user.WorkingDir == "" {
		user.WorkingDir = ctr.WorkingDir
	}
	if len(user.Volumes) == 0 {
		user.Volumes = ctr.Volumes
	} else {
		maps.Copy(user.Volumes, ctr.Volumes)
	}
	if user.StopSignal == "" {
		user.StopSignal = ctr.StopSignal
	}
}

// applyCommitChange applies one Dockerfile instruction of --change.
func applyCommitChange(c *container.Config, line string) error {
	instr, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
	arg = strings.TrimSpace(arg)
	switch strings.ToUpper(instr) {
	case "CMD":
		c.Cmd = execForm(arg)
	case "ENTRYPOINT":
		c.Entrypoint = execForm(arg)
	case "ENV":
		pairs, err := keyValues(arg, "ENV", c.Env)
		if err != nil {
			return err
		}
		for _, kv := range pairs {
			c.Env = replaceEnv(c.Env, kv[0], kv[0]+"="+kv[1])
		}
	case "LABEL":
		pairs, err := keyValues(arg, "LABEL", c.Env)
		if err != nil {
			return err
		}
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		for _, kv := range pairs {
			c.Labels[kv[0]] = kv[1]
		}
	case "EXPOSE":
		if c.ExposedPorts == nil {
			c.ExposedPorts = network.PortSet{}
		}
		ports, err := expandWords(arg, c.Env)
		if err != nil {
			return errdefs.Invalidf("EXPOSE %s: %v", arg, err)
		}
		for _, p := range ports {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			np, err := network.ParsePort(p)
			if err != nil {
				return errdefs.Invalidf("invalid port %s in EXPOSE", p)
			}
			c.ExposedPorts[np] = struct{}{}
		}
	case "VOLUME":
		if c.Volumes == nil {
			c.Volumes = map[string]struct{}{}
		}
		var vs []string
		if json.Unmarshal([]byte(arg), &vs) == nil {
			for i, v := range vs {
				x, err := expandWord(v, c.Env)
				if err != nil {
					return errdefs.Invalidf("VOLUME %s: %v", arg, err)
				}
				vs[i] = x
			}
		} else {
			var err error
			if vs, err = expandWords(arg, c.Env); err != nil {
				return errdefs.Invalidf("VOLUME %s: %v", arg, err)
			}
		}
		for _, v := range vs {
			c.Volumes[v] = struct{}{}
		}
	case "USER", "WORKDIR", "STOPSIGNAL":
		v, err := expandWord(arg, c.Env)
		if err != nil {
			return errdefs.Invalidf("%s %s: %v", strings.ToUpper(instr), arg, err)
		}
		switch strings.ToUpper(instr) {
		case "USER":
			c.User = v
		case "WORKDIR":
			// Relative to the one before, as in a Dockerfile.
			if !path.IsAbs(v) {
				v = path.Join("/", c.WorkingDir, v)
			}
			c.WorkingDir = path.Clean(v)
		default:
			c.StopSignal = v
		}
	case "ONBUILD":
		c.OnBuild = append(c.OnBuild, arg)
	case "HEALTHCHECK":
		hc, err := parseHealthcheck(arg)
		if err != nil {
			return err
		}
		c.Healthcheck = hc
	default:
		return errdefs.Invalidf("%s is not a valid change command", strings.ToLower(instr))
	}
	return nil
}

// expandWord is one word of an instruction with env's variables expanded
// and its quotes removed (buildkit's Dockerfile lexer, '\\' escapes).
func expandWord(word string, env []string) (string, error) {
	s, _, err := shell.NewLex('\\').ProcessWord(word, shell.EnvsFromSlice(env))
	return s, err
}

// expandWords is expandWord for each blank-separated word of words, split
// first as the Dockerfile parser splits "k=v k2=v2" (blanks inside quotes
// or after a backslash do not split; quotes stay for the lexer). The
// lexer's own ProcessWords is not used: it drops "F=" from
// "F=${X:-default}".
func expandWords(words string, env []string) ([]string, error) {
	var out []string
	for _, w := range splitRaw(words) {
		x, err := expandWord(w, env)
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, nil
}

// splitRaw splits s on blanks outside quotes, keeping quotes and escapes.
func splitRaw(s string) []string {
	var out []string
	var cur strings.Builder
	quote, esc := byte(0), false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case esc:
			esc = false
		case ch == '\\' && quote != '\'':
			esc = true
		case quote != 0:
			if ch == quote {
				quote = 0
			}
		case ch == '"' || ch == '\'':
			quote = ch
		case ch == ' ' || ch == '\t':
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
			continue
		}
		cur.WriteByte(ch)
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// execForm reads a JSON array, or a shell form run by /bin/sh -c.
func execForm(arg string) []string {
	var v []string
	if strings.HasPrefix(arg, "[") && json.Unmarshal([]byte(arg), &v) == nil {
		return v
	}
	return []string{"/bin/sh", "-c", arg}
}

// keyValues reads "k=v k2='v 2'" or the old "k v" form, with the
// variables of env expanded and quotes removed, as a Dockerfile's (the
// same lexer: $A and ${A:-x} expand, '$A' does not).
func keyValues(arg, instr string, env []string) ([][2]string, error) {
	words, err := expandWords(arg, env)
	if err != nil {
		return nil, errdefs.Invalidf("%s %s: %v", instr, arg, err)
	}
	if len(words) == 0 {
		return nil, errdefs.Invalidf("%s requires at least one argument", instr)
	}
	if !strings.Contains(words[0], "=") {
		k, v, _ := strings.Cut(strings.TrimSpace(arg), " ")
		v, err := expandWord(strings.TrimSpace(v), env)
		if err != nil {
			return nil, errdefs.Invalidf("%s %s: %v", instr, arg, err)
		}
		return [][2]string{{k, v}}, nil
	}
	var out [][2]string
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			return nil, errdefs.Invalidf("Syntax error - can't find = in %q. Must be of the form: name=value", w)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// parseHealthcheck reads HEALTHCHECK [OPTIONS] CMD command | NONE.
func parseHealthcheck(arg string) (*container.HealthConfig, error) {
	hc := &container.HealthConfig{}
	rest := arg
	for strings.HasPrefix(rest, "--") {
		opt, r, _ := strings.Cut(rest, " ")
		rest = strings.TrimSpace(r)
		k, v, ok := strings.Cut(strings.TrimPrefix(opt, "--"), "=")
		if !ok {
			return nil, errdefs.Invalidf("HEALTHCHECK option %s needs a value", opt)
		}
		var err error
		switch k {
		case "interval":
			hc.Interval, err = time.ParseDuration(v)
		case "timeout":
			hc.Timeout, err = time.ParseDuration(v)
		case "start-period":
			hc.StartPeriod, err = time.ParseDuration(v)
		case "start-interval":
			hc.StartInterval, err = time.ParseDuration(v)
		case "retries":
			hc.Retries, err = strconv.Atoi(v)
		default:
			return nil, errdefs.Invalidf("Unknown flag: %s", k)
		}
		if err != nil {
			return nil, errdefs.Invalidf("HEALTHCHECK --%s: %s", k, err.Error())
		}
	}
	kind, cmd, _ := strings.Cut(rest, " ")
	switch strings.ToUpper(kind) {
	case "NONE":
		return &container.HealthConfig{Test: []string{"NONE"}}, nil
	case "CMD":
		cmd = strings.TrimSpace(cmd)
		var v []string
		if strings.HasPrefix(cmd, "[") && json.Unmarshal([]byte(cmd), &v) == nil {
			hc.Test = append([]string{"CMD"}, v...)
		} else {
			hc.Test = []string{"CMD-SHELL", cmd}
		}
		return hc, nil
	}
	return nil, errdefs.Invalidf("Unknown type %q in HEALTHCHECK (try CMD)", kind)
}
