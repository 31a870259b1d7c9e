package actors

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"

	"github.com/kefu-dev/kefu/actors/actorpb"
	"github.com/kefu-dev/kefu/engine"
)

// ConversationIdentity is the cluster identity of a conversation actor. The
// tenant is part of it, so a request can only ever reach a conversation of
// the tenant it names.
func ConversationIdentity(tenant, conv string) string { return tenant + "/" + conv }

type convPhase int

const (
	phaseLoading  convPhase = iota // reading the conversation from the store
	phaseMissing                   // no such conversation (yet)
	phaseCreating                  // storing a new conversation
	phaseReady
)

// pendingAppend is a message waiting for its durable write, with everyone
// to ack once it is stored (a resend while it waits joins the list).
type pendingAppend struct {
	msg     engine.Message
	origin  *actor.PID
	waiters []*actor.PID
	since   time.Time
	// stored runs once the message is stored and pushed (the bot's hand-over
	// message, then the state change it announces).
	stored func(ctx actor.Context)
}

// stashed is a request that arrived while the conversation was loading.
type stashed struct {
	sender *actor.PID
	msg    any
}

// Results of work the actor started off its mailbox.
type (
	loadedMsg struct {
		conv     engine.Conversation
		recent   []engine.Message
		read     []engine.ReadPointer
		timers   []engine.Timer
		settings engine.TenantSettings
		err      error
	}
	createdMsg struct {
		conv     engine.Conversation
		settings engine.TenantSettings
		sender   *actor.PID
		err      error
	}
	committedMsg struct {
		n   int
		err error
	}
	reloadedMsg struct {
		recent []engine.Message
		err    error
	}
	verifiedMsg struct {
		seq int64
		at  time.Time
		err error
	}
	pageMsg struct {
		sender  *actor.PID
		msgs    []engine.Message
		lastSeq int64
		err     error
	}
	readStoredMsg struct {
		sender *actor.PID
		origin *actor.PID
		party  engine.Party
		seq    int64
		err    error
	}
)

// conversationActor is the single writer of one conversation. See doc.go.
type conversationActor struct {
	d      *Deps
	log    *slog.Logger
	tenant string
	id     string
	phase  convPhase
	conv   engine.Conversation

	lastSeq int64            // highest durably stored seq
	recent  []engine.Message // newest stored messages, ascending, at most 2*d.Recent
	known   map[string]int   // client_msg_id -> index in recent

	queue          []*pendingAppend         // waiting for the next write
	inflight       []*pendingAppend         // being written; at most one write at a time
	appending      *storeCall[committedMsg] // the write of inflight
	inflightTimers batchTimers              // the timers before and after inflight armed its own
	reloading      bool                     // re-reading the store after a conflict
	reloadFailures int
	// After the cluster's members change, another member may run this
	// conversation too until it sees the change; what that activation
	// stores, this one learns only on its next write. So a read waits for
	// the store's last seq until this activation's view is newer than the
	// change has taken to settle (routes.settledSince).
	routes    *routes
	syncedAt  time.Time // when the store was last read for lastSeq
	verifying bool      // reading the store's last seq before a read
	storedAt  time.Time // when this activation last stored messages (tellOwner)
	// resent holds the sessions that sent messages found stored by another
	// activation (by client_msg_id), until the reload pushes those
	// messages to the others.
	resent map[string]*actor.PID

	// State changes, and apart from them timer changes, are stored one at
	// a time in the order they were made, each retried until stored, and
	// finished when the actor stops (writes.go).
	stateWrites, timerWrites writeQueue

	stash []stashed
	subs  map[string]subscriber // subscribed sessions by PID string
	read  map[engine.Party]int64

	// Human takeover (takeover.go, timers.go).
	settings        engine.TenantSettings
	routing         int                                                                 // routing lookups in flight
	lastAgent       string                                                              // the customer's recent agent, for sticky routing
	reserving       map[string][]func(ctx actor.Context, resp *actorpb.ReserveResponse) // reservations in flight, by agent
	toldUnavailable bool                                                                // the customer was told nobody can serve them now
	lastOwnerSeen   string                                                              // the owner whose first-response clock runs
	timers          map[engine.TimerKind]time.Time
	timerBatch      map[engine.TimerKind]engine.TimerChange // changes not yet taken by a write (flushTimers)
	timerQueued     bool                                    // a queued timer write will take them
	firing          map[engine.TimerKind]bool               // fired, their rows not removed yet

	// The bot's turn in flight, if any. botGen tells its result from a
	// later one's; cancelBot voids it.
	botCancel   context.CancelFunc
	botGen      uint64
	failedTurns int // consecutive user turns the bot did not answer
}

func newConversation(d *Deps) actor.Actor {
	return &conversationActor{
		d:         d,
		log:       d.Logger,
		known:     make(map[string]int),
		subs:      make(map[string]subscriber),
		read:      make(map[engine.Party]int64),
		reserving: make(map[string][]func(ctx actor.Context, resp *actorpb.ReserveResponse)),
		timers:    make(map[engine.TimerKind]time.Time),
		firing:    make(map[engine.TimerKind]bool),
	}
}

// subscriber is a session that receives the conversation's pushes.
type subscriber struct {
	pid    *actor.PID
	caller Caller
}

func (a *conversationActor) Receive(ctx actor.Context) {
	defer a.flushTimers(ctx)
	switch m := ctx.Message().(type) {
	case *cluster.ClusterInit:
		a.tenant, a.id, _ = strings.Cut(m.Identity.Identity, "/")
		a.log = a.d.Logger.With("tenant", a.tenant, "conv", a.id)
		a.routes, a.syncedAt = routesFor(m.Cluster), time.Now()
		// Retried until stored: the conversation must not come back in an
		// old state, or lose a timer, after a restart (it stays loaded
		// meanwhile: maybePassivate).
		a.stateWrites = writeQueue{timeout: a.d.StoreTimeout, log: a.log, retry: true}
		// A message's timer changes go with it (pump): timer writes and
		// message writes take turns, so the store applies the changes in
		// the order they were made.
		a.timerWrites = writeQueue{timeout: a.d.StoreTimeout, log: a.log, retry: true, hold: func() bool { return len(a.inflight) > 0 }}
		a.d.Metrics.conversationStarted()
		ctx.SetReceiveTimeout(a.d.IdleTimeout)
		a.async(ctx, a.load)
	case *actor.Stopping:
		// The node shuts down or the cluster moves the conversation: its
		// state and timer changes still queued are stored now, blocking
		// the mailbox, which is fine only because the actor is going away
		// (writes.go). A restart or the next activation loads them.
		a.stateWrites.finish(ctx)
		if a.appending != nil {
			// Its timer changes come before those still queued; if it
			// failed, they may be missing, so every timer is stored again.
			if res, ok := a.appending.wait(a.d.StoreTimeout); !ok || res.err != nil {
				a.undoBatchTimers(ctx, a.inflight[:res.n])
				a.storeAllTimers()
			}
			a.appending = nil
		}
		for len(a.timerBatch) > 0 || !a.timerWrites.idle() { // a write's then may change timers
			a.flushTimers(ctx)
			a.timerWrites.finish(ctx)
		}
		a.tellOwner(ctx)
	case *actor.Stopped:
		a.cancelBot()
		if a.tenant != "" {
			a.d.Metrics.conversationStopped()
		}
	case *actor.ReceiveTimeout:
		a.maybePassivate(ctx)
	case *actor.Terminated:
		delete(a.subs, m.Who.String())
	case *loadedMsg:
		a.onLoaded(ctx, m)
	case *createdMsg:
		a.onCreated(ctx, m)
	case *committedMsg:
		a.onCommitted(ctx, m)
	case *reloadedMsg:
		a.onReloaded(ctx, m)
	case *verifiedMsg:
		a.onVerified(ctx, m)
	case *retryReloadMsg:
		a.reload(ctx)
	case *retryWriteMsg:
		m.q.next(ctx)
	case *pageMsg:
		a.onPage(ctx, m)
	case *readStoredMsg:
		a.onReadStored(ctx, m)
	case *botDeltaMsg:
		if m.gen == a.botGen && a.conv.State == engine.StateBot {
			a.push(ctx, nil, &actorpb.Push{Conv: a.id, Event: &actorpb.Push_BotDelta{BotDelta: &actorpb.BotDelta{Text: m.text}}})
		}
	case *botReplyMsg:
		a.onBotReply(ctx, m)
	case *assistMsg:
		reply(ctx, m.sender, m.resp)
	case *writtenMsg:
		m.q.written(ctx, m.err)
		a.pump(ctx) // messages wait while timers are written
	case *routedMsg:
		a.onRouted(ctx, m)
	case *agentReservedMsg:
		a.onAgentReserved(ctx, m)
	case *agentCheckedMsg:
		a.onAgentChecked(ctx, m)
	case *noteStoredMsg:
		a.onNoteStored(ctx, m)
	case *replyMsg:
		reply(ctx, m.to, m.msg)
	case *actorpb.CreateConversation, *actorpb.Append, *actorpb.Resume, *actorpb.Unsubscribe,
		*actorpb.Typing, *actorpb.MarkRead, *actorpb.Escalate, *actorpb.Assist,
		*actorpb.ConvOp, *actorpb.AddNote, *actorpb.ListNotes, *actorpb.ListEvents,
		*actorpb.Offer, *actorpb.QueueStatus, *actorpb.FireTimer, *actorpb.StoredElsewhere:
		if a.phase == phaseLoading || a.phase == phaseCreating || ((a.reloading || a.verifying) && readsLastSeq(m)) {
			a.stash = append(a.stash, stashed{sender: ctx.Sender(), msg: m})
			return
		}
		if readsLastSeq(m) && a.phase == phaseReady && !a.routes.settledSince(a.syncedAt) {
			a.stash = append(a.stash, stashed{sender: ctx.Sender(), msg: m})
			a.verify(ctx)
			return
		}
		a.handle(ctx, ctx.Sender(), m)
	}
}

// readsLastSeq tells requests whose answer depends on the newest stored
// seq: while the actor re-reads the store they wait, so none is answered
// from a stale view (a write that landed late, say).
func readsLastSeq(m any) bool {
	switch m.(type) {
	case *actorpb.Resume, *actorpb.MarkRead, *actorpb.StoredElsewhere:
		return true
	}
	return false
}

// async runs f off the mailbox and delivers its result to the actor.
func (a *conversationActor) async(ctx actor.Context, f func(context.Context) any) {
	async(ctx, a.d.StoreTimeout, f)
}

func (a *conversationActor) load(c context.Context) any {
	conv, err := a.d.Store.Conversation(c, a.tenant, a.id)
	if err != nil {
		return &loadedMsg{err: err}
	}
	recent, err := a.d.Store.Recent(c, a.tenant, a.id, a.d.Recent)
	if err != nil {
		return &loadedMsg{err: err}
	}
	read, err := a.d.Store.ReadPointers(c, a.tenant, a.id)
	if err != nil {
		return &loadedMsg{err: err}
	}
	timers, err := a.d.Store.Timers(c, a.tenant, a.id)
	if err != nil {
		return &loadedMsg{err: err}
	}
	settings, err := a.d.Settings.Get(c, a.tenant)
	return &loadedMsg{conv: conv, recent: recent, read: read, timers: timers, settings: settings, err: err}
}

func (a *conversationActor) onLoaded(ctx actor.Context, m *loadedMsg) {
	switch {
	case errors.Is(m.err, engine.ErrNotFound):
		a.phase = phaseMissing
		// Nothing to keep in memory: leave soon unless it is being created.
		ctx.SetReceiveTimeout(5 * time.Second)
	case m.err != nil:
		a.log.Error("loading conversation", "err", m.err)
		a.failStash(ctx, engine.NewError(engine.CodeUnavailable, "the conversation could not be loaded; try again"))
		ctx.Stop(ctx.Self()) // the next request activates a fresh copy
		return
	default:
		a.phase = phaseReady
		a.conv = m.conv
		a.setRecent(m.recent)
		for _, rp := range m.read {
			a.read[rp.Party] = rp.Seq
		}
		for _, t := range m.timers {
			a.timers[t.Kind] = t.DueAt
		}
		a.settings = m.settings
		if a.conv.State == engine.StateAssigned {
			a.lastOwnerSeen = a.conv.AgentID
		}
		a.restoreIdleTimers(ctx)
	}
	a.replayStash(ctx)
}

func (a *conversationActor) replayStash(ctx actor.Context) {
	stash := a.stash
	a.stash = nil
	for i, s := range stash {
		if a.phase == phaseCreating { // a create in the stash: keep the rest for later
			a.stash = append(a.stash, stash[i:]...)
			return
		}
		a.handle(ctx, s.sender, s.msg)
	}
}

func (a *conversationActor) failStash(ctx actor.Context, err error) {
	for _, s := range a.stash {
		a.replyError(ctx, s.sender, s.msg, err)
	}
	a.stash = nil
}

func (a *conversationActor) handle(ctx actor.Context, sender *actor.PID, msg any) {
	if c, ok := msg.(*actorpb.CreateConversation); ok {
		a.create(ctx, sender, c)
		return
	}
	if a.phase != phaseReady {
		a.replyError(ctx, sender, msg, engine.NewError(engine.CodeNotFound, "no such conversation"))
		return
	}
	switch m := msg.(type) {
	case *actorpb.Append:
		a.append(ctx, sender, m)
	case *actorpb.Resume:
		a.resume(ctx, sender, m)
	case *actorpb.Unsubscribe:
		if pid := pidFromRef(m.Subscriber); pid != nil {
			delete(a.subs, pid.String())
			ctx.Unwatch(pid)
		}
	case *actorpb.Typing:
		if a.authorize(m.Caller) != nil {
			return
		}
		a.push(ctx, pidFromRef(m.Origin), &actorpb.Push{Conv: a.id, Event: &actorpb.Push_Typing{Typing: &actorpb.Typing{On: m.On}}, From: m.Caller.GetParty()})
	case *actorpb.MarkRead:
		a.markRead(ctx, sender, m)
	case *actorpb.Escalate:
		a.escalate(ctx, sender, m)
	case *actorpb.Assist:
		a.assist(ctx, sender, m)
	case *actorpb.ConvOp:
		a.op(ctx, sender, m)
	case *actorpb.AddNote, *actorpb.ListNotes, *actorpb.ListEvents:
		a.staffRead(ctx, sender, m)
	case *actorpb.Offer:
		a.onOffer(ctx, sender, m)
	case *actorpb.QueueStatus:
		a.onQueueStatus(ctx, m)
	case *actorpb.FireTimer:
		a.fire(ctx, m)
	case *actorpb.StoredElsewhere:
		a.learnStoredElsewhere(ctx, m)
	}
}

// authorize checks that the caller may use this conversation (canSee).
func (a *conversationActor) authorize(c *actorpb.Caller) error { return a.canSee(callerFromPB(c)) }

func (a *conversationActor) create(ctx actor.Context, sender *actor.PID, m *actorpb.CreateConversation) {
	caller := callerFromPB(m.Caller)
	switch {
	case caller.Tenant != a.tenant || caller.Party.Role != engine.RoleUser:
		reply(ctx, sender, &actorpb.ConversationResponse{Error: errToPB(engine.NewError(engine.CodeForbidden, "only a customer opens a conversation"))})
		return
	case a.phase == phaseReady:
		// A retried create of the same conversation is answered, not refused.
		if err := a.authorize(m.Caller); err != nil {
			reply(ctx, sender, &actorpb.ConversationResponse{Error: errToPB(err)})
			return
		}
		reply(ctx, sender, &actorpb.ConversationResponse{Conversation: conversationToPB(a.conv)})
		return
	}
	now := a.d.Clock.Now()
	conv := engine.Conversation{Tenant: a.tenant, ID: a.id, UserID: caller.Party.ID, State: engine.StateBot, CreatedAt: now, UpdatedAt: now}
	a.phase = phaseCreating
	ctx.SetReceiveTimeout(a.d.IdleTimeout)
	a.async(ctx, func(c context.Context) any {
		// Its timers need the tenant's settings, as a loaded one's do.
		settings, err := a.d.Settings.Get(c, a.tenant)
		if err != nil {
			return &createdMsg{sender: sender, err: err}
		}
		return &createdMsg{conv: conv, settings: settings, sender: sender, err: a.d.Store.CreateConversation(c, conv)}
	})
}

func (a *conversationActor) onCreated(ctx actor.Context, m *createdMsg) {
	if m.err != nil {
		a.log.Error("creating conversation", "err", m.err)
		reply(ctx, m.sender, &actorpb.ConversationResponse{Error: errToPB(engine.NewError(engine.CodeUnavailable, "the conversation could not be created; try again"))})
		a.failStash(ctx, engine.NewError(engine.CodeUnavailable, "the conversation could not be created; try again"))
		ctx.Stop(ctx.Self())
		return
	}
	a.phase = phaseReady
	a.conv, a.settings = m.conv, m.settings
	reply(ctx, m.sender, &actorpb.ConversationResponse{Conversation: conversationToPB(a.conv)})
	a.replayStash(ctx)
}

func (a *conversationActor) append(ctx actor.Context, sender *actor.PID, m *actorpb.Append) {
	if err := a.authorize(m.Caller); err != nil {
		reply(ctx, sender, &actorpb.AppendResponse{Error: errToPB(err)})
		return
	}
	if a.conv.State == engine.StateClosed {
		reply(ctx, sender, &actorpb.AppendResponse{Error: errToPB(engine.NewError(engine.CodeConvClosed, "the conversation is closed"))})
		return
	}
	body := bodyFromPB(m.Body)
	if err := engine.ValidateClientBody(body); err != nil {
		reply(ctx, sender, &actorpb.AppendResponse{Error: errToPB(err)})
		return
	}
	caller := callerFromPB(m.Caller)
	// A resend is the same client_msg_id from the same sender; the same id
	// from someone else is refused, never acked as theirs.
	if i, ok := a.known[m.ClientMsgId]; ok {
		if a.recent[i].From != caller.Party {
			reply(ctx, sender, &actorpb.AppendResponse{Error: errToPB(errIDTaken)})
			return
		}
		reply(ctx, sender, ackOf(a.recent[i], true))
		return
	}
	if p := a.pendingByID(m.ClientMsgId); p != nil {
		if p.msg.From != caller.Party {
			reply(ctx, sender, &actorpb.AppendResponse{Error: errToPB(errIDTaken)})
			return
		}
		p.waiters = append(p.waiters, sender) // a resend of a message not stored yet
		return
	}
	if caller.IsStaff() && (a.conv.State == engine.StateBot || a.conv.State == engine.StateQueued) {
		// A person replied: the conversation becomes theirs (within their
		// capacity) before the message is queued, so the bot is silent
		// from then on and a bot answer in flight finds it taken.
		a.accept(ctx, caller, "agent_replied", func(err error) {
			if err != nil {
				reply(ctx, sender, &actorpb.AppendResponse{Error: errToPB(err)})
				return
			}
			a.append(ctx, sender, m)
		})
		return
	}
	now := a.d.Clock.Now()
	a.queue = append(a.queue, &pendingAppend{
		msg: engine.Message{
			Tenant: a.tenant, Conv: a.id, ClientMsgID: m.ClientMsgId,
			From: partyFromPB(m.Caller.GetParty()), Body: body, CreatedAt: now,
		},
		origin:  pidFromRef(m.Origin),
		waiters: []*actor.PID{sender},
		since:   time.Now(),
	})
	a.pump(ctx)
}

// pendingByID finds a message being written or waiting to be.
func (a *conversationActor) pendingByID(clientMsgID string) *pendingAppend {
	for _, list := range [2][]*pendingAppend{a.inflight, a.queue} {
		for _, p := range list {
			if p.msg.ClientMsgID == clientMsgID {
				return p
			}
		}
	}
	return nil
}

// errIDTaken refuses a client_msg_id another participant already used here.
var errIDTaken = engine.NewError(engine.CodeInvalidField, "client_msg_id is already used in this conversation by another participant; send with a new id")

func ackOf(msg engine.Message, dup bool) *actorpb.AppendResponse {
	return &actorpb.AppendResponse{Seq: msg.Seq, TsMs: msg.CreatedAt.UnixMilli(), Dup: dup}
}

// pump starts the next write if none is running. One write at a time keeps
// the store's prefix guarantee meaningful: nothing after a failed message
// can be stored, so the queue can be renumbered without a gap.
//
// The messages set their timers now, and the write carries those changes
// with every other one not stored yet: a message is stored with its timers
// or, when the store refuses part of the batch, acked only once they are
// stored after it (onCommitted). A timer write running meanwhile is waited
// for, so the store sees the changes in the order they were made.
func (a *conversationActor) pump(ctx actor.Context) {
	if len(a.inflight) > 0 || a.reloading || len(a.queue) == 0 || !a.timerWrites.idle() {
		return
	}
	n := min(len(a.queue), a.d.MaxBatch)
	a.inflight = append([]*pendingAppend(nil), a.queue[:n]...)
	a.queue = append(a.queue[:0:0], a.queue[n:]...)
	msgs := make([]engine.Message, n)
	before := a.timerSnapshot()
	for i, p := range a.inflight {
		p.msg.Seq = a.lastSeq + int64(i) + 1
		msgs[i] = p.msg
		a.armForMessage(ctx, p.msg)
	}
	a.inflightTimers = batchTimers{before: before, after: a.timerSnapshot()}
	timers := a.takeTimers()
	a.appending = goStore(ctx, a.d.StoreTimeout, func(c context.Context) committedMsg {
		k, err := a.d.Store.Append(c, msgs, timers...)
		return committedMsg{n: k, err: err}
	}, func(res committedMsg) any { return &res })
}

func (a *conversationActor) onCommitted(ctx actor.Context, m *committedMsg) {
	batch := a.inflight
	a.inflight, a.appending = nil, nil
	a.timerWrites.next(ctx) // those made meanwhile; the next batch waits for them
	if m.n > 0 {
		a.storedAt = time.Now()
	}
	for _, p := range batch[:m.n] {
		a.lastSeq = p.msg.Seq
		a.remember(p.msg)
		a.d.Metrics.appended(p.msg.From.Role, time.Since(p.since))
		a.push(ctx, p.origin, &actorpb.Push{Conv: a.id, Event: &actorpb.Push_Message{Message: messageToPB(p.msg)}})
		if p.stored != nil {
			p.stored(ctx)
		}
	}
	// An ack means the timers its message set are stored too: a node that
	// dies after acking an agent's reply must not take the customer's idle
	// timer with it, nobody being left to notice. They were stored with
	// the messages unless the store refused part of the batch; then every
	// timer is stored again before the acks.
	stored := batch[:m.n]
	ack := func(ctx actor.Context) {
		for _, p := range stored {
			ack := ackOf(p.msg, false)
			for _, w := range p.waiters {
				reply(ctx, w, ack)
			}
		}
	}
	if m.err == nil {
		a.inflightTimers = batchTimers{}
		ack(ctx)
	} else {
		a.undoBatchTimers(ctx, stored)
		a.storeAllTimers()
		a.afterTimersStored(ctx, ack)
	}
	if last := lastUserMessage(batch[:m.n]); last != nil {
		a.startBot(ctx, *last)
	}
	rest := batch[m.n:]
	var dup *engine.DuplicateError
	switch {
	case m.err == nil:
	case len(rest) == 0:
		a.log.Error("storing the messages' timers", "err", m.err) // stored again above
	case errors.As(m.err, &dup):
		// Stored before, outside the window we remember: ack the original
		// if it is the same sender's, refuse the id otherwise.
		first := rest[0]
		for _, w := range first.waiters {
			if dup.From != first.msg.From {
				reply(ctx, w, &actorpb.AppendResponse{Error: errToPB(errIDTaken)})
			} else {
				reply(ctx, w, &actorpb.AppendResponse{Seq: dup.Seq, TsMs: dup.CreatedAt.UnixMilli(), Dup: true})
			}
		}
		if first.stored != nil && dup.From == first.msg.From {
			first.stored(ctx)
		}
		a.queue = append(rest[1:], a.queue...)
		if dup.Seq > a.lastSeq {
			// A write we took for failed, or another activation's, landed
			// after all: learn it (and push it, see onReloaded).
			if a.resent == nil {
				a.resent = make(map[string]*actor.PID)
			}
			a.resent[first.msg.ClientMsgID] = first.origin
			a.reload(ctx)
		}
	case errors.Is(m.err, engine.ErrSeqConflict):
		// Another activation wrote this seq: learn what is stored, then
		// renumber and retry. Never skip or reuse a number.
		a.log.Warn("seq conflict; reloading", "seq", rest[0].msg.Seq)
		a.queue = append(rest, a.queue...)
		a.reload(ctx)
	default:
		a.log.Error("storing messages", "err", m.err)
		// Clients resend what was refused; the bot's own messages have
		// nobody to resend them, so they go back on the queue.
		var keep []*pendingAppend
		for _, p := range rest {
			if len(p.waiters) == 0 {
				keep = append(keep, p)
			}
			for _, w := range p.waiters {
				reply(ctx, w, &actorpb.AppendResponse{Error: errToPB(engine.NewError(engine.CodeUnavailable, "the message was not stored; send it again"))})
			}
		}
		a.queue = append(keep, a.queue...)
		// Whether the failed write landed is unknown: re-read before the next.
		a.reload(ctx)
	}
	a.pump(ctx)
}

// maxReloadRetries bounds the attempts to re-read the store after a failed
// write before the activation gives up and unloads.
const maxReloadRetries = 5

type retryReloadMsg struct{}

func (a *conversationActor) reload(ctx actor.Context) {
	a.reloading, a.syncedAt = true, time.Now()
	a.async(ctx, func(c context.Context) any {
		recent, err := a.d.Store.Recent(c, a.tenant, a.id, a.d.Recent)
		return &reloadedMsg{recent: recent, err: err}
	})
}

// verify reads the store's last seq (see routes in conversationActor); the
// reads stashed meanwhile are answered after it.
func (a *conversationActor) verify(ctx actor.Context) {
	a.verifying = true
	at := time.Now()
	a.async(ctx, func(c context.Context) any {
		seq, err := a.d.Store.LastSeq(c, a.tenant, a.id)
		return &verifiedMsg{seq: seq, at: at, err: err}
	})
}

func (a *conversationActor) onVerified(ctx actor.Context, m *verifiedMsg) {
	a.verifying = false
	switch {
	case m.err != nil:
		a.log.Warn("reading the last seq; answering from memory", "err", m.err)
	case m.seq <= a.lastSeq+int64(len(a.inflight)):
		a.syncedAt = m.at // nothing stored but by this activation
	case len(a.inflight) > 0:
		return // another activation wrote: the write in flight fails and reloads, then the reads are answered
	default:
		a.log.Info("another activation stored messages; reloading", "stored", m.seq, "known", a.lastSeq)
		a.reload(ctx)
		return
	}
	a.replayStash(ctx)
}

func (a *conversationActor) onReloaded(ctx actor.Context, m *reloadedMsg) {
	if m.err != nil && a.reloadFailures < maxReloadRetries {
		a.reloadFailures++
		a.log.Warn("reloading conversation; retrying", "attempt", a.reloadFailures, "err", m.err)
		later(ctx, time.Duration(a.reloadFailures)*200*time.Millisecond, &retryReloadMsg{})
		return
	}
	if m.err != nil {
		a.log.Error("reloading conversation failed; unloading it", "err", m.err)
		for _, p := range a.queue {
			for _, w := range p.waiters {
				reply(ctx, w, &actorpb.AppendResponse{Error: errToPB(engine.NewError(engine.CodeUnavailable, "the message was not stored; send it again"))})
			}
		}
		a.queue = nil
		a.failStash(ctx, engine.NewError(engine.CodeUnavailable, "the conversation could not be read; try again"))
		ctx.Stop(ctx.Self())
		return
	}
	a.reloading, a.reloadFailures = false, 0
	defer a.replayStash(ctx)
	prev := a.lastSeq
	a.setRecent(m.recent)
	// Messages the other activation stored are resends now: ack them.
	queue := a.queue[:0]
	for _, p := range a.queue {
		if i, ok := a.known[p.msg.ClientMsgID]; ok {
			for _, w := range p.waiters {
				reply(ctx, w, ackOf(a.recent[i], true))
			}
			if p.stored != nil && a.recent[i].From == p.msg.From {
				p.stored(ctx)
			}
			if a.resent == nil {
				a.resent = make(map[string]*actor.PID)
			}
			a.resent[p.msg.ClientMsgID] = p.origin
			continue
		}
		queue = append(queue, p)
	}
	a.queue = queue
	// What this activation learns only now (another activation, stopping
	// or racing, stored it; or a write taken for failed landed) never
	// reached its subscribers: push it, but to the session that sent it.
	// A session drops what it already has, and a gap before the first
	// pushed message makes it read the rest.
	for _, msg := range a.recent {
		if msg.Seq > prev {
			a.push(ctx, a.resent[msg.ClientMsgID], &actorpb.Push{Conv: a.id, Event: &actorpb.Push_Message{Message: messageToPB(msg)}})
		}
	}
	clear(a.resent)
	a.pump(ctx)
}

// tellOwner tells the conversation's owner, when that is another member,
// the last seq this activation stored. Members see a change of the
// topology at different times, so this activation may have run beside
// the owner's for a moment, each pushing only what it stored itself. The
// owner would learn this one's messages only on its next write, which may
// be long in coming, and its subscribers would miss them meanwhile.
func (a *conversationActor) tellOwner(ctx actor.Context) {
	if a.storedAt.IsZero() || time.Since(a.storedAt) > settleTime {
		return // written before anyone could run beside it
	}
	identity := ConversationIdentity(a.tenant, a.id)
	if a.routes.ownerElsewhere(identity, KindConversation) == "" {
		return
	}
	// This member's PID cache may name this activation: not the owner.
	cluster.GetCluster(ctx.ActorSystem()).PidCache.RemoveByValue(identity, KindConversation, ctx.Self())
	tell(ctx, KindConversation, identity, &actorpb.StoredElsewhere{LastSeq: a.lastSeq})
}

// learnStoredElsewhere re-reads the store when another activation stored
// beyond what this one knows; onReloaded pushes what it learns. A write in
// flight meets those seqs and reloads by itself.
func (a *conversationActor) learnStoredElsewhere(ctx actor.Context, m *actorpb.StoredElsewhere) {
	if m.LastSeq > a.lastSeq && len(a.inflight) == 0 && !a.reloading {
		a.log.Info("another activation stored messages; reloading", "stored", m.LastSeq, "known", a.lastSeq)
		a.reload(ctx)
	}
}

// setRecent replaces the in-memory window with msgs (ascending).
func (a *conversationActor) setRecent(msgs []engine.Message) {
	a.recent = append(a.recent[:0], msgs...)
	clear(a.known)
	for i, m := range a.recent {
		a.known[m.ClientMsgID] = i
	}
	if len(a.recent) > 0 {
		a.lastSeq = a.recent[len(a.recent)-1].Seq
	}
}

// remember adds a stored message to the window, trimming it to d.Recent
// once it has grown to twice that, so trimming is amortised.
func (a *conversationActor) remember(m engine.Message) {
	a.recent = append(a.recent, m)
	a.known[m.ClientMsgID] = len(a.recent) - 1
	if len(a.recent) >= 2*a.d.Recent {
		a.setRecent(a.recent[len(a.recent)-a.d.Recent:])
	}
}

func (a *conversationActor) resume(ctx actor.Context, sender *actor.PID, m *actorpb.Resume) {
	if err := a.authorize(m.Caller); err != nil {
		reply(ctx, sender, &actorpb.ResumeResponse{Error: errToPB(err)})
		return
	}
	if m.LastSeq > a.lastSeq {
		reply(ctx, sender, &actorpb.ResumeResponse{Error: errToPB(engine.Errorf(engine.CodeSeqAhead,
			"last_seq %d is ahead of the conversation's last message %d", m.LastSeq, a.lastSeq))})
		return
	}
	if sub := pidFromRef(m.Subscriber); sub != nil {
		if _, ok := a.subs[sub.String()]; !ok {
			a.subs[sub.String()] = subscriber{pid: sub, caller: callerFromPB(m.Caller)}
			ctx.Watch(sub)
		}
	}
	limit := int(m.Limit)
	if limit <= 0 || limit > engine.MaxHistoryPage {
		limit = engine.DefaultHistoryPage
	}
	oldest := a.lastSeq + 1
	if len(a.recent) > 0 {
		oldest = a.recent[0].Seq
	}
	if m.LastSeq+1 >= oldest {
		// Served from memory: the window is contiguous up to lastSeq.
		start := int(m.LastSeq + 1 - oldest)
		end := min(start+limit, len(a.recent))
		reply(ctx, sender, a.page(a.recent[start:end], a.lastSeq))
		return
	}
	lastSeq, after := a.lastSeq, m.LastSeq
	a.async(ctx, func(c context.Context) any {
		msgs, err := a.d.Store.Messages(c, a.tenant, a.id, after, limit)
		// Messages committed since the request are left to the pushes, so
		// the page never runs past the last_seq it reports.
		for len(msgs) > 0 && msgs[len(msgs)-1].Seq > lastSeq {
			msgs = msgs[:len(msgs)-1]
		}
		return &pageMsg{sender: sender, msgs: msgs, lastSeq: lastSeq, err: err}
	})
}

func (a *conversationActor) onPage(ctx actor.Context, m *pageMsg) {
	if m.err != nil {
		a.log.Error("reading history", "err", m.err)
		reply(ctx, m.sender, &actorpb.ResumeResponse{Error: errToPB(engine.NewError(engine.CodeUnavailable, "history could not be read; try again"))})
		return
	}
	reply(ctx, m.sender, a.page(m.msgs, m.lastSeq))
}

// page builds a resume response; more is true when messages after the page
// existed when it was asked for.
func (a *conversationActor) page(msgs []engine.Message, lastSeq int64) *actorpb.ResumeResponse {
	resp := &actorpb.ResumeResponse{LastSeq: lastSeq, State: string(a.conv.State)}
	resp.Messages = make([]*actorpb.Message, len(msgs))
	for i, msg := range msgs {
		resp.Messages[i] = messageToPB(msg)
	}
	resp.More = len(msgs) > 0 && msgs[len(msgs)-1].Seq < lastSeq
	for p, seq := range a.read {
		resp.Read = append(resp.Read, &actorpb.ReadPointer{By: partyToPB(p), Seq: seq})
	}
	return resp
}

func (a *conversationActor) markRead(ctx actor.Context, sender *actor.PID, m *actorpb.MarkRead) {
	if err := a.authorize(m.Caller); err != nil {
		reply(ctx, sender, &actorpb.MarkReadResponse{Error: errToPB(err)})
		return
	}
	if m.Seq > a.lastSeq {
		reply(ctx, sender, &actorpb.MarkReadResponse{Error: errToPB(engine.Errorf(engine.CodeSeqAhead,
			"seq %d is ahead of the conversation's last message %d", m.Seq, a.lastSeq))})
		return
	}
	party := partyFromPB(m.Caller.GetParty())
	if cur := a.read[party]; m.Seq <= cur {
		reply(ctx, sender, &actorpb.MarkReadResponse{Seq: cur}) // never backwards
		return
	}
	origin, seq := pidFromRef(m.Origin), m.Seq
	a.async(ctx, func(c context.Context) any {
		stored, err := a.d.Store.SetReadPointer(c, a.tenant, a.id, party, seq)
		return &readStoredMsg{sender: sender, origin: origin, party: party, seq: stored, err: err}
	})
}

func (a *conversationActor) onReadStored(ctx actor.Context, m *readStoredMsg) {
	if m.err != nil {
		a.log.Error("storing read pointer", "err", m.err)
		reply(ctx, m.sender, &actorpb.MarkReadResponse{Error: errToPB(engine.NewError(engine.CodeUnavailable, "the read pointer was not stored; try again"))})
		return
	}
	if m.seq > a.read[m.party] {
		a.read[m.party] = m.seq
		a.push(ctx, m.origin, &actorpb.Push{Conv: a.id, Event: &actorpb.Push_Read{Read: &actorpb.ReadPointer{By: partyToPB(m.party), Seq: m.seq}}})
	}
	reply(ctx, m.sender, &actorpb.MarkReadResponse{Seq: a.read[m.party]})
}

// cancelBot voids the bot turn in flight: its LLM call is cancelled and
// its result, should one still arrive, is dropped.
func (a *conversationActor) cancelBot() {
	if a.botCancel != nil {
		a.botCancel()
		a.botCancel = nil
	}
	a.botGen++
}

// writesPending reports whether a store write is queued or running.
func (a *conversationActor) writesPending() bool {
	return !a.stateWrites.idle() || !a.timerWrites.idle()
}

// dropBotQueue removes bot messages not yet written: once a person owns
// the conversation the bot says nothing more.
func (a *conversationActor) dropBotQueue() {
	queue := a.queue[:0]
	for _, p := range a.queue {
		if p.msg.From.Role != engine.RoleBot {
			queue = append(queue, p)
		}
	}
	clear(a.queue[len(queue):])
	a.queue = queue
}

// push sends an event to every subscribed session except the one it came
// from (that one already has its ack).
func (a *conversationActor) push(ctx actor.Context, origin *actor.PID, p *actorpb.Push) {
	for _, sub := range a.subs {
		if origin != nil && sub.pid.Equal(origin) {
			continue
		}
		ctx.Send(sub.pid, p)
	}
}

// maybePassivate unloads an idle conversation nobody watches and with
// nothing in flight; otherwise it waits for the next idle period
// (Proto.Actor disarms the receive timeout each time it fires).
func (a *conversationActor) maybePassivate(ctx actor.Context) {
	if len(a.subs) == 0 && len(a.queue) == 0 && len(a.inflight) == 0 && !a.reloading &&
		len(a.stash) == 0 && a.phase != phaseCreating && a.phase != phaseLoading &&
		a.botCancel == nil && !a.writesPending() &&
		a.routing == 0 && len(a.reserving) == 0 {
		ctx.Stop(ctx.Self())
		return
	}
	ctx.SetReceiveTimeout(a.idleTimeout())
}

func (a *conversationActor) idleTimeout() time.Duration {
	if a.phase == phaseMissing {
		return 5 * time.Second // nothing to keep in memory
	}
	return a.d.IdleTimeout
}

// replyError answers a request of any kind with err.
func (a *conversationActor) replyError(ctx actor.Context, to *actor.PID, req any, err error) {
	e := errToPB(err)
	switch req.(type) {
	case *actorpb.CreateConversation:
		reply(ctx, to, &actorpb.ConversationResponse{Error: e})
	case *actorpb.Append:
		reply(ctx, to, &actorpb.AppendResponse{Error: e})
	case *actorpb.Resume:
		reply(ctx, to, &actorpb.ResumeResponse{Error: e})
	case *actorpb.MarkRead:
		reply(ctx, to, &actorpb.MarkReadResponse{Error: e})
	case *actorpb.Escalate:
		reply(ctx, to, &actorpb.EscalateResponse{Error: e})
	case *actorpb.Assist:
		reply(ctx, to, &actorpb.AssistResponse{Error: e})
	case *actorpb.ConvOp:
		reply(ctx, to, &actorpb.ConvOpResponse{Error: e})
	case *actorpb.AddNote:
		reply(ctx, to, &actorpb.AddNoteResponse{Error: e})
	case *actorpb.ListNotes:
		reply(ctx, to, &actorpb.ListNotesResponse{Error: e})
	case *actorpb.ListEvents:
		reply(ctx, to, &actorpb.ListEventsResponse{Error: e})
	case *actorpb.Offer:
		reply(ctx, to, &actorpb.OfferResponse{})
	}
}
