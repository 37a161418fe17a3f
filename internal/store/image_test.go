package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"gabarit/internal/face"
)

func TestAddImageRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newTestClock()
	db := openTest(t, WithClock(clock.Now))
	src := mustSource(t, db, func(s *Source) { s.Retention = 48 * time.Hour })

	img := testImage(src, 1)
	img.TakenAt = time.Date(2020, 6, 1, 8, 30, 0, 0, time.UTC)
	faces := testFaces(3, 64, 1)
	timeCode := 1500 * time.Millisecond
	faces[2].TrackID, faces[2].TimeCode = 7, &timeCode

	imageID, faceIDs, err := db.AddImage(ctx, img, faces)
	if err != nil {
		t.Fatal(err)
	}
	if len(faceIDs) != 3 || faceIDs[0] >= faceIDs[1] || faceIDs[1] >= faceIDs[2] {
		t.Fatalf("face ids = %v, want 3 increasing", faceIDs)
	}

	wantImg := img
	wantImg.ID = imageID
	wantImg.IngestedAt = clock.Now()
	wantImg.RetentionDeadline = clock.Now().Add(48 * time.Hour)
	for _, get := range []func() (Image, error){
		func() (Image, error) { return db.Image(ctx, imageID) },
		func() (Image, error) { return db.ImageBySHA(ctx, src, img.SHA256) },
	} {
		got, err := get()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, wantImg) {
			t.Errorf("image = %+v\nwant    %+v", got, wantImg)
		}
	}

	got, err := db.Faces(ctx, imageID)
	if err != nil {
		t.Fatal(err)
	}
	for i := range faces {
		faces[i].ID, faces[i].ImageID = faceIDs[i], imageID
	}
	if !reflect.DeepEqual(got, faces) {
		t.Errorf("Faces = %+v\nwant    %+v", got, faces)
	}
	one, err := db.Face(ctx, faceIDs[2])
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(one, faces[2]) {
		t.Errorf("Face = %+v\nwant   %+v", one, faces[2])
	}

	if _, err := db.Face(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Errorf("Face(999) err = %v, want ErrNotFound", err)
	}
	if _, err := db.Image(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Errorf("Image(999) err = %v, want ErrNotFound", err)
	}
	if _, err := db.ImageBySHA(ctx, src, [32]byte{1}); !errors.Is(err, ErrNotFound) {
		t.Errorf("ImageBySHA(unknown) err = %v, want ErrNotFound", err)
	}
}

// totalChanges returns the rows changed by the writer connection since open.
func totalChanges(t *testing.T, db *DB) int64 {
	t.Helper()
	var n int64
	if err := db.w.QueryRow(`SELECT total_changes()`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAddImageIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTest(t)
	src := mustSource(t, db, nil)
	other := mustSource(t, db, nil)

	img := testImage(src, 1)
	imageID, faceIDs, err := db.AddImage(ctx, img, testFaces(3, 32, 1))
	if err != nil {
		t.Fatal(err)
	}
	changes := totalChanges(t, db)

	// Same content, other locator and faces: nothing is written.
	again := img
	again.Locator = "elsewhere/copy.jpg"
	gotImage, gotFaces, err := db.AddImage(ctx, again, testFaces(2, 32, 9))
	if !errors.Is(err, ErrExists) {
		t.Fatalf("second AddImage err = %v, want ErrExists", err)
	}
	if gotImage != imageID || !reflect.DeepEqual(gotFaces, faceIDs) {
		t.Errorf("second AddImage ids = %d %v, want %d %v", gotImage, gotFaces, imageID, faceIDs)
	}
	if got := totalChanges(t, db); got != changes {
		t.Errorf("second AddImage changed %d rows", got-changes)
	}
	if n := count(t, db, "faces"); n != 3 {
		t.Errorf("faces = %d, want 3", n)
	}

	// The same content in another source is another image.
	if _, _, err := db.AddImage(ctx, testImage(other, 1), nil); err != nil {
		t.Errorf("same content in another source: %v", err)
	}
}

func TestAddImageAtomic(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTest(t)
	src := mustSource(t, db, nil)

	// The third face names a subject that does not exist: the foreign key
	// fails after the image and two faces were inserted.
	faces := testFaces(3, 32, 1)
	faces[2].SubjectID = 42
	if _, _, err := db.AddImage(ctx, testImage(src, 1), faces); err == nil {
		t.Fatal("AddImage with a dangling subject succeeded")
	}
	for _, table := range []string{"images", "faces"} {
		if n := count(t, db, table); n != 0 {
			t.Errorf("%s = %d after a failed AddImage, want 0", table, n)
		}
	}
	// The image can then be added.
	if _, _, err := db.AddImage(ctx, testImage(src, 1), testFaces(3, 32, 1)); err != nil {
		t.Errorf("AddImage after rollback: %v", err)
	}
}

func TestAddImageValidation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTest(t)
	src := mustSource(t, db, nil)
	suspended := mustSource(t, db, func(s *Source) { s.State = StateSuspended })
	tests := []struct {
		name    string
		img     func(*Image)
		face    func(*Face)
		wantErr error
	}{
		{name: "unknown source", img: func(i *Image) { i.SourceID = 999 }, wantErr: ErrNotFound},
		{name: "suspended source", img: func(i *Image) { i.SourceID = suspended }, wantErr: ErrInvalid},
		{name: "no source", img: func(i *Image) { i.SourceID = 0 }, wantErr: ErrInvalid},
		{name: "zero sha", img: func(i *Image) { i.SHA256 = [32]byte{} }, wantErr: ErrInvalid},
		{name: "no locator", img: func(i *Image) { i.Locator = "" }, wantErr: ErrInvalid},
		{name: "zero width", img: func(i *Image) { i.Width = 0 }, wantErr: ErrInvalid},
		{name: "negative size", img: func(i *Image) { i.SizeBytes = -1 }, wantErr: ErrInvalid},
		{name: "empty template", face: func(f *Face) { f.Template = nil }, wantErr: ErrInvalid},
		{name: "no model", face: func(f *Face) { f.ModelID = "" }, wantErr: ErrInvalid},
		{name: "zero dim", face: func(f *Face) { f.Dim = 0 }, wantErr: ErrInvalid},
		{name: "empty box", face: func(f *Face) { f.Box.W = 0 }, wantErr: ErrInvalid},
		{name: "NaN score", face: func(f *Face) { f.Score = math.NaN() }, wantErr: ErrInvalid},
		{name: "infinite landmark", face: func(f *Face) { f.Landmarks[3].Y = math.Inf(1) }, wantErr: ErrInvalid},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			img := testImage(src, 100+i)
			faces := testFaces(2, 16, i)
			if tt.img != nil {
				tt.img(&img)
			}
			if tt.face != nil {
				tt.face(&faces[1])
			}
			if _, _, err := db.AddImage(ctx, img, faces); !errors.Is(err, tt.wantErr) {
				t.Errorf("AddImage err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestDeleteImageCascades(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTest(t)
	src := mustSource(t, db, nil)
	keep, _, err := db.AddImage(ctx, testImage(src, 1), testFaces(2, 16, 1))
	if err != nil {
		t.Fatal(err)
	}
	gone, goneFaces, err := db.AddImage(ctx, testImage(src, 2), testFaces(3, 16, 2))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.MarkProgress(ctx, src, testImage(src, 2).Locator, testImage(src, 2).SHA256, ProgressDone, ""); err != nil {
		t.Fatal(err)
	}

	if err := db.DeleteImage(ctx, gone); err != nil {
		t.Fatal(err)
	}
	if n, err := db.FaceCount(ctx); err != nil || n != 2 {
		t.Errorf("FaceCount = %d, %v; want 2", n, err)
	}
	for _, id := range goneFaces {
		if _, err := db.Face(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Face(%d) of a deleted image: err = %v, want ErrNotFound", id, err)
		}
	}
	if fs, err := db.Faces(ctx, keep); err != nil || len(fs) != 2 {
		t.Errorf("Faces(kept image) = %d, %v; want 2", len(fs), err)
	}
	if err := db.DeleteImage(ctx, gone); !errors.Is(err, ErrNotFound) {
		t.Errorf("second DeleteImage err = %v, want ErrNotFound", err)
	}
	if state, ok, err := db.Progress(ctx, src, testImage(src, 2).Locator); err != nil || !ok || state != ProgressDone {
		t.Errorf("Progress after delete = %q %v %v; want done (kept so a resume skips it)", state, ok, err)
	}
}

func TestDeleteFaces(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTest(t)
	src := mustSource(t, db, nil)
	_, ids, err := db.AddImage(ctx, testImage(src, 1), testFaces(4, 16, 1))
	if err != nil {
		t.Fatal(err)
	}
	n, err := db.DeleteFaces(ctx, []int64{ids[1], ids[3], 999})
	if err != nil || n != 2 {
		t.Fatalf("DeleteFaces = %d, %v; want 2", n, err)
	}
	if n, err := db.DeleteFaces(ctx, []int64{ids[1]}); err != nil || n != 0 {
		t.Errorf("DeleteFaces again = %d, %v; want 0, nil", n, err)
	}
	if n, err := db.DeleteFaces(ctx, nil); err != nil || n != 0 {
		t.Errorf("DeleteFaces(nil) = %d, %v; want 0, nil", n, err)
	}
	var left []int64
	err = db.AllTemplates(ctx, func(id, _ int64, _ string, _ []byte) error {
		left = append(left, id)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{ids[0], ids[2]}; !reflect.DeepEqual(left, want) {
		t.Errorf("faces left = %v, want %v", left, want)
	}
}

func TestAllTemplatesInOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTest(t)
	a := mustSource(t, db, nil)
	b := mustSource(t, db, nil)

	type row struct {
		id, source int64
		model      string
		template   []byte
	}
	var want []row
	for i := range 10 {
		src := a
		if i%3 == 0 {
			src = b
		}
		faces := testFaces(i%4, 48, i)
		if i%2 == 0 {
			for j := range faces {
				faces[j].ModelID = "other-model"
			}
		}
		_, ids, err := db.AddImage(ctx, testImage(src, i), faces)
		if err != nil {
			t.Fatal(err)
		}
		for j, id := range ids {
			want = append(want, row{id, src, faces[j].ModelID, faces[j].Template})
		}
	}

	var got []row
	err := db.AllTemplates(ctx, func(id, source int64, model string, template []byte) error {
		got = append(got, row{id, source, model, bytes.Clone(template)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("AllTemplates = %v\nwant           %v", got, want)
	}
	if n, err := db.FaceCount(ctx); err != nil || n != int64(len(want)) {
		t.Errorf("FaceCount = %d, %v; want %d", n, err, len(want))
	}

	errStop := errors.New("stop")
	calls := 0
	err = db.AllTemplates(ctx, func(int64, int64, string, []byte) error {
		calls++
		return errStop
	})
	if !errors.Is(err, errStop) || calls != 1 {
		t.Errorf("AllTemplates with a failing fn: err = %v after %d calls, want errStop after 1", err, calls)
	}
}

func TestExpiredImages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newTestClock()
	start := clock.Now()
	db := openTest(t, WithClock(clock.Now))
	day := 24 * time.Hour
	short := mustSource(t, db, func(s *Source) { s.Retention = day })
	long := mustSource(t, db, func(s *Source) { s.Retention = 10 * day })

	add := func(src int64, n int) int64 {
		t.Helper()
		id, _, err := db.AddImage(ctx, testImage(src, n), testFaces(1, 16, n))
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	s1 := add(short, 1) // deadline start+1d
	l1 := add(long, 2)  // deadline start+10d
	clock.Add(time.Hour)
	s2 := add(short, 3) // deadline start+1d+1h
	explicit := testImage(long, 4)
	explicit.IngestedAt = start.Add(-20 * day) // deadline start-10d
	e1, _, err := db.AddImage(ctx, explicit, nil)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		now   time.Time
		limit int
		want  []int64
	}{
		{name: "nothing due", now: start.Add(-11 * day), limit: 10, want: nil},
		{name: "backdated only", now: start, limit: 10, want: []int64{e1}},
		{name: "exactly at deadline", now: start.Add(day), limit: 10, want: []int64{e1, s1}},
		{name: "short source", now: start.Add(2 * day), limit: 10, want: []int64{e1, s1, s2}},
		{name: "all", now: start.Add(10 * day), limit: 10, want: []int64{e1, s1, s2, l1}},
		{name: "limited", now: start.Add(10 * day), limit: 2, want: []int64{e1, s1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			imgs, err := db.ExpiredImages(ctx, tt.now, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, img := range imgs {
				got = append(got, img.ID)
				if img.RetentionDeadline.After(tt.now) {
					t.Errorf("image %d deadline %v after %v", img.ID, img.RetentionDeadline, tt.now)
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ExpiredImages = %v, want %v", got, tt.want)
			}
		})
	}
	if _, err := db.ExpiredImages(ctx, start, 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("ExpiredImages limit 0: err = %v, want ErrInvalid", err)
	}
}

func TestLandmarksEncoding(t *testing.T) {
	t.Parallel()
	l := face.Landmarks{{X: 1, Y: -2}, {X: 3.25, Y: 4}, {X: 0, Y: 6}, {X: 7, Y: 8}, {X: 1e6, Y: 10}}
	b := encodeLandmarks(&l)
	if len(b) != 40 {
		t.Fatalf("encoded %d bytes, want 40", len(b))
	}
	// x0 = 1.0 as little-endian float32.
	if !bytes.Equal(b[:4], []byte{0x00, 0x00, 0x80, 0x3f}) {
		t.Errorf("x0 bytes = % x, want 00 00 80 3f", b[:4])
	}
	got, err := decodeLandmarks(b)
	if err != nil || got != l {
		t.Errorf("decode = %v, %v; want %v", got, err, l)
	}
	if _, err := decodeLandmarks(b[:39]); err == nil {
		t.Error("decode of 39 bytes succeeded")
	}
}

func BenchmarkAddImage(b *testing.B) {
	for _, sync := range []string{"NORMAL", "FULL"} {
		b.Run(fmt.Sprintf("faces=3/template=512B/sync=%s", sync), func(b *testing.B) {
			ctx := context.Background()
			db := openTest(b, withSynchronous(sync))
			src := mustSource(b, db, nil)
			faces := testFaces(3, 512, 1)
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				if _, _, err := db.AddImage(ctx, testImage(src, n), faces); err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "images/s")
		})
	}
}
