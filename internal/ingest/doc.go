// Package ingest turns the images of a declared source into stored faces:
// list → read → hash (skip what the source already gave) → detect and embed
// → seal and store → index.
//
// Analysis (decoding, detection, landmarks, embedding) runs on Config.Workers
// goroutines, so decoding one image overlaps with the networks of another and
// every core stays busy; the embedder gets all the faces of an image in one
// batch. One goroutine writes: it groups finished images into transactions
// (Config.Batch at most), each of which records the images, their faces with
// sealed templates and the entries' progress together, then adds the new
// templates to the vector index.
//
// # Idempotence and crashes
//
// An entry whose locator is recorded as done is skipped without being read.
// Content the source already gave under another name (same SHA-256), even if
// since purged or erased, is skipped too, so a purge or an erasure is never
// undone by a later run. Every transaction is atomic, so a process killed at
// any moment (kill -9, power loss) leaves each entry either fully recorded
// (image, faces, templates, progress) or not at all; running ingest again
// completes the work without duplicates. The vector index is derived data:
// faces committed but not yet in a saved index are added back from the store
// when the index is next opened (see cmd/gabarit).
//
// People who objected ("never collect me again") are kept out through
// Config.Suppress: their faces are dropped before anything is stored.
//
// One bad file never stops the batch: it is reported in Summary.Errors and
// recorded as failed, and the next run tries it again.
//
// The package depends on interfaces (face.Analyzer, Store, Keys, vindex.Index);
// cmd/gabarit wires the ONNX pipeline, the SQLite store, the keyring and the
// index.
package ingest
