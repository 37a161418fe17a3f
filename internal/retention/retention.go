// Package retention purges what has been kept longer than its source
// declared: every image whose retention deadline has passed is deleted with
// its faces and templates, its faces are removed from the vector index at
// once, and each purge is recorded in the audit log in the same transaction
// as the deletion. The sealed crop of the face each search searched (kept
// for its verifiers) is erased ProbeCropRetention after the search; the
// search's record and audit entry stay.
//
// `gabarit purge` runs it once; the server runs it on a schedule.
package retention

import (
	"context"
	"fmt"
	"time"

	"gabarit/internal/store"
	"gabarit/internal/vindex"
)

// Store lists and purges expired images; *store.DB implements it.
type Store interface {
	ExpiredImages(ctx context.Context, now time.Time, limit int) ([]store.Image, error)
	PurgeImage(ctx context.Context, id int64, now time.Time, actor string) (faceIDs []int64, err error)
	PurgeProbeCrops(ctx context.Context, before, now time.Time, actor string) (int64, error)
}

// ProbeCropRetention is how long the crop of a search's probe face is kept
// for its verifiers: six months, the least the AI Act (Art. 26(6)) asks
// logs of a remote biometric identification system to be kept.
const ProbeCropRetention = 183 * 24 * time.Hour

// Report counts what a purge deleted.
type Report struct {
	Images     int
	Faces      int
	ProbeCrops int64 // probe crops of searches older than ProbeCropRetention
}

// batch is how many expired images are listed at a time.
const batch = 500

// Purge erases the probe crops of searches older than ProbeCropRetention,
// then deletes every image whose deadline is at or before now, in deadline
// order, and its faces from idx. It stops at the first error; what it
// purged before stays purged and is counted in the report.
func Purge(ctx context.Context, st Store, idx vindex.Index, now time.Time, actor string) (Report, error) {
	var rep Report
	n, err := st.PurgeProbeCrops(ctx, now.Add(-ProbeCropRetention), now, actor)
	if err != nil {
		return rep, err
	}
	rep.ProbeCrops = n
	for {
		imgs, err := st.ExpiredImages(ctx, now, batch)
		if err != nil {
			return rep, err
		}
		if len(imgs) == 0 {
			return rep, nil
		}
		for _, img := range imgs {
			ids, err := st.PurgeImage(ctx, img.ID, now, actor)
			if err != nil {
				return rep, err
			}
			if len(ids) > 0 {
				// Deleted from the store: the index must follow even if the
				// run is being interrupted.
				if err := idx.Delete(context.WithoutCancel(ctx), ids); err != nil {
					return rep, fmt.Errorf("delete %d faces from the index: %w", len(ids), err)
				}
			}
			rep.Images++
			rep.Faces += len(ids)
		}
	}
}
