// Command hako is docker's command line for the hako container stack: it
// speaks only the Docker Engine API, to hakod (unix:///run/hako/hako.sock
// by default) or to any dockerd given by -H, $HAKO_HOST or $DOCKER_HOST.
package main

import (
	"os"

	"github.com/hako-project/hako/cli"
	_ "github.com/hako-project/hako/internal/oneproc" // one P: see the package
)

// version is set at build time (-X main.version=...).
var version = "dev"

func main() {
	os.Exit(cli.Main(cli.Env{
		Args:    os.Args[1:],
		Stdin:   os.Stdin,
		Stdout:  os.Stdout,
		Stderr:  os.Stderr,
		Getenv:  os.Getenv,
		Version: version,
	}))
}
