package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"syscall"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
)

// Docker's health check defaults and limits.
const (
	defaultProbeInterval = 30 * time.Second
	defaultProbeTimeout  = 30 * time.Second
	defaultProbeRetries  = 3
	// minProbeInterval keeps a zero or tiny interval from spinning.
	minProbeInterval = 100 * time.Millisecond
	healthLogEntries = 5
	healthOutputMax  = 4096
)

// healthConfig is the container's health check, or nil when it has none
// (or --no-healthcheck / HEALTHCHECK NONE turned it off).
func healthConfig(r Record) *container.HealthConfig {
	if r.Config == nil || r.Config.Healthcheck == nil {
		return nil
	}
	hc := r.Config.Healthcheck
	if len(hc.Test) == 0 || hc.Test[0] == "NONE" {
		return nil
	}
	return hc
}

// imageHealthcheck is the health check a container gets: the one of its
// create request, with what it leaves out (an empty test, zero durations)
// taken from its image's HEALTHCHECK, as docker merges them. raw is the
// image config's JSON (HEALTHCHECK is a docker extension OCI parsing drops).
func imageHealthcheck(user *container.HealthConfig, raw []byte) *container.HealthConfig {
	var img dockerspec.DockerOCIImage
	if json.Unmarshal(raw, &img) != nil || img.Config.Healthcheck == nil {
		return user
	}
	ih := img.Config.Healthcheck
	if user == nil {
		cp := *ih
		return &cp
	}
	if len(user.Test) > 0 && user.Test[0] == "NONE" {
		return user // --no-healthcheck: nothing inherited
	}
	out := *user
	if len(out.Test) == 0 {
		out.Test = ih.Test
	}
	if out.Interval == 0 {
		out.Interval = ih.Interval
	}
	if out.Timeout == 0 {
		out.Timeout = ih.Timeout
	}
	if out.StartPeriod == 0 {
		out.StartPeriod = ih.StartPeriod
	}
	if out.StartInterval == 0 {
		out.StartInterval = ih.StartInterval
	}
	if out.Retries == 0 {
		out.Retries = ih.Retries
	}
	return &out
}

// monitorHealth runs the container's health check while task runs (until
// done closes): every interval a probe is executed in the container through
// its shim, its result goes into State.Health (status, failing streak, the
// last five results), which is saved with the container so it survives a
// hakod restart, and a change of status is a "health_status: STATUS"
// event, as docker does. A fresh start begins "starting"; a container
// re-adopted after a hakod restart keeps the status it had.
func (e *Engine) monitorHealth(c *Container, task Task, done <-chan struct{}) {
	hc := healthConfig(c.Snapshot())
	if hc == nil {
		return
	}
	c.mu.Lock()
	h := c.State.Health
	if h == nil || len(h.Log) == 0 || h.Log[len(h.Log)-1].End.Before(c.State.StartedAt) {
		nh := &container.Health{Status: container.Starting, Log: []*container.HealthcheckResult{}}
		if h != nil {
			nh.Log = h.Log
		}
		c.State.Health = nh
	}
	c.mu.Unlock()
	interval := durationOr(hc.Interval, defaultProbeInterval)
	timeout := durationOr(hc.Timeout, defaultProbeTimeout)
	retries := hc.Retries
	if retries <= 0 {
		retries = defaultProbeRetries
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			<-done
			cancel()
		}()
		for {
			wait := interval
			if st := c.Snapshot().State; hc.StartInterval > 0 && st.Health != nil &&
				st.Health.Status == container.Starting && time.Since(st.StartedAt) < hc.StartPeriod {
				wait = max(hc.StartInterval, minProbeInterval)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			res := e.probe(ctx, c, task, hc, timeout)
			if ctx.Err() != nil {
				return // the container stopped under the probe: not a result
			}
			e.recordProbe(c, res, hc.StartPeriod, retries)
		}
	}()
}

func durationOr(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return max(d, minProbeInterval)
}

// probe runs the health check command once, as an exec in the container
// (CMD: the arguments; CMD-SHELL: /bin/sh -c), and kills it at timeout.
func (e *Engine) probe(ctx context.Context, c *Container, task Task, hc *container.HealthConfig, timeout time.Duration) *container.HealthcheckResult {
	res := &container.HealthcheckResult{Start: time.Now().UTC()}
	fail := func(code int, msg string) *container.HealthcheckResult {
		res.End, res.ExitCode, res.Output = time.Now().UTC(), code, msg
		return res
	}
	if c.Snapshot().State.Status == container.StatePaused {
		// An exec would join the frozen cgroup and hang until the timeout;
		// docker's probe fails at once with the exec's refusal.
		return fail(-1, fmt.Sprintf("Container %s is paused, unpause the container before exec", c.ID))
	}
	var cmd []string
	switch hc.Test[0] {
	case "CMD":
		cmd = hc.Test[1:]
	case "CMD-SHELL":
		cmd = append([]string{"/bin/sh", "-c"}, hc.Test[1:]...)
	default:
		return fail(-1, fmt.Sprintf("unknown health check type %q", hc.Test[0]))
	}
	if len(cmd) == 0 {
		return fail(-1, "health check has no command")
	}
	proc, err := e.execProcess(c, ExecConfig{Cmd: cmd})
	if err != nil {
		return fail(-1, err.Error())
	}
	out := &cappedBuffer{max: healthOutputMax}
	et, err := task.Exec(ctx, ExecTaskConfig{ID: newID(), Process: *proc, Streams: Streams{Stdout: out, Stderr: out}})
	if err != nil {
		return fail(-1, err.Error())
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	st, err := et.Wait(wctx)
	if err != nil {
		if wctx.Err() != nil && ctx.Err() == nil {
			_ = et.Kill(context.WithoutCancel(ctx), syscall.SIGKILL)
			return fail(-1, fmt.Sprintf("Health check exceeded timeout (%v)", timeout))
		}
		return fail(-1, err.Error())
	}
	res.End, res.ExitCode, res.Output = time.Now().UTC(), st.Code, out.String()
	return res
}

// recordProbe applies a probe's result as docker does: a success makes the
// container healthy; a failure counts towards retries, except while a
// container that was never healthy is in its start period.
func (e *Engine) recordProbe(c *Container, res *container.HealthcheckResult, startPeriod time.Duration, retries int) {
	status, changed := applyProbe(c, res, startPeriod, retries)
	if err := e.save(c); err != nil {
		e.log.Warn("save health check result", "id", c.ID, "err", err)
	}
	if changed {
		e.events.emitContainer(c, "health_status: "+string(status), nil)
	}
}

// applyProbe records a result in c's health and reports the status and
// whether it changed.
func applyProbe(c *Container, res *container.HealthcheckResult, startPeriod time.Duration, retries int) (container.HealthStatus, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.State.Health
	if old == nil {
		old = &container.Health{Status: container.Starting}
	}
	// A new value, never a change in place: Snapshot() hands the pointer
	// out to readers.
	h := &container.Health{Status: old.Status, FailingStreak: old.FailingStreak}
	h.Log = append(append([]*container.HealthcheckResult{}, old.Log...), res)
	if len(h.Log) > healthLogEntries {
		h.Log = h.Log[len(h.Log)-healthLogEntries:]
	}
	if res.ExitCode == 0 {
		h.FailingStreak = 0
		h.Status = container.Healthy
	} else if !(h.Status == container.Starting && res.Start.Sub(c.State.StartedAt) < startPeriod) {
		h.FailingStreak++
		if h.FailingStreak >= retries {
			h.Status = container.Unhealthy
		}
	}
	c.State.Health = h
	return h.Status, h.Status != old.Status
}

// cappedBuffer keeps the first max bytes written to it (docker keeps 4 KiB
// of a probe's output).
type cappedBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (b *cappedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
