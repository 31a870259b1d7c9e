package engine

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Role says who a participant is in a conversation.
type Role string

// Participant roles.
const (
	RoleUser   Role = "user"   // the customer
	RoleAgent  Role = "agent"  // a human member of staff
	RoleBot    Role = "bot"    // the AI/FAQ bot
	RoleSystem Role = "system" // Kefu itself (state changes, notices)
)

// Party identifies one participant: a role and an id within the tenant.
type Party struct {
	Role Role   `json:"role"`
	ID   string `json:"id"`
}

func (p Party) String() string { return string(p.Role) + ":" + p.ID }

// BodyType is the kind of a message body. Protocol v1 accepts text from
// clients; the other kinds are reserved so clients can already render them.
type BodyType string

// Message body types.
const (
	BodyText       BodyType = "text"
	BodyImage      BodyType = "image"       // reserved
	BodyFile       BodyType = "file"        // reserved
	BodyCard       BodyType = "card"        // reserved
	BodyQuickReply BodyType = "quick_reply" // reserved
	BodySystem     BodyType = "system"      // written by Kefu only
)

// MaxTextRunes bounds a text body. A frame is also bounded in bytes by the
// edge's read limit; this bound is what a user can see and is documented.
const MaxTextRunes = 5000

// Body is a typed message body. Only the fields of its Type are set.
type Body struct {
	Type BodyType `json:"type"`
	Text string   `json:"text,omitempty"`
	// Options are the choices of a quick_reply body (the bot's "did you
	// mean"); tapping one sends its Text as an ordinary text message.
	Options []Option `json:"options,omitempty"`
}

// Option is one tappable choice of a quick_reply body.
type Option struct {
	ID   string `json:"id"`
	Text string `json:"text"`
}

// ValidateClientBody checks a body sent by a client: the type must be one
// clients may send in this protocol version and its fields well formed.
func ValidateClientBody(b Body) error {
	switch b.Type {
	case BodyText:
		if strings.TrimSpace(b.Text) == "" {
			return NewError(CodeMissingField, "body.text is empty")
		}
		if !utf8.ValidString(b.Text) {
			return NewError(CodeInvalidUTF8, "body.text is not valid UTF-8")
		}
		if n := utf8.RuneCountInString(b.Text); n > MaxTextRunes {
			return NewError(CodeBodyTooLarge, fmt.Sprintf("body.text has %d characters, the limit is %d", n, MaxTextRunes))
		}
		return nil
	case "":
		return NewError(CodeMissingField, "body.type is missing")
	case BodyImage, BodyFile, BodyCard, BodyQuickReply, BodySystem:
		return NewError(CodeUnsupportedBody, fmt.Sprintf("body type %q is reserved and not accepted from clients in protocol v1", b.Type))
	default:
		return NewError(CodeUnsupportedBody, fmt.Sprintf("unknown body type %q", b.Type))
	}
}

// Message is one stored message of a conversation. (Tenant, Conv, Seq) and
// (Tenant, Conv, ClientMsgID) are each unique.
type Message struct {
	Tenant      string    `json:"-"`
	Conv        string    `json:"conv"`
	Seq         int64     `json:"seq"`
	ClientMsgID string    `json:"client_msg_id"`
	From        Party     `json:"from"`
	Body        Body      `json:"body"`
	CreatedAt   time.Time `json:"-"`
}

// MarshalJSON writes CreatedAt as milliseconds since the epoch, the form the
// protocol uses for every timestamp.
func (m Message) MarshalJSON() ([]byte, error) {
	type wire Message
	return json.Marshal(struct {
		wire
		TS int64 `json:"ts"`
	}{wire(m), m.CreatedAt.UnixMilli()})
}

// UnmarshalJSON is the inverse of MarshalJSON.
func (m *Message) UnmarshalJSON(data []byte) error {
	type wire Message
	var v struct {
		wire
		TS int64 `json:"ts"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	*m = Message(v.wire)
	m.CreatedAt = time.UnixMilli(v.TS).UTC()
	return nil
}

// ConvState is the lifecycle state of a conversation.
type ConvState string

// Conversation states: BOT -> QUEUED -> ASSIGNED -> (ON_HOLD) -> CLOSED.
const (
	StateBot      ConvState = "BOT"
	StateQueued   ConvState = "QUEUED"
	StateAssigned ConvState = "ASSIGNED"
	StateOnHold   ConvState = "ON_HOLD"
	StateClosed   ConvState = "CLOSED"
)

// transitions lists, for each state, the states it may move to.
var transitions = map[ConvState][]ConvState{
	StateBot:      {StateQueued, StateAssigned, StateClosed},
	StateQueued:   {StateAssigned, StateBot, StateClosed},
	StateAssigned: {StateOnHold, StateQueued, StateAssigned, StateClosed},
	StateOnHold:   {StateAssigned, StateClosed},
	StateClosed:   {StateBot, StateQueued}, // reopen by the user
}

// CanTransition reports whether a conversation may move from one state to
// another. ASSIGNED -> ASSIGNED is a transfer to another agent.
func CanTransition(from, to ConvState) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Conversation is the stored header of a conversation.
type Conversation struct {
	Tenant  string    `json:"tenant"`
	ID      string    `json:"id"`
	UserID  string    `json:"user_id"`
	State   ConvState `json:"state"`
	AgentID string    `json:"agent_id,omitempty"` // the staff member who owns it, once a human took over
	// Invited are colleagues the owner invited: they see it and may reply.
	Invited []string `json:"invited,omitempty"`
	// Group and Priority are where routing queued it, QueuedAt since when.
	Group     string    `json:"group,omitempty"`
	Priority  int       `json:"priority,omitempty"`
	QueuedAt  time.Time `json:"queued_at,omitzero"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Rating is the customer's rating of its latest rated closure (see
	// RatedSinceClosed); nil until the customer rates it.
	Rating *Rating `json:"rating,omitempty"`
}

// EventType names a conversation lifecycle event.
type EventType string

// Lifecycle events. Every state change is recorded as one.
const (
	EventEscalated    EventType = "escalated"     // the bot or the user asked for a person: BOT -> QUEUED
	EventTakenOver    EventType = "taken_over"    // a member of staff replied or accepted: -> ASSIGNED
	EventAssigned     EventType = "assigned"      // routing gave it to an agent: QUEUED -> ASSIGNED
	EventTransferred  EventType = "transferred"   // to another agent (-> ASSIGNED) or group (-> QUEUED)
	EventInvited      EventType = "invited"       // a colleague joined
	EventHeld         EventType = "held"          // ASSIGNED -> ON_HOLD
	EventUnheld       EventType = "unheld"        // ON_HOLD -> ASSIGNED
	EventClosed       EventType = "closed"        // -> CLOSED, by staff, the user or a timer
	EventReopened     EventType = "reopened"      // CLOSED -> QUEUED or BOT, by the user
	EventRequeued     EventType = "requeued"      // back to the queue (SLA breach, agent unavailable)
	EventSLAWarned    EventType = "sla_warned"    // the agent has not answered in time
	EventSLABreached  EventType = "sla_breached"  // supervisors were alerted
	EventNoReply      EventType = "no_reply"      // the agent was reminded of an unanswered customer
	EventIdleWarned   EventType = "idle_warned"   // the customer was warned of the auto-close
	EventQueueTimeout EventType = "queue_timeout" // the customer was offered to leave a message
	EventUnavailable  EventType = "unavailable"   // nobody online or outside business hours
	EventRated        EventType = "rated"         // the customer rated the closed conversation: CLOSED -> CLOSED
)

// ConvEvent is one stored lifecycle event of a conversation. Reports are
// computed from these.
type ConvEvent struct {
	Tenant string    `json:"-"`
	Conv   string    `json:"conv"`
	Type   EventType `json:"type"`
	From   ConvState `json:"from"`
	To     ConvState `json:"to"`
	By     Party     `json:"by"`
	Reason string    `json:"reason,omitempty"`
	Agent  string    `json:"agent,omitempty"` // the agent assigned, transferred or invited to
	Group  string    `json:"group,omitempty"` // the group queued or transferred to
	// Note is a transfer's or invitation's note, the hand-over summary of
	// an escalation, or a rating's comment.
	Note  string    `json:"note,omitempty"`
	Score int       `json:"score,omitempty"` // a rating's score, 1-5
	At    time.Time `json:"at"`
}

// ReadPointer is how far one participant has read a conversation.
type ReadPointer struct {
	Party Party `json:"by"`
	Seq   int64 `json:"seq"`
}
