package source

import (
	"slices"
	"testing"
	"time"
)

// FuzzParseArt9 checks that an accepted Art. 9(2) condition is always one of
// the canonical forms, the same as the one its letter gives.
func FuzzParseArt9(f *testing.F) {
	canonical := make([]string, len(Art9Conditions))
	for i, c := range Art9Conditions {
		canonical[i] = "9(2)(" + c.Letter + ") " + c.Text
		f.Add(c.Name)
		f.Add("Art. 9(2)(" + c.Letter + ")")
	}
	f.Add("9(2)(k)")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseArt9(s)
		if err != nil {
			if got != "" {
				t.Fatalf("%q returned with error %v", got, err)
			}
			return
		}
		i := slices.Index(canonical, got)
		if i < 0 {
			t.Fatalf("ParseArt9(%q) = %q, not a canonical form", s, got)
		}
		if again, err := ParseArt9("9(2)(" + Art9Conditions[i].Letter + ")"); err != nil || again != got {
			t.Fatalf("ParseArt9(%q) = %q, but its letter gives %q, %v", s, got, again, err)
		}
	})
}

// FuzzParseRetention checks that an accepted retention period is within
// bounds and reads back the same as a Go duration.
func FuzzParseRetention(f *testing.F) {
	for _, s := range []string{"30d", "6m", "1y", "2w", "720h", "100y", "101y", "0.5d", "-1d", "1e400d", "NaNd", "Infd", "1ns", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseRetention(s)
		if err != nil {
			if d != 0 {
				t.Fatalf("%v returned with error %v", d, err)
			}
			return
		}
		if d < time.Millisecond || d > MaxRetention {
			t.Fatalf("ParseRetention(%q) = %v, out of bounds", s, d)
		}
		if again, err := ParseRetention(d.String()); err != nil || again != d {
			t.Fatalf("ParseRetention(%q) = %v, but %q gives %v, %v", s, d, d.String(), again, err)
		}
	})
}
