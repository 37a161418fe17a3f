// Package sourcetest is the conformance suite that every source.Source
// implementation runs, in the style of testing/fstest.TestFS.
package sourcetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"testing"

	"gabarit/internal/imageproc"
	"gabarit/internal/source"
)

// Files returns the collection Run builds sources from: image files at
// several depths (with names that sort differently by path and by directory,
// an empty file and an upper-case extension) and non-image files that must
// not be listed. Contents are deterministic.
func Files() map[string][]byte {
	names := []string{
		"a.jpg", "a-1.jpg", "a/b.jpg", "a/c/d.png", "b/UPPER.JPG", "b/x.webp",
		"empty.jpg", "z.gif", "notes.txt", "a/README", ".hidden.jpg", "b/.DS_Store",
	}
	files := make(map[string][]byte, len(names))
	for i, name := range names {
		size := 0
		if name != "empty.jpg" {
			size = 100 + 997*i
		}
		data := make([]byte, size)
		x := uint32(2166136261 + i)
		for j := range data {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			data[j] = byte(x)
		}
		files[name] = data
	}
	return files
}

// Run checks a Source implementation. open must return a source holding
// exactly files (locator → content) and no others; sources that walk in
// storage order must store them sorted by locator. Run checks that every
// image file is listed exactly once, in lexical order, with the right Size
// and content; that non-image files are skipped; that the order is the same
// across walks; that ctx cancellation stops the walk; and that an error
// returned by the callback stops the walk and is returned.
func Run(t *testing.T, open func(t *testing.T, files map[string][]byte) source.Source) {
	t.Helper()
	files := Files()
	var want []string
	for name := range files {
		if imageproc.IsImageName(name) {
			want = append(want, name)
		}
	}
	slices.Sort(want)

	t.Run("list", func(t *testing.T) {
		src := open(t, maps.Clone(files))
		got, err := walk(t, src)
		if err != nil {
			t.Fatalf("Walk: %v", err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("Walk listed %q, want %q", got, want)
		}
	})

	t.Run("deterministic", func(t *testing.T) {
		src := open(t, maps.Clone(files))
		first, err := walk(t, src)
		if err != nil {
			t.Fatalf("first Walk: %v", err)
		}
		second, err := walk(t, src)
		if err != nil {
			t.Fatalf("second Walk: %v", err)
		}
		if !slices.Equal(first, second) {
			t.Errorf("second Walk listed %q, first %q", second, first)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		src := open(t, maps.Clone(files))
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		calls := 0
		err := src.Walk(ctx, func(it source.Item, err error) error {
			calls++
			cancel()
			return nil
		})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Walk after cancel returned %v, want context.Canceled", err)
		}
		if calls != 1 {
			t.Errorf("callback called %d times, want 1 (cancelled during the first)", calls)
		}
		calls = 0
		err = src.Walk(ctx, func(source.Item, error) error { calls++; return nil })
		if !errors.Is(err, context.Canceled) || calls != 0 {
			t.Errorf("Walk with a cancelled ctx: %v after %d calls, want context.Canceled after 0", err, calls)
		}
	})

	t.Run("stop", func(t *testing.T) {
		src := open(t, maps.Clone(files))
		errStop := errors.New("stop here")
		calls := 0
		err := src.Walk(t.Context(), func(source.Item, error) error {
			calls++
			if calls == 2 {
				return errStop
			}
			return nil
		})
		if !errors.Is(err, errStop) {
			t.Errorf("Walk returned %v, want the callback's error", err)
		}
		if calls != 2 {
			t.Errorf("callback called %d times, want 2", calls)
		}
	})
}

// walk lists src, checking each item's Size and content against files, and
// returns the locators in walk order.
func walk(t *testing.T, src source.Source) ([]string, error) {
	t.Helper()
	files := Files()
	var got []string
	err := src.Walk(t.Context(), func(it source.Item, err error) error {
		if err != nil {
			t.Errorf("unexpected item error: %v", err)
			return nil
		}
		got = append(got, it.Locator)
		want, ok := files[it.Locator]
		if !ok {
			t.Errorf("listed %q, which is not in the collection", it.Locator)
			return nil
		}
		if it.Size != int64(len(want)) {
			t.Errorf("%q: Size %d, want %d", it.Locator, it.Size, len(want))
		}
		data, err := readAll(it)
		if err != nil {
			t.Errorf("%q: %v", it.Locator, err)
			return nil
		}
		// Never print contents: compare, and report lengths only.
		if string(data) != string(want) {
			t.Errorf("%q: content differs (%d bytes read, want %d)", it.Locator, len(data), len(want))
		}
		return nil
	})
	return got, err
}

// readAll opens an item and reads its whole content.
func readAll(it source.Item) ([]byte, error) {
	if it.Open == nil {
		return nil, errors.New("nil Open")
	}
	rc, err := it.Open()
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	data, err := io.ReadAll(rc)
	if cerr := rc.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	return data, nil
}
