package actors

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/kefu-dev/kefu/actors/actorpb"
	"github.com/kefu-dev/kefu/bots"
	"github.com/kefu-dev/kefu/engine"
)

// Conversation operations (ConvOp.op).
const (
	OpAccept   = "accept"
	OpTransfer = "transfer"
	OpInvite   = "invite"
	OpHold     = "hold"
	OpUnhold   = "unhold"
	OpClose    = "close"
	OpReopen   = "reopen"
	OpRate     = "rate" // the customer rates the closed conversation
)

// systemParty is Kefu itself: timers, routing notices.
var systemParty = engine.Party{Role: engine.RoleSystem, ID: "kefu"}

// held reports whether a conversation in state s belongs to its agent.
func held(s engine.ConvState) bool { return s == engine.StateAssigned || s == engine.StateOnHold }

// change is one lifecycle step of a conversation.
type change struct {
	to       engine.ConvState
	agent    string // the owner afterwards, for ASSIGNED and ON_HOLD
	by       engine.Party
	ev       engine.EventType
	reason   string
	group    string // for QUEUED: the group it waits in
	priority int
	evAgent  string // the agent the event names (assigned, invited, transferred to)
	note     string
	summary  string // the bot's hand-over summary, pushed with the state
}

// transition applies a change: the header, the event (stored in order off
// the mailbox), the agents' capacity, queue membership, timers and the
// sessions that may still see the conversation. A change to the same state
// records an event only (an invitation, a warning, a transfer).
func (a *conversationActor) transition(ctx actor.Context, ch change) bool {
	from, prevAgent, prevGroup := a.conv.State, a.conv.AgentID, a.conv.Group
	if from != ch.to && !engine.CanTransition(from, ch.to) {
		a.log.Warn("refused state change", "from", from, "to", ch.to)
		return false
	}
	now := a.d.Clock.Now()
	if r := a.conv.Rating; r != nil && now.Before(r.At.Add(time.Millisecond)) {
		// A change after a rating is stamped after it, so a closure
		// always tells its rating from the previous closure's (see
		// engine.Conversation.RatedSinceClosed), even on a stopped clock.
		now = r.At.Add(time.Millisecond)
	}
	a.conv.State, a.conv.UpdatedAt = ch.to, now
	switch ch.to {
	case engine.StateAssigned, engine.StateOnHold:
		if ch.agent != "" {
			a.conv.AgentID = ch.agent
		}
		a.conv.Invited = slices.DeleteFunc(a.conv.Invited, func(id string) bool { return id == a.conv.AgentID })
	case engine.StateQueued:
		if from != engine.StateQueued || ch.group != prevGroup {
			a.conv.QueuedAt = now
			a.toldUnavailable = false
		}
		a.conv.Group, a.conv.Priority, a.conv.Invited = ch.group, ch.priority, nil
	default:
		a.conv.Invited = nil
	}
	if ch.to != engine.StateBot {
		a.cancelBot()
	}
	if from == engine.StateBot && ch.to != engine.StateBot {
		a.dropBotQueue()
	}
	if held(from) && prevAgent != "" && (!held(ch.to) || a.conv.AgentID != prevAgent) {
		tell(ctx, KindAgent, AgentIdentity(a.tenant, prevAgent), &actorpb.Release{Conv: a.id})
		if ch.by != (engine.Party{Role: engine.RoleAgent, ID: prevAgent}) {
			a.notifyAgent(ctx, prevAgent, string(ch.ev), ch.reason)
		}
	}
	if from == engine.StateQueued && (ch.to != engine.StateQueued || ch.group != prevGroup) {
		tell(ctx, KindQueue, QueueIdentity(a.tenant, prevGroup), &actorpb.Dequeue{Conv: a.id})
	}
	if ch.to == engine.StateQueued && (from != engine.StateQueued || ch.group != prevGroup) {
		tell(ctx, KindQueue, QueueIdentity(a.tenant, ch.group), &actorpb.Enqueue{
			Conv: a.id, Customer: a.conv.UserID, Priority: int32(ch.priority), QueuedMs: a.conv.QueuedAt.UnixMilli(), LastAgent: a.lastAgent,
		})
	}
	a.record(ctx, "a state change to "+string(ch.to), engine.ConvEvent{
		Tenant: a.tenant, Conv: a.id, Type: ch.ev, From: from, To: ch.to, By: ch.by, Reason: ch.reason,
		Agent: ch.evAgent, Group: ch.group, Note: ch.note, At: now,
	})
	if from != ch.to || a.conv.AgentID != prevAgent || ch.ev == engine.EventInvited || a.conv.Group != prevGroup {
		a.push(ctx, nil, &actorpb.Push{Conv: a.id, Event: &actorpb.Push_State{State: &actorpb.StateChange{
			State: string(ch.to), AgentId: a.conv.AgentID, By: partyToPB(ch.by), Reason: ch.reason,
			Group: a.conv.Group, Invited: a.conv.Invited, Summary: ch.summary,
		}}})
	}
	a.armForState(ctx, from)
	a.dropUnauthorizedSubs(ctx)
	return true
}

// record stores event with the conversation's header, in order behind
// the earlier changes: each is stored with the header as it is when its
// write starts.
func (a *conversationActor) record(ctx actor.Context, what string, event engine.ConvEvent) {
	a.stateWrites.add(ctx, storeWrite{what: what, start: func() func(context.Context) error {
		conv := a.conv
		conv.Invited = slices.Clone(conv.Invited)
		return func(c context.Context) error { return a.d.Store.UpdateConversation(c, conv, event) }
	}})
}

// dropUnauthorizedSubs stops pushes to staff who may no longer see the
// conversation (an agent it was transferred away from).
func (a *conversationActor) dropUnauthorizedSubs(ctx actor.Context) {
	for key, s := range a.subs {
		if a.canSee(s.caller) != nil {
			delete(a.subs, key)
			ctx.Unwatch(s.pid)
		}
	}
}

// canSee decides who may read and write the conversation: the customer it
// belongs to; admins of its tenant; supervisors of its skill group; any
// member of staff while it is with the bot or queued (the queue is theirs
// to pick from); its owner and the colleagues invited. Others are told it
// does not exist (customers) or that it is not theirs (staff).
func (a *conversationActor) canSee(caller Caller) error {
	switch {
	case caller.Tenant != a.tenant:
		return errNoSuchConv
	case caller.Party.Role == engine.RoleUser:
		if caller.Party.ID == a.conv.UserID {
			return nil
		}
		return errNoSuchConv
	case !caller.IsStaff():
		return errNoSuchConv
	case caller.StaffRole == engine.StaffAdmin || a.supervises(caller):
		return nil
	case a.conv.State == engine.StateBot || a.conv.State == engine.StateQueued:
		return nil
	case a.conv.AgentID == caller.Party.ID || slices.Contains(a.conv.Invited, caller.Party.ID):
		return nil
	}
	return errAnotherAgents
}

// canSee's refusals, made once: it runs on every request.
var (
	errNoSuchConv    = engine.NewError(engine.CodeNotFound, "no such conversation")
	errAnotherAgents = engine.NewError(engine.CodeForbidden, "the conversation is another agent's")
)

// supervises reports whether the caller is a supervisor of the
// conversation's skill group.
func (a *conversationActor) supervises(caller Caller) bool {
	return caller.StaffRole == engine.StaffSupervisor && slices.Contains(caller.Groups, a.groupOrDefault())
}

// groupOrDefault is the conversation's skill group; one never routed
// belongs to the default group.
func (a *conversationActor) groupOrDefault() string {
	if a.conv.Group == "" {
		return engine.DefaultGroup
	}
	return a.conv.Group
}

// mayManage reports whether a member of staff may transfer, hold or invite:
// the owner, a supervisor of its group, or an admin.
func (a *conversationActor) mayManage(caller Caller) bool {
	return caller.IsStaff() && (caller.Party.ID == a.conv.AgentID || caller.StaffRole == engine.StaffAdmin || a.supervises(caller))
}

// Results of takeover work done off the mailbox.
type (
	routedMsg struct {
		settings  engine.TenantSettings
		group     string
		priority  int
		lastAgent string
		err       error
		then      func(ctx actor.Context, m *routedMsg)
	}
	agentReservedMsg struct {
		agent string
		resp  *actorpb.ReserveResponse
	}
	agentCheckedMsg struct {
		sender *actor.PID
		op     *actorpb.ConvOp
		exists bool
	}
	noteStoredMsg struct {
		sender *actor.PID
		note   engine.Note
		err    error
	}
)

// route finds the group and priority for this conversation's customer and
// the customer's recent agent, then calls then on the mailbox. With toGroup
// set, that group is used and only checked to exist.
func (a *conversationActor) route(ctx actor.Context, toGroup string, then func(ctx actor.Context, m *routedMsg)) {
	a.routing++
	d, tenant, conv, user := a.d, a.tenant, a.conv, a.conv.UserID
	a.async(ctx, func(c context.Context) any {
		m := &routedMsg{then: then}
		if m.settings, m.err = d.Settings.Get(c, tenant); m.err != nil {
			return m
		}
		if toGroup != "" {
			m.group = toGroup
			if toGroup != engine.DefaultGroup {
				groups, err := d.Store.Groups(c, tenant)
				if err != nil {
					m.err = err
					return m
				}
				if !slices.ContainsFunc(groups, func(g engine.SkillGroup) bool { return g.ID == toGroup }) {
					m.err = engine.Errorf(engine.CodeNotFound, "no skill group %q", toGroup)
				}
			}
			m.priority = conv.Priority
			return m
		}
		cust, err := d.Store.Customer(c, tenant, user)
		if err != nil && !errors.Is(err, engine.ErrNotFound) {
			m.err = err
			return m
		}
		cust.ID = user
		m.group, m.priority = engine.Route(m.settings.Rules, cust, d.Clock.Now())
		// Sticky routing: the agent of the customer's latest other chat.
		past, err := d.Store.ListConversations(c, tenant, engine.ConversationQuery{UserID: user, Limit: 10})
		if err == nil {
			for _, p := range past {
				if p.ID != conv.ID && p.AgentID != "" && d.Clock.Now().Sub(p.UpdatedAt) <= m.settings.StickyWindow.D() {
					m.lastAgent = p.AgentID
					break
				}
			}
		}
		return m
	})
}

func (a *conversationActor) onRouted(ctx actor.Context, m *routedMsg) {
	a.routing--
	if m.err == nil {
		a.settings, a.lastAgent = m.settings, m.lastAgent
	}
	m.then(ctx, m)
}

// queueFor escalates to a person: routing picks the group, then the
// conversation waits there. An escalation carries the bot's hand-over
// summary, made when it is queued: in the event's note and the state push.
func (a *conversationActor) queueFor(ctx actor.Context, by engine.Party, ev engine.EventType, reason string, done func(error)) {
	a.cancelBot()
	a.route(ctx, "", func(ctx actor.Context, m *routedMsg) {
		if m.err != nil {
			// Never strand a customer: queue for the default group.
			a.log.Error("routing failed; queueing for the default group", "err", m.err)
			m.group, m.priority = engine.DefaultGroup, 0
		}
		from := a.conv.State
		if from != engine.StateBot && from != engine.StateClosed {
			done(nil) // somebody took it meanwhile
			return
		}
		ch := change{to: engine.StateQueued, by: by, ev: ev, reason: reason, group: m.group, priority: m.priority}
		if ev == engine.EventEscalated {
			ch.summary = a.handoverSummary(reason)
			ch.note = ch.summary
		}
		a.transition(ctx, ch)
		done(nil)
	})
}

// escalate answers the user's "talk to a person".
func (a *conversationActor) escalate(ctx actor.Context, sender *actor.PID, m *actorpb.Escalate) {
	if err := a.authorize(m.Caller); err != nil {
		reply(ctx, sender, &actorpb.EscalateResponse{Error: errToPB(err)})
		return
	}
	if a.conv.State != engine.StateBot || a.routing > 0 {
		reply(ctx, sender, &actorpb.EscalateResponse{State: string(a.conv.State)})
		return
	}
	a.queueFor(ctx, partyFromPB(m.Caller.GetParty()), engine.EventEscalated, bots.ReasonUserRequest, func(error) {
		reply(ctx, sender, &actorpb.EscalateResponse{State: string(a.conv.State)})
	})
}

// reserve asks agent for one conversation of capacity and runs then with
// the answer. Concurrent asks for the same agent share one reservation and
// their continuations run in order.
func (a *conversationActor) reserve(ctx actor.Context, agent string, manual bool, then func(ctx actor.Context, resp *actorpb.ReserveResponse)) {
	waiting, busy := a.reserving[agent]
	a.reserving[agent] = append(waiting, then)
	if busy {
		return
	}
	ask(ctx, a.d.StoreTimeout, KindAgent, AgentIdentity(a.tenant, agent), &actorpb.Reserve{Conv: a.id, Manual: manual}, false, func(res any, err error) any {
		resp, _ := res.(*actorpb.ReserveResponse)
		if resp == nil {
			resp = &actorpb.ReserveResponse{Reason: "unavailable"}
		}
		return &agentReservedMsg{agent: agent, resp: resp}
	})
}

func (a *conversationActor) onAgentReserved(ctx actor.Context, m *agentReservedMsg) {
	thens := a.reserving[m.agent]
	delete(a.reserving, m.agent)
	if !m.resp.Ok && m.resp.Status == nil {
		// No answer: the reservation may have been made; undo it.
		tell(ctx, KindAgent, AgentIdentity(a.tenant, m.agent), &actorpb.Release{Conv: a.id})
	}
	used := false
	for _, then := range thens {
		then(ctx, m.resp)
		used = used || (a.conv.AgentID == m.agent && held(a.conv.State))
	}
	if m.resp.Ok && !used {
		tell(ctx, KindAgent, AgentIdentity(a.tenant, m.agent), &actorpb.Release{Conv: a.id})
	}
}

// reserveError turns a refused reservation into the client's error.
func reserveError(resp *actorpb.ReserveResponse) error {
	switch resp.Reason {
	case "at_capacity":
		return engine.NewError(engine.CodeAtCapacity, "the agent already holds as many conversations as they may")
	case PresenceOffline, PresenceAway, "no_such_agent":
		return engine.Errorf(engine.CodeAgentUnavailable, "the agent is not available (%s)", resp.Reason)
	}
	return engine.NewError(engine.CodeUnavailable, "the agent did not answer in time; try again")
}

// accept makes the calling member of staff the owner of a conversation
// that is with the bot or queued, within their capacity.
func (a *conversationActor) accept(ctx actor.Context, caller Caller, reason string, done func(error)) {
	switch {
	case a.conv.AgentID == caller.Party.ID && held(a.conv.State):
		done(nil)
		return
	case a.conv.State != engine.StateBot && a.conv.State != engine.StateQueued:
		done(engine.Errorf(engine.CodeInvalidState, "the conversation is %s", a.conv.State))
		return
	}
	a.reserve(ctx, caller.Party.ID, true, func(ctx actor.Context, resp *actorpb.ReserveResponse) {
		switch {
		case a.conv.AgentID == caller.Party.ID && a.conv.State == engine.StateAssigned:
			done(nil)
		case !resp.Ok:
			done(reserveError(resp))
		case a.conv.State != engine.StateBot && a.conv.State != engine.StateQueued:
			done(engine.Errorf(engine.CodeInvalidState, "the conversation is %s", a.conv.State))
		default:
			a.transition(ctx, change{to: engine.StateAssigned, agent: caller.Party.ID, by: caller.Party, ev: engine.EventTakenOver, reason: reason, evAgent: caller.Party.ID})
			done(nil)
		}
	})
}

// onOffer answers a queue that reserved an agent for this conversation.
func (a *conversationActor) onOffer(ctx actor.Context, sender *actor.PID, m *actorpb.Offer) {
	switch {
	case a.conv.State == engine.StateAssigned && a.conv.AgentID == m.AgentId:
		reply(ctx, sender, &actorpb.OfferResponse{Accepted: true}) // a repeated offer
	case a.conv.State == engine.StateQueued && a.conv.Group == m.Group:
		a.transition(ctx, change{to: engine.StateAssigned, agent: m.AgentId, by: systemParty, ev: engine.EventAssigned, reason: "routed", group: m.Group, evAgent: m.AgentId})
		a.notifyAgent(ctx, m.AgentId, "assigned", "")
		reply(ctx, sender, &actorpb.OfferResponse{Accepted: true})
	default:
		reply(ctx, sender, &actorpb.OfferResponse{})
	}
}

// onQueueStatus passes a waiting conversation's position to its sessions
// and, the first time nobody can serve it, tells the customer so in the
// conversation itself.
func (a *conversationActor) onQueueStatus(ctx actor.Context, st *actorpb.QueueStatus) {
	if a.conv.State != engine.StateQueued || st.Group != a.conv.Group {
		return
	}
	a.push(ctx, nil, &actorpb.Push{Conv: a.id, Event: &actorpb.Push_Queue{Queue: st}})
	if !st.Available && !a.toldUnavailable {
		a.toldUnavailable = true
		text := "当前没有客服在线。您可以直接留言，客服上线后会尽快回复您。"
		if st.Reason == ReasonOutsideHours {
			text = "现在不是人工客服的服务时间。您可以直接留言，我们会在上班后尽快回复您。"
		}
		a.systemMessage(ctx, "sys unavailable "+itoa(a.conv.QueuedAt.UnixMilli()), text)
		a.transition(ctx, change{to: engine.StateQueued, by: systemParty, ev: engine.EventUnavailable, reason: st.Reason, group: a.conv.Group, priority: a.conv.Priority})
	}
}

// systemMessage stores a notice from Kefu in the conversation. The id makes
// a repeat (after a restart, say) a duplicate, not a second notice.
func (a *conversationActor) systemMessage(ctx actor.Context, clientMsgID, text string) *pendingAppend {
	if _, ok := a.known[clientMsgID]; ok {
		return nil
	}
	if p := a.pendingByID(clientMsgID); p != nil {
		return p
	}
	p := &pendingAppend{
		msg: engine.Message{Tenant: a.tenant, Conv: a.id, ClientMsgID: clientMsgID, From: systemParty,
			Body: engine.Body{Type: engine.BodySystem, Text: text}, CreatedAt: a.d.Clock.Now()},
		since: time.Now(),
	}
	a.queue = append(a.queue, p)
	a.pump(ctx)
	return p
}

func (a *conversationActor) notifyAgent(ctx actor.Context, agent, kind, text string) {
	if agent != "" {
		tell(ctx, KindAgent, AgentIdentity(a.tenant, agent), &actorpb.Notice{Kind: kind, Conv: a.id, Text: text, AgentId: agent})
	}
}

func (a *conversationActor) alertSupervisors(ctx actor.Context, kind, text string) {
	tell(ctx, KindTenant, a.tenant, &actorpb.Notice{Kind: kind, Conv: a.id, Text: text, AgentId: a.conv.AgentID})
}

// op runs a lifecycle operation.
func (a *conversationActor) op(ctx actor.Context, sender *actor.PID, m *actorpb.ConvOp) {
	caller := callerFromPB(m.Caller)
	done := func(err error) {
		if err != nil {
			reply(ctx, sender, &actorpb.ConvOpResponse{Error: errToPB(err)})
			return
		}
		reply(ctx, sender, &actorpb.ConvOpResponse{Conversation: conversationToPB(a.conv)})
	}
	if err := a.canSee(caller); err != nil {
		done(err)
		return
	}
	state := a.conv.State
	badState := engine.Errorf(engine.CodeInvalidState, "%s does not apply to a conversation that is %s", m.Op, state)
	staffOnly := engine.NewError(engine.CodeForbidden, "staff only")
	notYours := engine.NewError(engine.CodeForbidden, "only the owner, a supervisor or an admin may do this")
	switch m.Op {
	case OpAccept:
		if !caller.IsStaff() {
			done(staffOnly)
			return
		}
		a.accept(ctx, caller, "accepted", done)
	case OpTransfer:
		switch {
		case !a.mayManage(caller):
			done(notYours)
		case !held(state):
			done(badState)
		case m.Group != "":
			a.route(ctx, m.Group, func(ctx actor.Context, r *routedMsg) {
				switch {
				case r.err != nil:
					done(r.err)
				case !held(a.conv.State):
					done(engine.Errorf(engine.CodeInvalidState, "the conversation is %s", a.conv.State))
				default:
					a.lastAgent = ""
					a.transition(ctx, change{to: engine.StateQueued, by: caller.Party, ev: engine.EventTransferred, reason: "transfer", group: r.group, priority: a.conv.Priority, note: m.Note})
					a.storeTransferNote(ctx, caller, m.Note)
					done(nil)
				}
			})
		case m.AgentId == a.conv.AgentID:
			done(engine.NewError(engine.CodeInvalidField, "the conversation is already this agent's"))
		default:
			owner := a.conv.AgentID
			a.reserve(ctx, m.AgentId, false, func(ctx actor.Context, resp *actorpb.ReserveResponse) {
				switch {
				case !resp.Ok:
					done(reserveError(resp))
				case a.conv.AgentID != owner || !held(a.conv.State):
					done(engine.NewError(engine.CodeInvalidState, "the conversation changed hands meanwhile"))
				default:
					a.transition(ctx, change{to: engine.StateAssigned, agent: m.AgentId, by: caller.Party, ev: engine.EventTransferred, reason: "transfer", evAgent: m.AgentId, note: m.Note})
					a.notifyAgent(ctx, m.AgentId, "transferred", m.Note)
					a.storeTransferNote(ctx, caller, m.Note)
					done(nil)
				}
			})
		}
	case OpInvite:
		switch {
		case !a.mayManage(caller):
			done(notYours)
		case !held(state):
			done(badState)
		case m.AgentId == a.conv.AgentID || slices.Contains(a.conv.Invited, m.AgentId):
			done(nil)
		default:
			ask(ctx, a.d.StoreTimeout, KindAgent, AgentIdentity(a.tenant, m.AgentId), &actorpb.GetAgentStatus{}, true, func(res any, err error) any {
				st, _ := res.(*actorpb.AgentStatus)
				return &agentCheckedMsg{sender: sender, op: m, exists: st != nil && st.Version > 0}
			})
		}
	case OpHold, OpUnhold:
		from, to, ev := engine.StateAssigned, engine.StateOnHold, engine.EventHeld
		if m.Op == OpUnhold {
			from, to, ev = engine.StateOnHold, engine.StateAssigned, engine.EventUnheld
		}
		switch {
		case !a.mayManage(caller):
			done(notYours)
		case state != from:
			done(badState)
		default:
			a.transition(ctx, change{to: to, by: caller.Party, ev: ev, reason: m.Reason})
			done(nil)
		}
	case OpClose:
		reason := m.Reason
		if caller.Party.Role == engine.RoleUser {
			reason = "user_closed"
		}
		switch {
		case state == engine.StateClosed:
			done(nil)
		case caller.IsStaff() && held(state) && !a.mayManage(caller) && !slices.Contains(a.conv.Invited, caller.Party.ID):
			done(notYours)
		default:
			a.transition(ctx, change{to: engine.StateClosed, by: caller.Party, ev: engine.EventClosed, reason: reason})
			done(nil)
		}
	case OpRate:
		switch {
		case caller.Party.Role != engine.RoleUser:
			done(engine.NewError(engine.CodeForbidden, "only the conversation's customer rates it"))
		case state != engine.StateClosed:
			done(engine.Errorf(engine.CodeInvalidState, "only a closed conversation is rated; this one is %s", state))
		case a.conv.RatedSinceClosed():
			done(engine.NewError(engine.CodeInvalidState, "already rated"))
		default:
			done(a.rate(ctx, caller, int(m.Score), m.Comment))
		}
	case OpReopen:
		switch {
		case state != engine.StateClosed:
			done(badState)
		case a.d.Clock.Now().Sub(a.conv.UpdatedAt) > a.settings.Timers.ReopenWindow.D():
			done(engine.NewError(engine.CodeReopenExpired, "the conversation was closed too long ago to reopen; start a new one"))
		case a.conv.AgentID == "":
			a.transition(ctx, change{to: engine.StateBot, by: caller.Party, ev: engine.EventReopened})
			done(nil)
		default:
			a.queueFor(ctx, caller.Party, engine.EventReopened, "reopened", done)
		}
	default:
		done(engine.Errorf(engine.CodeInvalidField, "unknown operation %q", m.Op))
	}
}

func (a *conversationActor) onAgentChecked(ctx actor.Context, m *agentCheckedMsg) {
	caller := callerFromPB(m.op.Caller)
	var err error
	switch {
	case !m.exists:
		err = engine.NewError(engine.CodeAgentUnavailable, "no such agent")
	case !a.mayManage(caller) || !held(a.conv.State):
		err = engine.NewError(engine.CodeInvalidState, "the conversation changed hands meanwhile")
	case !slices.Contains(a.conv.Invited, m.op.AgentId) && m.op.AgentId != a.conv.AgentID:
		a.conv.Invited = append(a.conv.Invited, m.op.AgentId)
		a.transition(ctx, change{to: a.conv.State, by: caller.Party, ev: engine.EventInvited, evAgent: m.op.AgentId, note: m.op.Note})
		a.notifyAgent(ctx, m.op.AgentId, "invited", m.op.Note)
	}
	if err != nil {
		reply(ctx, m.sender, &actorpb.ConvOpResponse{Error: errToPB(err)})
		return
	}
	reply(ctx, m.sender, &actorpb.ConvOpResponse{Conversation: conversationToPB(a.conv)})
}

// storeTransferNote keeps a transfer's note with the private notes, so the
// next agent finds it in the conversation.
func (a *conversationActor) storeTransferNote(ctx actor.Context, caller Caller, text string) {
	if text != "" {
		a.addNote(ctx, nil, caller, text)
	}
}

// addNote stores a private note and pushes it to staff sessions only.
func (a *conversationActor) addNote(ctx actor.Context, sender *actor.PID, caller Caller, text string) {
	now := a.d.Clock.Now()
	n := engine.Note{Tenant: a.tenant, Conv: a.id, ID: engine.NewID(now), Author: caller.Party, Text: text, CreatedAt: now}
	a.async(ctx, func(c context.Context) any {
		return &noteStoredMsg{sender: sender, note: n, err: a.d.Store.AddNote(c, n)}
	})
}

func (a *conversationActor) onNoteStored(ctx actor.Context, m *noteStoredMsg) {
	if m.err != nil {
		a.log.Error("storing a note", "err", m.err)
		reply(ctx, m.sender, &actorpb.AddNoteResponse{Error: errToPB(engine.NewError(engine.CodeUnavailable, "the note was not stored; try again"))})
		return
	}
	pb := noteToPB(m.note)
	for _, s := range a.subs {
		if s.caller.IsStaff() {
			ctx.Send(s.pid, &actorpb.Push{Conv: a.id, Event: &actorpb.Push_Note{Note: pb}})
		}
	}
	reply(ctx, m.sender, &actorpb.AddNoteResponse{Note: pb})
}

// staffRead answers the staff-only reads: notes and events.
func (a *conversationActor) staffRead(ctx actor.Context, sender *actor.PID, msg any) {
	var caller Caller
	switch m := msg.(type) {
	case *actorpb.AddNote:
		caller = callerFromPB(m.Caller)
	case *actorpb.ListNotes:
		caller = callerFromPB(m.Caller)
	case *actorpb.ListEvents:
		caller = callerFromPB(m.Caller)
	}
	err := a.canSee(caller)
	if err == nil && !caller.IsStaff() {
		err = engine.NewError(engine.CodeForbidden, "staff only")
	}
	if err != nil {
		a.replyError(ctx, sender, msg, err)
		return
	}
	tenant, id := a.tenant, a.id
	switch m := msg.(type) {
	case *actorpb.AddNote:
		a.addNote(ctx, sender, caller, m.Text)
	case *actorpb.ListNotes:
		a.async(ctx, func(c context.Context) any {
			notes, err := a.d.Store.Notes(c, tenant, id)
			resp := &actorpb.ListNotesResponse{}
			if err != nil {
				resp.Error = errToPB(engine.NewError(engine.CodeUnavailable, "try again"))
			}
			for _, n := range notes {
				resp.Notes = append(resp.Notes, noteToPB(n))
			}
			return &replyMsg{to: sender, msg: resp}
		})
	case *actorpb.ListEvents:
		a.async(ctx, func(c context.Context) any {
			events, err := a.d.Store.Events(c, tenant, id)
			resp := &actorpb.ListEventsResponse{}
			if err != nil {
				resp.Error = errToPB(engine.NewError(engine.CodeUnavailable, "try again"))
			}
			if events == nil {
				events = []engine.ConvEvent{}
			}
			resp.EventsJson, _ = json.Marshal(events)
			return &replyMsg{to: sender, msg: resp}
		})
	}
}

// replyMsg is a reply prepared off the mailbox.
type replyMsg struct {
	to  *actor.PID
	msg any
}
