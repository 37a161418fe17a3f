package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"gabarit/internal/store"
	"gabarit/internal/store/storetest"
)

func TestSettingsAreAudited(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.Open(t)
	if _, err := db.Setting(ctx, "search.fpir"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unset: err = %v", err)
	}
	if err := db.SetSetting(ctx, "search.fpir", "", "cli:admin"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("empty value: err = %v", err)
	}
	for _, v := range []string{"0.005", "0.02"} {
		if err := db.SetSetting(ctx, "search.fpir", v, "cli:admin"); err != nil {
			t.Fatal(err)
		}
	}
	st, err := db.Setting(ctx, "search.fpir")
	if err != nil || st.Value != "0.02" || st.By != "cli:admin" || st.At.IsZero() {
		t.Fatalf("setting = %+v, %v", st, err)
	}
	es, err := db.AuditEntries(ctx, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	var sets []map[string]any
	for _, e := range es {
		if e.Action == "policy.set" && e.Object == "setting/search.fpir" {
			var d map[string]any
			if err := json.Unmarshal(e.Detail, &d); err != nil {
				t.Fatal(err)
			}
			sets = append(sets, d)
		}
	}
	if len(sets) != 2 || sets[0]["old"] != nil || sets[0]["new"] != "0.005" || sets[1]["old"] != "0.005" || sets[1]["new"] != "0.02" {
		t.Errorf("audit of the settings: %v", sets)
	}
}

func TestCheckMasterKey(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.Open(t)
	if err := db.CheckMasterKey(ctx, "aaaa"); err != nil {
		t.Fatalf("first check: %v", err)
	}
	if err := db.CheckMasterKey(ctx, "aaaa"); err != nil {
		t.Fatalf("same key again: %v", err)
	}
	if err := db.CheckMasterKey(ctx, "bbbb"); !errors.Is(err, store.ErrWrongMasterKey) {
		t.Fatalf("another key: %v; want ErrWrongMasterKey", err)
	}
	if err := db.CheckMasterKey(ctx, ""); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("empty check: %v; want ErrInvalid", err)
	}
	// The check value is not a policy: no audit entry.
	if n, err := db.AuditHeadID(ctx); err != nil || n != 0 {
		t.Errorf("audit entries after key checks = %d, %v; want 0", n, err)
	}
}
