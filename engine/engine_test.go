package engine

import (
	"errors"
	"fmt"
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
