// Package jsonprogress shows the Engine API's JSON progress stream (pull,
// push, load, import) on the CLI's terminal. Layer status and byte counts
// are drawn by image/progress, the same renderer hakod's own tools use; on
// a non-terminal, byte-count updates are dropped and each status change
// is one line, as docker prints it.
package jsonprogress

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/hako-project/hako/image/progress"
)

// Message is one line of the stream (docker's jsonmessage wire form).
type Message struct {
	Stream         string          `json:"stream,omitempty"`
	Status         string          `json:"status,omitempty"`
	ProgressDetail *Detail         `json:"progressDetail,omitempty"`
	ID             string          `json:"id,omitempty"`
	ErrorDetail    *ErrorDetail    `json:"errorDetail,omitempty"`
	Error          string          `json:"error,omitempty"`
	Aux            json.RawMessage `json:"aux,omitempty"`
}

// Detail is a message's byte counts.
type Detail struct {
	Current int64 `json:"current,omitempty"`
	Total   int64 `json:"total,omitempty"`
}

// ErrorDetail carries a failure that ends the stream.
type ErrorDetail struct {
	Code    int    `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// StreamError is a failure reported inside the stream (after the 200).
type StreamError struct{ Message string }

func (e StreamError) Error() string { return e.Message }

// Display decodes r and draws it on w (tty: whether w is a terminal).
// aux, if non-nil, receives the aux payloads (push digests, load IDs). It
// returns the stream's own error message, if one came.
func Display(r io.Reader, w io.Writer, tty bool, aux func(json.RawMessage)) error {
	term := progress.NewTerminal(w, tty)
	dec := json.NewDecoder(r)
	for {
		var m Message
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("decode progress stream: %w", err)
		}
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			return StreamError{m.ErrorDetail.Message}
		}
		if m.Error != "" {
			return StreamError{m.Error}
		}
		if len(m.Aux) > 0 {
			if aux != nil {
				aux(m.Aux)
			}
			continue
		}
		if m.Stream != "" {
			if _, err := io.WriteString(w, m.Stream); err != nil {
				return err
			}
			continue
		}
		var cur, total int64
		if m.ProgressDetail != nil {
			cur, total = m.ProgressDetail.Current, m.ProgressDetail.Total
		}
		if !tty && (cur > 0 || total > 0) {
			continue
		}
		term.Emit(progress.Event{ID: m.ID, Status: m.Status, Current: cur, Total: total})
	}
}
