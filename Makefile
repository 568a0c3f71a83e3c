# hako: build, demo and test. `make help` lists the targets.
export PATH := $(PATH):/usr/local/go/bin
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# Static binaries: the runtime starts once per container operation and its
# init re-executes it, so not loading libc and libseccomp through ld.so
# halves its start-up (bench/runtime).
TAGS     := netgo osusergo
LDFLAGS  := -s -w -X main.version=$(VERSION) -extldflags -static
BINARIES := hako-runtime
STATICCHECK ?= v0.8.2

.PHONY: all build deps demo test unit gotest validation bench-runtime lint help clean

all: build

help:
	@echo "make demo        build, then run a busybox container with hako-runtime and show its step trace"
	@echo "make test        install what the tests need, then run every test suite (what CI runs)"
	@echo "make build       build bin/$(BINARIES)"
	@echo "make unit        unit tests (no root needed)"
	@echo "make gotest      every Go test, integration included (root: real containers)"
	@echo "make validation  the OCI runtime-tools validation suite against bin/hako-runtime"
	@echo "make bench-runtime  hako-runtime vs runc vs crun"

build: $(addprefix bin/,$(BINARIES))

bin/%: FORCE
	CGO_ENABLED=1 $(GO) build -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $@ ./cmd/$*

FORCE:

deps:
	./scripts/deps.sh

demo: deps build
	./scripts/demo.sh

test: deps build lint gotest validation

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt: files above need formatting'; exit 1; }
	$(GO) vet -tags '$(TAGS)' ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK) -tags '$(TAGS)' ./...

# Unit tests only: no root, no containers.
unit:
	$(GO) test -tags '$(TAGS)' -short -count=1 ./...

# Every Go test, integration included (real containers, registries, cgroups:
# needs root). One package at a time: several touch the host's cgroups.
gotest: build
	HAKO_RUNTIME=$(CURDIR)/bin/hako-runtime $(GO) test -tags '$(TAGS)' -count=1 -p 1 -timeout 30m ./...

validation: build
	./test/oci-validation/run.sh $(CURDIR)/bin/hako-runtime

bench-runtime: build
	./bench/runtime/run.sh

clean:
	rm -rf bin
