package actors

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"

	"github.com/kefu-dev/kefu/bots"
	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/kb"
)

// Kind names of the virtual actors.
const (
	KindConversation = "conversation"
	KindTenant       = "tenant"
	KindAgent        = "agent"
	KindQueue        = "queue"
)

// Deps is what the actors need from the rest of the process. Zero values
// of the tuning fields mean the documented defaults.
type Deps struct {
	Store   engine.Store
	Clock   engine.Clock // nil: engine.SystemClock
	Logger  *slog.Logger // nil: discard
	Metrics *Metrics     // nil: not measured
	// Recent is how many of its newest messages a conversation keeps in
	// memory to serve resumes and recognise resends. Zero means 200.
	Recent int
	// IdleTimeout passivates a conversation nobody is subscribed to after
	// this long without a message. Zero means 2 minutes.
	IdleTimeout time.Duration
	// MaxBatch is the most messages of one conversation written in one
	// store call. Zero means 256.
	MaxBatch int
	// StoreTimeout bounds one store call. Zero means 10s.
	StoreTimeout time.Duration
	// Bot answers customers while a conversation is in the BOT state. Nil:
	// no bot; conversations wait for a person.
	Bot *bots.Pipeline
	// Knowledge holds the tenants' FAQ indexes for the bot and agent
	// assist. Nil: built from Store on first use.
	Knowledge *Knowledge
	// BotTimeout bounds one bot turn, an LLM call included. Zero means 30s.
	BotTimeout time.Duration
	// Settings caches tenants' routing and timer settings. Nil: a cache
	// over Store.
	Settings *SettingsCache
	// WeChat reaches WeChat's API for code2session.
	WeChat WeChatConfig
	// SignIn is the staff sign-in policy. Zero fields take the defaults
	// given on each.
	SignIn SignInPolicy
}

// SignInPolicy says how staff sign in.
type SignInPolicy struct {
	// LockoutThreshold is how many failed logins in a row lock an account.
	// Zero means 5.
	LockoutThreshold int
	// LockoutDuration is how long a locked account refuses logins, even
	// with the right password. Zero means 15 minutes.
	LockoutDuration time.Duration
	// RefreshTTL is how long a session's refresh tokens work after login;
	// refreshing does not extend it. Zero means 7 days.
	RefreshTTL time.Duration
}

func (d Deps) withDefaults() Deps {
	if d.Clock == nil {
		d.Clock = engine.SystemClock{}
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Recent <= 0 {
		d.Recent = 200
	}
	if d.IdleTimeout <= 0 {
		d.IdleTimeout = 2 * time.Minute
	}
	if d.MaxBatch <= 0 {
		d.MaxBatch = 256
	}
	if d.StoreTimeout <= 0 {
		d.StoreTimeout = 10 * time.Second
	}
	if d.Knowledge == nil && d.Store != nil {
		d.Knowledge = NewKnowledge(d.Store, kb.IndexConfig{}, 0, d.Logger)
	}
	if d.Settings == nil && d.Store != nil {
		d.Settings = NewSettingsCache(d.Store, 0)
	}
	if d.BotTimeout <= 0 {
		d.BotTimeout = 30 * time.Second
	}
	if d.WeChat.APIBase == "" {
		d.WeChat.APIBase = "https://api.weixin.qq.com"
	}
	if d.WeChat.Client == nil {
		d.WeChat.Client = &http.Client{Timeout: 5 * time.Second}
	}
	if d.SignIn.LockoutThreshold <= 0 {
		d.SignIn.LockoutThreshold = 5
	}
	if d.SignIn.LockoutDuration <= 0 {
		d.SignIn.LockoutDuration = 15 * time.Minute
	}
	if d.SignIn.RefreshTTL <= 0 {
		d.SignIn.RefreshTTL = 7 * 24 * time.Hour
	}
	return d
}

// Kinds returns the cluster kinds this package hosts. Each leaves a member
// that does not own it (leavesIfMisplaced).
func Kinds(d Deps) []*cluster.Kind {
	d = d.withDefaults()
	kinds := []*cluster.Kind{
		cluster.NewKind(KindConversation, actor.PropsFromProducer(func() actor.Actor { return newConversation(&d) })),
		cluster.NewKind(KindTenant, actor.PropsFromProducer(func() actor.Actor { return newTenant(&d) })),
		cluster.NewKind(KindAgent, actor.PropsFromProducer(func() actor.Actor { return newAgent(&d) })),
		cluster.NewKind(KindQueue, actor.PropsFromProducer(func() actor.Actor { return newQueue(&d) })),
	}
	for _, k := range kinds {
		// After protoactor's own middleware, which turns Started into
		// ClusterInit.
		k.Props.Configure(actor.WithReceiverMiddleware(leavesIfMisplaced(d.Logger)))
	}
	return kinds
}

// Caller is who makes a request, as the edge authenticated them.
type Caller struct {
	Tenant    string
	Party     engine.Party
	StaffRole engine.StaffRole // empty for customers
	// Groups are a supervisor's skill groups, as their agent actor tells
	// them when their session is checked: the conversations they oversee.
	Groups []string
	// IP is the client's address, for the audit log.
	IP string
	// Session is a member of staff's sign-in (the token's sid): revoking
	// it closes the sockets opened under it. Not sent across nodes: only
	// the session actor on the caller's own edge needs it.
	Session string
}

// IsStaff reports whether the caller is a member of staff.
func (c Caller) IsStaff() bool { return c.Party.Role == engine.RoleAgent && c.StaffRole != "" }
