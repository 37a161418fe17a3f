package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"gabarit/internal/store"
)

// AuditView is one audit entry as the command line and the API show it.
type AuditView struct {
	ID       int64           `json:"id"`
	At       time.Time       `json:"at"`
	Actor    string          `json:"actor"`
	Action   string          `json:"action"`
	Object   string          `json:"object"`
	Detail   json.RawMessage `json:"detail"`
	PrevHash string          `json:"prev_hash"`
	Hash     string          `json:"hash"`
}

// NewAuditView converts an audit entry.
func NewAuditView(a store.AuditEntry) AuditView {
	return AuditView{ID: a.ID, At: a.At, Actor: a.Actor, Action: a.Action, Object: a.Object,
		Detail: a.Detail, PrevHash: fmt.Sprintf("%x", a.PrevHash), Hash: fmt.Sprintf("%x", a.Hash)}
}

// Verification is the result of checking the audit log.
type Verification struct {
	OK      bool   `json:"ok"`
	Entries int64  `json:"entries"`
	Head    string `json:"head"`
	Error   string `json:"error,omitempty"` // what is wrong, naming the first bad entry
}

// VerifyAudit recomputes the audit log's hash chain and checks that the
// witness files name its last entry; with copied, a head copied off the
// machine earlier, it also checks that the log still holds that entry. A
// tampered log is a Verification with OK false, not an error.
func VerifyAudit(ctx context.Context, db *store.DB, copied string) (Verification, error) {
	head, err := db.CheckAudit(ctx)
	if err == nil && copied != "" {
		_, err = db.CheckAuditHead(ctx, copied)
	}
	if errors.Is(err, store.ErrInvalid) {
		return Verification{}, fmt.Errorf("the head copied off the machine: %w", err)
	}
	if err != nil && !errors.Is(err, store.ErrAuditTampered) {
		return Verification{}, err
	}
	v := Verification{OK: err == nil, Entries: head.ID, Head: fmt.Sprintf("%x", head.Hash)}
	if err != nil {
		v.Error = err.Error()
	}
	return v, nil
}

// File is one file of an export.
type File struct {
	Name string
	Data []byte
}

// Export is the package for a supervisory authority or the DPO.
type Export struct {
	Files        []File            // MANIFEST.md last
	Digests      map[string]string // SHA-256 of each file but the manifest
	Verification Verification
	Requests     int // rights requests registered
	Overdue      int // of which overdue now
}

// AuthorityExport builds the package for a supervisory authority: the
// record of processing (JSON, Markdown), the declared sources, the rights
// register with deadlines and outcomes, statistics of searches by purpose,
// the whole audit log with the result of its verification, and a manifest
// with every file's SHA-256.
func AuthorityExport(ctx context.Context, d *Data, now time.Time, actor string) (Export, error) {
	var x Export
	files := map[string][]byte{}
	add := func(name string, v any) error {
		b, err := json.MarshalIndent(v, "", "  ")
		files[name] = append(b, '\n')
		return err
	}
	rec, err := BuildRecords(ctx, d, now)
	if err != nil {
		return x, err
	}
	if err := add("records.json", rec); err != nil {
		return x, err
	}
	var md bytes.Buffer
	if err := rec.Markdown(&md); err != nil {
		return x, err
	}
	files["records.md"] = md.Bytes()
	srcs, err := d.DB.Sources(ctx)
	if err != nil {
		return x, err
	}
	counts, err := d.DB.SourceCounts(ctx)
	if err != nil {
		return x, err
	}
	if err := add("sources.json", SourceViews(srcs, counts)); err != nil {
		return x, err
	}
	stats, err := d.DB.SearchStats(ctx)
	if err != nil {
		return x, err
	}
	type purposeJSON struct {
		Purpose   string    `json:"purpose"`
		Searches  int64     `json:"searches"`
		WithMatch int64     `json:"searches_with_a_match"`
		First     time.Time `json:"first"`
		Last      time.Time `json:"last"`
	}
	byPurpose := make([]purposeJSON, len(stats))
	for i, p := range stats {
		byPurpose[i] = purposeJSON(p)
	}
	if err := add("searches-by-purpose.json", byPurpose); err != nil {
		return x, err
	}
	reqs, err := d.DB.RightsRequests(ctx)
	if err != nil {
		return x, err
	}
	register, overdue := RegisterView(reqs, now)
	x.Requests, x.Overdue = len(reqs), overdue
	if err := add("rights-register.json", register); err != nil {
		return x, err
	}
	entries, err := d.DB.AuditEntries(ctx, 1, 0)
	if err != nil {
		return x, err
	}
	var log bytes.Buffer
	enc := json.NewEncoder(&log)
	for _, a := range entries {
		if err := enc.Encode(NewAuditView(a)); err != nil {
			return x, err
		}
	}
	files["audit.jsonl"] = log.Bytes()
	if x.Verification, err = VerifyAudit(ctx, d.DB, ""); err != nil {
		return x, err
	}
	v := x.Verification
	// The signed head, for the authority to keep: with it, a later copy of
	// the log shows whether these entries were kept unchanged.
	line, _, err := d.DB.AuditHeadLine(ctx)
	if err != nil {
		return x, err
	}
	if err := add("audit-verification.json", map[string]any{"verified_at": now.UTC(), "ok": v.OK, "entries": v.Entries,
		"head_hash": v.Head, "head_line": line, "error": v.Error,
		"method": "SHA-256 hash chain recomputed from the first entry; its last entry compared with the witness files " +
			"(audit.head, and GABARIT_AUDIT_WITNESS when set); head_line is that entry signed with a key derived from the master key, " +
			"to keep off the machine and check later with gabarit audit verify --head"}); err != nil {
		return x, err
	}

	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	x.Digests = map[string]string{}
	var manifest strings.Builder
	fmt.Fprintf(&manifest, "# gabarit export for the authority\n\nGenerated %s by %s. SHA-256 of each file:\n\n", now.UTC().Format(time.RFC3339), actor)
	for _, name := range names {
		sum := fmt.Sprintf("%x", sha256.Sum256(files[name]))
		x.Digests[name] = sum
		x.Files = append(x.Files, File{name, files[name]})
		fmt.Fprintf(&manifest, "    %s  %s\n", sum, name)
	}
	verdict := "passed"
	if !v.OK {
		verdict = "FAILED: " + v.Error
	}
	fmt.Fprintf(&manifest, "\nAudit log: %d entries, verification %s.\n", v.Entries, verdict)
	fmt.Fprintf(&manifest, "Rights requests: %d registered, %d overdue now.\n", x.Requests, x.Overdue)
	x.Files = append(x.Files, File{"MANIFEST.md", []byte(manifest.String())})
	return x, nil
}

// AuditExport records an export: what, where, and the digests of its files.
func AuditExport(ctx context.Context, db *store.DB, actor, action, out string, digests map[string]string) error {
	detail, err := json.Marshal(map[string]any{"out": out, "files": digests})
	if err != nil {
		return err
	}
	_, err = db.AppendAudit(ctx, nil, store.AuditEntry{Actor: actor, Action: action, Detail: detail})
	return err
}
