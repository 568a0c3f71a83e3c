package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/hako-project/hako/runtime/container"
)

func init() {
	register(command{
		name:    "list",
		summary: "list containers",
		flags: func(fs *flag.FlagSet) func(*env, []string) error {
			format := fs.String("format", "table", "table or json")
			fs.StringVar(format, "f", "table", "table or json")
			quiet := fs.Bool("quiet", false, "print only the IDs")
			fs.BoolVar(quiet, "q", false, "print only the IDs")
			return func(e *env, args []string) error {
				if len(args) != 0 {
					return usagef("list takes no arguments")
				}
				cs, err := e.rt.List()
				if err != nil {
					return err
				}
				infos := make([]container.Info, 0, len(cs))
				for _, c := range cs {
					infos = append(infos, c.Info())
				}
				switch {
				case *quiet:
					for _, i := range infos {
						fmt.Println(i.ID)
					}
				case *format == "json":
					return json.NewEncoder(os.Stdout).Encode(infos)
				case *format == "table":
					w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
					fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
					for _, i := range infos {
						fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", i.ID, i.Pid, i.Status, i.Bundle, i.Created.Format(time.RFC3339Nano), i.Owner)
					}
					return w.Flush()
				default:
					return usagef("--format %q: want table or json", *format)
				}
				return nil
			}
		},
	})
}
