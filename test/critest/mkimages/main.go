// Command mkimages builds the images critest needs (test/critest/README.md)
// from a busybox root filesystem, an nginx tree and two small static
// programs that run.sh prepares, and pushes them to a registry on
// loopback under paths that mirror their canonical names
// (registry.k8s.io/pause:3.9 -> 127.0.0.1:PORT/pause:3.9), which hakod's
// per-registry hosts then map back. Images are single-platform OCI
// manifests built with go-containerregistry; layers are written from the
// directories as they are, hard links kept (busybox's applets are hard
// links: masking /bin/ls must not mask /bin/busybox).
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func main() {
	reg := flag.String("registry", "127.0.0.1:5000", "registry to push to")
	busybox := flag.String("busybox", "", "busybox root filesystem directory")
	nginx := flag.String("nginx", "", "nginx tree (binary, libraries, config) to add to busybox")
	pause := flag.String("pause", "", "static pause binary")
	nnp := flag.String("nnp", "", "static nonewprivs binary")
	flag.Parse()
	if *busybox == "" || *nginx == "" || *pause == "" || *nnp == "" {
		log.Fatal("mkimages: --busybox, --nginx, --pause and --nnp are required")
	}
	b := builder{reg: *reg}
	var group []byte
	base := b.dirLayer(*busybox)
	nginxLayer := b.dirLayer(*nginx)
	bb := func(cfg v1.Config, extra ...v1.Layer) v1.Image {
		return b.image(cfg, append([]v1.Layer{base}, extra...)...)
	}
	sh := v1.Config{Cmd: []string{"sh"}, Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}}
	withUser := func(u string) v1.Config { c := sh; c.User = u; return c }
	marker := func(name string) v1.Layer {
		return b.fileLayer(map[string]fileSpec{"/" + name: {data: []byte(name + "\n"), mode: 0o644}})
	}

	b.push(bb(sh), "registry.k8s.io/e2e-test-images/busybox:1.29-2")
	nginxCfg := sh
	nginxCfg.Cmd = []string{"nginx", "-g", "daemon off;"}
	nginxCfg.ExposedPorts = map[string]struct{}{"80/tcp": {}}
	nginxCfg.StopSignal = "SIGQUIT"
	b.push(bb(nginxCfg, nginxLayer), "registry.k8s.io/e2e-test-images/nginx:1.14-2")
	hostnet := nginxCfg
	hostnet.ExposedPorts = map[string]struct{}{"12003/tcp": {}}
	conf, err := os.ReadFile(filepath.Join(*nginx, "etc/nginx/nginx.conf"))
	check(err)
	conf = bytes.Replace(conf, []byte("listen 80;"), []byte("listen 12003;"), 1)
	b.push(bb(hostnet, nginxLayer, b.fileLayer(map[string]fileSpec{"/etc/nginx/nginx.conf": {data: conf, mode: 0o644}})),
		"gcr.io/k8s-staging-cri-tools/hostnet-nginx-amd64:latest")
	httpd := sh
	httpd.Cmd = []string{"httpd-foreground"}
	b.push(bb(httpd, b.fileLayer(map[string]fileSpec{
		"/usr/local/bin/httpd-foreground": {data: []byte("#!/bin/sh\necho \"httpd: starting busybox httpd on port 80\"\nmkdir -p /var/www\necho 'It works!' > /var/www/index.html\nexec httpd -f -p 80 -h /var/www\n"), mode: 0o755},
	})), "registry.k8s.io/e2e-test-images/httpd:2.4.39-4")
	nnpCfg := sh
	nnpCfg.Cmd = nil
	nnpCfg.Entrypoint = []string{"/usr/local/bin/nnp"}
	b.push(bb(nnpCfg, b.hostFileLayer(*nnp, "/usr/local/bin/nnp", 0o4755)), "registry.k8s.io/e2e-test-images/nonewprivs:1.3")

	pauseCfg := v1.Config{Entrypoint: []string{"/pause"}, User: "65535:65535"}
	pauseImg := b.image(pauseCfg, b.hostFileLayer(*pause, "/pause", 0o755))
	b.push(pauseImg, "registry.k8s.io/pause:3.9")
	b.push(pauseImg, "k8s.gcr.io/pause:3.9")
	pause36 := pauseCfg
	pause36.Labels = map[string]string{"io.hako.test": "sandbox-image"}
	b.push(b.image(pause36, b.hostFileLayer(*pause, "/pause", 0o755)), "registry.k8s.io/pause:3.6")

	const r = "gcr.io/k8s-staging-cri-tools/"
	b.push(bb(withUser("1002")), r+"test-image-user-uid:latest")
	b.push(bb(withUser("www-data")), r+"test-image-user-username:latest")
	b.push(bb(withUser("1003:1004")), r+"test-image-user-uid-group:latest")
	b.push(bb(withUser("www-data:1004")), r+"test-image-user-username-group:latest")
	group, err = os.ReadFile(filepath.Join(*busybox, "etc/group"))
	check(err)
	passwd, err := os.ReadFile(filepath.Join(*busybox, "etc/passwd"))
	check(err)
	b.push(bb(withUser("1000"), b.fileLayer(map[string]fileSpec{
		"/etc/passwd": {data: append(passwd, "default-user:x:1000:1000::/home/default-user:/bin/sh\n"...), mode: 0o644},
		"/etc/group":  {data: append(group, "default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n"...), mode: 0o644},
	})), r+"test-image-predefined-group:latest")
	for _, n := range []string{"1", "2", "3"} {
		b.push(bb(sh, marker("test-image-"+n)), r+"test-image-"+n+":latest")
	}
	tags := bb(sh, marker("test-image-tags"))
	for _, t := range []string{"1", "2", "3"} {
		b.push(tags, r+"test-image-tags:"+t)
	}
	b.push(bb(sh, marker("test-image-latest")), r+"test-image-latest:latest")
	b.push(bb(sh, marker("test-image-tag-test")), r+"test-image-tag:test")
	b.push(bb(sh, marker("test-image-tag-all")), r+"test-image-tag:all")
	for _, t := range []string{"1.35.0-glibc", "1-uclibc", "1", "1-glibc", "1-musl"} {
		b.push(bb(sh, marker("busybox-"+t)), "public.ecr.aws/docker/library/busybox:"+t)
	}
}

type builder struct{ reg string }

// mirrored is the reference on the loopback registry: the canonical
// name's path on it.
func (b builder) mirrored(ref string) string {
	_, path, _ := strings.Cut(ref, "/")
	return b.reg + "/" + path
}

func (b builder) push(img v1.Image, ref string) {
	r, err := name.ParseReference(b.mirrored(ref), name.Insecure)
	check(err)
	check(remote.Write(r, img))
	id, _ := img.ConfigName()
	fmt.Printf("pushed %s (%s)\n", ref, id.Hex[:12])
}

var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func (b builder) image(cfg v1.Config, layers ...v1.Layer) v1.Image {
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layers...)
	check(err)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	check(err)
	cf = cf.DeepCopy()
	cf.Config = cfg
	cf.Architecture, cf.OS, cf.Created = "amd64", "linux", v1.Time{Time: epoch}
	img, err = mutate.ConfigFile(img, cf)
	check(err)
	return img
}

// layer makes a gzip layer from a tar stream.
func layer(tarball_ []byte) v1.Layer {
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tarball_)), nil },
		tarball.WithMediaType(types.OCILayer))
	check(err)
	return l
}

// dirLayer tars a directory as it is: modes, owners, symlinks, hard links.
func (b builder) dirLayer(dir string) v1.Layer {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	links := map[uint64]string{}
	check(filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		target := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			if target, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(fi, target)
		if err != nil {
			return err
		}
		h.Name = rel
		if fi.IsDir() {
			h.Name += "/"
		}
		h.ModTime, h.AccessTime, h.ChangeTime = epoch, time.Time{}, time.Time{}
		h.Uname, h.Gname = "", ""
		h.Format = tar.FormatPAX
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().IsRegular() && st.Nlink > 1 {
			if first, ok := links[st.Ino]; ok {
				h.Typeflag, h.Linkname, h.Size = tar.TypeLink, first, 0
				return tw.WriteHeader(h)
			}
			links[st.Ino] = rel
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	}))
	check(tw.Close())
	return layer(buf.Bytes())
}

type fileSpec struct {
	data []byte
	mode int64
}

func (b builder) fileLayer(files map[string]fileSpec) v1.Layer {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for p, f := range files {
		p = strings.TrimPrefix(p, "/")
		for d := filepath.Dir(p); d != "." && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
		}
		_ = f
	}
	sorted := make([]string, 0, len(dirs))
	for d := range dirs {
		sorted = append(sorted, d)
	}
	sort.Strings(sorted)
	for _, d := range sorted {
		check(tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch}))
	}
	for p, f := range files {
		check(tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(p, "/"), Typeflag: tar.TypeReg, Mode: f.mode, Size: int64(len(f.data)), ModTime: epoch}))
		_, err := tw.Write(f.data)
		check(err)
	}
	check(tw.Close())
	return layer(buf.Bytes())
}

func (b builder) hostFileLayer(src, dst string, mode int64) v1.Layer {
	data, err := os.ReadFile(src)
	check(err)
	return b.fileLayer(map[string]fileSpec{dst: {data: data, mode: mode}})
}

func check(err error) {
	if err != nil {
		log.Fatal("mkimages: ", err)
	}
}
