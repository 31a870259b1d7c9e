package actors

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"

	"github.com/kefu-dev/kefu/actors/actorpb"
	"github.com/kefu-dev/kefu/engine"
)

// Outbox is a session's way to its socket. Enqueue never blocks: it returns
// false when the frame cannot be queued because the socket is closing or
// its bounded queue is full (the edge then disconnects the slow client).
type Outbox interface {
	Enqueue(frame []byte) bool
	// Revoked ends the connection because the sign-in it was opened under
	// was revoked (a logout, a password change). It never blocks.
	Revoked(reason string)
}

// Limits of one session.
const (
	// maxInflightSends bounds sends waiting for their ack; more are refused
	// with rate_limited rather than queued without bound.
	maxInflightSends = 256
	// maxBufferedPushes bounds pushes held while a client pages history.
	maxBufferedPushes = 512
	// fillPage is the page size the session uses to fill a gap itself.
	fillPage = engine.MaxHistoryPage
)

// inbound carries a decoded client frame from the socket to its session.
type inbound struct{ frame engine.ClientFrame }

// resolvedMsg reports the PID of a conversation activation. It carries the
// link itself: a leave may have dropped it from links meanwhile, and the
// requests waiting on it must still be answered.
type resolvedMsg struct {
	link *convLink
	pid  *actor.PID
	err  error
}

// convLink is one session's view of one conversation.
type convLink struct {
	conv, identity string
	pid            *actor.PID
	resolving      bool
	waiting        []func(pid *actor.PID, err error) // in arrival order
	// watched is the activation last resolved, watched so that the session
	// learns when it stops or its member dies (see onActivationGone).
	watched *actor.PID
	// stopped is the activation last seen stopping: right afterwards the
	// identity lookup may still name it for a moment.
	stopped *actor.PID
	pending map[*pendingRequest]bool // requests sent and not answered yet

	subscribed bool  // the conversation pushes to this session
	caughtUp   bool  // pushes go straight to the client
	delivered  int64 // highest seq the client has been sent
	buffer     []*actorpb.Message
	own        map[int64]bool // seqs of this session's acked sends not yet passed by delivered
	overflow   bool           // buffer was dropped: the client must page again
	filling    bool           // the session is fetching a gap itself
}

// pendingRequest is a request sent to an activation and not answered yet.
type pendingRequest struct {
	pid *actor.PID
	// again sends it once more, to the conversation's next activation; the
	// first one's reply, if it still comes, is then ignored. Nil for a
	// request that must not be applied twice (see resendable).
	again func(ctx actor.Context)
	over  bool // answered, or sent again
}

// resendable tells a request that may be sent again to the next activation
// as soon as the one it went to stops, without waiting for its answer:
// a send (deduplicated by client_msg_id) and the reads. Others (operations,
// notes) wait for their answer, which an activation that stops gracefully
// still gives, or their timeout.
func resendable(msg any) bool {
	switch msg.(type) {
	case *actorpb.Append, *actorpb.Resume, *actorpb.MarkRead:
		return true
	}
	return false
}

var (
	errNoActivation = errors.New("actors: conversation could not be activated")
	errStale        = fmt.Errorf("%w: the lookup named the activation that stopped", errNoActivation)
)

// maxAttempts bounds how often a session sends one request.
const maxAttempts = 4

// retryRequestMsg runs a request again on the session's mailbox.
type retryRequestMsg struct{ retry func(ctx actor.Context) }

// sessionActor serves one connected client. See doc.go.
type sessionActor struct {
	caller   Caller
	out      Outbox
	cl       *cluster.Cluster
	routes   *routes
	timeout  time.Duration
	log      *slog.Logger
	links    map[string]*convLink
	inflight int
	// registrars are the activations this session registered with (its
	// agent's; its tenant's for alerts), by PID string, with their kind.
	registrars map[string]string
}

func (s *sessionActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		s.register(ctx)
	case *inbound:
		s.onFrame(ctx, m.frame)
	case *actorpb.AgentStatus:
		convs := m.Convs
		if convs == nil {
			convs = []string{}
		}
		s.emit(engine.AgentFrame{Type: engine.FrameAgent, Presence: m.Presence, Capacity: int(m.Capacity), Load: int(m.Load), Convs: convs})
	case *actorpb.Notice:
		s.emit(engine.NoticeFrame{Type: engine.FrameNotice, Kind: m.Kind, Conv: m.Conv, Text: m.Text, AgentID: m.AgentId})
	case *actorpb.SessionRevoked:
		s.out.Revoked(m.Reason)
	case *resolvedMsg:
		s.onResolved(ctx, m)
	case *retryRequestMsg:
		m.retry(ctx)
	case *actorpb.Registered:
		s.onRegistered(ctx, ctx.Sender(), m.Kind)
	case *actor.Terminated:
		if kind, ok := s.registrars[m.Who.String()]; ok {
			s.registerAgain(ctx, m.Who, kind)
			return
		}
		s.onActivationGone(ctx, m.Who)
	case *actorpb.Push:
		s.onPush(ctx, m)
	case *actor.Stopping:
		for _, l := range s.links {
			if l.subscribed && l.pid != nil {
				ctx.Send(l.pid, &actorpb.Unsubscribe{Subscriber: pidToRef(ctx.Self())})
			}
			if l.watched != nil {
				ctx.Unwatch(l.watched)
			}
		}
	}
}

func (s *sessionActor) link(conv string) *convLink {
	l, ok := s.links[conv]
	if !ok {
		l = &convLink{conv: conv, identity: ConversationIdentity(s.caller.Tenant, conv)}
		s.links[conv] = l
	}
	return l
}

// withPID runs fn with the conversation's PID, resolving it off the mailbox
// first if needed. Functions run in the order they were given.
func (s *sessionActor) withPID(ctx actor.Context, l *convLink, fn func(pid *actor.PID, err error)) {
	if l.pid != nil && len(l.waiting) == 0 {
		fn(l.pid, nil)
		return
	}
	l.waiting = append(l.waiting, fn)
	if l.resolving {
		return
	}
	l.resolving = true
	self, root, r, identity, timeout := ctx.Self(), ctx.ActorSystem().Root, s.routes, l.identity, s.timeout
	go func() {
		pid, err := r.resolve(identity, KindConversation, timeout)
		root.Send(self, &resolvedMsg{link: l, pid: pid, err: err})
	}()
}

func (s *sessionActor) onResolved(ctx actor.Context, m *resolvedMsg) {
	l := m.link
	l.resolving = false
	pid, err := m.pid, m.err
	if pid != nil && l.stopped != nil && pid.Equal(l.stopped) {
		pid, err = nil, errStale // the requests back off and look again
	}
	l.pid = pid
	if pid != nil && s.links[l.conv] == l {
		s.watch(ctx, l)
	}
	waiting := l.waiting
	l.waiting = nil
	for _, fn := range waiting {
		if pid == nil {
			fn(nil, err)
		} else {
			fn(pid, nil)
		}
	}
}

// request asks the conversation and hands the reply to onReply. A request
// that finds its activation gone is sent again on a fresh lookup: after a
// short backoff on a dead letter, a timeout or no activation, and a send
// or read at once when the activation stops or its member dies while it
// waits (onActivationGone): only those may be sent again while the first
// copy could still be answered (see resendable).
func (s *sessionActor) request(ctx actor.Context, l *convLink, msg any, attempt int, onReply func(res any, err error)) {
	again := func(ctx actor.Context) { s.request(ctx, l, msg, attempt+1, onReply) }
	retry := func() bool {
		if attempt+1 >= maxAttempts {
			return false
		}
		// Back off: right after an activation stops, the identity lookup
		// may still name it for a moment.
		later(ctx, time.Duration(attempt+1)*100*time.Millisecond, &retryRequestMsg{retry: again})
		return true
	}
	s.withPID(ctx, l, func(pid *actor.PID, err error) {
		if err != nil {
			if !retry() {
				onReply(nil, err)
			}
			return
		}
		p := &pendingRequest{pid: pid}
		if resendable(msg) {
			p.again = func(ctx actor.Context) {
				if attempt+1 < maxAttempts {
					again(ctx)
				} else {
					onReply(nil, errNoActivation)
				}
			}
		}
		if l.pending == nil {
			l.pending = make(map[*pendingRequest]bool)
		}
		l.pending[p] = true
		ctx.ReenterAfter(ctx.RequestFuture(pid, msg, s.timeout), func(res any, err error) {
			if p.over {
				return // sent again already
			}
			p.over = true
			delete(l.pending, p)
			if errors.Is(err, actor.ErrDeadLetter) || errors.Is(err, actor.ErrTimeout) {
				s.forget(l, pid)
				if retry() {
					return
				}
			}
			onReply(res, err)
		})
	})
}

// forget drops pid, which did not answer, as the conversation's activation.
func (s *sessionActor) forget(l *convLink, pid *actor.PID) {
	if l.pid != nil && l.pid.Equal(pid) {
		l.pid = nil
	}
	s.cl.PidCache.RemoveByValue(l.identity, KindConversation, pid)
}

func (s *sessionActor) onFrame(ctx actor.Context, f engine.ClientFrame) {
	self := pidToRef(ctx.Self())
	caller := callerToPB(s.caller)
	switch f.Type {
	case engine.FrameSend:
		if s.inflight >= maxInflightSends {
			s.emitError(f, engine.Errorf(engine.CodeRateLimited, "more than %d messages are waiting for their ack", maxInflightSends))
			return
		}
		s.inflight++
		req := &actorpb.Append{Caller: caller, ClientMsgId: f.ClientMsgID, Body: bodyToPB(*f.Body), Origin: self}
		s.request(ctx, s.link(f.Conv), req, 0, func(res any, err error) {
			s.inflight--
			resp, _ := res.(*actorpb.AppendResponse)
			switch {
			case err != nil || resp == nil:
				s.emitError(f, engine.NewError(engine.CodeUnavailable, "no ack in time; send the message again with the same client_msg_id"))
			case resp.Error != nil:
				s.emitError(f, errFromPB(resp.Error))
			default:
				if l := s.links[f.Conv]; l != nil && l.subscribed && resp.Seq > l.delivered {
					// The client has this message; it is not pushed back to this session.
					if l.own == nil {
						l.own = make(map[int64]bool)
					}
					l.own[resp.Seq] = true
					s.skipOwn(l)
				}
				s.emit(engine.AckFrame{Type: engine.FrameAck, Conv: f.Conv, ClientMsgID: f.ClientMsgID, Seq: resp.Seq, TS: resp.TsMs, Dup: resp.Dup})
			}
		})
	case engine.FrameResume:
		l := s.link(f.Conv)
		wasSubscribed, wasCaughtUp := l.subscribed, l.caughtUp
		l.subscribed, l.caughtUp = true, false
		var last int64
		if f.LastSeq != nil {
			last = *f.LastSeq
		}
		req := &actorpb.Resume{Caller: caller, LastSeq: last, Limit: int32(f.Limit), Subscriber: self}
		s.request(ctx, l, req, 0, func(res any, err error) {
			resp, _ := res.(*actorpb.ResumeResponse)
			switch {
			case err != nil || resp == nil:
				s.restore(ctx, l, wasSubscribed, wasCaughtUp)
				s.emitError(f, engine.NewError(engine.CodeUnavailable, "history could not be read in time; resume again"))
			case resp.Error != nil:
				s.restore(ctx, l, wasSubscribed, wasCaughtUp)
				s.emitError(f, errFromPB(resp.Error))
			default:
				s.watch(ctx, l)
				s.onHistory(ctx, l, f, last, resp)
			}
		})
	case engine.FrameAccept, engine.FrameTransfer, engine.FrameInvite, engine.FrameHold,
		engine.FrameUnhold, engine.FrameClose, engine.FrameReopen, engine.FrameRate:
		req := &actorpb.ConvOp{Caller: caller, Op: f.Type, AgentId: f.AgentID, Group: f.Group, Note: f.Note, Reason: f.Reason,
			Score: int32(f.Score), Comment: f.Comment}
		s.request(ctx, s.link(f.Conv), req, 0, func(res any, err error) {
			resp, _ := res.(*actorpb.ConvOpResponse)
			switch {
			case err != nil || resp == nil:
				s.emitError(f, engine.NewError(engine.CodeUnavailable, "the request did not reach the conversation in time; check the state and try again"))
			case resp.Error != nil:
				s.emitError(f, errFromPB(resp.Error))
			default:
				done := engine.DoneFrame{Type: engine.FrameDone, ID: f.ID, Op: f.Type, Conv: f.Conv, State: engine.ConvState(resp.Conversation.GetState())}
				if f.Type == engine.FrameRate {
					done.Rating = ratingFromPB(resp.Conversation.GetRating())
				}
				s.emit(done)
			}
		})
	case engine.FrameNote:
		req := &actorpb.AddNote{Caller: caller, Text: f.Text}
		s.request(ctx, s.link(f.Conv), req, 0, func(res any, err error) {
			resp, _ := res.(*actorpb.AddNoteResponse)
			switch {
			case err != nil || resp == nil:
				s.emitError(f, engine.NewError(engine.CodeUnavailable, "the note was not stored in time; check the notes and try again"))
			case resp.Error != nil:
				s.emitError(f, errFromPB(resp.Error))
			default:
				n := NoteFromPB(f.Conv, resp.Note)
				s.emit(engine.DoneFrame{Type: engine.FrameDone, ID: f.ID, Op: f.Type, Conv: f.Conv, Note: &n})
			}
		})
	case engine.FramePresence:
		if !s.caller.IsStaff() {
			s.emitError(f, engine.NewError(engine.CodeForbidden, "staff only"))
			return
		}
		tell(ctx, KindAgent, AgentIdentity(s.caller.Tenant, s.caller.Party.ID), &actorpb.SetPresence{Presence: f.Status})
	case engine.FrameEscalate:
		req := &actorpb.Escalate{Caller: caller}
		s.request(ctx, s.link(f.Conv), req, 0, func(res any, err error) {
			resp, _ := res.(*actorpb.EscalateResponse)
			switch {
			case err != nil || resp == nil:
				s.emitError(f, engine.NewError(engine.CodeUnavailable, "the request did not reach the conversation in time; send it again"))
			case resp.Error != nil:
				s.emitError(f, errFromPB(resp.Error))
			}
		})
	case engine.FrameLeave:
		if l, ok := s.links[f.Conv]; ok {
			if l.pid != nil {
				ctx.Send(l.pid, &actorpb.Unsubscribe{Subscriber: self})
			}
			if l.watched != nil {
				ctx.Unwatch(l.watched)
			}
			delete(s.links, f.Conv)
		}
	case engine.FrameTyping:
		typing := &actorpb.Typing{Caller: caller, On: f.On, Origin: self}
		s.withPID(ctx, s.link(f.Conv), func(pid *actor.PID, err error) {
			if err == nil {
				ctx.Send(pid, typing)
			}
		})
	case engine.FrameRead:
		req := &actorpb.MarkRead{Caller: caller, Seq: f.Seq, Origin: self}
		s.request(ctx, s.link(f.Conv), req, 0, func(res any, err error) {
			resp, _ := res.(*actorpb.MarkReadResponse)
			switch {
			case err != nil || resp == nil:
				s.emitError(f, engine.NewError(engine.CodeUnavailable, "the read receipt was not stored in time; send it again"))
			case resp.Error != nil:
				s.emitError(f, errFromPB(resp.Error))
			default:
				s.emit(engine.ReadFrame{Type: engine.FrameRead, Conv: f.Conv, By: s.caller.Party, Seq: resp.Seq})
			}
		})
	}
}

// restore puts a link back as it was before a resume that failed, and
// delivers the pushes held meanwhile if it was live.
func (s *sessionActor) restore(ctx actor.Context, l *convLink, subscribed, caughtUp bool) {
	l.subscribed, l.caughtUp = subscribed, caughtUp
	if caughtUp {
		s.flush(ctx, l)
	}
}

// watch watches the conversation's activation, so the session learns when
// it stops or its member dies (see onActivationGone).
func (s *sessionActor) watch(ctx actor.Context, l *convLink) {
	if l.pid != nil && (l.watched == nil || !l.watched.Equal(l.pid)) {
		if l.watched != nil {
			ctx.Unwatch(l.watched)
		}
		ctx.Watch(l.pid)
		l.watched = l.pid
	}
}

// onActivationGone handles a conversation activation that stopped (its
// node died or left, the cluster moved it, or it unloaded after a
// failure). The sends and reads waiting on it are sent again to the next
// activation at once, rather than after their timeout; a subscription
// went with it, so the session subscribes to the next activation and
// fills in whatever it missed.
func (s *sessionActor) onActivationGone(ctx actor.Context, who *actor.PID) {
	for _, l := range s.links {
		if l.watched == nil || !l.watched.Equal(who) {
			continue
		}
		l.watched, l.stopped = nil, who
		s.forget(l, who)
		for p := range l.pending {
			if p.again != nil && p.pid.Equal(who) {
				p.over = true
				delete(l.pending, p)
				p.again(ctx)
			}
		}
		if l.subscribed {
			l.caughtUp = false
			s.fill(ctx, l)
		}
	}
}

// onHistory sends one resume page. After the last page the session is
// caught up: pushes it held meanwhile are delivered, those the page already
// covered are dropped, so the client sees every message exactly once.
func (s *sessionActor) onHistory(ctx actor.Context, l *convLink, f engine.ClientFrame, last int64, resp *actorpb.ResumeResponse) {
	frame := engine.HistoryFrame{
		Type: engine.FrameHistory, ID: f.ID, Conv: f.Conv, More: resp.More, LastSeq: resp.LastSeq,
		State: engine.ConvState(resp.State), Messages: make([]engine.Message, len(resp.Messages)), Read: make([]engine.ReadPointer, len(resp.Read)),
	}
	for i, m := range resp.Messages {
		frame.Messages[i] = messageFromPB(s.caller.Tenant, m)
		last = m.Seq
	}
	for i, rp := range resp.Read {
		frame.Read[i] = engine.ReadPointer{Party: partyFromPB(rp.By), Seq: rp.Seq}
	}
	l.delivered = last
	for seq := range l.own {
		if seq <= last {
			delete(l.own, seq)
		}
	}
	s.skipOwn(l)
	if !frame.More {
		if l.overflow {
			// Pushes were dropped while the client paged: make it ask again.
			frame.More, l.overflow, l.buffer = true, false, nil
		} else {
			l.caughtUp = true
		}
	}
	s.emit(frame)
	if l.caughtUp {
		s.flush(ctx, l)
	}
}

func (s *sessionActor) onPush(ctx actor.Context, p *actorpb.Push) {
	l, ok := s.links[p.Conv]
	if !ok || !l.subscribed {
		return
	}
	switch ev := p.Event.(type) {
	case *actorpb.Push_Message:
		if !l.caughtUp {
			s.hold(l, ev.Message)
			return
		}
		s.deliver(ctx, l, ev.Message)
	case *actorpb.Push_Typing:
		s.emit(engine.TypingFrame{Type: engine.FrameTyping, Conv: p.Conv, From: partyFromPB(p.From), On: ev.Typing.On})
	case *actorpb.Push_Read:
		s.emit(engine.ReadFrame{Type: engine.FrameRead, Conv: p.Conv, By: partyFromPB(ev.Read.By), Seq: ev.Read.Seq})
	case *actorpb.Push_State:
		st := ev.State
		s.emit(engine.StateFrame{Type: engine.FrameState, Conv: p.Conv, State: engine.ConvState(st.State), AgentID: st.AgentId,
			By: partyFromPB(st.By), Reason: st.Reason, Group: st.Group, Invited: st.Invited, Summary: st.Summary})
	case *actorpb.Push_BotDelta:
		s.emit(engine.BotDeltaFrame{Type: engine.FrameBotDelta, Conv: p.Conv, Text: ev.BotDelta.Text})
	case *actorpb.Push_Queue:
		q := ev.Queue
		s.emit(engine.QueueFrame{Type: engine.FrameQueue, Conv: p.Conv, Group: q.Group, Position: int(q.Position), EtaMs: q.EtaMs, Available: q.Available, Reason: q.Reason})
	case *actorpb.Push_Note:
		s.emit(engine.NoteFrame{Type: engine.FrameNote, Conv: p.Conv, Note: NoteFromPB(p.Conv, ev.Note)})
	case *actorpb.Push_Rated:
		if r := ratingFromPB(ev.Rated); r != nil {
			s.emit(engine.RatedFrame{Type: engine.FrameRated, Conv: p.Conv, Rating: *r})
		}
	}
}

// register makes a staff session one of its agent's devices (the agent is
// online while one is connected) and a supervisor's or admin's session a
// receiver of the tenant's alerts.
func (s *sessionActor) register(ctx actor.Context) {
	if !s.caller.IsStaff() {
		return
	}
	s.registerWith(ctx, KindAgent)
	if s.caller.StaffRole == engine.StaffSupervisor || s.caller.StaffRole == engine.StaffAdmin {
		s.registerWith(ctx, KindTenant)
	}
}

// registrarIdentity is the identity of the actor of kind the session
// registers with.
func (s *sessionActor) registrarIdentity(kind string) string {
	if kind == KindAgent {
		return AgentIdentity(s.caller.Tenant, s.caller.Party.ID)
	}
	return s.caller.Tenant
}

func (s *sessionActor) registerWith(ctx actor.Context, kind string) {
	self := pidToRef(ctx.Self())
	if kind == KindAgent {
		tell(ctx, kind, s.registrarIdentity(kind), &actorpb.AgentConnect{Device: self, SessionId: s.caller.Session})
		return
	}
	tell(ctx, kind, s.registrarIdentity(kind), &actorpb.WatchAlerts{Device: self})
}

// onRegistered watches the activation that registered the session.
func (s *sessionActor) onRegistered(ctx actor.Context, who *actor.PID, kind string) {
	if who == nil || (kind != KindAgent && kind != KindTenant) {
		return
	}
	if _, ok := s.registrars[who.String()]; ok {
		return
	}
	if s.registrars == nil {
		s.registrars = make(map[string]string)
	}
	s.registrars[who.String()] = kind
	ctx.Watch(who)
}

// registerAgain registers with the next activation of kind once the one
// the session registered with has stopped (moved, or its node died): a
// new activation knows none of the devices of the old one. The PID cache
// may still name the old one until its member leaves.
func (s *sessionActor) registerAgain(ctx actor.Context, gone *actor.PID, kind string) {
	delete(s.registrars, gone.String())
	s.cl.PidCache.RemoveByValue(s.registrarIdentity(kind), kind, gone)
	s.registerWith(ctx, kind)
}

func (s *sessionActor) hold(l *convLink, m *actorpb.Message) {
	if len(l.buffer) >= maxBufferedPushes {
		l.buffer, l.overflow = nil, true
		return
	}
	l.buffer = append(l.buffer, m)
}

// skipOwn moves delivered past messages this session sent itself: their
// acks told the client, and they are not pushed back to their sender.
func (s *sessionActor) skipOwn(l *convLink) {
	for l.own[l.delivered+1] {
		delete(l.own, l.delivered+1)
		l.delivered++
	}
}

// deliver sends a pushed message in seq order. A gap (a push that never
// arrived) is filled from the conversation's history before going on.
func (s *sessionActor) deliver(ctx actor.Context, l *convLink, m *actorpb.Message) {
	s.skipOwn(l)
	switch {
	case m.Seq <= l.delivered:
	case m.Seq == l.delivered+1:
		s.emit(engine.MessageFrame{Type: engine.FrameMessage, Conv: l.conv, Msg: messageFromPB(s.caller.Tenant, m)})
		l.delivered = m.Seq
		s.skipOwn(l)
	default:
		l.caughtUp = false
		s.hold(l, m)
		s.fill(ctx, l)
	}
}

func (s *sessionActor) flush(ctx actor.Context, l *convLink) {
	buffer := l.buffer
	l.buffer = nil
	for i, m := range buffer {
		if !l.caughtUp { // a gap: keep the rest for after the fill
			l.buffer = append(l.buffer, buffer[i:]...)
			return
		}
		s.deliver(ctx, l, m)
	}
}

// fill fetches the messages after l.delivered and sends them as pushes.
func (s *sessionActor) fill(ctx actor.Context, l *convLink) {
	if l.filling {
		return
	}
	l.filling = true
	// Subscribing again is harmless and re-attaches to a new activation.
	req := &actorpb.Resume{Caller: callerToPB(s.caller), LastSeq: l.delivered, Limit: fillPage, Subscriber: pidToRef(ctx.Self())}
	s.request(ctx, l, req, 0, func(res any, err error) {
		l.filling = false
		resp, _ := res.(*actorpb.ResumeResponse)
		if err != nil || resp == nil || resp.Error != nil {
			s.log.Warn("filling a gap failed; the client must resume", "conv", l.conv, "err", err)
			l.subscribed = false
			s.emitError(engine.ClientFrame{Conv: l.conv}, engine.NewError(engine.CodeUnavailable, "live updates stopped; resume from your last seq"))
			return
		}
		s.watch(ctx, l)
		for _, m := range resp.Messages {
			s.skipOwn(l)
			if m.Seq == l.delivered+1 {
				s.emit(engine.MessageFrame{Type: engine.FrameMessage, Conv: l.conv, Msg: messageFromPB(s.caller.Tenant, m)})
				l.delivered = m.Seq
			}
		}
		if resp.More || l.overflow {
			l.overflow, l.buffer = false, nil
			s.fill(ctx, l)
			return
		}
		l.caughtUp = true
		s.flush(ctx, l)
	})
}

func (s *sessionActor) emit(frame any) {
	b, err := json.Marshal(frame)
	if err != nil {
		s.log.Error("encoding frame", "err", err)
		return
	}
	s.out.Enqueue(b)
}

func (s *sessionActor) emitError(f engine.ClientFrame, err error) {
	var e *engine.Error
	if !errors.As(err, &e) {
		e = engine.NewError(engine.CodeInternal, "internal error")
	}
	s.emit(engine.ErrorFrame{Type: engine.FrameError, ID: f.ID, Code: e.Code, Message: e.Message, Conv: f.Conv, ClientMsgID: f.ClientMsgID})
}
