package auth

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// Each argon2 hash at the current parameters costs about 20 MiB and tens of
// milliseconds, so only the tests that must compute one do; the parsing
// tests never reach argon2.

var phcRE = regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHashVerifyRoundTrip(t *testing.T) {
	const pw = "correct horse battery staple 密码"
	h1, err := HashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	if !phcRE.MatchString(h1) {
		t.Fatalf("HashPassword = %q, not the expected PHC form", h1)
	}
	h2, err := HashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	if h1 == h2 {
		t.Fatalf("two hashes of one password are equal (salt not random): %q", h1)
	}
	for _, tc := range []struct {
		password string
		want     bool
	}{
		{pw, true},
		{pw + " ", false},
		{"Correct horse battery staple 密码", false},
		{"", false},
	} {
		got, err := VerifyPassword(h1, tc.password)
		if err != nil || got != tc.want {
			t.Errorf("VerifyPassword(h, %q) = %v, %v; want %v, nil", tc.password, got, err, tc.want)
		}
	}
	if NeedsRehash(h1) {
		t.Errorf("NeedsRehash(fresh hash) = true")
	}
}

func TestHashPasswordEmpty(t *testing.T) {
	if h, err := HashPassword(""); !errors.Is(err, ErrEmptyPassword) || h != "" {
		t.Fatalf("HashPassword(\"\") = %q, %v; want ErrEmptyPassword", h, err)
	}
}

// TestVerifyReferenceVectors checks hashes written by the reference C
// implementation (Debian's argon2 command, 0~20171227), e.g.
//
//	echo -n password | argon2 somesaltsomesalt -id -t 1 -k 64 -p 1 -l 32 -e
//
// so the encoding is interoperable and the parameters (including weaker and
// different ones than today's) are read from the string.
func TestVerifyReferenceVectors(t *testing.T) {
	for _, tc := range []struct {
		encoded, password string
		cheap             bool // also try a wrong password
	}{
		{"$argon2id$v=19$m=19456,t=2,p=1$a2VmdS10ZXN0LXNhbHQx$DXplpY+0Kdjd3PFxugV+g9IzncGDTjlXTEfvtQ2qxOg", "correct horse battery staple", false},
		{"$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$55PWTvddWPUD1GMbKxSff4ASfF85k9ibHJt4HlHQtBM", "password", true},
		{"$argon2id$v=19$m=256,t=3,p=2$MDEyMzQ1Njc4OWFiY2RlZg$uVbhdqYCwVDuK9XBBwk7bQ", "pässwörd 密码", true},
	} {
		ok, err := VerifyPassword(tc.encoded, tc.password)
		if err != nil || !ok {
			t.Errorf("VerifyPassword(%q, %q) = %v, %v; want true", tc.encoded, tc.password, ok, err)
		}
		if tc.cheap {
			if ok, err := VerifyPassword(tc.encoded, tc.password+"x"); err != nil || ok {
				t.Errorf("VerifyPassword(%q, wrong) = %v, %v; want false", tc.encoded, ok, err)
			}
		}
	}
}

// phcWith builds a PHC string with the given parameter text and salt and
// key lengths.
func phcWith(params string, saltLen, keyLen int) string {
	return "$argon2id$v=19$" + params + "$" +
		b64.EncodeToString(bytes.Repeat([]byte{0xa5}, saltLen)) + "$" +
		b64.EncodeToString(bytes.Repeat([]byte{0x5a}, keyLen))
}

func TestVerifyMalformed(t *testing.T) {
	good := phcWith("m=19456,t=2,p=1", 16, 32)
	salt := b64.EncodeToString(bytes.Repeat([]byte{0xa5}, 16))
	key := b64.EncodeToString(bytes.Repeat([]byte{0x5a}, 32))
	if _, err := parsePHC(good); err != nil {
		t.Fatalf("parsePHC(good) = %v", err)
	}
	for _, tc := range []struct{ name, encoded string }{
		{"empty", ""},
		{"plain text", "hunter2"},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"argon2i", strings.Replace(good, "argon2id", "argon2i", 1)},
		{"argon2d", strings.Replace(good, "argon2id", "argon2d", 1)},
		{"upper case", strings.Replace(good, "argon2id", "ARGON2ID", 1)},
		{"no version", "$argon2id$m=19456,t=2,p=1$" + salt + "$" + key},
		{"version 16", strings.Replace(good, "v=19", "v=16", 1)},
		{"version 019", strings.Replace(good, "v=19", "v=019", 1)},
		{"params reordered", phcWith("t=2,m=19456,p=1", 16, 32)},
		{"param missing", phcWith("m=19456,t=2", 16, 32)},
		{"param extra", phcWith("m=19456,t=2,p=1,k=1", 16, 32)},
		{"param space", phcWith("m=19456, t=2,p=1", 16, 32)},
		{"leading zero", phcWith("m=019456,t=2,p=1", 16, 32)},
		{"plus sign", phcWith("m=+19456,t=2,p=1", 16, 32)},
		{"negative", phcWith("m=-1,t=2,p=1", 16, 32)},
		{"not a number", phcWith("m=lots,t=2,p=1", 16, 32)},
		{"overflow", phcWith("m=99999999999999999999,t=2,p=1", 16, 32)},
		{"p=0", phcWith("m=19456,t=2,p=0", 16, 32)},
		{"t=0", phcWith("m=19456,t=0,p=1", 16, 32)},
		{"m below 8p", phcWith("m=31,t=1,p=4", 16, 32)},
		{"m over 1 GiB", phcWith("m=1048577,t=1,p=1", 16, 32)},
		{"m 4 GiB", phcWith("m=4294967295,t=1,p=1", 16, 32)},
		{"t over 100", phcWith("m=19456,t=101,p=1", 16, 32)},
		{"p over 16", phcWith("m=19456,t=2,p=17", 16, 32)},
		{"p 256 wraps uint8", phcWith("m=19456,t=2,p=256", 16, 32)},
		{"salt too short", phcWith("m=19456,t=2,p=1", 7, 32)},
		{"salt too long", phcWith("m=19456,t=2,p=1", 65, 32)},
		{"key too short", phcWith("m=19456,t=2,p=1", 16, 15)},
		{"key too long", phcWith("m=19456,t=2,p=1", 16, 65)},
		{"empty salt", "$argon2id$v=19$m=19456,t=2,p=1$$" + key},
		{"empty key", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$"},
		{"padded salt", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "==$" + key},
		{"url base64 salt", "$argon2id$v=19$m=19456,t=2,p=1$" + strings.Repeat("_", 22) + "$" + key},
		{"non-canonical trailing bits", "$argon2id$v=19$m=19456,t=2,p=1$" + salt[:21] + "R$" + key},
		{"newline in key", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + key[:20] + "\n" + key[20:]},
		{"trailing dollar", good + "$"},
		{"extra segment", good + "$AAAA"},
		{"no leading dollar", good[1:]},
		{"too long", good + strings.Repeat("A", 600)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := VerifyPassword(tc.encoded, "password")
			if ok || !errors.Is(err, ErrInvalidHash) {
				t.Fatalf("VerifyPassword(%q) = %v, %v; want false, ErrInvalidHash", tc.encoded, ok, err)
			}
			if !NeedsRehash(tc.encoded) {
				t.Errorf("NeedsRehash(%q) = false for a malformed hash", tc.encoded)
			}
		})
	}
}

func TestParsePHC(t *testing.T) {
	for _, tc := range []struct {
		encoded     string
		m, t        uint32
		p           uint8
		salt, key   int
		needsRehash bool
		name        string
	}{
		{phcWith("m=19456,t=2,p=1", 16, 32), 19456, 2, 1, 16, 32, false, "current"},
		{phcWith("m=65536,t=3,p=4", 32, 64), 65536, 3, 4, 32, 64, false, "stronger"},
		{phcWith("m=1048576,t=100,p=16", 64, 64), 1 << 20, 100, 16, 64, 64, false, "at the bounds"},
		{phcWith("m=47104,t=1,p=1", 16, 32), 47104, 1, 1, 16, 32, true, "fewer passes"},
		{phcWith("m=19455,t=2,p=1", 16, 32), 19455, 2, 1, 16, 32, true, "less memory"},
		{phcWith("m=64,t=1,p=1", 8, 16), 64, 1, 1, 8, 16, true, "weak"},
		{phcWith("m=19456,t=2,p=1", 8, 32), 19456, 2, 1, 8, 32, true, "short salt"},
		{phcWith("m=19456,t=2,p=1", 16, 16), 19456, 2, 1, 16, 16, true, "short key"},
		{phcWith("m=32,t=1,p=4", 16, 32), 32, 1, 4, 16, 32, true, "m = 8p"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parsePHC(tc.encoded)
			if err != nil {
				t.Fatal(err)
			}
			if p.memory != tc.m || p.time != tc.t || p.threads != tc.p || len(p.salt) != tc.salt || len(p.key) != tc.key {
				t.Errorf("parsePHC = m=%d t=%d p=%d salt=%d key=%d; want m=%d t=%d p=%d salt=%d key=%d",
					p.memory, p.time, p.threads, len(p.salt), len(p.key), tc.m, tc.t, tc.p, tc.salt, tc.key)
			}
			if got := p.String(); got != tc.encoded {
				t.Errorf("String() = %q, want %q", got, tc.encoded)
			}
			if got := NeedsRehash(tc.encoded); got != tc.needsRehash {
				t.Errorf("NeedsRehash = %v, want %v", got, tc.needsRehash)
			}
		})
	}
}

func TestGenerateSecret(t *testing.T) {
	seen := map[string]bool{}
	for _, n := range []int{1, 16, 32, 33, 64} {
		s := GenerateSecret(n)
		if want := (4*n + 2) / 3; len(s) != want {
			t.Errorf("GenerateSecret(%d) has %d characters, want %d", n, len(s), want)
		}
		b, err := base64.RawURLEncoding.Strict().DecodeString(s)
		if err != nil || len(b) != n {
			t.Errorf("GenerateSecret(%d) = %q: decodes to %d bytes, %v", n, s, len(b), err)
		}
		if n >= 16 && seen[s] {
			t.Errorf("GenerateSecret(%d) repeated %q", n, s)
		}
		seen[s] = true
	}
	for _, n := range []int{0, -1} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("GenerateSecret(%d) did not panic", n)
				}
			}()
			GenerateSecret(n)
		})
	}
}

// FuzzParsePHC checks that the parser never panics, that whatever it
// accepts is within the bounds argon2 can safely compute, and that it
// accepts only the one canonical spelling of a hash.
func FuzzParsePHC(f *testing.F) {
	f.Add(phcWith("m=19456,t=2,p=1", 16, 32))
	f.Add("$argon2id$v=19$m=256,t=3,p=2$MDEyMzQ1Njc4OWFiY2RlZg$uVbhdqYCwVDuK9XBBwk7bQ")
	f.Add("$argon2id$v=19$m=0,t=0,p=0$$")
	f.Add("$$$$$")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePHC(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidHash) {
				t.Fatalf("parsePHC(%q): error %v does not wrap ErrInvalidHash", s, err)
			}
			return
		}
		if p.threads < 1 || p.threads > maxThreads || p.time < 1 || p.time > maxTime ||
			p.memory < 8*uint32(p.threads) || p.memory > maxMemory ||
			len(p.salt) < minSaltLen || len(p.salt) > maxSaltLen || len(p.key) < minKeyLen || len(p.key) > maxKeyLen {
			t.Fatalf("parsePHC(%q) accepted out-of-bounds parameters %+v", s, p)
		}
		if got := p.String(); got != s {
			t.Fatalf("parsePHC accepted non-canonical %q (canonical %q)", s, got)
		}
	})
}
