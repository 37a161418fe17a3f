package storetest

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gabarit/internal/face"
	"gabarit/internal/store"
	_ "gabarit/internal/store/drivers" // the raw connections of the damage helpers
)

// Run runs the store conformance suite: the behaviour store.DB promises,
// checked through its exported API only, one subtest per property, on the
// databases newTarget makes. It is run on SQLite and on PostgreSQL:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) string { return filepath.Join(t.TempDir(), "gabarit.db") })
//	}
//
// newTarget returns a new, empty database for one subtest, as the target
// store.Open takes (an SQLite file path, or a postgres:// URL such as
// Postgres returns), and removes it when t ends. A subtest opens its target
// with the options it needs (a clock, an audit witness), sometimes twice at
// once (two instances over one database) or again after closing it; the
// few that damage the database from outside, as someone with write access
// to it would (a changed audit row, the last entries removed, a newer
// schema), open a plain database/sql connection of their own to it: they
// know the audit table, its append-only triggers and the schema_version
// table, and nothing else of the schema.
//
// opts are added to every store.Open of the suite, after its own (for a
// dialect's settings, say). Subtests run one after another.
func Run(t *testing.T, newTarget func(t *testing.T) string, opts ...store.Option) {
	t.Helper()
	if newTarget == nil {
		t.Fatal("storetest: newTarget is nil")
	}
	s := suite{newTarget: newTarget, opts: opts}
	tests := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"OpenEmpty", s.testOpenEmpty},
		{"Reopen", s.testReopen},
		{"SchemaTooNew", s.testSchemaTooNew},
		{"SourceDeclare", s.testSourceDeclare},
		{"SourceStates", s.testSourceStates},
		{"SourceKeys", s.testSourceKeys},
		{"ImageRoundTrip", s.testImageRoundTrip},
		{"ImageIdempotent", s.testImageIdempotent},
		{"ImageIdempotentInTx", s.testImageIdempotentInTx},
		{"ImageAtomic", s.testImageAtomic},
		{"TxAtomic", s.testTxAtomic},
		{"CommitIngest", s.testCommitIngest},
		{"CommitIngestAtomic", s.testCommitIngestAtomic},
		{"SealedTemplates", s.testSealedTemplates},
		{"FaceQueries", s.testFaceQueries},
		{"Progress", s.testProgress},
		{"EraseFaces", s.testEraseFaces},
		{"DeleteFacesAndImage", s.testDeleteFacesAndImage},
		{"RetentionPurge", s.testRetentionPurge},
		{"RetireSource", s.testRetireSource},
		{"RightsLifecycle", s.testRightsLifecycle},
		{"RightsReview", s.testRightsReview},
		{"RightsRegister", s.testRightsRegister},
		{"UsersUnique", s.testUsersUnique},
		{"UserDisableEnable", s.testUserDisableEnable},
		{"Passwords", s.testPasswords},
		{"Sessions", s.testSessions},
		{"APITokens", s.testAPITokens},
		{"Searches", s.testSearches},
		{"ProbeCropPurge", s.testProbeCropPurge},
		{"Confirmations", s.testConfirmations},
		{"Rejections", s.testRejections},
		{"Quarantine", s.testQuarantine},
		{"Settings", s.testSettings},
		{"IndexCursors", s.testIndexCursors},
		{"AuditChain", s.testAuditChain},
		{"AuditRollbackLeavesNoGap", s.testAuditRollback},
		{"AuditAppendOnly", s.testAuditAppendOnly},
		{"AuditTamperDetected", s.testAuditTamper},
		{"AuditWitness", s.testAuditWitness},
		{"ConcurrentWriters", s.testConcurrentWriters},
		{"ConcurrentSameImage", s.testConcurrentSameImage},
		{"TwoInstances", s.testTwoInstances},
		{"ConcurrentUnique", s.testConcurrentUnique},
		{"ContextCancelled", s.testContextCancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.fn)
	}
}

type suite struct {
	newTarget func(t *testing.T) string
	opts      []store.Option // added to every Open
}

// start is the time the clock of every subtest starts at.
var start = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a store clock that moves only when told to.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is one subtest's store: a new database, opened with a clock.
type env struct {
	t      *testing.T
	ctx    context.Context
	db     *store.DB
	clock  *clock
	target string
	n      int // images made so far, for distinct content
}

// env opens a store on a new database with a clock starting at start and
// opts; it is closed when t ends.
func (s suite) env(t *testing.T, opts ...store.Option) *env {
	t.Helper()
	target := s.newTarget(t)
	c := &clock{now: start}
	db := s.openAt(t, target, append([]store.Option{store.WithClock(c.Now)}, opts...)...)
	return &env{t: t, ctx: context.Background(), db: db, clock: c, target: target}
}

// openAt opens a store on target with opts and the suite's options, closed
// when t ends.
func (s suite) openAt(t *testing.T, target string, opts ...store.Option) *store.DB {
	t.Helper()
	db, err := s.open(target, opts...)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return db
}

// open opens a store on target with opts and the suite's options.
func (s suite) open(target string, opts ...store.Option) (*store.DB, error) {
	return store.Open(context.Background(), target, append(slices.Clone(opts), s.opts...)...)
}

// isPostgres reports whether target is a PostgreSQL URL.
func isPostgres(target string) bool {
	return strings.HasPrefix(target, "postgres://") || strings.HasPrefix(target, "postgresql://")
}

// raw opens a plain connection to the database at target, beside the store,
// as someone with write access to it would; closed when t ends.
func raw(t *testing.T, target string) *sql.DB {
	t.Helper()
	var (
		db  *sql.DB
		err error
	)
	if isPostgres(target) {
		db, err = sql.Open("pgx", target)
	} else {
		db, err = sql.Open("sqlite", target+"?_pragma=busy_timeout(5000)")
	}
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// rawExec runs statements on a raw connection (no placeholders: the two
// dialects write them differently).
func rawExec(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, stmt := range stmts {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
}

// unguardAudit lifts what keeps the audit table append-only (triggers), as
// an attacker with write access to the database would.
func unguardAudit(t *testing.T, target string, db *sql.DB) {
	t.Helper()
	if isPostgres(target) {
		rawExec(t, db, `ALTER TABLE audit DISABLE TRIGGER USER`)
		return
	}
	rawExec(t, db, `DROP TRIGGER IF EXISTS audit_no_update`, `DROP TRIGGER IF EXISTS audit_no_delete`)
}

// source declares an active source whose retention is a day, changed by mod.
func (e *env) source(mod func(*store.Source)) int64 {
	e.t.Helper()
	s := store.Source{Kind: store.KindFolder, Locator: fmt.Sprintf("/srv/photos/%d", e.n), Controller: "Example Controller",
		Purpose: "find missing persons", LegalBasis: store.BasisPublicTask, Art9Condition: "9(2)(g) substantial public interest",
		Jurisdiction: "FR", Retention: 24 * time.Hour, CreatedBy: "cli:admin"}
	e.n++
	if mod != nil {
		mod(&s)
	}
	id, err := e.db.CreateSource(e.ctx, s)
	if err != nil {
		e.t.Fatalf("CreateSource: %v", err)
	}
	return id
}

// image returns a new image of source src, with distinct content.
func (e *env) image(src int64) store.Image {
	e.n++
	return testImage(src, e.n)
}

func testImage(src int64, n int) store.Image {
	return store.Image{SourceID: src, SHA256: sha256.Sum256(fmt.Appendf(nil, "image %d", n)),
		Locator: fmt.Sprintf("dir/img%04d.jpg", n), SizeBytes: 100_000 + int64(n), Width: 1920, Height: 1080}
}

// add stores a new image of src with n faces and returns its ids.
func (e *env) add(src int64, n int) (int64, []int64) {
	e.t.Helper()
	img, faces, err := e.db.AddImage(e.ctx, e.image(src), testFaces(n, e.n))
	if err != nil {
		e.t.Fatalf("AddImage: %v", err)
	}
	return img, faces
}

// testFaces returns n valid faces whose templates depend on seed.
func testFaces(n, seed int) []store.Face {
	faces := make([]store.Face, n)
	for i := range faces {
		tmpl := make([]byte, 48)
		for j := range tmpl {
			tmpl[j] = byte(seed*31 + i*7 + j)
		}
		faces[i] = store.Face{
			Box:       face.Box{X: float64(10 * i), Y: 20, W: 64.5, H: 80.25},
			Landmarks: face.Landmarks{{X: 1, Y: 2}, {X: 3.5, Y: 4}, {X: 5, Y: 6.25}, {X: 7, Y: 8}, {X: 9, Y: 10.5}},
			Score:     0.875,
			Quality:   0.5 + float64(i)/1000,
			ModelID:   "test-model-v1",
			Dim:       128,
			Template:  tmpl,
		}
	}
	return faces
}

// user registers a user with roles.
func (e *env) user(name string, roles ...store.Role) {
	e.t.Helper()
	if err := e.db.AddUser(e.ctx, name, roles, "cli:admin"); err != nil {
		e.t.Fatalf("AddUser(%s): %v", name, err)
	}
}

// audit returns the whole audit log.
func (e *env) audit() []store.AuditEntry {
	e.t.Helper()
	es, err := e.db.AuditEntries(e.ctx, 1, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return es
}

// actions returns the actions of the audit entries on object, in order.
func (e *env) actions(object string) []string {
	e.t.Helper()
	var out []string
	for _, a := range e.audit() {
		if a.Object == object {
			out = append(out, a.Action)
		}
	}
	return out
}

// count returns how many audit entries have action.
func (e *env) count(action string) int {
	e.t.Helper()
	n := 0
	for _, a := range e.audit() {
		if a.Action == action {
			n++
		}
	}
	return n
}

// head returns the id of the last audit entry.
func (e *env) head() int64 {
	e.t.Helper()
	id, err := e.db.AuditHeadID(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// verified fails the test unless the audit chain verifies.
func (e *env) verified() {
	e.t.Helper()
	if ok, bad, err := e.db.VerifyAudit(e.ctx); !ok || err != nil {
		e.t.Errorf("VerifyAudit = %v, first bad %d, %v; want ok", ok, bad, err)
	}
}

// faceCount returns the number of faces stored.
func (e *env) faceCount() int64 {
	e.t.Helper()
	n, err := e.db.FaceCount(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// gone fails the test unless err is store.ErrNotFound.
func gone(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("%s: err = %v, want ErrNotFound", what, err)
	}
}

// is fails the test unless errors.Is(err, want).
func is(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: err = %v, want %v", what, err, want)
	}
}

// increasing reports whether ids are strictly increasing.
func increasing(ids []int64) bool {
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			return false
		}
	}
	return true
}

// unique reports whether ids holds no id twice.
func unique(ids []int64) bool {
	c := slices.Clone(ids)
	slices.Sort(c)
	return len(slices.Compact(c)) == len(ids)
}
