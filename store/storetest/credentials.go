package storetest

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/kefu-dev/kefu/engine"
)

func testCredentials(t *testing.T, open OpenFunc) {
	s := openDefault(t, open)
	ctx := context.Background()
	Seed(t, s, "t1", "c1")
	Seed(t, s, "t2", "c1")
	MustOK(t, "staff", s.CreateStaff(ctx, engine.Staff{Tenant: "t1", ID: "s1", Username: "amy", DisplayName: "Amy", Role: engine.StaffAgent, PasswordHash: "h1"}))
	MustOK(t, "staff of t2", s.CreateStaff(ctx, engine.Staff{Tenant: "t2", ID: "s1", Username: "amy", Role: engine.StaffAgent, PasswordHash: "x"}))

	// UpdateStaff replaces name, role and hash, never the username.
	MustOK(t, "update", s.UpdateStaff(ctx, engine.Staff{Tenant: "t1", ID: "s1", Username: "ignored", DisplayName: "Amy L", Role: engine.StaffSupervisor, PasswordHash: "h2"}))
	got, err := s.StaffByID(ctx, "t1", "s1")
	if err != nil || got.Username != "amy" || got.DisplayName != "Amy L" || got.Role != engine.StaffSupervisor || got.PasswordHash != "h2" {
		t.Fatalf("after UpdateStaff: %+v, %v", got, err)
	}
	if other, _ := s.StaffByID(ctx, "t2", "s1"); other.PasswordHash != "x" || other.Role != engine.StaffAgent {
		t.Fatalf("UpdateStaff reached another tenant: %+v", other)
	}
	WantErrIs(t, "update unknown staff", s.UpdateStaff(ctx, engine.Staff{Tenant: "t1", ID: "nope", Role: engine.StaffAgent}), engine.ErrNotFound)

	// Sessions: create, replace, list by id, tenant-scoped.
	day := 24 * time.Hour
	a := engine.StaffSession{Tenant: "t1", StaffID: "s1", ID: "a", RefreshHash: "r1", CreatedAt: Epoch, ExpiresAt: Epoch.Add(7 * day), IP: "10.0.0.1", UserAgent: "ua"}
	b := engine.StaffSession{Tenant: "t1", StaffID: "s1", ID: "b", RefreshHash: "r2", CreatedAt: Epoch, ExpiresAt: Epoch.Add(day)}
	MustOK(t, "session a", s.PutSession(ctx, a))
	MustOK(t, "session b", s.PutSession(ctx, b))
	a.PrevHash, a.RefreshHash, a.RefreshedAt = a.RefreshHash, "r3", Epoch.Add(time.Hour)
	MustOK(t, "replace a", s.PutSession(ctx, a))
	list, err := s.StaffSessions(ctx, "t1", "s1")
	if err != nil || !reflect.DeepEqual(list, []engine.StaffSession{a, b}) {
		t.Fatalf("StaffSessions = %+v, %v; want %+v", list, err, []engine.StaffSession{a, b})
	}
	if other, err := s.StaffSessions(ctx, "t2", "s1"); err != nil || len(other) != 0 {
		t.Fatalf("t2's sessions = %+v, %v; want none", other, err)
	}
	WantErrIs(t, "session of unknown staff", s.PutSession(ctx, engine.StaffSession{Tenant: "t1", StaffID: "nope", ID: "x", ExpiresAt: Epoch.Add(day)}), engine.ErrNotFound)

	// A session created after b expired forgets b.
	c := engine.StaffSession{Tenant: "t1", StaffID: "s1", ID: "c", RefreshHash: "r4", CreatedAt: Epoch.Add(2 * day), ExpiresAt: Epoch.Add(9 * day), RevokedAt: Epoch.Add(3 * day)}
	MustOK(t, "session c", s.PutSession(ctx, c))
	list, err = s.StaffSessions(ctx, "t1", "s1")
	if err != nil || !reflect.DeepEqual(list, []engine.StaffSession{a, c}) {
		t.Fatalf("after pruning: %+v, %v; want a and c", list, err)
	}
	if c.Active(Epoch) || list[1].Active(Epoch.Add(2*day)) || !a.Active(Epoch.Add(6*day)) || a.Active(Epoch.Add(7*day)) {
		t.Error("Active is wrong")
	}

	// Login state.
	if _, err := s.LoginState(ctx, "t1", "s1"); err == nil {
		t.Fatal("LoginState before any was put: no error")
	} else {
		WantErrIs(t, "no login state", err, engine.ErrNotFound)
	}
	ls := engine.LoginState{Tenant: "t1", StaffID: "s1", FailedLogins: 3}
	MustOK(t, "login state", s.PutLoginState(ctx, ls))
	ls.FailedLogins, ls.LockedUntil = 0, Epoch.Add(15*time.Minute)
	MustOK(t, "replace login state", s.PutLoginState(ctx, ls))
	if got, err := s.LoginState(ctx, "t1", "s1"); err != nil || !reflect.DeepEqual(got, ls) {
		t.Fatalf("LoginState = %+v, %v; want %+v", got, err, ls)
	}
	if _, err := s.LoginState(ctx, "t2", "s1"); err == nil {
		t.Fatal("t2 sees t1's login state")
	}
	WantErrIs(t, "login state of unknown staff", s.PutLoginState(ctx, engine.LoginState{Tenant: "t1", StaffID: "nope"}), engine.ErrNotFound)
}

func testTenantCredentials(t *testing.T, open OpenFunc) {
	s := openDefault(t, open)
	ctx := context.Background()
	Seed(t, s, "t1")
	Seed(t, s, "t2")
	if _, err := s.TenantCredentials(ctx, "t1"); err == nil {
		t.Fatal("credentials before any were put: no error")
	} else {
		WantErrIs(t, "no credentials", err, engine.ErrNotFound)
	}
	tc := engine.TenantCredentials{Tenant: "t1", WeChatAppSecret: "app-secret", IdentitySecret: "id-secret"}
	MustOK(t, "put", s.PutTenantCredentials(ctx, tc))
	tc.UpdatedAt = Epoch // stamped by the store's clock
	if got, err := s.TenantCredentials(ctx, "t1"); err != nil || !reflect.DeepEqual(got, tc) {
		t.Fatalf("TenantCredentials = %+v, %v; want %+v", got, err, tc)
	}
	tc.WeChatAppSecret = "rotated"
	MustOK(t, "replace", s.PutTenantCredentials(ctx, tc))
	if got, _ := s.TenantCredentials(ctx, "t1"); got.WeChatAppSecret != "rotated" {
		t.Fatalf("after replace: %+v", got)
	}
	if _, err := s.TenantCredentials(ctx, "t2"); err == nil {
		t.Fatal("t2 reads t1's credentials")
	}
	WantErrIs(t, "unknown tenant", s.PutTenantCredentials(ctx, engine.TenantCredentials{Tenant: "nope"}), engine.ErrNotFound)
}
