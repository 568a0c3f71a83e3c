package cli_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/hako-project/hako/test/imagetest"
)

// TestPushPull: push to and pull from a local docker-registry, and run
// an image that is pulled on demand.
func TestPushPull(t *testing.T) {
	s := need(t)
	reg := imagetest.StartRegistry(t, imagetest.RegistryOptions{})
	n := names{base: reg.Host + "/clitest/pp", short: "clitest/pp"}
	t.Cleanup(func() { s.run(s.docker, "", "rmi", "-f", n.d(), n.h(), n.d()+":v1", n.h()+":v1") })
	s.must(t, s.docker, "tag", testImage, n.d())
	s.must(t, s.docker, "tag", testImage, n.h())
	s.must(t, s.docker, "tag", testImage, n.d()+":v1")
	s.must(t, s.docker, "tag", testImage, n.h()+":v1")
	layers := func(x string) string {
		return regexp.MustCompile(`(?m)^[0-9a-f]{12}: `).ReplaceAllString(x, "<layer>: ")
	}
	// The registry mounts a blob the other CLI's push already uploaded.
	pushed := func(x string) string {
		return regexp.MustCompile(`(Pushed|Mounted from \S+|Layer already exists)`).ReplaceAllString(x, "<pushed>")
	}
	s.compare(t, n, "", []string{"push", "{}"}, layers, pushed)
	s.compare(t, n, "", []string{"push", "-q", "{}:v1"})
	s.compare(t, n, "", []string{"push", "-a", "{}:v1"})
	s.compare(t, n, "", []string{"push", reg.Host + "/clitest/notthere"})
	s.must(t, s.docker, "rmi", n.d(), n.h(), n.d()+":v1", n.h()+":v1")

	s.compare(t, n, "", []string{"pull", "{}"}, layers)
	s.compare(t, n, "", []string{"pull", "{}"}, layers)
	s.compare(t, n, "", []string{"pull", "-q", "{}:v1"})
	s.compare(t, n, "", []string{"images", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}", "{}"})
	s.compare(t, n, "", []string{"pull", "{}:nosuchtag"})
	s.compare(t, n, "", []string{"pull", "-a", "{}:v1"})
	s.compare(t, n, "", []string{"pull", "Bad Name"})
	s.must(t, s.docker, "rmi", n.d(), n.h())

	// run pulls what is missing and says so on stderr.
	d, _ := s.compare(t, n, "", []string{"run", "--rm", "{}", "echo", "pulled and ran"}, layers)
	if !strings.Contains(d.err, "Unable to find image") || d.out != "pulled and ran\n" {
		t.Fatalf("docker run with pull: %s", d)
	}
	s.compare(t, n, "", []string{"run", "--rm", "--pull", "always", "-q", "{}", "echo", "again"})
	s.compare(t, n, "", []string{"run", "--rm", "--pull", "never", "{}:gone"})
}
