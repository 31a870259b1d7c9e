package actors

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"

	"github.com/kefu-dev/kefu/actors/actorpb"
	"github.com/kefu-dev/kefu/engine"
)

// QueueIdentity is the cluster identity of a skill group's queue actor.
func QueueIdentity(tenant, group string) string { return tenant + "/" + group }

// Reasons a queue gives for nobody being available.
const (
	ReasonNoAgentOnline = "no_agent_online"
	ReasonOutsideHours  = "outside_business_hours"
)

// queueActor dispatches one skill group's waiting conversations: highest
// priority first, then longest waiting. It keeps a view of its agents' load
// from their status updates and offers a conversation to the agent its
// policy picks; the agent actor has the last word on capacity (Reserve),
// and the conversation on whether it still waits (Offer). It never
// passivates: agents and conversations address it by a cached PID.
type queueActor struct {
	d      *Deps
	tenant string
	group  string
	loaded bool
	stash  []stashed
	// One load at a time: a profile change during a load (many agents
	// created at once) asks for one more load after it, not one each.
	loading, reloadAfter bool

	policy   engine.Policy
	settings engine.TenantSettings
	waiting  []*waitingConv // in dispatch order
	agents   map[string]*agentView
	told     map[string]*actorpb.QueueStatus // the status each conversation was last told
}

type waitingConv struct {
	engine.Waiting
	offering bool // an agent is being reserved or offered for it
}

type agentView struct {
	slot     engine.AgentSlot
	presence string
	version  uint64
}

type (
	queueLoadedMsg struct {
		settings engine.TenantSettings
		policy   engine.Policy
		waiting  []engine.Waiting
		agents   []string
		err      error
	}
	reservedMsg struct {
		conv, agent string
		resp        *actorpb.ReserveResponse
	}
	offeredMsg struct {
		conv, agent string
		accepted    bool
		failed      bool // no answer: whether it took the agent is unknown
		attempt     int
	}
	queueTickMsg  struct{}
	queueRetryMsg struct{} // the first load failed
)

// queueRefresh is how often a queue re-reads its settings and asks its
// agents for their status, repairing a view a lost update left stale.
const queueRefresh = 30 * time.Second

func newQueue(d *Deps) actor.Actor {
	return &queueActor{d: d, agents: make(map[string]*agentView), told: make(map[string]*actorpb.QueueStatus)}
}

func (q *queueActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *cluster.ClusterInit:
		q.tenant, q.group, _ = strings.Cut(m.Identity.Identity, "/")
		q.load(ctx)
		later(ctx, queueRefresh, &queueTickMsg{})
	case *queueTickMsg:
		q.load(ctx)
		later(ctx, queueRefresh, &queueTickMsg{}) // the one refresh timer
	case *actorpb.ProfileChanged, *queueRetryMsg:
		q.load(ctx)
	case *queueLoadedMsg:
		q.onLoaded(ctx, m)
	case *actorpb.AgentStatus:
		q.onStatus(m)
		q.dispatch(ctx)
	case *reservedMsg:
		q.onReserved(ctx, m)
	case *offeredMsg:
		q.onOffered(ctx, m)
	case *actorpb.Enqueue, *actorpb.Dequeue, *actorpb.QueueSnapshot:
		if !q.loaded {
			q.stash = append(q.stash, stashed{sender: ctx.Sender(), msg: m})
			return
		}
		q.handle(ctx, ctx.Sender(), m)
	}
}

// load reads the group's settings, its waiting conversations (on the first
// load) and the agents who belong to it.
func (q *queueActor) load(ctx actor.Context) {
	if q.loading {
		q.reloadAfter = true
		return
	}
	q.loading = true
	d, tenant, group, first := q.d, q.tenant, q.group, !q.loaded
	async(ctx, d.StoreTimeout, func(c context.Context) any {
		m := &queueLoadedMsg{policy: engine.PolicyLeastLoad}
		if m.settings, m.err = d.Settings.Get(c, tenant); m.err != nil {
			return m
		}
		groups, err := d.Store.Groups(c, tenant)
		if err != nil {
			return &queueLoadedMsg{err: err}
		}
		for _, g := range groups {
			if g.ID == group && g.Policy != "" {
				m.policy = g.Policy
			}
		}
		if first {
			convs, err := d.Store.ListConversations(c, tenant, engine.ConversationQuery{State: engine.StateQueued, Group: group, Limit: maxListed})
			if err != nil {
				return &queueLoadedMsg{err: err}
			}
			for _, cv := range convs {
				m.waiting = append(m.waiting, engine.Waiting{Conv: cv.ID, Customer: cv.UserID, Priority: cv.Priority, QueuedAt: cv.QueuedAt})
			}
		}
		if m.agents, err = groupAgents(c, d.Store, tenant, group); err != nil {
			return &queueLoadedMsg{err: err}
		}
		return m
	})
}

// maxListed bounds the conversations a queue or agent reads at activation.
const maxListed = 100_000

// groupAgents lists the staff who belong to group: those whose profile has
// the skill (see AgentProfile.RoutingSkills), and staff without a profile
// for the default group.
func groupAgents(c context.Context, store engine.Store, tenant, group string) ([]string, error) {
	staff, err := store.ListStaff(c, tenant)
	if err != nil {
		return nil, err
	}
	profiles, err := store.AgentProfiles(c, tenant)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]engine.AgentProfile, len(profiles))
	for _, p := range profiles {
		byID[p.ID] = p
	}
	var out []string
	for _, s := range staff {
		p, ok := byID[s.ID]
		if !ok {
			p = engine.DefaultAgentProfile(tenant, s.ID, 0)
		}
		if _, skilled := p.RoutingSkills()[group]; skilled {
			out = append(out, s.ID)
		}
	}
	return out, nil
}

func (q *queueActor) onLoaded(ctx actor.Context, m *queueLoadedMsg) {
	q.loading = false
	again := q.reloadAfter
	q.reloadAfter = false
	if again {
		defer q.load(ctx)
	}
	if m.err != nil {
		q.d.Logger.Warn("loading queue", "tenant", q.tenant, "group", q.group, "err", m.err)
		if !q.loaded {
			q.failStash(ctx)
			if !again {
				later(ctx, time.Second, &queueRetryMsg{}) // nothing is routed until it loads
			}
		}
		return
	}
	q.settings, q.policy = m.settings, m.policy
	if !q.loaded {
		q.loaded = true
		for _, w := range m.waiting {
			q.insert(w)
		}
	}
	// Ask every agent of the group for its status; agents that left the
	// group answer with skills that no longer include it and are dropped.
	for _, id := range m.agents {
		ask(ctx, q.d.StoreTimeout, KindAgent, AgentIdentity(q.tenant, id), &actorpb.GetAgentStatus{}, true, func(res any, err error) any {
			if st, ok := res.(*actorpb.AgentStatus); ok {
				return st
			}
			return ignoredMsg{} // it reports itself once it can
		})
	}
	stash := q.stash
	q.stash = nil
	for _, s := range stash {
		q.handle(ctx, s.sender, s.msg)
	}
	q.dispatch(ctx)
}

func (q *queueActor) failStash(ctx actor.Context) {
	for _, s := range q.stash {
		if _, ok := s.msg.(*actorpb.QueueSnapshot); ok {
			reply(ctx, s.sender, &actorpb.QueueSnapshotResponse{Error: errToPB(engine.NewError(engine.CodeUnavailable, "the queue could not be loaded; try again"))})
		}
	}
	q.stash = nil
}

func (q *queueActor) handle(ctx actor.Context, sender *actor.PID, msg any) {
	switch m := msg.(type) {
	case *actorpb.Enqueue:
		w := engine.Waiting{Conv: m.Conv, Customer: m.Customer, Priority: int(m.Priority), QueuedAt: timeOrZero(m.QueuedMs), LastAgent: m.LastAgent}
		if i := q.index(m.Conv); i >= 0 {
			if q.waiting[i].offering {
				return // the offer in flight decides
			}
			q.waiting = slices.Delete(q.waiting, i, i+1)
		}
		delete(q.told, m.Conv) // a new episode: tell it where it stands
		q.insert(w)
		q.dispatch(ctx)
	case *actorpb.Dequeue:
		if i := q.index(m.Conv); i >= 0 && !q.waiting[i].offering {
			q.waiting = slices.Delete(q.waiting, i, i+1)
			delete(q.told, m.Conv)
			q.publish(ctx)
		}
	case *actorpb.QueueSnapshot:
		caller := callerFromPB(m.Caller)
		if caller.Tenant != q.tenant || !caller.IsStaff() {
			reply(ctx, sender, &actorpb.QueueSnapshotResponse{Error: errToPB(engine.NewError(engine.CodeForbidden, "staff only"))})
			return
		}
		b, _ := json.Marshal(q.snapshot())
		reply(ctx, sender, &actorpb.QueueSnapshotResponse{Json: b})
	}
}

func (q *queueActor) index(conv string) int {
	return slices.IndexFunc(q.waiting, func(w *waitingConv) bool { return w.Conv == conv })
}

func (q *queueActor) insert(w engine.Waiting) {
	i, _ := slices.BinarySearchFunc(q.waiting, w, func(x *waitingConv, w engine.Waiting) int {
		if x.Before(w) {
			return -1
		}
		return 1
	})
	q.waiting = slices.Insert(q.waiting, i, &waitingConv{Waiting: w})
}

func (q *queueActor) onStatus(st *actorpb.AgentStatus) {
	v, ok := q.agents[st.AgentId]
	if ok && st.Version != 0 && st.Version < v.version {
		return // an older update overtaken by a newer one
	}
	lvl, member := st.Skills[q.group]
	if !member {
		delete(q.agents, st.AgentId)
		return
	}
	if !ok {
		v = &agentView{}
		q.agents[st.AgentId] = v
	}
	v.version, v.presence = st.Version, st.Presence
	v.slot = engine.AgentSlot{
		ID: st.AgentId, Online: st.Presence == PresenceOnline, Capacity: int(st.Capacity), Load: int(st.Load),
		Proficiency: int(lvl), LastAssigned: timeOrZero(st.LastAssignedMs),
	}
}

// dispatch offers waiting conversations, in order, to agents with free
// capacity in this queue's view. The view counts offers in flight, so one
// free slot is offered once; the agent actor refuses any the view got wrong.
// Outside business hours nothing is offered: the customers are told so and
// wait (staff may still accept by hand) until a status change, an arrival
// or the periodic refresh finds the desk open.
func (q *queueActor) dispatch(ctx actor.Context) {
	if !q.loaded {
		return
	}
	if !q.settings.BusinessHours.Open(q.d.Clock.Now()) {
		q.publish(ctx)
		return
	}
	slots := make([]engine.AgentSlot, 0, len(q.agents))
	for _, v := range q.agents {
		slots = append(slots, v.slot)
	}
	for _, w := range q.waiting {
		if w.offering {
			continue
		}
		id, ok := engine.PickAgent(q.policy, slots, w.Waiting)
		if !ok {
			break // nobody free: nobody is free for those behind either
		}
		w.offering = true
		v := q.agents[id]
		v.slot.Load++
		v.slot.LastAssigned = q.d.Clock.Now()
		slots[slices.IndexFunc(slots, func(s engine.AgentSlot) bool { return s.ID == id })] = v.slot
		conv := w.Conv
		ask(ctx, q.d.StoreTimeout, KindAgent, AgentIdentity(q.tenant, id), &actorpb.Reserve{Conv: conv}, false, func(res any, err error) any {
			resp, _ := res.(*actorpb.ReserveResponse)
			if resp == nil {
				resp = &actorpb.ReserveResponse{Reason: "unavailable"}
			}
			return &reservedMsg{conv: conv, agent: id, resp: resp}
		})
	}
	q.publish(ctx)
}

func (q *queueActor) onReserved(ctx actor.Context, m *reservedMsg) {
	if m.resp.Status != nil {
		q.onStatus(m.resp.Status)
	}
	i := q.index(m.conv)
	if !m.resp.Ok {
		if i >= 0 {
			q.waiting[i].offering = false
		}
		if m.resp.Status == nil {
			// The agent did not answer: leave it out until it reports again.
			if v := q.agents[m.agent]; v != nil {
				v.slot.Online = false
			}
		}
		q.dispatch(ctx)
		return
	}
	if i < 0 { // dequeued meanwhile (a reservation is never made for a missing entry, but be safe)
		tell(ctx, KindAgent, AgentIdentity(q.tenant, m.agent), &actorpb.Release{Conv: m.conv})
		return
	}
	q.offer(ctx, m.conv, m.agent, 0)
}

// offer asks the conversation to take the reserved agent.
func (q *queueActor) offer(ctx actor.Context, conv, agent string, attempt int) {
	ask(ctx, q.d.StoreTimeout, KindConversation, ConversationIdentity(q.tenant, conv), &actorpb.Offer{AgentId: agent, Group: q.group}, true, func(res any, err error) any {
		resp, _ := res.(*actorpb.OfferResponse)
		return &offeredMsg{conv: conv, agent: agent, accepted: resp != nil && resp.Accepted, failed: resp == nil, attempt: attempt}
	})
}

// maxOfferAttempts bounds how often an unanswered offer is repeated. An
// offer is idempotent: a conversation that took the agent says so again.
const maxOfferAttempts = 5

func (q *queueActor) onOffered(ctx actor.Context, m *offeredMsg) {
	i := q.index(m.conv)
	switch {
	case m.failed && m.attempt+1 < maxOfferAttempts:
		// Unknown whether it took the agent: releasing now could let the
		// agent exceed capacity. Ask again.
		q.offer(ctx, m.conv, m.agent, m.attempt+1)
		return
	case m.failed:
		q.d.Logger.Error("conversation did not answer an offer; its agent keeps the reservation", "tenant", q.tenant, "conv", m.conv, "agent", m.agent)
	case !m.accepted:
		// It no longer waits here (closed, taken, moved): free the agent.
		tell(ctx, KindAgent, AgentIdentity(q.tenant, m.agent), &actorpb.Release{Conv: m.conv})
	}
	if i >= 0 {
		q.waiting = slices.Delete(q.waiting, i, i+1)
	}
	delete(q.told, m.conv)
	q.dispatch(ctx)
}

// available tells whether the group can serve now, and if not why.
func (q *queueActor) available() (bool, string) {
	if !q.settings.BusinessHours.Open(q.d.Clock.Now()) {
		return false, ReasonOutsideHours
	}
	for _, v := range q.agents {
		if v.presence == PresenceOnline {
			return true, ""
		}
	}
	return false, ReasonNoAgentOnline
}

// publish tells each waiting conversation its position and estimated wait
// when they changed.
func (q *queueActor) publish(ctx actor.Context) {
	ok, reason := q.available()
	capacity := 0
	for _, v := range q.agents {
		if v.slot.Online {
			capacity += v.slot.Capacity
		}
	}
	pos := 0
	for _, w := range q.waiting {
		if w.offering {
			continue
		}
		eta := engine.EstimateWait(pos, q.settings.AvgHandleTime.D(), capacity)
		pos++
		st := &actorpb.QueueStatus{Group: q.group, Position: int32(pos), EtaMs: eta.Milliseconds(), Available: ok, Reason: reason}
		if eta < 0 || !ok { // nobody can serve it now: the wait is unknown
			st.EtaMs = -1
		}
		if prev := q.told[w.Conv]; prev != nil && prev.Position == st.Position && prev.EtaMs == st.EtaMs && prev.Available == st.Available && prev.Reason == st.Reason {
			continue
		}
		q.told[w.Conv] = st
		tell(ctx, KindConversation, ConversationIdentity(q.tenant, w.Conv), st)
	}
}

// QueueView is a queue's state as staff see it.
type QueueView struct {
	Group   string        `json:"group"`
	Policy  engine.Policy `json:"policy"`
	Waiting []WaitingView `json:"waiting"`
	Agents  []AgentView   `json:"agents"`
}

// WaitingView is one waiting conversation.
type WaitingView struct {
	Conv     string    `json:"conv"`
	Customer string    `json:"customer"`
	Priority int       `json:"priority"`
	QueuedAt time.Time `json:"queued_at"`
	Position int       `json:"position"` // 0 while it is being offered
}

// AgentView is one agent as a queue sees them.
type AgentView struct {
	ID          string `json:"id"`
	Presence    string `json:"presence"`
	Capacity    int    `json:"capacity"`
	Load        int    `json:"load"`
	Proficiency int    `json:"proficiency"`
}

func (q *queueActor) snapshot() QueueView {
	out := QueueView{Group: q.group, Policy: q.policy, Waiting: []WaitingView{}, Agents: []AgentView{}}
	pos := 0
	for _, w := range q.waiting {
		p := 0
		if !w.offering {
			pos++
			p = pos
		}
		out.Waiting = append(out.Waiting, WaitingView{Conv: w.Conv, Customer: w.Customer, Priority: w.Priority, QueuedAt: w.QueuedAt, Position: p})
	}
	for _, v := range q.agents {
		out.Agents = append(out.Agents, AgentView{ID: v.slot.ID, Presence: v.presence, Capacity: v.slot.Capacity, Load: v.slot.Load, Proficiency: v.slot.Proficiency})
	}
	slices.SortFunc(out.Agents, func(a, b AgentView) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// ignoredMsg is a result nobody needs to act on.
type ignoredMsg struct{}
