# Distributor tier management: developer entry points.
#
#   make            same as `make test` (what CI runs through .ci/run)
#   make test       rustfmt --check and clippy (warnings are errors), cfn-lint the SAM template,
#                   smoke-test it on moto, then the whole cargo test suite against a throwaway
#                   moto server
#   make run        the local stack demo (moto + every function) on PORT (default 8080)
#   make lint       rustfmt --check, clippy with warnings as errors, and cfn-lint
#   make zips       release arm64 Lambda zips with cargo-lambda (target/lambda/<bin>/bootstrap.zip)
#   make bench      the domain benchmarks
#   make bench-lookup  100-SKU price lookup latency as a ratio to one GetItem (release build, own moto)
#   make bench-intake  one Shopify delivery's intake latency as a ratio to one PutItem (release build, own moto)
#   make bench-review  the month-end review of 1,000 distributors through the queue, against GetItems (own moto)
#   make bench-rollup  how long an order takes to reach each ancestor's network, and its cost by depth (own moto)
#   make bench-load    the load model: hottest item and partition, units by depth, at 500 to 20,000 orders/s (own moto)
#   make bench-flash   10,000 buyers for 100 units through stock allocation, against raw conditional UpdateItems (own moto)
#   make bench-startup each function's start to its first request for work, against a hello world
#   make fuzz       the platform parsers under libFuzzer, FUZZ_RUNS inputs per target (default 10M;
#                   not part of `make test`)
#   make clean-venv remove .venv/ (the next target re-creates what it needs)
#
# Python tools live in the project-local .venv/, pinned and installed on demand by scripts/venv.sh;
# cargo-fuzz lives in .tools/, pinned and installed on demand by scripts/fuzz.sh.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

VENV := .venv
CFN_LINT := $(VENV)/bin/cfn-lint
TEMPLATE := infra/template.yaml
PORT ?= 8080
export PORT

.PHONY: help test run lint fmt-check clippy cfn-lint template-smoke zips bench bench-lookup bench-intake \
	bench-review bench-rollup bench-load bench-flash bench-startup fuzz clean-venv

help:
	@sed -n '2,20p' Makefile | sed 's/^# \{0,1\}//'

test: fmt-check clippy
	scripts/venv.sh moto cfn-lint
	$(CFN_LINT) $(TEMPLATE)
	scripts/with-moto.sh $(VENV)/bin/python scripts/template-smoke.py
	scripts/with-moto.sh cargo test --workspace --all-targets

run:
	scripts/venv.sh moto
	cargo run -p local-stack --bin local-stack -- demo

lint: fmt-check clippy cfn-lint

# rustfmt's defaults (100 columns): the width every model codebase uses, so a diff shows only
# what changed and no one's editor disagrees.
fmt-check:
	cargo fmt --all --check

clippy:
	cargo clippy --workspace --all-targets -- -D warnings

cfn-lint:
	scripts/venv.sh cfn-lint
	$(CFN_LINT) $(TEMPLATE)

template-smoke:
	scripts/venv.sh moto
	scripts/with-moto.sh $(VENV)/bin/python scripts/template-smoke.py

zips:
	scripts/venv.sh cargo-lambda
	scripts/build-zips.sh

bench:
	cargo bench -p tier-domain

# ITERATIONS=N to change the sample size (default 300).
bench-lookup:
	scripts/venv.sh moto
	cargo run --release -p local-stack --bin lookup-latency

# ITERATIONS=N distributors (default 1000). A debug build: the review's time is the emulator's.
bench-review:
	scripts/venv.sh moto
	cargo run -p local-stack --bin review-timing

# ITERATIONS=N orders (default 10). A debug build: the lag is the roll-up window's and the emulator's.
bench-rollup:
	scripts/venv.sh moto
	cargo run -p local-stack --bin rollup-freshness

# Records one order of each shape through the real handlers, then models a 100,000-distributor brand.
bench-load:
	scripts/venv.sh moto
	cargo run -p local-stack --bin load-model

# ITERATIONS=N buyers (default 10000). A debug build: the time is the emulator's.
bench-flash:
	scripts/venv.sh moto
	cargo run -p local-stack --bin flash-sale

# ITERATIONS=N to change the sample size (default 300).
bench-intake:
	scripts/venv.sh moto
	cargo run --release -p local-stack --bin intake-latency

# RUNS=N to change the sample size (default 30). Release builds of every function binary.
bench-startup:
	cargo build --release -p order-intake -p price-lookup -p tier-evaluation -p stock-allocation \
		-p admin-api --bins
	cargo build --release -p local-stack --bin hello-lambda --bin startup-latency
	# As deployed by default: the TLS roots compiled into the binaries.
	target/release/startup-latency --runs $${RUNS:-30}
	# With the system bundle as a brand's own roots file (TlsRootsFile), then as SSL_CERT_FILE,
	# which leaves TLS to the AWS SDK's own client.
	for bundle in /etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem /etc/ssl/certs/ca-certificates.crt; do \
		if [ -f "$$bundle" ]; then \
			target/release/startup-latency --runs $${RUNS:-30} --env TLS_ROOTS_FILE="$$bundle"; \
			target/release/startup-latency --runs $${RUNS:-30} --env SSL_CERT_FILE="$$bundle"; \
			break; \
		fi; \
	done

# FUZZ_RUNS=N to change the inputs per target (default 10000000); FUZZ_TARGETS="shopify exact"
# for some of the targets. Each target's corpus grows in shared/platforms/fuzz/corpus/<target>/,
# and a crash's input is left in shared/platforms/fuzz/artifacts/<target>/.
fuzz:
	scripts/fuzz.sh $(FUZZ_TARGETS)

clean-venv:
	rm -rf $(VENV)
