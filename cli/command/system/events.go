package system

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/hako-project/hako/cli/command"
	"github.com/hako-project/hako/cli/formatter"
	"github.com/hako-project/hako/cli/runopts"
	"github.com/moby/moby/api/types/events"
	"github.com/spf13/cobra"
)

// eventMessage is an event as docker 28's CLI decodes it: the API's
// events.Message with the deprecated status, id and from that dockerd
// still sends for container and image events (the moby client's type
// has dropped them; docker's `{{json .}}` and `{{.Status}}` show them).
type eventMessage struct {
	Status string `json:"status,omitempty"`
	ID     string `json:"id,omitempty"`
	From   string `json:"from,omitempty"`

	Type   events.Type
	Action events.Action
	Actor  events.Actor
	Scope  string `json:"scope,omitempty"`

	Time     int64 `json:"time,omitempty"`
	TimeNano int64 `json:"timeNano,omitempty"`
}

// NewEventsCommand is `hako events`: the daemon's events, since and
// until a time, filtered, one line each, until the daemon ends the
// stream (--until) or the user interrupts.
func NewEventsCommand(cli *command.Cli) *cobra.Command {
	var since, until, format string
	filters := runopts.NewList(validateFilter)
	cmd := &cobra.Command{
		Use:   "events [OPTIONS]",
		Short: "Get real time events from the server",
		Args:  command.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tmpl, err := eventsTemplate(format)
			if err != nil {
				return command.StatusError{StatusCode: 64, Status: "Error parsing format: " + err.Error()}
			}
			query := url.Values{}
			now := time.Now()
			for _, kv := range [][2]string{{"since", since}, {"until", until}} {
				if kv[1] == "" {
					continue
				}
				ts, err := timestamp(kv[1], now)
				if err != nil {
					return err
				}
				query.Set(kv[0], ts)
			}
			f := map[string]map[string]bool{}
			for _, v := range filters.Values() {
				if v == "" {
					continue // docker ignores an empty --filter
				}
				k, val, _ := strings.Cut(v, "=")
				k, val = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(val)
				if f[k] == nil {
					f[k] = map[string]bool{}
				}
				f[k][val] = true
			}
			if len(f) > 0 {
				b, err := json.Marshal(f)
				if err != nil {
					return err
				}
				query.Set("filters", string(b))
			}
			api, err := cli.Client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			body, err := api.GetStream(ctx, "/events", query)
			if err != nil {
				return interrupted(ctx, err)
			}
			defer body.Close()
			dec := json.NewDecoder(body)
			for {
				var ev eventMessage
				if err := dec.Decode(&ev); err != nil {
					if errors.Is(err, io.EOF) {
						return nil
					}
					return interrupted(ctx, err)
				}
				if err := printEvent(cli.Out, ev, tmpl); err != nil {
					return err
				}
			}
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&since, "since", "", "Show all events created since timestamp")
	fs.StringVar(&until, "until", "", "Stream events until this timestamp")
	fs.VarP(filters, "filter", "f", "Filter output based on conditions provided")
	fs.StringVar(&format, "format", "", "Format output using a custom template:\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template.\nRefer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates")
	return cmd
}

// interrupted is err, or when the user interrupted the command (the
// context is cancelled with a command.StatusError as its cause), that
// status: docker exits 130 on ^C, silently.
func interrupted(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		var se command.StatusError
		if cause := context.Cause(ctx); errors.As(cause, &se) {
			return se
		}
		return ctx.Err()
	}
	return err
}

// eventsTemplate parses --format ("" is docker's line format, nil) and,
// as docker does, tries it on an empty event so that a field no event has
// fails now. docker tries it on the API's type, which names itself in the
// error ("in type *events.Message"): so does this, and only a template
// that fails on both types is refused.
func eventsTemplate(format string) (*template.Template, error) {
	switch format {
	case "":
		return nil, nil
	case formatter.JSON:
		format = "{{json .}}"
	}
	tmpl, err := formatter.ParseTemplate(format)
	if err != nil {
		return nil, err
	}
	if err := tmpl.Execute(io.Discard, &eventMessage{}); err != nil {
		if err := tmpl.Execute(io.Discard, &events.Message{}); err != nil {
			return nil, err
		}
	}
	return tmpl, nil
}

// printEvent writes ev with tmpl, or else as docker's line:
// "TIME TYPE ACTION ID (KEY=VALUE, ...)", attributes sorted by key.
func printEvent(out io.Writer, ev eventMessage, tmpl *template.Template) error {
	if tmpl != nil {
		if err := tmpl.Execute(out, ev); err != nil {
			return err
		}
		_, err := io.WriteString(out, "\n")
		return err
	}
	var b strings.Builder
	const rfc3339NanoFixed = "2006-01-02T15:04:05.000000000Z07:00"
	if ev.TimeNano != 0 {
		b.WriteString(time.Unix(0, ev.TimeNano).Format(rfc3339NanoFixed) + " ")
	} else if ev.Time != 0 {
		b.WriteString(time.Unix(ev.Time, 0).Format(rfc3339NanoFixed) + " ")
	}
	fmt.Fprintf(&b, "%s %s %s", ev.Type, ev.Action, ev.Actor.ID)
	if len(ev.Actor.Attributes) > 0 {
		keys := make([]string, 0, len(ev.Actor.Attributes))
		for k := range ev.Actor.Attributes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			keys[i] = k + "=" + ev.Actor.Attributes[k]
		}
		b.WriteString(" (" + strings.Join(keys, ", ") + ")")
	}
	b.WriteString("\n")
	_, err := io.WriteString(out, b.String())
	return err
}

// validateFilter checks a --filter value is NAME=VALUE (or empty), as
// docker's filter option does.
func validateFilter(s string) (string, error) {
	if s != "" && !strings.Contains(s, "=") {
		return "", errors.New("bad format of filter (expected name=value)")
	}
	return s, nil
}

// timestamp is the moby client's reading of --since and --until (the
// client keeps it internal): a duration before now, an RFC 3339 date or
// time (local when it has no zone) or Unix seconds, as the API's
// "SECONDS[.NANOSECONDS]".
func timestamp(value string, now time.Time) (string, error) {
	if d, err := time.ParseDuration(value); value != "0" && err == nil {
		return strconv.FormatInt(now.Add(-d).Unix(), 10), nil
	}
	local := !strings.ContainsAny(value, "zZ+") && strings.Count(value, "-") != 3
	var layout string
	switch {
	case strings.Contains(value, "."):
		layout = time.RFC3339Nano
		if local {
			layout = "2006-01-02T15:04:05.999999999"
		}
	case strings.Contains(value, "T"):
		colons := strings.Count(value, ":")
		if !local && !strings.ContainsAny(value, "zZ") && colons > 0 {
			colons-- // the zone offset's
		}
		layouts := []string{"2006-01-02T15Z07:00", "2006-01-02T15:04Z07:00", time.RFC3339}
		if local {
			layouts = []string{"2006-01-02T15", "2006-01-02T15:04", "2006-01-02T15:04:05"}
		}
		layout = layouts[min(colons, 2)]
	case local:
		layout = "2006-01-02"
	default:
		layout = "2006-01-02Z07:00"
	}
	var t time.Time
	var err error
	if local {
		t, err = time.ParseInLocation(layout, value, time.FixedZone(now.Zone()))
	} else {
		t, err = time.Parse(layout, value)
	}
	if err != nil {
		if strings.Contains(value, "-") {
			return "", err
		}
		if !unixTimestamp(value) {
			return "", fmt.Errorf("failed to parse value as time or duration: %q", value)
		}
		return value, nil
	}
	return fmt.Sprintf("%d.%09d", t.Unix(), int64(t.Nanosecond())), nil
}

// unixTimestamp reports whether s is SECONDS[.NANOSECONDS].
func unixTimestamp(s string) bool {
	sec, nsec, frac := strings.Cut(s, ".")
	if _, err := strconv.ParseInt(sec, 10, 64); err != nil {
		return false
	}
	if frac {
		if _, err := strconv.ParseInt(nsec, 10, 64); err != nil {
			return false
		}
	}
	return true
}
