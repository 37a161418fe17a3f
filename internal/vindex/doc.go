// Package vindex defines the contract shared by every vector index of
// gabarit: the embedded exact index (vindex/flat, also the reference used to
// measure recall), the embedded approximate index and the distributed engine.
//
// An index maps face ids (int64) to L2-normalised templates of one fixed
// dimension and answers nearest-neighbour queries by cosine similarity. It is
// derived data: the store holds the templates and can always rebuild it.
//
// Like database/sql/driver, this package holds only the contract (Index, Hit
// and the sentinel errors); the use cases (ingest, search, dsr) depend
// on it and cmd/ picks the implementation. Every implementation must pass the
// conformance suite in vindex/vindextest, whose central check is the GDPR
// invariant: once Delete returns, no later Search returns the deleted ids.
package vindex
