package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Quantile returns the q-quantile (0..1) of xs by linear interpolation
// between the closest ranks (numpy's default), so the median of an even
// count is the mean of the middle two.
func Quantile(xs []float64, q float64) (float64, error) {
	if len(xs) == 0 {
		return 0, fmt.Errorf("quantile of no samples")
	}
	if q < 0 || q > 1 || math.IsNaN(q) {
		return 0, fmt.Errorf("quantile %v outside 0..1", q)
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	pos := q * float64(len(s)-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	return s[lo] + (s[hi]-s[lo])*(pos-float64(lo)), nil
}

// Summary holds the median and 90th percentile of one metric.
type Summary struct{ Median, P90 float64 }

func summarize(xs []float64) Summary {
	m, err1 := Quantile(xs, 0.5)
	p, err2 := Quantile(xs, 0.9)
	if err1 != nil || err2 != nil {
		return Summary{math.NaN(), math.NaN()}
	}
	return Summary{m, p}
}

// Result is one runtime's samples for one workload.
type Result struct {
	Runtime string
	Samples []Usage
}

// Metrics returns the wall and CPU summaries in milliseconds and peak RSS
// in MiB.
func (r Result) Metrics() (wall, cpu, rss Summary) {
	var w, c, m []float64
	for _, s := range r.Samples {
		w = append(w, float64(s.Wall)/float64(time.Millisecond))
		c = append(c, float64(s.CPU)/float64(time.Millisecond))
		m = append(m, float64(s.MaxRSSKB)/1024)
	}
	return summarize(w), summarize(c), summarize(m)
}

// PrintTable writes the medians and p90s of each runtime and the ratios of
// every runtime's medians to those of the references (crun and runc) that
// took part.
func PrintTable(w io.Writer, title string, results []Result, refs []string) {
	fmt.Fprintf(w, "\n%s\n", title)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "runtime\twall median\tp90\tCPU median\tp90\tpeak RSS median\tp90\t")
	med := map[string][3]float64{}
	for _, r := range results {
		wall, cpu, rss := r.Metrics()
		med[r.Runtime] = [3]float64{wall.Median, cpu.Median, rss.Median}
		fmt.Fprintf(tw, "%s\t%.1f ms\t%.1f ms\t%.1f ms\t%.1f ms\t%.1f MiB\t%.1f MiB\t\n",
			r.Runtime, wall.Median, wall.P90, cpu.Median, cpu.P90, rss.Median, rss.P90)
	}
	tw.Flush()
	var lines []string
	for _, ref := range refs {
		rm, ok := med[ref]
		if !ok {
			continue
		}
		for _, r := range results {
			if r.Runtime == ref {
				continue
			}
			m := med[r.Runtime]
			lines = append(lines, fmt.Sprintf("%s/%s wall %s  cpu %s  rss %s",
				r.Runtime, ref, ratio(m[0], rm[0]), ratio(m[1], rm[1]), ratio(m[2], rm[2])))
		}
	}
	if len(lines) > 0 {
		fmt.Fprintln(w, "ratios of medians:")
		for _, l := range lines {
			fmt.Fprintln(w, "  "+l)
		}
	}
}

func ratio(a, b float64) string {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return "n/a"
	}
	return strings.TrimSpace(fmt.Sprintf("%.2fx", a/b))
}
