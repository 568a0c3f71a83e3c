package formatter

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
)

// TruncateID shortens an ID (with or without "sha256:") to docker's 12
// hex digits.
func TruncateID(id string) string {
	if i := strings.IndexByte(id, ':'); i >= 0 {
		id = id[i+1:]
	}
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}

// Ellipsis cuts s to at most n runes, ending in "…" when it cut.
func Ellipsis(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	if n == 1 {
		return string(r[0])
	}
	return string(r[:n-1]) + "…"
}

// Ago is docker's "CREATED" column: "5 seconds ago", "About a minute ago".
func Ago(unix int64, now time.Time) string {
	return units.HumanDuration(now.UTC().Sub(time.Unix(unix, 0))) + " ago"
}

// Size is docker's size column (3 significant digits, decimal units).
func Size(n int64) string {
	return units.HumanSizeWithPrecision(float64(n), 3)
}

// Ports renders a container's ports as `docker ps` does: runs of
// consecutive unpublished (or same-IP published-at-same-number) ports are
// grouped ("80-81/tcp"), published ones shown as "0.0.0.0:8080->80/tcp".
func Ports(ports []container.PortSummary) string {
	ps := append([]container.PortSummary(nil), ports...)
	sort.Slice(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.PrivatePort != b.PrivatePort {
			return a.PrivatePort < b.PrivatePort
		}
		if a.IP != b.IP {
			return a.IP.String() < b.IP.String()
		}
		if a.PublicPort != b.PublicPort {
			return a.PublicPort < b.PublicPort
		}
		return a.Type < b.Type
	})
	type run struct{ first, last uint16 }
	runs := map[string]*run{}
	var order, out, mapped []string
	for _, p := range ps {
		key := p.Type
		if p.IP.IsValid() {
			if p.PublicPort != p.PrivatePort {
				hp := net.JoinHostPort(p.IP.String(), strconv.Itoa(int(p.PublicPort)))
				mapped = append(mapped, fmt.Sprintf("%s->%d/%s", hp, p.PrivatePort, p.Type))
				continue
			}
			key = p.IP.String() + "/" + p.Type
		}
		r := runs[key]
		switch {
		case r == nil:
			runs[key] = &run{p.PrivatePort, p.PrivatePort}
			order = append(order, key)
		case p.PrivatePort == r.last+1:
			r.last = p.PrivatePort
		default:
			out = append(out, portGroup(key, r.first, r.last))
			runs[key] = &run{p.PrivatePort, p.PrivatePort}
		}
	}
	for _, k := range order {
		out = append(out, portGroup(k, runs[k].first, runs[k].last))
	}
	return strings.Join(append(out, mapped...), ", ")
}

func portGroup(key string, first, last uint16) string {
	proto, ip := key, ""
	if i := strings.LastIndexByte(key, '/'); i >= 0 {
		ip, proto = key[:i], key[i+1:]
	}
	g := strconv.Itoa(int(first))
	if first != last {
		g += "-" + strconv.Itoa(int(last))
	}
	if ip != "" {
		g = net.JoinHostPort(ip, g) + "->" + g
	}
	return g + "/" + proto
}
