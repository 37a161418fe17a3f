package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"
)

func TestProgressUpsert(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTest(t)
	src := mustSource(t, db, nil)
	sha := sha256.Sum256([]byte("x"))

	if _, ok, err := db.Progress(ctx, src, "a.jpg"); err != nil || ok {
		t.Fatalf("Progress before any mark: ok = %v, err = %v", ok, err)
	}
	steps := []struct {
		name    string
		locator string
		sha     [32]byte
		state   ProgressState
		reason  string
		wantErr error
	}{
		{name: "failed first", locator: "a.jpg", state: ProgressFailed, reason: "decode"},
		{name: "done on retry", locator: "a.jpg", sha: sha, state: ProgressDone},
		{name: "another entry", locator: "b.jpg", sha: sha, state: ProgressFailed, reason: "no-face"},
		{name: "unknown state", locator: "a.jpg", state: "skipped", wantErr: ErrInvalid},
		{name: "no locator", locator: "", state: ProgressDone, wantErr: ErrInvalid},
	}
	for _, st := range steps {
		err := db.MarkProgress(ctx, src, st.locator, st.sha, st.state, st.reason)
		if !errors.Is(err, st.wantErr) || (st.wantErr == nil) != (err == nil) {
			t.Fatalf("%s: MarkProgress err = %v, want %v", st.name, err, st.wantErr)
		}
	}
	for locator, want := range map[string]ProgressState{"a.jpg": ProgressDone, "b.jpg": ProgressFailed} {
		if got, ok, err := db.Progress(ctx, src, locator); err != nil || !ok || got != want {
			t.Errorf("Progress(%s) = %q %v %v; want %q", locator, got, ok, err, want)
		}
	}
	if n := count(t, db, "ingest_progress"); n != 2 {
		t.Errorf("ingest_progress rows = %d, want 2 (upserted)", n)
	}
	var reason string
	if err := db.r.QueryRow(`SELECT reason FROM ingest_progress WHERE locator = 'a.jpg'`).Scan(&reason); err != nil || reason != "" {
		t.Errorf("reason after success = %q, %v; want empty", reason, err)
	}
}
