# homelab — common tasks. `make test` is what CI runs (through .ci/run).
GO      ?= go
BIN     ?= bin/homelab
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
# Keep in step with .goreleaser.yaml's ldflags.
LDFLAGS := -s -w -X github.com/homelab-dev/homelab/pkg/app.version=$(VERSION) \
	-X github.com/homelab-dev/homelab/pkg/cmdutil.buildCommit=$(COMMIT) \
	-X github.com/homelab-dev/homelab/pkg/cmdutil.buildDate=$(DATE)

.PHONY: build test testenv testenv-down lint fmt bench deps e2e fuzz release-snapshot release-test

TESTENV := bash .ci/testenv/testenv

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/homelab

# The whole suite against real programs: nginx and systemd-analyze (make
# deps) and the test environment below. Outside CI a test whose component is
# missing is skipped; with CI set it fails.
test: testenv
	eval "$$($(TESTENV) env)" && $(GO) test -count=1 ./...

# Every fuzz target of the module (func Fuzz* in a _test.go file), one
# after the other for FUZZTIME each: go test fuzzes one target at a time.
# A failing input is saved under the package's testdata/fuzz/ and then runs
# with the package's tests. CI runs this briefly (.ci/run: FUZZTIME=10s);
# run it longer by hand, e.g. make fuzz FUZZTIME=10m. New inputs are
# minimized for FUZZMINIMIZE execs, not go test's default of 60 seconds
# each: with the default a short run spends nearly all its time minimizing
# (FuzzOpenBundle: 40 inputs tried in 3 minutes, against 11,787 in one
# minute with 100x, on 2 busy cores).
FUZZTIME ?= 60s
FUZZMINIMIZE ?= 100x
# Go 1.26's fuzz coordinator can fail a target with a bare "context deadline
# exceeded" at the end of -fuzztime, having found nothing (golang/go#75804,
# fixed in Go 1.27; seen here on FuzzOpenBundle): that outcome, with no
# failing input written, is reported and passes; any other failure fails.
fuzz: SHELL := /bin/bash
fuzz: .SHELLFLAGS := -o pipefail -ec
fuzz:
	@mkdir -p .e2e/fuzz; \
	for pkg in $$(grep -rl --include='*_test.go' '^func Fuzz' cmd pkg | xargs -n1 dirname | sort -u); do \
		for fn in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$pkg/*_test.go); do \
			echo "== $$fn in ./$$pkg for $(FUZZTIME)"; \
			log=.e2e/fuzz/$$fn.log; \
			if $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) ./$$pkg 2>&1 | tee $$log; then continue; fi; \
			if grep -qx '    context deadline exceeded' $$log && ! grep -q 'Failing input written' $$log; then \
				echo "== $$fn: go test's own end-of-fuzztime race (golang/go#75804), no failing input: not a failure"; \
				continue; \
			fi; \
			exit 1; \
		done; \
	done

# Real etcd, kube-apiserver, controller-manager, containerd, Prometheus and
# blackbox exporter on loopback (.ci/testenv/README.md). Reused while up.
testenv:
	$(TESTENV) up

testenv-down:
	$(TESTENV) down

lint:
	@out=$$(gofmt -l cmd pkg templates charts 2>/dev/null); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

fmt:
	gofmt -w cmd pkg templates

bench: testenv
	eval "$$($(TESTENV) env)" && $(GO) test -run '^$$' -bench . -benchmem ./...

# goreleaser, built once per version into a cache CI keeps (~/.cache), not
# into go.mod: the product's module graph stays its own.
GORELEASER_VERSION := v2.15.1
GORELEASER := $(HOME)/.cache/homelab-tools/goreleaser-$(GORELEASER_VERSION)/bin/goreleaser

$(GORELEASER):
	GOBIN=$(dir $@) $(GO) install github.com/goreleaser/goreleaser/v2@$(GORELEASER_VERSION)

# Everything a release would publish (archives, checksums, .deb and .rpm for
# linux amd64 and arm64) built into dist/; nothing is published or signed,
# and nothing is fetched but Go modules.
release-snapshot: $(GORELEASER)
	$(GORELEASER) release --snapshot --clean --skip=sign,sbom,docker,ko,snapcraft

# Inspects dist/'s .deb and installs it with dpkg into a throwaway root
# (pkg/release); needs make release-snapshot first.
release-test:
	$(GO) test -tags release -count=1 ./pkg/release

# Debian packages the tests run for real (see .ci/run).
deps:
	bash .ci/install-deps

# The whole journey on a booted Debian machine with the k3s stand-in and the real
# charts (e2e/README.md). Needs root; caches under ~/.cache/homelab-e2e.
e2e:
	bash e2e/run
