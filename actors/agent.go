package actors

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"

	"github.com/kefu-dev/kefu/actors/actorpb"
	"github.com/kefu-dev/kefu/engine"
)

// AgentIdentity is the cluster identity of a member of staff's agent actor.
func AgentIdentity(tenant, staffID string) string { return tenant + "/" + staffID }

// Agent presence.
const (
	PresenceOnline  = "online"  // takes new conversations
	PresenceAway    = "away"    // connected, but takes none
	PresenceOffline = "offline" // no device connected
)

// agentActor is the single writer of one agent's load: it grants or
// refuses each reservation, so no agent ever holds more conversations than
// their capacity, however many queues ask at once. It never passivates:
// queues and conversations address it by a cached PID.
type agentActor struct {
	d       *Deps
	tenant  string
	id      string
	loaded  bool
	missing bool // no such member of staff: every reservation is refused
	stash   []stashed

	profile      engine.AgentProfile
	groups       []string // the groups statuses were last sent to
	devices      map[string]*actor.PID
	away         bool
	held         map[string]bool // conversations held or reserved
	lastAssigned time.Time
	version      uint64

	// Sign-in state (signin.go).
	staff          engine.Staff
	sessions       map[string]*engine.StaffSession
	login          engine.LoginState
	deviceSessions map[string]string // device PID -> the session it signed in under
	credWrites     writeQueue        // sign-in writes, in order
}

type agentLoadedMsg struct {
	staff    engine.Staff
	profile  engine.AgentProfile
	held     []string
	sessions []engine.StaffSession
	login    engine.LoginState
	missing  bool
	err      error
}

type retryLoadMsg struct{}

func newAgent(d *Deps) actor.Actor {
	return &agentActor{d: d, devices: make(map[string]*actor.PID), held: make(map[string]bool),
		sessions: make(map[string]*engine.StaffSession), deviceSessions: make(map[string]string)}
}

func (a *agentActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *cluster.ClusterInit:
		a.tenant, a.id, _ = strings.Cut(m.Identity.Identity, "/")
		a.credWrites = writeQueue{timeout: a.d.StoreTimeout, log: a.d.Logger.With("tenant", a.tenant, "staff", a.id)}
		a.load(ctx)
	case *actor.Stopping:
		// The node shuts down or the cluster moves the agent: the sign-in
		// writes still queued (a revocation, a failed-login count) are
		// stored now, blocking the mailbox, which is fine only because the
		// actor is going away (writes.go).
		a.credWrites.finish(ctx)
	case *retryLoadMsg:
		a.load(ctx)
	case *agentLoadedMsg:
		a.onLoaded(ctx, m)
	case *actor.Terminated:
		if _, ok := a.devices[m.Who.String()]; ok {
			delete(a.devices, m.Who.String())
			delete(a.deviceSessions, m.Who.String())
			a.changed(ctx)
		}
	case *writtenMsg:
		m.q.written(ctx, m.err)
	case *passwordCheckedMsg:
		a.onPasswordChecked(ctx, m)
	case *passwordChangeMsg:
		a.onPasswordChange(ctx, m)
	case *actorpb.Notice:
		for _, d := range a.devices {
			ctx.Send(d, m)
		}
	case *actorpb.Reserve, *actorpb.Release, *actorpb.GetAgentStatus, *actorpb.AgentConnect,
		*actorpb.SetPresence, *actorpb.ProfileChanged, *actorpb.Authenticate, *actorpb.RefreshSession,
		*actorpb.CheckSession, *actorpb.Logout, *actorpb.ChangePassword:
		if !a.loaded {
			a.stash = append(a.stash, stashed{sender: ctx.Sender(), msg: m})
			return
		}
		a.handle(ctx, ctx.Sender(), m)
	}
}

func (a *agentActor) load(ctx actor.Context) {
	d, tenant, id := a.d, a.tenant, a.id
	async(ctx, d.StoreTimeout, func(c context.Context) any {
		staff, err := d.Store.StaffByID(c, tenant, id)
		if errors.Is(err, engine.ErrNotFound) {
			return &agentLoadedMsg{missing: true}
		} else if err != nil {
			return &agentLoadedMsg{err: err}
		}
		sessions, err := d.Store.StaffSessions(c, tenant, id)
		if err != nil {
			return &agentLoadedMsg{err: err}
		}
		login, err := d.Store.LoginState(c, tenant, id)
		if errors.Is(err, engine.ErrNotFound) {
			login, err = engine.LoginState{Tenant: tenant, StaffID: id}, nil
		}
		if err != nil {
			return &agentLoadedMsg{err: err}
		}
		settings, err := d.Settings.Get(c, tenant)
		if err != nil {
			return &agentLoadedMsg{err: err}
		}
		profile, err := d.Store.AgentProfile(c, tenant, id)
		if errors.Is(err, engine.ErrNotFound) {
			profile, err = engine.DefaultAgentProfile(tenant, id, settings.DefaultCapacity), nil
		}
		if err != nil {
			return &agentLoadedMsg{err: err}
		}
		var held []string
		for _, st := range []engine.ConvState{engine.StateAssigned, engine.StateOnHold} {
			convs, err := d.Store.ListConversations(c, tenant, engine.ConversationQuery{AgentID: id, State: st, Limit: 10 * engine.MaxCapacity})
			if err != nil {
				return &agentLoadedMsg{err: err}
			}
			for _, cv := range convs {
				held = append(held, cv.ID)
			}
		}
		return &agentLoadedMsg{staff: staff, profile: profile, held: held, sessions: sessions, login: login}
	})
}

func (a *agentActor) onLoaded(ctx actor.Context, m *agentLoadedMsg) {
	if m.err != nil {
		a.d.Logger.Warn("loading agent; retrying", "tenant", a.tenant, "agent", a.id, "err", m.err)
		later(ctx, time.Second, &retryLoadMsg{})
		return
	}
	first := !a.loaded
	a.loaded, a.missing, a.profile = true, m.missing, m.profile
	if !m.missing {
		a.staff.Role, a.staff.DisplayName = m.staff.Role, m.staff.DisplayName
	}
	if first {
		// Sign-in state is this actor's to write: only the first load reads
		// it, later ones (a changed profile or role) would read it stale.
		a.staff, a.login = m.staff, m.login
		for i := range m.sessions {
			a.sessions[m.sessions[i].ID] = &m.sessions[i]
		}
		for _, c := range m.held {
			a.held[c] = true
		}
	}
	a.changed(ctx)
	stash := a.stash
	a.stash = nil
	for _, s := range stash {
		a.handle(ctx, s.sender, s.msg)
	}
}

func (a *agentActor) handle(ctx actor.Context, sender *actor.PID, msg any) {
	switch m := msg.(type) {
	case *actorpb.Reserve:
		ok, reason := a.reserve(m)
		if ok {
			a.changed(ctx)
		}
		reply(ctx, sender, &actorpb.ReserveResponse{Ok: ok, Reason: reason, Status: a.status()})
	case *actorpb.Release:
		if a.held[m.Conv] {
			delete(a.held, m.Conv)
			a.changed(ctx)
		}
	case *actorpb.GetAgentStatus:
		reply(ctx, sender, a.status())
	case *actorpb.AgentConnect:
		a.connectDevice(ctx, m)
	case *actorpb.Authenticate:
		a.authenticate(ctx, sender, m)
	case *actorpb.RefreshSession:
		a.refresh(ctx, sender, m)
	case *actorpb.CheckSession:
		a.checkSession(ctx, sender, m)
	case *actorpb.Logout:
		a.logout(ctx, sender, m)
	case *actorpb.ChangePassword:
		a.changePassword(ctx, sender, m)
	case *actorpb.SetPresence:
		if away := m.Presence == PresenceAway; away != a.away {
			a.away = away
			a.changed(ctx)
		}
	case *actorpb.ProfileChanged:
		a.load(ctx)
	}
}

// reserve grants one conversation of capacity, or says why not.
func (a *agentActor) reserve(m *actorpb.Reserve) (bool, string) {
	switch {
	case a.held[m.Conv]:
		return true, "" // a retried reservation
	case a.missing:
		return false, "no_such_agent"
	case !m.Manual && a.presence() != PresenceOnline:
		return false, a.presence()
	case len(a.held) >= a.profile.Capacity:
		return false, "at_capacity"
	}
	a.held[m.Conv] = true
	a.lastAssigned = a.d.Clock.Now()
	return true, ""
}

func (a *agentActor) presence() string {
	switch {
	case len(a.devices) == 0:
		return PresenceOffline
	case a.away:
		return PresenceAway
	}
	return PresenceOnline
}

func (a *agentActor) status() *actorpb.AgentStatus {
	st := &actorpb.AgentStatus{
		AgentId: a.id, Presence: a.presence(), Capacity: int32(a.profile.Capacity), Load: int32(len(a.held)),
		Skills: make(map[string]int32, len(a.profile.RoutingSkills())), LastAssignedMs: msOrZero(a.lastAssigned),
		Version: a.version, Devices: int32(len(a.devices)),
	}
	for g, lvl := range a.profile.RoutingSkills() {
		st.Skills[g] = int32(lvl)
	}
	for c := range a.held {
		st.Convs = append(st.Convs, c)
	}
	slices.Sort(st.Convs)
	return st
}

// changed publishes the agent's status to the queues of its groups (and of
// groups it just left, so they forget it) and to its own devices.
func (a *agentActor) changed(ctx actor.Context) {
	if a.missing {
		return
	}
	a.version++
	st := a.status()
	groups := a.profile.Groups()
	for _, g := range a.groups {
		if !slices.Contains(groups, g) {
			tell(ctx, KindQueue, QueueIdentity(a.tenant, g), st)
		}
	}
	a.groups = groups
	for _, g := range groups {
		tell(ctx, KindQueue, QueueIdentity(a.tenant, g), st)
	}
	for _, d := range a.devices {
		ctx.Send(d, st)
	}
}

// tell sends msg to a virtual actor without waiting: from the PID cache at
// once, or after an identity lookup off the caller's mailbox.
func tell(ctx actor.Context, kind, identity string, msg any) {
	cl := cluster.GetCluster(ctx.ActorSystem())
	if pid, ok := cl.PidCache.Get(identity, kind); ok {
		ctx.Send(pid, msg)
		return
	}
	root := ctx.ActorSystem().Root
	go func() {
		if pid, err := routesFor(cl).resolve(identity, kind, cl.Config.RequestTimeoutTime); err == nil {
			cl.PidCache.Set(identity, kind, pid)
			root.Send(pid, msg)
		}
	}()
}

// ask sends a request to a virtual actor off the caller's mailbox and
// delivers done's result to the caller. Requests are retried on a fresh
// lookup when the activation is gone; see Client.call.
func ask(ctx actor.Context, timeout time.Duration, kind, identity string, msg any, idempotent bool, done func(res any, err error) any) {
	c := NewClient(cluster.GetCluster(ctx.ActorSystem()), timeout, nil)
	self, root := ctx.Self(), ctx.ActorSystem().Root
	go func() {
		res, err := c.call(context.Background(), kind, identity, msg, idempotent)
		root.Send(self, done(res, err))
	}()
}

// async runs f off the mailbox with a store deadline and delivers its
// result to the actor.
func async(ctx actor.Context, timeout time.Duration, f func(context.Context) any) {
	self, root := ctx.Self(), ctx.ActorSystem().Root
	go func() {
		c, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		root.Send(self, f(c))
	}()
}

// later delivers msg to the actor after d, off its mailbox.
func later(ctx actor.Context, d time.Duration, msg any) {
	self, root := ctx.Self(), ctx.ActorSystem().Root
	time.AfterFunc(d, func() { root.Send(self, msg) })
}

// reply answers a requester, if there is one (a told message has none).
func reply(ctx actor.Context, to *actor.PID, msg any) {
	if to != nil {
		ctx.Send(to, msg)
	}
}
