package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"gabarit/internal/face"
	"gabarit/internal/ingest"
	"gabarit/internal/records"
	"gabarit/internal/rights"
	"gabarit/internal/search"
	"gabarit/internal/source"
	"gabarit/internal/source/archive"
	"gabarit/internal/source/folder"
	"gabarit/internal/source/video"
	"gabarit/internal/store"
	"gabarit/internal/track"
	"gabarit/internal/vault"
	"gabarit/internal/vindex"
	"gabarit/internal/vstore"
)

// SelfieMatch is the least similarity between two selfies of one rights
// request: the threshold at a false-accept rate of 1e-4 on celeba-dev
// (`gabarit eval calibrate --root ../shared/data/celeba-dev --far 1e-4`:
// 0.4525, FAR 0.0000997 over 3,089,514 impostor pairs, TAR 0.810), ten
// times stricter than the search threshold (FAR 1e-3), since a request
// hands data over. At 1e-5 the threshold would be 0.679 with a TAR of only
// 0.394 on these in-the-wild photos: too many genuine requests refused.
const SelfieMatch = 0.4525

// SearchEngine wires a search engine: people who objected or whose data is
// restricted (in v) are never shown; the operating point comes from the
// model's open-set calibration at the policy's target FPIR (SearchFPIR);
// the searched face's crop is sealed with the search record
// (SealProbeCrop).
func SearchEngine(ctx context.Context, d *Data, m Model, v *vault.Vault, idx vindex.Index) (*search.Engine, error) {
	cal, err := m.OpenSet()
	if err != nil {
		return nil, err
	}
	fpir, err := SearchFPIR(ctx, d.DB)
	if err != nil {
		return nil, err
	}
	modelID, same := m.ModelID(), m.SamePerson()
	return &search.Engine{An: m, Store: d.DB, Keys: d.Keys, Index: idx, ModelID: modelID, Decider: cal, FPIR: fpir,
		// Checked once per search: what the vault holds when it starts.
		Hide: func(ctx context.Context) (func([]float32) (bool, error), error) {
			return v.Matcher(ctx, modelID, []vault.Kind{vault.Objection, vault.Restriction}, same)
		},
		// The searched face's crop is kept sealed with the search record,
		// for its verifiers; the photo is not kept.
		SealProbe: func(ctx context.Context, probe []byte, f face.Face) ([]byte, error) {
			return SealProbeCrop(ctx, budgetOf(m), d.Keys, probe, f)
		}}, nil
}

// RightsEngine wires a rights engine; idx may be nil for registering
// requests, and is required to process them. Candidates are decided with
// the model's open-set calibration; the DPO's identity methods come from
// records.json.
func RightsEngine(d *Data, m Model, v *vault.Vault, idx vindex.Index) (*rights.Engine, error) {
	org, err := LoadOrganisation(d.Dir)
	if err != nil {
		return nil, err
	}
	methods, err := IdentityMethods(d.Dir)
	if err != nil {
		return nil, err
	}
	cal, err := m.OpenSet()
	if err != nil {
		return nil, err
	}
	return &rights.Engine{An: m, Store: d.DB, Keys: d.Keys, Vault: v, Index: idx, ModelID: m.ModelID(), Decider: cal,
		Match: m.SamePerson(), SelfieMatch: SelfieMatch, Methods: methods, Image: ReadSourceImage,
		// The selfies' and the access package's crops: a DPO's action
		// waits for its share of the memory budget rather than fail.
		Crop: func(photo []byte, f face.Face) ([]byte, error) {
			return budgetedCrop(context.Background(), budgetOf(m), photo, f.Box)
		},
		Reserve: func(photo []byte, decode func() error) error {
			return Reserve(context.Background(), budgetOf(m), photo, decode)
		},
		Controller: org.Controller, DPO: org.DPO, Authority: org.Authority, OutDir: filepath.Join(d.Dir, "rights")}, nil
}

// LoadOrganisation reads DATA/records.json, the controller's declarations
// for the record of processing; a missing file declares nothing.
func LoadOrganisation(dir string) (records.Organisation, error) {
	org, _, err := records.Load(dir)
	return org, err
}

// BuildRecords is the record of processing activities (GDPR Art. 30) at now.
func BuildRecords(ctx context.Context, d *Data, now time.Time) (records.Record, error) {
	org, err := LoadOrganisation(d.Dir)
	if err != nil {
		return records.Record{}, err
	}
	srcs, err := d.DB.Sources(ctx)
	if err != nil {
		return records.Record{}, err
	}
	counts, err := d.DB.SourceCounts(ctx)
	if err != nil {
		return records.Record{}, err
	}
	return records.Build(now, org, srcs, counts), nil
}

// IngestOptions tune one ingest run.
type IngestOptions struct {
	Actor    string        // who runs it, for the audit log
	Workers  int           // images analysed at once (default GOMAXPROCS)
	Batch    int           // most images per transaction (default 32)
	Every    time.Duration // videos: interval between sampled frames
	Progress func(ingest.Stats)
	// Counted, when set, receives the number of entries of a collection
	// before the run starts (0 when unknown), for an ETA.
	Counted func(int)
	// Part, when set, limits the run to the entries it accepts (a part of
	// a job, see ingest.InPart); Counted then counts those.
	Part func(locator string) bool
	// Unjournaled leaves the run out of the audit log: the caller records
	// it (a part of a job: the job is one run, see ingest.Begin).
	Unjournaled bool
}

// ErrNotActive refuses to ingest a suspended source.
var ErrNotActive = errors.New("source is not active")

// Ingest runs one ingest of source id into the store and index h: it opens
// the declared collection, drops the faces of people who objected, records
// the run in the audit log whatever its outcome, and saves the index. An
// interrupted run (ctx cancelled) keeps what it committed and returns
// ctx's error with the summary so far.
func Ingest(ctx context.Context, d *Data, m Model, v *vault.Vault, h *vstore.Handle, id int64, o IngestOptions) (ingest.Summary, error) {
	src, err := d.DB.Source(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return ingest.Summary{}, fmt.Errorf("no source %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return ingest.Summary{}, err
	}
	if src.State != store.StateActive {
		return ingest.Summary{}, fmt.Errorf("source %d is %s, nothing is ingested from it: %w", id, StateName(src.State), ErrNotActive)
	}
	var coll source.Source
	var vids *video.Source
	if src.Kind == store.KindVideo {
		vids, err = video.New(src.Locator, video.Options{})
	} else {
		coll, err = OpenCollection(src)
	}
	if err != nil {
		return ingest.Summary{}, fmt.Errorf("source %d: %w", id, err)
	}
	if o.Counted != nil && coll != nil {
		o.Counted(countEntries(ctx, coll, o.Part))
	}
	modelID, same := m.ModelID(), m.SamePerson()
	cfg := ingest.Config{SourceID: id, ModelID: modelID, Workers: o.Workers, Batch: o.Batch, Progress: o.Progress, Part: o.Part,
		// "Never collect me again": faces of people who objected are dropped
		// before anything is stored.
		Suppress: func(ctx context.Context, t []float32) (bool, error) {
			return v.Match(ctx, modelID, t, []vault.Kind{vault.Objection}, same)
		}}
	// The start is in the audit log before anything is committed: a run
	// killed later (which runs no code) still has its trail, which the next
	// run closes with what it committed.
	var journal *ingest.Journal
	if !o.Unjournaled {
		if journal, err = ingest.Begin(ctx, d.DB, o.Actor, id); err != nil {
			return ingest.Summary{}, err
		}
	}
	var sum ingest.Summary
	var runErr error
	if vids != nil {
		vc := ingest.VideoConfig{Every: o.Every, Track: track.Config{SamePerson: same}}
		sum, runErr = ingest.RunVideos(ctx, vids, m, d.DB, d.Keys, h.Index, cfg, vc)
	} else {
		sum, runErr = ingest.Run(ctx, coll, m, d.DB, d.Keys, h.Index, cfg)
	}
	interrupted := runErr != nil && ctx.Err() != nil
	// The run is recorded (who ingested which source, when, with what
	// outcome), whatever its outcome.
	err = nil
	if journal != nil {
		err = journal.End(context.WithoutCancel(ctx), sum, interrupted, runErr != nil && !interrupted)
	}
	// What was committed is in the store and in the index (h.Index caught
	// up with the index outbox after every batch): save it, whatever the
	// outcome (the next open would catch up anyway).
	if saveErr := h.Save(context.WithoutCancel(ctx)); saveErr != nil {
		err = errors.Join(err, saveErr)
	}
	return sum, errors.Join(runErr, err)
}

// OpenCollection opens the declared collection of a folder or archive source.
func OpenCollection(src store.Source) (source.Source, error) {
	switch src.Kind {
	case store.KindFolder:
		return folder.Open(src.Locator, source.Limits{})
	case store.KindArchive:
		return archive.Open(src.Locator, source.Limits{})
	}
	return nil, fmt.Errorf("%s sources cannot be ingested yet", src.Kind)
}

// countEntries counts the entries of a collection that part accepts (nil:
// every entry); 0 (unknown) if listing fails.
func countEntries(ctx context.Context, src source.Source, part func(string) bool) int {
	n := 0
	err := src.Walk(ctx, func(it source.Item, _ error) error {
		if part == nil || part(it.Locator) {
			n++
		}
		return nil
	})
	if err != nil {
		return 0
	}
	return n
}

// ReadSourceImage reads an image of a source by its locator (for an access
// package or a crop): beneath a folder's root, or from an archive.
func ReadSourceImage(ctx context.Context, src store.Source, locator string) ([]byte, error) {
	const limit = source.DefaultMaxFileBytes
	switch src.Kind {
	case store.KindFolder:
		root, err := os.OpenRoot(src.Locator)
		if err != nil {
			return nil, err
		}
		defer root.Close()
		f, err := root.Open(filepath.FromSlash(locator))
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return readLimited(f, limit)
	case store.KindArchive:
		a, err := archive.Open(src.Locator, source.Limits{})
		if err != nil {
			return nil, err
		}
		var data []byte
		errFound := errors.New("found")
		err = a.Walk(ctx, func(it source.Item, err error) error {
			if err != nil || it.Locator != locator {
				return nil
			}
			rc, err := it.Open()
			if err != nil {
				return err
			}
			defer rc.Close()
			if data, err = readLimited(rc, limit); err != nil {
				return err
			}
			return errFound
		})
		if errors.Is(err, errFound) {
			return data, nil
		}
		if err == nil {
			err = os.ErrNotExist
		}
		return nil, err
	}
	return nil, fmt.Errorf("%s sources keep no still image", src.Kind)
}

func readLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err == nil && int64(len(b)) > limit {
		err = source.ErrTooLarge
	}
	return b, err
}
