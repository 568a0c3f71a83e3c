// Command netpurge removes from the host what the networks of a stopped
// hakod left there (network.Purge: namespaces, veths, leases, bridges and
// their iptables rules), for the scripts that throw a hakod away
// (test/cli/hakod.sh, bench/engine/run.sh); tests in Go call network.Purge
// themselves (test/hakodtest).
//
//	go run ./test/netpurge --data-root DIR --exec-root DIR
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/hako-project/hako/network"
)

func main() {
	data := flag.String("data-root", "", "the hakod's --data-root")
	exec := flag.String("exec-root", "", "the hakod's --exec-root")
	flag.Parse()
	if *data == "" || *exec == "" {
		fmt.Fprintln(os.Stderr, "usage: netpurge --data-root DIR --exec-root DIR")
		os.Exit(2)
	}
	if err := network.Purge(context.Background(), network.Config{DataRoot: *data, ExecRoot: *exec}); err != nil {
		fmt.Fprintln(os.Stderr, "netpurge:", err)
		os.Exit(1)
	}
}
