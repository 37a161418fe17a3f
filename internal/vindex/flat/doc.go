// Package flat is the exact, brute-force vector index: every search compares
// the query with every stored vector. It is the reference the approximate
// indexes are measured against (recall 1.0 by construction), the fake index
// of the tests, and fast enough on its own for up to a few hundred thousand
// faces (about 10 ms per query per 100,000 vectors of dimension 512 on two
// cores).
//
// Vectors live in one contiguous []float32 slab, with an id↔slot map; a
// delete moves the last vector into the freed slot and zeroes the vacated
// memory, so an erased template does not linger in the slab. Save and Load
// use a small checksummed little-endian file format ("GBFLAT1").
package flat
