package vindex

import (
	"context"
	"errors"
	"io"
)

// ErrDim is returned (wrapped) when a vector or a query does not have the
// index's dimension.
var ErrDim = errors.New("vector has the wrong dimension")

// ErrClosed is returned (wrapped) by the methods of an index that was closed.
var ErrClosed = errors.New("index is closed")

// Hit is one search result.
type Hit struct {
	ID    int64   // id given to Add
	Score float32 // cosine similarity of the L2-normalised vectors, in [-1,1]; higher is closer (see Index.Search on its precision)
}

// Index is a nearest-neighbour index over L2-normalised vectors of one fixed
// dimension, keyed by int64 ids. All methods are safe for concurrent use.
//
// Methods that take a context return an error wrapping ctx.Err() when the
// context is done before they finish; the index stays consistent. After
// Close, they return an error wrapping ErrClosed.
type Index interface {
	// Dim returns the dimension of every vector in the index. It never changes.
	Dim() int

	// Add inserts or replaces vectors: vecs[i] becomes the vector of ids[i].
	// len(ids) must equal len(vecs) and every vector must have length Dim
	// (else an error wrapping ErrDim) and be L2-normalised by the caller.
	// When an id occurs twice in one call, the later vector wins. Once Add
	// returns, Search can find the new vectors and never returns a replaced
	// one. Add does not retain ids or vecs. On error the index may hold any
	// subset of the batch; since Add replaces, retrying the call is safe.
	// Safe for concurrent use with Search and Delete.
	Add(ctx context.Context, ids []int64, vecs [][]float32) error

	// Delete removes ids. Deletes take effect immediately: after Delete
	// returns nil, no Search, whenever it started, returns any of the ids,
	// until they are added again. Unknown ids are ignored. On error some ids
	// may remain; the caller must retry until Delete returns nil (erasure
	// depends on it).
	Delete(ctx context.Context, ids []int64) error

	// Search returns up to k hits whose Score is at least minScore, best
	// first, ties broken by smaller id, with no id twice. "No match" is an
	// answer: when no vector reaches minScore the result is empty, never the
	// nearest stranger. A minScore of -1 or less accepts every vector; k <= 0
	// gives no hits. q must have length Dim (else an error wrapping ErrDim). Exact indexes
	// return the true k nearest; approximate ones may miss some, within the
	// recall they declare to vindextest.
	//
	// Score is the cosine to float32 rounding (1e-4), except in an index
	// that scores with quantised codes, which declares its tolerance (to
	// vindextest, and in its documentation; hnsw without a Source: 0.01).
	// Either way a hit is returned only when the Score returned is at least
	// minScore, so a caller that decides "same person" near the threshold
	// with such an index re-scores the hits with the exact templates (or
	// gives the index a source of them, as hnsw.Config.Source).
	Search(ctx context.Context, q []float32, k int, minScore float32) ([]Hit, error)

	// Len returns the number of vectors in the index. A remote engine
	// counts them over the network, and may be approximate while its
	// replicas converge; after Close it returns an error wrapping
	// ErrClosed, or 0 for an embedded index.
	Len(ctx context.Context) (int, error)

	// Save writes the whole index to w in a versioned format that the
	// implementation's Load function reads back into an index giving the
	// same search results. Save does not close w. Implementations that
	// persist themselves (a remote engine) return an error wrapping
	// errors.ErrUnsupported, and their callers must carry on without a
	// file.
	Save(ctx context.Context, w io.Writer) error

	// Close releases the index's resources. Later calls to the other
	// methods return an error wrapping ErrClosed; a second Close returns nil.
	Close() error
}

// Count returns ix.Len with a background context, or -1 when it fails: a
// count for tests, where a failure then shows as a wrong number.
func Count(ix Index) int {
	n, err := ix.Len(context.Background())
	if err != nil {
		return -1
	}
	return n
}
