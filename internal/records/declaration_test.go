package records

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gabarit/internal/store"
	_ "gabarit/internal/store/drivers" // the tests open stores
)

// declared is a complete declaration.
func declared() Organisation {
	return Organisation{
		Controller:     "Example City Police, 1 rue de la Paix, 75002 Paris, contact@police.example.org",
		Representative: "none",
		DPO:            "Jeanne Martin, dpo@police.example.org, https://police.example.org/dpo",
		Recipients:     []string{"investigators of the city police", "courts"},
		Transfers:      "none",
		Authority:      "CNIL, 3 place de Fontenoy, 75007 Paris, https://www.cnil.fr",
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(*Organisation)
		want []string // fields with an error
	}{
		{"complete", func(*Organisation) {}, nil},
		{"spaces trimmed, empty lines dropped", func(o *Organisation) {
			o.DPO = "  " + o.DPO + "  "
			o.Recipients = []string{"", " courts ", ""}
		}, nil},
		{"nothing declared", func(o *Organisation) { *o = Organisation{} }, Required},
		{"blank values", func(o *Organisation) { o.Controller, o.Recipients = "   ", []string{" ", ""} }, []string{FieldController, FieldRecipients}},
		{"too long", func(o *Organisation) { o.Authority = strings.Repeat("é", MaxText+1) }, []string{FieldAuthority}},
		{"transfers may be longer", func(o *Organisation) { o.Transfers = strings.Repeat("x", MaxLong) }, nil},
		{"transfers too long", func(o *Organisation) { o.Transfers = strings.Repeat("x", MaxLong+1) }, []string{FieldTransfers}},
		{"two lines", func(o *Organisation) { o.Controller = "Example City Police\n1 rue de la Paix" }, []string{FieldController}},
		{"bad e-mail", func(o *Organisation) { o.DPO = "Jeanne Martin, dpo@police" }, []string{FieldDPO}},
		{"bad e-mail in brackets", func(o *Organisation) { o.DPO = "Jeanne Martin <dpo@@police.example.org>" }, []string{FieldDPO}},
		{"good e-mail in brackets", func(o *Organisation) { o.DPO = "Jeanne Martin <dpo@police.example.org>" }, nil},
		{"bad web address", func(o *Organisation) { o.Authority = "CNIL, https://" }, []string{FieldAuthority}},
		{"bad mailto", func(o *Organisation) { o.Representative = "Rep Ltd, mailto:rep" }, []string{FieldRepresentative}},
		{"bad recipient", func(o *Organisation) { o.Recipients = []string{"courts", "x@y"} }, []string{FieldRecipients}},
		{"too many recipients", func(o *Organisation) {
			o.Recipients = slices.Repeat([]string{"courts"}, MaxEntries+1)
		}, []string{FieldRecipients}},
		{"security measure too long", func(o *Organisation) {
			o.SecurityExtras = []string{strings.Repeat("x", MaxEntry+1)}
		}, []string{FieldSecurityExtras}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := declared()
			tt.edit(&o)
			errs := o.Validate()
			var got []string
			for f, msg := range errs {
				got = append(got, f)
				if msg == "" || !strings.HasSuffix(msg, ".") {
					t.Errorf("%s: message %q: want a sentence", f, msg)
				}
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tt.want))
			if !slices.Equal(got, want) {
				t.Errorf("errors on %v, want %v (%v)", got, want, errs)
			}
		})
	}
}

func TestMissing(t *testing.T) {
	t.Parallel()
	o := declared()
	if m := o.Missing(); m != nil {
		t.Errorf("complete declaration: missing %v", m)
	}
	o.DPO, o.Recipients = " ", nil
	if m := o.Missing(); !slices.Equal(m, []string{FieldDPO, FieldRecipients}) {
		t.Errorf("missing = %v", m)
	}
	if got := Label(FieldAuthority); got != "supervisory authority" {
		t.Errorf("Label = %q", got)
	}
}

// saveEnv is a data directory with a store.
func saveEnv(t *testing.T) (context.Context, *store.DB, string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, filepath.Join(dir, "gabarit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return ctx, db, dir
}

// auditOf returns the records.update entries of db.
func auditOf(t *testing.T, ctx context.Context, db *store.DB) []store.AuditEntry {
	t.Helper()
	es, err := db.AuditEntries(ctx, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []store.AuditEntry
	for _, e := range es {
		if e.Action == "records.update" {
			out = append(out, e)
		}
	}
	return out
}

func TestSaveNewFile(t *testing.T) {
	t.Parallel()
	ctx, db, dir := saveEnv(t)
	org, v, err := Load(dir)
	if err != nil || v != Version(nil) || len(org.Missing()) != len(Required) {
		t.Fatalf("Load of no file = %+v, %q, %v", org, v, err)
	}
	want := declared()
	want.DPO = "  " + want.DPO + " " // saved trimmed
	saved, err := Save(ctx, db, dir, want, v, "dora")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(saved.Changed, []string{FieldController, FieldRepresentative, FieldDPO, FieldRecipients, FieldTransfers, FieldAuthority}) {
		t.Errorf("changed = %v", saved.Changed)
	}
	path := filepath.Join(dir, FileName)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
	got, v2, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if v2 != saved.Version || v2 == v {
		t.Errorf("version after save = %q, Save said %q (before %q)", v2, saved.Version, v)
	}
	if got.DPO != strings.TrimSpace(want.DPO) || got.Controller != want.Controller || !slices.Equal(got.Recipients, want.Recipients) ||
		len(got.Missing()) != 0 {
		t.Errorf("loaded %+v", got)
	}
	// The record built from it declares everything.
	r := Build(fi.ModTime(), got, nil, nil)
	if r.DPO == NotDeclared || r.Authority == NotDeclared || r.Recipients[0] == NotDeclared {
		t.Errorf("record still says %s: %+v", NotDeclared, r)
	}

	// The audit entry names the fields, never their values.
	es := auditOf(t, ctx, db)
	if len(es) != 1 {
		t.Fatalf("%d records.update entries, want 1", len(es))
	}
	var detail struct{ Fields []string }
	if err := json.Unmarshal(es[0].Detail, &detail); err != nil || !slices.Equal(detail.Fields, saved.Changed) {
		t.Errorf("detail %s: fields %v, want %v", es[0].Detail, detail.Fields, saved.Changed)
	}
	if es[0].Actor != "dora" || es[0].Object != "records" {
		t.Errorf("entry = %+v", es[0])
	}
	for _, value := range []string{"Jeanne", "dpo@police", "Paris", "courts", "CNIL"} {
		if strings.Contains(string(es[0].Detail), value) || strings.Contains(es[0].Object, value) {
			t.Errorf("audit entry holds a value (%q): %s", value, es[0].Detail)
		}
	}
}

func TestSaveKeepsOtherKeysAndMode(t *testing.T) {
	t.Parallel()
	ctx, db, dir := saveEnv(t)
	path := filepath.Join(dir, FileName)
	orig := `{"controller": "Old Org", "identity_methods": [{"id": "badge", "label": "staff badge"}], "x_note": {"kept": true}}`
	if err := os.WriteFile(path, []byte(orig), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil { // whatever the umask
		t.Fatal(err)
	}
	_, v, err := Load(dir)
	if err != nil || v != Version([]byte(orig)) {
		t.Fatalf("Load: %q %v", v, err)
	}
	org := declared()
	org.SecurityExtras = []string{"badge-controlled server room"}
	if _, err := Save(ctx, db, dir, org, v, "ada"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode = %v, want the file's 0640 kept", fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		t.Fatal(err)
	}
	var note bytes.Buffer
	if err := json.Compact(&note, obj["x_note"]); err != nil || note.String() != `{"kept":true}` {
		t.Errorf("unknown key not kept: %s", b)
	}
	got, _, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.IdentityMethods) != 1 || got.IdentityMethods[0].ID != "badge" {
		t.Errorf("identity_methods not kept: %s", b)
	}
	if got.Controller != org.Controller || !slices.Equal(got.SecurityExtras, org.SecurityExtras) {
		t.Errorf("saved %+v", got)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

// TestSaveAtomic: the file is replaced, never rewritten in place, so a
// reader holding the old file reads it whole.
func TestSaveAtomic(t *testing.T) {
	t.Parallel()
	ctx, db, dir := saveEnv(t)
	first := declared()
	saved, err := Save(ctx, db, dir, first, Version(nil), "ada")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, FileName)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	reader, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	second := declared()
	second.Controller = "Another Org, 2 avenue Foch, Lyon"
	if _, err := Save(ctx, db, dir, second, saved.Version, "ada"); err != nil {
		t.Fatal(err)
	}
	old := make([]byte, len(before)+10)
	n, err := reader.Read(old)
	if err != nil || string(old[:n]) != string(before) {
		t.Errorf("the open file changed under its reader: %q, %v", old[:n], err)
	}
	got, _, err := Load(dir)
	if err != nil || got.Controller != second.Controller {
		t.Errorf("after: %+v %v", got, err)
	}
}

func TestSaveStaleAndInvalid(t *testing.T) {
	t.Parallel()
	ctx, db, dir := saveEnv(t)
	s1, err := Save(ctx, db, dir, declared(), Version(nil), "ada")
	if err != nil {
		t.Fatal(err)
	}
	// Two people opened the form at s1: the first save wins, the second
	// is refused and changes nothing.
	a := declared()
	a.Transfers = "to the United States, under standard contractual clauses"
	s2, err := Save(ctx, db, dir, a, s1.Version, "ada")
	if err != nil {
		t.Fatal(err)
	}
	b := declared()
	b.DPO = "Paul Durand, paul.durand@police.example.org"
	if _, err := Save(ctx, db, dir, b, s1.Version, "dora"); !errors.Is(err, ErrStale) {
		t.Fatalf("stale save: %v, want ErrStale", err)
	}
	if _, err := Save(ctx, db, dir, b, "", "dora"); !errors.Is(err, ErrStale) {
		t.Errorf("save without a version: %v, want ErrStale", err)
	}
	got, v, err := Load(dir)
	if err != nil || v != s2.Version || got.DPO != declared().DPO || got.Transfers != a.Transfers {
		t.Errorf("after a stale save: %+v %q %v", got, v, err)
	}
	// Invalid: refused with the fields named, nothing written.
	bad := declared()
	bad.Controller, bad.DPO = "", "dpo@nowhere"
	_, err = Save(ctx, db, dir, bad, s2.Version, "ada")
	var fe FieldErrors
	if !errors.As(err, &fe) || len(fe) != 2 || fe[FieldController] == "" || fe[FieldDPO] == "" {
		t.Errorf("invalid save: %v", err)
	}
	// Nothing changed: nothing written, nothing audited.
	s3, err := Save(ctx, db, dir, a, s2.Version, "ada")
	if err != nil || len(s3.Changed) != 0 || s3.Version != s2.Version {
		t.Errorf("unchanged save: %+v %v", s3, err)
	}
	if _, v, _ := Load(dir); v != s2.Version {
		t.Errorf("version moved: %q, want %q", v, s2.Version)
	}
	es := auditOf(t, ctx, db)
	if len(es) != 2 {
		t.Fatalf("%d records.update entries, want 2 (the two saves that changed something)", len(es))
	}
	if string(es[1].Detail) != `{"fields":["transfers"]}` {
		t.Errorf("second entry detail = %s", es[1].Detail)
	}
}
