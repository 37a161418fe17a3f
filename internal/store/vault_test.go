package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"gabarit/internal/store"
	"gabarit/internal/store/storetest"
)

// sealer returns a VaultSeal that "seals" entry i as its id and index, so
// that the tests can see which row got which blob.
func sealer(fail int) store.VaultSeal {
	return func(i int, id int64) ([]byte, error) {
		if i == fail {
			return nil, errors.New("seal failed")
		}
		return fmt.Appendf(nil, "sealed %d for row %d", i, id), nil
	}
}

func TestVaultEntries(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.Open(t)
	version := func() int64 {
		t.Helper()
		v, err := db.VaultVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := version(); v != 0 {
		t.Fatalf("change counter of a new store: %d", v)
	}
	news := []store.VaultNew{
		{Kind: store.VaultSelfie, RequestID: 7, ModelID: "m", Dim: 4},
		{Kind: store.VaultSelfie, RequestID: 7, ModelID: "m", Dim: 4},
	}
	// A failing seal rolls back the rows and the counter.
	if _, err := db.AddVaultEntries(ctx, news, sealer(1), nil); err == nil {
		t.Fatal("AddVaultEntries with a failing seal succeeded")
	}
	if n, err := db.VaultCounts(ctx); err != nil || len(n) != 0 || version() != 0 {
		t.Fatalf("after a failed add: %v, %v, counter %d", n, err, version())
	}
	for _, bad := range []store.VaultNew{{Kind: "other", RequestID: 1, ModelID: "m", Dim: 1}, {Kind: store.VaultObjection, ModelID: "m", Dim: 1},
		{Kind: store.VaultObjection, RequestID: 1, Dim: 1}, {Kind: store.VaultObjection, RequestID: 1, ModelID: "m"}} {
		if _, err := db.AddVaultEntries(ctx, []store.VaultNew{bad}, sealer(-1), nil); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("AddVaultEntries(%+v): %v, want ErrInvalid", bad, err)
		}
	}

	ids, err := db.AddVaultEntries(ctx, news, sealer(-1), &store.AuditEntry{Actor: "test", Action: "test.vault-add"})
	if err != nil || len(ids) != 2 || ids[1] <= ids[0] {
		t.Fatalf("AddVaultEntries = %v, %v", ids, err)
	}
	if v := version(); v != 1 {
		t.Errorf("counter after one add: %d", v)
	}
	if _, err := db.AddVaultEntries(ctx, []store.VaultNew{{Kind: store.VaultObjection, RequestID: 7, ModelID: "m", Dim: 4}}, sealer(-1), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddVaultEntries(ctx, []store.VaultNew{{Kind: store.VaultRestriction, RequestID: 8, ModelID: "m", Dim: 4}}, sealer(-1), nil); err != nil {
		t.Fatal(err)
	}
	sealed, err := db.VaultSealedOf(ctx, 7, store.VaultSelfie)
	if err != nil || len(sealed) != 2 || string(sealed[1].Sealed) != fmt.Sprintf("sealed 1 for row %d", ids[1]) ||
		sealed[0].Dim != 4 || sealed[0].ModelID != "m" || sealed[0].Created.IsZero() {
		t.Fatalf("VaultSealedOf(7, selfie) = %+v, %v", sealed, err)
	}
	all, err := db.VaultSealedOf(ctx, 0, store.VaultObjection, store.VaultRestriction)
	if err != nil || len(all) != 2 || all[0].Kind != store.VaultObjection || all[1].RequestID != 8 {
		t.Fatalf("VaultSealedOf(all, objection+restriction) = %+v, %v", all, err)
	}
	if es, err := db.VaultEntries(ctx, 7); err != nil || len(es) != 3 || es[2].Kind != store.VaultObjection {
		t.Errorf("VaultEntries(7) = %+v, %v", es, err)
	}
	if reqs, err := db.VaultRequests(ctx, store.VaultSelfie); err != nil || fmt.Sprint(reqs) != "[7]" {
		t.Errorf("VaultRequests(selfie) = %v, %v", reqs, err)
	}

	// A removal and its audit entry commit together, or not at all.
	before := version()
	if _, err := db.RemoveVaultEntries(ctx, 7, store.VaultSelfie, func(int) *store.AuditEntry { return &store.AuditEntry{Action: "no actor"} }); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("RemoveVaultEntries with an invalid audit entry: %v", err)
	}
	if n, err := db.VaultCounts(ctx); err != nil || n[store.VaultSelfie] != 2 || version() != before {
		t.Fatalf("after a refused removal: %v, %v, counter %d (was %d)", n, err, version(), before)
	}
	n, err := db.RemoveVaultEntries(ctx, 7, store.VaultSelfie, func(n int) *store.AuditEntry {
		return &store.AuditEntry{Actor: "test", Action: "test.vault-remove", Detail: fmt.Appendf(nil, `{"entries":%d}`, n)}
	})
	if err != nil || n != 2 || version() != before+1 {
		t.Fatalf("RemoveVaultEntries = %d, %v, counter %d", n, err, version())
	}
	es, err := db.AuditEntries(ctx, 1, 0)
	if err != nil || len(es) != 2 || es[0].Action != "test.vault-add" || string(es[1].Detail) != `{"entries":2}` {
		t.Errorf("audit = %+v, %v", es, err)
	}
	if c, err := db.VaultCounts(ctx); err != nil || c[store.VaultSelfie] != 0 || c[store.VaultObjection] != 1 || c[store.VaultRestriction] != 1 {
		t.Errorf("VaultCounts = %v, %v", c, err)
	}
}

func TestImportVaultEntriesOnce(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.Open(t)
	fp := []byte("fingerprint of one old file")
	news := []store.VaultNew{{Kind: store.VaultObjection, RequestID: 3, ModelID: "m", Dim: 2}}
	// A failure imports nothing and records nothing.
	if _, err := db.ImportVaultEntries(ctx, fp, news, sealer(0)); err == nil {
		t.Fatal("import with a failing seal succeeded")
	}
	if done, err := db.VaultImported(ctx, fp); err != nil || done {
		t.Fatalf("VaultImported after a failed import = %v, %v", done, err)
	}
	for i, want := range []bool{true, false} {
		ok, err := db.ImportVaultEntries(ctx, fp, news, sealer(-1))
		if err != nil || ok != want {
			t.Fatalf("import %d = %v, %v; want %v", i+1, ok, err, want)
		}
	}
	if done, err := db.VaultImported(ctx, fp); err != nil || !done {
		t.Errorf("VaultImported = %v, %v", done, err)
	}
	if n, err := db.VaultCounts(ctx); err != nil || n[store.VaultObjection] != 1 {
		t.Errorf("entries after two imports of one file: %v, %v", n, err)
	}
	if ok, err := db.ImportVaultEntries(ctx, nil, news, sealer(-1)); !errors.Is(err, store.ErrInvalid) || ok {
		t.Errorf("import without a fingerprint = %v, %v", ok, err)
	}
}
