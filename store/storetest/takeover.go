package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/kefu-dev/kefu/engine"
)

// testConversationRouting: the routing fields round-trip through
// CreateConversation, UpdateConversation and ListConversations, and
// ListConversations filters by owner, by invitee and by group, alone and
// combined with every other filter.
func testConversationRouting(t *testing.T, open OpenFunc) {
	s := openDefault(t, open)
	ctx := context.Background()
	Seed(t, s, "ta")
	Seed(t, s, "tb")
	Seed(t, s, "tr")

	full := engine.Conversation{Tenant: "tr", ID: "full", UserID: "u9", State: engine.StateAssigned, AgentID: "a1",
		Invited: []string{"a3", "a2"}, Group: "refund", Priority: 7, QueuedAt: Epoch.Add(-2*time.Minute + 345*time.Millisecond),
		CreatedAt: Epoch.Add(-time.Hour), UpdatedAt: Epoch.Add(-time.Minute)}
	MustOK(t, "create", s.CreateConversation(ctx, full))
	wantConversation(t, s, "created with every field", full)
	// The invitees follow Invited as updates change it.
	wantListed := func(what string, q engine.ConversationQuery, want string) {
		t.Helper()
		got, err := s.ListConversations(ctx, "tr", q)
		MustOK(t, what, err)
		if ids(got) != want {
			t.Errorf("%s: ListConversations(%+v) = %s, want %s", what, q, ids(got), want)
		}
	}
	wantListed("created", engine.ConversationQuery{InvitedID: "a2"}, "[full]")
	wantListed("created", engine.ConversationQuery{InvitedID: "a3"}, "[full]")
	wantListed("the owner is no invitee", engine.ConversationQuery{InvitedID: "a1"}, "[]")

	// Every mutable field changes; the others are not UpdateConversation's.
	upd := full
	upd.State, upd.AgentID, upd.Invited, upd.Group, upd.Priority, upd.QueuedAt, upd.UpdatedAt =
		engine.StateQueued, "", nil, "pre_sales", 2, Epoch.Add(time.Minute+5*time.Millisecond), Epoch.Add(time.Minute)
	upd.UserID, upd.CreatedAt = "someone else", Epoch
	MustOK(t, "update", s.UpdateConversation(ctx, upd, engine.ConvEvent{Type: engine.EventTransferred}))
	upd.UserID, upd.CreatedAt = full.UserID, full.CreatedAt
	wantConversation(t, s, "after an update", upd)
	wantListed("invitations ended", engine.ConversationQuery{InvitedID: "a2"}, "[]")
	upd.State, upd.AgentID, upd.Invited, upd.Group, upd.Priority, upd.QueuedAt, upd.UpdatedAt =
		engine.StateAssigned, "a4", []string{"a5"}, "", 0, time.Time{}, Epoch.Add(2*time.Minute)
	MustOK(t, "update", s.UpdateConversation(ctx, upd, engine.ConvEvent{Type: engine.EventAssigned}))
	wantConversation(t, s, "after clearing group, priority and queue time", upd)
	wantListed("invited again", engine.ConversationQuery{InvitedID: "a5"}, "[full]")
	wantListed("not invited again", engine.ConversationQuery{InvitedID: "a3"}, "[]")
	list, err := s.ListConversations(ctx, "tr", engine.ConversationQuery{})
	if err != nil || len(list) != 1 || !SameConversation(list[0], upd) {
		t.Fatalf("ListConversations(tr) = %+v, %v; want [%+v]", list, err, upd)
	}

	// Tenant ta's conversations, one minute apart. Odd ones are created
	// plain and routed by an update, so the filters must see updates.
	rows := []struct {
		user, agent, group string
		state              engine.ConvState
		invited            []string
	}{
		{"u0", "a1", "g1", engine.StateAssigned, []string{"a2"}},
		{"u1", "a1", "g1", engine.StateOnHold, []string{"a2", "a3"}},
		{"u0", "a2", "g2", engine.StateAssigned, []string{"a1"}},
		{"u1", "", "g1", engine.StateQueued, nil},
		{"u0", "", "g2", engine.StateQueued, nil},
		{"u1", "a1", "g2", engine.StateClosed, nil},
		{"u0", "a1", "g2", engine.StateAssigned, []string{"a3"}},
		{"u1", "a2", "g1", engine.StateAssigned, []string{"a3", "a1"}},
		{"u0", "", "", engine.StateBot, nil},
		{"u1", "a1", "g1", engine.StateAssigned, []string{"a2"}},
	}
	var all []engine.Conversation
	for i, r := range rows {
		at := Epoch.Add(time.Duration(i) * time.Minute)
		c := engine.Conversation{Tenant: "ta", ID: fmt.Sprintf("r%02d", i), UserID: r.user, State: r.state,
			AgentID: r.agent, Invited: r.invited, Group: r.group, CreatedAt: at, UpdatedAt: at}
		if i%2 == 0 {
			MustOK(t, "create", s.CreateConversation(ctx, c))
		} else {
			MustOK(t, "create", s.CreateConversation(ctx, engine.Conversation{Tenant: "ta", ID: c.ID, UserID: r.user, CreatedAt: at}))
			MustOK(t, "route", s.UpdateConversation(ctx, c, engine.ConvEvent{Type: engine.EventAssigned}))
		}
		all = append(all, c)
	}
	// Tenant tb has the same ids, owners, invitees and groups.
	for i, id := range []string{"r00", "x"} {
		at := Epoch.Add(time.Duration(i) * time.Hour)
		MustOK(t, "create b", s.CreateConversation(ctx, engine.Conversation{Tenant: "tb", ID: id, UserID: "u0",
			State: engine.StateAssigned, AgentID: "a1", Invited: []string{"a2"}, Group: "g1", CreatedAt: at}))
	}

	for _, tt := range []struct {
		name, tenant string
		q            engine.ConversationQuery
		want         string
	}{
		{"agent", "ta", engine.ConversationQuery{AgentID: "a1"}, "[r09 r06 r05 r01 r00]"},
		{"agent and state", "ta", engine.ConversationQuery{AgentID: "a1", State: engine.StateAssigned}, "[r09 r06 r00]"},
		{"group", "ta", engine.ConversationQuery{Group: "g1"}, "[r09 r07 r03 r01 r00]"},
		{"group and state", "ta", engine.ConversationQuery{Group: "g1", State: engine.StateQueued}, "[r03]"},
		{"group and another state", "ta", engine.ConversationQuery{Group: "g2", State: engine.StateAssigned}, "[r06 r02]"},
		{"agent and group", "ta", engine.ConversationQuery{AgentID: "a1", Group: "g2"}, "[r06 r05]"},
		{"agent, group, state", "ta", engine.ConversationQuery{AgentID: "a2", Group: "g1", State: engine.StateAssigned}, "[r07]"},
		{"user and agent", "ta", engine.ConversationQuery{UserID: "u1", AgentID: "a1"}, "[r09 r05 r01]"},
		{"user, group, state", "ta", engine.ConversationQuery{UserID: "u0", Group: "g2", State: engine.StateQueued}, "[r04]"},
		{"agent before", "ta", engine.ConversationQuery{AgentID: "a1", Before: all[6].CreatedAt}, "[r05 r01 r00]"},
		{"group, state, limit", "ta", engine.ConversationQuery{Group: "g1", State: engine.StateAssigned, Limit: 2}, "[r09 r07]"},
		{"group with no such state", "ta", engine.ConversationQuery{Group: "g1", State: engine.StateClosed}, "[]"},
		{"unknown agent", "ta", engine.ConversationQuery{AgentID: "nobody"}, "[]"},
		{"another tenant's agent", "tb", engine.ConversationQuery{AgentID: "a1", Group: "g1", State: engine.StateAssigned}, "[x r00]"},
		{"invitee", "ta", engine.ConversationQuery{InvitedID: "a2"}, "[r09 r01 r00]"},
		{"invitee among several", "ta", engine.ConversationQuery{InvitedID: "a1"}, "[r07 r02]"},
		{"invitee and state", "ta", engine.ConversationQuery{InvitedID: "a2", State: engine.StateAssigned}, "[r09 r00]"},
		{"invitee and owner", "ta", engine.ConversationQuery{InvitedID: "a3", AgentID: "a1"}, "[r06 r01]"},
		{"invitee before", "ta", engine.ConversationQuery{InvitedID: "a3", Before: all[6].CreatedAt}, "[r01]"},
		{"invitee, limit", "ta", engine.ConversationQuery{InvitedID: "a3", Limit: 2}, "[r07 r06]"},
		{"invitee, state, limit", "ta", engine.ConversationQuery{InvitedID: "a2", State: engine.StateAssigned, Limit: 1}, "[r09]"},
		{"invitee with no such state", "ta", engine.ConversationQuery{InvitedID: "a1", State: engine.StateClosed}, "[]"},
		{"unknown invitee", "ta", engine.ConversationQuery{InvitedID: "nobody"}, "[]"},
		{"another tenant's invitee", "tb", engine.ConversationQuery{InvitedID: "a2"}, "[x r00]"},
	} {
		got, err := s.ListConversations(ctx, tt.tenant, tt.q)
		MustOK(t, tt.name, err)
		if ids(got) != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, ids(got), tt.want)
		}
		for _, c := range got {
			if c.Tenant != tt.tenant {
				t.Errorf("%s: listed %+v of another tenant", tt.name, c)
			}
		}
	}

	// Every combination of the six filters, with two sets of values,
	// against a plain filter in Go.
	values := []engine.ConversationQuery{
		{UserID: "u1", AgentID: "a1", Group: "g1", State: engine.StateAssigned, Before: all[9].CreatedAt, InvitedID: "a3"},
		{UserID: "u0", AgentID: "a2", Group: "g2", State: engine.StateAssigned, Before: all[7].CreatedAt, InvitedID: "a1"},
	}
	for _, v := range values {
		for mask := range 1 << 6 {
			var q engine.ConversationQuery
			if mask&1 != 0 {
				q.UserID = v.UserID
			}
			if mask&2 != 0 {
				q.AgentID = v.AgentID
			}
			if mask&4 != 0 {
				q.Group = v.Group
			}
			if mask&8 != 0 {
				q.State = v.State
			}
			if mask&16 != 0 {
				q.Before = v.Before
			}
			if mask&32 != 0 {
				q.InvitedID = v.InvitedID
			}
			got, err := s.ListConversations(ctx, "ta", q)
			MustOK(t, "list", err)
			if want := ids(filterConversations(all, q)); ids(got) != want {
				t.Errorf("ListConversations(%+v) = %s, want %s", q, ids(got), want)
			}
		}
	}
	got, _ := s.ListConversations(ctx, "ta", engine.ConversationQuery{AgentID: "a2", Group: "g2"})
	if len(got) != 1 || !SameConversation(got[0], all[2]) {
		t.Fatalf("listed %+v, want %+v", got, all[2])
	}
}

func wantConversation(t *testing.T, s engine.Store, what string, want engine.Conversation) {
	t.Helper()
	got, err := s.Conversation(context.Background(), want.Tenant, want.ID)
	if err != nil || !SameConversation(got, want) {
		t.Fatalf("%s: Conversation = %+v, %v; want %+v", what, got, err, want)
	}
}

func ids(cs []engine.Conversation) string {
	out := []string{}
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return fmt.Sprint(out)
}

// filterConversations is ListConversations in Go, for a limit above len(cs).
func filterConversations(cs []engine.Conversation, q engine.ConversationQuery) []engine.Conversation {
	var out []engine.Conversation
	for _, c := range cs {
		if (q.UserID == "" || c.UserID == q.UserID) && (q.AgentID == "" || c.AgentID == q.AgentID) &&
			(q.InvitedID == "" || slices.Contains(c.Invited, q.InvitedID)) &&
			(q.Group == "" || c.Group == q.Group) && (q.State == "" || c.State == q.State) &&
			(q.Before.IsZero() || c.CreatedAt.Before(q.Before)) {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b engine.Conversation) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(b.ID, a.ID))
	})
	return out
}

// testStaff: StaffByID and ListStaff, scoped by tenant.
func testStaff(t *testing.T, open OpenFunc) {
	s := openDefault(t, open)
	ctx := context.Background()
	Seed(t, s, "ta")
	Seed(t, s, "tb")
	created := Epoch.Add(-time.Hour)
	a := []engine.Staff{
		{Tenant: "ta", ID: "s1", Username: "zoe", DisplayName: "Zoe", Role: engine.StaffAgent, PasswordHash: "h1", CreatedAt: created},
		{Tenant: "ta", ID: "s2", Username: "amy", DisplayName: "艾米", Role: engine.StaffSupervisor, PasswordHash: "h2", CreatedAt: created},
		{Tenant: "ta", ID: "s3", Username: "bob", DisplayName: "Bob", Role: engine.StaffAdmin, PasswordHash: "h3", CreatedAt: created},
	}
	b := engine.Staff{Tenant: "tb", ID: "s2", Username: "amy", DisplayName: "Amy of b", Role: engine.StaffAgent, PasswordHash: "hb", CreatedAt: created}
	for _, st := range append(slices.Clone(a), b) {
		MustOK(t, "create staff", s.CreateStaff(ctx, st))
	}

	for _, want := range append(slices.Clone(a), b) {
		got, err := s.StaffByID(ctx, want.Tenant, want.ID)
		if err != nil || !sameStaff(got, want) {
			t.Fatalf("StaffByID(%s, %s) = %+v, %v; want %+v", want.Tenant, want.ID, got, err, want)
		}
	}
	for _, k := range [][2]string{{"ta", "nope"}, {"tb", "s1"}, {"nobody", "s1"}, {"ta", "amy"}} {
		_, err := s.StaffByID(ctx, k[0], k[1])
		WantErrIs(t, fmt.Sprintf("StaffByID(%s, %s)", k[0], k[1]), err, engine.ErrNotFound)
	}

	for tenant, want := range map[string][]engine.Staff{"ta": {a[1], a[2], a[0]}, "tb": {b}, "nobody": nil} {
		got, err := s.ListStaff(ctx, tenant)
		MustOK(t, "list staff", err)
		if !slices.EqualFunc(got, want, sameStaff) {
			t.Fatalf("ListStaff(%s) = %+v, want %+v", tenant, got, want)
		}
	}
}

func sameStaff(a, b engine.Staff) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return false
	}
	a.CreatedAt = b.CreatedAt
	return a == b
}

// testAgentProfiles: profiles are replaced whole, listed by id, scoped by
// tenant; a zero UpdatedAt takes the store's clock.
func testAgentProfiles(t *testing.T, open OpenFunc) {
	s := openDefault(t, open)
	ctx := context.Background()
	Seed(t, s, "ta")
	Seed(t, s, "tb")
	a2 := engine.AgentProfile{Tenant: "ta", ID: "a2", Capacity: 3, Skills: map[string]int{"pre_sales": 4, "refund": 2},
		UpdatedAt: Epoch.Add(-time.Minute + 120*time.Millisecond)}
	a1 := engine.AgentProfile{Tenant: "ta", ID: "a1", Capacity: 5, Skills: map[string]int{engine.DefaultGroup: 3}, UpdatedAt: Epoch.Add(-time.Hour)}
	b1 := engine.AgentProfile{Tenant: "tb", ID: "a1", Capacity: 9}
	for _, p := range []engine.AgentProfile{a2, a1, b1} {
		MustOK(t, "put profile", s.PutAgentProfile(ctx, p))
	}
	b1.UpdatedAt = Epoch

	got, err := s.AgentProfile(ctx, "ta", "a2")
	if err != nil || !sameProfile(got, a2) {
		t.Fatalf("AgentProfile(ta, a2) = %+v, %v; want %+v", got, err, a2)
	}
	wantProfiles(t, s, "ta", a1, a2)
	wantProfiles(t, s, "tb", b1)
	wantProfiles(t, s, "nobody")
	for _, k := range [][2]string{{"tb", "a2"}, {"ta", "nope"}, {"nobody", "a1"}} {
		_, err := s.AgentProfile(ctx, k[0], k[1])
		WantErrIs(t, fmt.Sprintf("AgentProfile(%s, %s)", k[0], k[1]), err, engine.ErrNotFound)
	}

	// Replaced whole: the old skills go.
	a2 = engine.AgentProfile{Tenant: "ta", ID: "a2", Capacity: 1, Skills: map[string]int{"vip": 5}, UpdatedAt: Epoch.Add(time.Hour)}
	MustOK(t, "replace profile", s.PutAgentProfile(ctx, a2))
	wantProfiles(t, s, "ta", a1, a2)
	wantProfiles(t, s, "tb", b1)

	WantErrIs(t, "profile of an unknown tenant", s.PutAgentProfile(ctx, engine.AgentProfile{Tenant: "nobody", ID: "a1"}), engine.ErrNotFound)
	if err := s.PutAgentProfile(ctx, engine.AgentProfile{Tenant: "ta"}); err == nil {
		t.Fatal("a profile without an id was accepted")
	}
}

func sameProfile(a, b engine.AgentProfile) bool {
	return a.Tenant == b.Tenant && a.ID == b.ID && a.Capacity == b.Capacity && maps.Equal(a.Skills, b.Skills) &&
		a.UpdatedAt.Equal(b.UpdatedAt)
}

func wantProfiles(t *testing.T, s engine.Store, tenant string, want ...engine.AgentProfile) {
	t.Helper()
	got, err := s.AgentProfiles(context.Background(), tenant)
	if err != nil || !slices.EqualFunc(got, want, sameProfile) {
		t.Fatalf("AgentProfiles(%s) = %+v, %v; want %+v", tenant, got, err, want)
	}
}

// testGroups: groups are replaced whole, deleted, listed by id, scoped by
// tenant.
func testGroups(t *testing.T, open OpenFunc) {
	s := openDefault(t, open)
	ctx := context.Background()
	Seed(t, s, "ta")
	Seed(t, s, "tb")
	refund := engine.SkillGroup{Tenant: "ta", ID: "refund", Name: "退款组", Policy: engine.PolicyLeastLoad, UpdatedAt: Epoch.Add(-time.Hour)}
	pre := engine.SkillGroup{Tenant: "ta", ID: "pre_sales", Name: "售前", Policy: engine.PolicyRoundRobin, UpdatedAt: Epoch.Add(-time.Minute)}
	bRefund := engine.SkillGroup{Tenant: "tb", ID: "refund", Name: "Refunds of b", Policy: engine.PolicySticky}
	for _, g := range []engine.SkillGroup{refund, pre, bRefund} {
		MustOK(t, "put group", s.PutGroup(ctx, g))
	}
	bRefund.UpdatedAt = Epoch
	wantGroups(t, s, "ta", pre, refund)
	wantGroups(t, s, "tb", bRefund)
	wantGroups(t, s, "nobody")

	refund.Name, refund.Policy, refund.UpdatedAt = "售后", engine.PolicyProficiency, Epoch.Add(time.Hour)
	MustOK(t, "replace group", s.PutGroup(ctx, refund))
	wantGroups(t, s, "ta", pre, refund)

	WantErrIs(t, "delete another tenant's group", s.DeleteGroup(ctx, "tb", "pre_sales"), engine.ErrNotFound)
	MustOK(t, "delete group", s.DeleteGroup(ctx, "ta", "refund"))
	wantGroups(t, s, "ta", pre)
	wantGroups(t, s, "tb", bRefund)
	WantErrIs(t, "delete twice", s.DeleteGroup(ctx, "ta", "refund"), engine.ErrNotFound)

	WantErrIs(t, "group of an unknown tenant", s.PutGroup(ctx, engine.SkillGroup{Tenant: "nobody", ID: "g"}), engine.ErrNotFound)
	if err := s.PutGroup(ctx, engine.SkillGroup{Tenant: "ta"}); err == nil {
		t.Fatal("a group without an id was accepted")
	}
}

func wantGroups(t *testing.T, s engine.Store, tenant string, want ...engine.SkillGroup) {
	t.Helper()
	got, err := s.Groups(context.Background(), tenant)
	same := func(a, b engine.SkillGroup) bool {
		return a.UpdatedAt.Equal(b.UpdatedAt) && a.Tenant == b.Tenant && a.ID == b.ID && a.Name == b.Name && a.Policy == b.Policy
	}
	if err != nil || !slices.EqualFunc(got, want, same) {
		t.Fatalf("Groups(%s) = %+v, %v; want %+v", tenant, got, err, want)
	}
}

// testTenantSettings: settings round-trip as stored (no defaults filled
// in), are replaced whole and scoped by tenant.
func testTenantSettings(t *testing.T, open OpenFunc) {
	s := openDefault(t, open)
	ctx := context.Background()
	Seed(t, s, "ta")
	Seed(t, s, "tb")
	_, err := s.TenantSettings(ctx, "ta")
	WantErrIs(t, "settings never set", err, engine.ErrNotFound)

	full := engine.TenantSettings{
		Tenant: "ta",
		Rules: []engine.RoutingRule{
			{When: "vip_level >= 3 and tag = refund", Group: "vip_refund", Priority: 9},
			{When: "attr.city = 上海", Group: "shanghai", Priority: 1},
		},
		BusinessHours: engine.BusinessHours{TZ: "Asia/Shanghai",
			Weekly: []engine.HoursRange{{Day: 1, Open: "09:00", Close: "12:00"}, {Day: 1, Open: "13:30", Close: "18:00"}},
			Closed: []string{"2026-10-01"}},
		Timers: engine.TimerSettings{
			FirstResponse: engine.Duration(90 * time.Second), FirstResponseAlert: engine.Duration(3 * time.Minute),
			RequeueOnSLA: true, NoReply: engine.Duration(4 * time.Minute), UserIdleWarn: engine.Duration(11 * time.Minute),
			UserIdleClose: engine.Duration(6 * time.Minute), QueueTimeout: engine.Duration(7 * time.Minute),
			HoldExpiry: engine.Duration(15 * time.Minute), ReopenWindow: engine.Duration(48 * time.Hour),
		},
		DefaultCapacity: 8, AvgHandleTime: engine.Duration(4 * time.Minute), StickyWindow: engine.Duration(24 * time.Hour),
		UpdatedAt: Epoch.Add(-time.Minute),
	}
	MustOK(t, "put settings", s.PutTenantSettings(ctx, full))
	wantSettings(t, s, full)
	_, err = s.TenantSettings(ctx, "tb")
	WantErrIs(t, "another tenant's settings", err, engine.ErrNotFound)

	// Replaced whole, and stored as given: zero fields stay zero.
	bare := engine.TenantSettings{Tenant: "ta", Rules: []engine.RoutingRule{{When: "tag = x", Group: "g"}}}
	MustOK(t, "replace settings", s.PutTenantSettings(ctx, bare))
	bare.UpdatedAt = Epoch
	wantSettings(t, s, bare)

	b := engine.TenantSettings{Tenant: "tb", DefaultCapacity: 2, UpdatedAt: Epoch}
	MustOK(t, "put b", s.PutTenantSettings(ctx, b))
	wantSettings(t, s, b)
	wantSettings(t, s, bare)

	WantErrIs(t, "settings of an unknown tenant", s.PutTenantSettings(ctx, engine.TenantSettings{Tenant: "nobody"}), engine.ErrNotFound)
}

func wantSettings(t *testing.T, s engine.Store, want engine.TenantSettings) {
	t.Helper()
	got, err := s.TenantSettings(context.Background(), want.Tenant)
	MustOK(t, "settings", err)
	norm := func(ts engine.TenantSettings) engine.TenantSettings {
		ts.UpdatedAt = time.Time{}
		if len(ts.Rules) == 0 {
			ts.Rules = nil
		}
		if len(ts.BusinessHours.Weekly) == 0 {
			ts.BusinessHours.Weekly = nil
		}
		if len(ts.BusinessHours.Closed) == 0 {
			ts.BusinessHours.Closed = nil
		}
		return ts
	}
	if !got.UpdatedAt.Equal(want.UpdatedAt) || !reflect.DeepEqual(norm(got), norm(want)) {
		t.Fatalf("TenantSettings(%s) = %+v, want %+v", want.Tenant, got, want)
	}
}

// testCustomers: profiles round-trip, are replaced whole, scoped by tenant.
func testCustomers(t *testing.T, open OpenFunc) {
	s := openDefault(t, open)
	ctx := context.Background()
	Seed(t, s, "ta")
	Seed(t, s, "tb")
	u1 := engine.Customer{Tenant: "ta", ID: "u1", DisplayName: "张三", VIPLevel: 3, Tags: []string{"vip", "refund"},
		Attrs: map[string]string{"city": "上海", "channel": "mini"}, LastPurchaseAt: Epoch.Add(-48*time.Hour + 250*time.Millisecond),
		UpdatedAt: Epoch.Add(-time.Minute)}
	bU1 := engine.Customer{Tenant: "tb", ID: "u1", DisplayName: "Someone else", Tags: []string{}, Attrs: map[string]string{}}
	MustOK(t, "put customer", s.PutCustomer(ctx, u1))
	MustOK(t, "put b", s.PutCustomer(ctx, bU1))
	bU1.UpdatedAt = Epoch
	wantCustomer(t, s, u1)
	wantCustomer(t, s, bU1)
	for _, k := range [][2]string{{"ta", "nope"}, {"nobody", "u1"}} {
		_, err := s.Customer(ctx, k[0], k[1])
		WantErrIs(t, fmt.Sprintf("Customer(%s, %s)", k[0], k[1]), err, engine.ErrNotFound)
	}

	// Replaced whole: no tags and no attributes any more.
	u1 = engine.Customer{Tenant: "ta", ID: "u1", DisplayName: "张三", VIPLevel: 5, UpdatedAt: Epoch.Add(time.Hour)}
	MustOK(t, "replace customer", s.PutCustomer(ctx, u1))
	wantCustomer(t, s, u1)
	wantCustomer(t, s, bU1)

	WantErrIs(t, "customer of an unknown tenant", s.PutCustomer(ctx, engine.Customer{Tenant: "nobody", ID: "u1"}), engine.ErrNotFound)
	if err := s.PutCustomer(ctx, engine.Customer{Tenant: "ta"}); err == nil {
		t.Fatal("a customer without an id was accepted")
	}
}

// wantCustomer compares no tags or attributes nil or empty alike.
func wantCustomer(t *testing.T, s engine.Store, want engine.Customer) {
	t.Helper()
	got, err := s.Customer(context.Background(), want.Tenant, want.ID)
	MustOK(t, "customer", err)
	if !got.UpdatedAt.Equal(want.UpdatedAt) || !got.LastPurchaseAt.Equal(want.LastPurchaseAt) ||
		!slices.Equal(got.Tags, want.Tags) || !maps.Equal(got.Attrs, want.Attrs) ||
		got.Tenant != want.Tenant || got.ID != want.ID || got.DisplayName != want.DisplayName || got.VIPLevel != want.VIPLevel {
		t.Fatalf("Customer(%s, %s) = %+v, want %+v", want.Tenant, want.ID, got, want)
	}
}

// testNotes: notes come back oldest first (ties by id), their ids are
// unique per conversation, and they are scoped by tenant and conversation.
func testNotes(t *testing.T, open OpenFunc) {
	s := openDefault(t, open)
	ctx := context.Background()
	Seed(t, s, "ta", "c1", "c2")
	Seed(t, s, "tb", "c1")
	agent := engine.Party{Role: engine.RoleAgent, ID: "a1"}
	later := Epoch.Add(2*time.Minute + 7*time.Millisecond)
	notes := []engine.Note{
		{Tenant: "ta", Conv: "c1", ID: "b", Author: agent, Text: "客户情绪激动", CreatedAt: later},
		{Tenant: "ta", Conv: "c1", ID: "z", Author: engine.Party{Role: engine.RoleAgent, ID: "a2"}, Text: "first", CreatedAt: Epoch.Add(time.Minute)},
		{Tenant: "ta", Conv: "c1", ID: "a", Author: agent, Text: "same time as b", CreatedAt: later},
		{Tenant: "ta", Conv: "c2", ID: "a", Author: agent, Text: "c2's"},
		{Tenant: "tb", Conv: "c1", ID: "a", Author: agent, Text: "tenant b's", CreatedAt: Epoch.Add(time.Hour)},
	}
	for _, n := range notes {
		MustOK(t, "add note "+n.ID, s.AddNote(ctx, n))
	}
	notes[3].CreatedAt = Epoch // stamped by the clock

	wantNotes(t, s, "ta", "c1", notes[1], notes[2], notes[0])
	wantNotes(t, s, "ta", "c2", notes[3])
	wantNotes(t, s, "tb", "c1", notes[4])
	wantNotes(t, s, "tb", "c2")
	wantNotes(t, s, "ta", "nope")

	dup := notes[2]
	dup.Text = "another"
	WantErrIs(t, "duplicate note id", s.AddNote(ctx, dup), engine.ErrExists)
	wantNotes(t, s, "ta", "c1", notes[1], notes[2], notes[0])
	WantErrIs(t, "note of an unknown conversation", s.AddNote(ctx, engine.Note{Tenant: "tb", Conv: "c2", ID: "a"}), engine.ErrNotFound)
	if err := s.AddNote(ctx, engine.Note{Tenant: "ta", Conv: "c1"}); err == nil {
		t.Fatal("a note without an id was accepted")
	}
}

func wantNotes(t *testing.T, s engine.Store, tenant, conv string, want ...engine.Note) {
	t.Helper()
	got, err := s.Notes(context.Background(), tenant, conv)
	same := func(a, b engine.Note) bool {
		return a.CreatedAt.Equal(b.CreatedAt) && a.Tenant == b.Tenant && a.Conv == b.Conv && a.ID == b.ID &&
			a.Author == b.Author && a.Text == b.Text
	}
	if err != nil || !slices.EqualFunc(got, want, same) {
		t.Fatalf("Notes(%s, %s) = %+v, %v; want %+v", tenant, conv, got, err, want)
	}
}

// testTimers: one timer per conversation and kind, replaced by a put;
// deleting is idempotent; one call's changes apply in order; DueTimers
// reads every tenant's timers due by a time, earliest first, up to a limit.
func testTimers(t *testing.T, open OpenFunc) {
	s := openDefault(t, open)
	ctx := context.Background()
	Seed(t, s, "ta", "c1", "c2")
	Seed(t, s, "tb", "c1")
	at := func(d time.Duration) time.Time { return Epoch.Add(d) }
	put := func(tm engine.Timer) error {
		return s.SetTimers(ctx, tm.Tenant, tm.Conv, engine.TimerChange{Kind: tm.Kind, DueAt: tm.DueAt})
	}
	del := func(tenant, conv string, kind engine.TimerKind) error {
		return s.SetTimers(ctx, tenant, conv, engine.TimerChange{Kind: kind})
	}
	taFirst := engine.Timer{Tenant: "ta", Conv: "c1", Kind: engine.TimerFirstResponse, DueAt: at(3 * time.Minute)}
	taNoReply := engine.Timer{Tenant: "ta", Conv: "c1", Kind: engine.TimerNoReply, DueAt: at(time.Minute + 123*time.Millisecond)}
	taQueue := engine.Timer{Tenant: "ta", Conv: "c2", Kind: engine.TimerQueueTimeout, DueAt: at(2 * time.Minute)}
	tbHold := engine.Timer{Tenant: "tb", Conv: "c1", Kind: engine.TimerHoldExpiry, DueAt: at(90 * time.Second)}
	tbFirst := engine.Timer{Tenant: "tb", Conv: "c1", Kind: engine.TimerFirstResponse, DueAt: at(10 * time.Minute)}
	for _, tm := range []engine.Timer{taFirst, taNoReply, taQueue, tbHold, tbFirst} {
		MustOK(t, "put timer", put(tm))
	}

	wantTimers(t, s, "ta", "c1", taFirst, taNoReply)
	wantTimers(t, s, "ta", "c2", taQueue)
	wantTimers(t, s, "tb", "c1", tbFirst, tbHold)
	wantTimers(t, s, "tb", "c2")

	// Due by 2m, the cutoff included, across tenants, earliest first.
	wantDue(t, s, at(2*time.Minute), 10, taNoReply, tbHold, taQueue)
	wantDue(t, s, at(2*time.Minute), 2, taNoReply, tbHold)
	wantDue(t, s, at(2*time.Minute-time.Millisecond), 10, taNoReply, tbHold)
	wantDue(t, s, at(time.Minute+122*time.Millisecond), 10)
	wantDue(t, s, at(time.Hour), 10, taNoReply, tbHold, taQueue, taFirst, tbFirst)
	wantDue(t, s, at(time.Hour), 0)

	// A put replaces the conversation's timer of its kind, in that tenant.
	taNoReply.DueAt = at(5 * time.Minute)
	MustOK(t, "replace timer", put(taNoReply))
	wantTimers(t, s, "ta", "c1", taFirst, taNoReply)
	wantDue(t, s, at(2*time.Minute), 10, tbHold, taQueue)
	tbFirst.DueAt = at(time.Minute)
	MustOK(t, "replace b's timer", put(tbFirst))
	wantTimers(t, s, "ta", "c1", taFirst, taNoReply)
	wantDue(t, s, at(2*time.Minute), 10, tbFirst, tbHold, taQueue)

	// Deleting: only that tenant's, conversation's, kind's; twice is fine.
	MustOK(t, "delete b's timer", del("tb", "c1", engine.TimerFirstResponse))
	wantTimers(t, s, "ta", "c1", taFirst, taNoReply)
	wantTimers(t, s, "tb", "c1", tbHold)
	MustOK(t, "delete", del("ta", "c2", engine.TimerQueueTimeout))
	MustOK(t, "delete again", del("ta", "c2", engine.TimerQueueTimeout))
	MustOK(t, "delete in an unknown conversation", del("ta", "nope", engine.TimerNoReply))
	wantTimers(t, s, "ta", "c2")
	wantDue(t, s, at(time.Hour), 10, tbHold, taFirst, taNoReply)

	// One call: its changes in order, several kinds at once.
	taIdle := engine.Timer{Tenant: "ta", Conv: "c1", Kind: engine.TimerUserIdleWarn, DueAt: at(7 * time.Minute)}
	MustOK(t, "set several", s.SetTimers(ctx, "ta", "c1",
		engine.TimerChange{Kind: engine.TimerNoReply},
		engine.TimerChange{Kind: engine.TimerUserIdleWarn, DueAt: at(6 * time.Minute)},
		engine.TimerChange{Kind: engine.TimerFirstResponse},
		engine.TimerChange{Kind: engine.TimerUserIdleWarn, DueAt: taIdle.DueAt}))
	wantTimers(t, s, "ta", "c1", taIdle)
	MustOK(t, "put then delete", s.SetTimers(ctx, "ta", "c2",
		engine.TimerChange{Kind: engine.TimerQueueTimeout, DueAt: at(time.Minute)}, engine.TimerChange{Kind: engine.TimerQueueTimeout}))
	wantTimers(t, s, "ta", "c2")
	MustOK(t, "no changes", s.SetTimers(ctx, "ta", "c1"))
	wantTimers(t, s, "ta", "c1", taIdle)

	WantErrIs(t, "timer of an unknown conversation", put(engine.Timer{Tenant: "tb", Conv: "c2", Kind: engine.TimerNoReply, DueAt: Epoch}), engine.ErrNotFound)
	if err := put(engine.Timer{Tenant: "ta", Conv: "c1", DueAt: Epoch}); err == nil {
		t.Fatal("a timer without a kind was accepted")
	}
}

// testAppendTimers: the timer changes an Append carries are applied, in
// order, once every message is stored, and not at all when one is
// refused.
func testAppendTimers(t *testing.T, open OpenFunc) {
	s := openDefault(t, open)
	ctx := context.Background()
	Seed(t, s, "ta", "c1")
	at := func(d time.Duration) time.Time { return Epoch.Add(d) }
	MustOK(t, "put timer", s.SetTimers(ctx, "ta", "c1", engine.TimerChange{Kind: engine.TimerFirstResponse, DueAt: at(time.Minute)}))
	idle := engine.Timer{Tenant: "ta", Conv: "c1", Kind: engine.TimerUserIdleWarn, DueAt: at(3 * time.Minute)}

	n, err := s.Append(ctx, Msgs("ta", "c1", 1, 2),
		engine.TimerChange{Kind: engine.TimerFirstResponse},
		engine.TimerChange{Kind: engine.TimerUserIdleWarn, DueAt: at(2 * time.Minute)},
		engine.TimerChange{Kind: engine.TimerUserIdleWarn, DueAt: idle.DueAt})
	if n != 2 || err != nil {
		t.Fatalf("Append with timers = (%d, %v), want (2, nil)", n, err)
	}
	wantTimers(t, s, "ta", "c1", idle)

	// A refused message: the prefix before it is stored, the timers not.
	batch := Msgs("ta", "c1", 3, 4)
	batch[1].ClientMsgID = "c1-1"
	n, err = s.Append(ctx, batch, engine.TimerChange{Kind: engine.TimerUserIdleWarn}, engine.TimerChange{Kind: engine.TimerNoReply, DueAt: at(time.Minute)})
	var dup *engine.DuplicateError
	if n != 1 || !errors.As(err, &dup) {
		t.Fatalf("Append with a duplicate = (%d, %v), want (1, *DuplicateError)", n, err)
	}
	wantTimers(t, s, "ta", "c1", idle)

	if _, err := s.Append(ctx, Msgs("ta", "c1", 4, 4), engine.TimerChange{DueAt: at(time.Minute)}); err == nil {
		t.Fatal("a timer change without a kind was accepted")
	}
	got, err := s.Messages(ctx, "ta", "c1", 0, 10)
	MustOK(t, "messages", err)
	WantMessages(t, "after the refused changes", got, Msgs("ta", "c1", 1, 3))
}

func sameTimer(a, b engine.Timer) bool {
	return a.Tenant == b.Tenant && a.Conv == b.Conv && a.Kind == b.Kind && a.DueAt.Equal(b.DueAt)
}

// wantTimers compares the conversation's timers in any order.
func wantTimers(t *testing.T, s engine.Store, tenant, conv string, want ...engine.Timer) {
	t.Helper()
	got, err := s.Timers(context.Background(), tenant, conv)
	byKind := func(a, b engine.Timer) int { return cmp.Compare(a.Kind, b.Kind) }
	got, want = slices.SortedFunc(slices.Values(got), byKind), slices.SortedFunc(slices.Values(want), byKind)
	if err != nil || !slices.EqualFunc(got, want, sameTimer) {
		t.Fatalf("Timers(%s, %s) = %+v, %v; want %+v", tenant, conv, got, err, want)
	}
}

func wantDue(t *testing.T, s engine.Store, now time.Time, limit int, want ...engine.Timer) {
	t.Helper()
	got, err := s.DueTimers(context.Background(), now, limit)
	if err != nil || !slices.EqualFunc(got, want, sameTimer) {
		t.Fatalf("DueTimers(%v, %d) = %+v, %v; want %+v", now, limit, got, err, want)
	}
}
