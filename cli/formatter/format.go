package formatter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"
	"text/template"
)

// Format is a --format value: "table", "table TEMPLATE", "json", or a
// bare template.
type Format string

// Well-known format values.
const (
	Table = "table"
	JSON  = "json"
	Raw   = "raw"
)

// IsTable reports whether rows go in aligned columns under a header.
func (f Format) IsTable() bool { return strings.HasPrefix(string(f), Table) }

// Contains reports whether the format mentions sub (e.g. "{{.Size}}").
func (f Format) Contains(sub string) bool { return strings.Contains(string(f), sub) }

// Template returns the Go template text: "json" is {{json .}}, the
// "table" prefix is dropped, surrounding spaces are trimmed and the
// escapes \t and \n become a tab and a newline.
func (f Format) Template() string {
	s := string(f)
	switch s {
	case Table:
		return ""
	case JSON:
		return "{{json .}}"
	}
	s = strings.TrimPrefix(s, Table)
	s = strings.Trim(s, " ")
	return strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(s)
}

// ExecError is a template that parsed but failed on a row (a field the
// row lacks). docker words it differently per command, so callers do.
type ExecError struct{ Err error }

func (e ExecError) Error() string { return e.Err.Error() }

func (e ExecError) Unwrap() error { return e.Err }

// WriteList is Write as docker's list commands (images, network ls,
// volume ls, stats, system df) report a template that fails on a row:
// "template parsing error: ..." (ps says it differently).
func WriteList(w io.Writer, format Format, header map[string]string, rows []any) error {
	err := Write(w, format, header, rows)
	var ee ExecError
	if errors.As(err, &ee) {
		return fmt.Errorf("template parsing error: %w", ee.Err)
	}
	return err
}

// Write renders rows with format. header maps a row's field names to the
// column titles shown by table formats.
func Write(w io.Writer, format Format, header map[string]string, rows []any) error {
	tmpl, err := ParseTemplate(format.Template())
	if err != nil {
		return fmt.Errorf("template parsing error: %w", err)
	}
	var body bytes.Buffer
	for _, r := range rows {
		if err := tmpl.Execute(&body, r); err != nil {
			return ExecError{err}
		}
		body.WriteByte('\n')
	}
	if !format.IsTable() {
		_, err := body.WriteTo(w)
		return err
	}
	tw := tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
	htmpl, err := template.New("").Funcs(headerFuncs).Parse(format.Template())
	if err != nil {
		return fmt.Errorf("template parsing error: %w", err)
	}
	// A header field the template names but the row type lacks fails in
	// the rows already; missing keys in the header map print as docker does.
	_ = htmpl.Execute(tw, header)
	tw.Write([]byte{'\n'})
	body.WriteTo(tw)
	return tw.Flush()
}

// MarshalMethods encodes v (a pointer to a row type) as a JSON object of
// its exported methods that take no arguments and return one value, keyed
// by method name: `--format json` shows the same fields a template can
// use. Like docker, values are HTML-escaped ("\u003cnone\u003e").
func MarshalMethods(v any) ([]byte, error) {
	rv := reflect.ValueOf(v)
	rt := rv.Type()
	out := map[string]any{}
	for i := 0; i < rt.NumMethod(); i++ {
		m := rt.Method(i)
		if m.Name == "MarshalJSON" || m.Type.NumIn() != 1 || m.Type.NumOut() != 1 {
			continue
		}
		out[m.Name] = rv.Method(i).Call(nil)[0].Interface()
	}
	return json.Marshal(out)
}
