# hako: build, demo and test. `make help` lists the targets.
export PATH := $(PATH):/usr/local/go/bin
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# Static binaries: the runtime starts once per container operation and its
# init re-executes it, so not loading libc and libseccomp through ld.so
# halves its start-up (bench/runtime).
TAGS     := netgo osusergo
LDFLAGS  := -s -w -X main.version=$(VERSION) -extldflags -static
# hako-runtime links libseccomp (cgo, static); the others are pure Go.
BINARIES := hako-runtime hakod hako-shim hako-init hako
STATICCHECK ?= v0.8.2
# make install: where the binaries, the docs and hakod's systemd unit go.
# DESTDIR is prepended to each (packaging); the unit names BINDIR and
# DOCDIR without it.
PREFIX   ?= /usr/local
BINDIR   ?= $(PREFIX)/bin
DOCDIR   ?= $(PREFIX)/share/doc/hako
UNITDIR  ?= /etc/systemd/system

.PHONY: all build install uninstall deps demo demo-runtime test unit gotest validation clitest-hakod peers bench-runtime bench-shim lint help clean

all: build

help:
	@echo "make demo        build, start hakod, run a container from the offline default image with hako run --trace"
	@echo "make demo-runtime  build, then run a busybox bundle with hako-runtime alone and show its step trace"
	@echo "make test        install what the tests need, then run every test suite (what CI runs)"
	@echo "make build       build bin/$(BINARIES)"
	@echo "make install     build, then install the binaries in BINDIR ($(BINDIR)), the docs and hakod's systemd unit"
	@echo "make unit        unit tests (no root needed)"
	@echo "make gotest      every Go test, integration included (root: real containers)"
	@echo "make validation  the OCI runtime-tools validation suite against bin/hako-runtime"
	@echo "make critest     critest (cri-tools) against hakod's CRI, offline"
	@echo "make bench-runtime  hako-runtime vs runc vs crun"

build: $(addprefix bin/,$(BINARIES))

bin/hako-runtime: FORCE
	CGO_ENABLED=1 $(GO) build -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $@ ./cmd/hako-runtime

bin/%: FORCE
	CGO_ENABLED=0 $(GO) build -tags '$(TAGS)' -ldflags '-s -w -X main.version=$(VERSION)' -o $@ ./cmd/$*

FORCE:

# The binaries stay together: hakod finds hako-shim, hako-runtime and
# hako-init beside its own executable.
install: build
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DOCDIR) $(DESTDIR)$(UNITDIR)
	install -m 0755 $(addprefix bin/,$(BINARIES)) $(DESTDIR)$(BINDIR)/
	install -m 0644 docs/*.md $(DESTDIR)$(DOCDIR)/
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@DOCDIR@|$(DOCDIR)|g' contrib/systemd/hakod.service >$(DESTDIR)$(UNITDIR)/hakod.service.tmp
	mv $(DESTDIR)$(UNITDIR)/hakod.service.tmp $(DESTDIR)$(UNITDIR)/hakod.service

uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(BINARIES)) $(DESTDIR)$(UNITDIR)/hakod.service
	rm -rf $(DESTDIR)$(DOCDIR)

deps:
	./scripts/deps.sh

demo: deps build
	./scripts/demo.sh

demo-runtime: deps build
	./scripts/demo-runtime.sh

test: deps build lint gotest validation clitest-hakod peers critest

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt: files above need formatting'; exit 1; }
	$(GO) vet -tags '$(TAGS)' ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK) -tags '$(TAGS)' ./...

# Unit tests only: no root, no containers.
unit:
	$(GO) test -tags '$(TAGS)' -short -count=1 ./...

# Every Go test, integration included (real containers, registries, cgroups:
# needs root). One package at a time: several touch the host's cgroups.
# Modules carried with a patch (third_party/README.md); their own tests.
THIRD_PARTY := third_party/github.com/distribution/reference third_party/github.com/opencontainers/go-digest third_party/github.com/seccomp/libseccomp-golang

gotest: build
	HAKO_RUNTIME=$(CURDIR)/bin/hako-runtime HAKO_BIN=$(CURDIR)/bin $(GO) test -tags '$(TAGS)' -count=1 -p 1 -timeout 30m ./...
	for d in $(THIRD_PARTY); do (cd $$d && $(GO) test -count=1 ./...) || exit 1; done

validation: build
	./test/oci-validation/run.sh $(CURDIR)/bin/hako-runtime

# The CLI suite, docker CLI and hako CLI side by side, against a hakod of
# its own (gotest runs the same suite against a dockerd).
clitest-hakod: build
	./test/cli/hakod.sh

# critest (cri-tools v1.37.0) against hakod's CRI, offline: images built
# locally and served from a registry on loopback (test/critest/README.md).
.PHONY: critest bench-cri
critest: build
	./test/critest/run.sh $(CURDIR)/bin

# critest -benchmark against hakod and containerd 1.6 side by side.
bench-cri: build
	./bench/cri/run.sh $(CURDIR)/bin

# dockerd, containerd and podman drive hako-runtime (and runc as control).
peers: build
	./test/peers/run.sh

bench-runtime: build
	./bench/runtime/run.sh

bench-shim: build
	./bench/shim/run.sh

# hakod vs dockerd (run --rm, exec, ps; memory per idle container), paired in one run.
.PHONY: bench-engine
bench-engine: build
	./bench/engine/run.sh

clean:
	rm -rf bin
