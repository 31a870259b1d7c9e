package engine

import (
	"context"
	"sync"
	"time"
)

// Store is everything Kefu persists. Adapters (store/sqlite, store/mongo)
// implement it and pass the store/storetest conformance suite. Every method
// is scoped by tenant; none trusts an id without it. Methods are safe for
// concurrent use and may block on I/O: never call them inside an actor's
// Receive.
type Store interface {
	MessageStore
	ConversationStore
	AccountStore
	KnowledgeStore
	RoutingStore
	CustomerStore
	NoteStore
	TimerStore
	CredentialStore
	TenantCredentialStore
	AuditStore
	DataKeyStore
	CannedStore
	// Close flushes pending writes and releases the database.
	Close() error
}

// MessageStore keeps the messages of conversations.
type MessageStore interface {
	// Append durably stores msgs, which all belong to one conversation and
	// carry consecutive seqs, in order. It returns how many leading messages
	// are stored; when that is less than len(msgs) the error says why the
	// next one was not: a *DuplicateError (its client_msg_id is stored
	// already), ErrSeqConflict (its seq is taken), or a storage failure.
	// Messages after the first failed one are never stored, so a caller can
	// renumber and resubmit them without leaving a gap.
	//
	// timers are the changes to the conversation's timers that the
	// messages make, as TimerStore.SetTimers applies them. They are
	// applied only once every message is stored, in the same transaction
	// where the store has one, so an acked message never lacks the timers
	// it set. An error returned with every message stored means they may
	// not all be applied.
	Append(ctx context.Context, msgs []Message, timers ...TimerChange) (int, error)
	// Messages returns up to limit messages with seq > afterSeq, ascending.
	Messages(ctx context.Context, tenant, conv string, afterSeq int64, limit int) ([]Message, error)
	// Recent returns the newest n messages, ascending.
	Recent(ctx context.Context, tenant, conv string, n int) ([]Message, error)
	// LastSeq returns the highest stored seq, 0 for an empty conversation.
	LastSeq(ctx context.Context, tenant, conv string) (int64, error)
	// MessageByClientID finds a message by its client_msg_id (ErrNotFound).
	MessageByClientID(ctx context.Context, tenant, conv, clientMsgID string) (Message, error)
}

// DuplicateError reports that a message's client_msg_id is already stored.
// From and CreatedAt describe the original, so a caller can tell a resend
// (same sender) from another participant's message that happens to use
// the same id.
type DuplicateError struct {
	ClientMsgID string
	Seq         int64 // the seq the original was stored under
	From        Party
	CreatedAt   time.Time
}

func (e *DuplicateError) Error() string {
	return "engine: duplicate client_msg_id " + e.ClientMsgID
}

// ConversationStore keeps conversation headers and read pointers.
type ConversationStore interface {
	// CreateConversation stores a new conversation (ErrExists if its id is taken).
	CreateConversation(ctx context.Context, c Conversation) error
	// Conversation returns one conversation of the tenant (ErrNotFound).
	Conversation(ctx context.Context, tenant, id string) (Conversation, error)
	// ListConversations returns the tenant's conversations, newest first.
	ListConversations(ctx context.Context, tenant string, q ConversationQuery) ([]Conversation, error)
	// SetReadPointer moves p's read pointer forward to seq; it never moves
	// backwards. It returns the pointer's value afterwards.
	SetReadPointer(ctx context.Context, tenant, conv string, p Party, seq int64) (int64, error)
	// ReadPointers returns every participant's read pointer.
	ReadPointers(ctx context.Context, tenant, conv string) ([]ReadPointer, error)
	// UpdateConversation stores c's mutable fields (State, AgentID,
	// Invited, Group, Priority, QueuedAt, UpdatedAt, Rating) and records
	// ev, in one write (ErrNotFound if the conversation does not exist).
	UpdateConversation(ctx context.Context, c Conversation, ev ConvEvent) error
	// Events returns the conversation's lifecycle events, oldest first.
	Events(ctx context.Context, tenant, conv string) ([]ConvEvent, error)
}

// KnowledgeStore keeps each tenant's FAQ knowledge base.
type KnowledgeStore interface {
	// PutFAQ creates or replaces entries by id, as given: the caller sets
	// Version and UpdatedAt (the tenant's single writer bumps them).
	PutFAQ(ctx context.Context, tenant string, entries []FAQEntry) error
	// DeleteFAQ removes one entry (ErrNotFound if it does not exist).
	DeleteFAQ(ctx context.Context, tenant, id string) error
	// FAQEntries returns every entry of the tenant, by id.
	FAQEntries(ctx context.Context, tenant string) ([]FAQEntry, error)
}

// FAQEntry is one stored knowledge-base entry. The kb package owns its
// rules and its index; this is its stored form.
type FAQEntry struct {
	ID        string
	Category  string
	Question  string
	Similar   []string
	Answer    string
	Tags      []string
	Enabled   bool
	UpdatedAt time.Time
	Version   int64
}

// ConversationQuery filters ListConversations. Zero values match anything;
// the filters given combine (a conversation must match each).
type ConversationQuery struct {
	UserID    string
	State     ConvState
	AgentID   string    // owned by this member of staff
	InvitedID string    // this member of staff is among its Invited
	Group     string    // routed to this skill group
	Before    time.Time // only conversations created before this instant
	Limit     int       // at most this many; 0 means 50
}

// AccountStore keeps tenants, staff accounts and server settings.
type AccountStore interface {
	CreateTenant(ctx context.Context, t Tenant) error
	Tenant(ctx context.Context, id string) (Tenant, error)
	CountTenants(ctx context.Context) (int, error)
	CreateStaff(ctx context.Context, s Staff) error
	StaffByUsername(ctx context.Context, tenant, username string) (Staff, error)
	// StaffByID returns one account (ErrNotFound).
	StaffByID(ctx context.Context, tenant, id string) (Staff, error)
	// ListStaff returns the tenant's staff accounts, by username.
	ListStaff(ctx context.Context, tenant string) ([]Staff, error)
	// UpdateStaff replaces an account's DisplayName, Role and PasswordHash
	// (ErrNotFound).
	UpdateStaff(ctx context.Context, s Staff) error
	// PutSettingIfAbsent stores value under key unless the key exists, and
	// returns the stored value either way: the first writer wins, even
	// across nodes.
	PutSettingIfAbsent(ctx context.Context, key, value string) (string, error)
}

// DataKeyStore keeps the tenants' data keys, which store/sealed uses to
// encrypt personal data at rest. The store holds them only wrapped
// (encrypted) by a master key it never sees.
type DataKeyStore interface {
	// CreateDataKey stores k unless the tenant has a key of k.Version
	// already, and returns the stored key either way: the first writer
	// wins, even across nodes. An unknown tenant is ErrNotFound; a zero
	// CreatedAt is stamped with the store's clock.
	CreateDataKey(ctx context.Context, k DataKey) (DataKey, error)
	// DataKeys returns the tenant's keys, by version; none for an unknown
	// tenant.
	DataKeys(ctx context.Context, tenant string) ([]DataKey, error)
	// AllDataKeys returns every tenant's keys, by tenant and version.
	AllDataKeys(ctx context.Context) ([]DataKey, error)
	// RewrapDataKey replaces the MasterKeyID and Wrapped of the stored key
	// of k.Tenant and k.Version, nothing else (ErrNotFound if there is no
	// such key).
	RewrapDataKey(ctx context.Context, k DataKey) error
}

// DataKey is one version of a tenant's data key as stored: Wrapped is the
// key encrypted by the master key MasterKeyID names.
type DataKey struct {
	Tenant      string
	Version     int // 1, 2, ...; the newest encrypts new writes
	MasterKeyID string
	Wrapped     []byte
	CreatedAt   time.Time
}

// Tenant is a merchant: one mini-program appid.
type Tenant struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	AppID     string    `json:"app_id"`
	CreatedAt time.Time `json:"created_at"`
}

// StaffRole is what a member of staff may do.
type StaffRole string

// Staff roles.
const (
	StaffAgent      StaffRole = "agent"
	StaffSupervisor StaffRole = "supervisor"
	StaffAdmin      StaffRole = "admin"
)

// Staff is an agent, supervisor or admin account of a tenant.
type Staff struct {
	Tenant       string    `json:"tenant"`
	ID           string    `json:"id"`
	Username     string    `json:"username"`
	DisplayName  string    `json:"display_name"`
	Role         StaffRole `json:"role"`
	PasswordHash string    `json:"-"`
	CreatedAt    time.Time `json:"created_at"`
}

// Clock tells the time. Code that schedules or timestamps takes a Clock so
// tests can control time instead of sleeping.
type Clock interface {
	Now() time.Time
}

// ManualClock is a Clock that moves only when told: tests use it to fire
// timers without sleeping. Safe for concurrent use.
type ManualClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewManualClock returns a clock stopped at t.
func NewManualClock(t time.Time) *ManualClock { return &ManualClock{now: t.UTC()} }

// Now returns the clock's time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns the current time in UTC.
func (SystemClock) Now() time.Time { return time.Now().UTC() }
