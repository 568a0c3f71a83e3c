package cli_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// composeFile is a two-service project: web serves a named volume over
// HTTP on a published port, client reaches web by its service name.
const composeFile = `version: "3.7"
services:
  web:
    image: ` + testImage + `
    command: ["httpd", "-f", "-p", "80", "-h", "/www"]
    volumes: ["www:/www"]
    ports: ["80"]
  client:
    image: ` + testImage + `
    command: ["sh", "-c", "echo client-started; exec sleep 600"]
    depends_on: [web]
volumes:
  www: {}
`

// TestCompose brings a docker compose project up and down against the
// daemon under test (dockerd, or hakod from test/cli/hakod.sh): service
// names resolve, a published port answers from the host, the named volume
// survives down/up, logs and ps work, and down -v leaves nothing.
func TestCompose(t *testing.T) {
	s := need(t)
	compose, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Skip("docker-compose is not installed (apt-get install docker-compose; scripts/deps.sh does)")
	}
	const project = "hakocompose"
	dir := filepath.Join(s.tmp, "compose")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "docker-compose.yml")
	if err := os.WriteFile(file, []byte(composeFile), 0o644); err != nil {
		t.Fatal(err)
	}
	dc := func(args ...string) result {
		return s.run(compose, "", append([]string{"--no-ansi", "-p", project, "-f", file}, args...)...)
	}
	mustDC := func(args ...string) string {
		t.Helper()
		r := dc(args...)
		if r.code != 0 {
			t.Fatalf("docker-compose %s: %v", strings.Join(args, " "), r)
		}
		return r.out
	}
	t.Cleanup(func() { dc("down", "-v", "--remove-orphans", "-t", "1") })

	// fetch asks client for web's page by service name until it answers.
	fetch := func() string {
		t.Helper()
		var last result
		for i := 0; i < 50; i++ {
			last = dc("exec", "-T", "client", "wget", "-qO-", "http://web/index.html")
			if last.code == 0 {
				return strings.TrimSpace(last.out)
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("client could not fetch http://web/: %v", last)
		return ""
	}

	mustDC("up", "-d")
	mustDC("exec", "-T", "web", "sh", "-c", "echo hello-compose > /www/index.html")
	if got := fetch(); got != "hello-compose" {
		t.Fatalf("client got %q from web, want hello-compose", got)
	}

	// The published port, from the host.
	addr := strings.TrimSpace(mustDC("port", "web", "80"))
	_, port, ok := strings.Cut(addr, ":")
	if !ok || port == "" {
		t.Fatalf("docker-compose port web 80 = %q", addr)
	}
	if got := httpGet(t, "http://127.0.0.1:"+port+"/index.html"); got != "hello-compose" {
		t.Fatalf("host got %q from the published port %s", got, port)
	}

	ps := mustDC("ps")
	for _, svc := range []string{"web", "client"} {
		if !strings.Contains(ps, project+"_"+svc+"_1") {
			t.Errorf("docker-compose ps lacks %s:\n%s", svc, ps)
		}
	}
	if n := strings.Count(ps, " Up "); n != 2 {
		t.Errorf("docker-compose ps: %d services Up, want 2:\n%s", n, ps)
	}
	if ids := strings.Fields(mustDC("ps", "-q")); len(ids) != 2 {
		t.Errorf("docker-compose ps -q: %q", ids)
	}
	if logs := mustDC("logs", "--no-color", "client"); !strings.Contains(logs, "client-started") {
		t.Errorf("docker-compose logs client:\n%s", logs)
	}

	// down keeps the named volume; up again finds its content.
	mustDC("down", "-t", "1")
	if left := strings.TrimSpace(s.must(t, s.docker, "ps", "-aq", "--filter", "label=com.docker.compose.project="+project).out); left != "" {
		t.Fatalf("containers left after down: %s", left)
	}
	if vols := strings.TrimSpace(s.must(t, s.docker, "volume", "ls", "-q", "--filter", "name="+project+"_www").out); vols != project+"_www" {
		t.Fatalf("volume after down: %q, want %s_www", vols, project)
	}
	mustDC("up", "-d")
	if got := fetch(); got != "hello-compose" {
		t.Fatalf("after down/up the volume served %q, want hello-compose", got)
	}

	// down -v removes containers, the network and the volume.
	mustDC("down", "-v", "-t", "1")
	if left := strings.TrimSpace(s.must(t, s.docker, "ps", "-aq", "--filter", "label=com.docker.compose.project="+project).out); left != "" {
		t.Errorf("containers left after down -v: %s", left)
	}
	if vols := strings.TrimSpace(s.must(t, s.docker, "volume", "ls", "-q", "--filter", "name="+project+"_").out); vols != "" {
		t.Errorf("volumes left after down -v: %s", vols)
	}
	if nets := strings.TrimSpace(s.must(t, s.docker, "network", "ls", "-q", "--filter", "name="+project+"_").out); nets != "" {
		t.Errorf("networks left after down -v: %s", nets)
	}
}

// httpGet fetches url, retrying for a few seconds while the port is not
// yet forwarded.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	c := http.Client{Timeout: 3 * time.Second}
	var err error
	for i := 0; i < 25; i++ {
		var resp *http.Response
		if resp, err = c.Get(url); err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == http.StatusOK {
				return strings.TrimSpace(string(b))
			}
			err = fmt.Errorf("status %s, body %q, %v", resp.Status, b, rerr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("GET %s: %v", url, err)
	return ""
}
