#!/usr/bin/python3
"""FAISS peer for `gabarit bench search`: runs FAISS HNSW and IVF-PQ on the
very vectors the Go benchmark wrote and prints one JSON object per
configuration on stdout (progress on stderr).

Run with the Debian interpreter that has python3-faiss (1.7.3):

    /usr/bin/python3 scripts/faiss_peer.py --base base.f32 --queries q.f32 \
        --gt gt.i64 --dim 512 --k 10 --threads 2

Inputs are little-endian: base and queries float32 row-major (L2-normalised,
compared by inner product = cosine), gt the exact top-k ids per query as
int64. Recall@k counts a returned id as found when its exact score reaches
the k-th exact score (ties count), as the Go side does; recall-match counts
only the exact top-k hits scoring at least --threshold.
"""
import argparse
import json
import os
import sys
import time

# FAISS parallelises with OpenMP; OpenBLAS's own threads on top of it spin
# against them (k-means training was 10-30x slower on 2 cores).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import faiss  # noqa: E402 (after the environment is set)
import numpy as np  # noqa: E402


def rss_bytes():
    """Anonymous resident memory: the base vectors are a read-only file
    mapping, whose pages are not the index's RAM."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


def add_chunks(index, base, chunk=100_000):
    """Adds the memory-mapped base in chunks, so that only one chunk is
    copied into anonymous memory at a time."""
    for lo in range(0, len(base), chunk):
        index.add(np.ascontiguousarray(base[lo:lo + chunk]))


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def measure(name, index, base, queries, gt, k, threshold, threads, build_s, ram_bytes, params):
    nq = len(queries)
    # Exact scores of the true top-k, for the recall rule and the matches.
    kth = np.array([base[gt[i, k - 1]] @ queries[i] for i in range(nq)], dtype=np.float32)
    faiss.omp_set_num_threads(1)
    lat = np.empty(nq)
    ids = np.empty((nq, k), dtype=np.int64)
    for i in range(nq):
        t0 = time.perf_counter()
        _, I = index.search(queries[i:i + 1], k)
        lat[i] = time.perf_counter() - t0
        ids[i] = I[0]
    faiss.omp_set_num_threads(threads)
    t0 = time.perf_counter()
    reps = 0
    while True:
        index.search(queries, k)
        reps += 1
        if time.perf_counter() - t0 > 2:
            break
    qps = reps * nq / (time.perf_counter() - t0)
    found = found_match = matches = 0
    for i in range(nq):
        true_scores = base[gt[i]] @ queries[i]
        matches += int((true_scores >= threshold).sum())
        for j in ids[i]:
            if j < 0:
                continue
            s = float(base[j] @ queries[i])
            if s >= kth[i] - 1e-6:
                found += 1
                if s >= threshold:
                    found_match += 1
    lat.sort()
    return {
        "engine": "faiss",
        "index": name,
        "params": params,
        "build_s": build_s,
        "recall": found / (nq * k),
        "recall_match": found_match / max(matches, 1),
        "p50_ms": 1000 * lat[nq // 2],
        "p99_ms": 1000 * lat[min(nq - 1, nq * 99 // 100)],
        "qps": qps,
        "bytes_per_face": ram_bytes / len(base),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--gt", required=True)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--threshold", type=float, default=0.3566)
    ap.add_argument("--hnsw-m", type=int, default=32)
    ap.add_argument("--hnsw-efc", type=int, default=40)
    ap.add_argument("--ef", default="16,32,64,128,256")
    ap.add_argument("--nprobe", default="8,16,32,64,128")
    ap.add_argument("--pq", type=int, default=64)
    ap.add_argument("--skip", default="", help="comma-separated: hnsw, ivfpq")
    a = ap.parse_args()
    faiss.omp_set_num_threads(a.threads)
    base = np.memmap(a.base, dtype="<f4", mode="r").reshape(-1, a.dim)
    queries = np.fromfile(a.queries, dtype="<f4").reshape(-1, a.dim)
    gt = np.fromfile(a.gt, dtype="<i8").reshape(len(queries), -1)
    n = len(base)
    skip = set(a.skip.split(","))
    log(f"faiss {faiss.__version__}: {n} vectors, {len(queries)} queries, {a.threads} threads")

    if "hnsw" not in skip:
        r0 = rss_bytes()
        index = faiss.IndexHNSWFlat(a.dim, a.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = a.hnsw_efc
        t0 = time.perf_counter()
        add_chunks(index, base)
        build_s = time.perf_counter() - t0
        ram = rss_bytes() - r0
        log(f"faiss HNSW{a.hnsw_m} built in {build_s:.1f} s")
        for ef in [int(x) for x in a.ef.split(",")]:
            index.hnsw.efSearch = ef
            r = measure(f"HNSW{a.hnsw_m},Flat", index, base, queries, gt, a.k, a.threshold, a.threads,
                        build_s, ram, f"efC={a.hnsw_efc} ef={ef}")
            print(json.dumps(r), flush=True)
        del index

    if "ivfpq" not in skip:
        nlist = 1 << max(4, min(12, int(np.log2(4 * np.sqrt(n)))))
        name = f"IVF{nlist},PQ{a.pq}"
        r0 = rss_bytes()
        index = faiss.index_factory(a.dim, name, faiss.METRIC_INNER_PRODUCT)
        # The factory turns on polysemous training, minutes of simulated
        # annealing that plain IVF-PQ search does not use.
        faiss.downcast_index(index).do_polysemous_training = False
        t0 = time.perf_counter()
        ntrain = min(n, max(40 * nlist, 50_000))
        rng = np.random.default_rng(1)
        train = base[np.sort(rng.choice(n, ntrain, replace=False))]
        index.train(train)
        del train
        add_chunks(index, base)
        build_s = time.perf_counter() - t0
        ram = rss_bytes() - r0
        log(f"faiss {name} trained on {ntrain} and built in {build_s:.1f} s")
        for nprobe in [int(x) for x in a.nprobe.split(",")]:
            index.nprobe = nprobe
            r = measure(name, index, base, queries, gt, a.k, a.threshold, a.threads, build_s, ram,
                        f"nprobe={nprobe}")
            print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
