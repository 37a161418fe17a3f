package eval

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// makeTree creates empty files root/dir/file for every entry of tree.
func makeTree(t *testing.T, tree map[string][]string) string {
	t.Helper()
	root := t.TempDir()
	for dir, files := range tree {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if err := os.WriteFile(filepath.Join(root, dir, f), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

var pairsTree = map[string][]string{
	"Alice": {"Alice_0001.jpg", "Alice_0002.jpg", "Alice_0003.jpg"},
	"Bob":   {"Bob_0001.jpg"},
	// Free names: sorted listing is a.jpg, b.PNG, c.webp (txt, pgm and
	// hidden files are not images).
	"Carol": {"c.webp", "b.PNG", "a.jpg", "notes.txt", "x.pgm", "._a.jpg"},
	// LFW name wins over the position: index 2 is Dave_0002.jpg, index 1
	// is the first file of the listing (Dave_0002.jpg too).
	"Dave":  {"Dave_0002.jpg", "zz.jpg"},
	"Empty": {"readme.txt"},
}

func TestParsePairs(t *testing.T) {
	t.Parallel()
	root := makeTree(t, pairsTree)
	p := func(parts ...string) string { return filepath.Join(append([]string{root}, parts...)...) }
	tests := []struct {
		name      string
		in        string
		wantFolds int
		want      []Pair
	}{
		{
			name:      "lfw names",
			in:        "1\t1\nAlice\t1\t3\nAlice\t2\tBob\t1\n",
			wantFolds: 1,
			want: []Pair{
				{Fold: 0, Same: true, A: p("Alice", "Alice_0001.jpg"), B: p("Alice", "Alice_0003.jpg")},
				{Fold: 0, Same: false, A: p("Alice", "Alice_0002.jpg"), B: p("Bob", "Bob_0001.jpg")},
			},
		},
		{
			name:      "free names by sorted position",
			in:        "1 1\nCarol 1 3\nCarol 2 Alice 1\n",
			wantFolds: 1,
			want: []Pair{
				{Fold: 0, Same: true, A: p("Carol", "a.jpg"), B: p("Carol", "c.webp")},
				{Fold: 0, Same: false, A: p("Carol", "b.PNG"), B: p("Alice", "Alice_0001.jpg")},
			},
		},
		{
			name:      "lfw name preferred over position",
			in:        "1 1\nDave 1 2\nDave 2 Bob 1\n",
			wantFolds: 1,
			want: []Pair{
				{Fold: 0, Same: true, A: p("Dave", "Dave_0002.jpg"), B: p("Dave", "Dave_0002.jpg")},
				{Fold: 0, Same: false, A: p("Dave", "Dave_0002.jpg"), B: p("Bob", "Bob_0001.jpg")},
			},
		},
		{
			name:      "two folds, mixed separators and blank lines",
			in:        "2 1\n\nAlice 1\t2\nAlice 1  Carol 1\n  Carol\t2 3 \n\nBob 1 Carol 3\n\n",
			wantFolds: 2,
			want: []Pair{
				{Fold: 0, Same: true, A: p("Alice", "Alice_0001.jpg"), B: p("Alice", "Alice_0002.jpg")},
				{Fold: 0, Same: false, A: p("Alice", "Alice_0001.jpg"), B: p("Carol", "a.jpg")},
				{Fold: 1, Same: true, A: p("Carol", "b.PNG"), B: p("Carol", "c.webp")},
				{Fold: 1, Same: false, A: p("Bob", "Bob_0001.jpg"), B: p("Carol", "c.webp")},
			},
		},
		{
			name:      "view 1 header with a single count",
			in:        "1\nAlice 2 3\nBob 1 Alice 3\n",
			wantFolds: 1,
			want: []Pair{
				{Fold: 0, Same: true, A: p("Alice", "Alice_0002.jpg"), B: p("Alice", "Alice_0003.jpg")},
				{Fold: 0, Same: false, A: p("Bob", "Bob_0001.jpg"), B: p("Alice", "Alice_0003.jpg")},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			folds, got, err := ParsePairs(strings.NewReader(tc.in), root)
			if err != nil {
				t.Fatalf("ParsePairs: %v", err)
			}
			if folds != tc.wantFolds {
				t.Errorf("folds = %d, want %d", folds, tc.wantFolds)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("pairs =\n%v\nwant\n%v", got, tc.want)
			}
		})
	}
}

func TestParsePairsErrors(t *testing.T) {
	t.Parallel()
	root := makeTree(t, pairsTree)
	tests := []struct {
		name string
		in   string
		want []string // substrings of the error
	}{
		{name: "empty file", in: "\n\n", want: []string{"empty file"}},
		{name: "bad header", in: "ten 300\n", want: []string{"line 1:", "bad count"}},
		{name: "zero folds", in: "0 300\n", want: []string{"line 1:", "bad count"}},
		{name: "three header fields", in: "1 2 3\n", want: []string{"line 1:", "bad count"}},
		{name: "matched line with 4 fields", in: "1 1\nAlice 1 Bob 1\nAlice 1 Bob 1\n", want: []string{"line 2:", "bad field count 4", "matched"}},
		{name: "mismatched line with 3 fields", in: "1 1\nAlice 1 2\nAlice 1 2\n", want: []string{"line 3:", "bad field count 3", "mismatched"}},
		{name: "missing folder", in: "1 1\nZed 1 2\nAlice 1 Bob 1\n", want: []string{"line 2:", "missing identity folder", "Zed"}},
		{name: "index out of range", in: "1 1\nAlice 1 2\nAlice 1 Bob 4\n", want: []string{"line 3:", "index 4 out of range", "holds 1 images", "Bob_0004.jpg"}},
		{name: "folder without images", in: "1 1\nEmpty 1 2\nAlice 1 Bob 1\n", want: []string{"line 2:", "holds no image"}},
		{name: "index zero", in: "1 1\nAlice 0 2\nAlice 1 Bob 1\n", want: []string{"line 2:", "bad image index \"0\""}},
		{name: "non-numeric index", in: "1 1\nAlice one 2\nAlice 1 Bob 1\n", want: []string{"line 2:", "bad image index \"one\""}},
		{name: "path in name", in: "1 1\n../Alice 1 2\nAlice 1 Bob 1\n", want: []string{"line 2:", "bad identity name"}},
		{name: "truncated", in: "2 1\nAlice 1 2\nAlice 1 Bob 1\nAlice 1 3\n", want: []string{"line 5:", "unexpected end of file", "got 3 pair lines"}},
		{name: "extra line", in: "1 1\nAlice 1 2\nAlice 1 Bob 1\n\nAlice 2 3\n", want: []string{"line 5:", "extra line"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := ParsePairs(strings.NewReader(tc.in), root)
			if err == nil {
				t.Fatal("ParsePairs: no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// makeTreeForPairs builds a set of identity folders with varied sizes and
// naming schemes.
func makeTreeForPairs(t *testing.T) string {
	t.Helper()
	tree := map[string][]string{
		"_rejected": {"a.jpg", "b.jpg", "c.jpg"}, // ignored: leading "_"
		"Solo":      {"only.png"},
		"Mixed":     {"Mixed_0002.jpg", "Mixed_0005.jpg", "aaa.jpg", "zzz.png", "skip.pgm"},
	}
	for i := range 23 {
		name := string(rune('A'+i)) + "_person"
		var files []string
		for j := range i%6 + 1 {
			if i%2 == 0 {
				files = append(files, lfwName(name, j+1))
			} else {
				files = append(files, string(rune('a'+j))+".jpeg")
			}
		}
		tree[name] = files
	}
	return makeTree(t, tree)
}

func TestMakePairs(t *testing.T) {
	t.Parallel()
	root := makeTreeForPairs(t)
	tests := []struct {
		name          string
		folds, n      int
		seed          int64
		wantN         int
		wantErrSubstr string
	}{
		{name: "enough for all", folds: 3, n: 8, seed: 1, wantN: 8},
		{name: "ten folds shrink n", folds: 10, n: 50, seed: 7, wantN: 2},
		{name: "five folds shrink n", folds: 5, n: 100, seed: 3, wantN: 20},
		{name: "single fold", folds: 1, n: 20, seed: 42, wantN: 20},
		{name: "too many folds", folds: 40, n: 5, seed: 1, wantErrSubstr: "cannot give 40 folds"},
		{name: "bad n", folds: 2, n: 0, seed: 1, wantErrSubstr: "must be >= 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			err := MakePairs(root, tc.folds, tc.n, tc.seed, &buf)
			if tc.wantErrSubstr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrSubstr) {
					t.Fatalf("MakePairs error = %v, want %q", err, tc.wantErrSubstr)
				}
				return
			}
			if err != nil {
				t.Fatalf("MakePairs: %v", err)
			}
			text := buf.String()
			header, _, _ := strings.Cut(text, "\n")
			if want := strings.Join([]string{strconv.Itoa(tc.folds), strconv.Itoa(tc.wantN)}, "\t"); header != want {
				t.Fatalf("header = %q, want %q", header, want)
			}

			// Determinism: same seed, same bytes; another seed, other pairs.
			var again, other bytes.Buffer
			if err := MakePairs(root, tc.folds, tc.n, tc.seed, &again); err != nil {
				t.Fatal(err)
			}
			if again.String() != text {
				t.Error("MakePairs is not deterministic for a seed")
			}
			if err := MakePairs(root, tc.folds, tc.n, tc.seed+1000, &other); err != nil {
				t.Fatal(err)
			}
			if other.String() == text && tc.wantN > 1 {
				t.Error("MakePairs gives the same pairs for another seed")
			}

			// Round trip.
			folds, pairs, err := ParsePairs(strings.NewReader(text), root)
			if err != nil {
				t.Fatalf("ParsePairs of MakePairs output: %v\n%s", err, text)
			}
			if folds != tc.folds || len(pairs) != 2*tc.folds*tc.wantN {
				t.Fatalf("got %d folds and %d pairs, want %d and %d", folds, len(pairs), tc.folds, 2*tc.folds*tc.wantN)
			}
			foldOf := make(map[string]int)
			seen := make(map[[2]string]bool)
			for _, p := range pairs {
				idA, idB := filepath.Base(filepath.Dir(p.A)), filepath.Base(filepath.Dir(p.B))
				for _, id := range []string{idA, idB} {
					if strings.HasPrefix(id, "_") {
						t.Errorf("ignored folder %s used", id)
					}
					if f, ok := foldOf[id]; ok && f != p.Fold {
						t.Errorf("identity %s in folds %d and %d", id, f, p.Fold)
					}
					foldOf[id] = p.Fold
				}
				for _, f := range []string{p.A, p.B} {
					if !isImageName(filepath.Base(f)) {
						t.Errorf("not an image: %s", f)
					}
					if _, err := os.Stat(f); err != nil {
						t.Error(err)
					}
				}
				if p.Same && (idA != idB || p.A == p.B) {
					t.Errorf("bad matched pair %s %s", p.A, p.B)
				}
				if !p.Same && idA == idB {
					t.Errorf("bad mismatched pair %s %s", p.A, p.B)
				}
				key := [2]string{min(p.A, p.B), max(p.A, p.B)}
				if seen[key] {
					t.Errorf("pair %v written twice", key)
				}
				seen[key] = true
			}
		})
	}
}

func TestImageRefs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		id     string
		images []string
		want   []int
	}{
		{name: "lfw numbering with gaps", id: "Ann", images: []string{"Ann_0002.jpg", "Ann_0007.jpg"}, want: []int{2, 7}},
		{name: "free names", id: "Ann", images: []string{"a.jpg", "b.png"}, want: []int{1, 2}},
		// zzz.jpg is at position 2, but 2 resolves to Ann_0002.jpg.
		{name: "ambiguous position left out", id: "Ann", images: []string{"Ann_0002.jpg", "zzz.jpg"}, want: []int{2}},
		{name: "five digits are not lfw", id: "Ann", images: []string{"Ann_00001.jpg"}, want: []int{1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := imageRefs(tc.id, tc.images); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("imageRefs = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMakePairsCapacity(t *testing.T) {
	t.Parallel()
	two := []string{"1.jpg", "2.jpg"}
	tests := []struct {
		name       string
		tree       map[string][]string
		folds, n   int
		wantHeader string
		want       string // whole output, when fixed
	}{
		{
			// Each fold gets two 2-image identities: 2 matched and 4
			// mismatched pairs at most.
			name:  "limited by matched pairs",
			tree:  map[string][]string{"a": two, "b": two, "c": two, "d": two},
			folds: 2, n: 10, wantHeader: "2\t2",
		},
		{
			// 6 matched pairs but only 4 mismatched ones.
			name:  "limited by mismatched pairs",
			tree:  map[string][]string{"a": {"1.jpg", "2.jpg", "3.jpg", "4.jpg"}, "z": {"1.jpg"}},
			folds: 1, n: 10, wantHeader: "1\t4",
		},
		{
			name:  "every pair of a tiny set",
			tree:  map[string][]string{"a": {"1.jpg", "2.jpg", "3.jpg"}, "z": {"1.jpg"}},
			folds: 1, n: 10, wantHeader: "1\t3",
			want: "1\t3\na\t1\t2\na\t1\t3\na\t2\t3\na\t1\tz\t1\na\t2\tz\t1\na\t3\tz\t1\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := makeTree(t, tc.tree)
			var buf bytes.Buffer
			if err := MakePairs(root, tc.folds, tc.n, 5, &buf); err != nil {
				t.Fatal(err)
			}
			if header, _, _ := strings.Cut(buf.String(), "\n"); header != tc.wantHeader {
				t.Errorf("header = %q, want %q", header, tc.wantHeader)
			}
			if tc.want != "" && buf.String() != tc.want {
				t.Errorf("output =\n%s\nwant\n%s", buf.String(), tc.want)
			}
			if _, _, err := ParsePairs(&buf, root); err != nil {
				t.Fatal(err)
			}
		})
	}
}
