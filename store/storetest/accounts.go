package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/kefu-dev/kefu/engine"
)

func testCreateConflicts(t *testing.T, open OpenFunc) {
	s := openDefault(t, open)
	ctx := context.Background()
	Seed(t, s, "t1", "c1")

	WantErrIs(t, "duplicate tenant", s.CreateTenant(ctx, engine.Tenant{ID: "t1"}), engine.ErrExists)
	WantErrIs(t, "duplicate conversation", s.CreateConversation(ctx, engine.Conversation{Tenant: "t1", ID: "c1"}), engine.ErrExists)
	WantErrIs(t, "conversation of unknown tenant", s.CreateConversation(ctx, engine.Conversation{Tenant: "nope", ID: "c1"}), engine.ErrNotFound)

	MustOK(t, "staff", s.CreateStaff(ctx, engine.Staff{Tenant: "t1", ID: "s1", Username: "amy", Role: engine.StaffAdmin, PasswordHash: "h"}))
	WantErrIs(t, "duplicate username", s.CreateStaff(ctx, engine.Staff{Tenant: "t1", ID: "s2", Username: "amy"}), engine.ErrExists)
	WantErrIs(t, "duplicate staff id", s.CreateStaff(ctx, engine.Staff{Tenant: "t1", ID: "s1", Username: "bob"}), engine.ErrExists)
	WantErrIs(t, "staff of unknown tenant", s.CreateStaff(ctx, engine.Staff{Tenant: "nope", ID: "s1", Username: "amy"}), engine.ErrNotFound)

	for name, err := range map[string]error{
		"tenant without id":       s.CreateTenant(ctx, engine.Tenant{}),
		"conversation without id": s.CreateConversation(ctx, engine.Conversation{Tenant: "t1"}),
		"staff without username":  s.CreateStaff(ctx, engine.Staff{Tenant: "t1", ID: "s9"}),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if n, err := s.CountTenants(ctx); err != nil || n != 1 {
		t.Fatalf("CountTenants = %d, %v; want 1", n, err)
	}
}

func testAccounts(t *testing.T, open OpenFunc) {
	s := openDefault(t, open)
	ctx := context.Background()

	if n, err := s.CountTenants(ctx); err != nil || n != 0 {
		t.Fatalf("CountTenants = %d, %v; want 0", n, err)
	}
	created := Epoch.Add(-time.Hour)
	MustOK(t, "tenant a", s.CreateTenant(ctx, engine.Tenant{ID: "a", Name: "甲商户", AppID: "wx1", CreatedAt: created}))
	MustOK(t, "tenant b", s.CreateTenant(ctx, engine.Tenant{ID: "b", Name: "B"})) // stamped by the clock
	if n, err := s.CountTenants(ctx); err != nil || n != 2 {
		t.Fatalf("CountTenants = %d, %v; want 2", n, err)
	}
	ta, err := s.Tenant(ctx, "a")
	if err != nil || ta.ID != "a" || ta.Name != "甲商户" || ta.AppID != "wx1" || !ta.CreatedAt.Equal(created) {
		t.Fatalf("Tenant(a) = %+v, %v", ta, err)
	}
	if tb, _ := s.Tenant(ctx, "b"); !tb.CreatedAt.Equal(Epoch) {
		t.Fatalf("Tenant(b).CreatedAt = %v, want the clock's %v", tb.CreatedAt, Epoch)
	}
	_, err = s.Tenant(ctx, "nope")
	WantErrIs(t, "unknown tenant", err, engine.ErrNotFound)

	want := engine.Staff{Tenant: "a", ID: "s1", Username: "amy", DisplayName: "Amy", Role: engine.StaffSupervisor,
		PasswordHash: "$argon2id$...", CreatedAt: created}
	MustOK(t, "staff", s.CreateStaff(ctx, want))
	got, err := s.StaffByUsername(ctx, "a", "amy")
	if err != nil || got != want {
		t.Fatalf("StaffByUsername = %+v, %v; want %+v", got, err, want)
	}
	MustOK(t, "staff stamped", s.CreateStaff(ctx, engine.Staff{Tenant: "a", ID: "s2", Username: "bob"}))
	if got, _ := s.StaffByUsername(ctx, "a", "bob"); !got.CreatedAt.Equal(Epoch) {
		t.Fatalf("staff CreatedAt = %v, want the clock's %v", got.CreatedAt, Epoch)
	}
	_, err = s.StaffByUsername(ctx, "a", "nobody")
	WantErrIs(t, "unknown username", err, engine.ErrNotFound)
}

func testPutSettingIfAbsent(t *testing.T, open OpenFunc) {
	s := openDefault(t, open)
	ctx := context.Background()

	if v, err := s.PutSettingIfAbsent(ctx, "jwt_secret", "first"); err != nil || v != "first" {
		t.Fatalf("first put = %q, %v", v, err)
	}
	if v, err := s.PutSettingIfAbsent(ctx, "jwt_secret", "second"); err != nil || v != "first" {
		t.Fatalf("second put = %q, %v; want the first value", v, err)
	}
	if v, err := s.PutSettingIfAbsent(ctx, "empty", ""); err != nil || v != "" {
		t.Fatalf("put of an empty value = %q, %v", v, err)
	}
	if _, err := s.PutSettingIfAbsent(ctx, "", "v"); err == nil {
		t.Fatal("a setting without a key was accepted")
	}

	// Racing writers all agree on one winner.
	const racers = 12
	got := make([]string, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			v, err := s.PutSettingIfAbsent(ctx, "node_id", fmt.Sprintf("value-%d", i))
			if err != nil {
				t.Error(err)
			}
			got[i] = v
		})
	}
	wg.Wait()
	for i := range got {
		if got[i] != got[0] || got[i] == "" {
			t.Fatalf("racers saw different values: %q", got)
		}
	}
}

// testClosedStore: Close is safe to call twice, and every method of a
// closed store returns engine.ErrClosed. Every method of engine.Store but
// Close must be called here, so a new one cannot skip the check.
func testClosedStore(t *testing.T, open OpenFunc) {
	s := openDefault(t, open)
	ctx := context.Background()
	Seed(t, s, "t1", "c1")
	AppendAll(t, s, Msgs("t1", "c1", 1, 1))
	MustOK(t, "close", s.Close())
	MustOK(t, "second close", s.Close())

	p := engine.Party{Role: engine.RoleUser, ID: "u"}
	calls := map[string]error{}
	_, calls["Append"] = s.Append(ctx, Msgs("t1", "c1", 2, 2))
	_, calls["Messages"] = s.Messages(ctx, "t1", "c1", 0, 10)
	_, calls["Recent"] = s.Recent(ctx, "t1", "c1", 10)
	_, calls["LastSeq"] = s.LastSeq(ctx, "t1", "c1")
	_, calls["MessageByClientID"] = s.MessageByClientID(ctx, "t1", "c1", "c1-1")
	calls["CreateConversation"] = s.CreateConversation(ctx, engine.Conversation{Tenant: "t1", ID: "c2"})
	_, calls["Conversation"] = s.Conversation(ctx, "t1", "c1")
	_, calls["ListConversations"] = s.ListConversations(ctx, "t1", engine.ConversationQuery{})
	_, calls["SetReadPointer"] = s.SetReadPointer(ctx, "t1", "c1", p, 1)
	_, calls["ReadPointers"] = s.ReadPointers(ctx, "t1", "c1")
	calls["CreateTenant"] = s.CreateTenant(ctx, engine.Tenant{ID: "t2"})
	_, calls["Tenant"] = s.Tenant(ctx, "t1")
	_, calls["CountTenants"] = s.CountTenants(ctx)
	calls["CreateStaff"] = s.CreateStaff(ctx, engine.Staff{Tenant: "t1", ID: "s", Username: "u"})
	_, calls["StaffByUsername"] = s.StaffByUsername(ctx, "t1", "u")
	_, calls["PutSettingIfAbsent"] = s.PutSettingIfAbsent(ctx, "k", "v")
	_, calls["StaffByID"] = s.StaffByID(ctx, "t1", "s")
	_, calls["ListStaff"] = s.ListStaff(ctx, "t1")
	calls["UpdateConversation"] = s.UpdateConversation(ctx, engine.Conversation{Tenant: "t1", ID: "c1"}, engine.ConvEvent{})
	_, calls["Events"] = s.Events(ctx, "t1", "c1")
	calls["PutFAQ"] = s.PutFAQ(ctx, "t1", []engine.FAQEntry{{ID: "f"}})
	calls["DeleteFAQ"] = s.DeleteFAQ(ctx, "t1", "f")
	_, calls["FAQEntries"] = s.FAQEntries(ctx, "t1")
	calls["PutAgentProfile"] = s.PutAgentProfile(ctx, engine.AgentProfile{Tenant: "t1", ID: "a"})
	_, calls["AgentProfile"] = s.AgentProfile(ctx, "t1", "a")
	_, calls["AgentProfiles"] = s.AgentProfiles(ctx, "t1")
	calls["PutGroup"] = s.PutGroup(ctx, engine.SkillGroup{Tenant: "t1", ID: "g"})
	calls["DeleteGroup"] = s.DeleteGroup(ctx, "t1", "g")
	_, calls["Groups"] = s.Groups(ctx, "t1")
	calls["PutTenantSettings"] = s.PutTenantSettings(ctx, engine.TenantSettings{Tenant: "t1"})
	_, calls["TenantSettings"] = s.TenantSettings(ctx, "t1")
	calls["PutCustomer"] = s.PutCustomer(ctx, engine.Customer{Tenant: "t1", ID: "u"})
	_, calls["Customer"] = s.Customer(ctx, "t1", "u")
	calls["AddNote"] = s.AddNote(ctx, engine.Note{Tenant: "t1", Conv: "c1", ID: "n"})
	_, calls["Notes"] = s.Notes(ctx, "t1", "c1")
	calls["SetTimers"] = s.SetTimers(ctx, "t1", "c1", engine.TimerChange{Kind: engine.TimerNoReply, DueAt: Epoch})
	_, calls["Timers"] = s.Timers(ctx, "t1", "c1")
	_, calls["DueTimers"] = s.DueTimers(ctx, Epoch, 10)
	calls["UpdateStaff"] = s.UpdateStaff(ctx, engine.Staff{Tenant: "t1", ID: "s"})
	calls["PutSession"] = s.PutSession(ctx, engine.StaffSession{Tenant: "t1", StaffID: "s", ID: "x"})
	_, calls["StaffSessions"] = s.StaffSessions(ctx, "t1", "s")
	calls["PutLoginState"] = s.PutLoginState(ctx, engine.LoginState{Tenant: "t1", StaffID: "s"})
	_, calls["LoginState"] = s.LoginState(ctx, "t1", "s")
	calls["PutTenantCredentials"] = s.PutTenantCredentials(ctx, engine.TenantCredentials{Tenant: "t1"})
	_, calls["TenantCredentials"] = s.TenantCredentials(ctx, "t1")
	calls["AppendAudit"] = s.AppendAudit(ctx, []engine.AuditEntry{{Tenant: "t1", ID: "a", Action: engine.AuditLogout}})
	_, calls["AuditLog"] = s.AuditLog(ctx, "t1", engine.AuditQuery{})
	dk := engine.DataKey{Tenant: "t1", Version: 1, MasterKeyID: "m", Wrapped: []byte("k")}
	_, calls["CreateDataKey"] = s.CreateDataKey(ctx, dk)
	_, calls["DataKeys"] = s.DataKeys(ctx, "t1")
	_, calls["AllDataKeys"] = s.AllDataKeys(ctx)
	calls["RewrapDataKey"] = s.RewrapDataKey(ctx, dk)
	calls["PutCanned"] = s.PutCanned(ctx, engine.CannedResponse{Tenant: "t1", ID: "c", Scope: engine.CannedTenant, Shortcut: "c", Text: "c"})
	calls["DeleteCanned"] = s.DeleteCanned(ctx, "t1", "c")
	_, calls["CannedResponses"] = s.CannedResponses(ctx, "t1", "a")
	store := reflect.TypeFor[engine.Store]()
	for i := range store.NumMethod() {
		if name := store.Method(i).Name; name != "Close" {
			if _, ok := calls[name]; !ok {
				t.Errorf("testClosedStore does not call %s: add it", name)
			}
		}
	}
	for name, err := range calls {
		if !errors.Is(err, engine.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}
