// Package vstore keeps a data directory's vector index on disk and in step
// with the store.
//
// The index is derived data: the store holds every face and its encrypted
// template, and the index can always be rebuilt from them (Rebuild, `gabarit
// reindex`). It is saved atomically (a temporary file, fsync, rename, fsync
// of the directory) as one file holding a header (format, model, dimension,
// the largest face id it includes, its size) and the index's own encoding.
//
// Open loads the saved index and brings it up to date: faces committed after
// it was saved (an ingest killed before saving) are decrypted and added; if
// faces it holds were deleted since (a purge or an erasure by a process that
// did not save the index), it is rebuilt. Searches also check every hit
// against the store (package search), so a stale index never shows a deleted
// face.
//
// A face whose sealed template cannot be opened (altered or swapped bytes)
// never stops a rebuild or a catch-up: it is put in quarantine and left out
// (Quarantine); Release puts it back once its template opens again, Erase
// deletes it.
//
// The file holds templates in a form the index can compare (for the
// approximate index, int8 codes), not encrypted: it is kept with mode 0600 in
// the data directory and excluded from backups, which can rebuild it.
package vstore

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"gabarit/internal/keyring"
	"gabarit/internal/store"
	"gabarit/internal/vindex"
)

// magic starts every index file.
const magic = "GBVSTORE1\n"

// maxHeader bounds the JSON header of a file.
const maxHeader = 1 << 16

// Store is what vstore reads from the relational store; *store.DB implements it.
type Store interface {
	TemplatesAfter(ctx context.Context, after int64, fn func(faceID, sourceID int64, modelID string, template []byte) error) error
	FaceCountUpTo(ctx context.Context, modelID string, maxID int64) (n, maxStored int64, err error)
}

// Quarantine records faces whose sealed template cannot be opened; a Store
// that also implements it (as *store.DB does) has such faces skipped:
// they are put in quarantine (audited once) and left out of the index, and
// faces already in quarantine are left out without being opened. With a
// Store that does not, such a face fails Open and Rebuild.
type Quarantine interface {
	QuarantineFace(ctx context.Context, id int64, found, reason, actor string) (bool, error)
	QuarantinedIDs(ctx context.Context, modelID string) (map[int64]bool, error)
}

// Opener decrypts templates; *keyring.Keyring implements it.
type Opener interface {
	Open(ctx context.Context, sourceID, faceID int64, modelID string, blob []byte) ([]float32, error)
}

// Kind is an index implementation: its name (recorded in the file), how to
// make an empty one and how to load a saved one.
type Kind struct {
	Name string
	New  func(dim int) vindex.Index
	Load func(r io.Reader) (vindex.Index, error)
}

// header describes a saved index.
type header struct {
	Kind    string `json:"kind"`
	ModelID string `json:"model_id"`
	Dim     int    `json:"dim"`
	MaxFace int64  `json:"max_face_id"` // every face with a larger id is missing from the index
	Len     int    `json:"len"`
}

// Handle is an open index and what it was saved up to.
type Handle struct {
	Index   vindex.Index
	path    string
	kind    Kind
	modelID string
	dim     int
	mu      sync.Mutex // guards maxFace and serialises saves
	maxFace int64      // the largest face id added through this handle or loaded
	// Rebuilt and CaughtUp say what Open had to do: rebuild the index from
	// the store, or add that many faces committed after the last save.
	Rebuilt  bool
	CaughtUp int
	// Damaged is why the saved file could not be loaded (nil when it was
	// loaded, or when there was none). Open then rebuilt the index and saved
	// it in the file's place, so that the next Open loads it instead of
	// rebuilding again; if that save failed, Damaged says so too.
	Damaged error
}

// Open loads the index of model modelID saved at path, or makes it from the
// store when there is none or it cannot be used (another kind, model or
// dimension, a corrupt file, faces deleted since), then adds the faces
// committed since it was saved.
func Open(ctx context.Context, path string, kind Kind, modelID string, dim int, st Store, keys Opener) (*Handle, error) {
	h := &Handle{path: path, kind: kind, modelID: modelID, dim: dim}
	hd, idx, err := load(path, kind)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		h.Rebuilt = true
	case err != nil:
		h.Rebuilt = true // derived data: rebuild rather than fail
		h.Damaged = err
	case hd.Kind != kind.Name || hd.ModelID != modelID || hd.Dim != dim:
		_ = idx.Close() // not used; a Close error changes nothing
		h.Rebuilt = true
	default:
		n, _, err := st.FaceCountUpTo(ctx, modelID, hd.MaxFace)
		if err == nil {
			// Faces quarantined since the save leave the index; none of
			// them counts.
			var out int64
			out, err = dropQuarantined(ctx, st, idx, modelID, hd.MaxFace)
			n -= out
		}
		if err != nil {
			_ = idx.Close() // the store error is the one to report
			return nil, err
		}
		if n != int64(idx.Len()) {
			_ = idx.Close() // faces were deleted since the save: rebuild
			h.Rebuilt = true
		} else {
			h.Index, h.maxFace = idx, hd.MaxFace
		}
	}
	if h.Rebuilt {
		h.Index, h.maxFace = kind.New(dim), 0
	}
	added, err := h.addFrom(ctx, st, keys, h.maxFace)
	if err != nil {
		_ = h.Index.Close() // the catch-up error is the one to report
		return nil, err
	}
	h.CaughtUp = added
	if h.Damaged != nil {
		// Rebuild once, not at every open: the rebuilt index replaces the
		// damaged file. A failed save leaves the index usable in memory.
		if err := h.Save(ctx); err != nil {
			h.Damaged = fmt.Errorf("%w (the rebuilt index could not be saved: %w)", h.Damaged, err)
		}
	}
	return h, nil
}

// Rebuild makes a new index from every template of the store and saves it.
func Rebuild(ctx context.Context, path string, kind Kind, modelID string, dim int, st Store, keys Opener) (*Handle, error) {
	h := &Handle{path: path, kind: kind, modelID: modelID, dim: dim, Index: kind.New(dim), Rebuilt: true}
	if _, err := h.addFrom(ctx, st, keys, 0); err != nil {
		_ = h.Index.Close() // the rebuild error is the one to report
		return nil, err
	}
	if err := h.Save(ctx); err != nil {
		_ = h.Index.Close() // the save error is the one to report
		return nil, err
	}
	return h, nil
}

// dropQuarantined deletes from idx the faces of model modelID in
// quarantine with ids up to maxID, and returns how many there are; 0 when
// st keeps no quarantine.
func dropQuarantined(ctx context.Context, st Store, idx vindex.Index, modelID string, maxID int64) (int64, error) {
	q, ok := st.(Quarantine)
	if !ok {
		return 0, nil
	}
	set, err := q.QuarantinedIDs(ctx, modelID)
	if err != nil {
		return 0, err
	}
	var ids []int64
	for id := range set {
		if id <= maxID {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return 0, nil
	}
	if err := idx.Delete(ctx, ids); err != nil {
		return 0, fmt.Errorf("drop quarantined faces from the index: %w", err)
	}
	return int64(len(ids)), nil
}

// addFrom adds the templates of model h.modelID with ids above after.
// Templates of a shredded source are skipped: they are unreadable by design.
// So are faces in quarantine, and faces whose template cannot be opened,
// which are put in quarantine (see Quarantine).
func (h *Handle) addFrom(ctx context.Context, st Store, keys Opener, after int64) (int, error) {
	const batch = 1024
	q, _ := st.(Quarantine)
	var held map[int64]bool
	if q != nil {
		var err error
		if held, err = q.QuarantinedIDs(ctx, h.modelID); err != nil {
			return 0, fmt.Errorf("vector index: %w", err)
		}
	}
	var ids []int64
	var vecs [][]float32
	added := 0
	flush := func() error {
		if len(ids) == 0 {
			return nil
		}
		if err := h.Index.Add(ctx, ids, vecs); err != nil {
			return fmt.Errorf("index %d faces: %w", len(ids), err)
		}
		added += len(ids)
		ids, vecs = ids[:0], vecs[:0]
		return nil
	}
	err := st.TemplatesAfter(ctx, after, func(faceID, sourceID int64, modelID string, blob []byte) error {
		h.maxFace = max(h.maxFace, faceID)
		if modelID != h.modelID || held[faceID] {
			return nil
		}
		v, err := keys.Open(ctx, sourceID, faceID, modelID, blob)
		if errors.Is(err, keyring.ErrShredded) {
			return nil
		}
		if q != nil && errors.Is(err, keyring.ErrBadTemplate) {
			// One damaged record never stops the index: it is left out.
			_, qerr := q.QuarantineFace(ctx, faceID, store.FoundByIndex, keyring.TemplateFault(err), store.SystemActor)
			return qerr
		}
		if err != nil {
			return fmt.Errorf("face %d: %w", faceID, err)
		}
		ids, vecs = append(ids, faceID), append(vecs, v)
		if len(ids) == batch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return added, fmt.Errorf("vector index: %w", err)
	}
	return added, nil
}

// Added records that faces up to id maxID have been added to the index
// through h (by an ingest), so that the next Save includes them.
// It is safe to call concurrently with Save.
func (h *Handle) Added(maxID int64) {
	h.mu.Lock()
	h.maxFace = max(h.maxFace, maxID)
	h.mu.Unlock()
}

// Save writes the index atomically to its path. Saves are serialised.
func (h *Handle) Save(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	hd := header{Kind: h.kind.Name, ModelID: h.modelID, Dim: h.dim, MaxFace: h.maxFace, Len: h.Index.Len()}
	if err := save(ctx, h.path, hd, h.Index); err != nil {
		return fmt.Errorf("save vector index: %w", err)
	}
	return nil
}

// Close closes the index without saving it.
func (h *Handle) Close() error { return h.Index.Close() }

func load(path string, kind Kind) (header, vindex.Index, error) {
	f, err := os.Open(path)
	if err != nil {
		return header{}, nil, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	m := make([]byte, len(magic))
	if _, err := io.ReadFull(r, m); err != nil || string(m) != magic {
		return header{}, nil, fmt.Errorf("%s: not a vector index file", path)
	}
	var n uint32
	if err := binary.Read(r, binary.LittleEndian, &n); err != nil || n > maxHeader {
		return header{}, nil, fmt.Errorf("%s: bad header", path)
	}
	js := make([]byte, n)
	if _, err := io.ReadFull(r, js); err != nil {
		return header{}, nil, fmt.Errorf("%s: %w", path, err)
	}
	var hd header
	if err := json.Unmarshal(js, &hd); err != nil {
		return header{}, nil, fmt.Errorf("%s: header: %w", path, err)
	}
	if hd.Kind != kind.Name {
		return hd, nil, fmt.Errorf("%s: index kind %q, want %q", path, hd.Kind, kind.Name)
	}
	idx, err := kind.Load(r)
	if err != nil {
		return header{}, nil, fmt.Errorf("%s: %w", path, err)
	}
	if idx.Len() != hd.Len {
		_ = idx.Close() // corrupt: the mismatch is the error
		return header{}, nil, fmt.Errorf("%s: header says %d vectors, index holds %d", path, hd.Len, idx.Len())
	}
	return hd, idx, nil
}

func save(ctx context.Context, path string, hd header, idx vindex.Index) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".index-*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()      // already failing
			_ = os.Remove(tmp) // best effort: a leftover temp file is harmless
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	js, err := json.Marshal(hd)
	if err != nil {
		return err
	}
	if _, err := w.WriteString(magic); err != nil {
		return err
	}
	if err := binary.Write(w, binary.LittleEndian, uint32(len(js))); err != nil {
		return err
	}
	if _, err := w.Write(js); err != nil {
		return err
	}
	if err := idx.Save(ctx, w); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
