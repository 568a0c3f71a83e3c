package layer

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	stdgzip "compress/gzip"

	"github.com/hako-project/hako/errdefs"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Compression is the encoding of a layer blob.
type Compression int

const (
	Uncompressed Compression = iota
	Gzip
	Zstd
)

func (c Compression) String() string {
	switch c {
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	default:
		return "none"
	}
}

// Docker's schema2 layer media types; OCI's are in ocispec.
const (
	MediaTypeDockerLayer     = "application/vnd.docker.image.rootfs.diff.tar"
	MediaTypeDockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerLayerZstd = "application/vnd.docker.image.rootfs.diff.tar.zstd"
	// MediaTypeDockerForeign is a non-distributable layer; we treat it as gzip.
	MediaTypeDockerForeign = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
)

// IsLayerMediaType reports whether mt is a layer type hako can unpack.
func IsLayerMediaType(mt string) bool {
	switch mt {
	case ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerZstd,
		ocispec.MediaTypeImageLayerNonDistributable, ocispec.MediaTypeImageLayerNonDistributableGzip, //nolint:staticcheck // still found in the wild
		ocispec.MediaTypeImageLayerNonDistributableZstd, //nolint:staticcheck
		MediaTypeDockerLayer, MediaTypeDockerLayerGzip, MediaTypeDockerLayerZstd, MediaTypeDockerForeign:
		return true
	}
	return false
}

// OCIMediaType is the OCI layer media type for c.
func OCIMediaType(c Compression) string {
	switch c {
	case Gzip:
		return ocispec.MediaTypeImageLayerGzip
	case Zstd:
		return ocispec.MediaTypeImageLayerZstd
	default:
		return ocispec.MediaTypeImageLayer
	}
}

var (
	gzipMagic = []byte{0x1f, 0x8b, 0x08}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// Detect peeks at br to tell the compression from the magic bytes. Media
// types lie often enough (docker load accepts both) that the bytes decide.
func Detect(br *bufio.Reader) (Compression, error) {
	head, err := br.Peek(4)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return Uncompressed, fmt.Errorf("read layer header: %w", err)
	}
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		return Gzip, nil
	case bytes.HasPrefix(head, zstdMagic):
		return Zstd, nil
	}
	return Uncompressed, nil
}

// Decompress returns the tar stream inside r and the compression found.
func Decompress(r io.Reader) (io.ReadCloser, Compression, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	c, err := Detect(br)
	if err != nil {
		return nil, c, err
	}
	switch c {
	case Gzip:
		// Go 1.26's inflate is faster than klauspost's (measured in
		// bench/pull); klauspost stays for compression and zstd.
		zr, err := stdgzip.NewReader(br)
		if err != nil {
			return nil, c, fmt.Errorf("%w: gzip layer: %v", errdefs.ErrInvalid, err)
		}
		return zr, c, nil
	case Zstd:
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, c, fmt.Errorf("%w: zstd layer: %v", errdefs.ErrInvalid, err)
		}
		return zstdCloser{zr}, c, nil
	}
	return io.NopCloser(br), c, nil
}

type zstdCloser struct{ *zstd.Decoder }

func (z zstdCloser) Close() error { z.Decoder.Close(); return nil }

// Compress wraps w so that what is written to the result is stored with c.
// The gzip header carries no name or time, so equal input gives equal bytes.
func Compress(w io.Writer, c Compression) (io.WriteCloser, error) {
	switch c {
	case Gzip:
		return gzip.NewWriterLevel(w, gzip.DefaultCompression)
	case Zstd:
		return zstd.NewWriter(w, zstd.WithEncoderConcurrency(1))
	}
	return nopWriteCloser{w}, nil
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
