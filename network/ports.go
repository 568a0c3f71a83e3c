package network

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// PortSpec is one port a container asks to publish: ContainerPort/Protocol
// on HostIP (all addresses when empty) at a host port in
// [HostPortStart, HostPortEnd], or at a free ephemeral port when both are
// 0 (docker's -p CONTAINER and -P).
type PortSpec struct {
	HostIP        string
	HostPortStart int
	HostPortEnd   int
	ContainerPort int
	Protocol      string // tcp, udp or sctp
}

// ParseHostPort reads docker's HostPort: "" (ephemeral), "8080" or a range
// "8000-8010".
func ParseHostPort(s string) (start, end int, err error) {
	if s == "" {
		return 0, 0, nil
	}
	lo, hi, isRange := strings.Cut(s, "-")
	start, err = strconv.Atoi(lo)
	if err != nil || start < 0 || start > 65535 {
		return 0, 0, fmt.Errorf("invalid port specification: %q", s)
	}
	end = start
	if isRange {
		end, err = strconv.Atoi(hi)
		if err != nil || end < start || end > 65535 {
			return 0, 0, fmt.Errorf("invalid port specification: %q", s)
		}
	}
	return start, end, nil
}

// reservation holds a socket bound to each published host port while the
// container runs, as docker does: the ports' traffic is DNATed to the
// container before it could reach these sockets (which never listen), but
// no other program can bind the ports meanwhile, and a port another
// program holds is found at once, with docker's error.
type reservation struct {
	fds []int
}

func (r *reservation) release() {
	if r == nil {
		return
	}
	for _, fd := range r.fds {
		_ = unix.Close(fd)
	}
	r.fds = nil
}

// errPortAllocated is docker's error for a host port in use, which names
// the endpoint (the container's name and the endpoint's ID).
func errPortAllocated(name, endpointID, hostIP string, port int) error {
	if hostIP == "" {
		hostIP = "0.0.0.0"
	}
	return fmt.Errorf("driver failed programming external connectivity on endpoint %s (%s): Bind for %s:%d failed: port is already allocated",
		name, endpointID, hostIP, port)
}

// reservePorts binds a socket for every spec and returns the mappings with
// their host ports chosen: the first free port of a range, an ephemeral
// port from the kernel (ip_local_port_range, as docker's allocator) for
// specs without one. inUse reports host ports other containers of this
// daemon published (which a socket of a crashed hakod would no longer
// hold).
func reservePorts(specs []PortSpec, inUse func(hostIP, proto string, port int) bool, name, endpointID string) ([]PortMapping, *reservation, error) {
	res := &reservation{}
	var out []PortMapping
	for _, s := range specs {
		proto := strings.ToLower(s.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		var ip netip.Addr
		if s.HostIP != "" {
			var err error
			if ip, err = netip.ParseAddr(s.HostIP); err != nil {
				res.release()
				return nil, nil, fmt.Errorf("invalid host IP %q: %w", s.HostIP, err)
			}
			if !ip.Is4() && !ip.Unmap().Is4() {
				// IPv6 publishing needs ip6tables rules hakod does not make.
				res.release()
				return nil, nil, fmt.Errorf("publishing on IPv6 address %s is not supported by hakod", s.HostIP)
			}
			ip = ip.Unmap()
		}
		hostIP := ""
		if ip.IsValid() && !ip.IsUnspecified() {
			hostIP = ip.String()
		}
		var port, fd int
		var err error
		if s.HostPortStart == 0 {
			port, fd, err = bindPort(ip, proto, 0)
			if err != nil {
				res.release()
				return nil, nil, fmt.Errorf("allocate a host port for %d/%s: %w", s.ContainerPort, proto, err)
			}
		} else {
			err = errPortAllocated(name, endpointID, hostIP, s.HostPortStart)
			for p := s.HostPortStart; p <= s.HostPortEnd; p++ {
				if inUse(hostIP, proto, p) {
					err = errPortAllocated(name, endpointID, hostIP, p)
					continue
				}
				var berr error
				if _, fd, berr = bindPort(ip, proto, p); berr == nil {
					port, err = p, nil
					break
				}
				if errors.Is(berr, unix.EADDRINUSE) {
					err = errPortAllocated(name, endpointID, hostIP, p)
					continue
				}
				err = fmt.Errorf("bind host port %d/%s: %w", p, proto, berr)
				break
			}
			if err != nil {
				res.release()
				return nil, nil, err
			}
		}
		if fd >= 0 {
			res.fds = append(res.fds, fd)
		}
		out = append(out, PortMapping{HostIP: hostIP, HostPort: port, ContainerPort: s.ContainerPort, Protocol: proto})
	}
	return out, res, nil
}

// rebind reserves the host ports of mappings chosen before (a hakod
// restart), reporting the ones it could not get.
func rebind(mappings []PortMapping) (*reservation, []error) {
	res := &reservation{}
	var errs []error
	for _, m := range mappings {
		var ip netip.Addr
		if m.HostIP != "" {
			ip, _ = netip.ParseAddr(m.HostIP)
		}
		_, fd, err := bindPort(ip, m.Protocol, m.HostPort)
		if err != nil {
			errs = append(errs, fmt.Errorf("host port %d/%s: %w", m.HostPort, m.Protocol, err))
			continue
		}
		if fd >= 0 {
			res.fds = append(res.fds, fd)
		}
	}
	return res, errs
}

// bindPort binds a close-on-exec socket of proto to ip:port (port 0: the
// kernel's choice) without listening, and returns the port and the socket
// (-1 for sctp, which is not reserved). No SO_REUSEADDR: a port another
// socket is bound to, listening or not, is refused.
func bindPort(ip netip.Addr, proto string, port int) (int, int, error) {
	var typ int
	switch proto {
	case "tcp":
		typ = unix.SOCK_STREAM
	case "udp":
		typ = unix.SOCK_DGRAM
	case "sctp":
		if port == 0 {
			return 0, -1, errors.New("ephemeral sctp ports are not supported by hakod")
		}
		return port, -1, nil
	default:
		return 0, -1, fmt.Errorf("unknown protocol %q", proto)
	}
	fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, -1, err
	}
	sa := &unix.SockaddrInet4{Port: port}
	if ip.IsValid() {
		sa.Addr = ip.As4()
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return 0, -1, err
	}
	if port == 0 {
		got, err := unix.Getsockname(fd)
		if err != nil {
			unix.Close(fd)
			return 0, -1, err
		}
		port = got.(*unix.SockaddrInet4).Port
	}
	return port, fd, nil
}
