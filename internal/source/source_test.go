package source_test

import (
	"errors"
	"io"
	"strings"
	"testing"

	"gabarit/internal/source"
)

func TestExactReader(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		data string
		size int64
		want error // nil: reads size bytes then io.EOF
	}{
		{"exact", "0123456789", 10, nil},
		{"empty", "", 0, nil},
		{"longer", "0123456789x", 10, source.ErrTooLarge},
		{"longer empty", "x", 0, source.ErrTooLarge},
		{"shorter", "012345678", 10, io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := source.ExactReader(io.NopCloser(strings.NewReader(tc.data)), tc.size, "dir/a.jpg")
			defer r.Close()
			got, err := io.ReadAll(r)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("ReadAll: %v, want %v", err, tc.want)
			}
			if int64(len(got)) > tc.size {
				t.Errorf("read %d bytes, more than the %d declared", len(got), tc.size)
			}
			if err != nil && !strings.Contains(err.Error(), `"dir/a.jpg"`) {
				t.Errorf("error %q does not name the locator", err)
			}
		})
	}
}

func TestLimitsWithDefaults(t *testing.T) {
	t.Parallel()
	got := source.Limits{MaxFileBytes: 5, MaxRatio: -1}.WithDefaults()
	want := source.Limits{MaxFileBytes: 5, MaxTotalBytes: 64 << 30, MaxEntries: 10_000_000, MaxRatio: 200}
	if got != want {
		t.Errorf("WithDefaults() = %+v, want %+v", got, want)
	}
}

func TestItemError(t *testing.T) {
	t.Parallel()
	err := error(&source.ItemError{Locator: "../x.jpg", Err: source.ErrEscape})
	if !errors.Is(err, source.ErrEscape) {
		t.Errorf("errors.Is(%v, ErrEscape) = false", err)
	}
	if got, want := err.Error(), `source item "../x.jpg": path escapes the source`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
