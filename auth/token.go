package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/kefu-dev/kefu/engine"
)

// Token audiences: who a token is for. A token for one is refused by a
// Verifier asked for the other.
const (
	AudienceUser  = "kefu-user"  // customers (Role "user")
	AudienceStaff = "kefu-staff" // agents, supervisors and admins
)

// MaxTokenLen is the longest token Verify reads and Sign writes, in bytes.
const MaxTokenLen = 4096

// MinKeyLen is the shortest HMAC key a Keyring accepts, in bytes: as long
// as the SHA-256 output, as RFC 7518 requires for HS256.
const MinKeyLen = 32

// ErrInvalidToken is wrapped by every error Verify returns for a token it
// refuses. Tell the client CodeUnauthenticated; the wrapped text says why
// and is for logs only.
var ErrInvalidToken = errors.New("auth: invalid token")

// ErrExpired is returned (wrapped) by Verify for a well-signed token whose
// exp has passed. It wraps ErrInvalidToken, so errors.Is matches both.
var ErrExpired = fmt.Errorf("%w: expired", ErrInvalidToken)

// alg is the only algorithm signed and accepted.
const alg = "HS256"

// b64url is the base64 of JWS: URL alphabet, no padding, and only the
// canonical spelling of any byte string (unused trailing bits must be 0).
var b64url = base64.RawURLEncoding.Strict()

// Claims are what a token says about its bearer.
type Claims struct {
	Issuer    string    // iss: the Kefu deployment that signed it
	Audience  string    // aud: AudienceUser or AudienceStaff
	Subject   string    // sub: the party id (user id or staff id)
	Tenant    string    // ten: the tenant the party belongs to
	Role      string    // role: "user", or a staff role "agent", "supervisor", "admin"
	IssuedAt  time.Time // iat: whole seconds
	ExpiresAt time.Time // exp: whole seconds; required
	ID        string    // jti: a unique token id
	// Session is the sign-in a staff token was issued under (sid):
	// required for AudienceStaff, so revoking the session revokes the
	// token; absent from customers' tokens.
	Session string
}

// claimsJSON is Claims on the wire: times are NumericDates, whole seconds
// since the epoch. Pointers tell a missing time from the epoch.
type claimsJSON struct {
	Issuer    string `json:"iss,omitempty"`
	Audience  string `json:"aud,omitempty"`
	Subject   string `json:"sub,omitempty"`
	Tenant    string `json:"ten,omitempty"`
	Role      string `json:"role,omitempty"`
	IssuedAt  *int64 `json:"iat,omitempty"`
	ExpiresAt *int64 `json:"exp,omitempty"`
	ID        string `json:"jti,omitempty"`
	Session   string `json:"sid,omitempty"`
}

func (c Claims) wire() claimsJSON {
	w := claimsJSON{Issuer: c.Issuer, Audience: c.Audience, Subject: c.Subject, Tenant: c.Tenant, Role: c.Role, ID: c.ID, Session: c.Session}
	if !c.IssuedAt.IsZero() {
		s := c.IssuedAt.Unix()
		w.IssuedAt = &s
	}
	if !c.ExpiresAt.IsZero() {
		s := c.ExpiresAt.Unix()
		w.ExpiresAt = &s
	}
	return w
}

func (w claimsJSON) claims() Claims {
	c := Claims{Issuer: w.Issuer, Audience: w.Audience, Subject: w.Subject, Tenant: w.Tenant, Role: w.Role, ID: w.ID, Session: w.Session}
	if w.IssuedAt != nil {
		c.IssuedAt = time.Unix(*w.IssuedAt, 0).UTC()
	}
	if w.ExpiresAt != nil {
		c.ExpiresAt = time.Unix(*w.ExpiresAt, 0).UTC()
	}
	return c
}

// MarshalJSON writes the JWT claim set: iss, aud, sub, ten, role, iat, exp
// (NumericDate seconds), jti and sid; empty fields and zero times are left
// out.
func (c Claims) MarshalJSON() ([]byte, error) { return json.Marshal(c.wire()) }

// UnmarshalJSON is the inverse of MarshalJSON. Times come back in UTC.
func (c *Claims) UnmarshalJSON(data []byte) error {
	var w claimsJSON
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*c = w.claims()
	return nil
}

// audienceOf returns the audience a token carrying role must be issued
// for, or "" for a role tokens never carry.
func audienceOf(role string) string {
	switch role {
	case string(engine.RoleUser):
		return AudienceUser
	case string(engine.StaffAgent), string(engine.StaffSupervisor), string(engine.StaffAdmin):
		return AudienceStaff
	}
	return ""
}

// checkParty reports what is wrong with the party a token names: the
// subject and tenant must be ids (engine.ValidID), the role known, a
// customer's token must be for AudienceUser and staff's for AudienceStaff,
// and a staff token must name its session.
func checkParty(c *Claims) string {
	switch {
	case !engine.ValidID(c.Subject):
		return "sub is not a valid id"
	case !engine.ValidID(c.Tenant):
		return "ten is not a valid id"
	}
	switch aud := audienceOf(c.Role); {
	case aud == "":
		return "unknown role"
	case aud != c.Audience:
		return "role does not belong to the audience"
	case aud == AudienceStaff && !engine.ValidID(c.Session):
		return "a staff token needs a sid"
	case aud == AudienceUser && c.Session != "":
		return "a customer token has no sid"
	}
	return ""
}

// Keyring is an immutable set of HMAC-SHA256 keys by key id (kid), one of
// which signs new tokens. A Verifier accepts a token signed by any key in
// its Keyring, so rotation is: add a new key and make it current, wait for
// the longest token lifetime, then drop the old key.
type Keyring struct {
	current string
	keys    map[string][]byte
}

// NewKeyring returns a Keyring holding copies of keys, signing with the key
// named current. Every kid must be 1 to 64 characters of ASCII letters,
// digits, '-', '_' and '.'; every key at least MinKeyLen bytes of secret
// (GenerateSecret(32) makes one).
func NewKeyring(current string, keys map[string][]byte) (*Keyring, error) {
	if _, ok := keys[current]; !ok {
		return nil, fmt.Errorf("auth: current key id %q is not in the keyring", current)
	}
	k := &Keyring{current: current, keys: make(map[string][]byte, len(keys))}
	for kid, key := range keys {
		if !engine.ValidID(kid) {
			return nil, fmt.Errorf("auth: key id %q: want 1-64 characters of [A-Za-z0-9._-]", kid)
		}
		if len(key) < MinKeyLen {
			return nil, fmt.Errorf("auth: key %q is %d bytes, want at least %d", kid, len(key), MinKeyLen)
		}
		k.keys[kid] = append([]byte(nil), key...)
	}
	return k, nil
}

// Current returns the id of the key that signs new tokens.
func (k *Keyring) Current() string { return k.current }

// KeyIDs returns the ids of all keys in the keyring, sorted.
func (k *Keyring) KeyIDs() []string {
	ids := make([]string, 0, len(k.keys))
	for kid := range k.keys {
		ids = append(ids, kid)
	}
	sort.Strings(ids)
	return ids
}

// header is a JWS protected header. Sign writes exactly these fields.
type header struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
	Kid string `json:"kid"`
}

func clockOr(c engine.Clock) engine.Clock {
	if c == nil {
		return engine.SystemClock{}
	}
	return c
}

// Signer issues tokens. It must not be modified while in use.
type Signer struct {
	// Keys signs with its current key. Required.
	Keys *Keyring
	// Issuer is written as iss. Required; Verifiers must be given the same.
	Issuer string
	// Clock stamps iat and seeds jti. Nil means engine.SystemClock.
	Clock engine.Clock
}

// Sign returns a compact JWS (a JWT) of c, signed with HS256 by the
// Keyring's current key, with header {"alg":"HS256","typ":"JWT","kid":…}.
// It fills in what c leaves zero: Issuer (s.Issuer), IssuedAt (now) and ID
// (a fresh engine.NewID). ExpiresAt is required and must be after
// IssuedAt; Subject and Tenant must be ids, and Role must suit Audience:
// "user" for AudienceUser, "agent", "supervisor" or "admin" for
// AudienceStaff. Times are truncated to whole seconds.
func (s *Signer) Sign(c Claims) (string, error) {
	if s.Keys == nil || s.Issuer == "" {
		return "", errors.New("auth: Signer needs Keys and an Issuer")
	}
	now := clockOr(s.Clock).Now()
	if c.Issuer == "" {
		c.Issuer = s.Issuer
	} else if c.Issuer != s.Issuer {
		return "", fmt.Errorf("auth: sign: issuer %q is not the signer's %q", c.Issuer, s.Issuer)
	}
	if c.IssuedAt.IsZero() {
		c.IssuedAt = now
	}
	if c.ExpiresAt.IsZero() {
		return "", errors.New("auth: sign: ExpiresAt is required")
	}
	if c.ExpiresAt.Unix() <= c.IssuedAt.Unix() {
		return "", errors.New("auth: sign: ExpiresAt must be at least a second after IssuedAt")
	}
	if c.ID == "" {
		c.ID = engine.NewID(now)
	}
	if why := checkParty(&c); why != "" {
		return "", errors.New("auth: sign: " + why)
	}
	kid := s.Keys.current
	h, err := json.Marshal(header{Alg: alg, Typ: "JWT", Kid: kid})
	if err != nil {
		return "", fmt.Errorf("auth: sign: %w", err)
	}
	p, err := json.Marshal(c.wire())
	if err != nil {
		return "", fmt.Errorf("auth: sign: %w", err)
	}
	n := b64url.EncodedLen(len(h)) + 1 + b64url.EncodedLen(len(p)) + 1 + b64url.EncodedLen(sha256.Size)
	if n > MaxTokenLen {
		return "", fmt.Errorf("auth: sign: token would be %d bytes, the limit is %d", n, MaxTokenLen)
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(b64url.EncodeToString(h))
	b.WriteByte('.')
	b.WriteString(b64url.EncodeToString(p))
	mac := hmac.New(sha256.New, s.Keys.keys[kid])
	mac.Write([]byte(b.String()))
	b.WriteByte('.')
	b.WriteString(b64url.EncodeToString(mac.Sum(nil)))
	return b.String(), nil
}

// Verifier checks tokens. It must not be modified while in use.
type Verifier struct {
	// Keys holds every key whose tokens are accepted, by kid. Required.
	Keys *Keyring
	// Issuer is the iss a token must carry. Required.
	Issuer string
	// Clock tells the time exp and iat are checked against. Nil means
	// engine.SystemClock.
	Clock engine.Clock
	// Leeway is the clock skew tolerated between the signing node and this
	// one: a token stays valid until exp+Leeway and may be issued up to
	// Leeway in the future. Zero (or negative) means none.
	Leeway time.Duration
}

func invalid(why string) error { return fmt.Errorf("%w: %s", ErrInvalidToken, why) }

// Verify checks token and returns its claims if, and only if, all hold:
//
//   - it is at most MaxTokenLen bytes of three canonical, unpadded base64url
//     segments;
//   - its header is a JSON object of exactly alg "HS256" (compared
//     case-sensitively), typ "JWT" and a kid found in v.Keys, and no other
//     parameter (so no jwk, jku, x5u, x5c, crit or b64: keys and processing
//     rules never come from the token);
//   - its HMAC-SHA256 signature under that key matches, compared in
//     constant time, before any claim is read;
//   - exp is present and now is before exp+Leeway (else ErrExpired);
//   - iat is present and no later than now+Leeway;
//   - iss is v.Issuer and aud is audience;
//   - sub and ten are ids and role suits the audience, as Sign requires.
//
// Every refusal wraps ErrInvalidToken and returns zero Claims. A Verifier
// without Keys or Issuer, or an empty audience, is a programming error: it
// gets an error that does not wrap ErrInvalidToken.
func (v *Verifier) Verify(token string, audience string) (Claims, error) {
	if v.Keys == nil || v.Issuer == "" || audience == "" {
		return Claims{}, errors.New("auth: Verifier needs Keys, an Issuer and an audience")
	}
	if len(token) > MaxTokenLen {
		return Claims{}, invalid("longer than 4 KiB")
	}
	h64, rest, ok1 := strings.Cut(token, ".")
	p64, s64, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(s64, ".") {
		return Claims{}, invalid("not three segments")
	}

	hb, err := decodeSegment(h64)
	if err != nil {
		return Claims{}, invalid("header: " + err.Error())
	}
	kid, err := parseHeader(hb)
	if err != nil {
		return Claims{}, invalid("header: " + err.Error())
	}
	key, ok := v.Keys.keys[kid]
	if !ok {
		return Claims{}, invalid("unknown key id")
	}
	sig, err := decodeSegment(s64)
	if err != nil {
		return Claims{}, invalid("signature: " + err.Error())
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(token[:len(h64)+1+len(p64)]))
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return Claims{}, invalid("bad signature")
	}

	// Signed by us: the payload can be read now.
	pb, err := decodeSegment(p64)
	if err != nil {
		return Claims{}, invalid("payload: " + err.Error())
	}
	var w claimsJSON
	if err := json.Unmarshal(pb, &w); err != nil {
		return Claims{}, invalid("payload is not a claim set")
	}
	if w.ExpiresAt == nil {
		return Claims{}, invalid("no exp")
	}
	if w.IssuedAt == nil {
		return Claims{}, invalid("no iat")
	}
	c := w.claims()
	now := clockOr(v.Clock).Now()
	leeway := max(v.Leeway, 0)
	if !now.Before(c.ExpiresAt.Add(leeway)) {
		return Claims{}, fmt.Errorf("%w at %s", ErrExpired, c.ExpiresAt.Format(time.RFC3339))
	}
	if c.IssuedAt.After(now.Add(leeway)) {
		return Claims{}, invalid("issued in the future")
	}
	if c.Issuer != v.Issuer {
		return Claims{}, invalid("wrong issuer")
	}
	if c.Audience != audience {
		return Claims{}, invalid("wrong audience")
	}
	if why := checkParty(&c); why != "" {
		return Claims{}, invalid(why)
	}
	return c, nil
}

// parseHeader checks a JWS header and returns its kid.
func parseHeader(b []byte) (string, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil || fields == nil {
		return "", errors.New("not a JSON object")
	}
	var h header
	for name, raw := range fields {
		var dst *string
		switch name {
		case "alg":
			dst = &h.Alg
		case "typ":
			dst = &h.Typ
		case "kid":
			dst = &h.Kid
		default:
			// jwk, jku, x5u, x5c, crit, b64 and anything else: a key or a
			// processing rule taken from the token itself is never honoured.
			return "", errors.New("unsupported parameter")
		}
		if raw[0] != '"' || json.Unmarshal(raw, dst) != nil {
			return "", errors.New(name + " is not a string")
		}
	}
	switch {
	case h.Alg != alg:
		return "", errors.New("alg is not HS256")
	case h.Typ != "JWT":
		return "", errors.New("typ is not JWT")
	case h.Kid == "":
		return "", errors.New("no kid")
	}
	return h.Kid, nil
}

// decodeSegment decodes one canonical, non-empty, unpadded base64url
// segment. encoding/base64 skips '\r' and '\n' inside its input, so the
// alphabet is checked here first.
func decodeSegment(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("empty")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return nil, errors.New("not base64url")
		}
	}
	b, err := b64url.DecodeString(s)
	if err != nil {
		return nil, errors.New("not canonical base64url")
	}
	return b, nil
}
