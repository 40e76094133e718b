# Kelpie — two commands on a fresh Debian 12 machine:
#   make run    installs what it needs, builds, and streams an embedded desktop
#   make test   installs what it needs and runs every test
# Options: make run ARGS="--size 1280x720 --framerate 30"

SHELL := /bin/bash
CARGO ?= cargo
JOBS ?= 2
ARGS ?=
# TAP for the record, then each failure's head once more at the very end of the log.
NODE_TEST := node --test --test-concurrency=1 --test-reporter=tap --test-reporter-destination=stdout \
	--test-reporter=./tests/e2e/failure-summary.mjs --test-reporter-destination=stdout

.PHONY: run test build build-release deps-run deps-test unit e2e deploy-static bench bench-spine fuzz soak image image-test deps-image fmt lint clean

run: deps-run build-release
	./target/release/kelpie $(ARGS)

build-release:
	$(CARGO) build -j$(JOBS) --release -p kelpie -p kelpie-gamepad -p kelpie-gamepad-preload

build:
	$(CARGO) build -j$(JOBS) --workspace --all-targets

deps-run:
	./scripts/install-deps.sh run

deps-test:
	./scripts/install-deps.sh test
	./tests/e2e/setup-deploy-tools.sh
	cd tests/e2e && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error

# Every test: Rust unit and integration tests (real Xvfb, GStreamer and webrtc-rs), then the
# headless Chromium end-to-end tests, the deployment artefacts' static checks, and the
# Dockerfile built for real with podman from the binaries just built and given the strict
# run (containers/image.sh check, about 3 minutes). Tests build once and run serially: each
# one starts its own X server and streams real video, and two cores cannot do two at once.
test: deps-test deps-image build
	$(CARGO) test -j$(JOBS) --workspace -- --test-threads=1
	$(NODE_TEST) tests/e2e/
	bash containers/tests/check-static.sh
	CARGO=$(CARGO) bash containers/image.sh check

# Deployment artefacts: kustomize renders, schema and restricted-PSS checks, hadolint,
# shellcheck, the Jupyter entry point (no cargo build needed).
deploy-static:
	bash containers/tests/check-static.sh

unit:
	$(CARGO) test -j$(JOBS) --workspace --lib --bins

e2e: build
	$(NODE_TEST) tests/e2e/

# The black-box benchmark (docs/benchmarks.md): kelpie against the plain ximagesrc pipeline
# in the same run, with a headless-Chromium probe for latency. Not part of `make test`.
bench: deps-test
	$(CARGO) build -j$(JOBS) --release -p kelpie -p kelpie-tests -p kelpie-gst-plugins
	node tests/bench/run.mjs
	node tests/bench/sweep.mjs
	node tests/bench/lossy.mjs
	node tests/bench/audio.mjs

# CPU, frame rate and time to first frame with a webrtc-rs viewer (docs/benchmarks.md).
bench-spine: deps-test
	$(CARGO) build -j$(JOBS) --release -p kelpie -p kelpie-tests
	./target/release/kelpie-bench

# Fuzzing (docs/reliability.md): every libFuzzer target in tests/fuzz for FUZZ_SECONDS
# each, with the nightly toolchain; prints executions and crashes. Not part of `make test`.
FUZZ_SECONDS ?= 60
fuzz:
	command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	bash tests/fuzz/run.sh $(FUZZ_SECONDS)

# Leaks over many connections (docs/reliability.md): SOAK_CYCLES webrtc-rs viewers connect,
# type, resize and leave, then 50 browser reloads; RSS, descriptors, branches, keycodes and
# RandR modes before and after. Not part of `make test`.
SOAK_CYCLES ?= 500
soak: deps-test
	$(CARGO) build -j$(JOBS) --release -p kelpie -p kelpie-tests
	./target/release/kelpie-soak --cycles $(SOAK_CYCLES)
	KELPIE_BIN=target/release/kelpie KELPIE_XPROBE_BIN=target/release/kelpie-xprobe node tests/bench/soak-reload.mjs

# The container image (containers/Dockerfile), built here with podman: host-built binaries
# and, where no registry answers, a Debian base from mmdebstrap (containers/image.sh).
# image-test runs it strictly (read-only, no capabilities, arbitrary UID, KELPIE_* only)
# and streams from it to headless Chromium, then `podman kube play`s the rendered
# Kubernetes base and streams from that pod. Slow; not part of `make test`, which runs a
# quicker `image.sh check` (the same Dockerfile from dev-profile binaries, strict run only).
# Only what is missing is installed: a machine may already have kubectl from elsewhere
# (Google Cloud SDK's conflicts with Debian's kubernetes-client package).
deps-image:
	@missing=""; for pair in podman:podman runc:runc mmdebstrap:mmdebstrap kubectl:kubernetes-client; do \
	  command -v $${pair%%:*} >/dev/null || missing="$$missing $${pair#*:}"; done; \
	[ -z "$$missing" ] || (echo "deps-image: installing$$missing"; apt-get update -q \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing)

image: deps-run deps-image
	CARGO=$(CARGO) ./containers/image.sh build

image-test: deps-test deps-image
	$(CARGO) build -j$(JOBS) --release -p kelpie-tests --bin kelpie-xprobe
	CARGO=$(CARGO) ./containers/image.sh test
	CARGO=$(CARGO) ./containers/image.sh kube

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy -j$(JOBS) --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
