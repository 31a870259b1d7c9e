package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kefu-dev/kefu/engine"
)

// testRatings: a conversation's rating round-trips through
// CreateConversation, UpdateConversation (set, replaced, removed) and both
// reads; a rated event keeps its score; nothing leaks to another
// conversation or tenant.
func testRatings(t *testing.T, open OpenFunc) {
	s := openDefault(t, open)
	ctx := context.Background()
	Seed(t, s, "ta", "c1", "c2")
	Seed(t, s, "tb", "c1")

	rated := engine.Conversation{Tenant: "ta", ID: "pre", UserID: "u1", State: engine.StateClosed, CreatedAt: Epoch.Add(-time.Hour),
		UpdatedAt: Epoch.Add(-time.Minute), Rating: &engine.Rating{Score: 3, Comment: "一般", At: Epoch.Add(-30*time.Second + 7*time.Millisecond)}}
	MustOK(t, "create rated", s.CreateConversation(ctx, rated))
	wantConversation(t, s, "created with a rating", rated)

	c, err := s.Conversation(ctx, "ta", "c1")
	MustOK(t, "conversation", err)
	if c.Rating != nil {
		t.Fatalf("a new conversation has a rating: %+v", c.Rating)
	}
	c.State, c.UpdatedAt = engine.StateClosed, Epoch.Add(time.Minute)
	MustOK(t, "close", s.UpdateConversation(ctx, c, engine.ConvEvent{Type: engine.EventClosed, From: engine.StateBot, To: engine.StateClosed}))
	c.Rating = &engine.Rating{Score: 5, Comment: "客服很耐心，问题解决了", At: Epoch.Add(2*time.Minute + 345*time.Millisecond)}
	ev := engine.ConvEvent{Type: engine.EventRated, From: engine.StateClosed, To: engine.StateClosed,
		By: engine.Party{Role: engine.RoleUser, ID: c.UserID}, Score: 5, Note: c.Rating.Comment, At: c.Rating.At}
	MustOK(t, "rate", s.UpdateConversation(ctx, c, ev))
	wantConversation(t, s, "after the rating", c)
	events, err := s.Events(ctx, "ta", "c1")
	MustOK(t, "events", err)
	if len(events) != 2 || events[0].Score != 0 || events[1].Type != engine.EventRated || events[1].Score != 5 ||
		events[1].Note != ev.Note || events[1].By != ev.By || !events[1].At.Equal(ev.At) {
		t.Fatalf("events = %+v", events)
	}

	// A later rating replaces it, without a comment; ListConversations
	// returns it too.
	c.Rating = &engine.Rating{Score: 1, At: Epoch.Add(time.Hour)}
	MustOK(t, "rate again", s.UpdateConversation(ctx, c, engine.ConvEvent{Type: engine.EventRated, Score: 1}))
	wantConversation(t, s, "after a second rating", c)
	list, err := s.ListConversations(ctx, "ta", engine.ConversationQuery{State: engine.StateClosed})
	MustOK(t, "list", err)
	if len(list) != 2 || !SameConversation(list[0], c) || !SameConversation(list[1], rated) {
		t.Fatalf("listed %+v, want %+v and %+v", list, c, rated)
	}
	if other, _ := s.Conversation(ctx, "ta", "c2"); other.Rating != nil {
		t.Fatalf("another conversation got a rating: %+v", other)
	}
	if other, _ := s.Conversation(ctx, "tb", "c1"); other.Rating != nil {
		t.Fatalf("another tenant's conversation got a rating: %+v", other)
	}

	// An update without a rating removes it.
	c.Rating, c.State = nil, engine.StateQueued
	MustOK(t, "reopen", s.UpdateConversation(ctx, c, engine.ConvEvent{Type: engine.EventReopened}))
	wantConversation(t, s, "after an update without a rating", c)
}

// testCanned: PutCanned creates and replaces by id; CannedResponses lists
// the tenant's and one owner's, the tenant's first, each by shortcut, never
// another owner's; a shortcut is unique among the tenant's and among each
// owner's; DeleteCanned removes; tenants are isolated.
func testCanned(t *testing.T, open OpenFunc) {
	s := openDefault(t, open)
	ctx := context.Background()
	Seed(t, s, "ta")
	Seed(t, s, "tb")
	put := func(c engine.CannedResponse) engine.CannedResponse {
		t.Helper()
		MustOK(t, "put "+c.ID, s.PutCanned(ctx, c))
		return c
	}
	tenantWide := func(id, shortcut, text string) engine.CannedResponse {
		return engine.CannedResponse{Tenant: "ta", ID: id, Scope: engine.CannedTenant, Shortcut: shortcut, Title: "标题 " + id,
			Text: text, UpdatedAt: Epoch.Add(time.Duration(len(id)) * time.Millisecond)}
	}
	personal := func(id, owner, shortcut string) engine.CannedResponse {
		return engine.CannedResponse{Tenant: "ta", ID: id, Scope: engine.CannedPersonal, Owner: owner, Shortcut: shortcut,
			Text: "text of " + id, UpdatedAt: Epoch}
	}
	wait := put(tenantWide("t1", "wait", "请稍等，我帮您查询一下。"))
	hi := put(tenantWide("t2", "hi", "您好，请问有什么可以帮您？"))
	refund := put(tenantWide("t3", "退款", "退款将在 1-3 个工作日内原路退回。"))
	aHi := put(personal("p1", "alice", "hi")) // the tenant's shortcut, for alice alone
	aZ := put(personal("p2", "alice", "a-z_9"))
	bHi := put(personal("p3", "bob", "hi")) // alice's shortcut too: another owner
	put(engine.CannedResponse{Tenant: "tb", ID: "t1", Scope: engine.CannedTenant, Shortcut: "hi", Text: "tb", UpdatedAt: Epoch})

	wantCanned(t, s, "ta", "alice", hi, wait, refund, aZ, aHi)
	wantCanned(t, s, "ta", "bob", hi, wait, refund, bHi)
	wantCanned(t, s, "ta", "", hi, wait, refund)
	wantCanned(t, s, "ta", "carol", hi, wait, refund)
	if got, err := s.CannedResponses(ctx, "nobody", "alice"); err != nil || len(got) != 0 {
		t.Fatalf("an unknown tenant's = %+v, %v", got, err)
	}

	// Replacing by id: a new shortcut, text and scope.
	hi.Shortcut, hi.Text, hi.UpdatedAt = "hello", "您好！", Epoch.Add(time.Hour)
	put(hi)
	aZ.Scope, aZ.Owner = engine.CannedTenant, "" // alice's, shared with the tenant
	put(aZ)
	wantCanned(t, s, "ta", "alice", aZ, hi, wait, refund, aHi)

	// A taken shortcut is refused and changes nothing: the tenant's among
	// the tenant's, a personal one among its owner's.
	for name, c := range map[string]engine.CannedResponse{
		"a new tenant one":     tenantWide("t9", "wait", "x"),
		"a renamed tenant one": func() engine.CannedResponse { c := refund; c.Shortcut = "wait"; return c }(),
		"a new personal one":   personal("p9", "bob", "hi"),
		"a personal one promoted": func() engine.CannedResponse {
			c := aHi
			c.Scope, c.Owner = engine.CannedTenant, ""
			c.Shortcut = "退款"
			return c
		}(),
	} {
		if err := s.PutCanned(ctx, c); !errors.Is(err, engine.ErrExists) {
			t.Errorf("%s with a taken shortcut: %v, want ErrExists", name, err)
		}
	}
	wantCanned(t, s, "ta", "alice", aZ, hi, wait, refund, aHi)
	wantCanned(t, s, "ta", "bob", aZ, hi, wait, refund, bHi)

	MustOK(t, "delete", s.DeleteCanned(ctx, "ta", "t1"))
	if err := s.DeleteCanned(ctx, "ta", "t1"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("deleting twice: %v, want ErrNotFound", err)
	}
	if err := s.DeleteCanned(ctx, "tb", "p1"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("deleting another tenant's: %v, want ErrNotFound", err)
	}
	wantCanned(t, s, "ta", "alice", aZ, hi, refund, aHi)
	put(tenantWide("t9", "wait", "the shortcut is free again"))
	if got, err := s.CannedResponses(ctx, "tb", "alice"); err != nil || len(got) != 1 || got[0].Text != "tb" {
		t.Fatalf("tenant tb's = %+v, %v", got, err)
	}
	if err := s.PutCanned(ctx, engine.CannedResponse{Tenant: "nobody", ID: "x", Scope: engine.CannedTenant, Shortcut: "x", Text: "x"}); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("put into an unknown tenant: %v, want ErrNotFound", err)
	}
}

func wantCanned(t *testing.T, s engine.Store, tenant, owner string, want ...engine.CannedResponse) {
	t.Helper()
	got, err := s.CannedResponses(context.Background(), tenant, owner)
	MustOK(t, "canned responses", err)
	if len(got) != len(want) {
		t.Fatalf("CannedResponses(%s, %q) = %+v, want %+v", tenant, owner, got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.UpdatedAt.Equal(w.UpdatedAt) {
			t.Fatalf("CannedResponses(%s, %q)[%d].UpdatedAt = %v, want %v", tenant, owner, i, g.UpdatedAt, w.UpdatedAt)
		}
		g.UpdatedAt = w.UpdatedAt
		if g != w {
			t.Fatalf("CannedResponses(%s, %q)[%d] = %+v, want %+v", tenant, owner, i, g, w)
		}
	}
}
