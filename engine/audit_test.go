package engine

import (
	"strings"
	"testing"
)

func TestAuditEntryValidate(t *testing.T) {
	ok := AuditEntry{Tenant: "t1", ID: "x", Action: AuditConfigChanged, Actor: Party{Role: RoleAgent, ID: "a1"},
		IP: "127.0.0.1", Target: "group/vip", Detail: "put, policy least_load"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid entry refused: %v", err)
	}
	for name, change := range map[string]func(*AuditEntry){
		"unknown action":        func(e *AuditEntry) { e.Action = "deleted_everything" },
		"empty action":          func(e *AuditEntry) { e.Action = "" },
		"target with a space":   func(e *AuditEntry) { e.Target = "group/v ip" },
		"target of three parts": func(e *AuditEntry) { e.Target = "group/vip/x" },
		"target with no id":     func(e *AuditEntry) { e.Target = "group/" },
		"operator as actor":     func(e *AuditEntry) { e.Actor.ID = `{"$ne":null}` },
		"long detail":           func(e *AuditEntry) { e.Detail = strings.Repeat("x", MaxAuditDetail+1) },
		"detail not UTF-8":      func(e *AuditEntry) { e.Detail = "\xff" },
		"long ip":               func(e *AuditEntry) { e.IP = strings.Repeat("1", 65) },
	} {
		e := ok
		change(&e)
		if err := e.Validate(); CodeOf(err) != CodeInvalidField {
			t.Errorf("%s: Validate = %v, want invalid_field", name, err)
		}
	}
	// The system acts with no actor, and an entry may concern nothing in
	// particular.
	sys := AuditEntry{Action: AuditKeyRotated, Detail: strings.Repeat("é", MaxAuditDetail/2)}
	if err := sys.Validate(); err != nil {
		t.Fatalf("system entry refused: %v", err)
	}
}

func TestValidAuditTarget(t *testing.T) {
	for s, want := range map[string]bool{
		"01JD3Q8ZK7M2B5X9V4C6N1P0RT": true, "settings": true, "kb": true, "group/vip": true, "agent/01J-x.y": true,
		"": false, "/": false, "/x": false, "x/": false, "a/b/c": false, "a b": false, "a/$ne": false,
	} {
		if got := ValidAuditTarget(s); got != want {
			t.Errorf("ValidAuditTarget(%q) = %v, want %v", s, got, want)
		}
	}
	for _, a := range AuditActions {
		if !ValidAuditAction(a) {
			t.Errorf("%s is listed but not valid", a)
		}
	}
	if ValidAuditAction("login") {
		t.Error("an unlisted action is valid")
	}
}
