package actors

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/kefu-dev/kefu/actors/actorpb"
	"github.com/kefu-dev/kefu/engine"
)

// A conversation owns its timers: it arms and disarms them as its state
// and messages change, keeps them in memory and persists every change in
// the order it was made: with the next batch of messages (pump), or on
// their own through its ordered timer writes (timerWrites, writes.go),
// which take turns with the message writes and are finished even as it
// stops. The Scheduler fires persisted timers that fall due,
// activating the conversation wherever it lives next; the conversation
// runs a timer only if it still has it armed with that due time, so a
// stale or repeated firing does nothing.
//
// A node may die between any two writes, and a conversation nobody talks
// to is not loaded again, so the rows alone must keep it going: a message
// is stored with the timers it set, and acked only once they are stored
// (onCommitted), and a fired timer's row is removed only once what it did
// is stored (dropFiredTimer). What is left to crashes (a message stored whose ack,
// and timers, never went out) is mended on the next load
// (restoreIdleTimers).

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func (a *conversationActor) arm(ctx actor.Context, kind engine.TimerKind, due time.Time) {
	due = due.Truncate(time.Millisecond)
	if cur, ok := a.timers[kind]; ok && cur.Equal(due) {
		return
	}
	a.timers[kind] = due
	a.storeTimer(engine.TimerChange{Kind: kind, DueAt: due})
}

// dropTimer deletes the conversation's stored timer of kind.
func (a *conversationActor) dropTimer(kind engine.TimerKind) {
	a.storeTimer(engine.TimerChange{Kind: kind})
}

// storeTimer notes a change to store. The changes of one turn of the
// mailbox, and those made while an earlier write runs, are stored in one
// call, with the next batch of messages (pump) or on their own
// (flushTimers): an agent's reply clears one timer and sets another.
func (a *conversationActor) storeTimer(ch engine.TimerChange) {
	if a.timerBatch == nil {
		a.timerBatch = make(map[engine.TimerKind]engine.TimerChange)
	}
	a.timerBatch[ch.Kind] = ch // the last change of a kind is the one that counts
}

// storeAllTimers notes every timer as it is in memory, armed or not, for
// the next write: after a write whose changes may not all be stored. A
// fired timer's row is left to dropFiredTimer.
func (a *conversationActor) storeAllTimers() {
	for _, kind := range allTimers {
		if due, ok := a.timers[kind]; ok {
			a.storeTimer(engine.TimerChange{Kind: kind, DueAt: due})
		} else if !a.firing[kind] {
			a.dropTimer(kind)
		}
	}
}

// batchTimers are the conversation's timers before and after the batch of
// messages being written armed its own (pump), nil maps when the batch
// armed none.
type batchTimers struct {
	before, after map[engine.TimerKind]time.Time
}

// timerSnapshot copies the armed timers, if messages arm timers in this
// state (armForMessage).
func (a *conversationActor) timerSnapshot() map[engine.TimerKind]time.Time {
	if a.conv.State != engine.StateAssigned {
		return nil
	}
	return maps.Clone(a.timers)
}

// undoBatchTimers takes back what a failed write's messages armed, when
// they were not stored: a refused message must not start or stop a clock.
// A timer changed since by something else keeps that change. The stored
// messages then arm theirs again.
func (a *conversationActor) undoBatchTimers(ctx actor.Context, stored []*pendingAppend) {
	b := a.inflightTimers
	a.inflightTimers = batchTimers{}
	if b.after == nil {
		return
	}
	for _, kind := range allTimers {
		was, wasArmed := b.before[kind]
		set, setArmed := b.after[kind]
		cur, armed := a.timers[kind]
		if wasArmed == setArmed && was.Equal(set) || armed != setArmed || !cur.Equal(set) {
			continue // the batch left it alone, or it changed since
		}
		if wasArmed {
			a.timers[kind] = was
		} else {
			delete(a.timers, kind)
		}
	}
	for _, p := range stored {
		a.armForMessage(ctx, p.msg)
	}
}

// takeTimers hands the noted changes to the write that stores them.
func (a *conversationActor) takeTimers() []engine.TimerChange {
	changes := slices.SortedFunc(maps.Values(a.timerBatch), func(x, y engine.TimerChange) int { return cmp.Compare(x.Kind, y.Kind) })
	a.timerBatch = nil
	return changes
}

// flushTimers queues the noted changes behind the earlier timer writes,
// unless a queued write that has not started yet will take them. (No
// batch of messages starts while one is queued: pump.)
func (a *conversationActor) flushTimers(ctx actor.Context) {
	if len(a.timerBatch) == 0 || a.timerQueued {
		return
	}
	a.timerQueued = true
	var changes []engine.TimerChange
	started := false
	a.timerWrites.add(ctx, storeWrite{what: "timers", start: func() func(context.Context) error {
		if !started { // not a retry
			started = true
			changes, a.timerQueued = a.takeTimers(), false
		}
		return func(c context.Context) error { return a.d.Store.SetTimers(c, a.tenant, a.id, changes...) }
	}})
}

// afterTimersStored runs f once the timer changes made so far are stored.
func (a *conversationActor) afterTimersStored(ctx actor.Context, f func(ctx actor.Context)) {
	a.flushTimers(ctx)
	a.timerWrites.afterStored(ctx, f)
}

func (a *conversationActor) disarm(ctx actor.Context, kinds ...engine.TimerKind) {
	for _, kind := range kinds {
		if _, ok := a.timers[kind]; !ok {
			continue
		}
		delete(a.timers, kind)
		a.dropTimer(kind)
	}
}

var allTimers = []engine.TimerKind{
	engine.TimerFirstResponse, engine.TimerFirstResponseAlert, engine.TimerNoReply, engine.TimerUserIdleWarn,
	engine.TimerUserIdleClose, engine.TimerQueueTimeout, engine.TimerHoldExpiry,
}

// armForState sets the timers a state change calls for.
func (a *conversationActor) armForState(ctx actor.Context, from engine.ConvState) {
	t, now := a.settings.Timers, a.d.Clock.Now()
	to := a.conv.State
	switch to {
	case engine.StateQueued:
		a.disarm(ctx, engine.TimerFirstResponse, engine.TimerFirstResponseAlert, engine.TimerNoReply,
			engine.TimerUserIdleWarn, engine.TimerUserIdleClose, engine.TimerHoldExpiry)
		if from != engine.StateQueued {
			a.arm(ctx, engine.TimerQueueTimeout, now.Add(t.QueueTimeout.D()))
		}
	case engine.StateAssigned:
		a.disarm(ctx, engine.TimerQueueTimeout, engine.TimerHoldExpiry)
		if from == engine.StateOnHold {
			a.armForLastMessage(ctx)
			return
		}
		if a.lastOwnerSeen != a.conv.AgentID {
			// A new owner: their first-response clock starts now.
			a.lastOwnerSeen = a.conv.AgentID
			a.disarm(ctx, engine.TimerFirstResponseAlert, engine.TimerNoReply, engine.TimerUserIdleWarn, engine.TimerUserIdleClose)
			a.arm(ctx, engine.TimerFirstResponse, now.Add(t.FirstResponse.D()))
		}
	case engine.StateOnHold:
		a.disarm(ctx, engine.TimerFirstResponse, engine.TimerFirstResponseAlert, engine.TimerNoReply,
			engine.TimerUserIdleWarn, engine.TimerUserIdleClose, engine.TimerQueueTimeout)
		a.arm(ctx, engine.TimerHoldExpiry, now.Add(t.HoldExpiry.D()))
	default:
		a.lastOwnerSeen = ""
		a.disarm(ctx, allTimers...)
	}
}

// armForLastMessage sets the reply timers after a hold: the agent owes an
// answer if the customer spoke last, otherwise the customer is waited for.
func (a *conversationActor) armForLastMessage(ctx actor.Context) {
	t, now := a.settings.Timers, a.d.Clock.Now()
	for i := len(a.recent) - 1; i >= 0; i-- {
		switch a.recent[i].From.Role {
		case engine.RoleUser:
			a.arm(ctx, engine.TimerNoReply, now.Add(t.NoReply.D()))
			return
		case engine.RoleAgent:
			a.arm(ctx, engine.TimerUserIdleWarn, now.Add(t.UserIdleWarn.D()))
			return
		}
	}
}

// armForMessage sets the reply timers after a stored message of an
// assigned conversation.
func (a *conversationActor) armForMessage(ctx actor.Context, m engine.Message) {
	if a.conv.State != engine.StateAssigned {
		return
	}
	t, now := a.settings.Timers, a.d.Clock.Now()
	switch m.From.Role {
	case engine.RoleAgent:
		a.disarm(ctx, engine.TimerFirstResponse, engine.TimerFirstResponseAlert, engine.TimerNoReply, engine.TimerUserIdleClose)
		a.arm(ctx, engine.TimerUserIdleWarn, now.Add(t.UserIdleWarn.D()))
	case engine.RoleUser:
		a.disarm(ctx, engine.TimerUserIdleWarn, engine.TimerUserIdleClose)
		_, waitingFirst := a.timers[engine.TimerFirstResponse]
		_, alerted := a.timers[engine.TimerFirstResponseAlert]
		if _, armed := a.timers[engine.TimerNoReply]; !armed && !waitingFirst && !alerted {
			a.arm(ctx, engine.TimerNoReply, now.Add(t.NoReply.D()))
		}
	}
}

// restoreIdleTimers re-arms a customer-idle timer that a crash lost. Such
// a timer is written with the message that sets it, but not always in one
// transaction: MongoDB writes it just after, and after a batch the store
// refused in part it is written again later, so a node that dies in
// between stores the message without it. The stored messages tell
// which was due: after the agent's last message the warning, after the
// warning the close; each from that message's time.
func (a *conversationActor) restoreIdleTimers(ctx actor.Context) {
	if a.conv.State != engine.StateAssigned || len(a.recent) == 0 {
		return
	}
	for _, kind := range []engine.TimerKind{engine.TimerUserIdleWarn, engine.TimerUserIdleClose, engine.TimerNoReply, engine.TimerHoldExpiry} {
		if _, armed := a.timers[kind]; armed {
			return
		}
	}
	last, t := a.recent[len(a.recent)-1], a.settings.Timers
	switch {
	case last.From.Role == engine.RoleAgent:
		a.arm(ctx, engine.TimerUserIdleWarn, last.CreatedAt.Add(t.UserIdleWarn.D()))
	case last.From.Role == engine.RoleSystem && strings.HasPrefix(last.ClientMsgID, idleWarningID):
		a.arm(ctx, engine.TimerUserIdleClose, last.CreatedAt.Add(t.UserIdleClose.D()))
	}
}

// timerApplies reports whether a timer of kind can be armed in state
// (armForState).
func timerApplies(kind engine.TimerKind, state engine.ConvState) bool {
	switch kind {
	case engine.TimerQueueTimeout:
		return state == engine.StateQueued
	case engine.TimerHoldExpiry:
		return state == engine.StateOnHold
	default:
		return state == engine.StateAssigned
	}
}

// dropFiredTimer removes a fired timer's row once what the firing did is
// stored: its state change and its system message sys, if any. A node that
// dies before leaves the row, and the timer fires again on the next
// activation, which knows the message by its id and does not send it twice.
func (a *conversationActor) dropFiredTimer(ctx actor.Context, kind engine.TimerKind, sys *pendingAppend) {
	waiting := 2
	done := func(ctx actor.Context) {
		if waiting--; waiting > 0 {
			return
		}
		delete(a.firing, kind)
		if _, rearmed := a.timers[kind]; !rearmed { // else its new row replaced this one
			a.dropTimer(kind) // stored at the end of the turn (Receive)
		}
	}
	a.stateWrites.afterStored(ctx, done)
	if sys == nil {
		done(ctx)
		return
	}
	// System messages are kept until stored (onCommitted).
	before := sys.stored
	sys.stored = func(ctx actor.Context) {
		if before != nil {
			before(ctx)
		}
		done(ctx)
	}
}

// idleWarningID starts the client_msg_id of the customer-idle warning.
const idleWarningID = "sys idle "

// fire runs a timer the scheduler found due.
func (a *conversationActor) fire(ctx actor.Context, m *actorpb.FireTimer) {
	kind := engine.TimerKind(m.Kind)
	due, ok := a.timers[kind]
	if !ok && a.firing[kind] {
		return // fired already; its row goes once what it did is stored
	}
	if !ok {
		// Not armed here: a row left by a write that failed before its
		// delete. Remove it so the scheduler stops finding it.
		a.dropTimer(kind)
		return
	}
	now := a.d.Clock.Now()
	if due.UnixMilli() != m.DueMs || due.After(now) {
		return // re-armed since: this firing is stale
	}
	if !timerApplies(kind, a.conv.State) {
		// Left by a node that died before removing it, in a state whose
		// change it did not live to store.
		a.disarm(ctx, kind)
		return
	}
	delete(a.timers, kind)
	a.firing[kind] = true
	var sys *pendingAppend // the system message it sends, if any
	defer func() { a.dropFiredTimer(ctx, kind, sys) }()
	t := a.settings.Timers
	agent := a.conv.AgentID
	minutes := func(d engine.Duration) string { return fmt.Sprintf("%.0f", d.D().Minutes()) }
	switch kind {
	case engine.TimerFirstResponse:
		a.notifyAgent(ctx, agent, "sla_warning", "客户还在等待您的第一条回复")
		a.transition(ctx, change{to: a.conv.State, by: systemParty, ev: engine.EventSLAWarned, reason: string(kind), evAgent: agent})
		a.arm(ctx, engine.TimerFirstResponseAlert, now.Add(t.FirstResponseAlert.D()))
	case engine.TimerFirstResponseAlert:
		a.alertSupervisors(ctx, "sla_breached", "客服超时未回复")
		a.transition(ctx, change{to: a.conv.State, by: systemParty, ev: engine.EventSLABreached, reason: string(kind), evAgent: agent})
		if t.RequeueOnSLA && a.conv.State == engine.StateAssigned {
			a.lastAgent = ""
			a.transition(ctx, change{to: engine.StateQueued, by: systemParty, ev: engine.EventRequeued, reason: "sla_breached", group: a.conv.Group, priority: a.conv.Priority})
		}
	case engine.TimerNoReply:
		a.notifyAgent(ctx, agent, "no_reply", "客户的消息还没有回复")
		a.transition(ctx, change{to: a.conv.State, by: systemParty, ev: engine.EventNoReply, reason: string(kind), evAgent: agent})
	case engine.TimerUserIdleWarn:
		sys = a.systemMessage(ctx, idleWarningID+itoa(m.DueMs), "您已经有一段时间没有回复了，会话将在 "+minutes(t.UserIdleClose)+" 分钟后自动结束。")
		a.transition(ctx, change{to: a.conv.State, by: systemParty, ev: engine.EventIdleWarned, reason: string(kind)})
		a.arm(ctx, engine.TimerUserIdleClose, now.Add(t.UserIdleClose.D()))
	case engine.TimerUserIdleClose:
		sys = a.systemMessage(ctx, "sys closed "+itoa(m.DueMs), "由于长时间没有回复，本次会话已结束。如需帮助，请重新发起咨询。")
		a.transition(ctx, change{to: engine.StateClosed, by: systemParty, ev: engine.EventClosed, reason: "user_idle"})
	case engine.TimerQueueTimeout:
		sys = a.systemMessage(ctx, "sys queue "+itoa(m.DueMs), "当前排队人数较多。您可以直接留言，客服会尽快回复您。")
		a.transition(ctx, change{to: a.conv.State, by: systemParty, ev: engine.EventQueueTimeout, reason: string(kind), group: a.conv.Group, priority: a.conv.Priority})
	case engine.TimerHoldExpiry:
		a.notifyAgent(ctx, agent, "hold_expired", "保持的会话已恢复")
		a.transition(ctx, change{to: engine.StateAssigned, by: systemParty, ev: engine.EventUnheld, reason: "hold_expired"})
	}
}
