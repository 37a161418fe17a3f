package ingest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"

	"gabarit/internal/face"
	"gabarit/internal/imageproc"
	"gabarit/internal/source"
	"gabarit/internal/source/video"
	"gabarit/internal/store"
	"gabarit/internal/track"
	"gabarit/internal/vindex"
)

// Videos is a collection of video files; *video.Source implements it.
type Videos interface {
	Walk(ctx context.Context, fn func(v video.Video, err error) error) error
	Frames(ctx context.Context, path string, every time.Duration, fn func(f video.Frame) error) error
}

// FrameAnalyzer finds and embeds the faces of a decoded video frame. It must
// be safe for concurrent use.
type FrameAnalyzer interface {
	AnalyzeFrame(ctx context.Context, img *imageproc.RGB) (face.Analysis, error)
}

// VideoConfig tunes the sampling and tracking of videos.
type VideoConfig struct {
	Every time.Duration // interval between sampled frames (default video.DefaultEvery)
	Track track.Config  // how faces are linked across frames
}

// RunVideos ingests every video of src: frames are sampled every
// vc.Every and analysed on cfg.Workers goroutines, the faces are linked
// across neighbouring frames into tracks, and each track is stored once —
// its best-quality face, with its track number and time code — as a face of
// the video's image record (identified, like an image, by the SHA-256 of the
// file). A video is committed in one transaction once all its frames are
// read, so an interrupted video is done again from the start by the next
// run, and never half-stored. Boxes are in the pixels of the sampled frames,
// whose size is the record's width and height.
//
// With cfg.Suppress, every face of every sampled frame is checked, and a
// track any of whose faces matched is dropped whole (not only the matching
// frames), and counted once in Stats.Suppressed.
func RunVideos(ctx context.Context, src Videos, an FrameAnalyzer, st Store, keys Keys, idx vindex.Index, cfg Config, vc VideoConfig) (Summary, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.ModelID == "" {
		return Summary{}, errors.New("ingest: model id required")
	}
	if vc.Every <= 0 {
		vc.Every = video.DefaultEvery
	}
	if err := keys.EnsureKey(ctx, cfg.SourceID); err != nil {
		return Summary{}, fmt.Errorf("ingest: data key of source %d: %w", cfg.SourceID, err)
	}
	r := &run{cfg: cfg, st: st, keys: keys, idx: idx, start: time.Now()}
	err := src.Walk(ctx, func(v video.Video, listErr error) error {
		if cfg.Part != nil && !cfg.Part(v.Locator) {
			return nil // another part's
		}
		r.count(func(s *Stats) { s.Seen++ })
		x := &item{locator: v.Locator, size: v.Size, mod: v.ModTime}
		if listErr != nil {
			var ie *source.ItemError
			if !errors.As(listErr, &ie) {
				return listErr
			}
			x.err = ie.Err
		} else {
			skip, err := r.videoItem(ctx, src, an, v, x, vc)
			if err != nil {
				return err
			}
			if skip {
				return nil
			}
		}
		if x.err != nil && ctx.Err() != nil {
			return ctx.Err() // interrupted, not failed: the next run does it again
		}
		if err := r.commit(ctx, []*item{x}); err != nil {
			return err
		}
		if cfg.Progress != nil {
			cfg.Progress(r.summary().Stats)
		}
		return nil
	})
	sum := r.summary()
	if err != nil {
		if ctx.Err() != nil {
			return sum, ctx.Err()
		}
		return sum, fmt.Errorf("ingest: walk source %d: %w", cfg.SourceID, err)
	}
	return sum, nil
}

// videoItem hashes one video and, unless it is known, samples, analyses
// and tracks it into x. skip reports a known video; err a failure of the
// store that stops the run. A failure of the video itself goes in x.err.
func (r *run) videoItem(ctx context.Context, src Videos, an FrameAnalyzer, v video.Video, x *item, vc VideoConfig) (skip bool, err error) {
	state, ok, err := r.st.Progress(ctx, r.cfg.SourceID, v.Locator)
	if err != nil {
		return false, err
	}
	if ok && state == store.ProgressDone {
		r.count(func(s *Stats) { s.Skipped++ })
		return true, nil
	}
	if x.sha, x.err = hashFile(v.Path); x.err != nil {
		return false, nil
	}
	r.count(func(s *Stats) { s.Bytes += v.Size })
	seen, err := r.st.SeenContent(ctx, r.cfg.SourceID, x.sha)
	if err != nil {
		return false, err
	}
	if seen {
		r.count(func(s *Stats) { s.Skipped++ })
		return true, nil
	}
	x.result, x.tracks, x.suppressed, x.err = r.trackVideo(ctx, src, an, v, vc)
	if errors.Is(x.err, errSuppress) && ctx.Err() == nil {
		return false, x.err // suppression fails closed: stop, store nothing of it
	}
	return false, nil
}

// errSuppress marks the failure of a suppression check.
var errSuppress = errors.New("suppression check")

// suppressedQuality marks a face that Config.Suppress matched, in place of
// its quality, before it is given to the tracker: the tracker keeps as a
// track's Best its face of highest quality, so a track that holds a
// suppressed face has one with this quality as its Best, and is dropped.
// Analyzers give qualities in [0, 1], and the store refuses infinite ones.
var suppressedQuality = math.Inf(1)

// taint marks the faces of a frame that Config.Suppress matches (see
// suppressedQuality). Faces without a template cannot be checked, nor
// stored.
func (r *run) taint(ctx context.Context, faces []face.Face) error {
	for i := range faces {
		if len(faces[i].Embedding) == 0 {
			continue
		}
		hit, err := r.cfg.Suppress(ctx, faces[i].Embedding)
		if err != nil {
			return fmt.Errorf("%w: %w", errSuppress, err)
		}
		if hit {
			faces[i].Quality = suppressedQuality
		}
	}
	return nil
}

// trackVideo samples a video, analyses its frames W at a time in parallel
// and feeds them to a tracker in order. The analysis it returns has one face
// per track (its best face) and, for each, the track's number and the
// time code of that face; suppressed counts the tracks dropped because
// Config.Suppress matched one of their faces.
func (r *run) trackVideo(ctx context.Context, src Videos, an FrameAnalyzer, v video.Video, vc VideoConfig) (_ face.Analysis, _ []trackRef, suppressed int, _ error) {
	tr := track.New(vc.Track)
	var tracks []track.Track
	var out face.Analysis
	pending := make([]video.Frame, 0, r.cfg.Workers)
	flush := func() error {
		res := make([]face.Analysis, len(pending))
		errs := make([]error, len(pending))
		var wg sync.WaitGroup
		for i := range pending {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res[i], errs[i] = an.AnalyzeFrame(ctx, pending[i].Image)
				if errs[i] == nil && r.cfg.Suppress != nil {
					errs[i] = r.taint(ctx, res[i].Faces)
				}
			}()
		}
		wg.Wait()
		for i, f := range pending {
			if errs[i] != nil {
				return fmt.Errorf("frame at %v: %w", f.Time, errs[i])
			}
			out.Width, out.Height = f.Image.W, f.Image.H
			tracks = append(tracks, tr.Add(f.Time, res[i].Faces)...)
		}
		pending = pending[:0]
		return nil
	}
	err := src.Frames(ctx, v.Path, vc.Every, func(f video.Frame) error {
		pending = append(pending, f)
		if len(pending) == cap(pending) {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return face.Analysis{}, nil, 0, err
	}
	tracks = append(tracks, tr.Flush()...)
	if out.Width == 0 {
		return face.Analysis{}, nil, 0, fmt.Errorf("no frame could be read: %w", video.ErrCorrupt)
	}
	tracks = slices.DeleteFunc(tracks, func(t track.Track) bool {
		if t.Best.Quality != suppressedQuality {
			return false
		}
		clear(t.Best.Embedding)
		suppressed++
		return true
	})
	// The kept tracks are numbered 1, 2, … in order of first appearance,
	// as if the dropped ones had never been seen: a gap in the numbers
	// would tell that someone was suppressed there.
	ids := make([]int, len(tracks))
	for i, t := range tracks {
		ids[i] = t.ID
	}
	slices.Sort(ids)
	refs := make([]trackRef, len(tracks))
	for i, t := range tracks {
		n, _ := slices.BinarySearch(ids, t.ID)
		out.Faces = append(out.Faces, t.Best)
		refs[i] = trackRef{id: int64(n + 1), at: t.BestTime}
	}
	return out, refs, suppressed, nil
}

// trackRef places a video face: its track and the time code of the frame
// the stored face comes from.
type trackRef struct {
	id int64
	at time.Duration
}

// hashFile returns the SHA-256 of a file's content.
func hashFile(path string) ([32]byte, error) {
	var sum [32]byte
	f, err := os.Open(path)
	if err != nil {
		return sum, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return sum, err
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}
