package engine

import (
	"encoding/json"
	"slices"
	"testing"
	"time"
)

func TestBusinessHoursOpen(t *testing.T) {
	shanghai := BusinessHours{
		TZ:     "Asia/Shanghai",
		Weekly: []HoursRange{{Day: 1, Open: "09:00", Close: "18:00"}, {Day: 6, Open: "10:00", Close: "12:00"}},
		Closed: []string{"2026-11-30"},
	}
	for _, tc := range []struct {
		name string
		b    BusinessHours
		at   string // UTC
		want bool
	}{
		{"no ranges: always open", BusinessHours{}, "2026-11-22T03:00:00Z", true},
		{"Monday 09:00 Shanghai is 01:00 UTC", shanghai, "2026-11-23T01:00:00Z", true},
		{"Monday 08:59 Shanghai", shanghai, "2026-11-23T00:59:00Z", false},
		{"Monday 18:00 Shanghai: closed (end excluded)", shanghai, "2026-11-23T10:00:00Z", false},
		{"Saturday 11:00 Shanghai", shanghai, "2026-11-28T03:00:00Z", true},
		{"Sunday", shanghai, "2026-11-22T03:00:00Z", false},
		{"a closed Monday", shanghai, "2026-11-30T03:00:00Z", false},
		{"closed dates only", BusinessHours{Closed: []string{"2026-11-22"}}, "2026-11-22T03:00:00Z", false},
	} {
		at, _ := time.Parse(time.RFC3339, tc.at)
		if got := tc.b.Open(at); got != tc.want {
			t.Errorf("%s: Open(%s) = %v, want %v", tc.name, tc.at, got, tc.want)
		}
	}
}

func TestTenantSettingsValidate(t *testing.T) {
	bad := []TenantSettings{
		{Rules: []RoutingRule{{When: "vip_level >> 3", Group: "premium"}}},
		{Rules: []RoutingRule{{When: "vip_level > 3", Group: "bad group"}}},
		{BusinessHours: BusinessHours{TZ: "Mars/Olympus"}},
		{BusinessHours: BusinessHours{Weekly: []HoursRange{{Day: 7, Open: "09:00", Close: "18:00"}}}},
		{BusinessHours: BusinessHours{Weekly: []HoursRange{{Day: 1, Open: "18:00", Close: "09:00"}}}},
		{BusinessHours: BusinessHours{Closed: []string{"30/11/2026"}}},
		{DefaultCapacity: MaxCapacity + 1},
	}
	for i, s := range bad {
		if err := s.Validate(); CodeOf(err) != CodeInvalidField {
			t.Errorf("bad settings %d accepted: %v", i, err)
		}
	}
	good := TenantSettings{
		Rules:         []RoutingRule{{When: "vip_level > 3 and tag = vip", Group: "premium", Priority: 10}},
		BusinessHours: BusinessHours{Weekly: []HoursRange{{Day: 1, Open: "09:00", Close: "24:00"}}},
	}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	d := good.WithDefaults()
	if d.Timers.FirstResponse.D() != time.Minute || d.Timers.ReopenWindow.D() != 24*time.Hour || d.DefaultCapacity != 5 {
		t.Fatalf("defaults: %+v", d)
	}
}

func TestDurationJSON(t *testing.T) {
	var s TimerSettings
	if err := json.Unmarshal([]byte(`{"first_response":"90s","no_reply":120}`), &s); err != nil {
		t.Fatal(err)
	}
	if s.FirstResponse.D() != 90*time.Second || s.NoReply.D() != 2*time.Minute {
		t.Fatalf("decoded %+v", s)
	}
	if err := json.Unmarshal([]byte(`{"first_response":"soon"}`), &s); err == nil {
		t.Fatal("a bad duration was accepted")
	}
	b, _ := json.Marshal(TimerSettings{HoldExpiry: Duration(10 * time.Minute)})
	var back map[string]any
	_ = json.Unmarshal(b, &back)
	if back["hold_expiry"] != "10m0s" {
		t.Fatalf("encoded %s", b)
	}
}

func TestAgentProfileValidate(t *testing.T) {
	for _, p := range []AgentProfile{
		{Capacity: -1}, {Capacity: MaxCapacity + 1},
		{Capacity: 3, Skills: map[string]int{"default": 0}},
		{Capacity: 3, Skills: map[string]int{"bad group": 3}},
	} {
		if err := p.Validate(); CodeOf(err) != CodeInvalidField {
			t.Errorf("bad profile %+v accepted", p)
		}
	}
	if err := (AgentProfile{Capacity: 3, Skills: map[string]int{"default": 5}}).Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestRoutingSkills: a profile that names no skill group (it only sets a
// capacity) serves the default group, like staff without a profile.
func TestRoutingSkills(t *testing.T) {
	capacityOnly := AgentProfile{Capacity: 7}
	if got := capacityOnly.Groups(); !slices.Equal(got, []string{DefaultGroup}) {
		t.Errorf("capacity-only profile serves %v, want [default]", got)
	}
	skilled := AgentProfile{Skills: map[string]int{"refund": 4, "vip": 2}}
	if got := skilled.Groups(); !slices.Equal(got, []string{"refund", "vip"}) {
		t.Errorf("skilled profile serves %v", got)
	}
}
