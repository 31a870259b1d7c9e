package engine

import (
	"context"
	"time"
)

// StaffSession is one sign-in of a member of staff: the refresh token a
// device holds and the access tokens issued under it (their sid claim).
// Logging out revokes one session; a password change revokes them all.
// Only hashes of refresh tokens are stored.
type StaffSession struct {
	Tenant  string `json:"tenant"`
	StaffID string `json:"staff_id"`
	ID      string `json:"id"`
	// RefreshHash is the SHA-256 (hex) of the refresh token's secret.
	// Every refresh replaces it; PrevHash keeps the one it replaced, so a
	// stolen token used after its rightful owner refreshed is recognised
	// and the whole session revoked.
	RefreshHash string    `json:"refresh_hash"`
	PrevHash    string    `json:"prev_hash,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	ExpiresAt   time.Time `json:"expires_at"`
	RefreshedAt time.Time `json:"refreshed_at,omitzero"`
	RevokedAt   time.Time `json:"revoked_at,omitzero"`
	IP          string    `json:"ip,omitempty"`
	UserAgent   string    `json:"user_agent,omitempty"`
}

// Active reports whether the session still authorises tokens at now.
func (s StaffSession) Active(now time.Time) bool {
	return s.RevokedAt.IsZero() && now.Before(s.ExpiresAt)
}

// LoginState counts a member of staff's failed logins since the last
// success, and how long the account stays locked after too many.
type LoginState struct {
	Tenant       string    `json:"tenant"`
	StaffID      string    `json:"staff_id"`
	FailedLogins int       `json:"failed_logins"`
	LockedUntil  time.Time `json:"locked_until,omitzero"`
}

// CredentialStore keeps what staff sign in with besides their password:
// sessions and failed-login counts. Each member of staff's agent actor is
// the single writer of theirs.
type CredentialStore interface {
	// PutSession creates or replaces a session by id. It also forgets the
	// member of staff's sessions that expired before s.CreatedAt, so the
	// sessions of one account do not grow without bound.
	PutSession(ctx context.Context, s StaffSession) error
	// StaffSessions returns a member of staff's sessions, by id.
	StaffSessions(ctx context.Context, tenant, staffID string) ([]StaffSession, error)
	// PutLoginState creates or replaces a member of staff's login state.
	PutLoginState(ctx context.Context, s LoginState) error
	// LoginState returns it (ErrNotFound when nothing was ever recorded).
	LoginState(ctx context.Context, tenant, staffID string) (LoginState, error)
}

// TenantCredentials are a tenant's secrets for identifying its customers:
// the mini-program's AppSecret, which code2session needs, and the secret
// the merchant's own server signs user identities with. They are written
// by admins and never returned by any API.
type TenantCredentials struct {
	Tenant          string    `json:"tenant"`
	WeChatAppSecret string    `json:"wechat_app_secret,omitempty"`
	IdentitySecret  string    `json:"identity_secret,omitempty"`
	UpdatedAt       time.Time `json:"updated_at"`
}

// TenantCredentialStore keeps tenants' credentials.
type TenantCredentialStore interface {
	// PutTenantCredentials creates or replaces them (ErrNotFound for an
	// unknown tenant).
	PutTenantCredentials(ctx context.Context, c TenantCredentials) error
	// TenantCredentials returns them (ErrNotFound if never set).
	TenantCredentials(ctx context.Context, tenant string) (TenantCredentials, error)
}
