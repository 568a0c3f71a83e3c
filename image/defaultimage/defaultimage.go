// Package defaultimage builds hako's offline default image: a small busybox
// image made from the host's statically linked busybox (Debian's
// busybox-static), so hako can run containers on a machine that reaches no
// registry. The image is deterministic: the same busybox binary always
// gives the same layer, config and manifest digests.
package defaultimage

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"

	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/image"
)

const (
	// Name is the stable name the default image is stored under.
	Name = "hako.local/busybox:latest"
	// DefaultBusybox is where Debian's busybox-static installs it.
	DefaultBusybox = "/bin/busybox"
)

// Created is the fixed creation time of the image (and the mtime of every
// file in it), which keeps its digests stable.
var Created = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Options adjust Build.
type Options struct {
	// Busybox is the static busybox binary (DefaultBusybox if empty).
	Busybox string
	// Name overrides the image name (Name if empty).
	Name string
}

const passwd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n"
const group = "root:x:0:\nnobody:x:65534:\n"

// Build makes the default image from the host's busybox and stores it in s
// under Name (or opts.Name). Building again gives the same image.
func Build(ctx context.Context, s *image.Store, opts Options) (*image.Image, error) {
	if opts.Busybox == "" {
		opts.Busybox = DefaultBusybox
	}
	if opts.Name == "" {
		opts.Name = Name
	}
	rootfs, err := Rootfs(ctx, opts.Busybox)
	if err != nil {
		return nil, err
	}
	img, err := s.ImportRootfs(ctx, bytes.NewReader(rootfs), image.ImportOptions{
		Ref:     opts.Name,
		Cmd:     []string{"sh"},
		Env:     []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Created: Created,
		Comment: "hako default image from " + opts.Busybox,
	})
	if err != nil {
		return nil, fmt.Errorf("build default image: %w", err)
	}
	return img, nil
}

// Applets lists the applets busybox was built with, sorted.
func Applets(ctx context.Context, busybox string) ([]string, error) {
	out, err := exec.CommandContext(ctx, busybox, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("list applets of %s: %w", busybox, err)
	}
	var applets []string
	for _, a := range strings.Fields(string(out)) {
		if a == "busybox" || strings.ContainsAny(a, "/.") {
			continue
		}
		applets = append(applets, a)
	}
	sort.Strings(applets)
	if len(applets) == 0 {
		return nil, fmt.Errorf("%s lists no applets", busybox)
	}
	return applets, nil
}

// checkStatic refuses a dynamically linked busybox: the image has no
// libc for it.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%w: %s is not an ELF binary: %v", errdefs.ErrInvalid, path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%w: %s is dynamically linked; install busybox-static", errdefs.ErrInvalid, path)
		}
	}
	return nil
}

// Rootfs returns the image's root filesystem as an uncompressed tar: the
// directories of a minimal Linux tree, /bin/busybox with every applet as a
// hard link to it in /bin, and /etc/passwd and /etc/group with root and
// nobody.
func Rootfs(ctx context.Context, busybox string) ([]byte, error) {
	if err := checkStatic(busybox); err != nil {
		return nil, err
	}
	bin, err := os.ReadFile(busybox)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", busybox, err)
	}
	applets, err := Applets(ctx, busybox)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := func(h *tar.Header) error {
		h.ModTime, h.Format = Created, tar.FormatPAX
		h.Uname, h.Gname = "root", "root"
		return tw.WriteHeader(h)
	}
	dirs := []struct {
		name string
		mode int64
	}{
		{"bin/", 0o755}, {"dev/", 0o755}, {"etc/", 0o755}, {"home/", 0o755}, {"proc/", 0o755},
		{"root/", 0o700}, {"sys/", 0o755}, {"tmp/", 0o1777}, {"usr/", 0o755}, {"usr/bin/", 0o755},
		{"usr/sbin/", 0o755}, {"var/", 0o755}, {"var/tmp/", 0o1777},
	}
	for _, d := range dirs {
		if err := hdr(&tar.Header{Typeflag: tar.TypeDir, Name: d.name, Mode: d.mode}); err != nil {
			return nil, err
		}
	}
	if err := hdr(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: int64(len(bin))}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(bin); err != nil {
		return nil, err
	}
	for _, a := range applets {
		if err := hdr(&tar.Header{Typeflag: tar.TypeLink, Name: "bin/" + a, Linkname: "bin/busybox", Mode: 0o755}); err != nil {
			return nil, err
		}
	}
	for _, f := range []struct{ name, body string }{{"etc/group", group}, {"etc/passwd", passwd}} {
		if err := hdr(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: 0o644, Size: int64(len(f.body))}); err != nil {
			return nil, err
		}
		if _, err := io.WriteString(tw, f.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
