# gabarit — see README.md. `make` installs everything and runs the demo;
# `make test` runs the tests.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
# The Go toolchain, installed first if missing (see scripts/install-deps.sh).
ifeq ($(origin GO),undefined)
GO := $(shell scripts/install-deps.sh | tail -n1)
endif
TAGS := onnx jpegturbo heif
export GABARIT_CACHE ?= $(HOME)/.cache/gabarit
PHOTOS := $(GABARIT_CACHE)/testphotos
# The demo's data directory (store, master key, index), made afresh by `make demo`.
DEMO_DATA ?= $(CURDIR)/var/demo
DEMO_ADDR ?= 127.0.0.1:8080

.PHONY: all deps build build-pure setup demo test test-pure test-race vet fuzz bench bench-pipeline bench-search eval clean

all: demo

deps:
	@test -x "$(GO)" || command -v "$(GO)" >/dev/null || { echo "no Go toolchain: scripts/install-deps.sh failed" >&2; exit 1; }

# The binary with ONNX Runtime (cgo, loaded at run time) and libjpeg-turbo.
build: deps
	CGO_ENABLED=1 $(GO) build -tags "$(TAGS)" -o bin/gabarit ./cmd/gabarit

# The pure-Go binary: no face models; commands that need them say so.
build-pure: deps
	CGO_ENABLED=0 $(GO) build -o bin/gabarit-pure ./cmd/gabarit

# ONNX Runtime, the default model pack and the test photos, from npm, into $(GABARIT_CACHE).
setup: build
	bin/gabarit setup

# The main job on the embedded default (SQLite, HNSW, no services): declare
# the demo photos as a source, ingest them, search for a person by a photo,
# then serve the web console, the rights portal and the API on it (Ctrl-C
# stops the server; the data stays in $(DEMO_DATA)).
demo: setup
	bin/gabarit faces $(PHOTOS)/sample1.jpg
	rm -rf $(DEMO_DATA)
	bin/gabarit source add --data $(DEMO_DATA) --kind folder --path $(PHOTOS) --controller "Demo controller" \
		--purpose "demonstration" --legal-basis consent --art9 explicit-consent --jurisdiction FR --retention 30d
	bin/gabarit ingest --data $(DEMO_DATA) 1
	bin/gabarit search --data $(DEMO_DATA) --purpose "demonstration" --case DEMO-1 $(PHOTOS)/sample3.jpg
	bin/gabarit user add --data $(DEMO_DATA) --roles admin "cli:$$(id -un)"
	umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' > $(DEMO_DATA)/demo-password
	bin/gabarit user add --data $(DEMO_DATA) --roles admin,operator,investigator,verifier,dpo,auditor \
		--password-file $(DEMO_DATA)/demo-password demo
	umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' > $(DEMO_DATA)/verifier-password
	bin/gabarit user add --data $(DEMO_DATA) --roles verifier --password-file $(DEMO_DATA)/verifier-password verifier2
	@echo
	@echo "Web console: http://$(DEMO_ADDR)/  user demo, password $$(cat $(DEMO_DATA)/demo-password)"
	@echo "  (a second verifier for two-person verification: verifier2, password $$(cat $(DEMO_DATA)/verifier-password))"
	@echo "Rights portal: http://$(DEMO_ADDR)/portal   API: http://$(DEMO_ADDR)/api/v1/openapi.json   Ctrl-C stops."
	bin/gabarit serve --data $(DEMO_DATA) --addr $(DEMO_ADDR)

vet: deps
	CGO_ENABLED=0 $(GO) vet ./...
	CGO_ENABLED=1 $(GO) vet -tags "$(TAGS)" ./...

# Pure-Go build and tests, then the real models (GABARIT_REQUIRE_MODELS turns
# a missing installation into a failure instead of a skip) and the browser
# tests of the web console in headless Debian chromium (screenshots in
# var/test-artefacts/browser).
test: setup vet
	CGO_ENABLED=0 $(GO) test -count=1 ./...
	GABARIT_REQUIRE_MODELS=1 GABARIT_REQUIRE_FFMPEG=1 GABARIT_REQUIRE_BROWSER=1 CGO_ENABLED=1 $(GO) test -count=1 -timeout 40m -tags "$(TAGS)" ./...

test-race: setup
	GABARIT_REQUIRE_MODELS=1 CGO_ENABLED=1 $(GO) test -race -count=1 -tags "$(TAGS)" ./...

fuzz: deps
	CGO_ENABLED=1 $(GO) test -tags "$(TAGS)" -run '^$$' -fuzz FuzzDecode -fuzztime 60s ./internal/imageproc/
	CGO_ENABLED=1 $(GO) test -tags "$(TAGS)" -run '^$$' -fuzz FuzzTakenAt -fuzztime 30s ./internal/imageproc/

bench: setup
	CGO_ENABLED=1 $(GO) test -tags "$(TAGS)" -run '^$$' -bench . -benchtime 2s ./internal/imageproc/ ./internal/pipeline/
	bin/gabarit bench pipeline

# The vector index against FAISS (Debian python3-faiss, installed here) on
# calibrated synthetic templates; see docs/PERFORMANCE.md.
bench-search: build
	scripts/install-deps.sh --faiss >/dev/null
	bin/gabarit bench search --n 1000000 --faiss

clean:
	rm -rf bin var
