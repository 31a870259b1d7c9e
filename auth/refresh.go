package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/kefu-dev/kefu/engine"
)

// RefreshToken is what a member of staff trades for new access tokens. It
// is opaque to clients; it names the session it belongs to, so the server
// finds the session without a search, and carries a random secret of
// which only the hash is stored.
type RefreshToken struct {
	Tenant, StaffID, Session string
	Secret                   string // GenerateSecret(32)
}

// refreshPrefix versions the format. ':' never occurs in an id, so the
// parts split unambiguously.
const refreshPrefix = "rt1"

// String is the token as clients hold it: rt1:<tenant>:<staff>:<sid>:<secret>.
func (t RefreshToken) String() string {
	return refreshPrefix + ":" + t.Tenant + ":" + t.StaffID + ":" + t.Session + ":" + t.Secret
}

// ErrInvalidRefreshToken is returned by ParseRefreshToken for anything it
// does not read.
var ErrInvalidRefreshToken = errors.New("auth: invalid refresh token")

// ParseRefreshToken reads a token String wrote. It checks the shape only;
// whether the secret is right is the session's to say (HashSecret).
func ParseRefreshToken(s string) (RefreshToken, error) {
	if len(s) > 512 {
		return RefreshToken{}, ErrInvalidRefreshToken
	}
	parts := strings.Split(s, ":")
	if len(parts) != 5 || parts[0] != refreshPrefix {
		return RefreshToken{}, ErrInvalidRefreshToken
	}
	t := RefreshToken{Tenant: parts[1], StaffID: parts[2], Session: parts[3], Secret: parts[4]}
	if !engine.ValidID(t.Tenant) || !engine.ValidID(t.StaffID) || !engine.ValidID(t.Session) || len(t.Secret) < 32 || len(t.Secret) > 128 {
		return RefreshToken{}, ErrInvalidRefreshToken
	}
	return t, nil
}

// HashSecret returns the hex SHA-256 of a refresh token's secret: what the
// store keeps. The secret is 256 random bits, so a fast hash suffices.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
