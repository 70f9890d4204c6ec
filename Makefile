# Dial-A-Joke: the two commands a new machine needs are `make run` and `make test`.
CARGO ?= cargo
# The browser tests drive these two (Debian packages chromium and chromium-driver).
CHROMIUM := /usr/bin/chromium
CHROMEDRIVER := /usr/bin/chromedriver
# The cluster's load balancer (`make cluster` and tests/cluster/; Debian package haproxy).
HAPROXY := /usr/sbin/haproxy
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test soak bench lint fmt build browser-deps balancer-deps cluster postgres

## run: serve on 127.0.0.1:8080; without TELNYX_API_KEY, the demo: the service wired to the
## Telnyx simulator (crates/telnyx-sim) in one process, dialajoke-demo (crates/demo)
run:
	@if [ -n "$$TELNYX_API_KEY" ]; then \
		$(CARGO) run --release --bin dialajoke -- serve; \
	else \
		$(CARGO) run --release -p dialajoke-demo; \
	fi

## test: every test of every crate of the workspace (unit, integration, the simulator against the
## Telnyx contract, end to end against the simulator, the PostgreSQL store
## and cluster tests when DIALAJOKE_TEST_POSTGRES_URL is set (the cluster tests also need HAProxy:
## `make balancer-deps`), and the pages in headless Chromium
## when it is installed; what was skipped is said loudly at the end)
test:
	$(CARGO) test --workspace --all-targets
	@if [ ! -x $(CHROMIUM) ] || [ ! -x $(CHROMEDRIVER) ]; then \
		echo; \
		echo "*** SKIPPED: the browser tests (tests/browser/) need $(CHROMIUM) and $(CHROMEDRIVER). ***"; \
		echo "*** Install them with 'make browser-deps', then run 'make test' again.            ***"; \
		echo; \
	fi
	@if [ -z "$$DIALAJOKE_TEST_POSTGRES_URL" ]; then \
		echo; \
		echo "*** SKIPPED: the PostgreSQL store tests and the cluster tests (tests/service/store.rs and    ***"; \
		echo "*** timed_queue.rs postgres::*, tests/cluster/) need DIALAJOKE_TEST_POSTGRES_URL.            ***"; \
		echo "*** Run 'make postgres', then:                                                              ***"; \
		echo "***   DIALAJOKE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres make test      ***"; \
		echo; \
	fi

## browser-deps: install headless Chromium and chromedriver for the browser tests (Debian, Ubuntu)
browser-deps:
	@if [ -x $(CHROMIUM) ] && [ -x $(CHROMEDRIVER) ]; then \
		echo "chromium and chromedriver are installed"; \
	else \
		$(SUDO) apt-get update && $(SUDO) apt-get install -y chromium chromium-driver; \
	fi

## soak: the full crash-safety run: 1,000 calls over a minute, the service SIGKILLed 6 times
## (DIALAJOKE_SOAK_SEED=N replays a run; `make test` runs the short version)
soak:
	DIALAJOKE_SOAK=1 $(CARGO) test --test crash_safety -- --nocapture

## balancer-deps: install HAProxy, the cluster's load balancer (Debian, Ubuntu)
balancer-deps:
	@if [ -x $(HAPROXY) ]; then \
		echo "haproxy is installed"; \
	else \
		$(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y haproxy; \
	fi

## cluster: three instances and the simulator against the local PostgreSQL, behind HAProxy on
## http://127.0.0.1:8080/ (INSTANCES=N for another count; Ctrl-C stops them)
cluster: balancer-deps
	scripts/cluster.sh

## postgres: make sure the local PostgreSQL answers on 127.0.0.1:5432 (starts it, or installs it on
## Debian/Ubuntu), for the PostgreSQL tests and `make cluster`
postgres:
	scripts/postgres.sh

## bench: the release build under load: webhook intake against a verify-only ceiling, the timed
## queue with 1,000,000 calls pending, the page and API, idle memory and start-up; writes
## target/bench/report.md, report.json and PNG plots (a few minutes; nothing in `make test` times anything).
## DIALAJOKE_BENCH_ONLY=intake|queue|web runs one section and prints its figures without a report.
FONT := /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
bench:
	@[ -f $(FONT) ] || { $(SUDO) apt-get update && $(SUDO) apt-get install -y fonts-dejavu-core; }
	$(CARGO) bench --bench bench

## lint: formatting check and clippy with warnings as errors, over the whole workspace
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## fmt: format the code
fmt:
	$(CARGO) fmt --all

## build: the release binary, target/release/dialajoke (the service alone: no simulator in it)
build:
	$(CARGO) build --release --bin dialajoke
