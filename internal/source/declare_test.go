package source

import (
	"testing"
	"time"
)

func TestParseArt9(t *testing.T) {
	for _, in := range []string{"9(2)(a)", "a", "explicit-consent", " Art. 9(2)(a) ", "(a)"} {
		got, err := ParseArt9(in)
		if err != nil || got != "9(2)(a) explicit consent of the data subject" {
			t.Errorf("ParseArt9(%q) = %q, %v", in, got, err)
		}
	}
	if got, err := ParseArt9("research"); err != nil || got[:7] != "9(2)(j)" {
		t.Errorf("research: %q, %v", got, err)
	}
	for _, in := range []string{"", "k", "9(2)(z)", "because"} {
		if _, err := ParseArt9(in); err == nil {
			t.Errorf("ParseArt9(%q) accepted", in)
		}
	}
}

func TestParseRetention(t *testing.T) {
	day := 24 * time.Hour
	for in, want := range map[string]time.Duration{"30d": 30 * day, "2w": 14 * day, "6m": 180 * day, "1y": 365 * day,
		"720h": 720 * time.Hour, "1.5d": 36 * time.Hour, "100y": 100 * 365 * day} {
		if got, err := ParseRetention(in); err != nil || got != want {
			t.Errorf("ParseRetention(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0d", "-1d", "0", "-5h", "101y", "forever", "d", "1x"} {
		if got, err := ParseRetention(in); err == nil {
			t.Errorf("ParseRetention(%q) = %v, accepted", in, got)
		}
	}
}
