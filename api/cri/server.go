// Package cri serves the Kubernetes Container Runtime Interface (CRI v1,
// k8s.io/cri-api) on hako's engine: the RuntimeService (pod sandboxes,
// containers, exec/attach/port-forward through a streaming server, stats,
// events) and the ImageService (pull, list, status, remove, fs info), over
// gRPC on a unix socket, for kubelet, crictl and critest.
//
// It translates and decides what the CRI asks; the engine runs: a pod
// sandbox is an engine Sandbox (pinned namespaces, see docs/cri.md for why
// no pause process), a container an engine container with a spec this
// package builds (spec.go) from the CRI's security context. Networking is
// a Network (CNI) the daemon hands in; without one, pods get loopback only.
// Errors are classified with errdefs below and mapped to gRPC codes here
// only (status.go).
package cri

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/hako-project/hako/engine"
	"github.com/hako-project/hako/image"
	"github.com/hako-project/hako/image/progress"
	"github.com/hako-project/hako/trace"
)

// Puller pulls images from registries (image/registry's Client).
type Puller interface {
	Pull(ctx context.Context, ref string, pf progress.Func) (*image.Image, error)
}

// Config configures the CRI server.
type Config struct {
	// Version is hakod's version, reported by Version.
	Version string
	// Puller pulls images (registry mirrors per registry are its concern).
	Puller Puller
	// Network attaches pods to networks (CNI); nil leaves every pod that
	// does not use the host's network with loopback only.
	Network Network
	// StreamAddress is where the exec/attach/port-forward server listens
	// (host:port; "127.0.0.1:0" picks a free port).
	StreamAddress string
	// SandboxImage runs the pause process of pods that share a PID
	// namespace (the only pods with one).
	SandboxImage string
	// Runtime is the OCI runtime of CRI containers ("" = the engine's
	// default); a pod's runtime_handler picks another.
	Runtime string
	// TraceAll traces every call, as the Docker API does with OTLP export.
	TraceAll bool
	Log      *slog.Logger
}

// Server is the CRI server. It is safe for concurrent use.
type Server struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	runtimeapi.UnimplementedImageServiceServer

	cfg    Config
	e      *engine.Engine
	images *image.Store
	log    *slog.Logger
	stream *streamServer
	events *eventHub
	cache  *cache

	// pullMu serialises pulls of one reference (concurrent kubelet pulls
	// of one image become one).
	pullMu sync.Mutex
	pulls  map[string]*pullCall
	// podMu serialises RunPodSandbox per pod name, so a retried request
	// does not make two.
	podMu sync.Mutex
}

// New returns a CRI server on the engine. Call Start to bring up the
// streaming server and Close to end it.
func New(e *engine.Engine, cfg Config) (*Server, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.StreamAddress == "" {
		cfg.StreamAddress = "127.0.0.1:0"
	}
	if cfg.SandboxImage == "" {
		cfg.SandboxImage = DefaultSandboxImage
	}
	s := &Server{cfg: cfg, e: e, images: e.Images(), log: cfg.Log, events: newEventHub(), cache: newCache(), pulls: map[string]*pullCall{}}
	st, err := newStreamServer(s, cfg.StreamAddress)
	if err != nil {
		return nil, err
	}
	s.stream = st
	go s.forwardEvents()
	return s, nil
}

// DefaultSandboxImage is the pause image of pods that share a PID
// namespace.
const DefaultSandboxImage = "registry.k8s.io/pause:3.10"

// Register adds the runtime and image services to a gRPC server.
func (s *Server) Register(g *grpc.Server) {
	runtimeapi.RegisterRuntimeServiceServer(g, s)
	runtimeapi.RegisterImageServiceServer(g, s)
}

// Listen opens the CRI's unix socket, mode 0660 and root's: the CRI gives
// root on the host to whoever reaches it.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return nil, fmt.Errorf("CRI socket directory: %w", err)
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("CRI socket %s: another daemon is listening there", path)
	}
	os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on the CRI socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, fmt.Errorf("CRI socket %s: %w", path, err)
	}
	return l, nil
}

// Serve serves CRI on l until ctx ends.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	g := grpc.NewServer(grpc.UnaryInterceptor(s.unaryInterceptor), grpc.StreamInterceptor(s.streamInterceptor),
		grpc.MaxRecvMsgSize(16<<20), grpc.MaxSendMsgSize(16<<20))
	s.Register(g)
	go func() {
		<-ctx.Done()
		stopped := make(chan struct{})
		go func() { g.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(3 * time.Second):
			g.Stop()
		}
	}()
	if err := g.Serve(l); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("CRI server: %w", err)
	}
	return nil
}

// Close stops the streaming server.
func (s *Server) Close() error {
	s.events.close()
	return s.stream.close()
}

// StreamURL is the streaming server's base address (for logs and tests).
func (s *Server) StreamURL() string { return s.stream.addr }

// unaryInterceptor traces a call when its metadata carries a traceparent
// (or every call with TraceAll), logs failures, and maps errors to gRPC
// status codes in one place.
func (s *Server) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	method := info.FullMethod[strings.LastIndex(info.FullMethod, "/")+1:]
	ctx, end := s.traceCall(ctx, method)
	resp, err := handler(ctx, req)
	end(err)
	if err != nil {
		s.log.Debug("CRI call failed", "method", method, "err", err)
		return nil, toStatus(err)
	}
	return resp, nil
}

func (s *Server) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := handler(srv, ss); err != nil {
		return toStatus(err)
	}
	return nil
}

// traceCall starts the call's span in the trace its caller named
// (metadata "traceparent", as W3C trace context crosses gRPC).
func (s *Server) traceCall(ctx context.Context, method string) (context.Context, func(error)) {
	tp := ""
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("traceparent"); len(v) > 0 {
			tp = v[0]
		}
	}
	if tp == "" && !s.cfg.TraceAll {
		return ctx, func(error) {}
	}
	tr, f, err := s.e.Traces().Open(tp)
	if tr == nil && s.cfg.TraceAll {
		tr, f, err = s.e.Traces().OpenNew()
	}
	if err != nil || tr == nil {
		return ctx, func(error) {}
	}
	ctx, span := trace.Start(trace.WithTracer(ctx, tr), "api.cri."+method)
	return ctx, func(err error) {
		span.End(err)
		f.Close()
	}
}
