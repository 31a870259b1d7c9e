package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Current argon2id parameters (the OWASP minimum for argon2id): 19 MiB,
// 2 passes, one lane, a 16-byte salt and a 32-byte key. Hashing one
// password takes about 20 MiB and a few tens of milliseconds.
const (
	hashMemory  = 19 * 1024 // KiB
	hashTime    = 2
	hashThreads = 1
	hashSaltLen = 16
	hashKeyLen  = 32
)

// Bounds VerifyPassword accepts when it reads parameters back from a stored
// hash. Hashes with larger parameters are refused rather than computed: a
// planted or corrupted hash must not make a login cost a gigabyte or a
// minute of CPU.
const (
	maxMemory  = 1 << 20 // KiB: 1 GiB
	maxTime    = 100
	maxThreads = 16
	minSaltLen = 8
	maxSaltLen = 64
	minKeyLen  = 16
	maxKeyLen  = 64
)

// b64 is the base64 of PHC strings: standard alphabet, no padding, and no
// second spelling of the same bytes.
var b64 = base64.RawStdEncoding.Strict()

// ErrInvalidHash reports a stored password hash that is not an argon2id PHC
// string this package accepts: malformed, or with parameters out of bounds.
var ErrInvalidHash = errors.New("auth: invalid password hash")

// ErrEmptyPassword is returned by HashPassword for an empty password.
var ErrEmptyPassword = errors.New("auth: empty password")

// HashPassword hashes password with argon2id and a fresh random salt and
// returns the PHC string
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
//
// with salt and hash in standard base64 without padding. It refuses an
// empty password. Store the string as it is; VerifyPassword reads it back.
func HashPassword(password string) (string, error) {
	if password == "" {
		return "", ErrEmptyPassword
	}
	salt := make([]byte, hashSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: reading random salt: %w", err)
	}
	p := phc{memory: hashMemory, time: hashTime, threads: hashThreads, salt: salt}
	p.key = argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, hashKeyLen)
	return p.String(), nil
}

// VerifyPassword reports whether password matches encoded, a hash made by
// HashPassword or by any argon2id implementation that writes PHC strings
// (version 19). The parameters come from encoded, so a hash made with
// stronger parameters than today's still verifies; the comparison takes
// constant time. A malformed string, or one whose parameters exceed the
// bounds (memory over 1 GiB, more than 100 passes, more than 16 lanes, salt
// or key of unusual length), is an error wrapping ErrInvalidHash, and
// nothing is computed for it.
func VerifyPassword(encoded, password string) (bool, error) {
	p, err := parsePHC(encoded)
	if err != nil {
		return false, err
	}
	key := argon2.IDKey([]byte(password), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	return subtle.ConstantTimeCompare(key, p.key) == 1, nil
}

// NeedsRehash reports whether encoded should be replaced by a fresh
// HashPassword hash: it is malformed, or its memory, passes, salt or key
// length is below the current parameters. Call it after VerifyPassword
// succeeds, while the plain password is at hand.
func NeedsRehash(encoded string) bool {
	p, err := parsePHC(encoded)
	if err != nil {
		return true
	}
	return p.memory < hashMemory || p.time < hashTime ||
		len(p.salt) < hashSaltLen || len(p.key) < hashKeyLen
}

// GenerateSecret returns nbytes from crypto/rand encoded as unpadded
// base64url (so 4*nbytes/3 characters, rounded up, of A-Z a-z 0-9 - _): a
// generated password (16 bytes is plenty) or a signing key (32 bytes or
// more). It panics if nbytes is not positive, as make does for a negative
// length.
func GenerateSecret(nbytes int) string {
	if nbytes <= 0 {
		panic("auth: GenerateSecret: nbytes must be positive")
	}
	b := make([]byte, nbytes)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error; it crashes the program instead
	return base64.RawURLEncoding.EncodeToString(b)
}

// phc is a parsed argon2id PHC string.
type phc struct {
	memory  uint32 // KiB
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

func (p phc) String() string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.memory, p.time, p.threads,
		b64.EncodeToString(p.salt), b64.EncodeToString(p.key))
}

// parsePHC parses $argon2id$v=19$m=<m>,t=<t>,p=<p>$<salt>$<key> strictly:
// fields in this order, decimal numbers without sign or leading zeros,
// canonical unpadded base64, parameters within bounds.
func parsePHC(s string) (phc, error) {
	var p phc
	bad := func(why string) (phc, error) { return phc{}, fmt.Errorf("%w: %s", ErrInvalidHash, why) }
	if len(s) > 512 {
		return bad("too long")
	}
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return bad("not a PHC string")
	}
	if parts[1] != "argon2id" {
		return bad("algorithm is not argon2id")
	}
	if v, ok := strings.CutPrefix(parts[2], "v="); !ok {
		return bad("version is missing")
	} else if n, ok := parseDecimal(v); !ok || n != argon2.Version {
		return bad("unsupported argon2 version")
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return bad("parameters must be m, t and p")
	}
	var m, t, th uint64
	for i, dst := range []*uint64{&m, &t, &th} {
		name := "mtp"[i : i+1]
		v, ok := strings.CutPrefix(params[i], name+"=")
		if !ok {
			return bad("parameters must be m, t and p")
		}
		if *dst, ok = parseDecimal(v); !ok {
			return bad("parameter " + name + " is not a number")
		}
	}
	switch {
	case th < 1 || th > maxThreads:
		return bad(fmt.Sprintf("parallelism must be 1 to %d", maxThreads))
	case t < 1 || t > maxTime:
		return bad(fmt.Sprintf("passes must be 1 to %d", maxTime))
	case m < 8*th || m > maxMemory:
		return bad(fmt.Sprintf("memory must be 8*p to %d KiB", maxMemory))
	}
	p.memory, p.time, p.threads = uint32(m), uint32(t), uint8(th)
	var err error
	if p.salt, err = decodeB64(parts[4]); err != nil || len(p.salt) < minSaltLen || len(p.salt) > maxSaltLen {
		return bad(fmt.Sprintf("salt must be %d to %d bytes of unpadded base64", minSaltLen, maxSaltLen))
	}
	if p.key, err = decodeB64(parts[5]); err != nil || len(p.key) < minKeyLen || len(p.key) > maxKeyLen {
		return bad(fmt.Sprintf("hash must be %d to %d bytes of unpadded base64", minKeyLen, maxKeyLen))
	}
	return p, nil
}

// parseDecimal parses a canonical unsigned decimal of at most 10 digits.
func parseDecimal(s string) (uint64, bool) {
	if len(s) == 0 || len(s) > 10 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// decodeB64 decodes canonical unpadded standard base64. The encoding/base64
// decoder skips '\r' and '\n', so they are refused here first.
func decodeB64(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, errors.New("newline in base64")
	}
	return b64.DecodeString(s)
}
