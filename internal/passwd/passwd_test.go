package passwd

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// cheap are parameters that make test hashes fast.
var cheap = params{memory: 8, time: 1, threads: 1}

// cheapHash returns a PHC string with the cheap parameters.
func cheapHash(password string) string {
	salt := []byte("0123456789abcdef")
	return encode(cheap, salt, derive(cheap, password, salt, keyLen))
}

func TestHashVerify(t *testing.T) {
	t.Parallel()
	const pw = "correct horse battery"
	h1, err := Hash(pw)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h1, "$argon2id$v=19$m=65536,t=3,p=2$") {
		t.Errorf("Hash = %q, want the argon2id PHC prefix with m=65536,t=3,p=2", h1)
	}
	fields := strings.Split(h1, "$")
	if len(fields) != 6 {
		t.Fatalf("Hash = %q: %d fields", h1, len(fields))
	}
	salt, err := base64.RawStdEncoding.DecodeString(fields[4])
	if err != nil || len(salt) != 16 {
		t.Errorf("salt %q: %d bytes, %v", fields[4], len(salt), err)
	}
	key, err := base64.RawStdEncoding.DecodeString(fields[5])
	if err != nil || len(key) != 32 {
		t.Errorf("key %q: %d bytes, %v", fields[5], len(key), err)
	}
	if ok, err := Verify(pw, h1); !ok || err != nil {
		t.Errorf("Verify(right password) = %v, %v", ok, err)
	}
	if ok, err := Verify(pw+"!", h1); ok || err != nil {
		t.Errorf("Verify(wrong password) = %v, %v, want false, nil", ok, err)
	}
	h2, err := Hash(pw)
	if err != nil {
		t.Fatal(err)
	}
	if h1 == h2 || strings.Split(h2, "$")[4] == fields[4] {
		t.Errorf("two hashes of one password share a salt: %q, %q", h1, h2)
	}
}

func TestHashLength(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		pw   string
		want error
	}{
		{"", ErrTooShort},
		{"elevenchars", ErrTooShort},
		{"ééééééééééé", ErrTooShort}, // 11 characters, 22 bytes
		{strings.Repeat("a", MaxLength+1), ErrTooLong},
		{strings.Repeat("é", MaxLength/2) + "a", ErrTooLong},
	} {
		if h, err := Hash(tt.pw); !errors.Is(err, tt.want) || h != "" {
			t.Errorf("Hash(%d bytes) = %q, %v, want %v", len(tt.pw), h, err, tt.want)
		}
	}
	// The bounds themselves are accepted; checked with the cheap parameters
	// by Verify, which reads a hash of any length below MaxLength.
	for _, pw := range []string{"twelve chars", strings.Repeat("a", MaxLength)} {
		if ok, err := Verify(pw, cheapHash(pw)); !ok || err != nil {
			t.Errorf("Verify(%d bytes) = %v, %v", len(pw), ok, err)
		}
	}
	long := strings.Repeat("a", MaxLength+1)
	if ok, err := Verify(long, cheapHash(long)); ok || err != nil {
		t.Errorf("Verify(too long) = %v, %v, want false, nil", ok, err)
	}
}

func TestVerifyParameters(t *testing.T) {
	t.Parallel()
	const pw = "a long enough password"
	h := cheapHash(pw)
	if ok, err := Verify(pw, h); !ok || err != nil {
		t.Fatalf("Verify(cheap) = %v, %v", ok, err)
	}
	if ok, err := Verify("another password", h); ok || err != nil {
		t.Fatalf("Verify(cheap, wrong) = %v, %v", ok, err)
	}
	saltKey := h[strings.LastIndex(h[:strings.LastIndex(h, "$")], "$"):] // "$salt$key"
	key := h[strings.LastIndex(h, "$")+1:]
	badBits := key[:len(key)-1] + "B" // a 32-byte key's last character carries 2 bits and 4 zero bits
	if strings.HasSuffix(key, "B") {
		badBits = key[:len(key)-1] + "C"
	}
	for name, enc := range map[string]string{
		"empty":               "",
		"bcrypt":              "$2b$10$abcdefghijklmnopqrstuu5Jz0Wm5XhV2Q8q2b6b6JQ2nX8mO7Z1y",
		"argon2i":             "$argon2i$v=19$m=8,t=1,p=1" + saltKey,
		"version 16":          "$argon2id$v=16$m=8,t=1,p=1" + saltKey,
		"no version":          "$argon2id$m=8,t=1,p=1" + saltKey,
		"missing key":         "$argon2id$v=19$m=8,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg",
		"extra field":         "$argon2id$v=19$m=8,t=1,p=1" + saltKey + "$x",
		"params out of order": "$argon2id$v=19$t=1,m=8,p=1" + saltKey,
		"missing param":       "$argon2id$v=19$m=8,t=1" + saltKey,
		"extra param":         "$argon2id$v=19$m=8,t=1,p=1,k=2" + saltKey,
		"negative":            "$argon2id$v=19$m=-8,t=1,p=1" + saltKey,
		"plus sign":           "$argon2id$v=19$m=+8,t=1,p=1" + saltKey,
		"leading zero":        "$argon2id$v=19$m=08,t=1,p=1" + saltKey,
		"hex":                 "$argon2id$v=19$m=0x8,t=1,p=1" + saltKey,
		"over 32 bits":        "$argon2id$v=19$m=4294967296,t=1,p=1" + saltKey,
		"memory over 1 GiB":   "$argon2id$v=19$m=1048577,t=1,p=1" + saltKey,
		"memory below 8p":     "$argon2id$v=19$m=15,t=1,p=2" + saltKey,
		"zero passes":         "$argon2id$v=19$m=8,t=0,p=1" + saltKey,
		"21 passes":           "$argon2id$v=19$m=8,t=21,p=1" + saltKey,
		"zero lanes":          "$argon2id$v=19$m=8,t=1,p=0" + saltKey,
		"65 lanes":            "$argon2id$v=19$m=1024,t=1,p=65" + saltKey,
		"256 lanes":           "$argon2id$v=19$m=4096,t=1,p=256" + saltKey,
		"salt padded":         "$argon2id$v=19$m=8,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg==$" + key,
		"salt not base64":     "$argon2id$v=19$m=8,t=1,p=1$MDEyMzQ1Njc4O*FiY2RlZg$" + key,
		"salt url base64":     "$argon2id$v=19$m=8,t=1,p=1$MDEyMzQ1Njc4OW_iY2RlZg$" + key,
		"short salt":          "$argon2id$v=19$m=8,t=1,p=1$MDEyMzQ1Ng$" + key,
		"empty salt":          "$argon2id$v=19$m=8,t=1,p=1$$" + key,
		"short key":           "$argon2id$v=19$m=8,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$" + key[:20],
		"long key": "$argon2id$v=19$m=8,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$" +
			base64.RawStdEncoding.EncodeToString(make([]byte, 65)),
		"key bad trailing bits": "$argon2id$v=19$m=8,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$" + badBits,
	} {
		if ok, err := Verify(pw, enc); ok || !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Verify(%q) = %v, %v, want ErrMalformed", name, enc, ok, err)
		}
	}
	// The largest parameters still accepted (with memory kept small).
	big := params{memory: 64 * 8, time: 2, threads: 64}
	salt := []byte("saltsalt")
	if ok, err := Verify(pw, encode(big, salt, derive(big, pw, salt, 64))); !ok || err != nil {
		t.Errorf("Verify(p=64, 8-byte salt, 64-byte key) = %v, %v", ok, err)
	}
}

func TestToken(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		tok, hash, err := NewToken("gbt_")
		if err != nil {
			t.Fatal(err)
		}
		rest, ok := strings.CutPrefix(tok, "gbt_")
		if !ok || len(rest) != 43 {
			t.Fatalf("NewToken = %q, want gbt_ and 43 characters", tok)
		}
		if b, err := base64.RawURLEncoding.DecodeString(rest); err != nil || len(b) != 32 {
			t.Fatalf("token body %q: %d bytes, %v", rest, len(b), err)
		}
		if hash != TokenHash(tok) {
			t.Fatalf("NewToken hash differs from TokenHash")
		}
		if hash == TokenHash(rest) {
			t.Fatalf("TokenHash ignores the prefix")
		}
		if seen[tok] {
			t.Fatalf("token %q returned twice", tok)
		}
		seen[tok] = true
	}
}

// BenchmarkHash measures the cost of one login with the default parameters.
func BenchmarkHash(b *testing.B) {
	for b.Loop() {
		if _, err := Hash("correct horse battery"); err != nil {
			b.Fatal(err)
		}
	}
}
