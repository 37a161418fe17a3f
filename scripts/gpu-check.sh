#!/usr/bin/env bash
# gpu-check.sh: the GPU measurements of issue 16 in one call, on a machine
# with an NVIDIA GPU that can reach no network, from what scripts/gpu-pack.sh
# prepared and the device calls carried (see the calls in gpu-pack.sh).
#
#   scripts/gpu-check.sh --stash DIR [--device cuda|cpu] [--budget SECONDS] [--quick]
#
# --stash DIR   the folder holding part.NN, payload.sha256, parts and tools/
#               (the carried folders copied together)
# --device cpu  runs every step on the CPU instead (to test the script on a
#               machine without a GPU); the CPU-side steps run either way
# --budget S    total seconds (default 420); a step that would start after
#               it is skipped, and each step has its own timeout
# --quick       short measurements (for testing the script)
#
# Steps: nvidia-smi; unpack and check the payload; find the CUDA 13 and
# cuDNN 9 libraries; one photo with --device cuda; `gabarit bench pipeline
# --device cuda --fp16` (embedder alone at batch 64/128/256 in fp32 and fp16,
# pipeline on 250×250 and 12 MP photos, the model-only ceiling, the time per
# stage); the templates of the celeba subset on the GPU and on the CPU
# compared (same faces found, cosine ≥ 0.999), and fp16 against fp32; an
# end-to-end ingest of the subset into a fresh data directory with
# --device cuda and with --device cpu. Results go to $OUT (default
# var/gpu-out): summary.json (rewritten after each step, so a cut-off run
# still leaves what it measured), log.txt and nvidia-smi.txt.
set -uo pipefail

stash=""
device=cuda
budget=420
quick=0
while [ $# -gt 0 ]; do
	case "$1" in
	--stash) stash=$2; shift 2 ;;
	--device) device=$2; shift 2 ;;
	--budget) budget=$2; shift 2 ;;
	--quick) quick=1; shift ;;
	-h | --help) sed -n '2,28p' "$0"; exit 0 ;;
	*) echo "gpu-check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
[ -n "$stash" ] || { echo "gpu-check.sh: --stash DIR is required (see --help)" >&2; exit 2; }
case "$device" in cuda | cpu) ;; *) echo "gpu-check.sh: --device is cuda or cpu" >&2; exit 2 ;; esac

root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/var/gpu-out}
mkdir -p "$out"
work=$(mktemp -d /tmp/gpu-check.XXXXXX)
log=$out/log.txt
summary=$out/summary.json
: >"$log"
echo '{}' >"$summary"
start=$(date +%s)

say() { echo "[$(($(date +%s) - start))s] $*" | tee -a "$log"; }
left() { echo $((budget - ($(date +%s) - start))); }

# put KEY JSON: sets summary[KEY] to the JSON value (or to a string when it
# is not JSON).
put() {
	python3 - "$summary" "$1" "$2" <<'EOF'
import json, sys
path, key, val = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    v = json.loads(val)
except ValueError:
    v = val.strip()
s = json.load(open(path))
s[key] = v
json.dump(s, open(path + ".tmp", "w"), indent=1, sort_keys=True)
import os; os.replace(path + ".tmp", path)
EOF
}

# step NAME SECONDS CMD…: runs CMD with a timeout (never past the budget),
# its output into $work/NAME.out and the log; returns its status.
step() {
	local name=$1 secs=$2
	shift 2
	local l
	l=$(left)
	if [ "$l" -lt 15 ]; then
		say "$name: skipped, the budget is spent"
		put "$name" '"skipped: budget spent"'
		return 124
	fi
	[ "$secs" -le "$l" ] || secs=$l
	say "$name: $* (timeout ${secs}s)"
	local t0=$(date +%s%N)
	if declare -F "$1" >/dev/null; then
		export -f "$1"
		timeout "$secs" bash -c '"$@"' _ "$@" >"$work/$name.out" 2>"$work/$name.err"
	else
		timeout "$secs" "$@" >"$work/$name.out" 2>"$work/$name.err"
	fi
	local rc=$?
	local ms=$((($(date +%s%N) - t0) / 1000000))
	tail -c 4000 "$work/$name.err" >>"$log"
	tail -c 2000 "$work/$name.out" >>"$log"
	say "$name: exit $rc in ${ms} ms"
	put "${name}_exit" "$rc"
	put "${name}_ms" "$ms"
	if [ "$rc" -ne 0 ]; then
		put "${name}_error" "$(tail -c 600 "$work/$name.err" | tr -d '\000' | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')"
	fi
	return $rc
}

put device "\"$device\""
put started "\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\""
put cpus "$(nproc)"

# 1. The GPU.
if command -v nvidia-smi >/dev/null; then
	timeout 20 nvidia-smi >"$out/nvidia-smi.txt" 2>&1
	put gpu "$(timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1 | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')"
else
	put gpu '"nvidia-smi not found"'
fi

# 2. The payload.
pay=$work/payload
mkdir -p "$pay"
export stash pay work
unpack() {
	local n
	n=$(cat "$stash/parts") || return 1
	local have
	have=$(ls "$stash"/part.* 2>/dev/null | wc -l)
	[ "$have" -eq "$n" ] || { echo "$have of $n parts in $stash: make the missing calls again" >&2; return 1; }
	local z=zstd
	if ! command -v zstd >/dev/null; then
		z=$stash/tools/zstd
		export LD_LIBRARY_PATH=$stash/tools${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
	fi
	local sum
	sum=$(cat "$stash"/part.* | sha256sum | cut -d' ' -f1)
	[ "$sum" = "$(cut -d' ' -f1 "$stash/payload.sha256")" ] || { echo "payload checksum mismatch: a part is damaged or from another pack" >&2; return 1; }
	cat "$stash"/part.* | "$z" -d -q | tar -C "$pay" -xf -
}
if ! step unpack 120 unpack; then
	say "cannot unpack the payload: stopping"
	exit 1
fi
bin=$pay/bin/gabarit
cache=$pay/cache
photos=$pay/celeba40
export bin photos
export GABARIT_CACHE=$cache
export LD_LIBRARY_PATH=$pay/lib
put celeba_photos "$(find "$photos" -type f | wc -l)"

# 3. The CUDA libraries the provider needs (CUDA 13, cuBLAS, cuRAND; cuDNN 9
# is opened at run time).
cudalib() {
	local dirs="/usr/local/cuda-13.0/targets/x86_64-linux/lib /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-13.0/lib64 /usr/local/cuda/lib64 /usr/lib/x86_64-linux-gnu"
	local py
	for py in /opt/torch/.venv/lib/python3*/site-packages/nvidia /usr/local/lib/python3*/dist-packages/nvidia; do
		[ -d "$py" ] && dirs="$dirs $(ls -d "$py"/*/lib 2>/dev/null | tr '\n' ' ')"
	done
	local found=""
	for lib in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libcudnn.so.9; do
		for d in $dirs; do
			if [ -e "$d/$lib" ]; then
				case ":$found:" in *":$d:"*) ;; *) found=$found:$d ;; esac
				break
			fi
		done
	done
	echo "${found#:}"
}
if [ "$device" = cuda ]; then
	extra=$(cudalib)
	export LD_LIBRARY_PATH=$pay/lib${extra:+:$extra}
	put ld_library_path "\"$LD_LIBRARY_PATH\""
	missing=$(ldd "$cache/ort/1.29.0-cuda/libonnxruntime_providers_cuda.so" 2>&1 | awk '/not found/ {print $1}' | tr '\n' ' ')
	put cuda_libraries_missing "\"$missing\""
	cudnn=no
	for d in ${LD_LIBRARY_PATH//:/ }; do [ -e "$d/libcudnn.so.9" ] && cudnn=$d; done
	put cudnn_found "\"$cudnn\""
fi

# 4. One photo on the device.
sample=$cache/testphotos/sample1.jpg
step smoke 120 "$bin" faces --device "$device" --json "$sample"
put smoke_faces "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["faces"]))' "$work/smoke.out" 2>/dev/null || echo null)"

# 5. The benchmark: embedder alone (fp32 and fp16), pipeline, ceiling, stages.
if [ "$quick" = 1 ]; then
	secs=0.3 rounds=1
else
	secs=3 rounds=2
fi
batches=64,128,256
[ "$device" = cpu ] && [ "$quick" = 1 ] && batches=8,32
if step bench 240 "$bin" bench pipeline --device "$device" --fp16 --json --seconds "$secs" --rounds "$rounds" --embed-batches "$batches"; then
	put bench "$(cat "$work/bench.out")"
fi

# 6. Templates: the device against the CPU, and fp16 against fp32.
step templates_cpu 150 "$bin" bench templates --device cpu --photos "$photos" --out "$work/t-cpu.jsonl"
if [ "$device" = cuda ]; then
	step templates_cuda 150 "$bin" bench templates --device cuda --photos "$photos" --out "$work/t-dev.jsonl"
	if [ -s "$work/t-cpu.jsonl" ] && [ -s "$work/t-dev.jsonl" ]; then
		step compare_cpu_cuda 60 "$bin" bench templates --compare "$work/t-cpu.jsonl" "$work/t-dev.jsonl"
		put compare_cpu_cuda "$(cat "$work/compare_cpu_cuda.out")"
	fi
fi
if [ -e "$cache/packs/default-fp16/manifest.json" ]; then
	step templates_fp16 150 "$bin" bench templates --device "$device" --pack default-fp16 --photos "$photos" --out "$work/t-fp16.jsonl"
	if [ -s "$work/t-cpu.jsonl" ] && [ -s "$work/t-fp16.jsonl" ]; then
		step compare_fp32_fp16 60 "$bin" bench templates --compare "$work/t-cpu.jsonl" "$work/t-fp16.jsonl"
		put compare_fp32_fp16 "$(cat "$work/compare_fp32_fp16.out")"
	fi
fi

# 7. End-to-end ingest into a fresh data directory, on the device and on
# the CPU of the same machine.
ingest() {
	local dev=$1 data=$work/data-$1
	rm -rf "$data"
	"$bin" source add --data "$data" --kind folder --path "$photos" --controller "gpu check" --purpose "benchmark" \
		--legal-basis consent --art9 "9(2)(a)" --jurisdiction FR --retention 30d --json >/dev/null || return 1
	"$bin" ingest --data "$data" --device "$dev" --json --quiet 1
}
devices=cpu
[ "$device" = cuda ] && devices="cuda cpu"
for dev in $devices; do
	if step "ingest_$dev" 180 ingest "$dev"; then
		put "ingest_$dev" "$(tail -1 "$work/ingest_$dev.out")"
	fi
done

# 8. The verdicts against the issue's goals.
python3 - "$summary" <<'EOF' >"$work/verdict.json"
import json, sys
s = json.load(open(sys.argv[1]))
v = {}
b = s.get("bench")
if isinstance(b, dict):
    e = b.get("embedder_faces_per_s") or {}
    h = b.get("fp16_embedder_faces_per_s") or {}
    best = max(list(e.values()) + list(h.values()) or [0])
    v["embedder_best_faces_per_s"] = best
    v["embedder_floor_18000"] = best >= 18000
    v["pipeline_250_vs_ceiling_goal_0.8"] = b.get("pipeline_250_vs_ceiling", 0) >= 0.8
c = s.get("compare_cpu_cuda")
if isinstance(c, dict):
    v["cpu_cuda_templates_agree"] = c.get("agree")
f = s.get("compare_fp32_fp16")
if isinstance(f, dict):
    v["fp16_templates_agree"] = f.get("agree")
ic, ip = s.get("ingest_cuda"), s.get("ingest_cpu")
if isinstance(ic, dict) and isinstance(ip, dict):
    v["ingest_cuda_over_cpu"] = round(ic["images_per_second"] / max(ip["images_per_second"], 1e-9), 2)
print(json.dumps(v))
EOF
put verdict "$(cat "$work/verdict.json")"
put finished_after_s "$(($(date +%s) - start))"
say "done: $summary"
rm -rf "$work"
