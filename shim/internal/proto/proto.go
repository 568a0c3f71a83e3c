// Package proto is the wire protocol between hakod's shim client and the
// hako-shim monitor, and the layout of a shim's state directory.
//
// Every operation is one connection to the shim's unix socket: the client
// writes one request message, the shim answers with one response message.
// A message is a 4-byte big-endian length followed by that many bytes of
// JSON. After a successful response to an attach or exec request the
// connection carries the process's streams in frames of docker's stdcopy
// shape: 1 byte stream (0 stdin, 1 stdout, 2 stderr), 3 zero bytes, a 4-byte
// big-endian length and the payload. The client sends stdin frames; an empty
// stdin frame means its stdin has ended, and closing the connection means it
// detached. The shim sends stdout and stderr frames and closes the
// connection when the output has ended.
//
// A connection per operation keeps both sides free of multiplexing and
// request IDs, lets a blocking Wait or an attach stream live on its own, and
// makes the client safe for concurrent use without locks; a unix connect
// costs tens of microseconds. JSON over a length prefix needs nothing beyond
// the standard library, which keeps the shim, of which there is one per
// container, small.
package proto

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hako-project/hako/runtime/cgroups"
)

// Files in a shim's state directory.
const (
	// ConfigFile is the shim's Config, written by the client before the
	// shim starts and read again by Connect and Cleanup.
	ConfigFile = "config.json"
	// SocketFile is the control socket.
	SocketFile = "shim.sock"
	// PidFile holds the shim's own pid.
	PidFile = "shim.pid"
	// ExitFile holds the container init's Exit once it has exited, so the
	// status survives hakod being down when it happened.
	ExitFile = "exit.json"
	// LogFile is the shim's own log (slog text).
	LogFile = "shim.log"
	// InitPidFile is the --pid-file given to the runtime's create.
	InitPidFile = "init.pid"
)

// MaxSocketPath is the longest socket path a sockaddr_un holds.
const MaxSocketPath = 107

// Operations.
const (
	OpState     = "state"
	OpStart     = "start"
	OpAttach    = "attach"
	OpResize    = "resize"
	OpKill      = "kill"
	OpWait      = "wait"
	OpPause     = "pause"
	OpResume    = "resume"
	OpUpdate    = "update"
	OpStats     = "stats"
	OpExec      = "exec"
	OpReopenLog = "reopen-log"
	OpDelete    = "delete"
)

// Error classes a response can carry, so the client can map them to
// sentinel errors (and hakod to HTTP and gRPC codes) without parsing text.
const (
	CodeNotFound = "not_found" // no such exec
	CodeConflict = "conflict"  // wrong state for the operation
	CodeInvalid  = "invalid"   // a bad argument
	CodeRuntime  = "runtime"   // the OCI runtime failed; Error holds its message
)

// Stream numbers in frames.
const (
	Stdin  byte = 0
	Stdout byte = 1
	Stderr byte = 2
)

// Config is a shim's configuration, in its state directory as ConfigFile.
type Config struct {
	ID          string    `json:"id"`
	Bundle      string    `json:"bundle"`
	Runtime     string    `json:"runtime"` // absolute path
	RuntimeRoot string    `json:"runtime_root,omitempty"`
	RuntimeArgs []string  `json:"runtime_args,omitempty"`
	Env         []string  `json:"env,omitempty"`
	Terminal    bool      `json:"terminal,omitempty"`
	Stdin       bool      `json:"stdin,omitempty"`
	StdinOnce   bool      `json:"stdin_once,omitempty"`
	Log         LogConfig `json:"log"`
	Traceparent string    `json:"traceparent,omitempty"`
	TraceFile   string    `json:"trace_file,omitempty"`
	// Run: create and start with one runtime command (see shim.Config).
	Run bool `json:"run,omitempty"`
}

// LogConfig says where and how the container's output is logged.
type LogConfig struct {
	Path     string `json:"path,omitempty"`
	Format   string `json:"format,omitempty"`
	MaxSize  int64  `json:"max_size,omitempty"`
	MaxFiles int    `json:"max_files,omitempty"`
	// Attrs go into every json-file entry.
	Attrs map[string]string `json:"attrs,omitempty"`
}

// Exit is how a process ended.
type Exit struct {
	Pid       int       `json:"pid"`
	Code      int       `json:"code"`             // exit code, or 128+signal
	Signal    int       `json:"signal,omitempty"` // the signal that killed it
	At        time.Time `json:"exited_at"`
	OOMKilled bool      `json:"oom_killed,omitempty"`
}

// Assign is what the client sends a spare shim (`hako-shim --spare`) on
// its sync socket to make it the monitor of the container whose state
// directory (holding ConfigFile) is StateDir; from there on the shim does
// what `hako-shim --state-dir StateDir` does. A spare that reads
// end-of-file instead exits: it is no longer needed.
type Assign struct {
	StateDir string `json:"state_dir"`
}

// Report is what a starting shim tells the client on its sync socket: the
// outcome of the runtime's create.
type Report struct {
	ShimPid int    `json:"shim_pid"`
	Pid     int    `json:"pid,omitempty"`
	Error   string `json:"error,omitempty"`
	Code    string `json:"code,omitempty"`
}

// Request is one operation.
type Request struct {
	Op string `json:"op"`
	// Exec names the exec process the operation is for ("" for the init).
	Exec      string                `json:"exec,omitempty"`
	Signal    int                   `json:"signal,omitempty"`
	All       bool                  `json:"all,omitempty"`
	Force     bool                  `json:"force,omitempty"`
	Height    uint16                `json:"height,omitempty"`
	Width     uint16                `json:"width,omitempty"`
	Stdin     bool                  `json:"stdin,omitempty"`
	Stdout    bool                  `json:"stdout,omitempty"`
	Stderr    bool                  `json:"stderr,omitempty"`
	Process   *specs.Process        `json:"process,omitempty"`
	Resources *specs.LinuxResources `json:"resources,omitempty"`
	// Traceparent and TraceFile put the shim's spans for this operation
	// (and the runtime's) into the caller's trace.
	Traceparent string `json:"traceparent,omitempty"`
	TraceFile   string `json:"trace_file,omitempty"`
}

// Response answers a Request.
type Response struct {
	Error  string         `json:"error,omitempty"`
	Code   string         `json:"code,omitempty"`
	Pid    int            `json:"pid,omitempty"`
	Status string         `json:"status,omitempty"`
	Exit   *Exit          `json:"exit,omitempty"`
	Stats  *cgroups.Stats `json:"stats,omitempty"`
}

// The first time encoding/json meets a struct type, for decoding as for
// encoding, it builds and caches for good an encoder for the type of every
// field, however deep. For Request that means specs.Process and
// specs.LinuxResources, for Response cgroups.Stats: about 150 KiB that the
// shim, which exists once per container and mostly sleeps, would keep
// although only exec, update and stats use them. UnmarshalJSON and
// MarshalJSON below leave those fields to a second pass that runs only when
// they are present. The JSON is the same.

// UnmarshalJSON decodes a request; Process and Resources are decoded only
// when the message has them.
func (r *Request) UnmarshalJSON(b []byte) error {
	type plain Request // Request's fields without this method
	w := struct {
		*plain
		// These hide plain's fields of the same names.
		Process   json.RawMessage `json:"process"`
		Resources json.RawMessage `json:"resources"`
	}{plain: (*plain)(r)}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	if len(w.Process) > 0 {
		if err := json.Unmarshal(w.Process, &r.Process); err != nil {
			return err
		}
	}
	if len(w.Resources) > 0 {
		if err := json.Unmarshal(w.Resources, &r.Resources); err != nil {
			return err
		}
	}
	return nil
}

// MarshalJSON encodes a response; Stats is encoded only when set.
func (r Response) MarshalJSON() ([]byte, error) {
	type plain Response // Response's fields without this method
	w := struct {
		*plain
		Stats json.RawMessage `json:"stats,omitempty"` // hides plain's
	}{plain: (*plain)(&r)}
	if r.Stats != nil {
		b, err := json.Marshal(r.Stats)
		if err != nil {
			return nil, err
		}
		w.Stats = b
	}
	return json.Marshal(w)
}

// maxMessage bounds a message: a process spec with a large environment
// fits many times over, and a corrupt length cannot make us allocate
// gigabytes.
const maxMessage = 4 << 20

// WriteMsg writes v as one message.
func WriteMsg(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode message: %w", err)
	}
	buf := make([]byte, 4, 4+len(b))
	binary.BigEndian.PutUint32(buf, uint32(len(b)))
	_, err = w.Write(append(buf, b...))
	return err
}

// ReadMsg reads one message into v.
func ReadMsg(r io.Reader, v any) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxMessage {
		return fmt.Errorf("message of %d bytes: larger than %d", n, maxMessage)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return fmt.Errorf("read message: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode message: %w", err)
	}
	return nil
}

// FrameHeader is the 8-byte header of a stream frame.
type FrameHeader [8]byte

// MakeHeader returns the header of a frame of n bytes on stream.
func MakeHeader(stream byte, n int) FrameHeader {
	var h FrameHeader
	h[0] = stream
	binary.BigEndian.PutUint32(h[4:], uint32(n))
	return h
}

// Stream is the frame's stream number.
func (h FrameHeader) Stream() byte { return h[0] }

// Len is the frame's payload length.
func (h FrameHeader) Len() int { return int(binary.BigEndian.Uint32(h[4:])) }

// MaxFrame bounds a frame's payload; writers split larger data.
const MaxFrame = 32 << 10

// ReadHeader reads one frame header and checks it.
func ReadHeader(r io.Reader) (FrameHeader, error) {
	var h FrameHeader
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return h, err
	}
	if h.Stream() > Stderr || h[1] != 0 || h[2] != 0 || h[3] != 0 {
		return h, fmt.Errorf("bad frame header % x", h[:])
	}
	if h.Len() > MaxFrame {
		return h, fmt.Errorf("frame of %d bytes: larger than %d", h.Len(), MaxFrame)
	}
	return h, nil
}
