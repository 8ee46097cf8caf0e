# Sluice: the two commands are `make run` and `make test`.
#   make run      install what is missing, build, start NATS and every service
#                 with examples/ loaded (foreground; Ctrl-C stops all)
#   make test     install, build, run every test, then again under ASan+UBSan
# Other targets: build, asan, schemas, fuzz, bench (bench-xds, bench-translate, bench-translate-write, bench-e2e, bench-discovery, bench-fds), clean.

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
GENERATOR  := -G Ninja
JOBS       ?= 2
FUZZ_SECONDS ?= 600

.PHONY: all setup build run test test-fast asan schemas fuzz bench bench-xds bench-translate bench-translate-write bench-e2e bench-discovery bench-fds clean

all: build

setup:
	@scripts/setup

$(BUILD)/build.ninja:
	@cmake -S . -B $(BUILD) $(GENERATOR) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

build: setup $(BUILD)/build.ninja
	@cmake --build $(BUILD) -j $(JOBS)

# sluicectl run --config-dir examples (scripts/run sets the build and state dirs).
run: build
	@scripts/run

# Every test, then the unit, integration, conformance and e2e tests again
# under AddressSanitizer + UndefinedBehaviorSanitizer (leaks fail): the
# services the conformance and e2e tests start are the ASan builds, each
# stopped with SIGTERM and required to exit 0 with no sanitizer report.
test: build
	ctest --test-dir $(BUILD) -j $(JOBS) --output-on-failure
	@$(MAKE) --no-print-directory asan

asan: setup
	@cmake -S . -B $(ASAN_BUILD) $(GENERATOR) -DCMAKE_BUILD_TYPE=Debug -DSLUICE_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	ctest --test-dir $(ASAN_BUILD) -j $(JOBS) -L 'unit|integration|conformance|e2e|security' --output-on-failure

# Regenerate schemas/ from proto/sluice/v1 (a test fails when it is stale).
schemas: build
	cmake --build $(BUILD) --target schemas

# libFuzzer targets, each run for FUZZ_SECONDS.
fuzz: setup
	@CC=clang cmake -S . -B $(FUZZ_BUILD) $(GENERATOR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS)
	scripts/fuzz $(FUZZ_BUILD) $(FUZZ_SECONDS)

# Every bench/<name>/run (each prints RESULT lines last); bench-<name> runs one.
# All run; the target fails, naming them, when any failed.
bench: build
	@failed=; for b in bench/*/run; do \
	  [ -x "$$b" ] || continue; \
	  "$$b" $(BUILD) || failed="$$failed $$b"; \
	done; \
	if [ -n "$$failed" ]; then echo "bench: FAILED:$$failed" >&2; exit 1; fi

# sluice-xds vs go-control-plane, 1,000 and 10,000 ADS streams (docs/benchmarks.md).
bench-xds: setup
	@bench/xds/run $(BUILD)

# The translator at 1,000/1,000, 10,000/1,000 and 10,000/5,000 upstreams/virtual services (docs/benchmarks.md).
bench-translate: setup
	@bench/translate/run $(BUILD)

# One VirtualService / endpoint set change: KV put -> commit written -> served on
# an ADS stream, at 10,000 upstreams / 5,000 virtual services (docs/benchmarks.md).
bench-translate-write: setup
	@bench/translate-write/run $(BUILD)

# sluicectl apply -> a gRPC xDS client on the new route, 100 applies through the
# whole system (sluicectl run), p50/p99 (docs/benchmarks.md, "End to end").
bench-e2e: build
	@bench/e2e/run $(BUILD)

# sluice-endpoint-discovery against dnsmasq at 10,000 dns upstreams: initial sync,
# one record change -> set written, CPU, RSS, writes after a restart (docs/discovery.md).
bench-discovery: setup
	@bench/discovery/run $(BUILD)

# sluice-function-discovery at 1,000 upstreams of 200 OpenAPI operations: discovery time, CPU, RSS,
# one document change -> Upstream written -> translated, no write on an unchanged re-check (docs/discovery.md).
bench-fds: setup
	@bench/fds/run $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
