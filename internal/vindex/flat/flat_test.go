package flat

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"gabarit/internal/vindex"
	"gabarit/internal/vindex/kernel"
	"gabarit/internal/vindex/vindextest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	vindextest.Run(t, vindextest.Factory{
		New:       func(t *testing.T, dim int) vindex.Index { return New(dim) },
		Load:      load,
		MinRecall: 1,
	})
}

// load is Load as the suite wants it.
func load(r io.Reader) (vindex.Index, error) {
	x, err := Load(r)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return x, nil
}

// TestConformanceParallel runs the suite with the parallel scan forced on
// from 2 vectors, so that every property also holds for the merged heaps.
func TestConformanceParallel(t *testing.T) {
	t.Parallel()
	vindextest.Run(t, vindextest.Factory{
		New: func(t *testing.T, dim int) vindex.Index {
			x := New(dim)
			x.parallelMin = 1
			return x
		},
		Load: func(r io.Reader) (vindex.Index, error) {
			x, err := load(r)
			if err == nil {
				x.(*Index).parallelMin = 1
			}
			return x, err
		},
		MinRecall: 1,
	})
}

func randVec(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func unit(r *rand.Rand, n int) []float32 {
	v := randVec(r, n)
	var ss float64
	for _, f := range v {
		ss += float64(f) * float64(f)
	}
	for i := range v {
		v[i] = float32(float64(v[i]) / math.Sqrt(ss))
	}
	return v
}

func TestZeroAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const dim, n = 512, 1000
	a, b := unit(r, dim), unit(r, dim)
	if allocs := testing.AllocsPerRun(100, func() { kernel.Dot(a, b) }); allocs != 0 {
		t.Errorf("kernel.Dot allocates %v times per call, want 0", allocs)
	}
	slab := make([]float32, 0, dim*n)
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = int64(i)
		slab = append(slab, unit(r, dim)...)
	}
	h := newHeap(10)
	ctx := context.Background()
	allocs := testing.AllocsPerRun(20, func() {
		h.hits = h.hits[:0]
		if err := scan(ctx, a, slab, ids, -2, &h); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("scan allocates %v times per call, want 0", allocs)
	}
}

// TestParallelMatchesSerial crosses the real 20,000-vector threshold, with
// duplicated vectors so that ties span goroutine boundaries.
func TestParallelMatchesSerial(t *testing.T) {
	const dim, n = 8, 30_000
	r := rand.New(rand.NewPCG(5, 6))
	par := New(dim)
	ids := make([]int64, n)
	vecs := make([][]float32, n)
	for i := range ids {
		ids[i] = int64(n - i) // slot order opposite to id order
		vecs[i] = unit(r, dim)
		if i%1000 == 1 {
			vecs[i] = vecs[0]
		}
	}
	ctx := context.Background()
	if err := par.Add(ctx, ids, vecs); err != nil {
		t.Fatal(err)
	}
	ser := New(dim)
	ser.parallelMin = math.MaxInt
	if err := ser.Add(ctx, ids, vecs); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		q := unit(r, dim)
		if i%5 == 0 {
			q = vecs[0]
		}
		for _, k := range []int{1, 10, 40} {
			want, err := ser.Search(ctx, q, k, 0.2)
			if err != nil {
				t.Fatal(err)
			}
			got, err := par.Search(ctx, q, k, 0.2)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("query %d, k=%d: parallel %v, serial %v", i, k, got, want)
			}
		}
	}
	got, err := par.Search(ctx, vecs[0], 5, 0.99)
	if err != nil {
		t.Fatal(err)
	}
	var tied []int64
	for _, h := range got {
		tied = append(tied, h.ID)
	}
	if want := []int64{999, 1999, 2999, 3999, 4999}; !slices.Equal(tied, want) {
		t.Errorf("ties across goroutines gave ids %v, want %v", tied, want)
	}
}

// check verifies the slab, ids and slot map agree, and that the slab's
// unused capacity holds only zeros (no erased vector lingers).
func (x *Index) check(t *testing.T) {
	t.Helper()
	if len(x.slab) != len(x.ids)*x.dim || len(x.slot) != len(x.ids) {
		t.Fatalf("slab %d floats, %d ids, %d slots for dim %d", len(x.slab), len(x.ids), len(x.slot), x.dim)
	}
	for s, id := range x.ids {
		if x.slot[id] != int32(s) {
			t.Fatalf("id %d in slot %d, map says %d", id, s, x.slot[id])
		}
	}
	for i, f := range x.slab[len(x.slab):cap(x.slab)] {
		if f != 0 {
			t.Fatalf("unused slab capacity holds a non-zero value at %d", len(x.slab)+i)
		}
	}
}

func TestDeleteSwapRemove(t *testing.T) {
	const dim = 4
	r := rand.New(rand.NewPCG(7, 8))
	x := New(dim)
	ctx := context.Background()
	want := map[int64][]float32{}
	var ids []int64
	var vecs [][]float32
	for id := range int64(10) {
		v := unit(r, dim)
		ids, vecs = append(ids, id), append(vecs, v)
		want[id] = v
	}
	if err := x.Add(ctx, ids, vecs); err != nil {
		t.Fatal(err)
	}
	for _, del := range [][]int64{{9}, {0}, {4, 4}, {8, 1, 77}, {2, 3, 5, 6, 7}} {
		if err := x.Delete(ctx, del); err != nil {
			t.Fatal(err)
		}
		for _, id := range del {
			delete(want, id)
		}
		x.check(t)
		if x.Count() != len(want) {
			t.Fatalf("Len() = %d, want %d", x.Count(), len(want))
		}
		for id, v := range want {
			s := x.slot[id]
			if !slices.Equal(x.vec(int(s)), v) {
				t.Fatalf("after Delete(%v): slot of id %d holds another vector", del, id)
			}
		}
	}
}

func TestAddRejectsNonFinite(t *testing.T) {
	x := New(3)
	ctx := context.Background()
	for _, v := range [][]float32{
		{float32(math.NaN()), 0, 0},
		{0, float32(math.Inf(1)), 0},
		{0, 0, float32(math.Inf(-1))},
	} {
		if err := x.Add(ctx, []int64{1, 2}, [][]float32{{1, 0, 0}, v}); err == nil {
			t.Errorf("Add(non-finite vector) succeeded")
		}
	}
	if x.Count() != 0 {
		t.Errorf("a rejected batch left %d vectors, want 0 (all or nothing)", x.Count())
	}
}

func TestNewPanicsOnBadDim(t *testing.T) {
	for _, dim := range []int{0, -1, MaxDim + 1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%d) did not panic", dim)
				}
			}()
			New(dim)
		}()
	}
}

// saved returns the Save output of a small index.
func saved(t *testing.T, n, dim int) []byte {
	t.Helper()
	r := rand.New(rand.NewPCG(uint64(n), uint64(dim)))
	x := New(dim)
	for id := range int64(n) {
		if err := x.Add(context.Background(), []int64{id * 3}, [][]float32{unit(r, dim)}); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := x.Save(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestSaveFormat pins the byte layout of GBFLAT1.
func TestSaveFormat(t *testing.T) {
	x := New(2)
	if err := x.Add(context.Background(), []int64{-2}, [][]float32{{0.6, -0.8}}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := x.Save(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	want := []byte("GBFLAT1\n")
	want = le.AppendUint32(want, 2)
	want = le.AppendUint64(want, 1)
	want = le.AppendUint64(want, uint64(0xFFFFFFFFFFFFFFFE))
	want = le.AppendUint32(want, math.Float32bits(0.6))
	want = le.AppendUint32(want, math.Float32bits(-0.8))
	want = le.AppendUint32(want, crc32.ChecksumIEEE(want))
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("Save wrote\n%x\nwant\n%x", buf.Bytes(), want)
	}
}

func TestLoadTruncated(t *testing.T) {
	data := saved(t, 5, 4)
	for n := range len(data) {
		x, err := Load(bytes.NewReader(data[:n]))
		if err == nil || x != nil {
			t.Fatalf("Load(first %d of %d bytes) = %v, %v; want nil, an error", n, len(data), x, err)
		}
		if !errors.Is(err, ErrCorrupt) || (n >= len(magic) && !errors.Is(err, io.ErrUnexpectedEOF)) {
			t.Fatalf("Load(first %d of %d bytes): %v; want ErrCorrupt and io.ErrUnexpectedEOF", n, len(data), err)
		}
	}
	if _, err := Load(bytes.NewReader(data)); err != nil {
		t.Fatalf("Load(whole file): %v", err)
	}
}

// TestLoadCorrupted flips every bit of a small file in turn.
func TestLoadCorrupted(t *testing.T) {
	data := saved(t, 3, 4)
	bad := make([]byte, len(data))
	for i := range data {
		for bit := range 8 {
			copy(bad, data)
			bad[i] ^= 1 << bit
			x, err := Load(bytes.NewReader(bad))
			if err == nil || x != nil {
				t.Fatalf("Load with bit %d of byte %d flipped = %v, %v; want nil, an error", bit, i, x, err)
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Load with bit %d of byte %d flipped: %v; want ErrCorrupt", bit, i, err)
			}
		}
	}
}

func TestLoadReadsExactly(t *testing.T) {
	data := saved(t, 4, 3)
	r := bytes.NewReader(append(slices.Clone(data), "trailer"...))
	if _, err := Load(r); err != nil {
		t.Fatal(err)
	}
	if rest, _ := io.ReadAll(r); string(rest) != "trailer" {
		t.Errorf("Load left %q unread, want %q", rest, "trailer")
	}
}

func TestLoadBadHeaders(t *testing.T) {
	le := binary.LittleEndian
	header := func(m string, dim uint32, count uint64) []byte {
		b := le.AppendUint32([]byte(m), dim)
		return le.AppendUint64(b, count)
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "truncated"},
		{"foreign", []byte("PK\x03\x04 this is a zip file, not an index"), "not a flat index"},
		{"future version", header("GBFLAT2\n", 4, 0), "unsupported format version"},
		{"dim zero", header(magic, 0, 0), "dimension 0"},
		{"dim huge", header(magic, MaxDim+1, 0), "dimension"},
		{"count huge", header(magic, 512, 1<<62), "count"},
		{"count beyond data", header(magic, 512, 1<<30), "truncated"},
		{"duplicate id", func() []byte {
			b := header(magic, 1, 2)
			b = le.AppendUint64(b, 7)
			b = le.AppendUint32(b, math.Float32bits(1))
			b = le.AppendUint64(b, 7)
			b = le.AppendUint32(b, math.Float32bits(1))
			return le.AppendUint32(b, crc32.ChecksumIEEE(b))
		}(), "duplicate id"},
		{"NaN", func() []byte {
			b := header(magic, 1, 1)
			b = le.AppendUint64(b, 7)
			b = le.AppendUint32(b, math.Float32bits(float32(math.NaN())))
			return le.AppendUint32(b, crc32.ChecksumIEEE(b))
		}(), "NaN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x, err := Load(bytes.NewReader(tt.data))
			if err == nil || x != nil {
				t.Fatalf("Load = %v, %v; want nil, an error", x, err)
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load: %v; want ErrCorrupt mentioning %q", err, tt.want)
			}
		})
	}
}

// errReader fails after n bytes.
type errReader struct {
	data []byte
	err  error
}

func (r *errReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestLoadReaderError(t *testing.T) {
	boom := errors.New("disk on fire")
	data := saved(t, 3, 4)
	_, err := Load(&errReader{data: data[:30], err: boom})
	if !errors.Is(err, boom) || errors.Is(err, ErrCorrupt) {
		t.Errorf("Load over a failing reader: %v; want the reader's error, not ErrCorrupt", err)
	}
}

func TestSearchCancelledMidScan(t *testing.T) {
	const dim = 4
	x := New(dim)
	r := rand.New(rand.NewPCG(9, 10))
	ids := make([]int64, 3*scanChunk)
	vecs := make([][]float32, len(ids))
	for i := range ids {
		ids[i], vecs[i] = int64(i), unit(r, dim)
	}
	if err := x.Add(context.Background(), ids, vecs); err != nil {
		t.Fatal(err)
	}
	ctx := vindextest.CancelAfter(context.Background(), 2) // the check at the start and one chunk
	if _, err := x.Search(ctx, unit(r, dim), 3*scanChunk, -2); !errors.Is(err, context.Canceled) {
		t.Errorf("Search cancelled during the scan = %v, want context.Canceled", err)
	}
}
