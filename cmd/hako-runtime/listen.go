package main

import (
	"os"
	"strconv"
)

// listenFDs is the number of socket-activation fds (LISTEN_FDS) handed to
// us for the container, as runc passes them on: they come first, before the
// --preserve-fds ones.
func listenFDs() int {
	if os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getpid()) {
		return 0
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n < 0 {
		return 0
	}
	return n
}
