package kb

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on one entry. They keep a bad import from building a huge index
// and keep answers readable in a chat bubble.
const (
	MaxIDLen       = 64
	MaxQuestionLen = 200  // runes, for the question and each similar question
	MaxAnswerLen   = 5000 // runes; the same bound as a chat message
	MaxSimilar     = 50
	MaxTags        = 20
	MaxTagLen      = 32 // runes
)

// Sentinel errors. Errors returned by Validate, Build and the parsers wrap
// one of them, so callers can tell bad input from I/O failures.
var (
	// ErrInvalid: an entry breaks a rule (missing field, too long, bad id).
	ErrInvalid = errors.New("kb: invalid entry")
	// ErrDuplicate: two entries share an id.
	ErrDuplicate = errors.New("kb: duplicate entry id")
	// ErrFormat: the input is not well-formed JSON or CSV of the expected shape.
	ErrFormat = errors.New("kb: malformed input")
)

// Entry is one FAQ item of a tenant's knowledge base. The JSON names are the
// import/export format and the shape of faq-demo.json.
type Entry struct {
	ID        string    `json:"id"`
	Category  string    `json:"category,omitempty"`
	Question  string    `json:"question"`          // the standard question shown to users
	Similar   []string  `json:"similar,omitempty"` // other phrasings that mean the same
	Answer    string    `json:"answer"`
	Tags      []string  `json:"tags,omitempty"` // short keywords; indexed like questions
	Enabled   bool      `json:"enabled"`        // disabled entries are kept but never retrieved
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	Version   int64     `json:"version,omitempty"` // bumped by the store on every change
}

// UnmarshalJSON decodes an entry, treating an absent "enabled" as true: a
// hand-written import file lists the entries it wants, not switches.
func (e *Entry) UnmarshalJSON(data []byte) error {
	type plain Entry
	var v struct {
		plain
		Enabled *bool `json:"enabled"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	*e = Entry(v.plain)
	e.Enabled = v.Enabled == nil || *v.Enabled
	return nil
}

// Validate checks e against the rules above. The error wraps ErrInvalid and
// names the entry and the field.
func (e *Entry) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w %q: %s", ErrInvalid, e.ID, fmt.Sprintf(format, args...))
	}
	switch {
	case e.ID == "":
		return fmt.Errorf("%w: id is empty", ErrInvalid)
	case len(e.ID) > MaxIDLen || !printableID(e.ID):
		return bad("id must be 1-%d printable characters without spaces", MaxIDLen)
	}
	if strings.TrimSpace(e.Question) == "" {
		return bad("question is empty")
	}
	if strings.TrimSpace(e.Answer) == "" {
		return bad("answer is empty")
	}
	if !utf8.ValidString(e.Question) || !utf8.ValidString(e.Answer) || !utf8.ValidString(e.Category) {
		return bad("text is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(e.Question); n > MaxQuestionLen {
		return bad("question has %d characters, the limit is %d", n, MaxQuestionLen)
	}
	if n := utf8.RuneCountInString(e.Answer); n > MaxAnswerLen {
		return bad("answer has %d characters, the limit is %d", n, MaxAnswerLen)
	}
	if len(e.Similar) > MaxSimilar {
		return bad("%d similar questions, the limit is %d", len(e.Similar), MaxSimilar)
	}
	for i, s := range e.Similar {
		if strings.TrimSpace(s) == "" || !utf8.ValidString(s) || utf8.RuneCountInString(s) > MaxQuestionLen || strings.Contains(s, "|") {
			return bad("similar[%d] is empty, not UTF-8, contains '|' (the CSV list separator) or is longer than %d characters", i, MaxQuestionLen)
		}
	}
	if len(e.Tags) > MaxTags {
		return bad("%d tags, the limit is %d", len(e.Tags), MaxTags)
	}
	for i, t := range e.Tags {
		if strings.TrimSpace(t) == "" || !utf8.ValidString(t) || utf8.RuneCountInString(t) > MaxTagLen || strings.Contains(t, "|") {
			return bad("tags[%d] is empty, not UTF-8, contains '|' or is longer than %d characters", i, MaxTagLen)
		}
	}
	if e.Version < 0 {
		return bad("version is negative")
	}
	return nil
}

// printableID allows any visible character but no whitespace or control
// characters: FAQ ids come from merchants' spreadsheets ("faq-001", "退货-3").
func printableID(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r == 0x3000 || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}

// ValidateAll validates every entry and checks that ids are unique. It
// reports the first problem.
func ValidateAll(entries []Entry) error {
	seen := make(map[string]struct{}, len(entries))
	for i := range entries {
		if err := entries[i].Validate(); err != nil {
			return err
		}
		if _, dup := seen[entries[i].ID]; dup {
			return fmt.Errorf("%w: %q", ErrDuplicate, entries[i].ID)
		}
		seen[entries[i].ID] = struct{}{}
	}
	return nil
}
