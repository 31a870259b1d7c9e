package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kefu-dev/kefu/engine"
)

// testAudit: AppendAudit and AuditLog. Entries round-trip field by field,
// list newest first, filter by action, actor, target and time in every
// combination, page with Before and Limit, and stay in their tenant.
func testAudit(t *testing.T, open OpenFunc) {
	s := openDefault(t, open)
	ctx := context.Background()
	Seed(t, s, "ta")
	Seed(t, s, "tb")
	Seed(t, s, "tc")

	MustOK(t, "append nothing", s.AppendAudit(ctx, nil))

	admin := engine.Party{Role: engine.RoleAgent, ID: "s-admin"}
	agent := engine.Party{Role: engine.RoleAgent, ID: "s-agent"}
	rows := []struct {
		actor  engine.Party
		action engine.AuditAction
		target string
	}{
		{admin, engine.AuditLoginSucceeded, ""},
		{admin, engine.AuditConfigChanged, "group/vip"},
		{agent, engine.AuditLoginFailed, ""},
		{agent, engine.AuditTranscriptViewed, "c1"},
		{admin, engine.AuditTranscriptViewed, "c1"},
		{admin, engine.AuditStaffChanged, "s-agent"},
		{engine.Party{}, engine.AuditKeyRotated, ""}, // Kefu itself
		{agent, engine.AuditTranscriptViewed, "c2"},
		{admin, engine.AuditConfigChanged, "settings"},
		{admin, engine.AuditConfigChanged, "group/vip"},
		{agent, engine.AuditLogout, ""},
	}
	var all []engine.AuditEntry
	for i, r := range rows {
		e := engine.AuditEntry{Tenant: "ta", ID: fmt.Sprintf("e%02d", i), At: Epoch.Add(time.Duration(i) * time.Minute),
			Actor: r.actor, Action: r.action, Target: r.target}
		if r.actor.ID != "" {
			e.IP = fmt.Sprintf("10.0.0.%d", i)
		}
		if i%3 == 0 {
			e.Detail = fmt.Sprintf("detail %d, 中文", i)
		}
		all = append(all, e)
	}
	// One call of several entries, and single ones, in no particular order.
	MustOK(t, "append a batch", s.AppendAudit(ctx, []engine.AuditEntry{all[3], all[0], all[7], all[1], all[2]}))
	for _, i := range []int{10, 4, 5, 9, 6, 8} {
		MustOK(t, "append one", s.AppendAudit(ctx, all[i:i+1]))
	}
	// Tenant tb has the same ids, actors and targets, at other times.
	var inB []engine.AuditEntry
	for i, e := range all[:4] {
		e.Tenant, e.At = "tb", Epoch.Add(time.Duration(i)*time.Minute+30*time.Second)
		inB = append(inB, e)
	}
	MustOK(t, "append in tb", s.AppendAudit(ctx, inB))

	got, err := s.AuditLog(ctx, "ta", engine.AuditQuery{})
	MustOK(t, "audit log", err)
	wantAudit(t, "the whole log, newest first", got, filterAudit(all, engine.AuditQuery{}))
	got, err = s.AuditLog(ctx, "tb", engine.AuditQuery{})
	MustOK(t, "audit log of tb", err)
	wantAudit(t, "tb's log", got, filterAudit(inB, engine.AuditQuery{}))
	got, err = s.AuditLog(ctx, "nobody", engine.AuditQuery{})
	if err != nil || len(got) != 0 {
		t.Fatalf("log of an unknown tenant = %v, %v; want none", got, err)
	}

	// Every combination of the four filters, with two sets of values,
	// against a plain filter in Go.
	values := []engine.AuditQuery{
		{Action: engine.AuditTranscriptViewed, ActorID: agent.ID, Target: "c1", Before: all[9].At},
		{Action: engine.AuditConfigChanged, ActorID: admin.ID, Target: "group/vip", Before: all[5].At},
	}
	for _, v := range values {
		for mask := range 1 << 4 {
			var q engine.AuditQuery
			if mask&1 != 0 {
				q.Action = v.Action
			}
			if mask&2 != 0 {
				q.ActorID = v.ActorID
			}
			if mask&4 != 0 {
				q.Target = v.Target
			}
			if mask&8 != 0 {
				q.Before = v.Before
			}
			for _, tenant := range []string{"ta", "tb"} {
				got, err := s.AuditLog(ctx, tenant, q)
				MustOK(t, "audit log", err)
				want := filterAudit(all, q)
				if tenant == "tb" {
					want = filterAudit(inB, q)
				}
				wantAudit(t, fmt.Sprintf("AuditLog(%s, %+v)", tenant, q), got, want)
			}
		}
	}
	for _, q := range []engine.AuditQuery{
		{Action: engine.AuditAccountLocked}, {ActorID: "nobody"}, {Target: "group"}, {Before: Epoch},
	} {
		if got, err := s.AuditLog(ctx, "ta", q); err != nil || len(got) != 0 {
			t.Errorf("AuditLog(%+v) = %v, %v; want none", q, got, err)
		}
	}

	// Paging: Limit takes the newest, Before continues after a page.
	var paged []engine.AuditEntry
	q := engine.AuditQuery{Limit: 4}
	for range len(all) {
		page, err := s.AuditLog(ctx, "ta", q)
		MustOK(t, "page", err)
		if len(page) > q.Limit {
			t.Fatalf("page of %d entries with limit %d", len(page), q.Limit)
		}
		paged = append(paged, page...)
		if len(page) < q.Limit {
			break
		}
		q.Before = page[len(page)-1].At
	}
	wantAudit(t, "paged by 4", paged, filterAudit(all, engine.AuditQuery{}))
	got, err = s.AuditLog(ctx, "ta", engine.AuditQuery{Action: engine.AuditConfigChanged, Limit: 2})
	MustOK(t, "limit", err)
	wantAudit(t, "the newest 2 configuration changes", got, []engine.AuditEntry{all[9], all[8]})

	// Entries of the same millisecond come newest id first; a zero At is
	// stamped with the store's clock; without a Limit a page holds
	// DefaultAuditLimit entries.
	var many []engine.AuditEntry
	for i := range engine.DefaultAuditLimit + 5 {
		many = append(many, engine.AuditEntry{Tenant: "tc", ID: fmt.Sprintf("m%03d", i), At: Epoch.Add(-time.Hour),
			Action: engine.AuditTranscriptExported, Target: "c9"})
	}
	many[7].At = time.Time{}
	MustOK(t, "append many", s.AppendAudit(ctx, many))
	many[7].At = Epoch
	got, err = s.AuditLog(ctx, "tc", engine.AuditQuery{})
	MustOK(t, "default limit", err)
	want := filterAudit(many, engine.AuditQuery{})
	if want[0].ID != "m007" || want[1].ID != fmt.Sprintf("m%03d", len(many)-1) {
		t.Fatalf("the expected order is wrong: %v, %v", want[0].ID, want[1].ID)
	}
	wantAudit(t, "the default page", got, want[:engine.DefaultAuditLimit])

	// Refusals: nothing of a refused call is stored.
	err = s.AppendAudit(ctx, []engine.AuditEntry{{Tenant: "nobody", ID: "x", At: Epoch, Action: engine.AuditLogout}})
	WantErrIs(t, "append to an unknown tenant", err, engine.ErrNotFound)
	dup := all[0]
	dup.Detail = "overwritten"
	WantErrIs(t, "append a taken id", s.AppendAudit(ctx, []engine.AuditEntry{dup}), engine.ErrExists)
	for _, bad := range []engine.AuditEntry{
		{ID: "x", Action: engine.AuditLogout},
		{Tenant: "ta", Action: engine.AuditLogout},
		{Tenant: "ta", ID: "x"},
	} {
		if err := s.AppendAudit(ctx, []engine.AuditEntry{bad}); err == nil || errors.Is(err, engine.ErrClosed) {
			t.Errorf("AppendAudit(%+v) = %v, want a refusal", bad, err)
		}
	}
	got, err = s.AuditLog(ctx, "ta", engine.AuditQuery{})
	MustOK(t, "audit log after refusals", err)
	wantAudit(t, "the log after refusals", got, filterAudit(all, engine.AuditQuery{}))
}

// filterAudit is AuditLog in Go, without a limit.
func filterAudit(es []engine.AuditEntry, q engine.AuditQuery) []engine.AuditEntry {
	out := []engine.AuditEntry{}
	for _, e := range es {
		if (q.Action == "" || e.Action == q.Action) && (q.ActorID == "" || e.Actor.ID == q.ActorID) &&
			(q.Target == "" || e.Target == q.Target) && (q.Before.IsZero() || e.At.Before(q.Before)) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b engine.AuditEntry) int {
		return cmp.Or(b.At.Compare(a.At), cmp.Compare(b.ID, a.ID))
	})
	return out
}

// wantAudit fails t unless got are want, in order and field by field, with
// times in UTC.
func wantAudit(t *testing.T, what string, got, want []engine.AuditEntry) {
	t.Helper()
	auditIDs := func(es []engine.AuditEntry) []string {
		out := []string{}
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}
	if len(got) != len(want) {
		t.Fatalf("%s: got %v, want %v", what, auditIDs(got), auditIDs(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Tenant != w.Tenant || g.ID != w.ID || !g.At.Equal(w.At) || g.At.Location() != time.UTC || g.Actor != w.Actor ||
			g.IP != w.IP || g.Action != w.Action || g.Target != w.Target || g.Detail != w.Detail {
			t.Fatalf("%s: entry %d = %+v, want %+v", what, i, g, w)
		}
	}
}
