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

.PHONY: all deps build build-pure setup weaviate demo test test-pure test-race vet fuzz fuzz-short bench bench-pipeline bench-search eval clean

all: demo

deps:
	@test -x "$(GO)" || command -v "$(GO)" >/dev/null || { echo "no Go toolchain: scripts/install-deps.sh failed" >&2; exit 1; }

# The binary with ONNX Runtime (cgo, loaded at run time) and libjpeg-turbo.
build: deps
	CGO_ENABLED=1 $(GO) build -tags "$(TAGS)" -o bin/gabarit ./cmd/gabarit

# The pure-Go binary: no face models; commands that need them say so.
build-pure: deps
	CGO_ENABLED=0 $(GO) build -o bin/gabarit-pure ./cmd/gabarit

# The Weaviate server (for --index weaviate://…), built once into
# $(GABARIT_CACHE)/weaviate (about 10 minutes on 2 cores); see scripts/weaviate.sh.
weaviate: deps
	GO="$(GO)" scripts/weaviate.sh build

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
# var/test-artefacts/browser), then a short pass of every fuzz target.
# Where PostgreSQL 15 is installed (scripts/install-deps.sh installs it), the
# local cluster of scripts/postgres.sh is started first (and left running:
# scripts/postgres.sh stop) and the PostgreSQL tests run on it, unless
# GABARIT_TEST_POSTGRES already names a database. Likewise, where the Weaviate
# server is built (`make weaviate`; plain `make` does not build it), the 3-node
# cluster of scripts/weaviate.sh is started (and left running: scripts/weaviate.sh
# stop) and the Weaviate tests run on it, unless GABARIT_TEST_WEAVIATE names one.
PG_BIN := /usr/lib/postgresql/15/bin
PG_TEST_ENV = GABARIT_TEST_POSTGRES="$${GABARIT_TEST_POSTGRES:-$$(scripts/postgres.sh status >/dev/null 2>&1 && scripts/postgres.sh url || true)}" \
	GABARIT_TEST_WEAVIATE="$${GABARIT_TEST_WEAVIATE:-$$(scripts/weaviate.sh status >/dev/null 2>&1 && scripts/weaviate.sh url || true)}" \
	GABARIT_WEAVIATE_SCRIPT="$${GABARIT_WEAVIATE_SCRIPT:-$(CURDIR)/scripts/weaviate.sh}"
test: setup vet
	if [ -z "$${GABARIT_TEST_POSTGRES:-}" ] && [ -x $(PG_BIN)/postgres ]; then scripts/postgres.sh start; fi
	if [ -z "$${GABARIT_TEST_WEAVIATE:-}" ] && [ -x "$$(scripts/weaviate.sh path)" ]; then scripts/weaviate.sh start; fi
	$(PG_TEST_ENV) CGO_ENABLED=0 $(GO) test -count=1 ./...
	$(PG_TEST_ENV) GABARIT_REQUIRE_MODELS=1 GABARIT_REQUIRE_FFMPEG=1 GABARIT_REQUIRE_BROWSER=1 CGO_ENABLED=1 $(GO) test -count=1 -timeout 40m -tags "$(TAGS)" ./...
	$(MAKE) fuzz-short GO="$(GO)"

test-race: setup
	GABARIT_REQUIRE_MODELS=1 CGO_ENABLED=1 $(GO) test -race -count=1 -tags "$(TAGS)" ./...

# Every fuzz target, as package:Target. `go test` runs their seed corpora
# (generated by the tests, plus the crashers kept in testdata/fuzz); `make
# fuzz` fuzzes each for FUZZTIME (go test -fuzz takes one target at a time),
# and `make fuzz-short` is the short pass `make test` ends with. New
# interesting inputs are minimised for at most 100 runs, so that fuzzing time
# goes to new inputs. A crasher is written to testdata/fuzz/Target/ in its
# package: keep it there as a regression seed once fixed.
# The short pass counts executions rather than seconds: with a duration,
# Go 1.26's fuzzing coordinator can fail a target with a bare "context
# deadline exceeded" and no crasher when the time runs out (golang/go#75804,
# fixed in Go 1.27); a count has no deadline to race. A duration-based
# `make fuzz` that ends so, without writing a file under testdata/fuzz, hit
# that race and found nothing.
FUZZTIME ?= 30s
FUZZTIME_SHORT ?= 2000x
FUZZ_TARGETS := \
	internal/imageproc:FuzzDecode \
	internal/imageproc:FuzzTakenAt \
	internal/source/archive:FuzzArchiveWalk \
	internal/source/folder:FuzzFolderWalk \
	internal/source/video:FuzzProbeOutput \
	internal/source:FuzzParseArt9 \
	internal/source:FuzzParseRetention \
	internal/store:FuzzParseAuditHead \
	internal/store:FuzzWitnessRead \
	internal/keyring:FuzzLoadMaster \
	internal/vault:FuzzOpenBlob \
	internal/vindex/flat:FuzzLoad \
	internal/vindex/hnsw:FuzzLoad \
	internal/server:FuzzAPIRequestBodies

fuzz: deps
	@for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} in ./$${t%%:*} for $(FUZZTIME)"; \
		CGO_ENABLED=1 $(GO) test -tags "$(TAGS)" -run '^$$' -fuzz "^$${t#*:}\$$" -fuzztime $(FUZZTIME) \
			-fuzzminimizetime 100x ./$${t%%:*}/ || exit 1; \
	done

fuzz-short: deps
	$(MAKE) fuzz FUZZTIME=$(FUZZTIME_SHORT) GO="$(GO)"

bench: setup
	CGO_ENABLED=1 $(GO) test -tags "$(TAGS)" -run '^$$' -bench . -benchtime 2s ./internal/imageproc/ ./internal/pipeline/
	bin/gabarit bench pipeline

# The vector index against FAISS (Debian python3-faiss, installed here) on
# calibrated synthetic templates; see docs/PERFORMANCE.md.
bench-search: build
	scripts/install-deps.sh --faiss >/dev/null
	bin/gabarit bench search --n 1000000 --faiss

clean:
	if [ -d var/postgres/data ]; then scripts/postgres.sh stop; fi
	if [ -d var/weaviate ]; then scripts/weaviate.sh clean; fi
	rm -rf bin var
