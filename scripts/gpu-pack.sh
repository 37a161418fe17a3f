#!/usr/bin/env bash
# gpu-pack.sh: prepares, on the CPU machine, everything scripts/gpu-check.sh
# needs on a GPU machine that can reach no network, in parts small enough
# for the device tool (a call carries at most 64 MiB, working tree included).
#
#   scripts/gpu-pack.sh [--identities 40] [--photos-per-identity 10] [--part-mb 56] [--level 19]
#
# (about 14 minutes on a loaded 2-core VM, most of it zstd -19; --level 10
# is several times faster and may make one part more.)
#
# What it packs (after `gabarit setup --gpu` here):
#   - bin/gabarit, built with -tags "onnx jpegturbo" (no HEIF: libheif is not
#     on the GPU machine) and the libjpeg it links, in lib/;
#   - the installation: ONNX Runtime 1.30 for the CPU, ONNX Runtime 1.29 for
#     CUDA 13 with its CUDA provider (about 230 MB, 165 MB after zstd), the
#     default model pack and the test photos;
#   - celeba40/: the first --photos-per-identity photos of the first
#     --identities identities of ../shared/data/celeba-dev (under 45 MB);
# as one tar, compressed with zstd and split into parts of --part-mb MB,
# one folder per device call: var/gpu-carry/c1 … cN (var/ is ignored by
# git). c1 also holds tools/: the zstd binary and the libraries it needs.
# It writes var/gpu-carry/PLAN.txt: the payload's checksum and the calls.
#
# The device calls, in this order, back to back (the machine stays warm
# 30 s after a call; what a call leaves under var/gpu-stash stays there
# while it is warm). With N parts, for k = 1 … N-1:
#
#   run(command="mkdir -p var/gpu-stash && cp -a var/gpu-carry/cK/. var/gpu-stash/ && ls -l var/gpu-stash",
#       carry=["var/gpu-carry/cK"], timeout_s=120)
#
# and last (the check itself; it writes its JSON under $OUT as it goes):
#
#   run(command="mkdir -p var/gpu-stash && cp -a var/gpu-carry/cN/. var/gpu-stash/ && scripts/gpu-check.sh --stash var/gpu-stash",
#       carry=["var/gpu-carry/cN"], timeout_s=540)
#
# PLAN.txt spells these calls out with the real N. If the machine went back
# between calls (a call says it started one), start again at c1.
set -euo pipefail

identities=40
per=10
part_mb=56
level=19
limit_mib=64
while [ $# -gt 0 ]; do
	case "$1" in
	--identities) identities=$2; shift 2 ;;
	--photos-per-identity) per=$2; shift 2 ;;
	--part-mb) part_mb=$2; shift 2 ;;
	--level) level=$2; shift 2 ;;
	-h | --help) sed -n '2,40p' "$0"; exit 0 ;;
	*) echo "gpu-pack.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH=$PATH:/usr/local/go/bin
cache=${GABARIT_CACHE:-$HOME/.cache/gabarit}
celeba=${GABARIT_SHARED_DATA:-$root/../shared/data}/celeba-dev
out=var/gpu-carry
stage=$(mktemp -d /tmp/gpu-pack.XXXXXX)
trap 'rm -rf "$stage"' EXIT

need() { [ -e "$1" ] || { echo "gpu-pack.sh: $1 is missing: $2" >&2; exit 1; }; }
need "$cache/ort/1.30.0/libonnxruntime.so.1" "run gabarit setup"
need "$cache/ort/1.29.0-cuda/libonnxruntime_providers_cuda.so" "run gabarit setup --gpu"
need "$cache/packs/default/manifest.json" "run gabarit setup"
need "$celeba" "the celeba-dev photos live in ../shared/data"
command -v zstd >/dev/null || { echo "gpu-pack.sh: zstd is not installed here (apt-get install zstd)" >&2; exit 1; }

echo "building bin/gabarit (onnx, jpegturbo)"
mkdir -p "$stage/p/bin" "$stage/p/lib" "$stage/p/cache/ort" "$stage/p/cache/packs" "$stage/p/celeba40"
CGO_ENABLED=1 go build -trimpath -o "$stage/p/bin/gabarit" -tags "onnx jpegturbo" ./cmd/gabarit
# The shared libraries gabarit links beyond the C library (libjpeg).
ldd "$stage/p/bin/gabarit" | awk '/=> \// {print $3}' | grep -v -E '/(libc|libm|libdl|libpthread|librt|ld-linux[^/]*)\.so' |
	while read -r l; do cp -L "$l" "$stage/p/lib/"; done

echo "copying the installation"
cp -a "$cache/ort/1.30.0" "$cache/ort/1.29.0-cuda" "$stage/p/cache/ort/"
cp -aL "$cache/packs/default" "$stage/p/cache/packs/"
cp -a "$cache/testphotos" "$stage/p/cache/"

echo "copying $identities identities × $per photos of celeba-dev"
n=0
for d in $(ls "$celeba" | sort | head -n "$identities"); do
	mkdir -p "$stage/p/celeba40/$d"
	ls "$celeba/$d" | sort | head -n "$per" | while read -r f; do cp "$celeba/$d/$f" "$stage/p/celeba40/$d/"; done
	n=$((n + 1))
done
photos=$(find "$stage/p/celeba40" -type f | wc -l)
celeba_mb=$(du -sm "$stage/p/celeba40" | cut -f1)
[ "$celeba_mb" -lt 45 ] || { echo "gpu-pack.sh: the celeba subset is $celeba_mb MB, over 45 MB: fewer --photos-per-identity" >&2; exit 1; }

echo "compressing (zstd -$level)"
tar -C "$stage/p" -cf - . | zstd "-$level" -T0 -q -o "$stage/payload.tar.zst"
sum=$(sha256sum "$stage/payload.tar.zst" | cut -d' ' -f1)
size=$(stat -c %s "$stage/payload.tar.zst")

mkdir -p "$stage/tools"
cp -L "$(command -v zstd)" "$stage/tools/zstd"
ldd "$(command -v zstd)" | awk '/=> \// {print $3}' | grep -v -E '/(libc|libm|libdl|libpthread|ld-linux[^/]*)\.so' |
	while read -r l; do cp -L "$l" "$stage/tools/"; done

rm -rf "$out"
mkdir -p "$out"
split -b "${part_mb}M" -d -a 2 "$stage/payload.tar.zst" "$stage/part."
parts=$(ls "$stage"/part.* | wc -l)
k=0
for p in $(ls "$stage"/part.* | sort); do
	k=$((k + 1))
	mkdir -p "$out/c$k"
	mv "$p" "$out/c$k/"
done
cp -a "$stage/tools" "$out/c1/"
echo "$sum  payload.tar.zst" >"$out/c$parts/payload.sha256"
echo "$parts" >"$out/c$parts/parts"

# Each call carries the working tree (tracked and untracked files that git
# does not ignore) and one folder: check that each fits.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	tree=$( (git ls-files -co --exclude-standard -z | xargs -0 stat -c %s 2>/dev/null || true) | awk '{s += $1} END {print s + 0}')
else
	tree=$(du -sb --exclude=./var --exclude=./.git . | cut -f1)
fi
for k in $(seq 1 "$parts"); do
	c=$(du -sb "$out/c$k" | cut -f1)
	total=$((tree + c))
	if [ "$total" -gt $((limit_mib * 1024 * 1024)) ]; then
		echo "gpu-pack.sh: call $k would carry $total bytes, over $limit_mib MiB: use a smaller --part-mb" >&2
		exit 1
	fi
done

{
	echo "gpu-carry plan, $(date -u +%Y-%m-%dT%H:%MZ)"
	echo "payload.tar.zst: $size bytes, sha256 $sum, $parts part(s) of at most $part_mb MB"
	echo "celeba subset: $n identities, $photos photos, $celeba_mb MB"
	echo "working tree that travels with each call: $tree bytes"
	echo
	for k in $(seq 1 "$parts"); do
		c=$(du -sb "$out/c$k" | cut -f1)
		if [ "$k" -lt "$parts" ]; then
			echo "call $k ($((tree + c)) bytes): run(command=\"mkdir -p var/gpu-stash && cp -a var/gpu-carry/c$k/. var/gpu-stash/ && ls -l var/gpu-stash\", carry=[\"var/gpu-carry/c$k\"], timeout_s=120)"
		else
			echo "call $k ($((tree + c)) bytes): run(command=\"mkdir -p var/gpu-stash && cp -a var/gpu-carry/c$k/. var/gpu-stash/ && scripts/gpu-check.sh --stash var/gpu-stash\", carry=[\"var/gpu-carry/c$k\"], timeout_s=540)"
		fi
	done
} >"$out/PLAN.txt"
cat "$out/PLAN.txt"
