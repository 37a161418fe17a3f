package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"

	"gabarit/internal/face"
)

// quarantineFixture stores one image with two faces and one with one face,
// and returns their ids.
func quarantineFixture(t *testing.T) (*DB, []int64) {
	t.Helper()
	ctx := context.Background()
	db := openTest(t)
	src := mustSource(t, db, nil)
	var ids []int64
	for i, n := range []int{2, 1} {
		faces := make([]Face, n)
		for j := range faces {
			faces[j] = Face{Box: face.Box{W: 5, H: 5}, ModelID: "m", Dim: 2, Template: []byte{1}}
		}
		loc := fmt.Sprint("img", i)
		_, fids, err := db.AddImage(ctx, Image{SourceID: src, SHA256: sha256.Sum256([]byte(loc)), Locator: loc, Width: 9, Height: 9}, faces)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, fids...)
	}
	return db, ids
}

func auditCount(t *testing.T, db *DB, action string) int {
	t.Helper()
	es, err := db.AuditEntries(context.Background(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range es {
		if e.Action == action {
			n++
		}
	}
	return n
}

func TestQuarantineFaceOnce(t *testing.T) {
	ctx := context.Background()
	db, ids := quarantineFixture(t)
	for i := range 3 {
		added, err := db.QuarantineFace(ctx, ids[0], FoundBySearch, "does not authenticate", "cli:ann")
		if err != nil || added != (i == 0) {
			t.Fatalf("quarantine %d: added %v, %v; want added only the first time", i, added, err)
		}
	}
	if n := auditCount(t, db, "face.quarantine"); n != 1 {
		t.Errorf("%d face.quarantine entries, want 1", n)
	}
	es, err := db.AuditEntries(ctx, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	last := es[len(es)-1]
	if last.Object != fmt.Sprint("face/", ids[0]) || string(last.Detail) != `{"found_by":"search","reason":"does not authenticate"}` {
		t.Errorf("audit entry = %s %s", last.Object, last.Detail)
	}
	// A face that is not stored is not quarantined.
	if added, err := db.QuarantineFace(ctx, 9999, FoundByIndex, "wrong length", SystemActor); err != nil || added {
		t.Errorf("unknown face: added %v, %v", added, err)
	}
	if _, err := db.QuarantineFace(ctx, ids[1], FoundByIndex, " ", SystemActor); !errors.Is(err, ErrInvalid) {
		t.Errorf("no reason: %v, want ErrInvalid", err)
	}

	q, err := db.Quarantined(ctx)
	if err != nil || len(q) != 1 || q[0].FaceID != ids[0] || q[0].Found != FoundBySearch || q[0].ModelID != "m" || q[0].At.IsZero() {
		t.Fatalf("quarantined = %+v, %v", q, err)
	}
	set, err := db.QuarantinedIDs(ctx, "m")
	if err != nil || len(set) != 1 || !set[ids[0]] {
		t.Errorf("quarantined ids of m = %v, %v", set, err)
	}
	if set, _ := db.QuarantinedIDs(ctx, "other"); len(set) != 0 {
		t.Errorf("quarantined ids of another model = %v", set)
	}
	among, err := db.QuarantinedAmong(ctx, ids)
	if err != nil || len(among) != 1 || !among[ids[0]] {
		t.Errorf("quarantined among %v = %v, %v", ids, among, err)
	}
	if n, err := db.QuarantineCount(ctx); n != 1 || err != nil {
		t.Errorf("count = %d, %v", n, err)
	}
}

func TestReleaseAndEraseQuarantined(t *testing.T) {
	ctx := context.Background()
	db, ids := quarantineFixture(t)
	if err := db.ReleaseFace(ctx, ids[0], "cli:op"); !errors.Is(err, ErrNotFound) {
		t.Errorf("release of a face not in quarantine: %v, want ErrNotFound", err)
	}
	if _, err := db.EraseQuarantined(ctx, ids[0], "cli:op"); !errors.Is(err, ErrNotFound) {
		t.Errorf("erase of a face not in quarantine: %v, want ErrNotFound", err)
	}
	for _, id := range ids {
		if _, err := db.QuarantineFace(ctx, id, FoundByRights, "does not authenticate", "cli:dpo"); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.ReleaseFace(ctx, ids[0], "cli:op"); err != nil {
		t.Fatal(err)
	}
	if n := auditCount(t, db, "face.quarantine.release"); n != 1 {
		t.Errorf("%d release entries, want 1", n)
	}
	// Erasing the image's other face leaves the image (face 0 is in it).
	images, err := db.EraseQuarantined(ctx, ids[1], "cli:op")
	if err != nil || len(images) != 0 {
		t.Fatalf("erase face %d: images %v, %v", ids[1], images, err)
	}
	// The last face of the second image takes the image with it.
	images, err = db.EraseQuarantined(ctx, ids[2], "cli:op")
	if err != nil || len(images) != 1 {
		t.Fatalf("erase face %d: images %v, %v", ids[2], images, err)
	}
	if _, err := db.Face(ctx, ids[2]); !errors.Is(err, ErrNotFound) {
		t.Errorf("erased face still stored: %v", err)
	}
	if n, _ := db.QuarantineCount(ctx); n != 0 {
		t.Errorf("%d faces left in quarantine, want 0", n)
	}
	if n := auditCount(t, db, "faces.erase"); n != 2 {
		t.Errorf("%d faces.erase entries, want 2", n)
	}
}
