// Package hnsw is the embedded approximate nearest-neighbour index: a
// Hierarchical Navigable Small World graph (Malkov & Yashunin, 2018) walked
// with int8-quantised vectors, whose final candidates are re-ranked exactly.
//
// Each vector is stored twice: as int8 codes with one float32 scale per
// vector (max|x|/127), used for every distance of the graph walk, and as the
// float32 original, used only to re-rank the ef best candidates of a search
// so that every returned Score is the exact cosine (the vindex contract holds
// scores to 1e-4, which int8 codes cannot give). At dimension 512 and M=16
// that is 2,752 B of RAM per face (measured; up to a quarter more while the
// arrays have growth slack): 2,048 B of float32, 516 B of codes and scale,
// 132 B of level-0 links, plus the id, the id map and the rare upper levels.
// Dropping the float32 copy (re-ranking from the store instead) would bring
// it to about 0.7 KB; that is the next stage's job.
//
// Measured by BenchmarkHNSW (100,000 clustered 512-d faces, 2 cores, pure
// Go): build 262 s single-threaded; with EfSearch 64, recall@10 0.915 (0.991
// of the same-person hits), p99 1.9 ms; with EfSearch 256, 0.953 (1.000),
// p99 5.1 ms. The misses are strangers ranked below the person's own faces,
// in a synthetic distribution with no structure between persons.
//
// Delete takes effect at once: the slot is tombstoned (never returned, still
// traversed), its vector bytes and id are zeroed, and the neighbours that
// linked to it are re-linked among its other neighbours so that the graph
// stays navigable. Slots are not reused; Compact rebuilds the graph from the
// live vectors (as does `gabarit reindex`), and Tombstones tells when.
//
// Searches share a read lock and run in parallel; Add, Delete and Compact
// take the write lock (Add once per vector, so searches interleave with a
// large batch). Save and Load use a checksummed little-endian format
// ("GBHNSW1") that keeps the graph, so a loaded index answers exactly as the
// saved one did.
package hnsw
