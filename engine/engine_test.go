package engine

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestNewIDIsSortableAndUnique(t *testing.T) {
	seen := map[string]bool{}
	prev := ""
	base := time.UnixMilli(1_700_000_000_000)
	for i := range 1000 {
		id := NewID(base.Add(time.Duration(i) * time.Millisecond))
		if len(id) != 26 || !ValidID(id) {
			t.Fatalf("id %q has the wrong shape", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		if id <= prev {
			t.Fatalf("ids not ordered by time: %q after %q", id, prev)
		}
		seen[id], prev = true, id
	}
}

func TestValidID(t *testing.T) {
	for s, want := range map[string]bool{
		"demo": true, "01HX-abc_9.z": true, "": false, "a b": false, "$ne": false, "a/b": false,
		"这是": false, string(make([]byte, 65)): false,
	} {
		if got := ValidID(s); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestTransitions(t *testing.T) {
	states := []ConvState{StateBot, StateQueued, StateAssigned, StateOnHold, StateClosed}
	allowed := map[[2]ConvState]bool{
		{StateBot, StateQueued}: true, {StateBot, StateAssigned}: true, {StateBot, StateClosed}: true,
		{StateQueued, StateAssigned}: true, {StateQueued, StateBot}: true, {StateQueued, StateClosed}: true,
		{StateAssigned, StateOnHold}: true, {StateAssigned, StateQueued}: true, {StateAssigned, StateAssigned}: true, {StateAssigned, StateClosed}: true,
		{StateOnHold, StateAssigned}: true, {StateOnHold, StateClosed}: true,
		{StateClosed, StateBot}: true, {StateClosed, StateQueued}: true,
	}
	for _, from := range states {
		for _, to := range states {
			if got := CanTransition(from, to); got != allowed[[2]ConvState{from, to}] {
				t.Errorf("CanTransition(%s, %s) = %v", from, to, got)
			}
		}
	}
}

func TestCodeOf(t *testing.T) {
	if CodeOf(nil) != "" {
		t.Error("nil error has a code")
	}
	if got := CodeOf(fmt.Errorf("wrap: %w", NewError(CodeSeqAhead, "x"))); got != CodeSeqAhead {
		t.Errorf("wrapped *Error: %q", got)
	}
	if got := CodeOf(fmt.Errorf("wrap: %w", ErrNotFound)); got != CodeNotFound {
		t.Errorf("ErrNotFound: %q", got)
	}
	if got := CodeOf(errors.New("disk on fire")); got != CodeInternal {
		t.Errorf("plain error: %q", got)
	}
}

func TestNewRating(t *testing.T) {
	at := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	r, err := NewRating(4, "  客服很耐心 \n", at)
	if err != nil || r.Score != 4 || r.Comment != "客服很耐心" || !r.At.Equal(at) {
		t.Fatalf("NewRating = %+v, %v", r, err)
	}
	for _, tc := range []struct {
		score   int
		comment string
		code    Code
	}{
		{0, "", CodeInvalidField}, {6, "", CodeInvalidField}, {-3, "", CodeInvalidField},
		{1, strings.Repeat("差", MaxRatingComment+1), CodeBodyTooLarge},
		{5, strings.Repeat("好", MaxRatingComment), ""}, {5, "", ""}, {2, "bad \xff", CodeInvalidUTF8},
	} {
		if _, err := NewRating(tc.score, tc.comment, at); CodeOf(err) != tc.code {
			t.Errorf("NewRating(%d, %d characters) = %v, want %q", tc.score, len([]rune(tc.comment)), err, tc.code)
		}
	}
}

func TestRatedSinceClosed(t *testing.T) {
	closed := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	rating := func(at time.Time) *Rating { return &Rating{Score: 5, At: at} }
	for _, tc := range []struct {
		name string
		c    Conversation
		want bool
	}{
		{"closed, never rated", Conversation{State: StateClosed, UpdatedAt: closed}, false},
		{"rated after the closure", Conversation{State: StateClosed, UpdatedAt: closed, Rating: rating(closed.Add(time.Second))}, true},
		{"rated in the closure's millisecond", Conversation{State: StateClosed, UpdatedAt: closed, Rating: rating(closed)}, true},
		{"rated before a later closure", Conversation{State: StateClosed, UpdatedAt: closed, Rating: rating(closed.Add(-time.Millisecond))}, false},
		{"reopened after a rating", Conversation{State: StateQueued, UpdatedAt: closed, Rating: rating(closed.Add(time.Second))}, false},
	} {
		if got := tc.c.RatedSinceClosed(); got != tc.want {
			t.Errorf("%s: RatedSinceClosed = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestCannedResponseValidate(t *testing.T) {
	ok := CannedResponse{Scope: CannedTenant, Shortcut: "退款-2_b", Title: "退款", Text: "退款将在 1-3 个工作日内原路退回。"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid response refused: %v", err)
	}
	personal := ok
	personal.Scope, personal.Owner = CannedPersonal, "01JD3R0A2B3C4D5E6F7G8H9J0K"
	if err := personal.Validate(); err != nil {
		t.Fatalf("valid personal response refused: %v", err)
	}
	n := CannedResponse{Shortcut: " hi\t", Title: " 问候 ", Text: "\n您好！\n"}.Normalize()
	if n.Shortcut != "hi" || n.Title != "问候" || n.Text != "您好！" {
		t.Fatalf("Normalize = %+v", n)
	}
	for name, change := range map[string]func(*CannedResponse){
		"no scope":                 func(c *CannedResponse) { c.Scope = "" },
		"unknown scope":            func(c *CannedResponse) { c.Scope = "global" },
		"tenant with an owner":     func(c *CannedResponse) { c.Owner = "a1" },
		"personal without owner":   func(c *CannedResponse) { c.Scope = CannedPersonal },
		"owner not an id":          func(c *CannedResponse) { c.Scope, c.Owner = CannedPersonal, "$ne" },
		"empty shortcut":           func(c *CannedResponse) { c.Shortcut = "" },
		"shortcut with a space":    func(c *CannedResponse) { c.Shortcut = "hi there" },
		"shortcut with a slash":    func(c *CannedResponse) { c.Shortcut = "a/b" },
		"shortcut with full stop":  func(c *CannedResponse) { c.Shortcut = "hi." },
		"shortcut too long":        func(c *CannedResponse) { c.Shortcut = strings.Repeat("快", MaxCannedShortcut+1) },
		"title too long":           func(c *CannedResponse) { c.Title = strings.Repeat("题", MaxCannedTitle+1) },
		"blank text":               func(c *CannedResponse) { c.Text = " \n " },
		"text too long":            func(c *CannedResponse) { c.Text = strings.Repeat("字", MaxCannedText+1) },
		"shortcut not UTF-8":       func(c *CannedResponse) { c.Shortcut = "a\xff" },
		"ideographic space inside": func(c *CannedResponse) { c.Shortcut = "你\u3000好" },
	} {
		c := ok
		change(&c)
		if err := c.Validate(); CodeOf(err) != CodeInvalidField && CodeOf(err) != CodeInvalidUTF8 {
			t.Errorf("%s: Validate = %v, want invalid_field", name, err)
		}
	}
	if !ValidShortcut(strings.Repeat("快", MaxCannedShortcut)) || !ValidShortcut("A9") {
		t.Error("ValidShortcut refuses a valid shortcut")
	}
}
