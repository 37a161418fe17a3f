package store

import (
	"context"
	"errors"
	"fmt"
)

// IngestRecord is the outcome of ingesting one entry of a source: either an
// image with its faces, or a failure.
type IngestRecord struct {
	Locator string   // the entry's locator in the source; required
	SHA256  [32]byte // the content hash; zero when the entry could not be read
	Image   Image    // the image to add (SourceID, SHA256 and Locator are set from the record); ignored on failure
	Faces   []Face   // the image's faces; Template is ignored
	// Templates are the faces' templates in clear, one per face, handed to
	// the sealer of CommitIngest and never stored as such.
	Templates [][]float32
	Failed    string // non-empty: the entry failed for this short reason, nothing is added
}

// TemplateSealer encrypts the clear template of a face that has just
// received its id (f.ID, f.ImageID set) and returns the blob to store.
type TemplateSealer func(f Face, template []float32) ([]byte, error)

// IngestResult says what CommitIngest did with one record.
type IngestResult struct {
	ImageID int64   // 0 for a failure
	FaceIDs []int64 // the ids of the record's faces, in order; nil when Existing or failed
	// Existing is true when the source already held the same content: nothing
	// was added and the entry is marked done.
	Existing bool
}

// CommitIngest records a batch of ingested entries of one source in a single
// transaction: each image with its faces, templates sealed by seal under
// the face ids they receive, and each entry's progress (done or failed).
// Either the whole batch is committed or nothing is, so an ingest killed at
// any moment leaves every entry either fully recorded or untouched. A record
// whose content the source already holds adds nothing and is reported
// Existing. Any other error rolls the batch back; the caller may retry the
// records one by one to find the one at fault.
func (db *DB) CommitIngest(ctx context.Context, sourceID int64, recs []IngestRecord, seal TemplateSealer) ([]IngestResult, error) {
	var out []IngestResult
	err := db.Tx(ctx, func(tx *Tx) error {
		out = make([]IngestResult, len(recs))
		for i, r := range recs {
			if r.Failed != "" {
				if err := tx.MarkProgress(ctx, sourceID, r.Locator, r.SHA256, ProgressFailed, r.Failed); err != nil {
					return err
				}
				continue
			}
			if len(r.Templates) != len(r.Faces) {
				return fmt.Errorf("entry %q: %d templates for %d faces: %w", r.Locator, len(r.Templates), len(r.Faces), ErrInvalid)
			}
			img := r.Image
			img.SourceID, img.SHA256, img.Locator = sourceID, r.SHA256, r.Locator
			next := 0 // addImage seals the faces in order
			id, ids, err := tx.AddImageSealed(ctx, img, r.Faces, func(_ int64, f Face) ([]byte, error) {
				if next >= len(r.Templates) {
					return nil, fmt.Errorf("more faces sealed than given: %w", ErrInvalid)
				}
				t := r.Templates[next]
				next++
				return seal(f, t)
			})
			switch {
			case errors.Is(err, ErrExists):
				out[i] = IngestResult{ImageID: id, Existing: true}
			case err != nil:
				return fmt.Errorf("entry %q: %w", r.Locator, err)
			default:
				out[i] = IngestResult{ImageID: id, FaceIDs: ids}
			}
			if err := tx.MarkProgress(ctx, sourceID, r.Locator, r.SHA256, ProgressDone, ""); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("commit ingest of source %d: %w", sourceID, err)
	}
	return out, nil
}
