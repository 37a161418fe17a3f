#!/usr/bin/env bash
# Installs what building and running gabarit needs on Debian 12: a C compiler
# (cgo), libjpeg-turbo headers, libheif headers (HEIC and AVIF photos), npm
# (to fetch ONNX Runtime and the models), ffmpeg (video sources), headless
# Chromium with the DejaVu fonts (browser tests of the web console; the fonts
# make screenshots readable), the sqlite3 shell (a test restores a store's .dump
# with it), PostgreSQL 15 (the shared store; scripts/postgres.sh runs a local
# cluster for the tests, and no system cluster is created or started) and a Go
# toolchain ≥ 1.21, which then fetches the go.mod version through the Go
# module proxy. With --faiss it also installs Debian's python3-faiss, the peer
# of `gabarit bench search`. Prints the go binary to use on its last line.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v gcc >/dev/null || missing+=(gcc libc6-dev)
[ -f /usr/include/jpeglib.h ] || missing+=(libjpeg62-turbo-dev)
# libheif decodes HEIC (and AVIF) photos; Debian puts heif.h under the multiarch include dir.
[ -f /usr/include/libheif/heif.h ] || compgen -G '/usr/include/*/libheif/heif.h' >/dev/null || missing+=(libheif-dev)
command -v npm >/dev/null || missing+=(npm)
command -v git >/dev/null || missing+=(git)
command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || missing+=(ffmpeg)
command -v chromium >/dev/null || missing+=(chromium)
# Debian's sqlite3 shell: the test that dumps and restores a store with it.
command -v sqlite3 >/dev/null || missing+=(sqlite3)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
# PostgreSQL 15: the server binaries under /usr/lib/postgresql/15/bin and psql.
pg_missing=()
[ -x /usr/lib/postgresql/15/bin/postgres ] || pg_missing+=(postgresql-15)
[ -x /usr/lib/postgresql/15/bin/psql ] || pg_missing+=(postgresql-client-15)
# FAISS with OpenBLAS (Debian's reference BLAS makes IVF training take minutes).
if [ "${1:-}" = --faiss ] && ! { /usr/bin/python3 -c 'import faiss' 2>/dev/null && [ -e /usr/lib/x86_64-linux-gnu/openblas-pthread ]; }; then missing+=(python3-faiss libopenblas0-pthread); fi
if ! command -v go >/dev/null && [ ! -x /usr/local/go/bin/go ]; then missing+=(golang-go); fi
if [ ${#missing[@]} -gt 0 ] || [ ${#pg_missing[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${missing[*]} ${pg_missing[*]}" >&2
  as_root apt-get update -qq >&2
fi
if [ ${#missing[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends ca-certificates "${missing[@]}" >&2
fi
if [ ${#pg_missing[@]} -gt 0 ]; then
  # postgresql-common first, told not to create (and start) the system's
  # "main" cluster when postgresql-15 is installed: gabarit runs its own.
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends postgresql-common >&2
  as_root sed -ri 's/^#?\s*create_main_cluster\s*=.*/create_main_cluster = false/' /etc/postgresql-common/createcluster.conf
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${pg_missing[@]}" >&2
fi

go_bin=$(command -v go || echo /usr/local/go/bin/go)
minor=$("$go_bin" env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')
if [ "$minor" -lt 21 ]; then
  # Debian 12's Go (1.19) cannot switch toolchains by itself: fetch the
  # toolchain named in go.mod as a module from the Go module proxy.
  want=$(sed -n 's/^toolchain go//p; s/^go \([0-9.]*\)$/\1/p' "$(dirname "$0")/../go.mod" | head -n1)
  case "$want" in *.*.*) ;; *) want="$want.0" ;; esac
  arch=$(dpkg --print-architecture)
  echo "install-deps: Go $("$go_bin" env GOVERSION) is too old, fetching go$want" >&2
  dir=$(cd /tmp && GOFLAGS=-modcacherw "$go_bin" mod download -json "golang.org/toolchain@v0.0.1-go$want.linux-$arch" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  chmod +x "$dir"/bin/* "$dir"/pkg/tool/*/* 2>/dev/null || true
  go_bin="$dir/bin/go"
fi
echo "$go_bin"
