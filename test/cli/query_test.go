package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestCreateFlags: the create request hako builds from run/create flags
// is docker's: both CLIs create a container with the same flags and the
// daemon's record of their Config and HostConfig must match.
func TestCreateFlags(t *testing.T) {
	s := need(t)
	n := names{base: "flags"}
	s.cleanup(t, n.d(), n.h())
	envFile := filepath.Join(s.tmp, "env.list")
	os.WriteFile(envFile, []byte("# comment\nFROM_FILE=1\nFROM_ENV\n"), 0o644)
	labelFile := filepath.Join(s.tmp, "labels")
	os.WriteFile(labelFile, []byte("lf=1\n"), 0o644)
	hostDir := t.TempDir()
	args := []string{"create", "--name", "{}",
		"-e", "A=1", "-e", "PATH", "--env-file", envFile, "-w", "/tmp", "-u", "1:2", "--entrypoint", "/bin/sh",
		"--hostname", "hh", "--domainname", "dd", "-v", hostDir + ":/data:ro", "-v", "/anon",
		"--mount", "type=tmpfs,target=/mnt/t,tmpfs-size=1m", "--mount", "type=bind,src=" + hostDir + ",dst=/b,readonly",
		"--tmpfs", "/run:size=1m", "--read-only", "--memory", "64m", "--memory-swap", "128m", "--cpus", "1.5",
		"--pids-limit", "50", "--cap-add", "net_admin", "--cap-drop", "CHOWN", "--security-opt", "no-new-privileges",
		"--init", "--restart", "on-failure:3", "--network", "none", "-p", "127.0.0.1:8080:80/tcp", "-p", "9000-9001:90-91/udp",
		"--expose", "7000-7001", "-l", "a=b", "-l", "c", "--label-file", labelFile, "--log-opt", "max-size=1m",
		"--log-driver", "json-file", "--ulimit", "nofile=100:200", "--device", "/dev/null:/dev/mynull:r",
		"--group-add", "10", "--add-host", "h1:10.0.0.1", "--add-host", "h2=10.0.0.2", "--dns", "1.1.1.1",
		"--dns-search", "example.com", "--dns-option", "ndots:2", "--health-cmd", "true", "--health-interval", "5s",
		"--health-retries", "2", "--health-timeout", "1s", "--health-start-period", "1s", "--runtime", "runc",
		"--stop-signal", "SIGUSR1", "--stop-timeout", "7", "--shm-size", "32m", "--oom-score-adj", "100",
		"-i", "-t", "--cpu-shares", "512", "--sysctl", "net.ipv4.ip_forward=1",
		testImage, "-c", "echo hi"}
	sameRecord(t, s, n, args)
	s.run(s.docker, "", "rm", "-f", n.d(), n.h())
	sameRecord(t, s, n, []string{"create", "--name", "{}", testImage})
	s.run(s.docker, "", "rm", "-f", n.d(), n.h())
	sameRecord(t, s, n, []string{"create", "--name", "{}", "--rm", "-a", "stdin", "-a", "STDOUT", "--network", "host", "-P", "--expose", "80",
		"--privileged", "--security-opt", "seccomp=unconfined", "--pull", "never", "--platform", "linux/amd64", testImage, "true"})
}

// sameRecord creates a container with args through both CLIs and
// requires the daemon's record of the two to match.
func sameRecord(t *testing.T, s *suite, n names, args []string) {
	t.Helper()
	s.compare(t, n, "", args, ids)
	var recs [2]map[string]json.RawMessage
	for i, name := range []string{n.d(), n.h()} {
		out := s.must(t, s.docker, "inspect", name).out
		var l []map[string]json.RawMessage
		if err := json.Unmarshal([]byte(out), &l); err != nil || len(l) != 1 {
			t.Fatalf("inspect %s: %v %s", name, err, out)
		}
		recs[i] = l[0]
	}
	for _, field := range []string{"Config", "HostConfig", "Path", "Args"} {
		var a, b any
		json.Unmarshal(recs[0][field], &a)
		json.Unmarshal(recs[1][field], &b)
		if m, ok := a.(map[string]any); ok {
			mb := b.(map[string]any)
			// Order-free: docker sends binds in map order.
			delete(m, "Binds")
			delete(mb, "Binds")
			// docker orders -e values by map iteration: compare as sets.
			for _, mm := range []map[string]any{m, mb} {
				if env, ok := mm["Env"].([]any); ok {
					sort.Slice(env, func(i, j int) bool { return env[i].(string) < env[j].(string) })
				}
			}
			// The default hostname is the container's short ID.
			if h, _ := m["Hostname"].(string); reID12.MatchString(h) {
				delete(m, "Hostname")
				delete(mb, "Hostname")
			}
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s differs:\ndocker: %s\nhako:   %s", field, recs[0][field], recs[1][field])
		}
	}
}

// TestInspect: raw JSON, json, templates with docker's functions, types.
func TestInspect(t *testing.T) {
	s := need(t)
	n := names{base: "insp"}
	s.cleanup(t, n.d(), n.h())
	s.must(t, s.docker, "create", "--name", n.d(), "-l", "k=v", "-e", "E=1", testImage, "sh", "-c", "exit 0")
	s.must(t, s.docker, "create", "--name", n.h(), "-l", "k=v", "-e", "E=1", testImage, "sh", "-c", "exit 0")
	// The very same object through both CLIs: byte-identical.
	for _, f := range [][]string{
		{"inspect", n.d()},
		{"inspect", "--format", "json", n.d()},
		{"inspect", "-f", "{{.Name}} {{.State.Status}} {{json .Config.Cmd}} {{.Config.Labels.k}}", n.d()},
		{"inspect", "-f", "{{join .Config.Cmd \" \"}}|{{upper .State.Status}}|{{title .State.Status}}|{{lower .Name}}|{{split .Name \"s\"}}|{{pad .Name 1 2}}|{{truncate .Name 3}}", n.d()},
		{"inspect", "-f", "{{range .Config.Env}}{{.}};{{end}}", n.d()},
		{"inspect", "-f", "{{json .Config.Labels}}", n.d()},
		{"inspect", "-f", "{{.Id}}", "--type", "container", n.d()},
		{"inspect", "-s", "-f", "{{.SizeRootFs}}", n.d()},
		{"inspect", "--type", "image", testImage},
		{"inspect", "-f", "{{.Os}} {{.Config.Cmd}} {{.RepoTags}}", testImage},
		{"inspect", "-f", "{{.Name}}", n.d(), "nosuch", n.d()},
		{"inspect", "nosuch"},
		{"inspect", "--type", "image", n.d()},
		{"inspect", "--type", "foo", n.d()},
		{"inspect", "-f", "{{.Nope", n.d()},
		{"inspect", "-f", "{{.NoSuchField}}", n.d()},
		{"inspect"},
	} {
		s.compare(t, names{}, "", f)
	}
	s.compare(t, n, "", []string{"inspect", "-f", "{{.Name}} {{.Config.Image}} {{.Config.Env}}", "{}"})
}

// TestPs: filters, formats, quiet, truncation, -n and -l.
func TestPs(t *testing.T) {
	s := need(t)
	n := names{base: "ps"}
	s.cleanup(t, n.d(), n.h(), n.d()+"2", n.h()+"2")
	for _, name := range []string{n.d(), n.h()} {
		s.must(t, s.docker, "run", "-d", "--name", name, "-l", "suite=ps", "-l", "who="+name, testImage, "sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done")
		s.must(t, s.docker, "create", "--name", name+"2", "-l", "suite=ps", "-l", "who="+name, testImage, "echo", "a very long command line indeed")
	}
	f := func(extra ...string) []string { return append([]string{"ps", "--filter", "label=suite=ps"}, extra...) }
	for _, args := range [][]string{
		f("--format", "{{.Names}} {{.Image}} {{.Command}} {{.State}} {{.Labels}} {{.Label \"suite\"}}"),
		f("-a", "--format", "{{.Names}}\t{{.Command}}\t{{.Ports}}\t{{.Networks}}\t{{.Mounts}}\t{{.LocalVolumes}}"),
		f("-a", "--no-trunc", "--format", "{{.Names}} {{.Command}} {{.Image}}"),
		f("-a", "--format", "table {{.Names}}\t{{.State}}"),
		f("-a", "--filter", "status=created", "--format", "{{.Names}}"),
		f("-a", "--filter", "name=ps-", "--format", "{{.Names}}"),
		f("-a", "--format", "{{json .Labels}} {{.Size}}"),
		f("-a", "-s", "--format", "{{.Names}} {{.Size}}"),
		f("-a", "--format", "raw"),
		f("-a", "--format", "{{.Nope}}"),
		{"ps", "--filter", "foo=bar"},
		{"ps", "--filter", "nonsense"},
		{"ps", "extra-arg"},
	} {
		s.compare(t, names{}, "", args, ids, times)
	}
	// Each CLI's view of its own containers, in full default form.
	for _, args := range [][]string{
		{"ps", "-a", "--filter", "label=who={}"},
		{"ps", "-a", "-q", "--filter", "label=who={}"},
		{"ps", "-a", "--no-trunc", "--filter", "label=who={}"},
		{"ps", "-a", "-s", "--filter", "label=who={}"},
		{"ps", "-a", "--format", "json", "--filter", "label=who={}"},
		{"ps", "-n", "1", "--format", "{{.Names}}", "--filter", "label=who={}"},
		{"ps", "-l", "-q", "--filter", "label=who={}"},
	} {
		s.compare(t, n, "", args, ids, times, func(x string) string {
			return regexp.MustCompile(`"CreatedAt":"[^"]*"`).ReplaceAllString(x, `"CreatedAt":"<t>"`)
		})
	}
}

// TestImagesTagRmi: listing, tagging and removing images.
func TestImagesTagRmi(t *testing.T) {
	s := need(t)
	n := names{base: "clitest/tagged"}
	t.Cleanup(func() { s.run(s.docker, "", "rmi", n.d()+":v1", n.h()+":v1", n.d()+":v2", n.h()+":v2") })
	s.compare(t, n, "", []string{"tag", testImage, "{}:v1"})
	s.compare(t, n, "", []string{"tag", testImage, "{}:v2"})
	s.compare(t, n, "", []string{"tag", "nosuch:latest", "{}:v3"})
	s.compare(t, n, "", []string{"tag", testImage, "Bad:x:y"})
	for _, args := range [][]string{
		{"images", "{}"},
		{"images", "{}:v1"},
		{"images", "-q", "{}"},
		{"images", "--digests", "{}"},
		{"images", "--no-trunc", "{}"},
		{"images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}} {{.Containers}}", "{}"},
		{"images", "--format", "table {{.Repository}}\t{{.Tag}}", "--filter", "reference={}:v2"},
		{"images", "--format", "json", "{}:v1"},
		{"images", "--filter", "x"},
		{"images", "a", "b"},
		{"images", "--format", "raw", "{}:v1"},
	} {
		s.compare(t, n, "", args, times, sortRows, func(x string) string {
			return regexp.MustCompile(`"CreatedAt":"[^"]*"`).ReplaceAllString(x, `"CreatedAt":"<t>"`)
		})
	}
	s.compare(t, n, "", []string{"rmi", "{}:v1"})
	s.compare(t, n, "", []string{"rmi", "{}:v1"})
	s.compare(t, n, "", []string{"rmi", "-f", "{}:v2", "nosuch:tag"})
	s.compare(t, n, "", []string{"rmi"})
}

// sortRows sorts a table's rows below its header. Both scenarios' tags
// sit on one image, listed in name order, so with each side's own name
// replaced by NAME the two sides list the same rows in different orders.
func sortRows(x string) string {
	lines := strings.Split(strings.TrimSuffix(x, "\n"), "\n")
	if len(lines) > 2 {
		sort.Strings(lines[1:])
	}
	return strings.Join(lines, "\n") + "\n"
}

// TestImportSaveLoad: import with --change and -m, then a save/load round
// trip through both CLIs.
func TestImportSaveLoad(t *testing.T) {
	s := need(t)
	n := names{base: "clitest-imported"}
	t.Cleanup(func() { s.run(s.docker, "", "rmi", "-f", n.d(), n.h()) })
	d, h := s.compare(t, n, "", []string{"import", "-c", `CMD ["echo", "imported"]`, "-c", "ENV X=1", "-m", "a message", s.rootfsTar, "{}"},
		func(x string) string {
			return regexp.MustCompile(`sha256:[0-9a-f]{64}`).ReplaceAllString(x, "sha256:<id>")
		})
	if !strings.HasPrefix(d.out, "sha256:") || !strings.HasPrefix(h.out, "sha256:") {
		t.Fatalf("import must print the image ID: %q %q", d.out, h.out)
	}
	rootfs, err := os.ReadFile(s.rootfsTar)
	if err != nil {
		t.Fatal(err)
	}
	s.compare(t, n, string(rootfs), []string{"import", "-", "{}:stdin"},
		func(x string) string {
			return regexp.MustCompile(`sha256:[0-9a-f]{64}`).ReplaceAllString(x, "sha256:<id>")
		})
	s.run(s.docker, "", "rmi", n.d()+":stdin", n.h()+":stdin")
	s.compare(t, n, "", []string{"run", "--rm", "{}"})
	s.compare(t, n, "", []string{"inspect", "-f", "{{.Comment}} {{.Config.Env}} {{.Config.Cmd}}", "{}"})
	s.compare(t, n, "", []string{"import", "/nonexistent.tar"})

	dir := t.TempDir()
	s.compare(t, n, "", []string{"save", "-o", filepath.Join(dir, "{}.tar"), "{}"})
	s.compare(t, n, "", []string{"save", "-o", "/nonexistent/dir/x.tar", "{}"})
	s.compare(t, n, "", []string{"save", "nosuch:image"})
	for _, name := range []string{n.d(), n.h()} {
		if st, err := os.Stat(filepath.Join(dir, name+".tar")); err != nil || st.Size() == 0 {
			t.Fatalf("save wrote no archive for %s: %v", name, err)
		}
	}
	s.compare(t, n, "", []string{"rmi", "{}"}, ids)
	s.compare(t, n, "", []string{"load", "-i", filepath.Join(dir, "{}.tar")})
	s.compare(t, n, "", []string{"run", "--rm", "{}"})
	s.compare(t, n, "", []string{"rmi", "{}"}, ids)
	// Through stdin, quiet.
	for _, c := range []struct{ bin, name string }{{s.docker, n.d()}, {s.hako, n.h()}} {
		b, _ := os.ReadFile(filepath.Join(dir, c.name+".tar"))
		if r := s.run(c.bin, string(b), "load", "-q"); r.code != 0 || r.out != "Loaded image: "+c.name+":latest\n" {
			t.Fatalf("%s load -q from stdin: %s", c.bin, r)
		}
	}
	// hako's archive loads with docker and the other way round.
	s.must(t, s.docker, "rmi", n.d(), n.h())
	s.must(t, s.docker, "load", "-i", filepath.Join(dir, n.h()+".tar"))
	s.must(t, s.hako, "load", "-i", filepath.Join(dir, n.d()+".tar"))
	s.compare(t, n, "", []string{"run", "--rm", "{}"})
	s.compare(t, n, "", []string{"load", "-i", "/nonexistent.tar"})
	s.compare(t, n, "not a tar", []string{"load"})
}

// TestVersionInfo: the server halves of version and info are the
// daemon's, laid out as docker does.
func TestVersionInfo(t *testing.T) {
	s := need(t)
	server := func(x string) string {
		if i := strings.Index(x, "Server:"); i >= 0 {
			return x[i:]
		}
		return x
	}
	// Counts change while other scenarios' containers come and go.
	// docker lists runtimes in map order.
	runtimes := func(x string) string {
		return regexp.MustCompile(`(?m)^ Runtimes: .*$`).ReplaceAllStringFunc(x, func(l string) string {
			f := strings.Fields(strings.TrimPrefix(l, " Runtimes: "))
			sort.Strings(f)
			return " Runtimes: " + strings.Join(f, " ")
		})
	}
	counts := func(x string) string {
		return regexp.MustCompile(`(?m)^ ( ?)(Containers|Running|Paused|Stopped|Images): \d+$`).ReplaceAllString(x, " $1$2: N")
	}
	s.compare(t, names{}, "", []string{"version"}, server)
	s.compare(t, names{}, "", []string{"version", "--format", "{{.Server.Version}} {{.Server.APIVersion}} {{.Server.Os}}"})
	s.compare(t, names{}, "", []string{"version", "--format", "{{.Nope"})
	s.compare(t, names{}, "", []string{"info"}, server, counts, runtimes)
	s.compare(t, names{}, "", []string{"info", "--format", "{{.ServerVersion}} {{.Driver}} {{.OSType}} {{.NCPU}}"})
	s.compare(t, names{}, "", []string{"info", "extra"})
}
