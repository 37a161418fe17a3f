package app

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"gabarit/internal/dsr"
	"gabarit/internal/store"
	"gabarit/internal/vault"
)

// ExtendRequest extends a request's deadline once by months (GDPR Art.
// 12(3)), after the person was told why.
func ExtendRequest(ctx context.Context, db *store.DB, id int64, months int, reason, actor string) (dsr.Request, error) {
	return db.UpdateRightsRequest(ctx, id, actor, func(r *dsr.Request, now time.Time) error {
		return r.Extend(now, months, reason)
	})
}

// LiftRestriction lifts the restriction a completed restriction request
// put in place (GDPR Art. 18(3)): the person's faces are shown by searches
// again. Audited.
func LiftRestriction(ctx context.Context, db *store.DB, v *vault.Vault, id int64, actor string) error {
	r, err := db.RightsRequest(ctx, id)
	if err != nil {
		return err
	}
	if r.Kind != dsr.Restriction || r.State != dsr.Completed {
		return fmt.Errorf("request %d is a %s request in state %s: only a completed restriction can be lifted: %w", id, r.Kind, r.State, dsr.ErrInvalid)
	}
	// The entries go with the audit entry, in one transaction.
	_, err = v.RemoveRequestAudited(ctx, id, vault.Restriction, func(n int) *store.AuditEntry {
		return &store.AuditEntry{Actor: actor, Action: "rights.restriction-lifted",
			Object: fmt.Sprintf("rights/%d", id), Detail: json.RawMessage(fmt.Sprintf(`{"entries":%d}`, n))}
	})
	return err
}

// IdentityMethods returns the methods the DPO may record as having
// established a requester's identity: the controller's (records.json,
// "identity_methods"), or dsr.DefaultIdentityMethods.
func IdentityMethods(dir string) ([]dsr.IdentityMethod, error) {
	org, err := LoadOrganisation(dir)
	if err != nil {
		return nil, err
	}
	if len(org.IdentityMethods) == 0 {
		return dsr.DefaultIdentityMethods(), nil
	}
	if err := dsr.CheckIdentityMethods(org.IdentityMethods); err != nil {
		return nil, fmt.Errorf("records.json: %w", err)
	}
	return org.IdentityMethods, nil
}
