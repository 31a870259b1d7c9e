package storetest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/kefu-dev/kefu/engine"
)

// testLifecycle: UpdateConversation stores the new state and owner and
// records the event with its details; events come back oldest first,
// scoped by tenant.
func testLifecycle(t *testing.T, open OpenFunc) {
	s := openDefault(t, open)
	ctx := context.Background()
	Seed(t, s, "ta", "c1", "c2")
	Seed(t, s, "tb", "c1")
	c, err := s.Conversation(ctx, "ta", "c1")
	MustOK(t, "conversation", err)
	steps := []struct {
		to               engine.ConvState
		agent            string
		ev               engine.EventType
		by               engine.Party
		evAgent, evGroup string
		note             string
	}{
		{engine.StateQueued, "", engine.EventEscalated, engine.Party{Role: engine.RoleBot, ID: "bot"}, "", "refund", ""},
		{engine.StateAssigned, "a2", engine.EventAssigned, engine.Party{Role: engine.RoleSystem, ID: "router"}, "a2", "refund", ""},
		{engine.StateAssigned, "a1", engine.EventTransferred, engine.Party{Role: engine.RoleAgent, ID: "a2"}, "a1", "", "客户要求退款，已核实订单"},
	}
	var want []engine.ConvEvent
	for i, st := range steps {
		at := Epoch.Add(time.Duration(i+1) * time.Minute)
		ev := engine.ConvEvent{Tenant: "ta", Conv: "c1", Type: st.ev, From: c.State, To: st.to, By: st.by, Reason: "r",
			Agent: st.evAgent, Group: st.evGroup, Note: st.note, At: at}
		c.State, c.AgentID, c.UpdatedAt = st.to, st.agent, at
		MustOK(t, "update conversation", s.UpdateConversation(ctx, c, ev))
		want = append(want, ev)
	}
	got, err := s.Conversation(ctx, "ta", "c1")
	MustOK(t, "conversation after", err)
	if got.State != engine.StateAssigned || got.AgentID != "a1" || !got.UpdatedAt.Equal(c.UpdatedAt) || got.UserID != "u-c1" {
		t.Fatalf("after the updates: %+v", got)
	}
	events, err := s.Events(ctx, "ta", "c1")
	MustOK(t, "events", err)
	if len(events) != len(want) {
		t.Fatalf("events = %+v, want %+v", events, want)
	}
	for i := range want {
		g, w := events[i], want[i]
		if g.Type != w.Type || g.From != w.From || g.To != w.To || g.By != w.By || g.Reason != w.Reason ||
			g.Agent != w.Agent || g.Group != w.Group || g.Note != w.Note || !g.At.Equal(w.At) {
			t.Fatalf("event %d = %+v, want %+v", i, g, w)
		}
	}
	for _, q := range [][2]string{{"ta", "c2"}, {"tb", "c1"}, {"ta", "nope"}} {
		if evs, err := s.Events(ctx, q[0], q[1]); err != nil || len(evs) != 0 {
			t.Fatalf("events of %v = %v, %v; want none", q, evs, err)
		}
	}
	if other, _ := s.Conversation(ctx, "tb", "c1"); other.State != engine.StateBot || other.AgentID != "" {
		t.Fatalf("tenant b's conversation changed: %+v", other)
	}
	missing := engine.Conversation{Tenant: "ta", ID: "nope", State: engine.StateQueued}
	if err := s.UpdateConversation(ctx, missing, engine.ConvEvent{Type: engine.EventEscalated}); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("updating an unknown conversation: %v, want ErrNotFound", err)
	}
}

// testKnowledgeBase: PutFAQ creates and replaces by id, DeleteFAQ removes,
// FAQEntries lists by id, each tenant sees only its own.
func testKnowledgeBase(t *testing.T, open OpenFunc) {
	s := openDefault(t, open)
	ctx := context.Background()
	Seed(t, s, "ta")
	Seed(t, s, "tb")
	e1 := engine.FAQEntry{ID: "faq-2", Category: "订单", Question: "怎么取消订单？", Similar: []string{"不想要了", "撤销订单"},
		Answer: "在“我的订单”中取消。", Tags: []string{"取消"}, Enabled: true, UpdatedAt: Epoch, Version: 1}
	e2 := engine.FAQEntry{ID: "faq-1", Question: "运费多少？", Answer: "满69元包邮。", Enabled: false, UpdatedAt: Epoch, Version: 3}
	MustOK(t, "put", s.PutFAQ(ctx, "ta", []engine.FAQEntry{e1, e2}))
	MustOK(t, "put b", s.PutFAQ(ctx, "tb", []engine.FAQEntry{{ID: "faq-1", Question: "b", Answer: "b", Enabled: true, UpdatedAt: Epoch, Version: 1}}))
	got, err := s.FAQEntries(ctx, "ta")
	MustOK(t, "entries", err)
	e2.Similar, e2.Tags = []string{}, []string{}
	wantFAQ(t, got, []engine.FAQEntry{e2, e1})

	e1.Answer, e1.Version, e1.UpdatedAt, e1.Similar = "新的答案", 2, Epoch.Add(time.Hour), nil
	MustOK(t, "replace", s.PutFAQ(ctx, "ta", []engine.FAQEntry{e1}))
	MustOK(t, "delete", s.DeleteFAQ(ctx, "ta", "faq-1"))
	got, err = s.FAQEntries(ctx, "ta")
	MustOK(t, "entries after", err)
	e1.Similar = []string{}
	wantFAQ(t, got, []engine.FAQEntry{e1})
	if err := s.DeleteFAQ(ctx, "ta", "faq-1"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("deleting twice: %v, want ErrNotFound", err)
	}
	if b, err := s.FAQEntries(ctx, "tb"); err != nil || len(b) != 1 || b[0].Question != "b" {
		t.Fatalf("tenant b's entries: %+v, %v", b, err)
	}
	if none, err := s.FAQEntries(ctx, "nobody"); err != nil || len(none) != 0 {
		t.Fatalf("an unknown tenant's entries: %+v, %v", none, err)
	}
	if err := s.PutFAQ(ctx, "nobody", []engine.FAQEntry{e1}); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("put into an unknown tenant: %v, want ErrNotFound", err)
	}
}

func wantFAQ(t *testing.T, got, want []engine.FAQEntry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("entries = %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.UpdatedAt.Equal(w.UpdatedAt) {
			t.Fatalf("entry %d updated_at %v, want %v", i, g.UpdatedAt, w.UpdatedAt)
		}
		g.UpdatedAt, w.UpdatedAt = time.Time{}, time.Time{}
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("entry %d = %+v, want %+v", i, g, w)
		}
	}
}

// testBodyOptions: a quick_reply body keeps its options.
func testBodyOptions(t *testing.T, open OpenFunc) {
	s := openDefault(t, open)
	Seed(t, s, "ta", "c1")
	m := Msg("ta", "c1", 1)
	m.From = engine.Party{Role: engine.RoleBot, ID: "bot"}
	m.Body = engine.Body{Type: engine.BodyQuickReply, Text: "您是不是想问：",
		Options: []engine.Option{{ID: "faq-1", Text: "怎么退货？"}, {ID: "faq-2", Text: "退款多久到账？"}}}
	AppendAll(t, s, []engine.Message{m})
	got, err := s.Messages(context.Background(), "ta", "c1", 0, 10)
	MustOK(t, "messages", err)
	WantMessages(t, "quick reply", got, []engine.Message{m})
}
