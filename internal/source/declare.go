package source

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Art9Conditions are the conditions of GDPR Art. 9(2) under which biometric
// data may be processed to identify a person, by letter, with the short names
// accepted on the command line.
var Art9Conditions = []struct {
	Letter string // "a" … "j"
	Name   string // short name, e.g. "explicit-consent"
	Text   string // what the condition says, in a few words
}{
	{"a", "explicit-consent", "explicit consent of the data subject"},
	{"b", "employment", "obligations in employment and social security law"},
	{"c", "vital-interests", "vital interests of a person incapable of giving consent"},
	{"d", "not-for-profit", "members of a not-for-profit body"},
	{"e", "made-public", "data manifestly made public by the data subject"},
	{"f", "legal-claims", "establishment, exercise or defence of legal claims, or courts"},
	{"g", "substantial-public-interest", "substantial public interest on the basis of law"},
	{"h", "health-care", "preventive or occupational medicine, health or social care"},
	{"i", "public-health", "public interest in public health"},
	{"j", "research", "archiving in the public interest, research or statistics"},
}

// ParseArt9 accepts an Art. 9(2) condition as "9(2)(a)", "a" or
// "explicit-consent" and returns its canonical form, e.g.
// "9(2)(a) explicit consent of the data subject".
func ParseArt9(s string) (string, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	v = strings.TrimPrefix(strings.TrimPrefix(v, "art."), "art")
	v = strings.TrimSpace(v)
	v = strings.TrimPrefix(v, "9(2)")
	v = strings.TrimSuffix(strings.TrimPrefix(v, "("), ")")
	for _, c := range Art9Conditions {
		if v == c.Letter || v == c.Name {
			return "9(2)(" + c.Letter + ") " + c.Text, nil
		}
	}
	names := make([]string, len(Art9Conditions))
	for i, c := range Art9Conditions {
		names[i] = c.Name
	}
	return "", fmt.Errorf("unknown GDPR Art. 9(2) condition %q: want 9(2)(a) … 9(2)(j) or one of %s", s, strings.Join(names, ", "))
}

// MaxRetention bounds a declared retention period.
const MaxRetention = 100 * 365 * 24 * time.Hour

// ParseRetention parses a retention period: a number with a unit of d
// (days), w (weeks), m (months of 30 days) or y (years of 365 days), or a
// Go duration such as "720h". It must be positive and at most 100 years.
func ParseRetention(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	units := map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour, "m": 30 * 24 * time.Hour, "y": 365 * 24 * time.Hour}
	var d time.Duration
	if len(s) > 1 && units[s[len(s)-1:]] != 0 {
		n, err := strconv.ParseFloat(s[:len(s)-1], 64)
		if err != nil || n <= 0 || n*float64(units[s[len(s)-1:]]) > float64(MaxRetention) {
			return 0, fmt.Errorf("retention %q: want a positive number of d, w, m or y up to 100y", s)
		}
		d = time.Duration(n * float64(units[s[len(s)-1:]]))
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("retention %q: want e.g. 30d, 6m, 1y or 720h", s)
		}
	}
	if d < time.Millisecond || d > MaxRetention {
		return 0, fmt.Errorf("retention %q: must be positive and at most 100 years", s)
	}
	return d, nil
}
