# homelab — common tasks. `make test` is what CI runs (through .ci/run).
GO      ?= go
BIN     ?= bin/homelab
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/homelab-dev/homelab/pkg/app.version=$(VERSION)

.PHONY: build test lint fmt bench deps

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/homelab

# The whole suite, with the real programs the tests run (nginx,
# systemd-analyze), installed by `make deps` or .ci/run. Outside CI a test
# whose program is missing is skipped; with CI set it fails.
test:
	$(GO) test -count=1 ./...

lint:
	@out=$$(gofmt -l cmd pkg templates charts 2>/dev/null); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

fmt:
	gofmt -w cmd pkg templates

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Debian packages the tests run for real (see .ci/run).
deps:
	bash .ci/install-deps
