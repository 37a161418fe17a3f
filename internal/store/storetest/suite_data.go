package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"gabarit/internal/store"
)

// testOpenEmpty: a new store holds nothing, and its empty audit log checks.
func (s suite) testOpenEmpty(t *testing.T) {
	e := s.env(t)
	if err := e.db.Ping(e.ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if n := e.faceCount(); n != 0 {
		t.Errorf("FaceCount = %d", n)
	}
	if id, err := e.db.LastImageID(e.ctx); err != nil || id != 0 {
		t.Errorf("LastImageID = %d, %v", id, err)
	}
	if srcs, err := e.db.Sources(e.ctx); err != nil || len(srcs) != 0 {
		t.Errorf("Sources = %v, %v", srcs, err)
	}
	if us, err := e.db.Users(e.ctx); err != nil || len(us) != 0 {
		t.Errorf("Users = %v, %v", us, err)
	}
	if rs, err := e.db.RightsRequests(e.ctx); err != nil || len(rs) != 0 {
		t.Errorf("RightsRequests = %v, %v", rs, err)
	}
	if h := e.head(); h != 0 {
		t.Errorf("AuditHeadID = %d", h)
	}
	e.verified()
	if head, err := e.db.CheckAudit(e.ctx); err != nil || head.ID != 0 {
		t.Errorf("CheckAudit = %+v, %v", head, err)
	}
	if sealed, err := e.db.HoldsSealedData(e.ctx); err != nil || sealed {
		t.Errorf("HoldsSealedData = %v, %v", sealed, err)
	}
}

// testReopen: what was committed is there after the store is closed and
// opened again, the chain still verifies, and ids are never reused, not
// even the id of an image deleted before the store was closed.
func (s suite) testReopen(t *testing.T) {
	ctx := context.Background()
	target := s.newTarget(t)
	db, err := s.open(target)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx, db: db}
	src := e.source(nil)
	keep, keepFaces := e.add(src, 2)
	drop, _ := e.add(src, 1)
	if err := db.DeleteImage(ctx, drop); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AppendAudit(ctx, nil, store.AuditEntry{Actor: "cli:admin", Action: "test.reopen"}); err != nil {
		t.Fatal(err)
	}
	head := e.head()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	e.db = s.openAt(t, target)
	if f, err := e.db.Faces(ctx, keep); err != nil || len(f) != 2 || f[0].ID != keepFaces[0] {
		t.Errorf("faces after reopening: %+v, %v", f, err)
	}
	gone(t, "deleted image after reopening", func() error { _, err := e.db.Image(ctx, drop); return err }())
	if h := e.head(); h != head {
		t.Errorf("audit head %d after reopening, want %d", h, head)
	}
	e.verified()
	next, _ := e.add(src, 1)
	if next <= drop {
		t.Errorf("image id %d after reopening, not above the deleted image's %d", next, drop)
	}
	if last, err := e.db.LastImageID(ctx); err != nil || last != next {
		t.Errorf("LastImageID = %d, %v; want %d", last, err, next)
	}
}

// testSchemaTooNew: a database migrated by a newer gabarit is refused with
// ErrSchemaTooNew.
func (s suite) testSchemaTooNew(t *testing.T) {
	target := s.newTarget(t)
	db, err := s.open(target)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	rawExec(t, raw(t, target), `UPDATE schema_version SET version = version + 1`)
	db, err = s.open(target)
	if err == nil {
		db.Close()
	}
	if !errors.Is(err, store.ErrSchemaTooNew) {
		t.Fatalf("open of a newer schema: err = %v, want ErrSchemaTooNew", err)
	}
}

// testSourceDeclare: a declaration comes back as given, stamped by the
// store clock; an invalid one is refused and writes nothing.
func (s suite) testSourceDeclare(t *testing.T) {
	e := s.env(t)
	want := store.Source{Kind: store.KindArchive, Locator: "/srv/archive.zip", Controller: "Example Controller",
		Purpose: "find missing persons", LegalBasis: store.BasisConsent, Art9Condition: "9(2)(a) explicit consent",
		Jurisdiction: "BE", Retention: 36 * time.Hour, CreatedBy: "cli:admin"}
	id, err := e.db.CreateSource(e.ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	want.ID, want.CreatedAt, want.State = id, start, store.StateActive
	if got, err := e.db.Source(e.ctx, id); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Source = %+v, %v\nwant     %+v", got, err, want)
	}
	for name, mod := range map[string]func(*store.Source){
		"unknown kind":       func(s *store.Source) { s.Kind = "crawler" },
		"unknown basis":      func(s *store.Source) { s.LegalBasis = "because" },
		"lower-case country": func(s *store.Source) { s.Jurisdiction = "fr" },
		"no retention":       func(s *store.Source) { s.Retention = 0 },
		"no controller":      func(s *store.Source) { s.Controller = "" },
		"unknown state":      func(s *store.Source) { s.State = "paused" },
	} {
		bad := want
		bad.ID, bad.CreatedAt, bad.State = 0, time.Time{}, ""
		mod(&bad)
		if _, err := e.db.CreateSource(e.ctx, bad); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
	second := e.source(nil)
	srcs, err := e.db.Sources(e.ctx)
	if err != nil || len(srcs) != 2 || srcs[0].ID != id || srcs[1].ID != second || second <= id {
		t.Errorf("Sources = %+v, %v; want %d then %d", srcs, err, id, second)
	}
	_, err = e.db.Source(e.ctx, second+100)
	gone(t, "unknown source", err)
}

// testSourceStates: only an active source takes images; a suspended one
// takes them again once active; a retired one is "deleted", named retired.
func (s suite) testSourceStates(t *testing.T) {
	e := s.env(t)
	src := e.source(nil)
	if err := e.db.SetSourceState(e.ctx, src, store.StateSuspended); err != nil {
		t.Fatal(err)
	}
	img := e.image(src)
	if _, _, err := e.db.AddImage(e.ctx, img, testFaces(1, 1)); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("image of a suspended source: err = %v, want ErrInvalid", err)
	}
	if n := e.faceCount(); n != 0 {
		t.Errorf("a suspended source took %d faces", n)
	}
	if err := e.db.SetSourceState(e.ctx, src, store.StateActive); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.db.AddImage(e.ctx, img, testFaces(1, 1)); err != nil {
		t.Errorf("image of a source active again: %v", err)
	}
	if err := e.db.SetSourceState(e.ctx, src, store.StateDeleted); err != nil {
		t.Fatal(err)
	}
	got, err := e.db.Source(e.ctx, src)
	if err != nil || got.State != store.StateDeleted || got.State.Name() != "retired" {
		t.Errorf("retired source = %+v, %v", got, err)
	}
	if _, _, err := e.db.AddImage(e.ctx, e.image(src), nil); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("image of a retired source: err = %v, want ErrInvalid", err)
	}
	is(t, "unknown state", e.db.SetSourceState(e.ctx, src, "paused"), store.ErrInvalid)
	gone(t, "state of an unknown source", e.db.SetSourceState(e.ctx, src+100, store.StateActive))
}

// testSourceKeys: a source has at most one wrapped key; deleting it
// shreds it, and only then may a new one be put.
func (s suite) testSourceKeys(t *testing.T) {
	e := s.env(t)
	src := e.source(nil)
	_, err := e.db.SourceKey(e.ctx, src)
	gone(t, "key never put", err)
	key := []byte("wrapped key \x00\xff bytes")
	if err := e.db.PutSourceKey(e.ctx, src, key); err != nil {
		t.Fatal(err)
	}
	is(t, "second key", e.db.PutSourceKey(e.ctx, src, []byte("other")), store.ErrExists)
	is(t, "empty key", e.db.PutSourceKey(e.ctx, e.source(nil), nil), store.ErrInvalid)
	gone(t, "key of an unknown source", e.db.PutSourceKey(e.ctx, src+100, key))
	if got, err := e.db.SourceKey(e.ctx, src); err != nil || !bytes.Equal(got, key) {
		t.Errorf("SourceKey = %q, %v", got, err)
	}
	if sealed, err := e.db.HoldsSealedData(e.ctx); err != nil || !sealed {
		t.Errorf("HoldsSealedData with a key = %v, %v", sealed, err)
	}
	if h, err := e.db.SourceHoldings(e.ctx, src); err != nil || !h.Key {
		t.Errorf("holdings = %+v, %v; want the key", h, err)
	}
	if err := e.db.DeleteSourceKey(e.ctx, src); err != nil {
		t.Fatal(err)
	}
	_, err = e.db.SourceKey(e.ctx, src)
	gone(t, "shredded key", err)
	gone(t, "second shredding", e.db.DeleteSourceKey(e.ctx, src))
	if h, err := e.db.SourceHoldings(e.ctx, src); err != nil || h.Key {
		t.Errorf("holdings = %+v, %v; want no key", h, err)
	}
	if err := e.db.PutSourceKey(e.ctx, src, []byte("new")); err != nil {
		t.Errorf("new key after shredding: %v", err)
	}
}

// testImageRoundTrip: an image and its faces come back as stored, times in
// UTC to the millisecond, the deadline its ingestion plus the retention.
func (s suite) testImageRoundTrip(t *testing.T) {
	e := s.env(t)
	src := e.source(func(s *store.Source) { s.Retention = 48 * time.Hour })
	img := e.image(src)
	paris := time.FixedZone("CET", 3600)
	img.TakenAt = time.Date(2020, 6, 1, 8, 30, 0, 123_456_789, paris)
	faces := testFaces(3, 1)
	tc := 1500 * time.Millisecond
	faces[2].TrackID, faces[2].TimeCode = 7, &tc
	id, fids, err := e.db.AddImage(e.ctx, img, faces)
	if err != nil {
		t.Fatal(err)
	}
	if len(fids) != 3 || !increasing(fids) {
		t.Fatalf("face ids %v, want 3 increasing", fids)
	}
	want := img
	want.ID, want.IngestedAt, want.RetentionDeadline = id, start, start.Add(48*time.Hour)
	want.TakenAt = time.Date(2020, 6, 1, 7, 30, 0, 123_000_000, time.UTC)
	for name, get := range map[string]func() (store.Image, error){
		"Image":      func() (store.Image, error) { return e.db.Image(e.ctx, id) },
		"ImageBySHA": func() (store.Image, error) { return e.db.ImageBySHA(e.ctx, src, img.SHA256) },
	} {
		if got, err := get(); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %+v, %v\nwant %+v", name, got, err, want)
		}
	}
	for i := range faces {
		faces[i].ID, faces[i].ImageID = fids[i], id
	}
	if got, err := e.db.Faces(e.ctx, id); err != nil || !reflect.DeepEqual(got, faces) {
		t.Errorf("Faces = %+v, %v\nwant  %+v", got, err, faces)
	}
	if got, err := e.db.Face(e.ctx, fids[2]); err != nil || !reflect.DeepEqual(got, faces[2]) {
		t.Errorf("Face = %+v, %v", got, err)
	}
	_, err = e.db.Face(e.ctx, fids[2]+100)
	gone(t, "unknown face", err)
	_, err = e.db.Image(e.ctx, id+100)
	gone(t, "unknown image", err)
	_, err = e.db.ImageBySHA(e.ctx, src, [32]byte{1})
	gone(t, "unknown content", err)
	bad := e.image(src)
	bad.Width = 0
	if _, _, err := e.db.AddImage(e.ctx, bad, nil); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("image without width: err = %v, want ErrInvalid", err)
	}
	if _, _, err := e.db.AddImage(e.ctx, e.image(src+100), nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("image of an unknown source: err = %v, want ErrNotFound", err)
	}
}

// testImageIdempotent: the same content added twice to a source is one
// image with the same faces; the second add writes nothing and returns the
// first one's ids with ErrExists. In another source it is another image.
func (s suite) testImageIdempotent(t *testing.T) {
	e := s.env(t)
	src, other := e.source(nil), e.source(nil)
	img := e.image(src)
	id, fids, err := e.db.AddImage(e.ctx, img, testFaces(3, 1))
	if err != nil {
		t.Fatal(err)
	}
	again := img
	again.Locator = "elsewhere/copy.jpg"
	id2, fids2, err := e.db.AddImage(e.ctx, again, testFaces(2, 9))
	if !errors.Is(err, store.ErrExists) {
		t.Fatalf("second add: err = %v, want ErrExists", err)
	}
	if id2 != id || !slices.Equal(fids2, fids) {
		t.Errorf("second add returned %d %v, want %d %v", id2, fids2, id, fids)
	}
	if n := e.faceCount(); n != 3 {
		t.Errorf("%d faces, want 3", n)
	}
	if got, _ := e.db.Image(e.ctx, id); got.Locator != img.Locator {
		t.Errorf("locator %q after the second add, want %q", got.Locator, img.Locator)
	}
	img.SourceID = other
	id3, _, err := e.db.AddImage(e.ctx, img, testFaces(1, 1))
	if err != nil || id3 == id {
		t.Errorf("same content in another source: id %d, %v", id3, err)
	}
}

// testImageIdempotentInTx: content the source holds, added again inside a
// transaction, does not spoil the transaction: what follows commits.
func (s suite) testImageIdempotentInTx(t *testing.T) {
	e := s.env(t)
	src := e.source(nil)
	old := e.image(src)
	oldID, _, err := e.db.AddImage(e.ctx, old, testFaces(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	fresh := e.image(src)
	var freshID int64
	err = e.db.Tx(e.ctx, func(tx *store.Tx) error {
		id, _, err := tx.AddImage(e.ctx, old, testFaces(1, 1))
		if !errors.Is(err, store.ErrExists) || id != oldID {
			return fmt.Errorf("existing content in a transaction: id %d, err %w", id, err)
		}
		if freshID, _, err = tx.AddImage(e.ctx, fresh, testFaces(2, 2)); err != nil {
			return err
		}
		_, err = tx.AppendAudit(e.ctx, store.AuditEntry{Actor: "cli:op", Action: "test.ingest"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if f, err := e.db.Faces(e.ctx, freshID); err != nil || len(f) != 2 {
		t.Errorf("faces of the image added after the existing one: %v, %v", f, err)
	}
	if n := e.faceCount(); n != 3 {
		t.Errorf("%d faces, want 3", n)
	}
	e.verified()
}

// testImageAtomic: an image whose last face cannot be stored is not stored
// at all, nor are its other faces.
func (s suite) testImageAtomic(t *testing.T) {
	e := s.env(t)
	src := e.source(nil)
	img := e.image(src)
	faces := testFaces(3, 1)
	faces[2].SubjectID = 4242 // no such subject
	if _, _, err := e.db.AddImage(e.ctx, img, faces); err == nil {
		t.Fatal("AddImage with a face of an unknown subject succeeded")
	}
	faces = testFaces(3, 1)
	faces[2].Template = nil
	if _, _, err := e.db.AddImage(e.ctx, img, faces); err == nil {
		t.Fatal("AddImage with a face without template succeeded")
	}
	_, err := e.db.ImageBySHA(e.ctx, src, img.SHA256)
	gone(t, "image of a failed add", err)
	if n := e.faceCount(); n != 0 {
		t.Errorf("%d faces left by failed adds", n)
	}
	if _, _, err := e.db.AddImage(e.ctx, img, testFaces(3, 1)); err != nil {
		t.Errorf("the same image, valid: %v", err)
	}
}

// testTxAtomic: a transaction that fails or panics half-way leaves nothing
// of what it wrote, audit entries included, and the store goes on.
func (s suite) testTxAtomic(t *testing.T) {
	e := s.env(t)
	src := e.source(nil)
	boom := errors.New("boom")
	write := func(tx *store.Tx) {
		id, err := tx.CreateSource(e.ctx, store.Source{Kind: store.KindFolder, Locator: "/x", Controller: "c", Purpose: "p",
			LegalBasis: store.BasisConsent, Art9Condition: "9(2)(a)", Jurisdiction: "FR", Retention: time.Hour, CreatedBy: "c"})
		if err != nil {
			t.Errorf("CreateSource in a transaction: %v", err)
		}
		if _, _, err := tx.AddImage(e.ctx, e.image(src), testFaces(2, 1)); err != nil {
			t.Errorf("AddImage in a transaction: %v", err)
		}
		if _, err := tx.AppendAudit(e.ctx, store.AuditEntry{Actor: "a", Action: "test.tx", Object: fmt.Sprint("source/", id)}); err != nil {
			t.Errorf("AppendAudit in a transaction: %v", err)
		}
	}
	err := e.db.Tx(e.ctx, func(tx *store.Tx) error {
		write(tx)
		return boom
	})
	is(t, "failed transaction", err, boom)
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Tx did not pass the panic on")
			}
		}()
		_ = e.db.Tx(e.ctx, func(tx *store.Tx) error { // the panic is what is tested
			write(tx)
			panic("boom")
		})
	}()
	if srcs, _ := e.db.Sources(e.ctx); len(srcs) != 1 {
		t.Errorf("%d sources after rolled back transactions, want 1", len(srcs))
	}
	if n := e.faceCount(); n != 0 {
		t.Errorf("%d faces after rolled back transactions", n)
	}
	if h := e.head(); h != 0 {
		t.Errorf("audit head %d after rolled back transactions", h)
	}
	if _, _, err := e.db.AddImage(e.ctx, e.image(src), testFaces(1, 1)); err != nil {
		t.Errorf("write after rolled back transactions: %v", err)
	}
}

// seal is a TemplateSealer that binds the template to the face's ids.
func seal(f store.Face, tmpl []float32) ([]byte, error) {
	return fmt.Appendf(nil, "sealed face %d image %d len %d", f.ID, f.ImageID, len(tmpl)), nil
}

// record is an ingest record of content n with faces faces.
func record(n, faces int) store.IngestRecord {
	img := testImage(0, 10_000+n)
	r := store.IngestRecord{Locator: img.Locator, SHA256: img.SHA256, Image: img, Faces: testFaces(faces, n)}
	for range faces {
		r.Templates = append(r.Templates, []float32{1, 0, 0})
	}
	return r
}

// testCommitIngest: a batch records its images, faces with templates
// sealed under their ids, and the progress of every entry, failures
// included; content already held is reported Existing and adds nothing.
func (s suite) testCommitIngest(t *testing.T) {
	e := s.env(t)
	src := e.source(nil)
	failed := store.IngestRecord{Locator: "broken.jpg", Failed: "decode"}
	res, err := e.db.CommitIngest(e.ctx, src, []store.IngestRecord{record(1, 2), failed, record(2, 1)}, seal)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || res[0].ImageID == 0 || len(res[0].FaceIDs) != 2 || res[1].ImageID != 0 || len(res[2].FaceIDs) != 1 {
		t.Fatalf("results %+v", res)
	}
	faces, err := e.db.Faces(e.ctx, res[0].ImageID)
	if err != nil || len(faces) != 2 {
		t.Fatalf("faces %v, %v", faces, err)
	}
	for _, f := range faces {
		want, _ := seal(f, []float32{1, 0, 0})
		if !bytes.Equal(f.Template, want) {
			t.Errorf("face %d template %q, want %q", f.ID, f.Template, want)
		}
	}
	for loc, want := range map[string]store.ProgressState{record(1, 0).Locator: store.ProgressDone, "broken.jpg": store.ProgressFailed} {
		if got, ok, err := e.db.Progress(e.ctx, src, loc); err != nil || !ok || got != want {
			t.Errorf("progress of %s = %q %v %v, want %q", loc, got, ok, err, want)
		}
	}
	// A second batch with content already held and new content.
	res2, err := e.db.CommitIngest(e.ctx, src, []store.IngestRecord{record(1, 2), record(3, 1)}, seal)
	if err != nil {
		t.Fatal(err)
	}
	if !res2[0].Existing || res2[0].ImageID != res[0].ImageID || res2[0].FaceIDs != nil || res2[1].Existing || len(res2[1].FaceIDs) != 1 {
		t.Errorf("second batch results %+v", res2)
	}
	if n := e.faceCount(); n != 4 {
		t.Errorf("%d faces, want 4", n)
	}
	if imgs, fcs, err := e.db.ImagesAfter(e.ctx, src, 0); err != nil || imgs != 3 || fcs != 4 {
		t.Errorf("ImagesAfter = %d %d %v, want 3 4", imgs, fcs, err)
	}
	if imgs, fcs, err := e.db.ImagesAfter(e.ctx, src, res[2].ImageID); err != nil || imgs != 1 || fcs != 1 {
		t.Errorf("ImagesAfter(%d) = %d %d %v, want 1 1", res[2].ImageID, imgs, fcs, err)
	}
}

// testCommitIngestAtomic: a batch with one bad record (or whose sealer
// fails) records nothing, not even the progress of its good records.
func (s suite) testCommitIngestAtomic(t *testing.T) {
	e := s.env(t)
	src := e.source(nil)
	bad := record(2, 2)
	bad.Templates = bad.Templates[:1]
	if _, err := e.db.CommitIngest(e.ctx, src, []store.IngestRecord{record(1, 2), bad}, seal); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("batch with a record short of templates: err = %v, want ErrInvalid", err)
	}
	sealErr := errors.New("keyring unavailable")
	calls := 0
	failing := func(f store.Face, tmpl []float32) ([]byte, error) {
		if calls++; calls == 3 {
			return nil, sealErr
		}
		return seal(f, tmpl)
	}
	if _, err := e.db.CommitIngest(e.ctx, src, []store.IngestRecord{record(1, 2), record(3, 2)}, failing); !errors.Is(err, sealErr) {
		t.Errorf("batch whose sealer fails: err = %v, want the sealer's", err)
	}
	if n := e.faceCount(); n != 0 {
		t.Errorf("%d faces after failed batches", n)
	}
	for _, n := range []int{1, 3} {
		r := record(n, 0)
		_, err := e.db.ImageBySHA(e.ctx, src, r.SHA256)
		gone(t, "image of a failed batch", err)
		if _, ok, err := e.db.Progress(e.ctx, src, r.Locator); ok || err != nil {
			t.Errorf("progress of %s after a failed batch: %v, %v", r.Locator, ok, err)
		}
		if seen, err := e.db.SeenContent(e.ctx, src, r.SHA256); seen || err != nil {
			t.Errorf("content of a failed batch seen: %v, %v", seen, err)
		}
	}
}

// testSealedTemplates: AddImageSealed stores what the sealer makes of each
// face once its id is known; AllTemplates and TemplatesAfter stream the
// templates in face id order.
func (s suite) testSealedTemplates(t *testing.T) {
	e := s.env(t)
	src := e.source(nil)
	var seen []int64
	sealer := func(id int64, f store.Face) ([]byte, error) {
		seen = append(seen, id)
		return fmt.Appendf(nil, "face %d image %d", id, f.ImageID), nil
	}
	img, fids, err := e.db.AddImageSealed(e.ctx, e.image(src), testFaces(3, 1), sealer)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seen, fids) {
		t.Errorf("sealer saw ids %v, faces got %v", seen, fids)
	}
	_, more, err := e.db.AddImageSealed(e.ctx, e.image(src), testFaces(2, 2), sealer)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	err = e.db.AllTemplates(e.ctx, func(id, source int64, model string, tmpl []byte) error {
		got = append(got, id)
		f, err := e.db.Face(e.ctx, id)
		if err != nil {
			return err
		}
		if want := fmt.Sprintf("face %d image %d", id, f.ImageID); string(tmpl) != want || source != src || model != "test-model-v1" {
			t.Errorf("template of face %d: %q %d %q", id, tmpl, source, model)
		}
		return nil
	})
	if err != nil || !slices.Equal(got, slices.Concat(fids, more)) {
		t.Errorf("AllTemplates ids %v, %v; want %v", got, err, slices.Concat(fids, more))
	}
	got = nil
	err = e.db.TemplatesAfter(e.ctx, fids[2], func(id, _ int64, _ string, _ []byte) error {
		got = append(got, id)
		return nil
	})
	if err != nil || !slices.Equal(got, more) {
		t.Errorf("TemplatesAfter = %v, %v; want %v", got, err, more)
	}
	stop := errors.New("stop")
	if err := e.db.AllTemplates(e.ctx, func(int64, int64, string, []byte) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("AllTemplates with a failing fn: %v", err)
	}
	if f, _ := e.db.Faces(e.ctx, img); len(f) != 3 {
		t.Errorf("%d faces", len(f))
	}
}

// testFaceQueries: the read side the search and the index use.
func (s suite) testFaceQueries(t *testing.T) {
	e := s.env(t)
	a := e.source(nil)
	b := e.source(func(s *store.Source) { s.LegalBasis = store.BasisConsent; s.Controller = "Other Controller" })
	imgA, fa := e.add(a, 2)
	imgB, fb := e.add(b, 1)
	other := testFaces(1, 3)
	other[0].ModelID, other[0].Dim = "other-model", 64
	_, fo, err := e.db.AddImage(e.ctx, e.image(b), other)
	if err != nil {
		t.Fatal(err)
	}
	refs, err := e.db.FaceRefs(e.ctx, []int64{fa[1], fb[0], fo[0] + 100})
	if err != nil || len(refs) != 2 {
		t.Fatalf("FaceRefs = %v, %v", refs, err)
	}
	imA, _ := e.db.Image(e.ctx, imgA)
	if r := refs[fa[1]]; r.SourceID != a || r.ImageID != imgA || r.Locator != imA.Locator || r.LegalBasis != store.BasisPublicTask ||
		r.Controller != "Example Controller" {
		t.Errorf("FaceRefs[%d] = %+v", fa[1], r)
	}
	if r := refs[fb[0]]; r.SourceID != b || r.ImageID != imgB || r.LegalBasis != store.BasisConsent || r.Controller != "Other Controller" {
		t.Errorf("FaceRefs[%d] = %+v", fb[0], r)
	}
	if m, err := e.db.FaceModels(e.ctx); err != nil || !reflect.DeepEqual(m, map[string]int{"test-model-v1": 128, "other-model": 64}) {
		t.Errorf("FaceModels = %v, %v", m, err)
	}
	if n, maxID, err := e.db.FaceCountUpTo(e.ctx, "test-model-v1", fb[0]); err != nil || n != 3 || maxID != fb[0] {
		t.Errorf("FaceCountUpTo = %d %d %v, want 3 %d", n, maxID, err, fb[0])
	}
	if c, err := e.db.SourceCounts(e.ctx); err != nil || c[a] != [2]int64{1, 2} || c[b] != [2]int64{2, 2} {
		t.Errorf("SourceCounts = %v, %v", c, err)
	}
	samples, err := e.db.TemplateSamples(e.ctx)
	if err != nil || len(samples) != 2 || samples[0].FaceID != fa[0] || samples[1].FaceID != fb[0] || len(samples[0].Template) == 0 {
		t.Errorf("TemplateSamples = %+v, %v", samples, err)
	}
	if n := e.faceCount(); n != 4 {
		t.Errorf("FaceCount = %d, want 4", n)
	}
}

// testProgress: the outcome of an entry is recorded and replaced; the
// content stays seen after its image is erased.
func (s suite) testProgress(t *testing.T) {
	e := s.env(t)
	src := e.source(nil)
	img := e.image(src)
	if _, ok, err := e.db.Progress(e.ctx, src, img.Locator); ok || err != nil {
		t.Fatalf("progress before any: %v, %v", ok, err)
	}
	if err := e.db.MarkProgress(e.ctx, src, img.Locator, img.SHA256, store.ProgressFailed, "decode"); err != nil {
		t.Fatal(err)
	}
	if seen, _ := e.db.SeenContent(e.ctx, src, img.SHA256); seen {
		t.Error("a failed entry's content counts as seen")
	}
	_, fids, err := e.db.AddImage(e.ctx, img, testFaces(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.db.MarkProgress(e.ctx, src, img.Locator, img.SHA256, store.ProgressDone, ""); err != nil {
		t.Fatal(err)
	}
	if st, ok, err := e.db.Progress(e.ctx, src, img.Locator); err != nil || !ok || st != store.ProgressDone {
		t.Errorf("progress = %q %v %v, want done", st, ok, err)
	}
	if _, _, err := e.db.EraseFaces(e.ctx, fids, "cli:dpo", "rights/1"); err != nil {
		t.Fatal(err)
	}
	if seen, err := e.db.SeenContent(e.ctx, src, img.SHA256); err != nil || !seen {
		t.Errorf("erased content seen = %v, %v; want true", seen, err)
	}
	is(t, "empty locator", e.db.MarkProgress(e.ctx, src, "", img.SHA256, store.ProgressDone, ""), store.ErrInvalid)
	is(t, "unknown state", e.db.MarkProgress(e.ctx, src, "x", img.SHA256, "maybe", ""), store.ErrInvalid)
}

// testEraseFaces: an erasure deletes the faces and every image left
// without faces, keeps images that hold other people's faces, and is
// audited once with counts only; retrying it finds nothing more.
func (s suite) testEraseFaces(t *testing.T) {
	e := s.env(t)
	src := e.source(nil)
	alone, fa := e.add(src, 1)
	group, fg := e.add(src, 2)
	person := []int64{fa[0], fg[0], fg[1] + 1000}
	faces, images, err := e.db.EraseFaces(e.ctx, person, "cli:dpo", "rights/7")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(faces, person[:2]) || !slices.Equal(images, []int64{alone}) {
		t.Fatalf("erased faces %v images %v, want %v %v", faces, images, person[:2], []int64{alone})
	}
	_, err = e.db.Face(e.ctx, fa[0])
	gone(t, "erased face", err)
	_, err = e.db.Image(e.ctx, alone)
	gone(t, "image left without faces", err)
	if f, err := e.db.Faces(e.ctx, group); err != nil || len(f) != 1 || f[0].ID != fg[1] {
		t.Errorf("faces left in the group photo: %+v, %v", f, err)
	}
	if n := e.faceCount(); n != 1 {
		t.Errorf("FaceCount = %d, want 1", n)
	}
	if h, err := e.db.SourceHoldings(e.ctx, src); err != nil || h.Images != 1 || h.Faces != 1 {
		t.Errorf("holdings %+v, %v", h, err)
	}
	es := e.audit()
	if len(es) != 1 || es[0].Action != "faces.erase" || es[0].Actor != "cli:dpo" || es[0].Object != "rights/7" ||
		string(es[0].Detail) != `{"faces":2,"images":1}` {
		t.Fatalf("audit %+v", es)
	}
	faces, images, err = e.db.EraseFaces(e.ctx, person, "cli:dpo", "rights/7")
	if err != nil || len(faces) != 0 || len(images) != 0 {
		t.Errorf("second erasure: %v %v %v", faces, images, err)
	}
	if n := e.faceCount(); n != 1 {
		t.Errorf("FaceCount after the second erasure = %d", n)
	}
	e.verified()
}

// testDeleteFacesAndImage: the bare deletions, retried safely.
func (s suite) testDeleteFacesAndImage(t *testing.T) {
	e := s.env(t)
	src := e.source(nil)
	img, fids := e.add(src, 3)
	n, err := e.db.DeleteFaces(e.ctx, []int64{fids[0], fids[2] + 1000})
	if err != nil || n != 1 {
		t.Errorf("DeleteFaces = %d, %v; want 1", n, err)
	}
	if n, err := e.db.DeleteFaces(e.ctx, []int64{fids[0]}); err != nil || n != 0 {
		t.Errorf("DeleteFaces again = %d, %v; want 0", n, err)
	}
	if err := e.db.DeleteImage(e.ctx, img); err != nil {
		t.Fatal(err)
	}
	if n := e.faceCount(); n != 0 {
		t.Errorf("%d faces after their image was deleted", n)
	}
	gone(t, "second DeleteImage", e.db.DeleteImage(e.ctx, img))
}

// testRetentionPurge: an image is due at its ingestion plus its source's
// retention; purging it deletes it with its faces, audited; an image not
// yet due is refused.
func (s suite) testRetentionPurge(t *testing.T) {
	e := s.env(t)
	short := e.source(func(s *store.Source) { s.Retention = time.Hour })
	long := e.source(func(s *store.Source) { s.Retention = 30 * 24 * time.Hour })
	first, ff := e.add(short, 2)
	e.clock.Add(time.Minute)
	second, _ := e.add(short, 1)
	kept, _ := e.add(long, 1)

	if imgs, err := e.db.ExpiredImages(e.ctx, start.Add(59*time.Minute), 10); err != nil || len(imgs) != 0 {
		t.Errorf("expired before the deadline: %v, %v", imgs, err)
	}
	_, err := e.db.PurgeImage(e.ctx, first, start.Add(30*time.Minute), "system")
	is(t, "purge before the deadline", err, store.ErrInvalid)
	now := start.Add(2 * time.Hour)
	imgs, err := e.db.ExpiredImages(e.ctx, now, 10)
	if err != nil || len(imgs) != 2 || imgs[0].ID != first || imgs[1].ID != second {
		t.Fatalf("ExpiredImages = %+v, %v; want %d then %d", imgs, err, first, second)
	}
	if imgs, _ := e.db.ExpiredImages(e.ctx, now, 1); len(imgs) != 1 || imgs[0].ID != first {
		t.Errorf("ExpiredImages limit 1 = %+v", imgs)
	}
	_, err = e.db.ExpiredImages(e.ctx, now, 0)
	is(t, "limit 0", err, store.ErrInvalid)
	deleted, err := e.db.PurgeImage(e.ctx, first, now, "system")
	if err != nil || !slices.Equal(deleted, ff) {
		t.Fatalf("PurgeImage = %v, %v; want %v", deleted, err, ff)
	}
	_, err = e.db.Image(e.ctx, first)
	gone(t, "purged image", err)
	_, err = e.db.Face(e.ctx, ff[0])
	gone(t, "face of a purged image", err)
	_, err = e.db.PurgeImage(e.ctx, first, now, "system")
	gone(t, "second purge", err)
	if _, err := e.db.Image(e.ctx, kept); err != nil {
		t.Errorf("image of the long retention: %v", err)
	}
	if got := e.actions(fmt.Sprint("image/", first)); !slices.Equal(got, []string{"image.purge"}) {
		t.Errorf("audit of the purge: %v", got)
	}
	e.verified()
}

// testRetireSource: a retired source's images go wholesale, the others'
// stay, and a retirement can be re-run; then its progress may go too.
func (s suite) testRetireSource(t *testing.T) {
	e := s.env(t)
	a, b := e.source(nil), e.source(nil)
	a1, f1 := e.add(a, 2)
	a2, f2 := e.add(a, 1)
	b1, _ := e.add(b, 2)
	if err := e.db.MarkProgress(e.ctx, a, "dir/a1.jpg", sha256.Sum256([]byte("a1")), store.ProgressDone, ""); err != nil {
		t.Fatal(err)
	}
	imgs, faces, err := e.db.SourceImageBatch(e.ctx, a, 10)
	if err != nil || !slices.Equal(imgs, []int64{a1, a2}) || !slices.Equal(faces, slices.Concat(f1, f2)) {
		t.Fatalf("SourceImageBatch = %v %v, %v", imgs, faces, err)
	}
	_, err = e.db.DeleteRetiredImages(e.ctx, a, []int64{a1})
	is(t, "images of an active source", err, store.ErrInvalid)
	if err := e.db.SetSourceState(e.ctx, a, store.StateDeleted); err != nil {
		t.Fatal(err)
	}
	got, err := e.db.DeleteRetiredImages(e.ctx, a, []int64{a1, a2, b1})
	if err != nil || !slices.Equal(got, slices.Concat(f1, f2)) {
		t.Fatalf("DeleteRetiredImages = %v, %v", got, err)
	}
	if got, err := e.db.DeleteRetiredImages(e.ctx, a, []int64{a1, a2}); err != nil || len(got) != 0 {
		t.Errorf("re-run: %v, %v", got, err)
	}
	if h, err := e.db.SourceHoldings(e.ctx, a); err != nil || h.Images != 0 || h.Faces != 0 || h.State != store.StateDeleted {
		t.Errorf("retired source holds %+v, %v", h, err)
	}
	if h, _ := e.db.SourceHoldings(e.ctx, b); h.Images != 1 || h.Faces != 2 {
		t.Errorf("the other source holds %+v", h)
	}
	var n int64
	err = e.db.Tx(e.ctx, func(tx *store.Tx) error {
		var err error
		n, err = tx.DeleteSourceProgress(e.ctx, a)
		return err
	})
	if err != nil || n != 1 {
		t.Errorf("DeleteSourceProgress = %d, %v; want 1", n, err)
	}
	err = e.db.Tx(e.ctx, func(tx *store.Tx) error {
		_, err := tx.DeleteSourceProgress(e.ctx, b)
		return err
	})
	is(t, "progress of an active source", err, store.ErrInvalid)
}
