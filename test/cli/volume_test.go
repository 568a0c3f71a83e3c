package cli_test

import (
	"regexp"
	"strings"
	"testing"
)

// createdAt hides volumes' creation times (the two CLIs' volumes are made
// a moment apart).
func createdAt(s string) string {
	return regexp.MustCompile(`"CreatedAt": ?"[^"]*"`).ReplaceAllString(s, `"CreatedAt": "<time>"`)
}

// cleanupVolumes removes volumes (and first the containers that use them)
// when t ends.
func (s *suite) cleanupVolumes(t *testing.T, containers []string, volumes ...string) {
	t.Cleanup(func() {
		if len(containers) > 0 {
			s.run(s.docker, "", append([]string{"rm", "-f", "-v"}, containers...)...)
		}
		s.run(s.docker, "", append([]string{"volume", "rm", "-f"}, volumes...)...)
	})
}

// TestVolumeCommands: volume create, ls, inspect, rm and their errors.
func TestVolumeCommands(t *testing.T) {
	s := need(t)
	n := names{base: "clivol"}
	s.cleanupVolumes(t, nil, n.d(), n.h())
	s.compare(t, n, "", []string{"volume", "create", "--label", "suite=clivol", "--label", "k", "{}"})
	s.compare(t, n, "", []string{"volume", "create", "{}"}) // the same volume again
	s.compare(t, n, "", []string{"volume", "ls", "--filter", "name={}"})
	s.compare(t, n, "", []string{"volume", "ls", "-q", "--filter", "name={}", "--filter", "dangling=true"})
	// (.Labels of several labels is in map order with docker 28's CLI:
	// one label only in the JSON row, TestVolumePrune.)
	s.compare(t, n, "", []string{"volume", "ls", "--format", "{{.Name}} {{.Driver}} {{.Label \"suite\"}} {{.Label \"k\"}} {{.Links}} {{.Size}}", "--filter", "name={}"})
	s.compare(t, n, "", []string{"volume", "ls", "--format", "table {{.Name}}\t{{.Mountpoint}}\t{{.Scope}}", "--filter", "name={}"})
	s.compare(t, n, "", []string{"volume", "inspect", "{}"}, createdAt)
	s.compare(t, n, "", []string{"volume", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Scope}} {{json .Labels}} {{json .Options}}", "{}"})
	s.compare(t, n, "", []string{"volume", "inspect", "{}", "nosuch-volume"}, createdAt)
	s.compare(t, n, "", []string{"volume", "rm", "{}", "nosuch-volume"})
	s.compare(t, n, "", []string{"volume", "rm", "-f", "{}"})
	s.compare(t, n, "", []string{"volume", "inspect", "{}"})
	for _, args := range [][]string{
		{"volume", "create", "bad name"},
		{"volume", "create", "x"},
		{"volume", "create", "-o", "bogus=1", "{}"},
		{"volume", "create", "-o", "type=tmpfs", "{}"},
		{"volume", "create", "-d", "nosuchdriver", "{}"},
		{"volume", "create", "a1", "a2"},
		{"volume", "create", "--name", "a1", "a2"},
		{"volume", "create", "--label", "bad label", "{}"},
		{"volume", "ls", "-f", "bogus=1"},
		{"volume", "ls", "-f", "dangling=maybe"},
		{"volume", "ls", "-f", "nofmt"},
		{"volume", "ls", "extra"},
		{"volume", "rm"},
		{"volume", "inspect"},
		{"volume", "prune", "extra"},
		{"volume", "nosuchcommand"},
	} {
		s.compare(t, n, "", args)
	}
}

// TestVolumeRun: -v NAME:/p and --mount type=volume create the volume on
// first use, it outlives the container and is refused removal while a
// container has it; an image's content is copied into it.
func TestVolumeRun(t *testing.T) {
	s := need(t)
	n := names{base: "clivolrun"}
	vol, ctr := names{base: "clivolrun-vol"}, names{base: "clivolrun-ctr"}
	s.cleanupVolumes(t, []string{ctr.d(), ctr.h()}, vol.d(), vol.h(), n.d(), n.h())
	s.compare(t, n, "", []string{"run", "--rm", "-v", "{}:/data", testImage, "sh", "-c", "echo kept > /data/f; ls /data"})
	s.compare(t, n, "", []string{"run", "--rm", "-v", "{}:/data:ro", testImage, "sh", "-c", "cat /data/f; touch /data/x"})
	s.compare(t, n, "", []string{"run", "--rm", "--mount", "type=volume,src={},dst=/m,readonly", testImage, "cat", "/m/f"})
	// Copy-up: the image's /etc into a new volume.
	s.compare(t, vol, "", []string{"run", "--rm", "-v", "{}:/etc", testImage, "sh", "-c", "ls /etc | grep -v -e hostname -e hosts -e resolv.conf -e mtab"})
	s.compare(t, vol, "", []string{"volume", "ls", "-q", "--filter", "name={}"})
	// In use by a stopped container: refused, with the container's ID.
	s.must(t, s.docker, "create", "--name", ctr.d(), "-v", vol.d()+":/v", testImage)
	s.must(t, s.docker, "create", "--name", ctr.h(), "-v", vol.h()+":/v", testImage)
	s.compare(t, vol, "", []string{"volume", "rm", "{}"}, ids)
	s.compare(t, ctr, "", []string{"inspect", "-f", "{{range .Mounts}}{{.Type}} {{.Destination}} {{.Driver}} {{.Mode}} {{.RW}} {{.Propagation}}{{end}}", "{}"})
	s.compare(t, ctr, "", []string{"rm", "-v", "{}"})
	s.compare(t, vol, "", []string{"volume", "rm", "{}"})
	// Anonymous volumes: -v /path; rm -v removes them.
	s.compare(t, ctr, "", []string{"create", "--name", "{}", "-v", "/anon", testImage}, ids)
	s.compare(t, ctr, "", []string{"inspect", "-f", "{{range .Mounts}}{{.Type}} {{len .Name}} {{.Destination}} {{.Mode}} {{.RW}}{{end}}", "{}"})
	s.compare(t, ctr, "", []string{"run", "--rm", "--volumes-from", "{}:ro", testImage, "sh", "-c", "ls -d /anon; touch /anon/x"})
	s.compare(t, n, "", []string{"run", "--rm", "--volumes-from", "nosuch-container", testImage, "true"})
	s.compare(t, ctr, "", []string{"rm", "-v", "{}"})
	// Bad mounts: the daemon's checks, the CLI's parsing.
	for _, args := range [][]string{
		{"run", "--rm", "-v", "bad!name:/p", testImage, "true"},
		{"run", "--rm", "-v", "{}:/p:bogus", testImage, "true"},
		{"run", "--rm", "-v", "{}:/p:shared", testImage, "true"},
		{"run", "--rm", "-v", "{}:/", testImage, "true"},
		{"run", "--rm", "-v", "v1{}:/p", "-v", "v2{}:/p", testImage, "true"},
		{"run", "--rm", "--mount", "type=volume,dst=/p,readonly", testImage, "true"},
		{"run", "--rm", "--mount", "type=volume,src={},dst=/p,volume-opt=bogus=1", testImage, "true"},
		{"run", "--rm", "--mount", "type=volume,src={}", testImage, "true"},
		{"run", "--rm", "--mount", "type=volume,src={},dst=/p,bind-propagation=shared", testImage, "true"},
		{"run", "--rm", "--mount", "type=bind,src=/no/such/dir,dst=/p", testImage, "true"},
	} {
		s.compare(t, n, "", args)
	}
}

// TestVolumePrune: the prompt (declined and accepted), -f, and label
// filters, on volumes labelled for this test only.
func TestVolumePrune(t *testing.T) {
	s := need(t)
	n := names{base: "clivolprune"}
	s.cleanupVolumes(t, nil, n.d(), n.h())
	s.compare(t, n, "", []string{"volume", "create", "--label", "prune={}", "{}"})
	s.compare(t, n, "", []string{"volume", "ls", "--format", "json", "--filter", "name={}"})
	s.compare(t, n, "", []string{"volume", "ls", "--format", "{{.Name}}: {{.Labels}}", "--filter", "label=prune={}"})
	s.compare(t, n, "n\n", []string{"volume", "prune", "--filter", "label=prune={}"})
	s.compare(t, n, "", []string{"volume", "ls", "-q", "--filter", "name={}"})
	s.compare(t, n, "y\n", []string{"volume", "prune", "--filter", "label=prune=nothing-{}"})
	s.compare(t, n, "", []string{"volume", "prune", "-f", "--filter", "label=prune={}"})
	s.compare(t, n, "", []string{"volume", "ls", "-q", "--filter", "name={}"})
	s.compare(t, n, "", []string{"volume", "prune", "-f", "--filter", "bogus=1"})
	s.compare(t, n, "", []string{"volume", "prune", "-a", "-f", "--filter", "label=prune=nothing"})
	if d := s.run(s.docker, "", "volume", "ls", "-q", "--filter", "label=prune="+n.d()); strings.TrimSpace(d.out) != "" {
		t.Errorf("prune left %q", d.out)
	}
}
