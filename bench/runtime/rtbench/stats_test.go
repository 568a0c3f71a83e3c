package main

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"
)

func TestQuantile(t *testing.T) {
	xs := []float64{10, 1, 9, 2, 8, 3, 7, 4, 6, 5} // unsorted on purpose
	for _, c := range []struct{ q, want float64 }{{0.5, 5.5}, {0.9, 9.1}, {0, 1}, {1, 10}} {
		got, err := Quantile(xs, c.q)
		if err != nil || math.Abs(got-c.want) > 1e-9 {
			t.Errorf("Quantile(%v) = %v, %v; want %v", c.q, got, err, c.want)
		}
	}
	if xs[0] != 10 {
		t.Error("Quantile sorted the caller's slice")
	}
	if got, err := Quantile([]float64{42}, 0.9); err != nil || got != 42 {
		t.Errorf("single sample: %v, %v", got, err)
	}
	for _, bad := range []struct {
		xs []float64
		q  float64
	}{{nil, 0.5}, {xs, -0.1}, {xs, 1.5}, {xs, math.NaN()}} {
		if _, err := Quantile(bad.xs, bad.q); err == nil {
			t.Errorf("Quantile(%v, %v) gave no error", bad.xs, bad.q)
		}
	}
}

func samples(wallMS, cpuMS float64, rssMiB int64, n int) []Usage {
	var out []Usage
	for i := 0; i < n; i++ {
		out = append(out, Usage{
			Wall:     time.Duration(wallMS * float64(time.Millisecond)),
			CPU:      time.Duration(cpuMS * float64(time.Millisecond)),
			MaxRSSKB: rssMiB * 1024,
		})
	}
	return out
}

func TestPrintTableRatios(t *testing.T) {
	results := []Result{
		{"hako-runtime", samples(18, 9, 4, 5)},
		{"runc", samples(30, 30, 10, 5)},
		{"crun", samples(15, 10, 5, 5)},
	}
	var b bytes.Buffer
	PrintTable(&b, "run", results, []string{"crun", "runc"})
	out := b.String()
	for _, want := range []string{
		"hako-runtime/crun wall 1.20x  cpu 0.90x  rss 0.80x",
		"runc/crun wall 2.00x  cpu 3.00x  rss 2.00x",
		"hako-runtime/runc wall 0.60x  cpu 0.30x  rss 0.40x",
		"crun/runc wall 0.50x  cpu 0.33x  rss 0.50x",
		"30.0 ms", "10.0 MiB",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	for _, bad := range []string{"crun/crun", "runc/runc"} {
		if strings.Contains(out, bad) {
			t.Errorf("table has self-ratio %q", bad)
		}
	}
}

func TestPrintTableWithoutReferences(t *testing.T) {
	var b bytes.Buffer
	PrintTable(&b, "run", []Result{{"a", samples(1, 1, 1, 1)}, {"b", samples(2, 2, 2, 1)}}, []string{"crun", "runc"})
	if strings.Contains(b.String(), "ratios") {
		t.Errorf("ratios printed without crun or runc:\n%s", b.String())
	}
}

func TestRatioOfZero(t *testing.T) {
	if got := ratio(1, 0); got != "n/a" {
		t.Errorf("ratio(1, 0) = %q", got)
	}
}
