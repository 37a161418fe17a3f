package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestAddImageSealed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTest(t)
	src := mustSource(t, db, nil)

	var sealedIDs []int64
	seal := func(id int64, f Face) ([]byte, error) {
		if f.ID != id || f.ImageID == 0 || f.Template != nil {
			return nil, fmt.Errorf("sealer got face %+v for id %d", f, id)
		}
		sealedIDs = append(sealedIDs, id)
		return fmt.Appendf(nil, "sealed for face %d", id), nil
	}
	imgID, ids, err := db.AddImageSealed(ctx, testImage(src, 1), testFaces(3, 0, 1), seal)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 3 || fmt.Sprint(ids) != fmt.Sprint(sealedIDs) {
		t.Fatalf("face ids %v, sealed %v", ids, sealedIDs)
	}
	var stored []string
	err = db.AllTemplates(ctx, func(faceID, sourceID int64, modelID string, tmpl []byte) error {
		if want := fmt.Sprintf("sealed for face %d", faceID); string(tmpl) != want || sourceID != src {
			t.Errorf("face %d: template %q source %d, want %q source %d", faceID, tmpl, sourceID, want, src)
		}
		stored = append(stored, string(tmpl))
		return nil
	})
	if err != nil || len(stored) != 3 {
		t.Fatalf("templates: %v, %d stored", err, len(stored))
	}

	// The same content again: nothing written, the sealer not called.
	sealedIDs = nil
	again, againIDs, err := db.AddImageSealed(ctx, testImage(src, 1), testFaces(3, 0, 1), seal)
	if !errors.Is(err, ErrExists) || again != imgID || fmt.Sprint(againIDs) != fmt.Sprint(ids) || sealedIDs != nil {
		t.Fatalf("second add: %v %d %v, sealer called for %v", err, again, againIDs, sealedIDs)
	}

	// A failing sealer leaves nothing behind.
	before := count(t, db, "faces")
	boom := errors.New("hardware key unavailable")
	_, _, err = db.AddImageSealed(ctx, testImage(src, 2), testFaces(2, 0, 2), func(id int64, f Face) ([]byte, error) {
		if len(sealedIDs) == 1 {
			return nil, boom
		}
		sealedIDs = append(sealedIDs, id)
		return []byte("x"), nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the sealer's error", err)
	}
	if got := count(t, db, "faces"); got != before {
		t.Fatalf("faces: %d after a failed seal, want %d", got, before)
	}
	if _, err := db.ImageBySHA(ctx, src, testImage(src, 2).SHA256); !errors.Is(err, ErrNotFound) {
		t.Fatalf("image of the failed seal: %v, want ErrNotFound", err)
	}
	if _, _, err := db.AddImageSealed(ctx, testImage(src, 3), testFaces(1, 0, 3), func(int64, Face) ([]byte, error) { return nil, nil }); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty sealed template: %v, want ErrInvalid", err)
	}
	if _, _, err := db.AddImageSealed(ctx, testImage(src, 3), testFaces(1, 0, 3), nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("nil sealer: %v, want ErrInvalid", err)
	}
}

// TestIDsNeverReused: ids of deleted rows are not handed out again, since
// audit entries, search records and sealed templates refer to them.
func TestIDsNeverReused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTest(t)
	src := mustSource(t, db, nil)
	img1, faces1, err := db.AddImage(ctx, testImage(src, 1), testFaces(2, 16, 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteImage(ctx, img1); err != nil {
		t.Fatal(err)
	}
	img2, faces2, err := db.AddImage(ctx, testImage(src, 2), testFaces(2, 16, 2))
	if err != nil {
		t.Fatal(err)
	}
	if img2 <= img1 || faces2[0] <= faces1[1] {
		t.Fatalf("image %d then %d, faces %v then %v: ids reused", img1, img2, faces1, faces2)
	}
	src2 := mustSource(t, db, func(s *Source) { s.Locator = "/srv/collections/b" })
	if src2 <= src {
		t.Fatalf("source ids %d then %d", src, src2)
	}
}
