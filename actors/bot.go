package actors

import (
	"context"
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/kefu-dev/kefu/actors/actorpb"
	"github.com/kefu-dev/kefu/bots"
	"github.com/kefu-dev/kefu/engine"
)

// botParty is who bot messages are from.
var botParty = engine.Party{Role: engine.RoleBot, ID: "bot"}

type (
	botDeltaMsg struct {
		gen  uint64
		text string
	}
	botReplyMsg struct {
		gen     uint64
		replyTo int64 // the seq of the user message answered
		reply   bots.Reply
	}
	assistMsg struct {
		sender *actor.PID
		resp   *actorpb.AssistResponse
	}
)

// botMsgID is the client_msg_id of the bot's answer to the message at seq.
// It contains a space, which clients' ids may not, so no client can take
// it, and a turn computed twice is stored once.
func botMsgID(seq int64) string { return "bot " + strconv.FormatInt(seq, 10) }

func lastUserMessage(batch []*pendingAppend) *engine.Message {
	for i := len(batch) - 1; i >= 0; i-- {
		if m := &batch[i].msg; m.From.Role == engine.RoleUser && m.Body.Type == engine.BodyText {
			return m
		}
	}
	return nil
}

// startBot answers a stored user message while the bot owns the
// conversation. The pipeline runs in a goroutine; its streamed pieces and
// its reply come back as messages. A newer question voids an older one
// still being answered.
func (a *conversationActor) startBot(ctx actor.Context, msg engine.Message) {
	if a.d.Bot == nil || a.conv.State != engine.StateBot || a.routing > 0 {
		return
	}
	a.cancelBot()
	gen := a.botGen
	c, cancel := context.WithTimeout(context.Background(), a.d.BotTimeout)
	a.botCancel = cancel
	self, root := ctx.Self(), ctx.ActorSystem().Root
	turn := bots.Turn{Tenant: a.tenant, Text: msg.Body.Text, FailedTurns: a.failedTurns}
	go func() {
		defer cancel()
		idx, err := a.d.Knowledge.Index(c, a.tenant)
		if err != nil {
			a.log.Warn("no knowledge index; the bot answers without one", "err", err)
		}
		reply := a.d.Bot.Respond(c, idx, turn, func(piece string) {
			root.Send(self, &botDeltaMsg{gen: gen, text: piece})
		})
		root.Send(self, &botReplyMsg{gen: gen, replyTo: msg.Seq, reply: reply})
	}()
}

// onBotReply stores the bot's reply as an ordinary message, unless a person
// took over (or a newer question came) meanwhile.
func (a *conversationActor) onBotReply(ctx actor.Context, m *botReplyMsg) {
	if m.gen != a.botGen || a.conv.State != engine.StateBot {
		return
	}
	a.botCancel = nil
	r := m.reply
	if r.Answered() {
		a.failedTurns = 0
	} else {
		a.failedTurns++
	}
	body := engine.Body{Type: engine.BodyText, Text: r.Text}
	if r.Kind == bots.KindSuggest && len(r.Suggestions) > 0 {
		body.Type = engine.BodyQuickReply
		for _, s := range r.Suggestions {
			body.Options = append(body.Options, engine.Option{ID: s.EntryID, Text: s.Question})
		}
	}
	a.d.Metrics.botReplied(string(r.Kind))
	a.log.Debug("bot reply", "question_seq", m.replyTo, "kind", r.Kind, "reason", r.Reason, "stage", r.Stage,
		"entry", r.EntryID, "used_entries", r.UsedEntries, "confidence", r.Confidence)
	p := &pendingAppend{
		msg: engine.Message{Tenant: a.tenant, Conv: a.id, ClientMsgID: botMsgID(m.replyTo),
			From: botParty, Body: body, CreatedAt: a.d.Clock.Now()},
		since: time.Now(),
	}
	if r.Kind == bots.KindEscalate {
		a.failedTurns = 0
		p.stored = func(ctx actor.Context) {
			if a.conv.State == engine.StateBot && a.routing == 0 {
				a.queueFor(ctx, botParty, engine.EventEscalated, r.Reason, func(error) {})
			}
		}
	}
	a.queue = append(a.queue, p)
	a.pump(ctx)
}

// handoverSummary is the bot's hand-over summary (bots.Pipeline.Summary)
// for an escalation with reason: the bot's replies and the customer's
// text messages are counted over the messages the conversation keeps in
// memory (its newest Deps.Recent at least).
func (a *conversationActor) handoverSummary(reason string) string {
	h := bots.Handover{Reason: reason}
	for _, m := range a.recent {
		switch {
		case m.From.Role == engine.RoleBot:
			h.BotTurns++
		case m.From.Role == engine.RoleUser && m.Body.Type == engine.BodyText:
			h.Questions = append(h.Questions, m.Body.Text)
		}
	}
	return a.d.Bot.Summary(h)
}

// assist returns the best knowledge-base answers for the latest customer
// message, for the agent's side panel. Staff only.
func (a *conversationActor) assist(ctx actor.Context, sender *actor.PID, m *actorpb.Assist) {
	caller := callerFromPB(m.Caller)
	if err := a.authorize(m.Caller); err != nil || !caller.IsStaff() {
		reply(ctx, sender, &actorpb.AssistResponse{Error: errToPB(engine.NewError(engine.CodeNotFound, "no such conversation"))})
		return
	}
	text := ""
	for i := len(a.recent) - 1; i >= 0; i-- {
		if a.recent[i].From.Role == engine.RoleUser && a.recent[i].Body.Type == engine.BodyText {
			text = a.recent[i].Body.Text
			break
		}
	}
	if text == "" || a.d.Knowledge == nil {
		reply(ctx, sender, &actorpb.AssistResponse{})
		return
	}
	k, knowledge, tenant := int(m.Limit), a.d.Knowledge, a.tenant
	a.async(ctx, func(c context.Context) any {
		return &assistMsg{sender: sender, resp: knowledge.assist(c, tenant, text, k)}
	})
}

// assist answers an Assist or a KBSearch: the tenant's best k answers to
// text (bots.Assist), from this node's index. It may block on the index's
// first build: never call it inside Receive.
func (k *Knowledge) assist(c context.Context, tenant, text string, limit int) *actorpb.AssistResponse {
	resp := &actorpb.AssistResponse{Query: text}
	idx, err := k.Index(c, tenant)
	if err != nil {
		resp.Error = errToPB(engine.NewError(engine.CodeUnavailable, "the knowledge base could not be loaded; try again"))
		return resp
	}
	for _, cand := range bots.Assist(idx, text, limit) {
		resp.Suggestions = append(resp.Suggestions, &actorpb.AssistSuggestion{
			EntryId: cand.EntryID, Question: cand.Question, Answer: cand.Answer, Confidence: cand.Confidence,
		})
	}
	return resp
}
