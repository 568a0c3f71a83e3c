package monitor

import (
	"net"

	"github.com/hako-project/hako/shim/internal/proto"
)

// attach connects a client to the container's streams: output from now on
// until it ends, and the client's input to the container's stdin. Several
// clients may be attached at once; one leaving stops nothing.
func (m *Monitor) attach(conn *net.UnixConn, req *proto.Request) error {
	if req.Exec != "" {
		return invalidf("attach to exec %q: an exec's streams are those given when it started", req.Exec)
	}
	s := m.init.io
	if req.Stdin && !s.hasStdin {
		return invalidf("attach stdin: container %s was created without stdin", m.cfg.ID)
	}
	if err := proto.WriteMsg(conn, &proto.Response{}); err != nil {
		return nil // the client is gone; nothing to answer
	}
	a := &attachment{conn: conn, stdout: req.Stdout, stderr: req.Stderr}
	if !s.add(a) {
		return nil // the output has ended: the client sees EOF at once
	}
	s.serveInput(a, req.Stdin)
	return nil
}
