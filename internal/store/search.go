package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
)

// Search records one use of the search function (AI Act Art. 12): who ran
// it, when, why, the hash of the probe (never the probe) and what it
// returned.
type Search struct {
	ID          int64
	Actor       string
	At          time.Time // zero means now, by the store clock
	Purpose     string    // required
	CaseRef     string    // case reference; empty when none
	ProbeSHA256 [32]byte
	K           int     // results per page (the search returns every face above Threshold)
	Threshold   float64 // the least similarity of a returned face
	Returned    []int64 // face ids, in rank order; the ids of Results

	// The decision. Searches recorded before calibrated decisions have a
	// zero OperatingPoint, FPIR and Gallery, and no Results.

	// OperatingPoint is the least similarity of a match at the target
	// FPIR for a gallery of Gallery faces.
	OperatingPoint float64
	// GroupPoint is the least second-best similarity of a group of
	// look-alike candidates that all match (person-level evidence).
	GroupPoint float64
	FPIR       float64 // target false-positive identification rate
	Gallery    int     // faces compared: the gallery size of the operating point
	// Exploratory is the stated reason of a search run below the operating
	// point ("" for a search at it); its results below the operating point
	// are marked weak.
	Exploratory string
	// Above counts the faces at or above Threshold. Every one of them is
	// in Results unless more than search.MaxResults were found.
	Above     int
	Results   []SearchResult // best first
	ProbeFace *ProbeFace     // the face of the probe that was searched; nil when none
	// ProbeCrop is the searched face's crop, sealed (never in clear), for
	// the verifiers; nil when none, or once the retention purge erased it
	// (PurgeProbeCrops).
	ProbeCrop []byte
}

// SearchResult is one face a search returned, with the strength of the
// evidence.
type SearchResult struct {
	FaceID     int64   `json:"face"`
	Similarity float64 `json:"similarity"`
	Band       string  `json:"band"` // strong, probable or weak
	// Strangers is the number of faces of people other than the probe's
	// expected at this similarity or above in a gallery of this size, by
	// the calibrated impostor distribution.
	Strangers float64 `json:"strangers"`
	// Support counts the other returned faces that look like the same
	// person as this one (the group it was decided with).
	Support int `json:"support,omitempty"`
}

// ProbeFace says which face of the probe was searched.
type ProbeFace struct {
	Index   int        `json:"index"`   // numbered from 0, in the analyzer's order
	Faces   int        `json:"faces"`   // faces found in the probe
	Quality float64    `json:"quality"` // in [0, 1]
	Box     [4]float64 `json:"box"`     // x, y, w, h in the probe's pixels
	Chosen  string     `json:"chosen"`  // "asked", or "best quality"
	Warning string     `json:"warning,omitempty"`
}

// AddSearch records a search; see Tx.AddSearch.
func (db *DB) AddSearch(ctx context.Context, s Search) (id int64, err error) {
	err = db.Tx(ctx, func(tx *Tx) error {
		id, err = tx.AddSearch(ctx, s)
		return err
	})
	return id, err
}

// AddSearch records s and returns its id. Actor and Purpose are required,
// K must be positive and Threshold finite; otherwise it fails with
// ErrInvalid.
func (tx *Tx) AddSearch(ctx context.Context, s Search) (int64, error) {
	switch {
	case strings.TrimSpace(s.Purpose) == "":
		return 0, fmt.Errorf("add search: purpose required: %w", ErrInvalid)
	case strings.TrimSpace(s.Actor) == "":
		return 0, fmt.Errorf("add search: actor required: %w", ErrInvalid)
	case s.K <= 0:
		return 0, fmt.Errorf("add search: k %d must be positive: %w", s.K, ErrInvalid)
	case math.IsNaN(s.Threshold) || math.IsInf(s.Threshold, 0):
		return 0, fmt.Errorf("add search: threshold must be finite: %w", ErrInvalid)
	}
	returned := s.Returned
	if returned == nil {
		returned = []int64{}
	}
	list, err := json.Marshal(returned)
	if err != nil {
		return 0, fmt.Errorf("add search: %w", err)
	}
	at := s.At
	if at.IsZero() {
		at = tx.now()
	}
	var caseRef, exploratory, results, probeFace, probeCrop any
	if s.CaseRef != "" {
		caseRef = s.CaseRef
	}
	if s.Exploratory != "" {
		exploratory = s.Exploratory
	}
	if s.Results != nil {
		if len(s.Results) != len(returned) {
			return 0, fmt.Errorf("add search: %d results for %d returned faces: %w", len(s.Results), len(returned), ErrInvalid)
		}
		for i, r := range s.Results {
			if r.FaceID != returned[i] {
				return 0, fmt.Errorf("add search: result %d is face %d, returned says %d: %w", i, r.FaceID, returned[i], ErrInvalid)
			}
		}
		b, err := json.Marshal(s.Results)
		if err != nil {
			return 0, fmt.Errorf("add search: %w", err)
		}
		results = string(b)
	}
	if s.ProbeFace != nil {
		b, err := json.Marshal(s.ProbeFace)
		if err != nil {
			return 0, fmt.Errorf("add search: %w", err)
		}
		probeFace = string(b)
	}
	if len(s.ProbeCrop) > 0 {
		probeCrop = s.ProbeCrop
	}
	var id int64
	err = tx.tx.QueryRowContext(ctx, `
INSERT INTO searches (actor, at, purpose, case_ref, probe_sha256, k, threshold, returned,
	operating_point, group_point, fpir, gallery, exploratory, above, results, probe_face, probe_crop)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		s.Actor, ms(at), s.Purpose, caseRef, s.ProbeSHA256[:], s.K, s.Threshold, string(list),
		s.OperatingPoint, s.GroupPoint, s.FPIR, s.Gallery, exploratory, s.Above, results, probeFace, probeCrop).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("add search: %w", err)
	}
	return id, nil
}

// Search returns the recorded search with the given id, or ErrNotFound.
func (db *DB) Search(ctx context.Context, id int64) (Search, error) {
	row := db.r.QueryRowContext(ctx, `SELECT `+searchColumns+` FROM searches WHERE id = ?`, id)
	return one(row, scanSearch, fmt.Sprintf("search %d", id))
}

const searchColumns = `id, actor, at, purpose, case_ref, probe_sha256, k, threshold, returned,
	operating_point, group_point, fpir, gallery, exploratory, above, results, probe_face, probe_crop`

func scanSearch(sc scanner) (Search, error) {
	var s Search
	var at int64
	var caseRef, exploratory, results, probeFace sql.NullString
	var op, gp, fpir sql.NullFloat64
	var gallery, above sql.NullInt64
	var probe []byte
	var list string
	if err := sc.Scan(&s.ID, &s.Actor, &at, &s.Purpose, &caseRef, &probe, &s.K, &s.Threshold, &list,
		&op, &gp, &fpir, &gallery, &exploratory, &above, &results, &probeFace, &s.ProbeCrop); err != nil {
		return Search{}, err
	}
	s.At = fromMS(at)
	s.CaseRef = caseRef.String
	s.OperatingPoint, s.GroupPoint, s.FPIR = op.Float64, gp.Float64, fpir.Float64
	s.Gallery, s.Above = int(gallery.Int64), int(above.Int64)
	s.Exploratory = exploratory.String
	copy(s.ProbeSHA256[:], probe)
	if err := json.Unmarshal([]byte(list), &s.Returned); err != nil {
		return Search{}, fmt.Errorf("search %d: returned: %w", s.ID, err)
	}
	if !above.Valid {
		s.Above = len(s.Returned) // recorded before the count was kept
	}
	if results.Valid {
		if err := json.Unmarshal([]byte(results.String), &s.Results); err != nil {
			return Search{}, fmt.Errorf("search %d: results: %w", s.ID, err)
		}
	}
	if probeFace.Valid {
		s.ProbeFace = new(ProbeFace)
		if err := json.Unmarshal([]byte(probeFace.String), s.ProbeFace); err != nil {
			return Search{}, fmt.Errorf("search %d: probe face: %w", s.ID, err)
		}
	}
	return s, nil
}

// SearchesReturning returns, in id order, every search that returned at
// least one of the faces faceIDs: the recipients of a person's data, for an
// access request (Art. 15(1)(c)) or the notices of an erasure (Art. 19).
func (db *DB) SearchesReturning(ctx context.Context, faceIDs []int64) ([]Search, error) {
	if len(faceIDs) == 0 {
		return nil, nil
	}
	in, list := db.d.inInt64s("r.value", faceIDs)
	rows, err := db.r.QueryContext(ctx, `SELECT `+searchColumns+` FROM searches s
WHERE EXISTS (SELECT 1 FROM `+db.d.jsonInt64s("s.returned")+` r WHERE `+in+`)
ORDER BY id`, list)
	if err != nil {
		return nil, fmt.Errorf("searches returning faces: %w", err)
	}
	out, err := collect(rows, scanSearch)
	if err != nil {
		return nil, fmt.Errorf("searches returning faces: %w", err)
	}
	return out, nil
}

// RecordSearch records a search and its audit entry in one transaction, so
// that no search is ever returned without its trace (AI Act Art. 12). The
// entry's Object is set to "search/ID"; its Detail holds what was asked and
// returned (purpose, case, probe hash, k, threshold, face ids), never the
// probe.
func (db *DB) RecordSearch(ctx context.Context, s Search) (searchID, auditID int64, err error) {
	err = db.Tx(ctx, func(tx *Tx) error {
		if searchID, err = tx.AddSearch(ctx, s); err != nil {
			return err
		}
		returned := s.Returned
		if returned == nil {
			returned = []int64{}
		}
		detail, err := json.Marshal(struct {
			Purpose        string  `json:"purpose"`
			Case           string  `json:"case,omitempty"`
			Probe          string  `json:"probe_sha256"`
			K              int     `json:"k"`
			Threshold      float64 `json:"threshold"`
			OperatingPoint float64 `json:"operating_point"`
			GroupPoint     float64 `json:"group_point"`
			FPIR           float64 `json:"fpir"`
			Gallery        int     `json:"gallery"`
			Exploratory    string  `json:"exploratory,omitempty"`
			Above          int     `json:"above"`
			Returned       []int64 `json:"returned"`
		}{s.Purpose, s.CaseRef, fmt.Sprintf("%x", s.ProbeSHA256), s.K, s.Threshold,
			s.OperatingPoint, s.GroupPoint, s.FPIR, s.Gallery, s.Exploratory, s.Above, returned})
		if err != nil {
			return err
		}
		action := "search"
		if s.Exploratory != "" {
			action = "search.exploratory" // below the operating point, with its reason in the record
		}
		auditID, err = tx.AppendAudit(ctx, AuditEntry{At: s.At, Actor: s.Actor, Action: action,
			Object: fmt.Sprintf("search/%d", searchID), Detail: detail})
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("record search: %w", err)
	}
	return searchID, auditID, nil
}

// PurposeStats counts the searches run for one purpose.
type PurposeStats struct {
	Purpose   string
	Searches  int64
	WithMatch int64     // searches that returned at least one face
	First     time.Time // the first search
	Last      time.Time // the latest search
}

// SearchStats returns the searches counted by purpose, most frequent first.
func (db *DB) SearchStats(ctx context.Context) ([]PurposeStats, error) {
	rows, err := db.r.QueryContext(ctx, `
SELECT purpose, count(*), sum(CASE WHEN returned <> '[]' THEN 1 ELSE 0 END), min(at), max(at) FROM searches
GROUP BY purpose ORDER BY count(*) DESC, purpose`)
	if err != nil {
		return nil, fmt.Errorf("search stats: %w", err)
	}
	out, err := collect(rows, func(sc scanner) (PurposeStats, error) {
		var p PurposeStats
		var first, last int64
		err := sc.Scan(&p.Purpose, &p.Searches, &p.WithMatch, &first, &last)
		p.First, p.Last = fromMS(first), fromMS(last)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("search stats: %w", err)
	}
	return out, nil
}

// Searches returns at most limit searches, newest first, with ids below
// before (before ≤ 0: from the newest): the verifiers' list.
func (db *DB) Searches(ctx context.Context, before int64, limit int) ([]Search, error) {
	if before <= 0 {
		before = math.MaxInt64
	}
	rows, err := db.r.QueryContext(ctx, `SELECT `+searchColumns+` FROM searches WHERE id < ? ORDER BY id DESC LIMIT ?`, before, limit)
	if err != nil {
		return nil, fmt.Errorf("list searches: %w", err)
	}
	return collect(rows, scanSearch)
}

// PurgeProbeCrops erases the sealed probe crops of the searches made
// before before (the record and its audit entry stay) and, when any was
// erased, appends the audit entry "search.crops.purge" by actor with their
// number, in the same transaction. It returns how many were erased.
func (db *DB) PurgeProbeCrops(ctx context.Context, before, now time.Time, actor string) (n int64, err error) {
	err = db.Tx(ctx, func(tx *Tx) error {
		res, err := tx.tx.ExecContext(ctx, `UPDATE searches SET probe_crop = NULL WHERE at < ? AND probe_crop IS NOT NULL`, ms(before))
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		detail, err := json.Marshal(struct {
			Crops  int64     `json:"crops"`
			Before time.Time `json:"searches_before"`
		}{n, before.UTC()})
		if err != nil {
			return err
		}
		_, err = tx.AppendAudit(ctx, AuditEntry{At: now, Actor: actor, Action: "search.crops.purge", Object: "searches", Detail: detail})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("purge probe crops: %w", err)
	}
	return n, nil
}
