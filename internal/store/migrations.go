package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// schemaVersion is the schema this binary writes: the number of migrations.
var schemaVersion = len(migrations)

// migrations are applied in order, each in its own transaction; migration i
// takes the schema from version i to version i+1. Append new ones; never
// edit or reorder one that has shipped. A schema change ships with a
// migration and a test.
var migrations = []func(tx *sql.Tx) error{
	// 1: the initial schema.
	func(tx *sql.Tx) error {
		_, err := tx.Exec(`
CREATE TABLE sources (
	id             INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: ids appear in audit entries, search results and key bindings
	kind           TEXT    NOT NULL CHECK (kind IN ('folder', 'archive', 'video', 'enrollment')),
	locator        TEXT    NOT NULL CHECK (locator <> ''),
	controller     TEXT    NOT NULL CHECK (controller <> ''),
	purpose        TEXT    NOT NULL CHECK (purpose <> ''),
	legal_basis    TEXT    NOT NULL CHECK (legal_basis IN ('consent', 'contract', 'legal-obligation',
	                                       'vital-interests', 'public-task', 'legitimate-interests')),
	art9_condition TEXT    NOT NULL CHECK (art9_condition <> ''),
	jurisdiction   TEXT    NOT NULL CHECK (length(jurisdiction) = 2 AND jurisdiction GLOB '[A-Z][A-Z]'),
	retention_ms   INTEGER NOT NULL CHECK (retention_ms > 0),
	created_by     TEXT    NOT NULL CHECK (created_by <> ''),
	created_at     INTEGER NOT NULL,
	state          TEXT    NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'suspended', 'deleted'))
) STRICT;

CREATE TABLE source_keys (
	source_id   INTEGER PRIMARY KEY REFERENCES sources (id) ON DELETE CASCADE,
	wrapped_key BLOB    NOT NULL CHECK (length(wrapped_key) > 0),
	created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE images (
	id                 INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: ids appear in audit entries, search results and key bindings
	source_id          INTEGER NOT NULL REFERENCES sources (id),
	sha256             BLOB    NOT NULL CHECK (length(sha256) = 32),
	locator            TEXT    NOT NULL,
	size_bytes         INTEGER NOT NULL CHECK (size_bytes >= 0),
	width              INTEGER NOT NULL CHECK (width > 0),
	height             INTEGER NOT NULL CHECK (height > 0),
	taken_at           INTEGER,
	ingested_at        INTEGER NOT NULL,
	retention_deadline INTEGER NOT NULL,
	UNIQUE (source_id, sha256)
) STRICT;
CREATE INDEX images_retention_deadline ON images (retention_deadline);

CREATE TABLE subjects (
	id         INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: ids appear in audit entries, search results and key bindings
	label      TEXT    NOT NULL,
	created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE faces (
	id           INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: ids appear in audit entries, search results and key bindings
	image_id     INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
	box_x        REAL    NOT NULL,
	box_y        REAL    NOT NULL,
	box_w        REAL    NOT NULL,
	box_h        REAL    NOT NULL,
	landmarks    BLOB    NOT NULL CHECK (length(landmarks) = 40),
	score        REAL    NOT NULL,
	quality      REAL    NOT NULL,
	model_id     TEXT    NOT NULL CHECK (model_id <> ''),
	dim          INTEGER NOT NULL CHECK (dim > 0),
	template     BLOB    NOT NULL CHECK (length(template) > 0),
	subject_id   INTEGER REFERENCES subjects (id) ON DELETE SET NULL,
	track_id     INTEGER,
	time_code_ms INTEGER
) STRICT;
CREATE INDEX faces_image_id ON faces (image_id);
CREATE INDEX faces_subject_id ON faces (subject_id) WHERE subject_id IS NOT NULL;

CREATE TABLE searches (
	id           INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: ids appear in audit entries, search results and key bindings
	actor        TEXT    NOT NULL CHECK (actor <> ''),
	at           INTEGER NOT NULL,
	purpose      TEXT    NOT NULL CHECK (purpose <> ''),
	case_ref     TEXT,
	probe_sha256 BLOB    NOT NULL CHECK (length(probe_sha256) = 32),
	k            INTEGER NOT NULL CHECK (k > 0),
	threshold    REAL    NOT NULL,
	returned     TEXT    NOT NULL CHECK (json_valid(returned) AND json_type(returned) = 'array')
) STRICT;

CREATE TABLE audit (
	id        INTEGER PRIMARY KEY,
	at        INTEGER NOT NULL,
	actor     TEXT    NOT NULL,
	action    TEXT    NOT NULL,
	object    TEXT    NOT NULL,
	detail    TEXT    NOT NULL CHECK (json_valid(detail)),
	prev_hash BLOB    NOT NULL CHECK (length(prev_hash) = 32),
	hash      BLOB    NOT NULL CHECK (length(hash) = 32)
) STRICT;
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
	SELECT RAISE(ABORT, 'audit is append-only');
END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
	SELECT RAISE(ABORT, 'audit is append-only');
END;

CREATE TABLE ingest_progress (
	source_id  INTEGER NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
	locator    TEXT    NOT NULL,
	sha256     BLOB    CHECK (sha256 IS NULL OR length(sha256) = 32),
	state      TEXT    NOT NULL CHECK (state IN ('done', 'failed')),
	reason     TEXT    NOT NULL DEFAULT '',
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (source_id, locator)
) STRICT, WITHOUT ROWID;
`)
		return err
	},
	// 2: ingestion skips content it has already seen in a source under any
	// name, including images since purged or erased (looked up by hash).
	func(tx *sql.Tx) error {
		_, err := tx.Exec(`CREATE INDEX ingest_progress_sha256 ON ingest_progress (source_id, sha256) WHERE sha256 IS NOT NULL`)
		return err
	},
	// 3: the register of rights requests (GDPR Art. 12, 15–21). Their
	// history is the audit log (object "rights/ID"). The checks mirror
	// dsr.Request.Validate, so a row written around the store still follows
	// the state machine's invariants.
	func(tx *sql.Tx) error {
		_, err := tx.Exec(`
CREATE TABLE rights_requests (
	id              INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: ids appear in audit entries and answers
	kind            TEXT    NOT NULL CHECK (kind IN ('access', 'erasure', 'objection', 'restriction')),
	state           TEXT    NOT NULL CHECK (state IN ('received', 'verified', 'in-progress', 'extended', 'completed', 'refused')),
	contact         TEXT    NOT NULL CHECK (contact <> ''), -- as given by the caller (which may encrypt it); never logged
	zone            TEXT    NOT NULL CHECK (zone <> ''),    -- IANA zone the deadlines are counted in
	received_at     INTEGER NOT NULL,
	due_at          INTEGER NOT NULL CHECK (due_at > received_at),
	extended_from   TEXT    CHECK (extended_from IN ('received', 'verified', 'in-progress')),
	extended_due_at INTEGER CHECK (extended_due_at > due_at),
	extend_reason   TEXT    NOT NULL DEFAULT '',
	notice_sent_at  INTEGER CHECK (notice_sent_at <= due_at),
	reason          TEXT    NOT NULL DEFAULT '',
	closed_at       INTEGER,
	matched_faces   TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(matched_faces) AND json_type(matched_faces) = 'array'),
	result          TEXT    CHECK (json_valid(result)),
	CHECK ((extended_from IS NULL) = (extended_due_at IS NULL)
	   AND (extended_from IS NULL) = (notice_sent_at IS NULL)
	   AND (extended_from IS NULL) = (extend_reason = '')),
	CHECK (state <> 'extended' OR extended_from IS NOT NULL),
	CHECK ((state IN ('completed', 'refused')) = (closed_at IS NOT NULL)),
	CHECK ((state = 'refused') = (reason <> ''))
) STRICT;
`)
		return err
	},
	// 4: users and their roles (least privilege), and the confirmations of
	// search results by verifiers: a result is an identification only once
	// two different verifiers have confirmed it (AI Act Art. 14(5)). Users
	// are disabled, never deleted, so that the names in the audit log and in
	// confirmations keep their meaning. face_id is not a foreign key: a
	// confirmation stays in the record after the face is erased.
	func(tx *sql.Tx) error {
		_, err := tx.Exec(`
CREATE TABLE users (
	name        TEXT    PRIMARY KEY CHECK (name <> ''),
	roles       TEXT    NOT NULL CHECK (json_valid(roles) AND json_type(roles) = 'array'),
	created_by  TEXT    NOT NULL CHECK (created_by <> ''),
	created_at  INTEGER NOT NULL,
	disabled_at INTEGER
) STRICT;

CREATE TABLE confirmations (
	search_id INTEGER NOT NULL REFERENCES searches (id),
	face_id   INTEGER NOT NULL,
	verifier  TEXT    NOT NULL CHECK (verifier <> ''),
	at        INTEGER NOT NULL,
	PRIMARY KEY (search_id, face_id, verifier)
) STRICT;
`)
		return err
	},
	// 5: credentials for the web console and the API. A user may have a
	// password (an argon2id PHC string; accounts of the command line,
	// cli:NAME, have none). Sessions and API tokens are found by the
	// SHA-256 of their bearer token; the tokens themselves are never
	// stored. API token ids are never reused: they appear in audit entries.
	func(tx *sql.Tx) error {
		_, err := tx.Exec(`
ALTER TABLE users ADD COLUMN password_hash TEXT CHECK (password_hash <> '');

CREATE TABLE sessions (
	token_hash   BLOB    PRIMARY KEY CHECK (length(token_hash) = 32),
	user_name    TEXT    NOT NULL REFERENCES users (name),
	csrf         TEXT    NOT NULL CHECK (csrf <> ''),
	created_at   INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL CHECK (expires_at > created_at),
	last_seen_at INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_user_name ON sessions (user_name);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE api_tokens (
	id           INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: ids appear in audit entries
	user_name    TEXT    NOT NULL REFERENCES users (name),
	label        TEXT    NOT NULL CHECK (label <> ''),
	token_hash   BLOB    NOT NULL UNIQUE CHECK (length(token_hash) = 32),
	created_at   INTEGER NOT NULL,
	created_by   TEXT    NOT NULL CHECK (created_by <> ''),
	expires_at   INTEGER CHECK (expires_at > created_at),
	revoked_at   INTEGER,
	last_used_at INTEGER
) STRICT;
CREATE INDEX api_tokens_user_name ON api_tokens (user_name);
`)
		return err
	},
	// 6: open-set search decisions. A search records the operating point
	// it was decided at (the least similarity of a match for a target
	// false-positive identification rate at the gallery's size), the stated
	// reason of an exploratory search below it, every face it returned with
	// its similarity, band and expected strangers (results), how many faces
	// reached the threshold (above), which face of the probe was searched
	// (probe_face), and that face's crop sealed for the verifiers
	// (probe_crop), erased by the retention purge. Verifiers may reject a
	// result, with a reason: a rejected face never becomes an
	// identification. Settings hold the policy (the target FPIR of
	// searches), shared by every instance and changed with an audit entry.
	// JSON columns are checked by the code, not by CHECK
	// constraints, so that they mean the same in every SQLite version.
	func(tx *sql.Tx) error {
		_, err := tx.Exec(`
ALTER TABLE searches ADD COLUMN operating_point REAL;
ALTER TABLE searches ADD COLUMN group_point REAL;
ALTER TABLE searches ADD COLUMN fpir REAL;
ALTER TABLE searches ADD COLUMN gallery INTEGER;
ALTER TABLE searches ADD COLUMN exploratory TEXT;
ALTER TABLE searches ADD COLUMN above INTEGER;
ALTER TABLE searches ADD COLUMN results TEXT;
ALTER TABLE searches ADD COLUMN probe_face TEXT;
ALTER TABLE searches ADD COLUMN probe_crop BLOB;
CREATE INDEX searches_actor ON searches (actor, id);
CREATE INDEX searches_case_ref ON searches (case_ref, id) WHERE case_ref IS NOT NULL;

CREATE TABLE settings (
	name   TEXT    PRIMARY KEY CHECK (name <> ''),
	value  TEXT    NOT NULL,
	set_by TEXT    NOT NULL CHECK (set_by <> ''),
	set_at INTEGER NOT NULL
) STRICT;

CREATE TABLE rejections (
	search_id INTEGER NOT NULL REFERENCES searches (id),
	face_id   INTEGER NOT NULL,
	verifier  TEXT    NOT NULL CHECK (verifier <> ''),
	reason    TEXT    NOT NULL CHECK (reason <> ''),
	at        INTEGER NOT NULL,
	PRIMARY KEY (search_id, face_id, verifier)
) STRICT;
`)
		return err
	},
	// 7: rights requests are found, reviewed, then acted on. Processing
	// builds a candidate set (every stored face that may be the person's,
	// each with its similarity to the person's selfies together, its band
	// and whether the strict operating point pre-selected it); the DPO
	// reviews it (selected) and records how the requester's identity was
	// established (rights_identity) before anything is erased, suppressed,
	// restricted or disclosed. The faces' crops of the selfies are kept
	// sealed for the review (rights_selfies). Candidates and selfie crops
	// are deleted when the request closes; what was done, to which faces,
	// stays in rights_records, sealed for the DPO (the audit log keeps
	// counts). rights_notices records that the users of searches that had
	// returned erased faces were told (GDPR Art. 19). face_id and search_id
	// are not foreign keys: they outlive the faces they name.
	func(tx *sql.Tx) error {
		_, err := tx.Exec(`
CREATE TABLE rights_reviews (
	request_id  INTEGER PRIMARY KEY REFERENCES rights_requests (id),
	found_by    TEXT    NOT NULL CHECK (found_by <> ''),
	found_at    INTEGER NOT NULL,
	gallery     INTEGER NOT NULL CHECK (gallery >= 0),
	selfies     INTEGER NOT NULL CHECK (selfies > 0),
	floor       REAL    NOT NULL,
	strict      REAL    NOT NULL,
	group_point REAL    NOT NULL,
	fpir        REAL    NOT NULL CHECK (fpir > 0 AND fpir < 1),
	beyond      INTEGER NOT NULL DEFAULT 0 CHECK (beyond >= 0),
	reviewed_by TEXT    CHECK (reviewed_by <> ''),
	reviewed_at INTEGER,
	CHECK ((reviewed_by IS NULL) = (reviewed_at IS NULL))
) STRICT;

CREATE TABLE rights_candidates (
	request_id   INTEGER NOT NULL REFERENCES rights_reviews (request_id),
	face_id      INTEGER NOT NULL,
	score        REAL    NOT NULL,
	similarities TEXT    NOT NULL,
	strangers    REAL    NOT NULL CHECK (strangers >= 0),
	band         TEXT    NOT NULL CHECK (band IN ('strong', 'probable', 'weak')),
	preselected  INTEGER NOT NULL CHECK (preselected IN (0, 1)),
	selected     INTEGER NOT NULL CHECK (selected IN (0, 1)),
	added        INTEGER NOT NULL CHECK (added IN (0, 1)),
	PRIMARY KEY (request_id, face_id)
) STRICT;

CREATE TABLE rights_selfies (
	request_id INTEGER NOT NULL REFERENCES rights_requests (id),
	n          INTEGER NOT NULL CHECK (n > 0),
	quality    REAL    NOT NULL,
	crop       BLOB    NOT NULL,
	PRIMARY KEY (request_id, n)
) STRICT;

CREATE TABLE rights_identity (
	request_id INTEGER PRIMARY KEY REFERENCES rights_requests (id),
	method     TEXT    NOT NULL CHECK (method <> ''),
	note       TEXT    NOT NULL DEFAULT '',
	checked_by TEXT    NOT NULL CHECK (checked_by <> ''),
	checked_at INTEGER NOT NULL
) STRICT;

CREATE TABLE rights_records (
	request_id INTEGER PRIMARY KEY REFERENCES rights_requests (id),
	sealed     BLOB    NOT NULL,
	sha256     TEXT    NOT NULL CHECK (length(sha256) = 64),
	created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE rights_notices (
	request_id  INTEGER NOT NULL REFERENCES rights_requests (id),
	search_id   INTEGER NOT NULL,
	notified_by TEXT    NOT NULL CHECK (notified_by <> ''),
	notified_at INTEGER NOT NULL,
	PRIMARY KEY (request_id, search_id)
) STRICT;
`)
		return err
	},
	// 8: the audit log is read filtered by actor, action (exactly or by
	// prefix), case (the entries of its searches, by object) and period,
	// newest first; without these indexes each filter scans the whole
	// log, which only grows.
	func(tx *sql.Tx) error {
		_, err := tx.Exec(`
CREATE INDEX audit_actor ON audit (actor, id);
CREATE INDEX audit_action ON audit (action, id);
CREATE INDEX audit_object ON audit (object, id);
CREATE INDEX audit_at ON audit (at);
`)
		return err
	},
	// 9: faces whose sealed template cannot be opened (altered or swapped
	// bytes) are quarantined, so that one damaged record never stops a
	// search, a reindex or a rights request: when, by which operation and
	// why in a few words (never the template). A face erased leaves
	// quarantine with it.
	func(tx *sql.Tx) error {
		_, err := tx.Exec(`
CREATE TABLE quarantine (
	face_id INTEGER PRIMARY KEY REFERENCES faces (id) ON DELETE CASCADE,
	at      INTEGER NOT NULL,
	found   TEXT    NOT NULL CHECK (found <> ''),
	reason  TEXT    NOT NULL CHECK (reason <> '')
) STRICT;
`)
		return err
	},
	// 10: constraints that mean the same in every SQLite. json_valid(NULL)
	// is NULL (the check passes) in the driver's SQLite, but 0 in SQLite
	// before 3.45, such as Debian 12's sqlite3 3.40: there, PRAGMA
	// integrity_check reported every open rights request (result NULL) as
	// a violation, and `sqlite3 gabarit.db .dump | sqlite3 new.db` dropped
	// them. The table is rebuilt with the SQLite 12-step procedure
	// (https://sqlite.org/lang_altertable.html#otheralter; migrate turns
	// foreign keys off around it and checks them before committing),
	// keeping its rows, ids and AUTOINCREMENT counter; it has no index,
	// trigger or view of its own.
	func(tx *sql.Tx) error {
		const cols = `id, kind, state, contact, zone, received_at, due_at, extended_from, extended_due_at,
	extend_reason, notice_sent_at, reason, closed_at, matched_faces, result`
		var seq sql.NullInt64
		if err := tx.QueryRow(`SELECT seq FROM sqlite_sequence WHERE name = 'rights_requests'`).Scan(&seq); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		_, err := tx.Exec(`
CREATE TABLE rights_requests_new (
	id              INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: ids appear in audit entries and answers
	kind            TEXT    NOT NULL CHECK (kind IN ('access', 'erasure', 'objection', 'restriction')),
	state           TEXT    NOT NULL CHECK (state IN ('received', 'verified', 'in-progress', 'extended', 'completed', 'refused')),
	contact         TEXT    NOT NULL CHECK (contact <> ''), -- as given by the caller (which may encrypt it); never logged
	zone            TEXT    NOT NULL CHECK (zone <> ''),    -- IANA zone the deadlines are counted in
	received_at     INTEGER NOT NULL,
	due_at          INTEGER NOT NULL CHECK (due_at > received_at),
	extended_from   TEXT    CHECK (extended_from IN ('received', 'verified', 'in-progress')),
	extended_due_at INTEGER CHECK (extended_due_at > due_at),
	extend_reason   TEXT    NOT NULL DEFAULT '',
	notice_sent_at  INTEGER CHECK (notice_sent_at <= due_at),
	reason          TEXT    NOT NULL DEFAULT '',
	closed_at       INTEGER,
	matched_faces   TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(matched_faces) AND json_type(matched_faces) = 'array'),
	result          TEXT    CHECK (result IS NULL OR json_valid(result)),
	CHECK ((extended_from IS NULL) = (extended_due_at IS NULL)
	   AND (extended_from IS NULL) = (notice_sent_at IS NULL)
	   AND (extended_from IS NULL) = (extend_reason = '')),
	CHECK (state <> 'extended' OR extended_from IS NOT NULL),
	CHECK ((state IN ('completed', 'refused')) = (closed_at IS NOT NULL)),
	CHECK ((state = 'refused') = (reason <> ''))
) STRICT;
INSERT INTO rights_requests_new (` + cols + `) SELECT ` + cols + ` FROM rights_requests;
DROP TABLE rights_requests;
ALTER TABLE rights_requests_new RENAME TO rights_requests;
`)
		if err != nil || !seq.Valid {
			return err
		}
		// The counter of the rebuilt table starts at its highest id; the
		// old one may have been higher (ids are never reused).
		if _, err := tx.Exec(`DELETE FROM sqlite_sequence WHERE name = 'rights_requests'`); err != nil {
			return err
		}
		_, err = tx.Exec(`INSERT INTO sqlite_sequence (name, seq) VALUES ('rights_requests', ?)`, seq.Int64)
		return err
	},
	// 11: the vault (internal/vault) moves from its own file, vault.db, into
	// the store, so that every process over one database enforces the same
	// objections and restrictions: its entries (templates sealed by the
	// keyring, bound to their row), a change counter bumped by every write
	// to them, and the vault files of older versions already imported.
	func(tx *sql.Tx) error {
		_, err := tx.Exec(`
CREATE TABLE vault_entries (
	id         INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: sealed templates are bound to it
	kind       TEXT    NOT NULL CHECK (kind IN ('objection', 'restriction', 'selfie')),
	request_id INTEGER NOT NULL CHECK (request_id > 0), -- a rights request; kept until removed, even if the request is gone
	model_id   TEXT    NOT NULL CHECK (model_id <> ''),
	dim        INTEGER NOT NULL CHECK (dim > 0),
	created_at INTEGER NOT NULL,
	template   BLOB    NOT NULL -- sealed: version, nonce, ciphertext and tag
) STRICT;
CREATE INDEX vault_entries_request ON vault_entries (request_id, kind);
CREATE TABLE vault_state (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	version INTEGER NOT NULL -- bumped in the transaction of every write to vault_entries
) STRICT;
INSERT INTO vault_state (id, version) VALUES (1, 0);
CREATE TABLE vault_imports (
	fingerprint BLOB    PRIMARY KEY, -- SHA-256 of the imported file's wrapped data key
	imported_at INTEGER NOT NULL,
	entries     INTEGER NOT NULL
) STRICT;
`)
		return err
	},
	// 12: the index outbox (see outbox.go). Every change of faces writes
	// its index operations here in its own transaction, and every vector
	// index, in whichever instance, applies them in seq order from the last
	// seq it applied (recorded in its file). Old operations are pruned;
	// index_outbox_pruned keeps the highest seq deleted, below which an
	// index must be rebuilt. No backfill: an index file saved before this
	// version is rebuilt once (package vstore).
	func(tx *sql.Tx) error {
		_, err := tx.Exec(`
CREATE TABLE index_outbox (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: indexes record the last one they applied
	model_id   TEXT    NOT NULL,
	op         TEXT    NOT NULL CHECK (op IN ('add', 'del')),
	face_id    INTEGER NOT NULL, -- not a foreign key: a 'del' outlives its face
	created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX index_outbox_model ON index_outbox (model_id, seq);
CREATE TABLE index_outbox_pruned (
	id  INTEGER PRIMARY KEY CHECK (id = 1),
	seq INTEGER NOT NULL -- the highest seq deleted from index_outbox
) STRICT;
INSERT INTO index_outbox_pruned (id, seq) VALUES (1, 0);
-- The store's identity, drawn once: an index file records it, so that a
-- data directory pointed at another store rebuilds its index.
INSERT INTO settings (name, value, set_by, set_at) VALUES ('store-id', lower(hex(randomblob(16))), 'gabarit', 0)
	ON CONFLICT (name) DO NOTHING;
`)
		return err
	},
	// 13: server state shared by every instance over one database (see
	// jobs.go and packages.go). An ingest job is a row split into parts
	// (ingest_job_parts: the files whose locator hashes to the part), each
	// claimed by one instance with a lease it renews; a part whose lease
	// expired (its instance died) is claimed again by another. At most one
	// job of a source is queued or running (a partial unique index). leases
	// holds named leader leases (the retention purge). rights_packages keeps the
	// access package of a request, sealed by the keyring, with the SHA-256
	// of the plain package, instead of a file on one instance's disk.
	func(tx *sql.Tx) error {
		_, err := tx.Exec(`
CREATE TABLE ingest_jobs (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	source_id    INTEGER NOT NULL REFERENCES sources (id),
	state        TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
	started_by   TEXT    NOT NULL CHECK (started_by <> ''),
	queued_at    INTEGER NOT NULL,
	started_at   INTEGER,
	finished_at  INTEGER,
	total_files  INTEGER NOT NULL DEFAULT 0,
	files_seen   INTEGER NOT NULL DEFAULT 0,
	images       INTEGER NOT NULL DEFAULT 0,
	faces        INTEGER NOT NULL DEFAULT 0,
	skipped      INTEGER NOT NULL DEFAULT 0,
	suppressed   INTEGER NOT NULL DEFAULT 0,
	failed_files INTEGER NOT NULL DEFAULT 0,
	images_per_s REAL    NOT NULL DEFAULT 0,
	faces_per_s  REAL    NOT NULL DEFAULT 0,
	errors       TEXT    NOT NULL DEFAULT '[]', -- the files that failed, JSON, capped
	error        TEXT    NOT NULL DEFAULT '',   -- why the job failed, for users
	cancelled_by TEXT    NOT NULL DEFAULT '',   -- set while running: a cancel the owners apply at their next safe point
	parts        INTEGER NOT NULL DEFAULT 1 CHECK (parts >= 1),
	audit_start  INTEGER                        -- the audit entry of the job's start, once written
) STRICT;
CREATE UNIQUE INDEX ingest_jobs_active ON ingest_jobs (source_id) WHERE state IN ('queued', 'running');
CREATE INDEX ingest_jobs_state ON ingest_jobs (state, id);
CREATE TABLE ingest_job_parts (
	job_id       INTEGER NOT NULL REFERENCES ingest_jobs (id),
	part         INTEGER NOT NULL CHECK (part >= 0),
	state        TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
	owner        TEXT    NOT NULL DEFAULT '',   -- the instance running it
	lease_until  INTEGER,                       -- the owner's claim ends then unless renewed
	claims       INTEGER NOT NULL DEFAULT 0,    -- how many times it was claimed (more than 1: taken over)
	started_at   INTEGER,
	finished_at  INTEGER,
	total_files  INTEGER NOT NULL DEFAULT 0,
	files_seen   INTEGER NOT NULL DEFAULT 0,
	images       INTEGER NOT NULL DEFAULT 0,
	faces        INTEGER NOT NULL DEFAULT 0,
	skipped      INTEGER NOT NULL DEFAULT 0,
	suppressed   INTEGER NOT NULL DEFAULT 0,
	failed_files INTEGER NOT NULL DEFAULT 0,
	images_per_s REAL    NOT NULL DEFAULT 0,
	faces_per_s  REAL    NOT NULL DEFAULT 0,
	errors       TEXT    NOT NULL DEFAULT '[]',
	error        TEXT    NOT NULL DEFAULT '',
	cancelled_by TEXT    NOT NULL DEFAULT '',
	PRIMARY KEY (job_id, part)
) STRICT;
CREATE INDEX ingest_job_parts_state ON ingest_job_parts (state, job_id, part);
CREATE TABLE leases (
	name       TEXT    PRIMARY KEY,
	owner      TEXT    NOT NULL CHECK (owner <> ''),
	expires_at INTEGER NOT NULL
) STRICT;
CREATE TABLE rights_packages (
	request_id INTEGER PRIMARY KEY REFERENCES rights_requests (id),
	sealed     BLOB    NOT NULL,
	sha256     TEXT    NOT NULL CHECK (length(sha256) = 64), -- of the plain package
	size_bytes INTEGER NOT NULL CHECK (size_bytes >= 0),
	created_at INTEGER NOT NULL
) STRICT;
`)
		return err
	},
	// 14: remote vector indexes (a Weaviate collection), shared by every
	// instance (see indexcursor.go). index_cursors holds, per index, the
	// last index outbox seq applied to it (what an index file's header holds
	// for an embedded index) and its vector rotation secret, sealed by the
	// master key. index_pending_deletes holds the faces whose deletion
	// reached some replicas but not all (a node was down): they are deleted
	// again until every replica acknowledges.
	func(tx *sql.Tx) error {
		_, err := tx.Exec(`
CREATE TABLE index_cursors (
	name        TEXT    PRIMARY KEY CHECK (name <> ''),
	model_id    TEXT    NOT NULL CHECK (model_id <> ''),
	dim         INTEGER NOT NULL CHECK (dim > 0),
	applied_seq INTEGER NOT NULL CHECK (applied_seq >= 0),
	rotation    BLOB    NOT NULL, -- the sealed rotation secret
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
) STRICT;
CREATE TABLE index_pending_deletes (
	name    TEXT    NOT NULL REFERENCES index_cursors (name) ON DELETE CASCADE,
	face_id INTEGER NOT NULL,
	seq     INTEGER NOT NULL, -- the outbox seq of the deletion
	PRIMARY KEY (name, face_id)
) STRICT;
`)
		return err
	},
}

// migrate brings the database on the writer w to schemaVersion, one
// migration per transaction. Each transaction is IMMEDIATE and re-reads the
// version, so two processes opening the same new file do not both migrate it.
//
// Foreign keys are off while migrations run (a table that others refer to
// is rebuilt by copying it, as SQLite's 12-step procedure says), and each
// migration's transaction checks them before it commits.
func migrate(ctx context.Context, w *sql.DB) (err error) {
	c, err := w.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, `PRAGMA foreign_keys = OFF`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer func() {
		if _, ferr := c.ExecContext(ctx, `PRAGMA foreign_keys = ON`); ferr != nil {
			err = errors.Join(err, fmt.Errorf("migrate: foreign keys back on: %w", ferr))
		}
	}()
	if _, err := c.ExecContext(ctx,
		`CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL) STRICT`); err != nil {
		return fmt.Errorf("create schema_version: %w", err)
	}
	for {
		done, err := migrateOne(ctx, c)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

// migrateOne applies the next pending migration, or reports done when the
// schema is current.
func migrateOne(ctx context.Context, w *sql.Conn) (done bool, err error) {
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("begin migration: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback() // the error being returned matters more
		}
	}()
	var version int
	switch err := tx.QueryRow(`SELECT version FROM schema_version`).Scan(&version); {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.Exec(`INSERT INTO schema_version (version) VALUES (0)`); err != nil {
			return false, fmt.Errorf("init schema_version: %w", err)
		}
	case err != nil:
		return false, fmt.Errorf("read schema version: %w", err)
	}
	switch {
	case version > schemaVersion:
		return false, fmt.Errorf("schema version %d, binary knows %d: %w", version, schemaVersion, ErrSchemaTooNew)
	case version == schemaVersion:
		return true, tx.Commit()
	}
	if err := migrations[version](tx); err != nil {
		return false, fmt.Errorf("migration %d: %w", version+1, err)
	}
	var violations int
	if err := tx.QueryRow(`SELECT count(*) FROM pragma_foreign_key_check`).Scan(&violations); err != nil {
		return false, fmt.Errorf("migration %d: check foreign keys: %w", version+1, err)
	}
	if violations > 0 {
		return false, fmt.Errorf("migration %d: %d rows would refer to rows that do not exist", version+1, violations)
	}
	if _, err := tx.Exec(`UPDATE schema_version SET version = ?`, version+1); err != nil {
		return false, fmt.Errorf("migration %d: set version: %w", version+1, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("migration %d: commit: %w", version+1, err)
	}
	return false, nil
}
