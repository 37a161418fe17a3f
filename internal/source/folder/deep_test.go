package folder_test

import (
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gabarit/internal/source"
	"gabarit/internal/source/folder"
)

// nestName is the name of every nested folder: 9 bytes with the separator,
// so that 456 levels exceed Linux's PATH_MAX of 4096 bytes.
const nestName = "folder_8"

// nest creates depth nested folders under dir, one inside the other, and an
// image file in the folders at the levels in files (level 1 is the first
// folder). It goes through os.Root one level at a time, since the paths grow
// past PATH_MAX. It returns the locators of the files, by level.
func nest(tb testing.TB, dir string, depth int, files ...int) map[int]string {
	tb.Helper()
	r, err := os.OpenRoot(dir)
	if err != nil {
		tb.Fatal(err)
	}
	locs := map[int]string{}
	for level := 1; level <= depth; level++ {
		if err := r.Mkdir(nestName, 0o755); err != nil {
			tb.Fatal(err)
		}
		next, err := r.OpenRoot(nestName)
		r.Close()
		if err != nil {
			tb.Fatal(err)
		}
		r = next
		for _, f := range files {
			if f == level {
				if err := r.WriteFile("face.jpg", []byte{byte(level)}, 0o644); err != nil {
					tb.Fatal(err)
				}
				locs[level] = strings.Repeat(nestName+"/", level) + "face.jpg"
			}
		}
	}
	r.Close()
	return locs
}

// TestDeepTree walks folders nested past PATH_MAX and past the depth limit:
// files above the limit are listed and readable by their long locators, the
// folder past the limit is refused with a clear error and its contents are
// not listed, and the walk goes on.
func TestDeepTree(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	depth := folder.MaxDepth + 50
	locs := nest(t, dir, depth, 1, 600, folder.MaxDepth, folder.MaxDepth+1, depth)
	if err := os.WriteFile(dir+"/z.jpg", []byte("z"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := walk(t, open(t, dir, source.Limits{}))
	for _, level := range []int{1, 600, folder.MaxDepth} {
		it, ok := r.items[locs[level]]
		if !ok {
			t.Errorf("file at level %d (%d-byte path) not listed; errors %v", level, len(locs[level]), keysOf(r.errs))
			continue
		}
		data, err := read(it)
		if err != nil || len(data) != 1 || data[0] != byte(level) {
			t.Errorf("file at level %d: read %v, %v", level, data, err)
		}
	}
	for _, level := range []int{folder.MaxDepth + 1, depth} {
		if _, ok := r.items[locs[level]]; ok {
			t.Errorf("file at level %d listed past the depth limit", level)
		}
	}
	tooDeep := strings.TrimSuffix(strings.Repeat(nestName+"/", folder.MaxDepth+1), "/")
	err := r.errs[tooDeep]
	if !errors.Is(err, folder.ErrTooDeep) {
		t.Errorf("folder at level %d: error %v, want ErrTooDeep; errors at %v", folder.MaxDepth+1, err, keysOf(r.errs))
	}
	if len(r.errs) != 1 {
		t.Errorf("%d errors, want 1 (the folder past the limit)", len(r.errs))
	}
	if _, ok := r.items["z.jpg"]; !ok {
		t.Errorf("walk stopped at the deep folder: z.jpg not listed")
	}
}

// TestDeepTreeReopen checks that folders whose handles were closed while
// the walk was deeper (only the last few levels are kept open) are reopened
// when the walk comes back to them with more subfolders to visit.
func TestDeepTreeReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, dir, map[string][]byte{
		"a/folder_8/folder_8/zz/y.jpg": []byte("y"),
		"a/zz/x.jpg":                   []byte("x"),
		"b.jpg":                        []byte("b"),
	})
	deep := nest(t, dir+"/a/folder_8/folder_8", 100, 100)[100]
	want := []string{"a/folder_8/folder_8/" + deep, "a/folder_8/folder_8/zz/y.jpg", "a/zz/x.jpg", "b.jpg"}
	r := walk(t, open(t, dir, source.Limits{}))
	if len(r.errs) != 0 || !slices.Equal(r.order, want) {
		t.Errorf("walk listed %d locators with errors %v; want %d", len(r.order), r.errs, len(want))
	}
	for _, loc := range want {
		if it, ok := r.items[loc]; !ok {
			t.Errorf("%s not listed", loc[max(0, len(loc)-30):])
		} else if _, err := read(it); err != nil {
			t.Errorf("read %s: %v", loc[max(0, len(loc)-30):], err)
		}
	}
}

// keysOf returns the keys of m, shortened for messages.
func keysOf[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		if len(k) > 40 {
			k = k[:20] + "…" + k[len(k)-20:]
		}
		ks = append(ks, k)
	}
	return ks
}

// BenchmarkNested walks n folders nested one inside the other, with one
// image in the deepest folder the walk lists: the time per walk must grow
// linearly with n. Past MaxDepth the walk refuses the folder below the limit
// and stops descending.
func BenchmarkNested(b *testing.B) {
	for _, n := range []int{250, 500, 1000, 3000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			dir := b.TempDir()
			nest(b, dir, n, min(n, folder.MaxDepth))
			src, err := folder.Open(dir, source.Limits{})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				var items, refused int
				err := src.Walk(b.Context(), func(it source.Item, err error) error {
					if errors.Is(err, folder.ErrTooDeep) {
						refused++
						return nil
					}
					if err != nil {
						return err
					}
					items++
					return nil
				})
				if err != nil || items != 1 || refused != min(1, max(n-folder.MaxDepth, 0)) {
					b.Fatalf("Walk: %v, %d items, %d refused", err, items, refused)
				}
			}
		})
	}
}
