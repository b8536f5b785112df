# Thin entry points over CMake. `make run` and `make test` do all set-up
# (scripts/deps.sh installs missing packages and the pinned QuickJS).
# `make install` honours PREFIX (default /usr/local) and DESTDIR; `make deb`
# builds build/tagproc_VERSION_ARCH.deb (CPack, see packaging/install.cmake).
.PHONY: all deps build build-asan tsan run test unit format-check bench bench-io clean fuzz install deb opcua-server

JOBS ?= $(shell nproc 2>/dev/null || echo 2)
# ccache, when installed, makes rebuilds in other clones and worktrees cheap.
LAUNCHER := $(if $(shell command -v ccache 2>/dev/null),-DCMAKE_C_COMPILER_LAUNCHER=ccache,)

all: build

deps:
	@bash scripts/deps.sh

build: deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo $(LAUNCHER) >/dev/null
	@cmake --build build -j $(JOBS)

build-asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTP_SANITIZE=ON $(LAUNCHER) >/dev/null
	@cmake --build build-asan -j $(JOBS)

# Quiet (scripts/run.sh): build log to build/make-run.log, only tagproc
# built, the job's data on stdout, then a one-line summary on stderr.
RUN_CONFIG ?= examples/opcua-simulator.yaml
run:
	@JOBS=$(JOBS) bash scripts/run.sh $(RUN_CONFIG) $(LAUNCHER)

# Both build only the tagproc binary (not the tests), in build/.
PREFIX ?= /usr/local
install: deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(LAUNCHER) >/dev/null
	@cmake --build build -j $(JOBS) --target tagproc
	DESTDIR=$(DESTDIR) cmake --install build

deb: deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr $(LAUNCHER) >/dev/null
	@cmake --build build -j $(JOBS) --target tagproc
	cd build && cpack -G DEB

format-check:
	@bash scripts/format-check.sh

# Release build: every test; sanitizer build: every test again.
test: build build-asan format-check
	cd build && ctest --output-on-failure -j $(JOBS)
	cd build-asan && ctest --output-on-failure -j $(JOBS)

# ThreadSanitizer build (build-tsan/) running the unit and CLI tests: data
# races between the reader, workers, writer, signal and HTTP threads.
# tests/tsan.supp lists the reports from libraries built without TSan.
# Left out: test_alloc_failure (wraps malloc, as TSan does), test_kafka,
# test_uns_io and run_umh_configs (librdkafka's mock-cluster threads crash in
# TSan's allocator: threads TSan did not see start), run_random_meta (15 min
# under TSan; ASan runs it) and run_js_cpu_timeout (its rule's loops take
# longer than its CPU limit in the TSan build; ASan runs it).
tsan: deps
	@cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DTP_TSAN=ON $(LAUNCHER) >/dev/null
	@cmake --build build-tsan -j $(JOBS)
	cd build-tsan && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/tsan.supp" \
		ctest --output-on-failure -j $(JOBS) -R '^(unit|cli)\.' \
		-E '^(unit\.test_alloc_failure|unit\.test_kafka|unit\.test_uns_io|cli\.run_umh_configs|cli\.run_random_meta|cli\.run_js_cpu_timeout)$$'

bench: build
	bash bench/run.sh

# Connector paths against local brokers (bench/io/*.sh; docs/PERFORMANCE.md).
bench-io: build
	@for s in bench/io/*.sh; do bash "$$s" || exit 1; done

clean:
	rm -rf build build-asan build-tsan

# libFuzzer targets (clang, ASan + UBSan) in build-fuzz/, each run FUZZ_SECONDS
# seeded with tests/fuzz/corpus/<target>/ (docs/FUZZING.md).
FUZZ_SECONDS ?= 60
fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash tests/fuzz/libfuzzer.sh

# An OPC UA test server (node-opcua, pinned) on opc.tcp://127.0.0.1:$(OPCUA_PORT)
# for trying the `opcua` input without a PLC (docs/opcua.md).
OPCUA_PORT ?= 4840
opcua-server: deps
	bash scripts/opcua-test-server.sh $(OPCUA_PORT)
