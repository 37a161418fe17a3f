// Package hnsw is the embedded approximate nearest-neighbour index: a
// Hierarchical Navigable Small World graph (Malkov & Yashunin, 2018) walked
// with int8-quantised vectors.
//
// The index keeps, per vector, only its int8 codes with one float32 scale
// (max|x|/127), its id and its links: at dimension 512 and M=16 about
// 0.7 KB of RAM per face (512 B of codes, 4 B of scale, 132 B of level-0
// links, the id, the id map and the rare upper levels; MemBytes tells).
// The float32 vectors stay where they already are, in the store. A search
// walks and ranks with the codes; scores are then within ScoreTolerance of
// the exact cosine. Given a Config.Source (the store's templates, or a
// file in a benchmark), a search re-scores its EfSearch best candidates
// with the exact vectors, so every returned Score is exact; the re-score
// runs outside the index's lock, and ids deleted meanwhile are dropped.
//
// Add quantises a chunk of vectors and appends their slots under the
// write lock, then links them into the graph on Config.Workers goroutines
// (default GOMAXPROCS) under the read lock, so that searches go on while a
// large batch is inserted; link lists are guarded by 4,096 striped locks,
// as hnswlib guards them by per-node locks.
//
// Delete takes effect at once: the slot is tombstoned (never returned, still
// traversed), its codes and id are zeroed, and the neighbours that linked
// to it are re-linked among its other neighbours so that the graph stays
// navigable. Slots are not reused; Compact rebuilds the graph from the
// live codes (as does `gabarit reindex`), and Tombstones tells when.
//
// Save and Load use a checksummed little-endian format ("GBHNSW2", codes
// and graph) so a loaded index answers as the saved one did; version 1
// files, which held float32 vectors, are refused: rebuild from the store.
//
// Measured numbers (`gabarit bench search`, calibrated synthetic faces,
// FAISS on the same vectors) are in docs/PERFORMANCE.md.
package hnsw
