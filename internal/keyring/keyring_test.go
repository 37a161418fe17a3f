package keyring

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
)

// fakeStore is an in-memory KeyStore. The func fields inject faults: when
// set, they run first and a non-nil error is returned as is.
type fakeStore struct {
	mu   sync.Mutex
	keys map[int64][]byte
	puts int

	getErr func(sourceID int64) error
	putErr func(sourceID int64) error
	delErr func(sourceID int64) error
}

var _ KeyStore = (*fakeStore)(nil)

func newFakeStore() *fakeStore { return &fakeStore{keys: map[int64][]byte{}} }

func (s *fakeStore) SourceKey(_ context.Context, sourceID int64) ([]byte, error) {
	if s.getErr != nil {
		if err := s.getErr(sourceID); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.keys[sourceID]
	if !ok {
		return nil, fmt.Errorf("fake store: source %d: %w", sourceID, ErrNoKey)
	}
	return bytes.Clone(w), nil
}

func (s *fakeStore) PutSourceKey(_ context.Context, sourceID int64, wrapped []byte) error {
	if s.putErr != nil {
		if err := s.putErr(sourceID); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.keys[sourceID]; ok {
		return fmt.Errorf("fake store: source %d already has a key", sourceID)
	}
	s.keys[sourceID] = bytes.Clone(wrapped)
	s.puts++
	return nil
}

func (s *fakeStore) DeleteSourceKey(_ context.Context, sourceID int64) error {
	if s.delErr != nil {
		if err := s.delErr(sourceID); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keys, sourceID)
	return nil
}

// snapshot copies the stored wrapped keys, as a backup would.
func (s *fakeStore) snapshot() map[int64][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[int64][]byte, len(s.keys))
	for id, w := range s.keys {
		out[id] = bytes.Clone(w)
	}
	return out
}

func (s *fakeStore) putCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.puts
}

// newTestKeyring returns a Keyring closed when the test and all its
// parallel subtests end.
func newTestKeyring(t *testing.T, m *Master, ks KeyStore) *Keyring {
	t.Helper()
	kr := New(m, ks)
	t.Cleanup(func() {
		if err := kr.Close(); err != nil {
			t.Error(err)
		}
	})
	return kr
}

// shapedBlob returns a blob with a valid version and length for dim 1,
// which does not authenticate.
func shapedBlob() []byte {
	b := make([]byte, 1+12+4+16)
	b[0] = 1
	return b
}

func testTemplate(seed uint64, dim int) []float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	v := make([]float32, dim)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func equalBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

func TestSealOpenRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		template []float32
	}{
		{name: "dim 512", template: testTemplate(1, 512)},
		{name: "dim 1", template: []float32{0.5}},
		{name: "special values", template: []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), math.MaxFloat32, math.SmallestNonzeroFloat32, float32(math.NaN())}},
	}
	kr := newTestKeyring(t, newTestMaster(t), newFakeStore())
	ctx := t.Context()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			blob, err := kr.Seal(ctx, 7, 42, "arcface-r100", tt.template)
			if err != nil {
				t.Fatal(err)
			}
			if want := 1 + 12 + 4*len(tt.template) + 16; len(blob) != want {
				t.Errorf("blob is %d bytes, want %d", len(blob), want)
			}
			if blob[0] != 1 {
				t.Errorf("version byte = %d, want 1", blob[0])
			}
			got, err := kr.Open(ctx, 7, 42, "arcface-r100", blob)
			if err != nil {
				t.Fatal(err)
			}
			if !equalBits(got, tt.template) {
				t.Error("Open returned a different template")
			}
		})
	}
}

func TestSealRandomNonce(t *testing.T) {
	t.Parallel()
	kr := newTestKeyring(t, newTestMaster(t), newFakeStore())
	ctx := t.Context()
	tmpl := testTemplate(2, 512)
	a, err := kr.Seal(ctx, 1, 1, "m", tmpl)
	if err != nil {
		t.Fatal(err)
	}
	b, err := kr.Seal(ctx, 1, 1, "m", tmpl)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a[1:13], b[1:13]) || bytes.Equal(a, b) {
		t.Error("two seals of the same template share nonce or ciphertext")
	}
	for _, blob := range [][]byte{a, b} {
		if got, err := kr.Open(ctx, 1, 1, "m", blob); err != nil || !equalBits(got, tmpl) {
			t.Errorf("Open = %v, want the template", err)
		}
	}
}

func TestSealRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		modelID  string
		template []float32
	}{
		{name: "empty template", modelID: "m", template: nil},
		{name: "model id too long", modelID: string(make([]byte, 1<<16)), template: []float32{1}},
	}
	kr := newTestKeyring(t, newTestMaster(t), newFakeStore())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := kr.Seal(t.Context(), 1, 1, tt.modelID, tt.template); err == nil {
				t.Error("Seal succeeded")
			}
		})
	}
}

func TestOpenRejects(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	kr := newTestKeyring(t, newTestMaster(t), newFakeStore())
	blob, err := kr.Seal(ctx, 1, 10, "model-a", testTemplate(3, 512))
	if err != nil {
		t.Fatal(err)
	}
	// Source 2 has a key of its own, so moving a blob there is tampering,
	// not a missing key.
	if _, err := kr.Seal(ctx, 2, 20, "model-a", testTemplate(4, 512)); err != nil {
		t.Fatal(err)
	}
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(blob)) }
	flip := func(i int) []byte { return edit(func(b []byte) []byte { b[i] ^= 0x01; return b }) }

	tests := []struct {
		name     string
		sourceID int64
		faceID   int64
		modelID  string
		blob     []byte
		want     error
	}{
		{name: "wrong face", sourceID: 1, faceID: 11, modelID: "model-a", blob: blob, want: ErrTampered},
		{name: "wrong source", sourceID: 2, faceID: 10, modelID: "model-a", blob: blob, want: ErrTampered},
		{name: "source without key", sourceID: 3, faceID: 10, modelID: "model-a", blob: blob, want: ErrShredded},
		{name: "wrong model", sourceID: 1, faceID: 10, modelID: "model-b", blob: blob, want: ErrTampered},
		{name: "model id prefix", sourceID: 1, faceID: 10, modelID: "model-", blob: blob, want: ErrTampered},
		{name: "flipped nonce byte", sourceID: 1, faceID: 10, modelID: "model-a", blob: flip(1), want: ErrTampered},
		{name: "flipped ciphertext byte", sourceID: 1, faceID: 10, modelID: "model-a", blob: flip(500), want: ErrTampered},
		{name: "flipped tag byte", sourceID: 1, faceID: 10, modelID: "model-a", blob: flip(len(blob) - 1), want: ErrTampered},
		{name: "truncated by one byte", sourceID: 1, faceID: 10, modelID: "model-a", blob: blob[:len(blob)-1], want: ErrTampered},
		{name: "truncated by one float", sourceID: 1, faceID: 10, modelID: "model-a", blob: blob[:len(blob)-4], want: ErrTampered},
		{name: "float appended", sourceID: 1, faceID: 10, modelID: "model-a", blob: append(bytes.Clone(blob), 0, 0, 0, 0), want: ErrTampered},
		{name: "header only", sourceID: 1, faceID: 10, modelID: "model-a", blob: blob[:13], want: ErrTampered},
		{name: "empty", sourceID: 1, faceID: 10, modelID: "model-a", blob: nil, want: ErrTampered},
		{name: "version 0", sourceID: 1, faceID: 10, modelID: "model-a", blob: edit(func(b []byte) []byte { b[0] = 0; return b }), want: errors.ErrUnsupported},
		{name: "version 2", sourceID: 1, faceID: 10, modelID: "model-a", blob: edit(func(b []byte) []byte { b[0] = 2; return b }), want: errors.ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := kr.Open(ctx, tt.sourceID, tt.faceID, tt.modelID, tt.blob)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open = %v, want %v", err, tt.want)
			}
			if got != nil {
				t.Error("Open returned a template with its error")
			}
		})
	}
	if _, err := kr.Open(ctx, 1, 10, "model-a", blob); err != nil {
		t.Errorf("original blob no longer opens: %v", err)
	}
}

func TestWrappedKeyRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		master func(t testing.TB) *Master // a replacement master key, or nil
		edit   func(w []byte) []byte
		want   error
	}{
		{name: "other master key", master: newTestMaster, edit: func(w []byte) []byte { return w }, want: ErrTampered},
		{name: "flipped wrapped byte", edit: func(w []byte) []byte { w[20] ^= 1; return w }, want: ErrTampered},
		{name: "truncated wrapped key", edit: func(w []byte) []byte { return w[:len(w)-1] }, want: ErrTampered},
		{name: "unknown wrap version", edit: func(w []byte) []byte { w[0] = 9; return w }, want: errors.ErrUnsupported},
		{name: "key of another source", edit: nil, want: ErrTampered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			m := newTestMaster(t)
			fs := newFakeStore()
			kr := New(m, fs)
			blob, err := kr.Seal(ctx, 1, 1, "m", []float32{1, 2, 3})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := kr.Seal(ctx, 2, 1, "m", []float32{1}); err != nil {
				t.Fatal(err)
			}
			if err := kr.Close(); err != nil {
				t.Fatal(err)
			}
			if tt.edit != nil {
				fs.keys[1] = tt.edit(fs.keys[1])
			} else {
				fs.keys[1] = fs.keys[2] // a wrapped key swapped between sources
			}
			if tt.master != nil {
				m = tt.master(t)
			}
			_, err = New(m, fs).Open(ctx, 1, 1, "m", blob)
			if !errors.Is(err, tt.want) {
				t.Errorf("Open = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestCryptoShredding proves erasure by key destruction. A "backup" copies
// the ciphertexts and, separately, the key store before the shred. After
// Shred(1), source 1's templates no longer open, neither through the
// keyring that shredded nor through a fresh one on the current store (no
// cache), and restoring the backed-up ciphertexts without the backed-up
// key store does not bring them back. Source 2 is untouched.
//
// A backup that also holds the key store from before the shred still holds
// source 1's wrapped key, and with the master key it opens the templates:
// that is the last check here. The guarantee for backups therefore rests on
// the operational rule in the package documentation: the key store is not
// backed up with the data (or such backups are re-keyed or destroyed on
// erasure).
func TestCryptoShredding(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	m := newTestMaster(t)
	fs := newFakeStore()
	kr := New(m, fs)
	defer kr.Close()

	type sealed struct {
		source, face int64
		template     []float32
		blob         []byte
	}
	var db []sealed
	for source := int64(1); source <= 2; source++ {
		for face := int64(1); face <= 3; face++ {
			tmpl := testTemplate(uint64(source*100+face), 512)
			blob, err := kr.Seal(ctx, source, face, "m", tmpl)
			if err != nil {
				t.Fatal(err)
			}
			db = append(db, sealed{source, face, tmpl, blob})
		}
	}
	backupKeys := fs.snapshot()
	backupData := make([]sealed, len(db))
	for i, s := range db {
		s.blob = bytes.Clone(s.blob)
		backupData[i] = s
	}

	if err := kr.Shred(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := kr.Shred(ctx, 1); err != nil {
		t.Errorf("second Shred = %v, want nil", err)
	}
	if _, ok := fs.snapshot()[1]; ok {
		t.Fatal("source 1's wrapped key is still in the store")
	}

	fresh := New(m, fs) // restarted process: nothing cached
	defer fresh.Close()
	for name, k := range map[string]*Keyring{"same keyring": kr, "fresh keyring": fresh} {
		for _, data := range [][]sealed{db, backupData} {
			for _, s := range data {
				got, err := k.Open(ctx, s.source, s.face, "m", s.blob)
				if s.source == 1 {
					if !errors.Is(err, ErrShredded) || got != nil {
						t.Errorf("%s: Open source 1 face %d = %v, want ErrShredded", name, s.face, err)
					}
					continue
				}
				if err != nil || !equalBits(got, s.template) {
					t.Errorf("%s: Open source 2 face %d = %v, want the template", name, s.face, err)
				}
			}
		}
	}

	// The backed-up ciphertexts restored into the current store: the key
	// is gone, so they stay unreadable.
	restored := &fakeStore{keys: fs.snapshot()}
	for _, s := range backupData {
		if s.source != 1 {
			continue
		}
		if _, err := New(m, restored).Open(ctx, 1, s.face, "m", s.blob); !errors.Is(err, ErrShredded) {
			t.Errorf("restored data without key: Open face %d = %v, want ErrShredded", s.face, err)
		}
	}

	// The limit, stated in the package doc: a backup that includes the key
	// store kept the wrapped key.
	withKeys := &fakeStore{keys: maps.Clone(backupKeys)}
	if _, err := New(m, withKeys).Open(ctx, 1, 1, "m", backupData[0].blob); err != nil {
		t.Errorf("backup with its key store: Open = %v; the documented limit no longer holds, update doc.go", err)
	}
}

func TestShredAndCloseZeroCache(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	kr := New(newTestMaster(t), newFakeStore())
	for id := int64(1); id <= 2; id++ {
		if _, err := kr.Seal(ctx, id, 1, "m", []float32{1}); err != nil {
			t.Fatal(err)
		}
	}
	k1, k2 := kr.keys[1], kr.keys[2]
	if *k1 == [keySize]byte{} || *k2 == [keySize]byte{} {
		t.Fatal("cached keys are zero before Shred")
	}
	if err := kr.Shred(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if *k1 != [keySize]byte{} {
		t.Error("Shred left the cached key bytes")
	}
	if _, ok := kr.keys[1]; ok {
		t.Error("Shred left the key in the cache")
	}
	if err := kr.Close(); err != nil {
		t.Fatal(err)
	}
	if *k2 != [keySize]byte{} || len(kr.keys) != 0 {
		t.Error("Close left cached key bytes")
	}
	if err := kr.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := kr.Seal(ctx, 2, 1, "m", []float32{1}); !errors.Is(err, ErrClosed) {
		t.Errorf("Seal after Close = %v, want ErrClosed", err)
	}
	if _, err := kr.Open(ctx, 2, 1, "m", shapedBlob()); !errors.Is(err, ErrClosed) {
		t.Errorf("Open after Close = %v, want ErrClosed", err)
	}
	if err := kr.Shred(ctx, 2); !errors.Is(err, ErrClosed) {
		t.Errorf("Shred after Close = %v, want ErrClosed", err)
	}
}

func TestStoreFaults(t *testing.T) {
	t.Parallel()
	errDisk := errors.New("disk on fire")
	tests := []struct {
		name   string
		setup  func(fs *fakeStore, m *Master)
		op     func(ctx context.Context, kr *Keyring) error
		want   error // matched with errors.Is; nil means success
		shred  bool  // the error must not look like a shredded key
		stored bool  // source 1 has a key in the store afterwards
	}{
		{
			name:  "put fails",
			setup: func(fs *fakeStore, _ *Master) { fs.putErr = func(int64) error { return errDisk } },
			op: func(ctx context.Context, kr *Keyring) error {
				_, err := kr.Seal(ctx, 1, 1, "m", []float32{1})
				return err
			},
			want: errDisk,
		},
		{
			name:  "get fails on seal",
			setup: func(fs *fakeStore, _ *Master) { fs.getErr = func(int64) error { return errDisk } },
			op: func(ctx context.Context, kr *Keyring) error {
				_, err := kr.Seal(ctx, 1, 1, "m", []float32{1})
				return err
			},
			want: errDisk,
		},
		{
			name:  "get fails on open",
			setup: func(fs *fakeStore, _ *Master) { fs.getErr = func(int64) error { return errDisk } },
			op: func(ctx context.Context, kr *Keyring) error {
				_, err := kr.Open(ctx, 1, 1, "m", shapedBlob())
				return err
			},
			want: errDisk, shred: true,
		},
		{
			name:  "delete fails",
			setup: func(fs *fakeStore, _ *Master) { fs.delErr = func(int64) error { return errDisk } },
			op:    func(ctx context.Context, kr *Keyring) error { return kr.Shred(ctx, 1) },
			want:  errDisk,
		},
		{
			name: "delete of absent key reports ErrNoKey",
			setup: func(fs *fakeStore, _ *Master) {
				fs.delErr = func(id int64) error { return fmt.Errorf("row %d: %w", id, ErrNoKey) }
			},
			op: func(ctx context.Context, kr *Keyring) error { return kr.Shred(ctx, 1) },
		},
		{
			// Another process stores a key between our lookup and our put;
			// the store refuses ours and the keyring adopts theirs.
			name: "put loses a race with another process",
			setup: func(fs *fakeStore, m *Master) {
				fs.putErr = func(id int64) error {
					otherStore := newFakeStore()
					other := New(m, otherStore)
					defer other.Close()
					if _, err := other.Seal(context.Background(), id, 1, "m", []float32{1}); err != nil {
						return err
					}
					fs.mu.Lock()
					defer fs.mu.Unlock()
					fs.keys[id] = otherStore.snapshot()[id]
					return errors.New("unique constraint")
				}
			},
			op: func(ctx context.Context, kr *Keyring) error {
				blob, err := kr.Seal(ctx, 1, 1, "m", []float32{1})
				if err != nil {
					return err
				}
				_, err = kr.Open(ctx, 1, 1, "m", blob)
				return err
			},
			stored: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := newTestMaster(t)
			fs := newFakeStore()
			tt.setup(fs, m)
			kr := New(m, fs)
			defer kr.Close()
			err := tt.op(t.Context(), kr)
			if tt.want == nil && err != nil || !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if tt.shred && errors.Is(err, ErrShredded) {
				t.Errorf("store failure %v reported as shredded", err)
			}
			if _, ok := fs.snapshot()[1]; ok != tt.stored {
				t.Errorf("source 1 key stored = %v, want %v", ok, tt.stored)
			}
			if tt.want != nil {
				if _, ok := kr.keys[1]; ok {
					t.Error("a failed operation left a key in the cache")
				}
			}
		})
	}
}

// TestSealConcurrentNewSource checks that concurrent first seals of a
// source create exactly one data key.
func TestSealConcurrentNewSource(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	fs := newFakeStore()
	kr := New(newTestMaster(t), fs)
	defer kr.Close()
	const n = 8
	blobs := make([][]byte, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			b, err := kr.Seal(ctx, 5, int64(i), "m", testTemplate(uint64(i), 512))
			if err != nil {
				t.Error(err)
			}
			blobs[i] = b
		})
	}
	close(start)
	wg.Wait()
	if got := fs.putCount(); got != 1 {
		t.Fatalf("PutSourceKey called %d times, want 1", got)
	}
	fresh := New(kr.master, fs)
	defer fresh.Close()
	for i, b := range blobs {
		got, err := fresh.Open(ctx, 5, int64(i), "m", b)
		if err != nil || !equalBits(got, testTemplate(uint64(i), 512)) {
			t.Errorf("blob %d: Open = %v", i, err)
		}
	}
}

// TestConcurrentUse runs Seal, Open and Shred together; it is meant for
// -race.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	kr := newTestKeyring(t, newTestMaster(t), newFakeStore())
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			src := int64(g % 3)
			for i := range 50 {
				tmpl := testTemplate(uint64(i), 64)
				blob, err := kr.Seal(ctx, src, int64(i), "m", tmpl)
				if err != nil {
					t.Error(err)
					return
				}
				got, err := kr.Open(ctx, src, int64(i), "m", blob)
				switch {
				// Another goroutine shredded the source after the Seal:
				// its key is gone (ErrShredded), or a later Seal has
				// already made a new one, under which the blob does not
				// authenticate (ErrTampered).
				case errors.Is(err, ErrShredded), errors.Is(err, ErrTampered):
				case err != nil:
					t.Error(err)
				case !equalBits(got, tmpl):
					t.Error("round trip changed the template")
				}
				if i%10 == 9 {
					if err := kr.Shred(ctx, src); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkSeal512(b *testing.B) {
	ctx := b.Context()
	kr := New(newTestMaster(b), newFakeStore())
	defer kr.Close()
	tmpl := testTemplate(1, 512)
	if _, err := kr.Seal(ctx, 1, 1, "m", tmpl); err != nil { // create the key outside the loop
		b.Fatal(err)
	}
	b.SetBytes(4 * 512)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kr.Seal(ctx, 1, 1, "m", tmpl); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen512(b *testing.B) {
	ctx := b.Context()
	kr := New(newTestMaster(b), newFakeStore())
	defer kr.Close()
	blob, err := kr.Seal(ctx, 1, 1, "m", testTemplate(1, 512))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(4 * 512)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kr.Open(ctx, 1, 1, "m", blob); err != nil {
			b.Fatal(err)
		}
	}
}

// TestEnsureKey: after EnsureKey, sealing for that source touches the key
// store no more (so it can run inside a single-writer store transaction).
func TestEnsureKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fs := newFakeStore()
	kr := newTestKeyring(t, newTestMaster(t), fs)
	if err := kr.EnsureKey(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if err := kr.EnsureKey(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if n := fs.putCount(); n != 1 {
		t.Fatalf("%d keys stored, want 1", n)
	}
	boom := errors.New("store locked by a writer")
	fs.mu.Lock()
	fs.getErr = func(int64) error { return boom }
	fs.putErr = func(int64) error { return boom }
	fs.mu.Unlock()
	blob, err := kr.Seal(ctx, 7, 1, "m", []float32{1, 2, 3})
	if err != nil {
		t.Fatalf("seal after EnsureKey used the store: %v", err)
	}
	if got, err := kr.Open(ctx, 7, 1, "m", blob); err != nil || got[2] != 3 {
		t.Fatalf("open: %v %v", got, err)
	}
	if err := kr.EnsureKey(ctx, 8); !errors.Is(err, boom) {
		t.Fatalf("EnsureKey of a new source with a failing store: %v, want the store's error", err)
	}
}
