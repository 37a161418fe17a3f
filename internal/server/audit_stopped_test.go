package server

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gabarit/internal/app"
)

// TestAuditedActionsStopOnTamper: once the audit witness no longer names
// the log's last entry, audited API actions answer 503 audit_stopped, say
// what to do and leave the witness as it is.
func TestAuditedActionsStopOnTamper(t *testing.T) {
	e := newTestEnv(t, nil)
	e.addUser("olga", operator)
	op := e.token("olga")
	e.declareSource(op)
	witness := filepath.Join(e.dir, "data", "audit.head")
	if err := os.Remove(witness); err != nil {
		t.Fatal(err)
	}
	st, body := op.json("POST", "/api/v1/sources", app.Declaration{Kind: "folder", Path: e.photos, Controller: "Test controller",
		Purpose: "tests", LegalBasis: "consent", Art9: "explicit-consent", Jurisdiction: "FR", Retention: "30d"})
	if st != http.StatusServiceUnavailable || !strings.Contains(string(body), `"audit_stopped"`) ||
		!strings.Contains(string(body), "gabarit audit verify") {
		t.Errorf("declaring a source with the witness gone: %d %s", st, body)
	}
	if _, err := os.Stat(witness); err == nil {
		t.Error("the witness was recreated")
	}
	if _, err := e.data.DB.ResetAuditWitness(t.Context(), "cli:admin", "test"); err != nil {
		t.Fatal(err)
	}
	e.declareSource(op)
	if _, err := e.data.DB.CheckAudit(t.Context()); err != nil {
		t.Errorf("after the reset: %v", err)
	}
}
