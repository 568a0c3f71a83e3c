// Command pull benchmarks image pull + unpack from a local registry: hako's
// image library against dockerd (Debian docker.io), in one run, paired.
//
//	go build -o /tmp/pullbench ./bench/pull && sudo /tmp/pullbench run
//
// "run" generates a deterministic ~200 MB, 5-layer image and a 1 MB
// one-layer image, pushes them to Debian's docker-registry on loopback,
// starts dockerd on its own root and socket, then pulls each image with
// hako (this binary's "pull" subcommand: a fresh process and store per
// pull) and with dockerd (its API, so no CLI start-up is counted),
// alternating which goes first, and prints medians and ratios. It then
// measures single-core gzip decompression and disk write throughput on the
// same layers and says which limit binds hako's pull.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/hako-project/hako/image"
	"github.com/hako-project/hako/image/registry"
	"github.com/hako-project/hako/test/imagetest"
	kgzip "github.com/klauspost/compress/gzip"
	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: pull run [flags] | pull pull -root DIR -ref REF | pull decompress FILE... | pull disk -dir DIR -bytes N")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = runBench(os.Args[2:])
	case "pull":
		err = pullOnce(os.Args[2:])
	case "decompress":
		err = decompress(os.Args[2:])
	case "disk":
		err = disk(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pull bench:", err)
		os.Exit(1)
	}
}

// pullOnce is the driver: one pull with hako's library into a new store.
func pullOnce(args []string) error {
	fs := flag.NewFlagSet("pull", flag.ExitOnError)
	root := fs.String("root", "", "state root")
	ref := fs.String("ref", "", "image reference")
	fs.Parse(args)
	ctx := context.Background()
	s, err := image.Open(ctx, image.Options{Root: *root, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	defer s.Close()
	c := registry.New(s, registry.Options{ConfigDir: *root})
	start := time.Now()
	if _, err := c.Pull(ctx, *ref, nil); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]float64{"seconds": time.Since(start).Seconds()})
}

// genLayer makes a deterministic layer of about size bytes: files of text
// (compresses ~3-4x, like scripts and docs) and of random bytes (like
// compressed assets), half and half.
func genLayer(seed uint64, size int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	words := strings.Fields("the quick brown fox jumps over a lazy dog while container images unpack layers into overlay snapshots " +
		"function return error value string int64 struct package import const var if else for range go defer select")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mt := time.Unix(1700000000, 0)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: fmt.Sprintf("layer%d/", seed), Mode: 0o755, ModTime: mt})
	written, i := 0, 0
	for written < size {
		n := 64<<10 + r.IntN(384<<10)
		data := make([]byte, n)
		if i%2 == 0 {
			var b strings.Builder
			for b.Len() < n {
				b.WriteString(words[r.IntN(len(words))])
				if r.IntN(12) == 0 {
					b.WriteByte('\n')
				} else {
					b.WriteByte(' ')
				}
			}
			copy(data, b.String())
		} else {
			for j := 0; j+8 <= n; j += 8 {
				v := r.Uint64()
				for k := 0; k < 8; k++ {
					data[j+k] = byte(v >> (8 * k))
				}
			}
		}
		dir := fmt.Sprintf("layer%d/d%02d/", seed, i/50)
		if i%50 == 0 {
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: mt})
		}
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("%sf%04d", dir, i), Mode: 0o644, Size: int64(n), ModTime: mt})
		tw.Write(data)
		written += n
		i++
	}
	tw.Close()
	return buf.Bytes()
}

func buildImage(layers [][]byte) (v1.Image, error) {
	img := empty.Image
	for _, l := range layers {
		data := l
		ly, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
			tarball.WithCompressionLevel(gzip.DefaultCompression))
		if err != nil {
			return nil, err
		}
		if img, err = mutate.AppendLayers(img, ly); err != nil {
			return nil, err
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Created = v1.Time{Time: time.Unix(1700000000, 0).UTC()}
	cf.Config.Cmd = []string{"/bin/true"}
	return mutate.ConfigFile(img, cf)
}

type imageInfo struct {
	ref                      string
	compressed, uncompressed int64
	blobPaths                []string
}

func pushImage(reg *imagetest.Registry, repo string, layers [][]byte) (imageInfo, error) {
	img, err := buildImage(layers)
	if err != nil {
		return imageInfo{}, err
	}
	info := imageInfo{ref: reg.Host + "/" + repo + ":latest"}
	r, err := name.ParseReference(info.ref)
	if err != nil {
		return info, err
	}
	if err := remote.Write(r, img); err != nil {
		return info, fmt.Errorf("push %s: %w", info.ref, err)
	}
	ls, _ := img.Layers()
	for i, l := range ls {
		sz, _ := l.Size()
		d, _ := l.Digest()
		info.compressed += sz
		info.uncompressed += int64(len(layers[i]))
		info.blobPaths = append(info.blobPaths, reg.BlobPath(d.String()))
	}
	return info, nil
}

// dockerAPI talks to dockerd over its unix socket.
type dockerAPI struct{ c *http.Client }

func newDockerAPI(host string) dockerAPI {
	sock := strings.TrimPrefix(host, "unix://")
	return dockerAPI{c: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}}
}

func (d dockerAPI) pull(ref string) (time.Duration, error) {
	i := strings.LastIndex(ref, ":")
	q := url.Values{"fromImage": {ref[:i]}, "tag": {ref[i+1:]}}
	start := time.Now()
	resp, err := d.c.Post("http://docker/images/create?"+q.Encode(), "", nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	el := time.Since(start)
	if resp.StatusCode != 200 || bytes.Contains(body, []byte(`"error"`)) {
		return 0, fmt.Errorf("docker pull %s: %s: %s", ref, resp.Status, tailStr(string(body), 500))
	}
	return el, nil
}

func (d dockerAPI) remove(ref string) error {
	req, _ := http.NewRequest(http.MethodDelete, "http://docker/images/"+url.PathEscape(ref)+"?force=1", nil)
	resp, err := d.c.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("docker rmi %s: %s", ref, resp.Status)
	}
	return nil
}

func tailStr(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func hakoPull(self, work, ref string) (time.Duration, error) {
	root, err := os.MkdirTemp(work, "hako-root-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(root)
	out, err := exec.Command(self, "pull", "-root", root, "-ref", ref).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return 0, fmt.Errorf("hako pull: %w: %s", err, ee.Stderr)
		}
		return 0, err
	}
	var res map[string]float64
	if err := json.Unmarshal(out, &res); err != nil {
		return 0, fmt.Errorf("hako pull output %q: %w", out, err)
	}
	return time.Duration(res["seconds"] * float64(time.Second)), nil
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration{}, ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func mb(n int64) float64 { return float64(n) / 1e6 }

func runBench(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	rounds := fs.Int("rounds", 5, "paired rounds per image")
	nLayers := fs.Int("layers", 5, "layers of the big image")
	layerMB := fs.Int("layer-mb", 40, "uncompressed MB per layer")
	workFlag := fs.String("work", "/var/tmp", "directory for registry, stores and dockerd (same disk for all)")
	fs.Parse(args)
	if os.Geteuid() != 0 {
		return fmt.Errorf("must run as root (dockerd, overlay, chown)")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp(*workFlag, "hako-pull-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	fmt.Printf("generating %d layers of %d MB...\n", *nLayers, *layerMB)
	var big [][]byte
	for i := 0; i < *nLayers; i++ {
		big = append(big, genLayer(uint64(i+1), *layerMB<<20))
	}
	small := [][]byte{genLayer(100, 1<<20)}
	reg, err := imagetest.StartRegistryProcess(filepath.Join(work, "registry"), imagetest.RegistryOptions{})
	if err != nil {
		return err
	}
	defer reg.Stop()
	bigInfo, err := pushImage(reg, "bench/big", big)
	if err != nil {
		return err
	}
	smallInfo, err := pushImage(reg, "bench/small", small)
	if err != nil {
		return err
	}
	big = nil
	fmt.Printf("big image: %d layers, %.1f MB uncompressed, %.1f MB compressed (gzip)\n", *nLayers, mb(bigInfo.uncompressed), mb(bigInfo.compressed))
	fmt.Printf("small image: 1 layer, %.2f MB uncompressed, %.2f MB compressed\n", mb(smallInfo.uncompressed), mb(smallInfo.compressed))

	fmt.Println("starting dockerd (Debian docker.io) on its own root and socket...")
	d, err := imagetest.StartDockerdProcess()
	if err != nil {
		return err
	}
	defer d.Stop()
	api := newDockerAPI(d.Host)
	ver, _ := d.Docker(context.Background(), "version", "--format", "{{.Server.Version}}")

	results := map[string][2][]time.Duration{}
	for _, img := range []imageInfo{smallInfo, bigInfo} {
		var hs, ds []time.Duration
		for r := 0; r < *rounds; r++ {
			order := []string{"hako", "docker"}
			if r%2 == 1 {
				order = []string{"docker", "hako"}
			}
			for _, who := range order {
				unix.Sync()
				if who == "hako" {
					el, err := hakoPull(self, work, img.ref)
					if err != nil {
						return err
					}
					hs = append(hs, el)
				} else {
					el, err := api.pull(img.ref)
					if err != nil {
						return err
					}
					ds = append(ds, el)
					if err := api.remove(img.ref); err != nil {
						return err
					}
				}
			}
			fmt.Printf("  %s round %d: hako %v docker %v\n", img.ref[strings.Index(img.ref, "/")+1:], r+1, hs[len(hs)-1].Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond))
		}
		results[img.ref] = [2][]time.Duration{hs, ds}
	}

	// Limits, measured on the same layer blobs.
	out, err := exec.Command(self, append([]string{"decompress"}, bigInfo.blobPaths...)...).Output()
	if err != nil {
		return fmt.Errorf("decompress measurement: %w", err)
	}
	var dec map[string]float64
	json.Unmarshal(out, &dec)
	diskDir := filepath.Join(work, "disk")
	out, err = exec.Command(self, "disk", "-dir", diskDir, "-bytes", fmt.Sprint(bigInfo.uncompressed)).Output()
	if err != nil {
		return fmt.Errorf("disk measurement: %w", err)
	}
	var dsk map[string]float64
	json.Unmarshal(out, &dsk)

	fmt.Printf("\n== pull + unpack from a local registry, %d paired rounds, dockerd %s, %d cores ==\n", *rounds, strings.TrimSpace(ver), runtime.NumCPU())
	for _, img := range []imageInfo{smallInfo, bigInfo} {
		r := results[img.ref]
		h, dk := median(r[0]), median(r[1])
		fmt.Printf("%-12s hako median %8v (%6.1f MB/s)   docker median %8v (%6.1f MB/s)   docker/hako time ratio %.2fx\n",
			img.ref[strings.Index(img.ref, "/")+1:], h.Round(time.Millisecond), mb(img.uncompressed)/h.Seconds(),
			dk.Round(time.Millisecond), mb(img.uncompressed)/dk.Seconds(), dk.Seconds()/h.Seconds())
	}
	r := results[bigInfo.ref]
	h, dk := median(r[0]), median(r[1])
	ratio := dk.Seconds() / h.Seconds()
	verdict := "MET"
	if ratio < 1.5 {
		verdict = "NOT MET"
	}
	fmt.Printf("throughput ratio on the 200 MB image: hako %.2fx docker (target >= 1.5x: %s)\n", ratio, verdict)
	cores := float64(runtime.NumCPU())
	if float64(*nLayers) < cores {
		cores = float64(*nLayers)
	}
	u := mb(bigInfo.uncompressed)
	decomp1 := u / dec["stdlib_mbps"]
	decompN := decomp1 / cores
	// hako fsyncs the compressed blobs and leaves the unpacked files to the
	// page cache (as dockerd does), so the disk bound is both writes.
	diskT := mb(bigInfo.compressed)/dsk["write_sync_mbps"] + u/dsk["write_cache_mbps"]
	fmt.Printf("\nlimits for %.0f MB uncompressed (%.0f MB compressed):\n", u, mb(bigInfo.compressed))
	fmt.Printf("  gzip decompression on one core: Go stdlib %.0f MB/s (hako, and dockerd without unpigz); klauspost %.0f MB/s\n", dec["stdlib_mbps"], dec["klauspost_mbps"])
	fmt.Printf("    -> %.2f s on 1 core, %.2f s on %.0f cores\n", decomp1, decompN, cores)
	fmt.Printf("  disk: files written %.0f MB/s with syncfs, %.0f MB/s to the page cache\n", dsk["write_sync_mbps"], dsk["write_cache_mbps"])
	fmt.Printf("    -> %.2f s (compressed blobs synced + unpacked files cached)\n", diskT)
	bind := "decompression (CPU)"
	limit := decompN
	if diskT > decompN {
		bind, limit = "disk", diskT
	}
	fmt.Printf("binding limit: %s, %.2f s; hako's pull takes %.2f s = %.0f%% of the way to that limit\n", bind, limit, h.Seconds(), 100*limit/h.Seconds())
	return nil
}

// decompress measures single-core gzip decompression of the given blobs
// with the Go standard library (what hako and dockerd use) and
// klauspost/compress.
func decompress(paths []string) error {
	runtime.GOMAXPROCS(1)
	var blobs [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		blobs = append(blobs, b)
	}
	measure := func(newReader func(io.Reader) (io.Reader, error)) (float64, error) {
		var out int64
		start := time.Now()
		for _, b := range blobs {
			zr, err := newReader(bytes.NewReader(b))
			if err != nil {
				return 0, err
			}
			n, err := io.Copy(io.Discard, zr)
			if err != nil {
				return 0, err
			}
			out += n
		}
		return mb(out) / time.Since(start).Seconds(), nil
	}
	k, err := measure(func(r io.Reader) (io.Reader, error) { return kgzip.NewReader(r) })
	if err != nil {
		return err
	}
	s, err := measure(func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) })
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]float64{"klauspost_mbps": k, "stdlib_mbps": s})
}

// disk measures writing n bytes as files of unpack-like sizes, to the page
// cache and through to the disk (syncfs).
func disk(args []string) error {
	fs := flag.NewFlagSet("disk", flag.ExitOnError)
	dir := fs.String("dir", "", "directory")
	n := fs.Int64("bytes", 200<<20, "bytes")
	fs.Parse(args)
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(*dir)
	buf := make([]byte, 256<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	unix.Sync()
	start := time.Now()
	var written int64
	for i := 0; written < *n; i++ {
		f, err := os.Create(filepath.Join(*dir, fmt.Sprint(i)))
		if err != nil {
			return err
		}
		f.Write(buf)
		f.Close()
		written += int64(len(buf))
	}
	cache := time.Since(start)
	d, err := os.Open(*dir)
	if err != nil {
		return err
	}
	unix.Syncfs(int(d.Fd()))
	d.Close()
	total := time.Since(start)
	return json.NewEncoder(os.Stdout).Encode(map[string]float64{
		"write_cache_mbps": mb(written) / cache.Seconds(),
		"write_sync_mbps":  mb(written) / total.Seconds(),
	})
}
