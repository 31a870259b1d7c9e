package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Duration is a time.Duration that reads and writes JSON as Go duration
// text ("90s", "5m", "24h"), the form people type in settings.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON writes "5m0s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "5m", or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var secs float64
		if json.Unmarshal(b, &secs) != nil {
			return fmt.Errorf("a duration is text such as \"90s\" or \"5m\"")
		}
		*d = Duration(secs * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("bad duration %q", s)
	}
	*d = Duration(v)
	return nil
}

// AgentProfile is how a member of staff takes conversations: how many at
// once and in which skill groups, with a proficiency of 1 to 5 in each.
// Presence and load are live state of the agent's actor, not stored.
type AgentProfile struct {
	Tenant    string         `json:"tenant"`
	ID        string         `json:"id"` // the staff id
	Capacity  int            `json:"capacity"`
	Skills    map[string]int `json:"skills"` // group id -> proficiency 1-5
	UpdatedAt time.Time      `json:"updated_at"`
}

// MaxCapacity bounds an agent's concurrent conversations.
const MaxCapacity = 100

// Validate checks capacity and skills.
func (p AgentProfile) Validate() error {
	if p.Capacity < 0 || p.Capacity > MaxCapacity {
		return Errorf(CodeInvalidField, "capacity must be between 0 and %d", MaxCapacity)
	}
	for g, lvl := range p.Skills {
		if !ValidID(g) {
			return Errorf(CodeInvalidField, "skill group %q is not a valid id", g)
		}
		if lvl < 1 || lvl > 5 {
			return Errorf(CodeInvalidField, "proficiency in %q must be 1-5", g)
		}
	}
	return nil
}

// DefaultAgentProfile is the profile of staff nobody configured: the
// default group at proficiency 3, the tenant's default capacity.
func DefaultAgentProfile(tenant, id string, capacity int) AgentProfile {
	return AgentProfile{Tenant: tenant, ID: id, Capacity: capacity, Skills: map[string]int{DefaultGroup: 3}}
}

// RoutingSkills are the groups routing offers the agent conversations of,
// with proficiency: their skills, or the default group for staff whose
// profile names none (it only sets a capacity, say).
func (p AgentProfile) RoutingSkills() map[string]int {
	if len(p.Skills) == 0 {
		return map[string]int{DefaultGroup: 3}
	}
	return p.Skills
}

// Groups returns the groups of RoutingSkills, sorted.
func (p AgentProfile) Groups() []string {
	skills := p.RoutingSkills()
	out := make([]string, 0, len(skills))
	for g := range skills {
		out = append(out, g)
	}
	slices.Sort(out)
	return out
}

// SkillGroup is a team conversations are routed to, with its policy.
type SkillGroup struct {
	Tenant    string    `json:"tenant"`
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Policy    Policy    `json:"policy"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Validate checks the group's id and policy.
func (g SkillGroup) Validate() error {
	if !ValidID(g.ID) {
		return NewError(CodeInvalidField, "group id is not a valid id")
	}
	if g.Policy != "" && !ValidPolicy(g.Policy) {
		return Errorf(CodeInvalidField, "unknown policy %q (least_load, round_robin, sticky, proficiency)", g.Policy)
	}
	return nil
}

// TenantSettings is how a tenant routes conversations and how long its
// timers run. Zero fields mean the defaults (WithDefaults).
type TenantSettings struct {
	Tenant          string        `json:"tenant"`
	Rules           []RoutingRule `json:"rules"`
	BusinessHours   BusinessHours `json:"business_hours"`
	Timers          TimerSettings `json:"timers"`
	DefaultCapacity int           `json:"default_capacity"` // of agents without a profile
	// AvgHandleTime is the typical length of a chat, for queue estimates.
	AvgHandleTime Duration `json:"avg_handle_time"`
	// StickyWindow is how long a customer's last agent is preferred.
	StickyWindow Duration  `json:"sticky_window"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// TimerSettings are the durations of a tenant's conversation timers.
type TimerSettings struct {
	// FirstResponse warns the assigned agent who has not replied this long
	// after assignment; FirstResponseAlert later alerts supervisors and,
	// with RequeueOnSLA, queues the conversation again.
	FirstResponse      Duration `json:"first_response"`
	FirstResponseAlert Duration `json:"first_response_alert"`
	RequeueOnSLA       bool     `json:"requeue_on_sla"`
	// NoReply reminds the agent of a customer message left unanswered.
	NoReply Duration `json:"no_reply"`
	// UserIdleWarn warns a customer who has not answered the agent; the
	// conversation closes UserIdleClose after the warning.
	UserIdleWarn  Duration `json:"user_idle_warn"`
	UserIdleClose Duration `json:"user_idle_close"`
	// QueueTimeout offers a waiting customer to leave a message.
	QueueTimeout Duration `json:"queue_timeout"`
	// HoldExpiry ends a hold and reminds the agent.
	HoldExpiry Duration `json:"hold_expiry"`
	// ReopenWindow is how long after closing a customer may reopen.
	ReopenWindow Duration `json:"reopen_window"`
}

// WithDefaults fills zero fields with Kefu's defaults.
func (s TenantSettings) WithDefaults() TenantSettings {
	def := func(d *Duration, v time.Duration) {
		if *d <= 0 {
			*d = Duration(v)
		}
	}
	t := &s.Timers
	def(&t.FirstResponse, time.Minute)
	def(&t.FirstResponseAlert, 2*time.Minute)
	def(&t.NoReply, 3*time.Minute)
	def(&t.UserIdleWarn, 10*time.Minute)
	def(&t.UserIdleClose, 5*time.Minute)
	def(&t.QueueTimeout, 5*time.Minute)
	def(&t.HoldExpiry, 10*time.Minute)
	def(&t.ReopenWindow, 24*time.Hour)
	def(&s.AvgHandleTime, 5*time.Minute)
	def(&s.StickyWindow, 72*time.Hour)
	if s.DefaultCapacity <= 0 {
		s.DefaultCapacity = 5
	}
	return s
}

// Validate checks rules, business hours and capacity.
func (s TenantSettings) Validate() error {
	if err := ValidateRules(s.Rules); err != nil {
		return err
	}
	if s.DefaultCapacity < 0 || s.DefaultCapacity > MaxCapacity {
		return Errorf(CodeInvalidField, "default_capacity must be between 0 and %d", MaxCapacity)
	}
	return s.BusinessHours.Validate()
}

// BusinessHours are the hours a tenant's service desk is staffed. With no
// Weekly ranges it is always open.
type BusinessHours struct {
	TZ     string       `json:"tz"`     // IANA zone; empty means Asia/Shanghai
	Weekly []HoursRange `json:"weekly"` // open ranges; several per day allowed
	Closed []string     `json:"closed"` // whole dates closed, "2026-10-01"
}

// HoursRange is one open range of a weekday (0 = Sunday), "09:00"-"18:00".
type HoursRange struct {
	Day   int    `json:"day"`
	Open  string `json:"open"`
	Close string `json:"close"`
}

var zones sync.Map // name -> *time.Location

func (b BusinessHours) location() (*time.Location, error) {
	name := b.TZ
	if name == "" {
		name = "Asia/Shanghai"
	}
	if loc, ok := zones.Load(name); ok {
		return loc.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	zones.Store(name, loc)
	return loc, nil
}

// Validate checks the zone, the ranges and the dates.
func (b BusinessHours) Validate() error {
	if _, err := b.location(); err != nil {
		return Errorf(CodeInvalidField, "business_hours.tz: unknown time zone %q", b.TZ)
	}
	for i, r := range b.Weekly {
		o, err1 := clockMinutes(r.Open)
		c, err2 := clockMinutes(r.Close)
		if r.Day < 0 || r.Day > 6 || err1 != nil || err2 != nil || o >= c {
			return Errorf(CodeInvalidField, "business_hours.weekly[%d]: need day 0-6 and open < close as HH:MM", i)
		}
	}
	for _, d := range b.Closed {
		if _, err := time.Parse(time.DateOnly, d); err != nil {
			return Errorf(CodeInvalidField, "business_hours.closed: %q is not a YYYY-MM-DD date", d)
		}
	}
	return nil
}

// Open reports whether the desk is staffed at t.
func (b BusinessHours) Open(t time.Time) bool {
	if len(b.Weekly) == 0 && len(b.Closed) == 0 {
		return true
	}
	loc, err := b.location()
	if err != nil {
		return true // Validate refuses bad zones; never strand customers on one
	}
	local := t.In(loc)
	if slices.Contains(b.Closed, local.Format(time.DateOnly)) {
		return false
	}
	if len(b.Weekly) == 0 {
		return true
	}
	now := local.Hour()*60 + local.Minute()
	for _, r := range b.Weekly {
		o, _ := clockMinutes(r.Open)
		c, _ := clockMinutes(r.Close)
		if int(local.Weekday()) == r.Day && now >= o && now < c {
			return true
		}
	}
	return false
}

func clockMinutes(s string) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || hh < 0 || hh > 24 || mm < 0 || mm > 59 || hh*60+mm > 24*60 {
		return 0, fmt.Errorf("bad time %q", s)
	}
	return hh*60 + mm, nil
}

// Note is a private note on a conversation: staff see it, customers never.
type Note struct {
	Tenant    string    `json:"-"`
	Conv      string    `json:"conv"`
	ID        string    `json:"id"`
	Author    Party     `json:"author"`
	Text      string    `json:"text"`
	CreatedAt time.Time `json:"created_at"`
}

// TimerKind names a conversation timer. A conversation has at most one
// timer of each kind.
type TimerKind string

// Conversation timers.
const (
	TimerFirstResponse      TimerKind = "first_response"       // warn the agent
	TimerFirstResponseAlert TimerKind = "first_response_alert" // alert supervisors, maybe requeue
	TimerNoReply            TimerKind = "no_reply"             // remind the agent
	TimerUserIdleWarn       TimerKind = "user_idle_warn"       // warn the customer
	TimerUserIdleClose      TimerKind = "user_idle_close"      // close for inactivity
	TimerQueueTimeout       TimerKind = "queue_timeout"        // offer to leave a message
	TimerHoldExpiry         TimerKind = "hold_expiry"          // end the hold
)

// Timer is a durable timer of a conversation: it fires at DueAt even if
// the conversation is not in memory then, or its node has died.
type Timer struct {
	Tenant string    `json:"tenant"`
	Conv   string    `json:"conv"`
	Kind   TimerKind `json:"kind"`
	DueAt  time.Time `json:"due_at"`
}

// RoutingStore keeps agents' profiles, skill groups and tenant settings.
type RoutingStore interface {
	// PutAgentProfile creates or replaces a profile.
	PutAgentProfile(ctx context.Context, p AgentProfile) error
	// AgentProfile returns one profile (ErrNotFound).
	AgentProfile(ctx context.Context, tenant, id string) (AgentProfile, error)
	// AgentProfiles returns the tenant's profiles, by id.
	AgentProfiles(ctx context.Context, tenant string) ([]AgentProfile, error)
	// PutGroup creates or replaces a skill group.
	PutGroup(ctx context.Context, g SkillGroup) error
	// DeleteGroup removes a group (ErrNotFound).
	DeleteGroup(ctx context.Context, tenant, id string) error
	// Groups returns the tenant's groups, by id.
	Groups(ctx context.Context, tenant string) ([]SkillGroup, error)
	// PutTenantSettings creates or replaces the tenant's settings.
	PutTenantSettings(ctx context.Context, s TenantSettings) error
	// TenantSettings returns them as stored (ErrNotFound if never set).
	TenantSettings(ctx context.Context, tenant string) (TenantSettings, error)
}

// CustomerStore keeps customer profiles.
type CustomerStore interface {
	// PutCustomer creates or replaces a profile.
	PutCustomer(ctx context.Context, c Customer) error
	// Customer returns one profile (ErrNotFound).
	Customer(ctx context.Context, tenant, id string) (Customer, error)
}

// NoteStore keeps private notes.
type NoteStore interface {
	// AddNote stores a note (ErrExists if its id is taken in the conversation).
	AddNote(ctx context.Context, n Note) error
	// Notes returns a conversation's notes, oldest first.
	Notes(ctx context.Context, tenant, conv string) ([]Note, error)
}

// TimerChange sets a conversation's timer of Kind to fall due at DueAt,
// or, with a zero DueAt, removes it.
type TimerChange struct {
	Kind  TimerKind
	DueAt time.Time
}

// ValidateTimerChanges refuses a change without a kind; stores check
// every change they are given with it.
func ValidateTimerChanges(changes []TimerChange) error {
	for _, ch := range changes {
		if ch.Kind == "" {
			return errors.New("a timer change without a kind")
		}
	}
	return nil
}

// TimerStore keeps conversation timers.
type TimerStore interface {
	// SetTimers applies changes to the conversation's timers, in order and
	// all or none where the store can: each creates or replaces the timer
	// of its kind, or removes it (removing one that does not exist is not
	// an error). A timer of an unknown conversation is ErrNotFound.
	SetTimers(ctx context.Context, tenant, conv string, changes ...TimerChange) error
	// Timers returns the conversation's timers.
	Timers(ctx context.Context, tenant, conv string) ([]Timer, error)
	// DueTimers returns up to limit timers of every tenant due at or
	// before now, earliest first.
	DueTimers(ctx context.Context, now time.Time, limit int) ([]Timer, error)
}
