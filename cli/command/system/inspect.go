// Package system holds hako's daemon-wide commands: version, info,
// events and inspect (with its typed forms, container inspect and image
// inspect).
package system

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/hako-project/hako/cli/apiclient"
	"github.com/hako-project/hako/cli/command"
	"github.com/hako-project/hako/cli/formatter"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// allTypes are the object types docker's inspect names in its error.
var allTypes = []string{"config", "container", "image", "network", "node", "plugin", "secret", "service", "task", "volume"}

// inspector fetches one object of a type: the typed value (for
// templates) and the daemon's raw JSON (printed as is).
type inspector func(ctx context.Context, api *apiclient.Client, ref string, size bool) (any, []byte, error)

var inspectors = []struct {
	typ string
	get inspector
}{
	{"container", func(ctx context.Context, api *apiclient.Client, ref string, size bool) (any, []byte, error) {
		r, err := api.ContainerInspect(ctx, ref, client.ContainerInspectOptions{Size: size})
		return r.Container, r.Raw, err
	}},
	{"image", func(ctx context.Context, api *apiclient.Client, ref string, _ bool) (any, []byte, error) {
		var raw bytes.Buffer
		r, err := api.ImageInspect(ctx, ref, client.ImageInspectWithRawResponse(&raw))
		return r.InspectResponse, raw.Bytes(), err
	}},
	{"network", func(ctx context.Context, api *apiclient.Client, ref string, _ bool) (any, []byte, error) {
		r, err := api.NetworkInspect(ctx, ref, client.NetworkInspectOptions{})
		return r.Network, r.Raw, err
	}},
	{"volume", func(ctx context.Context, api *apiclient.Client, ref string, _ bool) (any, []byte, error) {
		r, err := api.VolumeInspect(ctx, ref, client.VolumeInspectOptions{})
		return r.Volume, r.Raw, err
	}},
}

// NewInspectCommand is `hako inspect`.
func NewInspectCommand(cli *command.Cli) *cobra.Command {
	var format, typ string
	var size bool
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NAME|ID [NAME|ID...]",
		Short: "Return low-level information on Docker objects",
		Args:  command.MinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if typ != "" && !contains(allTypes, typ) {
				return fmt.Errorf("unknown type: %q: must be one of %s", typ, quoteJoin(allTypes))
			}
			api, err := cli.Client()
			if err != nil {
				return err
			}
			get := func(ref string) (any, []byte, error) {
				for _, in := range inspectors {
					if typ != "" && in.typ != typ {
						continue
					}
					v, raw, err := in.get(cmd.Context(), api, ref, size)
					if err != nil {
						if typ == "" && cerrdefs.IsNotFound(err) {
							continue
						}
						return nil, nil, err
					}
					if size && in.typ != "container" {
						fmt.Fprintln(cli.Err, "WARNING: --size ignored for", in.typ)
					}
					return v, raw, nil
				}
				if typ != "" && typ != "container" && typ != "image" && typ != "network" && typ != "volume" {
					return nil, nil, fmt.Errorf("inspecting %s objects is not supported by hako", typ)
				}
				return nil, nil, noSuchObject(ref)
			}
			return Inspect(cli.Out, args, format, get)
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&format, "format", "f", "", "Format output using a custom template:\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template.")
	fs.StringVar(&typ, "type", "", "Only inspect objects of the given type")
	fs.BoolVarP(&size, "size", "s", false, "Display total file sizes if the type is container")
	return cmd
}

// typedInspect is `hako container inspect` or `hako image inspect`:
// inspect for one type, with that type's inspector. The daemon's errors
// are its own ("No such container: x"), not inspect's "No such object".
func typedInspect(cli *command.Cli, typ string, cmd *cobra.Command) *cobra.Command {
	var format string
	var size bool
	var get inspector
	for _, in := range inspectors {
		if in.typ == typ {
			get = in.get
		}
	}
	cmd.Args = command.MinArgs(1)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		api, err := cli.Client()
		if err != nil {
			return err
		}
		return Inspect(cli.Out, args, format, func(ref string) (any, []byte, error) {
			return get(cmd.Context(), api, ref, size)
		})
	}
	fs := cmd.Flags()
	fs.StringVarP(&format, "format", "f", "", "Format output using a custom template:\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template.\nRefer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates")
	if typ == "container" {
		fs.BoolVarP(&size, "size", "s", false, "Display total file sizes")
	}
	return cmd
}

// noSuchObject is docker's error for a name no inspector knows.
type noSuchObject string

func (n noSuchObject) Error() string { return "Error: No such object: " + string(n) }

func contains(l []string, s string) bool {
	for _, v := range l {
		if v == s {
			return true
		}
	}
	return false
}

func quoteJoin(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// Inspect prints the objects refs resolve to: an indented JSON array of
// the daemon's raw replies (no format), compact JSON ("json"), or a
// template per object, which is run on the typed value and, when that
// fails (a field the client's types lack), on the raw JSON. Failures are
// reported after the output, one per line, with exit status 1.
func Inspect(out io.Writer, refs []string, format string, get func(string) (any, []byte, error)) error {
	var errs []string
	var raws [][]byte
	var buf bytes.Buffer
	var tmplExec func(typed any, raw []byte) error
	if format != "" && format != "json" {
		tmpl, err := formatter.ParseTemplate(format)
		if err != nil {
			return command.StatusError{StatusCode: 64, Status: "template parsing error: " + err.Error()}
		}
		tmplExec = func(typed any, raw []byte) error {
			var b bytes.Buffer
			if err := tmpl.Execute(&b, typed); err != nil {
				var m any
				dec := json.NewDecoder(bytes.NewReader(raw))
				dec.UseNumber()
				if err := dec.Decode(&m); err != nil {
					return fmt.Errorf("unable to read inspect data: %w", err)
				}
				b.Reset()
				if err := tmpl.Option("missingkey=error").Execute(&b, m); err != nil {
					return fmt.Errorf("template parsing error: %w", err)
				}
			}
			buf.Write(b.Bytes())
			buf.WriteByte('\n')
			return nil
		}
	}
	for _, ref := range refs {
		typed, raw, err := get(ref)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if tmplExec != nil {
			if err := tmplExec(typed, raw); err != nil {
				errs = append(errs, err.Error())
			}
			continue
		}
		raws = append(raws, raw)
	}
	if tmplExec != nil {
		if buf.Len() == 0 {
			buf.WriteByte('\n')
		}
		out.Write(buf.Bytes())
	} else if err := writeJSONArray(out, raws, format == "json"); err != nil {
		return err
	}
	if len(errs) > 0 {
		return command.StatusError{StatusCode: 1, Status: strings.Join(errs, "\n")}
	}
	return nil
}

func writeJSONArray(out io.Writer, raws [][]byte, compact bool) error {
	if len(raws) == 0 {
		_, err := io.WriteString(out, "[]\n")
		return err
	}
	var all bytes.Buffer
	all.WriteByte('[')
	for i, r := range raws {
		if i > 0 {
			all.WriteByte(',')
		}
		all.Write(bytes.TrimSpace(r))
	}
	all.WriteByte(']')
	var b bytes.Buffer
	var err error
	if compact {
		err = json.Compact(&b, all.Bytes())
	} else {
		err = json.Indent(&b, all.Bytes(), "", "    ")
	}
	if err != nil {
		return errors.Join(errors.New("unable to format inspect data"), err)
	}
	b.WriteByte('\n')
	_, err = b.WriteTo(out)
	return err
}
