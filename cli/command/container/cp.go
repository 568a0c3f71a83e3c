package container

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/docker/go-units"
	"github.com/hako-project/hako/cli/command"
	"github.com/hako-project/hako/internal/tarfs"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// docker cp's errors about the shape of source and destination.
var (
	errNotDirectory   = errors.New("not a directory")
	errDirNotExists   = errors.New("no such directory")
	errCannotCopyDir  = errors.New("cannot copy directory")
	errTooManySymlink = errors.New("too many symlinks")
)

// cpOptions are docker cp's.
type cpOptions struct {
	followLink, copyUIDGID, quiet bool
}

// NewCpCommand is `hako cp`: files between a container and the local
// filesystem, both ways, through the archive endpoints, with docker's
// rules for what goes where ("dir" vs "dir/" vs "dir/.", existing or not).
func NewCpCommand(cli *command.Cli) *cobra.Command {
	var opts cpOptions
	cmd := &cobra.Command{
		Use: `cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-
	hako cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH`,
		Short: "Copy files/folders between a container and the local filesystem",
		Long: `Copy files/folders between a container and the local filesystem

Use '-' as the source to read a tar archive from stdin
and extract it to a directory destination in a container.
Use '-' as the destination to stream a tar archive of a
container source to stdout.`,
		Args: command.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] == "" {
				return errors.New("source can not be empty")
			}
			if args[1] == "" {
				return errors.New("destination can not be empty")
			}
			if !cmd.Flag("quiet").Changed {
				opts.quiet = !cli.Out.IsTerminal()
			}
			srcCtr, srcPath := splitCpArg(args[0])
			dstCtr, dstPath := splitCpArg(args[1])
			switch {
			case srcCtr != "" && dstCtr != "":
				return errors.New("copying between containers is not supported")
			case srcCtr != "":
				return copyFromContainer(cmd.Context(), cli, srcCtr, srcPath, dstPath, opts)
			case dstCtr != "":
				return copyToContainer(cmd.Context(), cli, dstCtr, srcPath, dstPath, opts)
			}
			return errors.New("must specify at least one container source")
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&opts.copyUIDGID, "archive", "a", false, "Archive mode (copy all uid/gid information)")
	fs.BoolVarP(&opts.followLink, "follow-link", "L", false, "Always follow symbol link in SRC_PATH")
	fs.BoolVarP(&opts.quiet, "quiet", "q", false, "Suppress progress output during copy. Progress output is automatically suppressed if no terminal is attached")
	return cmd
}

// splitCpArg splits CONTAINER:PATH; a local path with a colon needs a
// "/" or "." in front, as with scp.
func splitCpArg(arg string) (ctr, path string) {
	if filepath.IsAbs(arg) {
		return "", arg
	}
	ctr, path, ok := strings.Cut(arg, ":")
	if !ok || strings.HasPrefix(ctr, ".") {
		return "", arg
	}
	return ctr, path
}

// copyInfo is docker's archive.CopyInfo: what a copy's source or
// destination is.
type copyInfo struct {
	path       string
	exists     bool
	isDir      bool
	rebaseName string
}

func hasTrailingSeparator(p string) bool { return strings.HasSuffix(p, "/") }
func specifiesCurrentDir(p string) bool  { return filepath.Base(p) == "." }
func assertsDirectory(p string) bool     { return hasTrailingSeparator(p) || specifiesCurrentDir(p) }

// preserveTrailing keeps the "/" or "/." filepath functions drop.
func preserveTrailing(cleaned, original string) string {
	if specifiesCurrentDir(original) && !specifiesCurrentDir(cleaned) {
		if !hasTrailingSeparator(cleaned) {
			cleaned += "/"
		}
		cleaned += "."
	}
	if hasTrailingSeparator(original) && !hasTrailingSeparator(cleaned) {
		cleaned += "/"
	}
	return cleaned
}

// splitPathDirEntry splits a path into its directory and last element,
// keeping "." for a path that ends in "/.".
func splitPathDirEntry(p string) (dir, base string) {
	cleaned := filepath.Clean(p)
	if specifiesCurrentDir(p) {
		cleaned += "/."
	}
	return filepath.Dir(cleaned), filepath.Base(cleaned)
}

// rebaseName is docker's GetRebaseName: when following a symlink changed
// the last element, the archive's entries must keep the name asked for.
func rebaseName(p, resolved string) (string, string) {
	if specifiesCurrentDir(p) && !specifiesCurrentDir(resolved) {
		resolved += "/."
	}
	if hasTrailingSeparator(p) && !hasTrailingSeparator(resolved) {
		resolved += "/"
	}
	if filepath.Base(p) != filepath.Base(resolved) {
		return resolved, filepath.Base(p)
	}
	return resolved, ""
}

func resolveLocalPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	return preserveTrailing(abs, p), nil
}

// validateOutputMode refuses devices and other irregular files as
// destinations.
func validateOutputMode(m os.FileMode) error {
	switch {
	case m&os.ModeDevice != 0:
		return errors.New("got a device")
	case m&os.ModeIrregular != 0:
		return errors.New("got an irregular file")
	}
	return nil
}

func validateOutputPath(p string) error {
	dir := filepath.Dir(filepath.Clean(p))
	if dir != "" && dir != "." {
		if _, err := os.Stat(dir); os.IsNotExist(err) {
			return fmt.Errorf("invalid output path: directory %q does not exist", dir)
		}
	}
	fi, err := os.Stat(p)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode().IsRegular() {
		return nil
	}
	if err := validateOutputMode(fi.Mode()); err != nil {
		return fmt.Errorf("invalid output path: %q must be a directory or a regular file: %w", p, err)
	}
	return nil
}

// countingReader counts the bytes of a copy for its summary line.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func copyFromContainer(ctx context.Context, cli *command.Cli, ctr, srcPath, dstPath string, opts cpOptions) error {
	if dstPath != "-" {
		p, err := resolveLocalPath(dstPath)
		if err != nil {
			return err
		}
		dstPath = p
	}
	if err := validateOutputPath(dstPath); err != nil {
		return err
	}
	api, err := cli.Client()
	if err != nil {
		return err
	}
	var rebase string
	if opts.followLink {
		st, err := api.ContainerStatPath(ctx, ctr, client.ContainerStatPathOptions{Path: srcPath})
		if err == nil && st.Stat.Mode&os.ModeSymlink != 0 {
			target := st.Stat.LinkTarget
			if !filepath.IsAbs(target) {
				parent, _ := splitPathDirEntry(srcPath)
				target = filepath.Join(parent, target)
			}
			srcPath, rebase = rebaseName(srcPath, target)
		}
	}
	res, err := api.CopyFromContainer(ctx, ctr, client.CopyFromContainerOptions{SourcePath: srcPath})
	if err != nil {
		return err
	}
	defer res.Content.Close()
	if dstPath == "-" {
		_, err := io.Copy(cli.Out, res.Content)
		return err
	}
	counted := &countingReader{r: res.Content}
	var content io.Reader = counted
	if rebase != "" {
		_, base := splitPathDirEntry(srcPath)
		content = rebaseArchive(content, base, rebase)
	}
	src := copyInfo{path: srcPath, exists: true, isDir: res.Stat.Mode.IsDir(), rebaseName: rebase}
	if err := copyTo(ctx, content, src, dstPath); err != nil {
		return err
	}
	if !opts.quiet {
		fmt.Fprintf(cli.Err, "Successfully copied %s to %s\n", units.HumanSizeWithPrecision(float64(counted.n.Load()), 3), dstPath)
	}
	return nil
}

// copyTo unpacks a container's archive at dstPath on this machine, as
// docker's archive.CopyTo: the destination may be missing (its parent
// must exist), a directory, or a file a single file replaces.
func copyTo(ctx context.Context, content io.Reader, src copyInfo, dstPath string) error {
	dst, err := destinationInfo(dstPath)
	if err != nil {
		return err
	}
	dir, prepared, err := prepareArchiveCopy(content, src, dst)
	if err != nil {
		return err
	}
	defer prepared.Close()
	d, err := os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer d.Close()
	// The container's tar is unpacked with the destination as its root:
	// its names and symlinks cannot lead elsewhere on this machine.
	return tarfs.Extract(ctx, d, prepared, tarfs.ExtractOptions{NoOverwriteDirNonDir: true, NoChown: true})
}

// destinationInfo is docker's CopyInfoDestinationPath: symlinks at the
// destination are followed (at most 10), a missing destination needs an
// existing parent directory.
func destinationInfo(p string) (copyInfo, error) {
	fi, err := os.Lstat(p)
	if err == nil && fi.Mode()&os.ModeSymlink == 0 {
		return copyInfo{path: p, exists: true, isDir: fi.IsDir()}, nil
	}
	for n := 0; err == nil && fi.Mode()&os.ModeSymlink != 0; n++ {
		if n > 10 {
			return copyInfo{}, fmt.Errorf("%w in %s", errTooManySymlink, p)
		}
		target, rerr := os.Readlink(p)
		if rerr != nil {
			return copyInfo{}, rerr
		}
		if !filepath.IsAbs(target) {
			parent, _ := splitPathDirEntry(p)
			target = filepath.Join(parent, target)
		}
		p = target
		fi, err = os.Lstat(p)
	}
	if err != nil {
		if !os.IsNotExist(err) {
			return copyInfo{}, err
		}
		parent, _ := splitPathDirEntry(p)
		pfi, err := os.Stat(parent)
		if err != nil {
			return copyInfo{}, err
		}
		if !pfi.IsDir() {
			return copyInfo{}, errNotDirectory
		}
		return copyInfo{path: p}, nil
	}
	return copyInfo{path: p, exists: true, isDir: fi.IsDir()}, nil
}

// prepareArchiveCopy is docker's PrepareArchiveCopy: where to unpack and
// how to rename the archive's top entry so the copy lands at the
// destination's name.
func prepareArchiveCopy(content io.Reader, src, dst copyInfo) (string, io.ReadCloser, error) {
	dstDir, dstBase := splitPathDirEntry(dst.path)
	_, srcBase := splitPathDirEntry(src.path)
	if src.rebaseName != "" {
		srcBase = src.rebaseName
	}
	switch {
	case dst.exists && dst.isDir:
		return dst.path, io.NopCloser(content), nil
	case dst.exists && src.isDir:
		return "", nil, errCannotCopyDir
	case dst.exists, src.isDir:
		return dstDir, rebaseArchive(content, srcBase, dstBase), nil
	case assertsDirectory(dst.path):
		return "", nil, errDirNotExists
	}
	return dstDir, rebaseArchive(content, srcBase, dstBase), nil
}

// rebaseArchive renames the entries of a tar from oldBase to newBase (the
// first occurrence in each name, as docker does).
func rebaseArchive(content io.Reader, oldBase, newBase string) io.ReadCloser {
	if oldBase == "/" {
		oldBase = ""
	}
	pr, pw := io.Pipe()
	go func() {
		tr := tar.NewReader(content)
		tw := tar.NewWriter(pw)
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				pw.CloseWithError(tw.Close())
				return
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			hdr.Format = tar.FormatPAX
			hdr.Name = strings.Replace(hdr.Name, oldBase, newBase, 1)
			if hdr.Typeflag == tar.TypeLink {
				hdr.Linkname = strings.Replace(hdr.Linkname, oldBase, newBase, 1)
			}
			if err := tw.WriteHeader(hdr); err != nil {
				pw.CloseWithError(err)
				return
			}
			if _, err := io.Copy(tw, tr); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
	}()
	return pr
}

func copyToContainer(ctx context.Context, cli *command.Cli, ctr, srcPath, dstPath string, opts cpOptions) error {
	if srcPath != "-" {
		p, err := resolveLocalPath(srcPath)
		if err != nil {
			return err
		}
		srcPath = p
	}
	api, err := cli.Client()
	if err != nil {
		return err
	}
	dst := copyInfo{path: dstPath}
	if st, err := api.ContainerStatPath(ctx, ctr, client.ContainerStatPathOptions{Path: dstPath}); err == nil {
		if st.Stat.Mode&os.ModeSymlink != 0 {
			target := st.Stat.LinkTarget
			if !filepath.IsAbs(target) {
				parent, _ := splitPathDirEntry(dstPath)
				target = filepath.Join(parent, target)
			}
			dst.path = target
			st, err = api.ContainerStatPath(ctx, ctr, client.ContainerStatPathOptions{Path: target})
		}
		if err == nil {
			if err := validateOutputMode(st.Stat.Mode); err != nil {
				return fmt.Errorf(`destination "%s:%s" must be a directory or a regular file: %w`, ctr, dstPath, err)
			}
			dst.exists, dst.isDir = true, st.Stat.Mode.IsDir()
		}
	}
	var content io.Reader
	var resolvedDst string
	if srcPath == "-" {
		if !dst.isDir {
			return fmt.Errorf(`destination "%s:%s" must be a directory`, ctr, dstPath)
		}
		content, resolvedDst = cli.In, dst.path
	} else {
		src, err := sourceInfo(srcPath, opts.followLink)
		if err != nil {
			return err
		}
		archive := tarSource(ctx, src)
		defer archive.Close()
		dir, prepared, err := prepareArchiveCopy(archive, src, dst)
		if err != nil {
			return err
		}
		defer prepared.Close()
		content, resolvedDst = prepared, dir
	}
	counted := &countingReader{r: content}
	_, err = api.CopyToContainer(ctx, ctr, client.CopyToContainerOptions{
		DestinationPath: resolvedDst, Content: counted, CopyUIDGID: opts.copyUIDGID,
	})
	if err != nil {
		return err
	}
	if !opts.quiet {
		fmt.Fprintf(cli.Err, "Successfully copied %s to %s:%s\n", units.HumanSizeWithPrecision(float64(counted.n.Load()), 3), ctr, dst.path)
	}
	return nil
}

// sourceInfo is docker's CopyInfoSourcePath: symlinks in the parent are
// resolved; the last element only with -L.
func sourceInfo(p string, follow bool) (copyInfo, error) {
	var resolved, rebase string
	if follow {
		r, err := filepath.EvalSymlinks(p)
		if err != nil {
			return copyInfo{}, err
		}
		resolved, rebase = rebaseName(p, r)
	} else {
		dir, base := filepath.Split(p)
		rdir, err := filepath.EvalSymlinks(dir)
		if err != nil {
			return copyInfo{}, err
		}
		resolved = rdir + "/" + base
		if hasTrailingSeparator(p) && filepath.Base(p) != filepath.Base(resolved) {
			rebase = filepath.Base(p)
		}
	}
	fi, err := os.Lstat(resolved)
	if err != nil {
		return copyInfo{}, err
	}
	return copyInfo{path: resolved, exists: true, isDir: fi.IsDir(), rebaseName: rebase}, nil
}

// tarSource tars a local source as docker's TarResource does: the last
// element and, for a directory, everything below it, named by that
// element (or the rebase name).
func tarSource(ctx context.Context, src copyInfo) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		dir, base := splitPathDirEntry(src.path)
		name := base
		if src.rebaseName != "" {
			name = src.rebaseName
		}
		d, err := os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			pw.CloseWithError(err)
			return
		}
		defer d.Close()
		tw := tarfs.NewWriter(ctx, pw)
		if err := tw.Add(int(d.Fd()), base, name); err != nil {
			pw.CloseWithError(err)
			return
		}
		pw.CloseWithError(tw.Close())
	}()
	return pr
}
