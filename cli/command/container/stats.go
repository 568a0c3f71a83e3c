package container

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/go-units"
	"github.com/hako-project/hako/cli/command"
	"github.com/hako-project/hako/cli/formatter"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

const defaultStatsFormat = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"

var statsHeader = map[string]string{
	"Container": "CONTAINER", "Name": "NAME", "ID": "CONTAINER ID", "CPUPerc": "CPU %",
	"MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
}

// NewStatsCommand is `hako stats`: a live table of the containers'
// resource use (redrawn every half second), or one table with
// --no-stream. Without names it follows the running containers (all with
// -a) as they start and stop.
func NewStatsCommand(cli *command.Cli) *cobra.Command {
	var all, noStream, noTrunc bool
	var format string
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] [CONTAINER...]",
		Short: "Display a live stream of container(s) resource usage statistics",
		RunE: func(cmd *cobra.Command, args []string) error {
			return runStats(cmd.Context(), cli, args, all, noStream, noTrunc, format)
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&all, "all", "a", false, "Show all containers (default shows just running)")
	fs.StringVar(&format, "format", "", "Format output using a custom template")
	fs.BoolVar(&noStream, "no-stream", false, "Disable streaming stats and only pull the first result")
	fs.BoolVar(&noTrunc, "no-trunc", false, "Do not truncate output")
	return cmd
}

// statsEntry is one container's numbers as the table shows them.
type statsEntry struct {
	container, name, id         string
	cpu, mem, memLimit, memPerc float64
	netRx, netTx, blkR, blkW    float64
	pids                        uint64
	invalid                     bool
}

// collector follows one container's stats stream.
type collector struct {
	mu    sync.RWMutex
	entry statsEntry
	err   error
}

func (c *collector) get() (statsEntry, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.entry, c.err
}

// statsSet is the containers shown, in the order they came.
type statsSet struct {
	mu   sync.RWMutex
	list []*collector
}

// add starts following container (a name or ID) unless it is followed.
func (s *statsSet) add(name string) (*collector, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.list {
		if e, _ := c.get(); e.container == name || e.id != "" && strings.HasPrefix(e.id, name) {
			return nil, false
		}
	}
	c := &collector{entry: statsEntry{container: name}}
	s.list = append(s.list, c)
	return c, true
}

func (s *statsSet) remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, c := range s.list {
		if e, _ := c.get(); e.id == id || e.container == id {
			s.list = append(s.list[:i], s.list[i+1:]...)
			return
		}
	}
}

func (s *statsSet) entries() ([]statsEntry, []error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]statsEntry, 0, len(s.list))
	var errs []error
	for _, c := range s.list {
		e, err := c.get()
		out = append(out, e)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return out, errs
}

func runStats(ctx context.Context, cli *command.Cli, names []string, all, noStream, noTrunc bool, format string) error {
	api, err := cli.Client()
	if err != nil {
		return err
	}
	var set statsSet
	var first sync.WaitGroup
	start := func(name string) {
		c, added := set.add(name)
		if !added {
			return
		}
		first.Add(1)
		go collect(ctx, api, c, !noStream, &first)
	}
	showAll := len(names) == 0
	streamErr := make(chan error, 1)
	if showAll {
		// Follow starts and stops from before the list is read, so none is
		// missed in between.
		f := client.Filters{}
		f.Add("type", string(events.ContainerEventType))
		ev := api.Events(ctx, client.EventsListOptions{Filters: f})
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case err := <-ev.Err:
					streamErr <- err
					return
				case m := <-ev.Messages:
					switch {
					case m.Action == events.ActionStart || all && m.Action == events.ActionCreate:
						start(m.Actor.ID)
					case m.Action == events.ActionDestroy || !all && m.Action == events.ActionDie:
						set.remove(m.Actor.ID)
					}
				}
			}
		}()
		list, err := api.ContainerList(ctx, client.ContainerListOptions{All: all})
		if err != nil {
			return err
		}
		for _, c := range list.Items {
			start(c.ID)
		}
		first.Wait()
	} else {
		for _, n := range names {
			start(n)
		}
		first.Wait()
		if _, errs := set.entries(); len(errs) > 0 {
			return errors.Join(errs...)
		}
	}
	f := formatter.Format(format)
	if format == "" || format == formatter.Table {
		f = defaultStatsFormat
	}
	render := func(buf *bytes.Buffer) error {
		entries, _ := set.entries()
		rows := make([]any, len(entries))
		for i, e := range entries {
			rows[i] = &statsContext{e: e, trunc: !noTrunc}
		}
		return formatter.WriteList(buf, f, statsHeader, rows)
	}
	var buf bytes.Buffer
	if noStream {
		if err := render(&buf); err != nil {
			return err
		}
		_, err := cli.Out.Write(buf.Bytes())
		return err
	}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-streamErr:
			if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil
			}
			return err
		case <-tick.C:
		}
		// docker 28 draws each frame twice into one write: the table after
		// "cursor home", then every line of that again with "erase to end
		// of line", and "erase below" at the end. Byte for byte the same
		// here, so the two CLIs' screens match.
		buf.WriteString("\033[H")
		if err := render(&buf); err != nil {
			return err
		}
		for _, line := range strings.Split(buf.String(), "\n") {
			fmt.Fprintln(&buf, line, "\033[K")
		}
		buf.WriteString("\033[J")
		if _, err := cli.Out.Write(buf.Bytes()); err != nil {
			return err
		}
		buf.Reset()
		set.mu.RLock()
		empty := len(set.list) == 0
		set.mu.RUnlock()
		if empty && !showAll {
			return nil
		}
	}
}

// collect reads one container's stats stream into c; first is released at
// the first sample (or error, or after two seconds without one).
func collect(ctx context.Context, api interface {
	ContainerStats(context.Context, string, client.ContainerStatsOptions) (client.ContainerStatsResult, error)
}, c *collector, stream bool, first *sync.WaitGroup) {
	var once sync.Once
	done := func() { once.Do(first.Done) }
	defer done()
	e, _ := c.get()
	res, err := api.ContainerStats(ctx, e.container, client.ContainerStatsOptions{Stream: stream, IncludePreviousSample: true})
	if err != nil {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		return
	}
	defer res.Body.Close()
	samples := make(chan error, 1)
	go func() {
		dec := json.NewDecoder(res.Body)
		for {
			var v container.StatsResponse
			if err := dec.Decode(&v); err != nil {
				samples <- err
				return
			}
			e := entryOf(&v)
			c.mu.Lock()
			e.container = c.entry.container
			c.entry, c.err = e, nil
			c.mu.Unlock()
			samples <- nil
			if !stream {
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
			// No sample for a while: shown as "--" until one comes.
			c.mu.Lock()
			c.entry = statsEntry{container: c.entry.container, name: c.entry.name, id: c.entry.id, invalid: true}
			c.err = errors.New("timeout waiting for stats")
			c.mu.Unlock()
			done()
		case err := <-samples:
			if err != nil {
				c.mu.Lock()
				c.err = err
				c.mu.Unlock()
				if errors.Is(err, io.EOF) {
					return
				}
				continue
			}
			done()
		}
		if !stream {
			return
		}
	}
}

// entryOf computes the table's numbers from a sample as docker's CLI does:
// CPU % from the change of the container's and the host's CPU time since
// the previous sample, memory without the inactive page cache.
func entryOf(v *container.StatsResponse) statsEntry {
	e := statsEntry{name: v.Name, id: v.ID}
	cpuDelta := float64(v.CPUStats.CPUUsage.TotalUsage) - float64(v.PreCPUStats.CPUUsage.TotalUsage)
	sysDelta := float64(v.CPUStats.SystemUsage) - float64(v.PreCPUStats.SystemUsage)
	online := float64(v.CPUStats.OnlineCPUs)
	if online == 0 {
		online = float64(len(v.CPUStats.CPUUsage.PercpuUsage))
	}
	if sysDelta > 0 && cpuDelta > 0 {
		e.cpu = cpuDelta / sysDelta * online * 100
	}
	mem := float64(v.MemoryStats.Usage)
	if x, ok := v.MemoryStats.Stats["total_inactive_file"]; ok && x < v.MemoryStats.Usage {
		mem = float64(v.MemoryStats.Usage - x)
	} else if x := v.MemoryStats.Stats["inactive_file"]; x < v.MemoryStats.Usage {
		mem = float64(v.MemoryStats.Usage - x)
	}
	e.mem, e.memLimit = mem, float64(v.MemoryStats.Limit)
	if e.memLimit != 0 {
		e.memPerc = mem / e.memLimit * 100
	}
	for _, b := range v.BlkioStats.IoServiceBytesRecursive {
		if b.Op == "" {
			continue
		}
		switch b.Op[0] {
		case 'r', 'R':
			e.blkR += float64(b.Value)
		case 'w', 'W':
			e.blkW += float64(b.Value)
		}
	}
	for _, n := range v.Networks {
		e.netRx += float64(n.RxBytes)
		e.netTx += float64(n.TxBytes)
	}
	e.pids = v.PidsStats.Current
	return e
}

// statsContext is one line of `hako stats`; its methods are the template
// fields and --format json's keys.
type statsContext struct {
	e     statsEntry
	trunc bool
}

// MarshalJSON is the --format json object.
func (r *statsContext) MarshalJSON() ([]byte, error) { return formatter.MarshalMethods(r) }

func (r *statsContext) Container() string { return r.e.container }

func (r *statsContext) Name() string {
	if n := strings.TrimPrefix(r.e.name, "/"); n != "" {
		return n
	}
	return "--"
}

func (r *statsContext) ID() string {
	if r.trunc {
		return formatter.TruncateID(r.e.id)
	}
	return r.e.id
}

func (r *statsContext) CPUPerc() string {
	if r.e.invalid {
		return "--"
	}
	return strconv.FormatFloat(r.e.cpu, 'f', 2, 64) + "%"
}

func (r *statsContext) MemUsage() string {
	if r.e.invalid {
		return "-- / --"
	}
	return units.BytesSize(r.e.mem) + " / " + units.BytesSize(r.e.memLimit)
}

func (r *statsContext) MemPerc() string {
	if r.e.invalid {
		return "--"
	}
	return strconv.FormatFloat(r.e.memPerc, 'f', 2, 64) + "%"
}

func (r *statsContext) NetIO() string {
	if r.e.invalid {
		return "--"
	}
	return units.HumanSizeWithPrecision(r.e.netRx, 3) + " / " + units.HumanSizeWithPrecision(r.e.netTx, 3)
}

func (r *statsContext) BlockIO() string {
	if r.e.invalid {
		return "--"
	}
	return units.HumanSizeWithPrecision(r.e.blkR, 3) + " / " + units.HumanSizeWithPrecision(r.e.blkW, 3)
}

func (r *statsContext) PIDs() string {
	if r.e.invalid {
		return "--"
	}
	return strconv.FormatUint(r.e.pids, 10)
}
