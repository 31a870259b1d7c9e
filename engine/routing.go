package engine

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Customer is a customer's profile within a tenant. Routing rules read it.
type Customer struct {
	Tenant         string            `json:"tenant"`
	ID             string            `json:"id"`
	DisplayName    string            `json:"display_name"`
	VIPLevel       int               `json:"vip_level"`
	Tags           []string          `json:"tags"`
	Attrs          map[string]string `json:"attrs"`
	LastPurchaseAt time.Time         `json:"last_purchase_at"`
	UpdatedAt      time.Time         `json:"updated_at"`
}

// HasTag reports whether the customer carries tag.
func (c Customer) HasTag(tag string) bool { return slices.Contains(c.Tags, tag) }

// RoutingRule sends customers who match When to Group with Priority.
// Rules are tried in order; the first match wins.
//
// When is one condition or several joined by " and ":
//
//	vip_level > 3            (also >=, <, <=, =, !=)
//	tag = refund             (the customer has the tag)
//	last_purchase_within 7d  (a purchase in the last 7 days; h and m also work)
//	attr.city = 上海         (a custom attribute equals a value)
type RoutingRule struct {
	When     string `json:"when"`
	Group    string `json:"group"`
	Priority int    `json:"priority"`
}

// DefaultGroup is the skill group of conversations no rule routes.
const DefaultGroup = "default"

// Route returns the group and priority for a customer: the first rule whose
// condition holds, or DefaultGroup with priority 0.
func Route(rules []RoutingRule, c Customer, now time.Time) (group string, priority int) {
	for _, r := range rules {
		if ok, err := Matches(r.When, c, now); err == nil && ok {
			return r.Group, r.Priority
		}
	}
	return DefaultGroup, 0
}

// ValidateRules checks every rule's condition and group.
func ValidateRules(rules []RoutingRule) error {
	for i, r := range rules {
		if !ValidID(r.Group) {
			return Errorf(CodeInvalidField, "rule %d: group %q is not a valid id", i+1, r.Group)
		}
		if _, err := Matches(r.When, Customer{}, time.Time{}); err != nil {
			return Errorf(CodeInvalidField, "rule %d: %v", i+1, err)
		}
	}
	return nil
}

// Matches evaluates a rule condition against a customer.
func Matches(when string, c Customer, now time.Time) (bool, error) {
	parts := strings.Split(when, " and ")
	all := true
	for _, p := range parts {
		ok, err := matchOne(strings.Fields(p), c, now)
		if err != nil {
			return false, err
		}
		all = all && ok
	}
	return all, nil
}

func matchOne(f []string, c Customer, now time.Time) (bool, error) {
	switch {
	case len(f) == 3 && f[0] == "vip_level":
		n, err := strconv.Atoi(f[2])
		if err != nil {
			return false, fmt.Errorf("vip_level needs a number, got %q", f[2])
		}
		return compareInt(c.VIPLevel, f[1], n)
	case len(f) == 3 && f[0] == "tag" && f[1] == "=":
		return c.HasTag(f[2]), nil
	case len(f) == 2 && f[0] == "last_purchase_within":
		d, err := parseDays(f[1])
		if err != nil {
			return false, err
		}
		return !c.LastPurchaseAt.IsZero() && now.Sub(c.LastPurchaseAt) <= d, nil
	case len(f) == 3 && strings.HasPrefix(f[0], "attr.") && (f[1] == "=" || f[1] == "!="):
		v, ok := c.Attrs[strings.TrimPrefix(f[0], "attr.")]
		return (ok && v == f[2]) == (f[1] == "="), nil
	default:
		return false, fmt.Errorf("cannot read condition %q", strings.Join(f, " "))
	}
}

func compareInt(a int, op string, b int) (bool, error) {
	switch op {
	case ">":
		return a > b, nil
	case ">=":
		return a >= b, nil
	case "<":
		return a < b, nil
	case "<=":
		return a <= b, nil
	case "=", "==":
		return a == b, nil
	case "!=":
		return a != b, nil
	}
	return false, fmt.Errorf("unknown comparison %q", op)
}

// parseDays reads "7d", "12h" or "30m".
func parseDays(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 {
			return 0, fmt.Errorf("bad duration %q", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("bad duration %q", s)
	}
	return d, nil
}

// Policy is how a queue picks an agent among those with free capacity.
type Policy string

// Assignment policies.
const (
	PolicyLeastLoad   Policy = "least_load"  // fewest conversations relative to capacity (the default)
	PolicyRoundRobin  Policy = "round_robin" // the agent assigned longest ago
	PolicySticky      Policy = "sticky"      // the customer's last agent if free, else least load
	PolicyProficiency Policy = "proficiency" // the highest skill level, then least load
)

// ValidPolicy reports whether p is a known policy.
func ValidPolicy(p Policy) bool {
	switch p {
	case PolicyLeastLoad, PolicyRoundRobin, PolicySticky, PolicyProficiency:
		return true
	}
	return false
}

// AgentSlot is a queue's view of one agent of its group.
type AgentSlot struct {
	ID           string
	Online       bool // online (not away, not offline)
	Capacity     int
	Load         int // conversations held, including reservations in flight
	Proficiency  int // skill level in this group, 1-5
	LastAssigned time.Time
}

// Free reports whether the agent can take one more conversation.
func (a AgentSlot) Free() bool { return a.Online && a.Load < a.Capacity }

// Waiting is a conversation waiting in a queue.
type Waiting struct {
	Conv      string
	Customer  string
	Priority  int
	QueuedAt  time.Time
	LastAgent string // for sticky routing; empty if none or too old
}

// Before orders waiting conversations: higher priority first, then longer
// waiting, then conversation id for a total order.
func (w Waiting) Before(o Waiting) bool {
	if w.Priority != o.Priority {
		return w.Priority > o.Priority
	}
	if !w.QueuedAt.Equal(o.QueuedAt) {
		return w.QueuedAt.Before(o.QueuedAt)
	}
	return w.Conv < o.Conv
}

// PickAgent chooses the agent for w under policy among agents, or returns
// false when none is free. It is deterministic: ties go to the smaller id.
func PickAgent(policy Policy, agents []AgentSlot, w Waiting) (string, bool) {
	var free []AgentSlot
	for _, a := range agents {
		if a.Free() {
			free = append(free, a)
		}
	}
	if len(free) == 0 {
		return "", false
	}
	if policy == PolicySticky && w.LastAgent != "" {
		for _, a := range free {
			if a.ID == w.LastAgent {
				return a.ID, true
			}
		}
	}
	leastLoad := func(a, b AgentSlot) int {
		// Compare load/capacity without floats: a.Load*b.Cap vs b.Load*a.Cap.
		if c := cmp.Compare(a.Load*b.Capacity, b.Load*a.Capacity); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	}
	var best AgentSlot
	switch policy {
	case PolicyRoundRobin:
		best = slices.MinFunc(free, func(a, b AgentSlot) int {
			if c := a.LastAssigned.Compare(b.LastAssigned); c != 0 {
				return c
			}
			return cmp.Compare(a.ID, b.ID)
		})
	case PolicyProficiency:
		best = slices.MinFunc(free, func(a, b AgentSlot) int {
			if c := cmp.Compare(b.Proficiency, a.Proficiency); c != 0 {
				return c
			}
			return leastLoad(a, b)
		})
	default:
		best = slices.MinFunc(free, leastLoad)
	}
	return best.ID, true
}

// EstimateWait estimates how long the conversation at 0-based position in
// a queue waits, given the average handling time of a conversation and the
// number of online agents' total capacity.
func EstimateWait(position int, avgHandle time.Duration, onlineCapacity int) time.Duration {
	if onlineCapacity <= 0 {
		return -1 // nobody to serve: unknown
	}
	return time.Duration(position+1) * avgHandle / time.Duration(onlineCapacity)
}
