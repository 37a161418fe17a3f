package store

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// fuzzMAC signs witness heads in the fuzz targets, as the master key's
// derived key does in production.
func fuzzMAC(msg []byte) ([]byte, error) {
	h := hmac.New(sha256.New, []byte("fuzz witness key"))
	h.Write(msg)
	return h.Sum(nil), nil
}

// FuzzParseAuditHead checks that an accepted head line names an entry (id ≥
// 1, a 32-byte hash) and reads back the same once printed.
func FuzzParseAuditHead(f *testing.F) {
	h := AuditHead{ID: 42}
	for i := range h.Hash {
		h.Hash[i] = byte(i * 13)
	}
	sig, _ := fuzzMAC(headMessage(h))
	f.Add(fmt.Sprintf("%d %x", h.ID, h.Hash))
	f.Add(fmt.Sprintf("%d %x %x", h.ID, h.Hash, sig))
	f.Add(fmt.Sprintf("  %d\t%X  -\n", h.ID, h.Hash))
	f.Add("0 " + fmt.Sprintf("%x", h.Hash))
	f.Add("-1 zz")
	f.Add("")
	f.Fuzz(func(t *testing.T, line string) {
		h, mac, err := ParseAuditHead(line)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			if h != (AuditHead{}) || mac != "" {
				t.Fatalf("head %+v, mac %q returned with error %v", h, mac, err)
			}
			return
		}
		if h.ID < 1 {
			t.Fatalf("accepted entry id %d", h.ID)
		}
		printed := fmt.Sprintf("%d %x", h.ID, h.Hash)
		if mac != "" {
			printed += " " + mac
		}
		h2, mac2, err := ParseAuditHead(printed)
		if err != nil || h2 != h || mac2 != mac {
			t.Fatalf("%q read as %+v %q, printed %q reads as %+v %q, %v", line, h, mac, printed, h2, mac2, err)
		}
	})
}

// FuzzWitnessRead checks the witness file parser: it never panics, refuses
// what it does not accept with ErrAuditTampered, never accepts a signed line
// whose signature is not the key's, and what it accepts reads back the same
// once written.
func FuzzWitnessRead(f *testing.F) {
	dir := f.TempDir()
	w := &witness{mac: fuzzMAC}
	committed, pending := AuditHead{ID: 7}, AuditHead{ID: 8}
	for i := range committed.Hash {
		committed.Hash[i], pending.Hash[i] = byte(i), byte(255-i)
	}
	for i, st := range []struct {
		c AuditHead
		p *AuditHead
	}{{committed, nil}, {committed, &pending}, {AuditHead{}, &pending}} {
		p := filepath.Join(dir, fmt.Sprintf("seed%d", i))
		if err := w.write(p, st.c, st.p, false); err != nil {
			f.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, true)
		f.Add(b, false)
	}
	f.Add([]byte(fmt.Sprintf("%d %x\n", committed.ID, committed.Hash)), true) // the legacy format
	f.Add([]byte(witnessHeader+"\ncommitted 7 00 -\n"), false)
	f.Add([]byte(witnessHeader+"\n"), true)

	f.Fuzz(func(t *testing.T, data []byte, keyed bool) {
		w := &witness{}
		if keyed {
			w.mac = fuzzMAC
		}
		path := filepath.Join(dir, "audit.head") // calls in one process run one at a time
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		st, err := w.read(path)
		if err != nil {
			if !errors.Is(err, ErrAuditTampered) {
				t.Fatalf("error %v does not wrap ErrAuditTampered", err)
			}
			return
		}
		if st.missing || (st.committed.ID == 0 && st.pending == nil) {
			t.Fatalf("accepted %q as %+v: no head", data, st)
		}
		if st.committed.ID < 0 || (st.pending != nil && st.pending.ID < 1) {
			t.Fatalf("accepted %q with entry ids %+v", data, st)
		}
		if keyed && !st.legacy {
			// Every accepted signed head carries the key's signature: check
			// it independently of read.
			for _, h := range []*AuditHead{&st.committed, st.pending} {
				if h == nil || h.ID == 0 {
					continue
				}
				want, _ := fuzzMAC(headMessage(*h))
				if !containsHex(data, want) {
					t.Fatalf("accepted %q: entry %d without the key's signature", data, h.ID)
				}
			}
		}
		again := filepath.Join(dir, "again")
		if err := w.write(again, st.committed, st.pending, false); err != nil {
			t.Fatal(err)
		}
		st2, err := w.read(again)
		if err != nil {
			t.Fatalf("accepted %q as %+v, but its rewrite does not read: %v", data, st, err)
		}
		if st2.committed != st.committed || (st2.pending == nil) != (st.pending == nil) || (st.pending != nil && *st2.pending != *st.pending) {
			t.Fatalf("accepted %q as %+v, rewritten it reads %+v", data, st, st2)
		}
	})
}

// containsHex reports whether data holds sig in hex, in either case.
func containsHex(data, sig []byte) bool {
	return bytes.Contains(bytes.ToLower(data), []byte(hex.EncodeToString(sig)))
}
