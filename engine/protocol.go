package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"time"
	"unicode/utf8"
)

// ProtocolVersion is the client protocol version this build speaks.
const ProtocolVersion = 1

// Client frame types.
const (
	FrameHello  = "hello"  // authenticate: {v, token}
	FrameSend   = "send"   // {conv, client_msg_id, body}
	FrameResume = "resume" // {conv, last_seq, limit}: subscribe and page history
	FrameLeave  = "leave"  // {conv}: stop receiving pushes for conv
	FrameTyping = "typing" // {conv, on}
	FrameRead   = "read"   // {conv, seq}
	FramePing   = "ping"   // {}
	// FrameEscalate is the customer's "talk to a person": {conv}.
	FrameEscalate = "escalate"
	// Human takeover: answered with a done frame (or an error).
	FrameAccept   = "accept"   // staff: {conv}
	FrameTransfer = "transfer" // staff: {conv, agent_id | group, note}
	FrameInvite   = "invite"   // staff: {conv, agent_id, note}
	FrameHold     = "hold"     // staff: {conv}
	FrameUnhold   = "unhold"   // staff: {conv}
	FrameClose    = "close"    // staff or the customer: {conv, reason}
	FrameReopen   = "reopen"   // the customer or staff: {conv}
	FrameNote     = "note"     // staff: {conv, text}; also pushed to staff
	FramePresence = "presence" // staff: {status: online | away}
	// FrameRate is the customer's rating of a closed conversation:
	// {conv, score, comment}; answered with a done frame.
	FrameRate = "rate"
)

// Server frame types.
const (
	FrameWelcome  = "welcome"
	FrameAck      = "ack"
	FrameMessage  = "message"
	FrameHistory  = "history"
	FrameError    = "error"
	FramePong     = "pong"
	FrameState    = "state"     // a lifecycle change of a conversation
	FrameBotDelta = "bot_delta" // a piece of a bot answer being generated
	FrameDone     = "done"      // a lifecycle operation or note succeeded
	FrameQueue    = "queue"     // a waiting conversation's position and estimated wait
	FrameAgent    = "agent"     // staff: your own presence, load and conversations
	FrameNotice   = "notice"    // staff: an assignment, invitation, warning or alert
	FrameRated    = "rated"     // the customer rated the conversation
	// FrameTyping and FrameRead are also pushed to the other participants.
)

// MaxClientMsgIDLen bounds client_msg_id.
const MaxClientMsgIDLen = 64

// MaxHistoryPage is the largest page a resume may ask for; DefaultHistoryPage
// is used when it asks for none.
const (
	MaxHistoryPage     = 200
	DefaultHistoryPage = 50
)

// ClientFrame is a decoded, validated frame from a client. Only the fields
// of its Type are meaningful.
type ClientFrame struct {
	Type        string `json:"type"`
	ID          string `json:"id,omitempty"` // optional request id, echoed in replies
	V           int    `json:"v,omitempty"`
	Token       string `json:"token,omitempty"`
	Conv        string `json:"conv,omitempty"`
	ClientMsgID string `json:"client_msg_id,omitempty"`
	Body        *Body  `json:"body,omitempty"`
	LastSeq     *int64 `json:"last_seq,omitempty"`
	Limit       int    `json:"limit,omitempty"`
	Seq         int64  `json:"seq,omitempty"`
	On          bool   `json:"on,omitempty"`
	AgentID     string `json:"agent_id,omitempty"`
	Group       string `json:"group,omitempty"`
	Note        string `json:"note,omitempty"`
	Reason      string `json:"reason,omitempty"`
	Text        string `json:"text,omitempty"`
	Status      string `json:"status,omitempty"`
	Score       int    `json:"score,omitempty"`
	Comment     string `json:"comment,omitempty"`
}

// Bounds of takeover fields.
const (
	MaxNoteRunes   = 2000
	MaxReasonRunes = 200
)

// DecodeClientFrame parses and validates one client frame. The error is
// always an *Error with the code the client will see. Unknown fields are
// ignored so newer clients can talk to older servers.
func DecodeClientFrame(data []byte) (ClientFrame, error) {
	var f ClientFrame
	if !utf8.Valid(data) {
		return f, NewError(CodeInvalidUTF8, "frame is not valid UTF-8")
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return f, NewError(CodeBadFrame, "frame must be a JSON object")
	}
	if err := json.Unmarshal(data, &f); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return ClientFrame{Type: f.Type, ID: f.ID}, Errorf(CodeInvalidField, "field %q has the wrong type", typeErr.Field)
		}
		return ClientFrame{}, NewError(CodeBadFrame, "frame is not valid JSON")
	}
	if len(f.ID) > 64 {
		f.ID = "" // not echoed: an error frame stays small
		return f, NewError(CodeInvalidField, "id is longer than 64 bytes")
	}
	return f, f.validate()
}

// Validate checks a frame built from another transport (a REST request
// naming the same operation) exactly as a decoded one.
func (f *ClientFrame) Validate() error { return f.validate() }

func (f *ClientFrame) validate() error {
	switch f.Type {
	case "":
		return NewError(CodeMissingField, "type is missing")
	case FrameHello:
		if f.V != ProtocolVersion {
			return Errorf(CodeVersion, "protocol version %d is not supported; this server speaks v%d", f.V, ProtocolVersion)
		}
		if f.Token == "" {
			return NewError(CodeMissingField, "token is missing")
		}
		return nil
	case FrameSend:
		if err := f.requireConv(); err != nil {
			return err
		}
		if f.ClientMsgID == "" {
			return NewError(CodeMissingField, "client_msg_id is missing")
		}
		if len(f.ClientMsgID) > MaxClientMsgIDLen || strings.ContainsFunc(f.ClientMsgID, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
			return Errorf(CodeInvalidField, "client_msg_id must be 1-%d printable ASCII characters", MaxClientMsgIDLen)
		}
		if f.Body == nil {
			return NewError(CodeMissingField, "body is missing")
		}
		return ValidateClientBody(*f.Body)
	case FrameResume:
		if err := f.requireConv(); err != nil {
			return err
		}
		if f.LastSeq != nil && *f.LastSeq < 0 {
			return NewError(CodeInvalidField, "last_seq must not be negative")
		}
		if f.Limit < 0 || f.Limit > MaxHistoryPage {
			return Errorf(CodeInvalidField, "limit must be between 1 and %d", MaxHistoryPage)
		}
		return nil
	case FrameLeave, FrameTyping, FrameEscalate, FrameAccept, FrameHold, FrameUnhold, FrameReopen:
		return f.requireConv()
	case FrameTransfer, FrameInvite:
		if err := f.requireConv(); err != nil {
			return err
		}
		switch {
		case f.Type == FrameTransfer && (f.AgentID == "") == (f.Group == ""):
			return NewError(CodeMissingField, "transfer needs exactly one of agent_id and group")
		case f.Type == FrameInvite && f.AgentID == "":
			return NewError(CodeMissingField, "agent_id is missing")
		case f.AgentID != "" && !ValidID(f.AgentID), f.Group != "" && !ValidID(f.Group):
			return NewError(CodeInvalidField, "agent_id or group is not a valid id")
		}
		return checkText("note", f.Note, MaxNoteRunes, false)
	case FrameClose:
		if err := f.requireConv(); err != nil {
			return err
		}
		return checkText("reason", f.Reason, MaxReasonRunes, false)
	case FrameNote:
		if err := f.requireConv(); err != nil {
			return err
		}
		return checkText("text", f.Text, MaxNoteRunes, true)
	case FrameRate:
		if err := f.requireConv(); err != nil {
			return err
		}
		_, err := NewRating(f.Score, f.Comment, time.Time{})
		return err
	case FramePresence:
		if f.Status != "online" && f.Status != "away" {
			return NewError(CodeInvalidField, "status must be online or away")
		}
		return nil
	case FrameRead:
		if err := f.requireConv(); err != nil {
			return err
		}
		if f.Seq < 1 {
			return NewError(CodeInvalidField, "seq must be at least 1")
		}
		return nil
	case FramePing:
		return nil
	default:
		return Errorf(CodeUnknownType, "unknown frame type %q", truncate(f.Type, 32))
	}
}

// checkText bounds a free-text field; required ones must not be blank.
func checkText(name, s string, max int, required bool) error {
	if required && strings.TrimSpace(s) == "" {
		return Errorf(CodeMissingField, "%s is empty", name)
	}
	if n := utf8.RuneCountInString(s); n > max {
		return Errorf(CodeBodyTooLarge, "%s has %d characters, the limit is %d", name, n, max)
	}
	return nil
}

func (f *ClientFrame) requireConv() error {
	if f.Conv == "" {
		return NewError(CodeMissingField, "conv is missing")
	}
	if !ValidID(f.Conv) {
		return NewError(CodeInvalidField, "conv is not a valid id")
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// Server frames. Each is marshalled as one JSON text frame.

// WelcomeFrame answers a successful hello.
type WelcomeFrame struct {
	Type       string `json:"type"`
	V          int    `json:"v"`
	Session    string `json:"session"`
	Tenant     string `json:"tenant"`
	You        Party  `json:"you"`
	ServerTime int64  `json:"server_time"`
	MaxFrame   int    `json:"max_frame"`
	RatePerSec int    `json:"rate_per_sec"`
}

// AckFrame confirms that a sent message is durably stored under Seq. Dup is
// true when the client_msg_id had been stored before (a resend).
type AckFrame struct {
	Type        string `json:"type"`
	Conv        string `json:"conv"`
	ClientMsgID string `json:"client_msg_id"`
	Seq         int64  `json:"seq"`
	TS          int64  `json:"ts"`
	Dup         bool   `json:"dup,omitempty"`
}

// MessageFrame pushes a stored message to a subscribed session.
type MessageFrame struct {
	Type string  `json:"type"`
	Conv string  `json:"conv"`
	Msg  Message `json:"msg"`
}

// HistoryFrame is one page of a resume. More is true when messages after
// this page exist; the client asks again with the last seq it received.
// Live pushes for Conv start only after a page with More false.
type HistoryFrame struct {
	Type     string        `json:"type"`
	ID       string        `json:"id,omitempty"`
	Conv     string        `json:"conv"`
	Messages []Message     `json:"messages"`
	More     bool          `json:"more"`
	LastSeq  int64         `json:"last_seq"`
	State    ConvState     `json:"state"`
	Read     []ReadPointer `json:"read"`
}

// TypingFrame tells the other participants someone is typing.
type TypingFrame struct {
	Type string `json:"type"`
	Conv string `json:"conv"`
	From Party  `json:"from"`
	On   bool   `json:"on"`
}

// ReadFrame tells participants how far someone has read.
type ReadFrame struct {
	Type string `json:"type"`
	Conv string `json:"conv"`
	By   Party  `json:"by"`
	Seq  int64  `json:"seq"`
}

// ErrorFrame reports a failed request. ID, Conv and ClientMsgID echo the
// request it answers, when known.
type ErrorFrame struct {
	Type        string `json:"type"`
	ID          string `json:"id,omitempty"`
	Code        Code   `json:"code"`
	Message     string `json:"message"`
	Conv        string `json:"conv,omitempty"`
	ClientMsgID string `json:"client_msg_id,omitempty"`
}

// StateFrame announces a lifecycle change: the new state, the agent who
// owns the conversation (if any), who caused it and why. Summary is the
// bot's hand-over summary, on an escalation only.
type StateFrame struct {
	Type    string    `json:"type"`
	Conv    string    `json:"conv"`
	State   ConvState `json:"state"`
	AgentID string    `json:"agent_id,omitempty"`
	By      Party     `json:"by"`
	Reason  string    `json:"reason,omitempty"`
	Group   string    `json:"group,omitempty"`
	Invited []string  `json:"invited,omitempty"`
	Summary string    `json:"summary,omitempty"`
}

// DoneFrame confirms a lifecycle operation, a note or a rating; ID echoes
// the request.
type DoneFrame struct {
	Type   string    `json:"type"`
	ID     string    `json:"id,omitempty"`
	Op     string    `json:"op"`
	Conv   string    `json:"conv"`
	State  ConvState `json:"state,omitempty"`
	Note   *Note     `json:"note,omitempty"`
	Rating *Rating   `json:"rating,omitempty"`
}

// RatedFrame tells the sessions following a conversation that its
// customer rated it.
type RatedFrame struct {
	Type   string `json:"type"`
	Conv   string `json:"conv"`
	Rating Rating `json:"rating"`
}

// QueueFrame tells a waiting conversation's participants where it stands.
// EtaMs is -1 when nobody can serve it now; Available is false then, with
// Reason no_agent_online or outside_business_hours.
type QueueFrame struct {
	Type      string `json:"type"`
	Conv      string `json:"conv"`
	Group     string `json:"group"`
	Position  int    `json:"position"`
	EtaMs     int64  `json:"eta_ms"`
	Available bool   `json:"available"`
	Reason    string `json:"reason,omitempty"`
}

// NoteFrame pushes a private note to staff.
type NoteFrame struct {
	Type string `json:"type"`
	Conv string `json:"conv"`
	Note Note   `json:"note"`
}

// AgentFrame tells a member of staff their own live state.
type AgentFrame struct {
	Type     string   `json:"type"`
	Presence string   `json:"presence"`
	Capacity int      `json:"capacity"`
	Load     int      `json:"load"`
	Convs    []string `json:"convs"`
}

// NoticeFrame tells staff something that needs their attention: kind is
// assigned, transferred, invited, sla_warning, no_reply, hold_expired,
// rated (the owner's conversation was rated), sla_breached and
// account_locked (supervisors), or the event that took a conversation
// away.
type NoticeFrame struct {
	Type string `json:"type"`
	Kind string `json:"kind"`
	Conv string `json:"conv"`
	Text string `json:"text,omitempty"`
	// AgentID is the agent concerned (for supervisors' alerts).
	AgentID string `json:"agent_id,omitempty"`
}

// BotDeltaFrame carries a piece of a bot answer while it is generated. The
// pieces are not stored; the complete answer follows as a message.
type BotDeltaFrame struct {
	Type string `json:"type"`
	Conv string `json:"conv"`
	Text string `json:"text"`
}

// PongFrame answers a ping.
type PongFrame struct {
	Type       string `json:"type"`
	ID         string `json:"id,omitempty"`
	ServerTime int64  `json:"server_time"`
}
