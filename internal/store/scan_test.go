package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"gabarit/internal/face"
	"gabarit/internal/store"
	"gabarit/internal/store/storetest"
)

// TestTemplatesInRange streams ranges of the faces of one model, across
// pages, on SQLite and PostgreSQL: the faces of the range, in id order,
// with their source and template; none of another model; an fn error and
// a cancelled context stop it; many streams at once whose fn reads the
// store all finish (fn runs with no connection held).
func TestTemplatesInRange(t *testing.T) {
	for _, tt := range []struct {
		name   string
		target func(t *testing.T) string
	}{
		{"SQLite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "gabarit.db") }},
		{"PostgreSQL", func(t *testing.T) string { return storetest.Postgres(t) }},
	} {
		t.Run(tt.name, func(t *testing.T) { testTemplatesInRange(t, tt.target(t)) })
	}
}

type rangeRow struct {
	id, source int64
	template   []byte
}

func testTemplatesInRange(t *testing.T, target string) {
	ctx := context.Background()
	db, _ := storetest.OpenTarget(t, target)
	srcs := []int64{storetest.Source(t, db, store.BasisConsent, time.Hour), storetest.Source(t, db, store.BasisConsent, time.Hour)}

	if n, lo, hi, err := db.FaceIDRange(ctx, "m"); err != nil || n != 0 || lo != 0 || hi != 0 {
		t.Fatalf("FaceIDRange of an empty store = %d, %d, %d, %v; want 0, 0, 0", n, lo, hi, err)
	}
	// 450 images of 3 faces; every fifth image's faces are of another
	// model: 1,080 faces of model m, more than two pages.
	var want []rangeRow
	for i := range 450 {
		model := "m"
		if i%5 == 0 {
			model = "other"
		}
		src := srcs[i%2]
		var faces []store.Face
		for j := range 3 {
			faces = append(faces, store.Face{Box: face.Box{X: float64(10 + 40*j), Y: 10, W: 30, H: 30}, ModelID: model, Dim: 4,
				Template: fmt.Appendf(nil, "template %d.%d", i, j)})
		}
		_, ids, err := db.AddImage(ctx, store.Image{SourceID: src, Locator: fmt.Sprintf("img%04d.jpg", i),
			SHA256: [32]byte{byte(i), byte(i >> 8), 1}, Width: 100, Height: 100}, faces)
		if err != nil {
			t.Fatal(err)
		}
		if model == "m" {
			for j, id := range ids {
				want = append(want, rangeRow{id, src, faces[j].Template})
			}
		}
	}
	stream := func(lo, hi int64) []rangeRow {
		t.Helper()
		var got []rangeRow
		err := db.TemplatesInRange(ctx, "m", lo, hi, func(id, source int64, model string, template []byte) error {
			if model != "m" {
				t.Fatalf("face %d of model %q streamed for model m", id, model)
			}
			got = append(got, rangeRow{id, source, bytes.Clone(template)})
			return nil
		})
		if err != nil {
			t.Fatalf("TemplatesInRange(%d, %d): %v", lo, hi, err)
		}
		return got
	}
	between := func(lo, hi int64) (rows []rangeRow) {
		for _, r := range want {
			if r.id >= lo && r.id <= hi {
				rows = append(rows, r)
			}
		}
		return rows
	}

	n, lo, hi, err := db.FaceIDRange(ctx, "m")
	if err != nil || n != int64(len(want)) || lo != want[0].id || hi != want[len(want)-1].id {
		t.Fatalf("FaceIDRange = %d, %d, %d, %v; want %d, %d, %d", n, lo, hi, err, len(want), want[0].id, want[len(want)-1].id)
	}
	if got := stream(lo, hi); !reflect.DeepEqual(got, want) {
		t.Errorf("TemplatesInRange(lo, hi): %d faces, want %d (or not the same)", len(got), len(want))
	}
	// Ranges whose bounds are faces of the model, of the other model, or
	// beyond the stored ids; consecutive ranges cover the whole once.
	for _, r := range [][2]int64{{want[3].id, want[3].id}, {want[3].id, want[700].id}, {0, want[10].id},
		{want[1070].id, hi + 100}, {hi + 1, hi + 100}, {want[9].id, want[8].id}} {
		if got, w := stream(r[0], r[1]), between(r[0], r[1]); !reflect.DeepEqual(got, w) {
			t.Errorf("TemplatesInRange(%d, %d): %d faces, want %d (or not the same)", r[0], r[1], len(got), len(w))
		}
	}
	var all []rangeRow
	for a := lo; a <= hi; a += 97 {
		all = append(all, stream(a, min(a+96, hi))...)
	}
	if !reflect.DeepEqual(all, want) {
		t.Errorf("consecutive ranges: %d faces, want %d (or not the same)", len(all), len(want))
	}

	errStop := errors.New("stop")
	calls := 0
	err = db.TemplatesInRange(ctx, "m", lo, hi, func(int64, int64, string, []byte) error {
		calls++
		return errStop
	})
	if !errors.Is(err, errStop) || calls != 1 {
		t.Errorf("TemplatesInRange with a failing fn: err = %v after %d calls, want errStop after 1", err, calls)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := db.TemplatesInRange(cctx, "m", lo, hi, func(int64, int64, string, []byte) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("TemplatesInRange with a cancelled context = %v, want context.Canceled", err)
	}

	// More streams than connections, each reading the store from fn: a
	// stream holding its connection during fn would wait forever.
	tctx, stop := context.WithTimeout(ctx, 2*time.Minute)
	defer stop()
	var wg sync.WaitGroup
	counts := make([]int, 24)
	for i := range counts {
		wg.Go(func() {
			err := db.TemplatesInRange(tctx, "m", lo, hi, func(id, source int64, _ string, _ []byte) error {
				counts[i]++
				if id%40 != 0 {
					return nil
				}
				_, err := db.SourceKey(tctx, source)
				if errors.Is(err, store.ErrNotFound) { // no key was made for the source: a read all the same
					err = nil
				}
				return err
			})
			if err != nil {
				t.Errorf("stream %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	for i, c := range counts {
		if c != len(want) {
			t.Errorf("stream %d saw %d faces, want %d", i, c, len(want))
		}
	}
}
