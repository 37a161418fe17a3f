package app

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"

	"gabarit/internal/search"
	"gabarit/internal/store"
)

// SettingFPIR names the policy setting of the searches' target
// false-positive identification rate.
const SettingFPIR = "search.fpir"

// The range a policy may set the target FPIR in: below it the operating
// point is out of reach of the calibration, above it one search in twenty
// for a person who is not held would name someone.
const (
	MinFPIR = 1e-4
	MaxFPIR = 0.05
)

// ErrPolicy reports a policy value out of its range.
var ErrPolicy = errors.New("invalid policy value")

// SearchFPIR returns the searches' target FPIR: the policy's, or
// search.DefaultFPIR when none was set.
func SearchFPIR(ctx context.Context, db *store.DB) (float64, error) {
	st, err := db.Setting(ctx, SettingFPIR)
	if errors.Is(err, store.ErrNotFound) {
		return search.DefaultFPIR, nil
	}
	if err != nil {
		return 0, err
	}
	v, err := ParseFPIR(st.Value)
	if err != nil {
		return 0, fmt.Errorf("setting %s: %w", SettingFPIR, err)
	}
	return v, nil
}

// ParseFPIR reads a target FPIR and checks its range.
func ParseFPIR(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || v < MinFPIR || v > MaxFPIR {
		return 0, fmt.Errorf("%w: FPIR %q, want a share from %g to %g (e.g. 0.01 for 1%%)", ErrPolicy, s, MinFPIR, MaxFPIR)
	}
	return v, nil
}

// SetSearchFPIR sets the searches' target FPIR (audited as policy.set).
func SetSearchFPIR(ctx context.Context, db *store.DB, fpir, by string) error {
	v, err := ParseFPIR(fpir)
	if err != nil {
		return err
	}
	return db.SetSetting(ctx, SettingFPIR, strconv.FormatFloat(v, 'g', -1, 64), by)
}
