package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"

	"gabarit/internal/face"
)

func TestEraseFaces(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	src, err := db.CreateSource(ctx, validSource())
	if err != nil {
		t.Fatal(err)
	}
	// Image 1: the person alone; image 2: the person and someone else.
	var ids [][]int64
	for i, n := range []int{1, 2} {
		faces := make([]Face, n)
		for j := range faces {
			faces[j] = Face{Box: face.Box{W: 5, H: 5}, ModelID: "m", Dim: 2, Template: []byte{1}}
		}
		loc := fmt.Sprint("img", i)
		_, fids, err := db.AddImage(ctx, Image{SourceID: src, SHA256: sha256.Sum256([]byte(loc)), Locator: loc, Width: 9, Height: 9}, faces)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, fids)
	}
	person := []int64{ids[0][0], ids[1][0], 999}
	faces, images, err := db.EraseFaces(ctx, person, "dpo", "rights/1")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(faces) != fmt.Sprint(person[:2]) || len(images) != 1 {
		t.Fatalf("erased faces %v, images %v", faces, images)
	}
	if _, err := db.Face(ctx, ids[0][0]); !errors.Is(err, ErrNotFound) {
		t.Errorf("erased face still there: %v", err)
	}
	if _, err := db.Image(ctx, images[0]); !errors.Is(err, ErrNotFound) {
		t.Errorf("image left without faces still there: %v", err)
	}
	if _, err := db.Face(ctx, ids[1][1]); err != nil {
		t.Errorf("the other person's face was erased: %v", err)
	}
	es, err := db.AuditEntries(ctx, 1, 0)
	if err != nil || len(es) != 1 || es[0].Action != "faces.erase" || es[0].Object != "rights/1" {
		t.Fatalf("audit = %+v, %v", es, err)
	}
	if string(es[0].Detail) != `{"faces":2,"images":1}` {
		t.Errorf("audit detail = %s", es[0].Detail)
	}
}
