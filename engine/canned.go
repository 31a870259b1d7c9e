package engine

import (
	"context"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// CannedScope says who sees a canned response.
type CannedScope string

// Canned response scopes.
const (
	CannedTenant   CannedScope = "tenant"   // every member of staff of the tenant
	CannedPersonal CannedScope = "personal" // its owner only
)

// Bounds of a canned response, in characters.
const (
	MaxCannedShortcut = 32
	MaxCannedTitle    = 100
	MaxCannedText     = 2000
)

// CannedResponse is a quick reply staff insert into a chat by its
// shortcut: shared by the tenant or personal to one member of staff. A
// shortcut is unique within what one member of staff sees in its scope:
// the tenant's shortcuts among the tenant's, a personal one among its
// owner's. Canned texts are the merchant's words, not customers': they are
// stored in clear, like the knowledge base.
type CannedResponse struct {
	Tenant    string      `json:"-"`
	ID        string      `json:"id"`
	Scope     CannedScope `json:"scope"`
	Owner     string      `json:"owner"` // the staff id of a personal one; empty for the tenant's
	Shortcut  string      `json:"shortcut"`
	Title     string      `json:"title"`
	Text      string      `json:"text"`
	UpdatedAt time.Time   `json:"updated_at"`
}

// Normalize trims the white space around the shortcut, title and text.
func (c CannedResponse) Normalize() CannedResponse {
	c.Shortcut, c.Title, c.Text = strings.TrimSpace(c.Shortcut), strings.TrimSpace(c.Title), strings.TrimSpace(c.Text)
	return c
}

// Validate checks the scope, the owner and the bounds of the fields; call
// it on a normalized response.
func (c CannedResponse) Validate() error {
	switch {
	case c.Scope != CannedTenant && c.Scope != CannedPersonal:
		return NewError(CodeInvalidField, "scope must be tenant or personal")
	case (c.Scope == CannedPersonal) != (c.Owner != ""), c.Owner != "" && !ValidID(c.Owner):
		return NewError(CodeInvalidField, "a personal canned response has its owner's id, a tenant one none")
	case !ValidShortcut(c.Shortcut):
		return Errorf(CodeInvalidField, "shortcut must be 1-%d letters, digits, '-' or '_', without white space", MaxCannedShortcut)
	case !utf8.ValidString(c.Title) || !utf8.ValidString(c.Text):
		return NewError(CodeInvalidUTF8, "title and text must be valid UTF-8")
	case utf8.RuneCountInString(c.Title) > MaxCannedTitle:
		return Errorf(CodeInvalidField, "title has %d characters, the limit is %d", utf8.RuneCountInString(c.Title), MaxCannedTitle)
	case strings.TrimSpace(c.Text) == "":
		return NewError(CodeInvalidField, "text is empty")
	case utf8.RuneCountInString(c.Text) > MaxCannedText:
		return Errorf(CodeInvalidField, "text has %d characters, the limit is %d", utf8.RuneCountInString(c.Text), MaxCannedText)
	}
	return nil
}

// ValidShortcut reports whether s is 1 to MaxCannedShortcut characters,
// each a letter of any script (Chinese included), a digit, '-' or '_'.
func ValidShortcut(s string) bool {
	n := 0
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '-' && r != '_' {
			return false
		}
		n++
	}
	return n >= 1 && n <= MaxCannedShortcut
}

// CannedStore keeps canned responses.
type CannedStore interface {
	// PutCanned creates or replaces a canned response by id, as given:
	// the caller sets UpdatedAt. An unknown tenant is ErrNotFound; a
	// shortcut another response of the same owner (the tenant's: none)
	// has is ErrExists, and nothing is stored.
	PutCanned(ctx context.Context, c CannedResponse) error
	// DeleteCanned removes one (ErrNotFound if it does not exist).
	DeleteCanned(ctx context.Context, tenant, id string) error
	// CannedResponses returns the tenant's own responses and the personal
	// ones of owner (none but the tenant's for an empty owner), the
	// tenant's first, each by shortcut.
	CannedResponses(ctx context.Context, tenant, owner string) ([]CannedResponse, error)
}
