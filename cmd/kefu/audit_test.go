package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kefu-dev/kefu/auth"
	"github.com/kefu-dev/kefu/config"
	"github.com/kefu-dev/kefu/engine"
)

const otherPassword = "other-password-1"

// seedOtherTenant does what a first start does (the demo tenant, its admin
// and knowledge base) and adds tenant "other" with its own admin, in the
// store the server will open.
func seedOtherTenant(t *testing.T, cfg config.Config) {
	t.Helper()
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	store, _, _, err := openStore(ctx, cfg, logger, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := bootstrap(ctx, store, cfg.Bootstrap, logger, io.Discard); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	hash, err := auth.HashPassword(otherPassword)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CreateTenant(ctx, engine.Tenant{ID: "other", Name: "Other shop", AppID: "other", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := store.CreateStaff(ctx, engine.Staff{Tenant: "other", ID: engine.NewID(now), Username: "admin",
		Role: engine.StaffAdmin, PasswordHash: hash, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
}

type auditResp struct {
	Entries []engine.AuditEntry `json:"entries"`
	Error   struct{ Code string }
}

// audit reads GET /v1/audit with query and returns the status and answer.
func (s *testServer) audit(t testing.TB, token, query string) (int, auditResp) {
	t.Helper()
	var r auditResp
	code := s.api(t, "GET", "/v1/audit?"+query, token, nil, &r)
	return code, r
}

// findAudit returns the first entry matching every non-empty field of
// want (Actor by id only).
func findAudit(entries []engine.AuditEntry, want engine.AuditEntry) (engine.AuditEntry, bool) {
	i := slices.IndexFunc(entries, func(e engine.AuditEntry) bool {
		return (want.Action == "" || e.Action == want.Action) && (want.Actor.ID == "" || e.Actor.ID == want.Actor.ID) &&
			(want.Target == "" || e.Target == want.Target) && (want.Detail == "" || e.Detail == want.Detail) &&
			(want.IP == "" || e.IP == want.IP)
	})
	if i < 0 {
		return engine.AuditEntry{}, false
	}
	return entries[i], true
}

// TestAuditLog: configuration changes and staff reads of a transcript show
// up at GET /v1/audit for the tenant's admin, with the filters working over
// HTTP; a customer's own read is not recorded; agents are refused; another
// tenant's admin sees only their own tenant's entries.
func TestAuditLog(t *testing.T) { forEachStore(t, testAuditLog) }

func testAuditLog(t *testing.T, cfg config.Config) {
	seedOtherTenant(t, cfg)
	s := startServer(t, cfg)
	admin, adminID := s.staffToken(t)
	var r tokenResp
	if code := s.api(t, "POST", "/v1/auth/login", "", map[string]string{"tenant": "other", "username": "admin", "password": otherPassword}, &r); code != 200 {
		t.Fatalf("login to the other tenant: status %d", code)
	}
	other, otherID := r.AccessToken, r.Staff.ID

	// Configuration changes in both tenants, on targets of the same name.
	for _, tok := range []string{admin, other} {
		if code := s.api(t, "PUT", "/v1/groups/vip", tok, map[string]any{"name": "VIP", "policy": "round_robin"}, nil); code != 200 {
			t.Fatalf("put group: status %d", code)
		}
	}
	alice := s.createAgent(t, admin, "alice", engine.StaffAgent, 2, nil) // POST /v1/staff, PUT /v1/agents/{id}

	// The customer reads their conversation, then the admin does.
	userToken, userID := s.visitor(t)
	conv := s.newConversation(t, userToken)
	s.history(t, userToken, conv)
	s.history(t, admin, conv)

	wants := []engine.AuditEntry{
		{Action: engine.AuditConfigChanged, Actor: engine.Party{ID: adminID}, Target: "group/vip", Detail: "put, policy round_robin"},
		{Action: engine.AuditStaffChanged, Actor: engine.Party{ID: adminID}, Target: alice.id, Detail: "created alice, role agent"},
		{Action: engine.AuditConfigChanged, Actor: engine.Party{ID: adminID}, Target: "agent/" + alice.id, Detail: "capacity 2, 1 skill group"},
		{Action: engine.AuditTranscriptViewed, Actor: engine.Party{ID: adminID}, Target: conv, IP: "127.0.0.1"},
	}
	var log []engine.AuditEntry
	pollWhy(t, 15*time.Second, "the admin's audit entries", func() (bool, string) {
		code, resp := s.audit(t, admin, "")
		if code != 200 {
			t.Fatalf("GET /v1/audit as admin: status %d (%s)", code, resp.Error.Code)
		}
		log = resp.Entries
		for _, w := range wants {
			if _, ok := findAudit(log, w); !ok {
				return false, fmt.Sprintf("no %+v in %+v", w, log)
			}
		}
		return true, ""
	})
	for _, e := range log {
		if e.Tenant != "demo" || e.Actor.ID == otherID || e.Actor.ID == userID || !engine.ValidID(e.ID) {
			t.Errorf("the demo admin sees %+v", e)
		}
	}
	viewed, _ := findAudit(log, wants[3])
	if viewed.Actor.Role != engine.RoleAgent || !strings.HasPrefix(viewed.Detail, "after_seq 0, ") {
		t.Errorf("transcript view recorded as %+v", viewed)
	}

	// Filters, each typed and checked.
	for _, tc := range []struct {
		query string
		want  []string // targets, newest first
		// anyOrder: some were recorded too close together to be ordered
		anyOrder bool
	}{
		{"action=transcript_viewed", []string{conv}, false},
		{"target=group%2Fvip", []string{"group/vip"}, false},
		{"actor=" + adminID + "&action=config_changed", []string{"agent/" + alice.id, "group/vip"}, false},
		{"actor=" + adminID + "&limit=1", []string{conv}, false},
		{"actor=" + alice.id, []string{alice.id}, false},                                                                                           // her login
		{"before=" + fmt.Sprint(viewed.At.UnixMilli()) + "&actor=" + adminID, []string{"agent/" + alice.id, alice.id, "group/vip", adminID}, true}, // adminID: the login
	} {
		code, resp := s.audit(t, admin, tc.query)
		got := []string{}
		for _, e := range resp.Entries {
			got = append(got, e.Target)
		}
		if tc.anyOrder {
			slices.Sort(got)
			slices.Sort(tc.want)
		}
		if code != 200 || !slices.Equal(got, tc.want) {
			t.Errorf("GET /v1/audit?%s: status %d, targets %v, want %v", tc.query, code, got, tc.want)
		}
	}
	for _, q := range []string{
		"action=deleted", "action=" + url.QueryEscape(`{"$ne":null}`), "actor=" + url.QueryEscape("$ne"), "target=a%2Fb%2Fc",
		"target=" + url.QueryEscape("group/"), "limit=0", "limit=501", "limit=ten", "before=-5", "before=yesterday",
	} {
		if code, resp := s.audit(t, admin, q); code != 400 || resp.Error.Code != string(engine.CodeInvalidField) {
			t.Errorf("GET /v1/audit?%s: status %d, code %q; want 400 invalid_field", q, code, resp.Error.Code)
		}
	}

	// Only admins, and only of their own tenant.
	if code, resp := s.audit(t, alice.token, ""); code != 403 || resp.Error.Code != string(engine.CodeForbidden) {
		t.Errorf("an agent's GET /v1/audit: status %d, code %q; want 403 forbidden", code, resp.Error.Code)
	}
	for _, tok := range []string{userToken, ""} {
		if code, _ := s.audit(t, tok, ""); code != 401 {
			t.Errorf("GET /v1/audit with token %.10q: status %d, want 401", tok, code)
		}
	}
	pollWhy(t, 15*time.Second, "the other tenant's entry", func() (bool, string) {
		code, resp := s.audit(t, other, "")
		if code != 200 {
			t.Fatalf("GET /v1/audit as the other admin: status %d", code)
		}
		_, ok := findAudit(resp.Entries, engine.AuditEntry{Actor: engine.Party{ID: otherID}, Target: "group/vip"})
		for _, e := range resp.Entries {
			if e.Tenant != "other" || e.Actor.ID != otherID {
				t.Fatalf("the other tenant's admin sees %+v", e)
			}
		}
		return ok && len(resp.Entries) == 2, fmt.Sprint(resp.Entries) // the group and the admin's login
	})
}
