package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"hash"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kefu-dev/kefu/engine"
)

// fakeClock is an engine.Clock stopped at one instant.
type fakeClock struct{ now time.Time }

func (c fakeClock) Now() time.Time { return c.now }

var _ engine.Clock = fakeClock{}

const issuer = "kefu-test"

var (
	t0       = time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)
	key1     = bytes.Repeat([]byte("k1-secret-"), 4)    // 40 bytes
	key2     = bytes.Repeat([]byte("k2-secret-"), 4)    // 40 bytes
	evilKey  = bytes.Repeat([]byte("attacker-key-"), 3) // 39 bytes
	userBase = Claims{Audience: AudienceUser, Subject: "u_1", Tenant: "t1", Role: "user", ExpiresAt: t0.Add(time.Hour), ID: "jti-1"}
)

func mustKeyring(t testing.TB, current string, keys map[string][]byte) *Keyring {
	t.Helper()
	k, err := NewKeyring(current, keys)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ring1(t testing.TB) *Keyring { return mustKeyring(t, "k1", map[string][]byte{"k1": key1}) }

func mustSign(t testing.TB, s *Signer, c Claims) string {
	t.Helper()
	tok, err := s.Sign(c)
	if err != nil {
		t.Fatalf("Sign(%+v): %v", c, err)
	}
	return tok
}

func enc(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// forge builds a token from raw header and payload JSON, signed with key
// by HMAC over newHash, or with an empty signature when key is nil.
func forge(header, payload string, key []byte, newHash func() hash.Hash) string {
	in := enc(header) + "." + enc(payload)
	if key == nil {
		return in + "."
	}
	mac := hmac.New(newHash, key)
	mac.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// hs256 forges a token signed with key1 and HMAC-SHA256: only the header
// or payload can make Verify refuse it.
func hs256(header, payload string) string { return forge(header, payload, key1, sha256.New) }

const goodHeader = `{"alg":"HS256","typ":"JWT","kid":"k1"}`

// payloadOf is the JSON of c with iss, iat and the expiry used in tests.
func payloadOf(c Claims) string {
	if c.Issuer == "" {
		c.Issuer = issuer
	}
	if c.IssuedAt.IsZero() {
		c.IssuedAt = t0
	}
	b, err := json.Marshal(c)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func segments(tok string) (h, p, s string) {
	parts := strings.Split(tok, ".")
	return parts[0], parts[1], parts[2]
}

func TestSignVerifyRoundTrip(t *testing.T) {
	s := &Signer{Keys: ring1(t), Issuer: issuer, Clock: fakeClock{t0}}
	v := &Verifier{Keys: ring1(t), Issuer: issuer, Clock: fakeClock{t0.Add(59 * time.Minute)}}
	staff := func(role string) Claims {
		return Claims{Audience: AudienceStaff, Subject: "s-" + role, Tenant: "t2", Role: role, ExpiresAt: t0.Add(8 * time.Hour), Session: "sess1"}
	}
	for _, tc := range []struct {
		name string
		in   Claims
	}{
		{"user", userBase},
		{"agent", staff("agent")},
		{"supervisor", staff("supervisor")},
		{"admin", staff("admin")},
		{"explicit iat and issuer, sub-second times", Claims{Issuer: issuer, Audience: AudienceUser, Subject: "u.2", Tenant: "t1", Role: "user",
			IssuedAt: t0.Add(-time.Minute + 300*time.Millisecond), ExpiresAt: t0.Add(time.Hour + 900*time.Millisecond), ID: "x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := mustSign(t, s, tc.in)
			got, err := v.Verify(tok, tc.in.Audience)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := tc.in
			want.Issuer = issuer
			if want.IssuedAt.IsZero() {
				want.IssuedAt = t0
			}
			want.IssuedAt = want.IssuedAt.Truncate(time.Second)
			want.ExpiresAt = want.ExpiresAt.Truncate(time.Second)
			if want.ID == "" {
				if !engine.ValidID(got.ID) || len(got.ID) != 26 {
					t.Errorf("generated jti %q is not an engine id", got.ID)
				}
				want.ID = got.ID
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Verify = %+v\nwant     %+v", got, want)
			}

			h, p, sig := segments(tok)
			if hb, _ := base64.RawURLEncoding.DecodeString(h); string(hb) != goodHeader {
				t.Errorf("header = %s, want %s", hb, goodHeader)
			}
			var fields map[string]any
			pb, _ := base64.RawURLEncoding.DecodeString(p)
			if err := json.Unmarshal(pb, &fields); err != nil {
				t.Fatal(err)
			}
			wantFields := map[string]any{
				"iss": issuer, "aud": want.Audience, "sub": want.Subject, "ten": want.Tenant, "role": want.Role, "jti": want.ID,
				"iat": float64(want.IssuedAt.Unix()), "exp": float64(want.ExpiresAt.Unix()),
			}
			if want.Session != "" {
				wantFields["sid"] = want.Session
			}
			for name, want := range wantFields {
				if fields[name] != want {
					t.Errorf("payload %s = %v (%T), want %v", name, fields[name], fields[name], want)
				}
			}
			if len(fields) != len(wantFields) {
				t.Errorf("payload has %d fields, want %d: %s", len(fields), len(wantFields), pb)
			}
			if len(sig) != 43 {
				t.Errorf("signature is %d characters, want 43", len(sig))
			}
		})
	}
}

// TestVerifyRejects feeds Verify tokens that must fail, each with
// ErrInvalidToken, zero Claims, and ErrExpired only where said.
func TestVerifyRejects(t *testing.T) {
	now := t0.Add(30 * time.Minute)
	v := &Verifier{Keys: ring1(t), Issuer: issuer, Clock: fakeClock{now}, Leeway: 30 * time.Second}
	signer := &Signer{Keys: ring1(t), Issuer: issuer, Clock: fakeClock{t0}}
	good := mustSign(t, signer, userBase)
	if _, err := v.Verify(good, AudienceUser); err != nil {
		t.Fatalf("the good token does not verify: %v", err)
	}
	gh, gp, gs := segments(good)
	payload := payloadOf(userBase)
	claims := func(edit func(*Claims)) Claims {
		c := userBase
		edit(&c)
		return c
	}
	with := func(edit func(*Claims)) string { return payloadOf(claims(edit)) }
	evilJWK := `{"kty":"oct","k":"` + base64.RawURLEncoding.EncodeToString(evilKey) + `"}`
	flip := func(s string, i int) string { // change the character at i to another in the alphabet
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	// Tampered: the payload re-encoded with more rights, the signature kept.
	admin := with(func(c *Claims) { c.Role = "admin"; c.Audience = AudienceStaff; c.Session = "sess1" })
	otherSub := with(func(c *Claims) { c.Subject = "u_2" })
	// The same 32 signature bytes spelled with non-zero unused trailing bits:
	// a lenient decoder would accept it.
	sigBytes, _ := base64.RawURLEncoding.DecodeString(gs)
	last := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", gs[42])
	noncanonSig := gs[:42] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last|1])
	if b, err := base64.RawURLEncoding.DecodeString(noncanonSig); err != nil || !bytes.Equal(b, sigBytes) {
		t.Fatalf("test setup: lenient decoding of %q = %x, %v", noncanonSig, b, err)
	}

	for _, tc := range []struct {
		name     string
		token    string
		audience string // AudienceUser if empty
		expired  bool
	}{
		// Shape.
		{name: "empty", token: ""},
		{name: "one segment", token: "abc"},
		{name: "two segments", token: gh + "." + gp},
		{name: "four segments", token: good + ".AAAA"},
		{name: "trailing dot", token: good + "."},
		{name: "empty header", token: "." + gp + "." + gs},
		{name: "empty payload", token: hs256(goodHeader, "")},
		{name: "over 4 KiB though well signed", token: hs256(goodHeader, with(func(c *Claims) { c.ID = strings.Repeat("j", 3000) }))},
		{name: "whitespace around", token: " " + good},
		{name: "padded header", token: gh + "==." + gp + "." + gs},
		{name: "std alphabet", token: gh + "." + gp + "." + gs[:41] + "+/"},
		{name: "newline in payload", token: gh + "." + gp[:10] + "\n" + gp[10:] + "." + gs},
		{name: "CR in signature", token: gh + "." + gp + "." + gs[:10] + "\r" + gs[10:]},
		{name: "non-canonical signature bits", token: gh + "." + gp + "." + noncanonSig},
		{name: "header not JSON", token: hs256(`alg=HS256`, payload)},
		{name: "header array", token: hs256(`["HS256"]`, payload)},
		{name: "header null", token: hs256(`null`, payload)},

		// Tampering.
		{name: "payload escalated to admin", token: gh + "." + enc(admin) + "." + gs, audience: AudienceStaff},
		{name: "payload other subject", token: gh + "." + enc(otherSub) + "." + gs},
		{name: "payload one character changed", token: gh + "." + flip(gp, 5) + "." + gs},
		{name: "signature one character changed", token: gh + "." + gp + "." + flip(gs, 0)},
		{name: "signature truncated", token: gh + "." + gp + "." + gs[:40]},
		{name: "signature empty", token: gh + "." + gp + "."},
		{name: "signature of another token", token: gh + "." + gp + "." + segmentsSig(mustSign(t, signer, claims(func(c *Claims) { c.ID = "jti-2" })))},

		// The algorithm is pinned.
		{name: "alg none unsigned", token: forge(`{"alg":"none","typ":"JWT","kid":"k1"}`, payload, nil, nil)},
		{name: "alg none without kid", token: forge(`{"alg":"none","typ":"JWT"}`, payload, nil, nil)},
		{name: "alg none with a valid HS256 signature", token: hs256(`{"alg":"none","typ":"JWT","kid":"k1"}`, payload)},
		{name: "alg None", token: hs256(`{"alg":"None","typ":"JWT","kid":"k1"}`, payload)},
		{name: "alg NONE", token: hs256(`{"alg":"NONE","typ":"JWT","kid":"k1"}`, payload)},
		{name: "alg hs256", token: hs256(`{"alg":"hs256","typ":"JWT","kid":"k1"}`, payload)},
		{name: "alg Hs256", token: hs256(`{"alg":"Hs256","typ":"JWT","kid":"k1"}`, payload)},
		{name: "alg HS256 with space", token: hs256(`{"alg":"HS256 ","typ":"JWT","kid":"k1"}`, payload)},
		{name: "alg HS512", token: forge(`{"alg":"HS512","typ":"JWT","kid":"k1"}`, payload, key1, sha512.New)},
		{name: "alg HS512 with an HS256 signature", token: hs256(`{"alg":"HS512","typ":"JWT","kid":"k1"}`, payload)},
		{name: "alg HS384", token: forge(`{"alg":"HS384","typ":"JWT","kid":"k1"}`, payload, key1, sha512.New384)},
		{name: "alg RS256", token: hs256(`{"alg":"RS256","typ":"JWT","kid":"k1"}`, payload)},
		{name: "alg ES256", token: hs256(`{"alg":"ES256","typ":"JWT","kid":"k1"}`, payload)},
		{name: "alg missing", token: hs256(`{"typ":"JWT","kid":"k1"}`, payload)},
		{name: "alg null", token: hs256(`{"alg":null,"typ":"JWT","kid":"k1"}`, payload)},
		{name: "alg array", token: hs256(`{"alg":["HS256"],"typ":"JWT","kid":"k1"}`, payload)},
		{name: "typ missing", token: hs256(`{"alg":"HS256","kid":"k1"}`, payload)},
		{name: "typ JWS", token: hs256(`{"alg":"HS256","typ":"JOSE","kid":"k1"}`, payload)},

		// Keys come only from the keyring.
		{name: "jwk header signed with the supplied key", token: forge(`{"alg":"HS256","typ":"JWT","kid":"k1","jwk":`+evilJWK+`}`, payload, evilKey, sha256.New)},
		{name: "jwk header without kid", token: forge(`{"alg":"HS256","typ":"JWT","jwk":`+evilJWK+`}`, payload, evilKey, sha256.New)},
		{name: "jwk header with unknown kid", token: forge(`{"alg":"HS256","typ":"JWT","kid":"evil","jwk":`+evilJWK+`}`, payload, evilKey, sha256.New)},
		{name: "jwk header even with the right key", token: hs256(`{"alg":"HS256","typ":"JWT","kid":"k1","jwk":`+evilJWK+`}`, payload)},
		{name: "jku header", token: hs256(`{"alg":"HS256","typ":"JWT","kid":"k1","jku":"https://evil.example/jwks.json"}`, payload)},
		{name: "x5u header", token: hs256(`{"alg":"HS256","typ":"JWT","kid":"k1","x5u":"https://evil.example/cert.pem"}`, payload)},
		{name: "x5c header", token: hs256(`{"alg":"HS256","typ":"JWT","kid":"k1","x5c":["MIIB"]}`, payload)},
		{name: "crit header", token: hs256(`{"alg":"HS256","typ":"JWT","kid":"k1","crit":["exp"]}`, payload)},
		{name: "b64 false header", token: hs256(`{"alg":"HS256","typ":"JWT","kid":"k1","b64":false,"crit":["b64"]}`, payload)},
		{name: "signed with another key", token: forge(goodHeader, payload, evilKey, sha256.New)},
		{name: "unknown kid", token: forge(`{"alg":"HS256","typ":"JWT","kid":"k9"}`, payload, evilKey, sha256.New)},
		{name: "unknown kid, right key", token: hs256(`{"alg":"HS256","typ":"JWT","kid":"k9"}`, payload)},
		{name: "kid missing", token: hs256(`{"alg":"HS256","typ":"JWT"}`, payload)},
		{name: "kid empty", token: hs256(`{"alg":"HS256","typ":"JWT","kid":""}`, payload)},
		{name: "kid number", token: hs256(`{"alg":"HS256","typ":"JWT","kid":1}`, payload)},
		{name: "kid case", token: hs256(`{"alg":"HS256","typ":"JWT","kid":"K1"}`, payload)},

		// Claims, in well-signed tokens.
		{name: "expired", token: mustSign(t, signer, claims(func(c *Claims) { c.ExpiresAt = now.Add(-31 * time.Second) })), expired: true},
		{name: "expired exactly at exp+leeway", token: mustSign(t, signer, claims(func(c *Claims) { c.ExpiresAt = now.Add(-30 * time.Second) })), expired: true},
		{name: "exp at the epoch", token: hs256(goodHeader, `{"iss":"kefu-test","aud":"kefu-user","sub":"u_1","ten":"t1","role":"user","iat":0,"exp":0}`), expired: true},
		{name: "exp missing", token: hs256(goodHeader, `{"iss":"kefu-test","aud":"kefu-user","sub":"u_1","ten":"t1","role":"user","iat":1793696400}`)},
		{name: "exp string", token: hs256(goodHeader, `{"iss":"kefu-test","aud":"kefu-user","sub":"u_1","ten":"t1","role":"user","iat":1793696400,"exp":"1893456000"}`)},
		{name: "exp fractional", token: hs256(goodHeader, `{"iss":"kefu-test","aud":"kefu-user","sub":"u_1","ten":"t1","role":"user","iat":1793696400,"exp":1893456000.5}`)},
		{name: "exp null", token: hs256(goodHeader, `{"iss":"kefu-test","aud":"kefu-user","sub":"u_1","ten":"t1","role":"user","iat":1793696400,"exp":null}`)},
		{name: "iat missing", token: hs256(goodHeader, `{"iss":"kefu-test","aud":"kefu-user","sub":"u_1","ten":"t1","role":"user","exp":1893456000}`)},
		{name: "iat beyond leeway", token: mustSign(t, &Signer{Keys: ring1(t), Issuer: issuer, Clock: fakeClock{now.Add(31 * time.Second)}}, userBase)},
		{name: "payload null", token: hs256(goodHeader, `null`)},
		{name: "payload array", token: hs256(goodHeader, `[]`)},
		{name: "payload not JSON", token: hs256(goodHeader, `exp=1893456000`)},
		{name: "wrong issuer", token: mustSign(t, &Signer{Keys: ring1(t), Issuer: "kefu-other", Clock: fakeClock{t0}}, userBase)},
		{name: "no issuer", token: hs256(goodHeader, `{"aud":"kefu-user","sub":"u_1","ten":"t1","role":"user","iat":1793696400,"exp":1893456000}`)},
		{name: "user token for staff", token: good, audience: AudienceStaff},
		{name: "staff token for user", token: mustSign(t, signer, Claims{Audience: AudienceStaff, Subject: "s1", Tenant: "t1", Role: "admin", ExpiresAt: t0.Add(time.Hour), Session: "x"})},
		{name: "audience array", token: hs256(goodHeader, `{"iss":"kefu-test","aud":["kefu-user"],"sub":"u_1","ten":"t1","role":"user","iat":1793696400,"exp":1893456000}`)},
		{name: "admin role in a user token", token: hs256(goodHeader, with(func(c *Claims) { c.Role = "admin" }))},
		{name: "unknown role", token: hs256(goodHeader, with(func(c *Claims) { c.Role = "root" }))},
		{name: "no role", token: hs256(goodHeader, with(func(c *Claims) { c.Role = "" }))},
		{name: "no subject", token: hs256(goodHeader, with(func(c *Claims) { c.Subject = "" }))},
		{name: "subject not an id", token: hs256(goodHeader, with(func(c *Claims) { c.Subject = `{"$ne":null}` }))},
		{name: "no tenant", token: hs256(goodHeader, with(func(c *Claims) { c.Tenant = "" }))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			aud := tc.audience
			if aud == "" {
				aud = AudienceUser
			}
			c, err := v.Verify(tc.token, aud)
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify = %+v, %v; want ErrInvalidToken", c, err)
			}
			if errors.Is(err, ErrExpired) != tc.expired {
				t.Errorf("Verify error %q: errors.Is(ErrExpired) = %v, want %v", err, !tc.expired, tc.expired)
			}
			if c != (Claims{}) {
				t.Errorf("Verify returned claims %+v with an error", c)
			}
		})
	}
}

func segmentsSig(tok string) string { _, _, s := segments(tok); return s }

// TestVerifyTimeBounds pins the exp and iat boundaries with and without
// leeway.
func TestVerifyTimeBounds(t *testing.T) {
	s := &Signer{Keys: ring1(t), Issuer: issuer, Clock: fakeClock{t0}}
	tok := mustSign(t, s, userBase) // iat t0, exp t0+1h
	exp := t0.Add(time.Hour)
	for _, tc := range []struct {
		name    string
		now     time.Time
		leeway  time.Duration
		wantErr error
	}{
		{"at iat", t0, 0, nil},
		{"just before exp", exp.Add(-time.Nanosecond), 0, nil},
		{"at exp", exp, 0, ErrExpired},
		{"within leeway after exp", exp.Add(59 * time.Second), time.Minute, nil},
		{"at exp plus leeway", exp.Add(time.Minute), time.Minute, ErrExpired},
		{"negative leeway is none", exp, -time.Hour, ErrExpired},
		{"before iat within leeway", t0.Add(-time.Minute), time.Minute, nil},
		{"before iat beyond leeway", t0.Add(-time.Minute - time.Nanosecond), time.Minute, ErrInvalidToken},
		{"before iat without leeway", t0.Add(-time.Nanosecond), 0, ErrInvalidToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := &Verifier{Keys: ring1(t), Issuer: issuer, Clock: fakeClock{tc.now}, Leeway: tc.leeway}
			_, err := v.Verify(tok, AudienceUser)
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("Verify at %v = %v, want %v", tc.now, err, tc.wantErr)
			}
			if tc.wantErr == ErrInvalidToken && errors.Is(err, ErrExpired) {
				t.Fatalf("Verify = %v: a token issued in the future is not expired", err)
			}
		})
	}
}

func TestKeyRotation(t *testing.T) {
	old := mustKeyring(t, "k1", map[string][]byte{"k1": key1})
	both := mustKeyring(t, "k2", map[string][]byte{"k1": key1, "k2": key2})
	next := mustKeyring(t, "k2", map[string][]byte{"k2": key2})
	clock := fakeClock{t0}

	tokOld := mustSign(t, &Signer{Keys: old, Issuer: issuer, Clock: clock}, userBase)
	tokNew := mustSign(t, &Signer{Keys: both, Issuer: issuer, Clock: clock}, userBase)
	if h, _, _ := segments(tokNew); h != enc(`{"alg":"HS256","typ":"JWT","kid":"k2"}`) {
		t.Fatalf("rotated signer header = %s, want kid k2", h)
	}
	for _, tc := range []struct {
		name  string
		ring  *Keyring
		token string
		ok    bool
	}{
		{"old token, old ring", old, tokOld, true},
		{"new token, old ring", old, tokNew, false},
		{"old token while both keys are held", both, tokOld, true},
		{"new token while both keys are held", both, tokNew, true},
		{"old token after the old key is dropped", next, tokOld, false},
		{"new token after the old key is dropped", next, tokNew, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := &Verifier{Keys: tc.ring, Issuer: issuer, Clock: clock}
			_, err := v.Verify(tc.token, AudienceUser)
			if tc.ok != (err == nil) || err != nil && !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestNewKeyring(t *testing.T) {
	for _, tc := range []struct {
		name    string
		current string
		keys    map[string][]byte
	}{
		{"nil map", "k1", nil},
		{"current missing", "k2", map[string][]byte{"k1": key1}},
		{"empty current", "", map[string][]byte{"k1": key1}},
		{"short key", "k1", map[string][]byte{"k1": key1[:MinKeyLen-1]}},
		{"short old key", "k1", map[string][]byte{"k1": key1, "k0": []byte("short")}},
		{"empty kid", "k1", map[string][]byte{"k1": key1, "": key2}},
		{"kid with space", "k 1", map[string][]byte{"k 1": key1}},
		{"kid with slash", "../k1", map[string][]byte{"../k1": key1}},
		{"kid too long", strings.Repeat("k", 65), map[string][]byte{strings.Repeat("k", 65): key1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if k, err := NewKeyring(tc.current, tc.keys); err == nil {
				t.Fatalf("NewKeyring = %v, want an error", k)
			}
		})
	}

	// The keyring copies its keys: changing the caller's slice later
	// changes nothing.
	key := bytes.Clone(key1)
	k := mustKeyring(t, "b", map[string][]byte{"b": key, "a": key2, "c.1_x-y": key2[:MinKeyLen]})
	tok := mustSign(t, &Signer{Keys: k, Issuer: issuer, Clock: fakeClock{t0}}, userBase)
	key[0] ^= 0xff
	if _, err := (&Verifier{Keys: k, Issuer: issuer, Clock: fakeClock{t0}}).Verify(tok, AudienceUser); err != nil {
		t.Errorf("token signed before the caller changed its key slice: %v", err)
	}
	if k.Current() != "b" {
		t.Errorf("Current = %q, want b", k.Current())
	}
	if got := k.KeyIDs(); !reflect.DeepEqual(got, []string{"a", "b", "c.1_x-y"}) {
		t.Errorf("KeyIDs = %q", got)
	}
}

func TestSignRejects(t *testing.T) {
	good := &Signer{Keys: ring1(t), Issuer: issuer, Clock: fakeClock{t0}}
	with := func(edit func(*Claims)) Claims {
		c := userBase
		edit(&c)
		return c
	}
	for _, tc := range []struct {
		name   string
		signer *Signer
		claims Claims
	}{
		{"no keys", &Signer{Issuer: issuer}, userBase},
		{"no issuer", &Signer{Keys: ring1(t)}, userBase},
		{"another issuer", good, with(func(c *Claims) { c.Issuer = "kefu-other" })},
		{"no expiry", good, with(func(c *Claims) { c.ExpiresAt = time.Time{} })},
		{"expires at issue", good, with(func(c *Claims) { c.ExpiresAt = t0 })},
		{"expires within the issuing second", good, with(func(c *Claims) { c.ExpiresAt = t0.Add(999 * time.Millisecond) })},
		{"expires before issue", good, with(func(c *Claims) { c.IssuedAt = t0.Add(2 * time.Hour) })},
		{"no subject", good, with(func(c *Claims) { c.Subject = "" })},
		{"subject not an id", good, with(func(c *Claims) { c.Subject = "a/b" })},
		{"no tenant", good, with(func(c *Claims) { c.Tenant = "" })},
		{"no role", good, with(func(c *Claims) { c.Role = "" })},
		{"unknown role", good, with(func(c *Claims) { c.Role = "bot" })},
		{"staff role for users", good, with(func(c *Claims) { c.Role = "agent" })},
		{"user role for staff", good, with(func(c *Claims) { c.Audience = AudienceStaff })},
		{"no audience", good, with(func(c *Claims) { c.Audience = "" })},
		{"unknown audience", good, with(func(c *Claims) { c.Audience = "kefu-bot" })},
		{"staff token without sid", good, with(func(c *Claims) { c.Audience, c.Role = AudienceStaff, "admin" })},
		{"staff sid not an id", good, with(func(c *Claims) { c.Audience, c.Role, c.Session = AudienceStaff, "admin", "a:b" })},
		{"customer token with sid", good, with(func(c *Claims) { c.Session = "s1" })},
		{"over 4 KiB", good, with(func(c *Claims) { c.ID = strings.Repeat("j", 3000) })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tok, err := tc.signer.Sign(tc.claims); err == nil {
				t.Fatalf("Sign = %q, want an error", tok)
			} else if errors.Is(err, ErrInvalidToken) {
				t.Errorf("Sign error %v wraps ErrInvalidToken", err)
			}
		})
	}
}

// TestVerifierMisconfigured: a Verifier missing its keys or issuer, or
// asked for no audience, fails every token with an error the edge must not
// mistake for the client's fault.
func TestVerifierMisconfigured(t *testing.T) {
	tok := mustSign(t, &Signer{Keys: ring1(t), Issuer: issuer, Clock: fakeClock{t0}}, userBase)
	for _, tc := range []struct {
		name     string
		v        *Verifier
		audience string
	}{
		{"no keys", &Verifier{Issuer: issuer, Clock: fakeClock{t0}}, AudienceUser},
		{"no issuer", &Verifier{Keys: ring1(t), Clock: fakeClock{t0}}, AudienceUser},
		{"no audience", &Verifier{Keys: ring1(t), Issuer: issuer, Clock: fakeClock{t0}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.v.Verify(tok, tc.audience)
			if err == nil || errors.Is(err, ErrInvalidToken) || c != (Claims{}) {
				t.Fatalf("Verify = %+v, %v; want a configuration error", c, err)
			}
		})
	}
}

func TestNilClockIsSystemClock(t *testing.T) {
	k := ring1(t)
	c := userBase
	c.ExpiresAt = time.Now().Add(time.Hour)
	tok := mustSign(t, &Signer{Keys: k, Issuer: issuer}, c)
	got, err := (&Verifier{Keys: k, Issuer: issuer}).Verify(tok, AudienceUser)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(got.IssuedAt); d < 0 || d > time.Minute {
		t.Errorf("iat %v is not the wall clock's now", got.IssuedAt)
	}
}

func TestClaimsJSON(t *testing.T) {
	c := Claims{Issuer: "i", Audience: AudienceStaff, Subject: "s", Tenant: "t", Role: "agent", IssuedAt: t0, ExpiresAt: t0.Add(time.Hour), ID: "j", Session: "k"}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"iss":"i","aud":"kefu-staff","sub":"s","ten":"t","role":"agent","iat":1793696400,"exp":1793700000,"jti":"j","sid":"k"}`
	if string(b) != want {
		t.Errorf("Marshal = %s\nwant      %s", b, want)
	}
	var back Claims
	if err := json.Unmarshal(b, &back); err != nil || back != c {
		t.Errorf("Unmarshal = %+v, %v; want %+v", back, err, c)
	}
	if b, _ := json.Marshal(Claims{Subject: "s"}); string(b) != `{"sub":"s"}` {
		t.Errorf("Marshal of sparse claims = %s", b)
	}
}

// FuzzVerify feeds arbitrary strings to Verify. It must never panic, must
// refuse with ErrInvalidToken and zero Claims, and may accept only a token
// Sign produced (the seeds below), byte for byte.
func FuzzVerify(f *testing.F) {
	k := mustKeyring(f, "k2", map[string][]byte{"k1": key1, "k2": key2})
	clock := fakeClock{t0}
	s := &Signer{Keys: k, Issuer: issuer, Clock: clock}
	signed := map[string]bool{}
	for _, c := range []Claims{
		userBase,
		{Audience: AudienceStaff, Subject: "s1", Tenant: "t1", Role: "admin", ExpiresAt: t0.Add(time.Hour), ID: "a", Session: "x"},
		{Audience: AudienceStaff, Subject: "s2", Tenant: "t2", Role: "agent", ExpiresAt: t0.Add(time.Minute), ID: "b", Session: "y"},
	} {
		tok := mustSign(f, s, c)
		signed[tok] = true
		f.Add(tok)
		h, p, sig := segments(tok)
		f.Add(h + "." + p + ".")
		f.Add(h + "." + p + "." + sig + "A")
		f.Add(enc(`{"alg":"none","typ":"JWT","kid":"k2"}`) + "." + p + ".")
	}
	oldKid := mustSign(f, &Signer{Keys: ring1(f), Issuer: issuer, Clock: clock}, userBase) // k1 is still in the ring
	signed[oldKid] = true
	f.Add(oldKid)
	f.Add(forge(`{"alg":"HS256","typ":"JWT","kid":"k2","jwk":{"kty":"oct","k":"AAAA"}}`, payloadOf(userBase), evilKey, sha256.New))
	f.Add("")
	f.Add("..")
	f.Add("e30.e30.")
	f.Add(strings.Repeat("A", MaxTokenLen+1))

	v := &Verifier{Keys: k, Issuer: issuer, Clock: fakeClock{t0.Add(30 * time.Second)}, Leeway: time.Minute}
	f.Fuzz(func(t *testing.T, tok string) {
		for _, aud := range []string{AudienceUser, AudienceStaff} {
			c, err := v.Verify(tok, aud)
			if err == nil {
				if !signed[tok] {
					t.Fatalf("Verify accepted %q, which Sign did not produce: %+v", tok, c)
				}
				if c.Audience != aud || c.Issuer != issuer {
					t.Fatalf("Verify accepted claims %+v for audience %s", c, aud)
				}
				continue
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify(%q) error %v does not wrap ErrInvalidToken", tok, err)
			}
			if c != (Claims{}) {
				t.Fatalf("Verify(%q) returned claims %+v with error %v", tok, c, err)
			}
		}
	})
}

// TestConcurrentUse shares one Signer, Verifier and Keyring among
// goroutines; run with -race.
func TestConcurrentUse(t *testing.T) {
	k := ring1(t)
	s := &Signer{Keys: k, Issuer: issuer, Clock: fakeClock{t0}}
	v := &Verifier{Keys: k, Issuer: issuer, Clock: fakeClock{t0}}
	const weak = "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$55PWTvddWPUD1GMbKxSff4ASfF85k9ibHJt4HlHQtBM"
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			for range 50 {
				tok, err := s.Sign(userBase)
				if err == nil {
					_, err = v.Verify(tok, AudienceUser)
				}
				if err == nil {
					_, err = v.Verify(tok[:len(tok)-1], AudienceUser)
					if err == nil {
						err = errors.New("truncated token verified")
					} else {
						err = nil
					}
				}
				if err == nil {
					var ok bool
					if ok, err = VerifyPassword(weak, "password"); err == nil && !ok {
						err = errors.New("password did not verify")
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestRefreshToken(t *testing.T) {
	rt := RefreshToken{Tenant: "shop.1", StaffID: "s-1", Session: "01ABC", Secret: GenerateSecret(32)}
	got, err := ParseRefreshToken(rt.String())
	if err != nil || got != rt {
		t.Fatalf("ParseRefreshToken(%q) = %+v, %v", rt.String(), got, err)
	}
	if HashSecret(rt.Secret) == HashSecret(rt.Secret+"x") || len(HashSecret(rt.Secret)) != 64 {
		t.Fatal("HashSecret does not tell secrets apart")
	}
	for _, bad := range []string{
		"", "rt1", rt.String() + ":x", "rt2" + rt.String()[3:],
		"rt1:shop.1:s-1:01ABC:short",
		"rt1:shop/1:s-1:01ABC:" + rt.Secret,
		"rt1:shop.1::01ABC:" + rt.Secret,
		"rt1:shop.1:s-1:01ABC:" + strings.Repeat("a", 600),
	} {
		if _, err := ParseRefreshToken(bad); !errors.Is(err, ErrInvalidRefreshToken) {
			t.Errorf("ParseRefreshToken(%q) = %v, want ErrInvalidRefreshToken", bad, err)
		}
	}
}
