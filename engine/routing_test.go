package engine

import (
	"testing"
	"time"
)

func TestRoute(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	rules := []RoutingRule{
		{When: "vip_level > 3", Group: "premium", Priority: 10},
		{When: "last_purchase_within 7d", Group: "retention", Priority: 5},
		{When: "tag = refund and attr.city = 上海", Group: "sh-refund", Priority: 3},
	}
	tests := []struct {
		name     string
		c        Customer
		group    string
		priority int
	}{
		{"vip", Customer{VIPLevel: 4}, "premium", 10},
		{"vip boundary", Customer{VIPLevel: 3}, DefaultGroup, 0},
		{"recent buyer", Customer{LastPurchaseAt: now.Add(-6 * 24 * time.Hour)}, "retention", 5},
		{"old buyer", Customer{LastPurchaseAt: now.Add(-8 * 24 * time.Hour)}, DefaultGroup, 0},
		{"first rule wins", Customer{VIPLevel: 5, LastPurchaseAt: now}, "premium", 10},
		{"both conditions", Customer{Tags: []string{"refund"}, Attrs: map[string]string{"city": "上海"}}, "sh-refund", 3},
		{"one condition only", Customer{Tags: []string{"refund"}}, DefaultGroup, 0},
		{"nobody special", Customer{}, DefaultGroup, 0},
	}
	for _, tc := range tests {
		g, p := Route(rules, tc.c, now)
		if g != tc.group || p != tc.priority {
			t.Errorf("%s: Route = %s/%d, want %s/%d", tc.name, g, p, tc.group, tc.priority)
		}
	}
	if err := ValidateRules(rules); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []RoutingRule{{When: "vip_level > x", Group: "g"}, {When: "colour = red", Group: "g"}, {When: "vip_level > 1", Group: "a b"}, {When: "last_purchase_within soon", Group: "g"}} {
		if ValidateRules([]RoutingRule{bad}) == nil {
			t.Errorf("rule %+v accepted", bad)
		}
	}
}

func TestPickAgent(t *testing.T) {
	t0 := time.Unix(1000, 0)
	agents := []AgentSlot{
		{ID: "a", Online: true, Capacity: 3, Load: 2, Proficiency: 5, LastAssigned: t0.Add(3 * time.Second)},
		{ID: "b", Online: true, Capacity: 3, Load: 1, Proficiency: 2, LastAssigned: t0.Add(2 * time.Second)},
		{ID: "c", Online: true, Capacity: 6, Load: 2, Proficiency: 2, LastAssigned: t0.Add(1 * time.Second)},
		{ID: "d", Online: false, Capacity: 9, Load: 0, Proficiency: 5},
		{ID: "e", Online: true, Capacity: 2, Load: 2, Proficiency: 5},
	}
	tests := []struct {
		policy Policy
		w      Waiting
		want   string
	}{
		{PolicyLeastLoad, Waiting{}, "b"},               // 1/3 ties 2/6: smaller id
		{PolicyRoundRobin, Waiting{}, "c"},              // assigned longest ago
		{PolicyProficiency, Waiting{}, "a"},             // e is full, d offline
		{PolicySticky, Waiting{LastAgent: "a"}, "a"},    // last agent free
		{PolicySticky, Waiting{LastAgent: "e"}, "b"},    // last agent full: least load
		{PolicySticky, Waiting{LastAgent: "d"}, "b"},    // last agent offline
		{PolicyLeastLoad, Waiting{LastAgent: "a"}, "b"}, // not sticky
	}
	for _, tc := range tests {
		if got, ok := PickAgent(tc.policy, agents, tc.w); !ok || got != tc.want {
			t.Errorf("%s %+v: got %q %v, want %q", tc.policy, tc.w, got, ok, tc.want)
		}
	}
	if _, ok := PickAgent(PolicyLeastLoad, []AgentSlot{{ID: "x", Online: true, Capacity: 1, Load: 1}}, Waiting{}); ok {
		t.Error("picked a full agent")
	}
}

func TestWaitingOrder(t *testing.T) {
	t0 := time.Unix(1000, 0)
	early := Waiting{Conv: "1", QueuedAt: t0}
	late := Waiting{Conv: "2", QueuedAt: t0.Add(time.Minute)}
	vipLate := Waiting{Conv: "3", QueuedAt: t0.Add(time.Hour), Priority: 10}
	if !early.Before(late) || late.Before(early) {
		t.Error("earlier must go first at equal priority")
	}
	if !vipLate.Before(early) {
		t.Error("a higher priority must go first however late")
	}
	if EstimateWait(2, time.Minute, 3) != time.Minute || EstimateWait(0, time.Minute, 0) >= 0 {
		t.Error("EstimateWait")
	}
}
