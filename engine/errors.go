package engine

import (
	"errors"
	"fmt"
)

// Code is a client-facing error code. Every code is listed in
// docs/protocol.md; clients switch on the code, never on the message.
type Code string

// Client-facing error codes.
const (
	CodeBadFrame        Code = "bad_frame"        // not a JSON object
	CodeInvalidUTF8     Code = "invalid_utf8"     // text that is not UTF-8
	CodeFrameTooLarge   Code = "frame_too_large"  // over the read limit
	CodeUnknownType     Code = "unknown_type"     // a frame type this version does not know
	CodeMissingField    Code = "missing_field"    // a required field is absent or empty
	CodeInvalidField    Code = "invalid_field"    // a field has the wrong shape
	CodeUnsupportedBody Code = "unsupported_body" // a body type clients may not send
	CodeBodyTooLarge    Code = "body_too_large"   // text over MaxTextRunes
	CodeVersion         Code = "unsupported_version"
	CodeUnauthenticated Code = "unauthenticated" // no, bad or expired token
	CodeForbidden       Code = "forbidden"       // authenticated but not allowed
	CodeNotFound        Code = "not_found"       // no such conversation in the caller's tenant
	CodeRateLimited     Code = "rate_limited"    // too many frames; this one was dropped
	CodeSeqAhead        Code = "seq_ahead"       // resume from a last_seq the server never assigned
	CodeConvClosed      Code = "conversation_closed"
	CodeSlowConsumer    Code = "slow_consumer" // the client did not read fast enough
	CodeUnavailable     Code = "unavailable"   // try again: the cluster could not answer in time
	CodeInternal        Code = "internal"
	// Human takeover.
	CodeInvalidState     Code = "invalid_state"     // the operation does not apply in the conversation's state
	CodeAtCapacity       Code = "at_capacity"       // the agent holds as many conversations as they may
	CodeAgentUnavailable Code = "agent_unavailable" // the agent is offline, away or does not exist
	CodeReopenExpired    Code = "reopen_expired"    // closed longer ago than the reopen window
	// Sign-in.
	CodeAccountLocked Code = "account_locked" // too many failed logins: the account refuses logins for a while
)

// Error is an error a client may see: a stable code and a human message.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// NewError returns a client-facing error.
func NewError(code Code, msg string) *Error { return &Error{Code: code, Message: msg} }

// Errorf returns a client-facing error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the client-facing code of err: its own if it is (or wraps)
// an *Error, the code of a known sentinel, or CodeInternal.
func CodeOf(err error) Code {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	case errors.Is(err, ErrNotFound):
		return CodeNotFound
	default:
		return CodeInternal
	}
}

// Sentinel errors returned by ports.
var (
	// ErrNotFound: the record does not exist in the given tenant.
	ErrNotFound = errors.New("engine: not found")
	// ErrSeqConflict: a message with this (conv, seq) is already stored,
	// written by a racing activation of the same conversation.
	ErrSeqConflict = errors.New("engine: seq conflict")
	// ErrExists: a record with this key already exists.
	ErrExists = errors.New("engine: already exists")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("engine: store closed")
)
