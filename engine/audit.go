package engine

import (
	"context"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// AuditAction is what an audit entry records.
type AuditAction string

// Audit actions. Only these are stored: an admin filtering the log by
// action must be able to name every kind it can hold.
const (
	AuditLoginSucceeded     AuditAction = "login_succeeded"
	AuditLoginFailed        AuditAction = "login_failed"
	AuditAccountLocked      AuditAction = "account_locked"
	AuditLogout             AuditAction = "logout"
	AuditPasswordChanged    AuditAction = "password_changed"
	AuditSessionsRevoked    AuditAction = "sessions_revoked"
	AuditTranscriptViewed   AuditAction = "transcript_viewed"   // staff read a conversation's messages
	AuditTranscriptExported AuditAction = "transcript_exported" // staff exported a conversation
	AuditStaffChanged       AuditAction = "staff_changed"       // an account was created or its role changed
	AuditConfigChanged      AuditAction = "config_changed"      // settings, groups, agent profiles, customers, knowledge base
	AuditKeyRotated         AuditAction = "key_rotated"
)

// AuditActions lists every action, in the order above.
var AuditActions = []AuditAction{
	AuditLoginSucceeded, AuditLoginFailed, AuditAccountLocked, AuditLogout,
	AuditPasswordChanged, AuditSessionsRevoked, AuditTranscriptViewed, AuditTranscriptExported,
	AuditStaffChanged, AuditConfigChanged, AuditKeyRotated,
}

// ValidAuditAction reports whether a is one of AuditActions.
func ValidAuditAction(a AuditAction) bool { return slices.Contains(AuditActions, a) }

// MaxAuditDetail bounds an entry's Detail in bytes: it says what changed in
// a few words, never a message body, a password or a key.
const MaxAuditDetail = 256

// AuditEntry is one record of the tenant's audit log: who did what, when,
// from where, to what. Entries are only ever appended; no port updates or
// deletes one.
type AuditEntry struct {
	Tenant string    `json:"tenant"`
	ID     string    `json:"id"` // NewID of the time it was recorded
	At     time.Time `json:"at"`
	// Actor is who acted; the zero Party for Kefu itself.
	Actor  Party       `json:"actor"`
	IP     string      `json:"ip,omitempty"` // the client's address, when a request carried it
	Action AuditAction `json:"action"`
	// Target is what the action concerns: a conversation or staff id,
	// "settings", "kb", or kind/id of a setting ("group/vip",
	// "agent/<staff id>", "customer/<id>"). See ValidAuditTarget.
	Target string `json:"target,omitempty"`
	// Detail is a short description ("role agent", "put 3 entries").
	Detail string `json:"detail,omitempty"`
}

// Validate checks what stores do not, for entries that come from outside
// the tenant actor: a known action, a target and actor of the documented
// shapes, and bounded text.
func (e AuditEntry) Validate() error {
	switch {
	case !ValidAuditAction(e.Action):
		return Errorf(CodeInvalidField, "unknown audit action %q", e.Action)
	case e.Target != "" && !ValidAuditTarget(e.Target):
		return NewError(CodeInvalidField, "audit target is not an id or kind/id")
	case e.Actor.ID != "" && !ValidID(e.Actor.ID):
		return NewError(CodeInvalidField, "audit actor is not a valid id")
	case len(e.IP) > 64, len(e.Detail) > MaxAuditDetail, !utf8.ValidString(e.Detail):
		return Errorf(CodeInvalidField, "audit ip is at most 64 bytes and detail at most %d bytes of UTF-8", MaxAuditDetail)
	}
	return nil
}

// ValidAuditTarget reports whether s is an id or kind/id, both ids: the
// shapes entries' targets have, so that a client's filter can be checked
// as strictly as any id.
func ValidAuditTarget(s string) bool {
	kind, id, found := strings.Cut(s, "/")
	return ValidID(kind) && (!found || ValidID(id))
}

// AuditQuery filters AuditLog. Zero values match anything.
type AuditQuery struct {
	Action  AuditAction
	ActorID string
	Target  string
	Before  time.Time // only entries strictly before this instant
	Limit   int       // at most this many; 0 means DefaultAuditLimit
}

// Pages of the audit log: DefaultAuditLimit entries for an AuditQuery
// without a Limit, and at most MaxAuditLimit for a client's request.
const (
	DefaultAuditLimit = 100
	MaxAuditLimit     = 500
)

// AuditStore keeps each tenant's audit log. It can append and read, and
// nothing else: there is deliberately no way to change or remove an entry.
type AuditStore interface {
	// AppendAudit stores entries, which may belong to several tenants.
	// Tenant, ID and Action are required; a zero At is stamped with the
	// store's clock. An unknown tenant is ErrNotFound, a taken (tenant,
	// id) ErrExists. On an error, some of the entries may be stored.
	AppendAudit(ctx context.Context, entries []AuditEntry) error
	// AuditLog returns the tenant's entries that match q, newest first
	// (by At, then by ID, both descending).
	AuditLog(ctx context.Context, tenant string, q AuditQuery) ([]AuditEntry, error)
}
