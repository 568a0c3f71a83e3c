package main

import (
	"fmt"
	"net"
	"os"
)

// notifier tells a service manager how hakod's start and stop go, by the
// sd_notify protocol: one datagram per state change ("READY=1",
// "STOPPING=1") to the unix socket named by $NOTIFY_SOCKET. With
// Type=notify in contrib/systemd/hakod.service, `systemctl start hakod`
// returns once the API answers, not once the process exists, so a unit
// ordered after hakod (or a script right after the start) finds the
// socket listening.
//
// The variable is taken out of hakod's environment at once, before hakod
// starts anything: shims, runtimes and CNI plugins inherit hakod's
// environment, and none of them must speak for hakod. That is why hakod
// keeps the address itself rather than reading the variable at each
// notification (as go-systemd's SdNotify does).
type notifier struct {
	addr string // "" when hakod was not started with $NOTIFY_SOCKET
}

// takeNotifySocket reads $NOTIFY_SOCKET and removes it from the
// environment.
func takeNotifySocket() notifier {
	addr := os.Getenv("NOTIFY_SOCKET")
	os.Unsetenv("NOTIFY_SOCKET")
	return notifier{addr: addr}
}

// notify sends state; without a socket it does nothing. An address that
// starts with '@' is in the abstract namespace, which net spells the same
// way.
func (n notifier) notify(state string) error {
	if n.addr == "" {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("notify the service manager (NOTIFY_SOCKET=%s): %w", n.addr, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("notify the service manager (NOTIFY_SOCKET=%s): %w", n.addr, err)
	}
	return nil
}
