package cgroups

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// The OCI resources are written in cgroup v1 units; these functions give
// their cgroup v2 equivalents, the same numbers runc and crun write, so a
// container gets the same share whichever runtime starts it.

// SharesToWeight maps cpu.shares [2, 262144] onto cpu.weight [1, 10000]
// with the quadratic fit runc ≥1.3 and crun ≥1.23 use: it sends the v1
// default 1024 to the v2 default 100 (the older linear formula sent it to
// 39, starving containers next to v2-native services). 0 means unset.
func SharesToWeight(shares uint64) uint64 {
	switch {
	case shares == 0:
		return 0
	case shares <= 2:
		return 1
	case shares >= 262144:
		return 10000
	}
	l := math.Log2(float64(shares))
	exp := (l*l+125*l)/612.0 - 7.0/34.0
	return uint64(math.Ceil(math.Pow(10, exp)))
}

// BlkioWeightToIOWeight maps blkio.weight [10, 1000] linearly onto io.weight
// [1, 10000]. 0 means unset. io.bfq.weight takes the v1 value unchanged.
func BlkioWeightToIOWeight(w uint16) uint64 {
	if w == 0 {
		return 0
	}
	return 1 + (uint64(w)-10)*9999/990
}

// SwapToV2 turns the OCI memory.swap (memory+swap total, the v1
// memsw.limit_in_bytes meaning) into memory.swap.max (swap alone).
// It returns -1 for "max" and 0 for "leave unset"; swapSet tells a real 0
// (swap == limit: no swap at all) apart from unset.
func SwapToV2(swap, limit int64) (v int64, swapSet bool, err error) {
	switch {
	case limit == -1 && swap == 0:
		// Unlimited memory and no explicit swap: unlimited swap too, as
		// v1 behaves.
		return -1, true, nil
	case swap == -1:
		return -1, true, nil
	case swap == 0:
		return 0, false, nil
	case limit == -1:
		return swap, true, nil
	case limit <= 0:
		return 0, false, errors.New("set without a memory limit")
	case swap < limit:
		return 0, false, fmt.Errorf("%d is less than the memory limit %d", swap, limit)
	}
	return swap - limit, true, nil
}

// parseList parses a cpuset list such as "0-3,5,7-8" into sorted,
// de-duplicated numbers.
func parseList(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var out []int
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseUint(lo, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("%q: %q is not a number or range", s, part)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 16); err != nil || b < a {
				return nil, fmt.Errorf("%q: %q is not a valid range", s, part)
			}
		}
		for n := a; n <= b; n++ {
			out = append(out, int(n))
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// formatLimit writes an OCI limit for a v2 ".max"-style file: -1 is "max".
func formatLimit(v int64) string {
	if v < 0 {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}
