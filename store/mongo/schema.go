package mongo

import (
	"context"
	"fmt"
	"time"

	"github.com/kefu-dev/kefu/engine"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The documents, one type per collection. Times are BSON dates
// (milliseconds, UTC), the protocol's precision. Every collection but
// tenants and settings is keyed by tenant first, and every query filters by
// it (DESIGN.md §4: tenants are isolated).

// tenantDoc is a tenant; its id is the _id.
type tenantDoc struct {
	ID        string    `bson:"_id"`
	Name      string    `bson:"name"`
	AppID     string    `bson:"app_id"`
	CreatedAt time.Time `bson:"created_at"`
}

type staffDoc struct {
	Tenant       string    `bson:"tenant"`
	ID           string    `bson:"id"`
	Username     string    `bson:"username"`
	DisplayName  string    `bson:"display_name"`
	Role         string    `bson:"role"`
	PasswordHash string    `bson:"password_hash"`
	CreatedAt    time.Time `bson:"created_at"`
}

type conversationDoc struct {
	Tenant  string `bson:"tenant"`
	ID      string `bson:"id"`
	UserID  string `bson:"user_id"`
	State   string `bson:"state"`
	AgentID string `bson:"agent_id,omitempty"`
	// Absent when empty, as in the documents written before they existed,
	// which thus read as zero values.
	Invited   []string   `bson:"invited,omitempty"`
	Group     string     `bson:"group_id,omitempty"`
	Priority  int        `bson:"priority,omitempty"`
	QueuedAt  time.Time  `bson:"queued_at,omitempty"`
	CreatedAt time.Time  `bson:"created_at"`
	UpdatedAt time.Time  `bson:"updated_at"`
	Rating    *ratingDoc `bson:"rating,omitempty"`
}

// ratingDoc is a conversation's rating; the comment is sealed
// (store/sealed).
type ratingDoc struct {
	Score   int       `bson:"score"`
	Comment string    `bson:"comment"`
	At      time.Time `bson:"at"`
}

func ratingToDoc(r *engine.Rating) *ratingDoc {
	if r == nil {
		return nil
	}
	return &ratingDoc{Score: r.Score, Comment: r.Comment, At: r.At}
}

func (d *ratingDoc) rating() *engine.Rating {
	if d == nil {
		return nil
	}
	return &engine.Rating{Score: d.Score, Comment: d.Comment, At: d.At.UTC()}
}

// messageDoc is a message. Its _id is made by the store, so the writer
// knows which documents it inserted. ClientMsgID is the client's id (a
// string) or, for a message without one, its seq (an int64): see doc.go.
// Body is the engine.Body as JSON, as store/sqlite keeps it.
type messageDoc struct {
	ID          bson.ObjectID `bson:"_id"`
	Tenant      string        `bson:"tenant"`
	Conv        string        `bson:"conv"`
	Seq         int64         `bson:"seq"`
	ClientMsgID any           `bson:"client_msg_id"`
	FromRole    string        `bson:"from_role"`
	FromID      string        `bson:"from_id"`
	BodyType    string        `bson:"body_type"`
	Body        string        `bson:"body"`
	CreatedAt   time.Time     `bson:"created_at"`
}

// readPointerDoc is one value a participant's read pointer has had. The
// pointer is the highest of them (see SetReadPointer).
type readPointerDoc struct {
	Tenant  string `bson:"tenant"`
	Conv    string `bson:"conv"`
	Role    string `bson:"role"`
	PartyID string `bson:"party_id"`
	Seq     int64  `bson:"seq"`
}

// settingDoc is a server setting; its key is the _id.
type settingDoc struct {
	Key   string `bson:"_id"`
	Value string `bson:"value"`
}

// index is one index Open creates.
type index struct {
	coll   string // the collection's name
	name   string
	keys   bson.D
	unique bool
}

func asc(field string) bson.E  { return bson.E{Key: field, Value: 1} }
func desc(field string) bson.E { return bson.E{Key: field, Value: -1} }

// indexes are every index the store needs besides _id, each named after
// what it is for. Every query of the adapter is served by one of them or by
// _id (tenants, settings, and the writer's deletes by _id); the comment of
// each query names its index.
var indexes = []index{
	// Total order per conversation; Messages, Recent, LastSeq.
	{"messages", "messages_by_seq",
		bson.D{asc("tenant"), asc("conv"), asc("seq")}, true},
	// No duplicates; MessageByClientID and the duplicate check.
	{"messages", "messages_by_client_id",
		bson.D{asc("tenant"), asc("conv"), asc("client_msg_id")}, true},
	// Conversation, and the existence checks of writes.
	{"conversations", "conversations_by_id",
		bson.D{asc("tenant"), asc("id")}, true},
	// ListConversations, newest first, optionally by user or state; each
	// ends in the sort order so a page never sorts in memory.
	{"conversations", "conversations_by_created",
		bson.D{asc("tenant"), desc("created_at"), desc("id")}, false},
	{"conversations", "conversations_by_user",
		bson.D{asc("tenant"), asc("user_id"), desc("created_at"), desc("id")}, false},
	{"conversations", "conversations_by_state",
		bson.D{asc("tenant"), asc("state"), desc("created_at"), desc("id")}, false},
	// ListConversations by owner or by group, with or without a state (an
	// agent's open conversations, a group's queue).
	{"conversations", "conversations_by_agent",
		bson.D{asc("tenant"), asc("agent_id"), desc("created_at"), desc("id")}, false},
	{"conversations", "conversations_by_agent_state",
		bson.D{asc("tenant"), asc("agent_id"), asc("state"), desc("created_at"), desc("id")}, false},
	{"conversations", "conversations_by_group",
		bson.D{asc("tenant"), asc("group_id"), desc("created_at"), desc("id")}, false},
	{"conversations", "conversations_by_group_state",
		bson.D{asc("tenant"), asc("group_id"), asc("state"), desc("created_at"), desc("id")}, false},
	// ListConversations by invitee: a multikey index, one key per element
	// of the invited array.
	{"conversations", "conversations_by_invited",
		bson.D{asc("tenant"), asc("invited"), desc("created_at"), desc("id")}, false},
	// SetReadPointer and ReadPointers: a participant's values, highest
	// first.
	{"read_pointers", "read_pointers_by_party",
		bson.D{asc("tenant"), asc("conv"), asc("role"), asc("party_id"), desc("seq")}, true},
	// CreateStaff's uniqueness; StaffByID; StaffByUsername and ListStaff.
	{"staff", "staff_by_id",
		bson.D{asc("tenant"), asc("id")}, true},
	{"staff", "staff_by_username",
		bson.D{asc("tenant"), asc("username")}, true},
	// Events, oldest first: _id is an ObjectID made by the conversation's
	// single writer, so it grows with each event.
	{"conv_events", "conv_events_by_conv",
		bson.D{asc("tenant"), asc("conv"), asc("_id")}, false},
	// FAQEntries, by id; PutFAQ's and DeleteFAQ's key.
	{"faq_entries", "faq_entries_by_id",
		bson.D{asc("tenant"), asc("id")}, true},
	// The JSON documents' keys: one lookup, or the tenant's by id.
	{"agent_profiles", "agent_profiles_by_id",
		bson.D{asc("tenant"), asc("id")}, true},
	{"skill_groups", "skill_groups_by_id",
		bson.D{asc("tenant"), asc("id")}, true},
	{"tenant_settings", "tenant_settings_by_tenant",
		bson.D{asc("tenant")}, true},
	{"customers", "customers_by_id",
		bson.D{asc("tenant"), asc("id")}, true},
	// AddNote's uniqueness; Notes, oldest first.
	{"notes", "notes_by_id",
		bson.D{asc("tenant"), asc("conv"), asc("id")}, true},
	{"notes", "notes_by_time",
		bson.D{asc("tenant"), asc("conv"), asc("created_at"), asc("id")}, false},
	// One timer of each kind per conversation (SetTimers goes by _id,
	// the same key); Timers. DueTimers reads every tenant's earliest, by
	// due_at first.
	{"timers", "timers_by_kind",
		bson.D{asc("tenant"), asc("conv"), asc("kind")}, true},
	{"timers", "timers_by_due",
		bson.D{asc("due_at"), asc("tenant"), asc("conv"), asc("kind")}, false},
	// A member of staff's sessions, by id; their login state.
	{"staff_sessions", "staff_sessions_by_id",
		bson.D{asc("tenant"), asc("staff_id"), asc("id")}, true},
	{"login_states", "login_states_by_staff",
		bson.D{asc("tenant"), asc("staff_id")}, true},
	{"tenant_credentials", "tenant_credentials_by_tenant",
		bson.D{asc("tenant")}, true},
	// AppendAudit's uniqueness; AuditLog, newest first, optionally by
	// action, actor or target, each ending in the sort order.
	{"audit_log", "audit_by_id",
		bson.D{asc("tenant"), asc("id")}, true},
	{"audit_log", "audit_by_time",
		bson.D{asc("tenant"), desc("at"), desc("id")}, false},
	{"audit_log", "audit_by_action",
		bson.D{asc("tenant"), asc("action"), desc("at"), desc("id")}, false},
	{"audit_log", "audit_by_actor",
		bson.D{asc("tenant"), asc("actor_id"), desc("at"), desc("id")}, false},
	{"audit_log", "audit_by_target",
		bson.D{asc("tenant"), asc("target"), desc("at"), desc("id")}, false},
	// One data key per tenant and version (the first writer wins);
	// DataKeys, AllDataKeys and RewrapDataKey.
	{"data_keys", "data_keys_by_version",
		bson.D{asc("tenant"), asc("version")}, true},
	// PutCanned's and DeleteCanned's key; a shortcut unique among the
	// tenant's (owner "") and among each owner's; CannedResponses, the
	// tenant's and one owner's, each by shortcut.
	{"canned_responses", "canned_by_id",
		bson.D{asc("tenant"), asc("id")}, true},
	{"canned_responses", "canned_by_shortcut",
		bson.D{asc("tenant"), asc("owner"), asc("shortcut")}, true},
}

// ensureIndexes creates every index of indexes that is missing. Creating
// an index that exists with the same keys and options does nothing; one
// that exists under the same name with other keys or options is an error,
// reported rather than dropped: an operator changed it on purpose, or an
// older build made it.
//
// One createIndexes command per index: FerretDB v1.24 panics (and drops the
// connection) on a createIndexes of several indexes that all exist already.
func ensureIndexes(ctx context.Context, db *mongo.Database) error {
	for _, ix := range indexes {
		opts := options.Index().SetName(ix.name)
		if ix.unique {
			opts.SetUnique(true)
		}
		if _, err := db.Collection(ix.coll).Indexes().CreateOne(ctx, mongo.IndexModel{Keys: ix.keys, Options: opts}); err != nil {
			return fmt.Errorf("mongo: create index %s of %s: %w", ix.name, ix.coll, err)
		}
	}
	return nil
}

// Filters shared by several queries.

func convFilter(tenant, conv string) bson.D {
	return bson.D{{Key: "tenant", Value: tenant}, {Key: "id", Value: conv}}
}

func msgFilter(tenant, conv string) bson.D {
	return bson.D{{Key: "tenant", Value: tenant}, {Key: "conv", Value: conv}}
}
