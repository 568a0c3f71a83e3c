package trace

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Render writes spans as an indented tree, children under their parent in
// start order, with each step's offset from the first span and its duration:
//
//	+0.000ms   12.345ms  hako-runtime.run  id=demo
//	+0.120ms    0.410ms  ├─ runtime.spec.load  bundle=/tmp/b
//
// Spans whose parent is not among spans become roots, so a partial trace
// (one process's spans) still renders.
func Render(w io.Writer, spans []SpanData) {
	if len(spans) == 0 {
		fmt.Fprintln(w, "(no spans recorded)")
		return
	}
	byID := make(map[string]bool, len(spans))
	for _, s := range spans {
		byID[s.SpanID] = true
	}
	children := make(map[string][]SpanData)
	var roots []SpanData
	first := spans[0].Start
	for _, s := range spans {
		if s.Start < first {
			first = s.Start
		}
		if s.ParentID != "" && byID[s.ParentID] && s.ParentID != s.SpanID {
			children[s.ParentID] = append(children[s.ParentID], s)
		} else {
			roots = append(roots, s)
		}
	}
	byStart := func(l []SpanData) {
		sort.SliceStable(l, func(i, j int) bool { return l[i].Start < l[j].Start })
	}
	byStart(roots)
	for k := range children {
		byStart(children[k])
	}
	fmt.Fprintf(w, "trace %s\n", spans[0].TraceID)
	var walk func(s SpanData, prefix, branch string, depth int)
	walk = func(s SpanData, prefix, branch string, depth int) {
		if depth > 64 { // a cycle in hand-edited input; stop rather than overflow
			return
		}
		line := fmt.Sprintf("%9s %10s  %s%s", "+"+ms(time.Duration(s.Start-first)), ms(s.Duration()), prefix+branch, s.Name)
		if a := attrString(s.Attrs); a != "" {
			line += "  " + a
		}
		if s.Error != "" {
			line += "  ERROR: " + s.Error
		}
		fmt.Fprintln(w, line)
		kids := children[s.SpanID]
		next := prefix
		switch branch {
		case "├─ ":
			next += "│  "
		case "└─ ":
			next += "   "
		}
		for i, k := range kids {
			b := "├─ "
			if i == len(kids)-1 {
				b = "└─ "
			}
			walk(k, next, b, depth+1)
		}
	}
	for _, r := range roots {
		walk(r, "", "", 0)
	}
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond))
}

func attrString(a map[string]string) string {
	if len(a) == 0 {
		return ""
	}
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		v := a[k]
		if strings.ContainsAny(v, " \t") {
			v = fmt.Sprintf("%q", v)
		}
		b.WriteString(k + "=" + v)
	}
	return b.String()
}
