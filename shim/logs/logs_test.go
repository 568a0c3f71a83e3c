package logs

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// entry is one json-file line read back.
type entry struct {
	Log    string `json:"log"`
	Stream string `json:"stream"`
	Time   string `json:"time"`
}

func readJSONFile(t *testing.T, path string) []entry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []entry
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%s: line %q: %v", path, sc.Text(), err)
		}
		if _, err := time.Parse(time.RFC3339Nano, e.Time); err != nil {
			t.Errorf("time %q: %v", e.Time, err)
		}
		out = append(out, e)
	}
	return out
}

func open(t *testing.T, cfg Config) *Log {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(t.TempDir(), "c.log")
	}
	l, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestJSONFileLines(t *testing.T) {
	l := open(t, Config{})
	out, errs := l.Stream("stdout"), l.Stream("stderr")
	for _, w := range []struct {
		s *Stream
		p string
	}{{out, "hello\nwor"}, {errs, "oops\n"}, {out, "ld\n\nlast"}} {
		if _, err := w.s.Write([]byte(w.p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := out.Flush(); err != nil {
		t.Fatal(err)
	}
	got := readJSONFile(t, l.cfg.Path)
	want := []entry{{Log: "hello\n", Stream: "stdout"}, {Log: "oops\n", Stream: "stderr"}, {Log: "world\n", Stream: "stdout"}, {Log: "\n", Stream: "stdout"}, {Log: "last", Stream: "stdout"}}
	if len(got) != len(want) {
		t.Fatalf("got %d entries %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i].Log != want[i].Log || got[i].Stream != want[i].Stream {
			t.Errorf("entry %d = %q/%s, want %q/%s", i, got[i].Log, got[i].Stream, want[i].Log, want[i].Stream)
		}
	}
}

func TestLongLinesArePartial(t *testing.T) {
	for _, format := range []Format{JSONFile, CRI} {
		t.Run(string(format), func(t *testing.T) {
			l := open(t, Config{Format: format})
			s := l.Stream("stdout")
			long := strings.Repeat("x", 2*MaxLine+10)
			// In small chunks, so partial pieces come from pending data too.
			data := []byte(long + "\nend\n")
			for len(data) > 0 {
				n := min(len(data), 1000)
				if _, err := s.Write(data[:n]); err != nil {
					t.Fatal(err)
				}
				data = data[n:]
			}
			b, err := os.ReadFile(l.cfg.Path)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
			if len(lines) != 4 {
				t.Fatalf("%d entries, want 4 (P, P, F, F)", len(lines))
			}
			var joined string
			for i, line := range lines[:3] {
				var text string
				var partial bool
				if format == CRI {
					f := strings.SplitN(line, " ", 4)
					text, partial = f[3], f[2] == "P"
				} else {
					var e entry
					if err := json.Unmarshal([]byte(line), &e); err != nil {
						t.Fatal(err)
					}
					partial = !strings.HasSuffix(e.Log, "\n")
					text = strings.TrimSuffix(e.Log, "\n")
				}
				if partial != (i < 2) {
					t.Errorf("entry %d partial=%v", i, partial)
				}
				if i < 2 && len(text) != MaxLine {
					t.Errorf("partial entry %d has %d bytes, want %d", i, len(text), MaxLine)
				}
				joined += text
			}
			if joined != long {
				t.Errorf("pieces join to %d bytes, want %d", len(joined), len(long))
			}
		})
	}
}

var criLine = regexp.MustCompile(`^(\S+) (stdout|stderr) ([FP]) (.*)$`)

func TestCRI(t *testing.T) {
	l := open(t, Config{Format: CRI})
	fixed := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.FixedZone("X", 3600))
	l.now = func() time.Time { return fixed }
	s := l.Stream("stderr")
	if _, err := s.Write([]byte("a \"quoted\" line\n\npartial")); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(l.cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	want := "2024-05-06T06:08:09.123456789Z stderr F a \"quoted\" line\n" +
		"2024-05-06T06:08:09.123456789Z stderr F \n" +
		"2024-05-06T06:08:09.123456789Z stderr F partial\n"
	if string(b) != want {
		t.Errorf("got\n%s\nwant\n%s", b, want)
	}
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if !criLine.MatchString(line) {
			t.Errorf("%q is not a CRI log line", line)
		}
	}
}

func TestRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c-json.log")
	l := open(t, Config{Path: path, MaxSize: 1000, MaxFiles: 3})
	s := l.Stream("stdout")
	const n = 200
	for i := range n {
		if _, err := fmt.Fprintf(s, "line %03d\n", i); err != nil {
			t.Fatal(err)
		}
	}
	names, _ := filepath.Glob(path + "*")
	if len(names) != 3 {
		t.Fatalf("files %v, want 3 (max-file)", names)
	}
	var all []entry
	for _, name := range []string{path + ".2", path + ".1", path} {
		st, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		// docker checks the size before each entry, so a file may pass
		// max-size by at most one entry.
		if st.Size() > 1000+100 {
			t.Errorf("%s has %d bytes, max-size is 1000", name, st.Size())
		}
		all = append(all, readJSONFile(t, name)...)
	}
	// The kept entries are the last ones, in order, without gaps.
	first := n - len(all)
	for i, e := range all {
		if want := fmt.Sprintf("line %03d\n", first+i); e.Log != want {
			t.Fatalf("entry %d is %q, want %q", i, e.Log, want)
		}
	}
	if len(all) < 20 {
		t.Errorf("only %d entries kept in 3 files of 1000 bytes", len(all))
	}
}

func TestRotationOneFileTruncates(t *testing.T) {
	l := open(t, Config{MaxSize: 300, MaxFiles: 1})
	s := l.Stream("stdout")
	for i := range 50 {
		fmt.Fprintf(s, "line %d\n", i)
	}
	if _, err := os.Stat(l.cfg.Path + ".1"); err == nil {
		t.Error("max-file 1 made a rotated file")
	}
	got := readJSONFile(t, l.cfg.Path)
	if len(got) == 0 || got[len(got)-1].Log != "line 49\n" {
		t.Errorf("after truncation the log holds %+v", got)
	}
	st, _ := os.Stat(l.cfg.Path)
	if st.Size() > 300+100 {
		t.Errorf("log has %d bytes, max-size is 300", st.Size())
	}
}

func TestReopen(t *testing.T) {
	l := open(t, Config{Format: CRI})
	s := l.Stream("stdout")
	fmt.Fprintf(s, "before\n")
	if err := os.Rename(l.cfg.Path, l.cfg.Path+".0"); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(s, "after\n")
	old, _ := os.ReadFile(l.cfg.Path + ".0")
	cur, _ := os.ReadFile(l.cfg.Path)
	if !strings.Contains(string(old), "before") || strings.Contains(string(old), "after") {
		t.Errorf("rotated file holds %q", old)
	}
	if !strings.Contains(string(cur), "after") || strings.Contains(string(cur), "before") {
		t.Errorf("reopened file holds %q", cur)
	}
}

func TestOpenBadConfig(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Path: filepath.Join(dir, "a"), Format: "syslog"}, `log format "syslog"`},
		{Config{}, "log path is empty"},
		{Config{Path: filepath.Join(dir, "b"), MaxSize: -1}, "must not be negative"},
	} {
		_, err := Open(c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%+v) = %v, want an error containing %q", c.cfg, err, c.want)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("a failed Open left files: %v", ents)
	}
}

// TestJSONTextMatchesEncodingJSON checks the hand-written escaper against
// encoding/json on tricky and random input.
func TestJSONTextMatchesEncodingJSON(t *testing.T) {
	cases := []string{"", "plain", "<a href=\"x\">&amp;</a>", "tab\tcr\rnl\nbs\\", "\x00\x01\x1f\x7f", "\b\f",
		"héllo wörld ☃ 😀", "\u2028\u2029", "bad \xff\xfe utf8 \xc3", "trunc \xe2\x82"}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		cases = append(cases, string(b))
	}
	for _, c := range cases {
		want, _ := json.Marshal(c)
		got := append([]byte{'"'}, appendJSONText(nil, []byte(c))...)
		got = append(got, '"')
		if string(got) != string(want) {
			t.Fatalf("escape %q: got %s, want %s", c, got, want)
		}
	}
}

// TestJSONFileAttrs: Config.Attrs go into every json-file entry, where
// docker's json-file driver puts them (after the stream, before the time).
func TestJSONFileAttrs(t *testing.T) {
	l := open(t, Config{Attrs: map[string]string{"tag": "web", "a": `q"x`}})
	if _, err := l.Stream("stdout").Write([]byte("one\ntwo\n")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(l.cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^\{"log":"(one|two)\\n","stream":"stdout","attrs":\{"a":"q\\"x","tag":"web"\},"time":"[^"]+"\}$`)
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if !re.MatchString(line) {
			t.Errorf("entry %s", line)
		}
	}
	readJSONFile(t, l.cfg.Path) // valid JSON, times that parse
}
