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
	// Added before the answer, which tells the client it is attached (it
	// may start the container next): output copied from then on reaches
	// it. Holding a.mu keeps that output behind the answer on the wire.
	a := &attachment{conn: conn, stdout: req.Stdout, stderr: req.Stderr}
	a.mu.Lock()
	added := s.add(a)
	err := proto.WriteMsg(conn, &proto.Response{})
	a.mu.Unlock()
	if err != nil {
		if added {
			s.remove(a)
		}
		return nil // the client is gone; nothing to answer
	}
	if !added {
		return nil // the output has ended: the client sees EOF at once
	}
	s.serveInput(a, req.Stdin)
	return nil
}
