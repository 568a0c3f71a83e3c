package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

func init() {
	register(command{
		name:    "ps",
		summary: "list the processes in a container (ps(1) options may follow the ID)",
		usage:   "ID [PS OPTIONS]",
		flags: func(fs *flag.FlagSet) func(*env, []string) error {
			format := fs.String("format", "table", "table or json (a list of pids)")
			fs.StringVar(format, "f", "table", "table or json (a list of pids)")
			return func(e *env, args []string) error {
				if len(args) < 1 {
					return usagef("want a container ID")
				}
				c, err := e.rt.Load(args[0])
				if err != nil {
					return err
				}
				pids, err := c.Processes()
				if err != nil {
					return err
				}
				switch *format {
				case "json":
					if pids == nil {
						pids = []int{}
					}
					return json.NewEncoder(os.Stdout).Encode(pids)
				case "table":
				default:
					return usagef("--format %q: want table or json", *format)
				}
				psArgs := args[1:]
				if len(psArgs) == 0 {
					psArgs = []string{"-ef"}
				}
				out, err := exec.Command("ps", psArgs...).Output()
				if err != nil {
					return fmt.Errorf("ps %s: %w", strings.Join(psArgs, " "), err)
				}
				return filterPS(out, pids)
			}
		},
	})
}

// filterPS prints ps's header and the lines whose PID column is one of pids.
func filterPS(out []byte, pids []int) error {
	sc := bufio.NewScanner(bytes.NewReader(out))
	if !sc.Scan() {
		return nil
	}
	header := sc.Text()
	col := -1
	for i, f := range strings.Fields(header) {
		if f == "PID" {
			col = i
		}
	}
	if col < 0 {
		return fmt.Errorf("ps output has no PID column; give ps options that print it")
	}
	want := map[int]bool{}
	for _, p := range pids {
		want[p] = true
	}
	fmt.Println(header)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > col {
			if p, err := strconv.Atoi(f[col]); err == nil && want[p] {
				fmt.Println(sc.Text())
			}
		}
	}
	return nil
}
