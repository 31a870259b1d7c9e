package actors

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"

	"github.com/kefu-dev/kefu/actors/actorpb"
	"github.com/kefu-dev/kefu/auth"
	"github.com/kefu-dev/kefu/engine"
)

// passwordChecks bounds the argon2id verifications running on this node.
var passwordChecks = make(chan struct{}, runtime.GOMAXPROCS(0))

// dummyHash is verified when a username does not exist, so a failed login
// takes as long whether or not the account exists.
var dummyHash = sync.OnceValue(func() string {
	h, err := auth.HashPassword("kefu-timing-equaliser")
	if err != nil {
		panic(err) // only crypto/rand failing could cause this
	}
	return h
})

// tenantActor answers tenant-wide requests: login, conversation listing and
// the knowledge base, configuration and audit log, whose single writer it
// is. Store calls run off its mailbox and reply from there.
type tenantActor struct {
	d           *Deps
	tenant      string
	writes      writeQueue            // knowledge-base and configuration changes, in order
	audit       []engine.AuditEntry   // audit entries waiting for the next store write (tenant_audit.go)
	auditing    *storeCall[error]     // the audit write in flight, if any
	lastAuditMs int64                 // the time in the newest audit id given (nextAuditID)
	watchers    map[string]*actor.PID // supervisors' sessions that receive alerts
}

func newTenant(d *Deps) actor.Actor { return &tenantActor{d: d, watchers: make(map[string]*actor.PID)} }

func (a *tenantActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *cluster.ClusterInit:
		a.tenant = m.Identity.Identity
		a.writes = writeQueue{timeout: a.d.StoreTimeout, log: a.d.Logger.With("tenant", a.tenant)}
		ctx.SetReceiveTimeout(a.d.IdleTimeout)
	case *actor.ReceiveTimeout:
		if a.writes.idle() && len(a.watchers) == 0 && a.auditing == nil && len(a.audit) == 0 {
			ctx.Stop(ctx.Self())
			return
		}
		ctx.SetReceiveTimeout(a.d.IdleTimeout) // it disarms when it fires
	case *actor.Stopping:
		// The node shuts down or the cluster moves the tenant: the changes
		// and audit entries still queued are stored now, blocking the
		// mailbox, which is fine only because the actor is going away
		// (writes.go). Changes first: they record audit entries.
		a.writes.finish(ctx)
		a.finishAudit()
	case *actorpb.KBList:
		a.kbList(ctx, m)
	case *actorpb.KBSearch:
		a.kbSearch(ctx, m)
	case *actorpb.KBPut:
		a.kbEnqueue(ctx, m.Caller, m)
	case *actorpb.KBDelete:
		a.kbEnqueue(ctx, m.Caller, m)
	case *writtenMsg:
		m.q.written(ctx, m.err)
	case *actorpb.TenantConfig:
		a.config(ctx, m)
	case *actorpb.AppendAudit:
		a.appendAudit(ctx, m)
	case *auditWrittenMsg:
		a.auditing = nil
		a.flushAudit(ctx)
	case *actorpb.ListAudit:
		a.listAudit(ctx, m)
	case *actorpb.WatchAlerts:
		if pid := pidFromRef(m.Device); pid != nil {
			a.watchers[pid.String()] = pid
			ctx.Watch(pid)
			ctx.Request(pid, &actorpb.Registered{Kind: KindTenant})
		}
	case *actor.Terminated:
		delete(a.watchers, m.Who.String())
	case *actorpb.Notice:
		for _, w := range a.watchers {
			ctx.Send(w, m)
		}
	case *actorpb.UserIdentity:
		a.off(ctx, func(c context.Context) any { return a.userIdentity(c, m) })
	case *actorpb.CheckTenant:
		a.off(ctx, func(c context.Context) any {
			_, err := a.d.Store.Tenant(c, a.tenant)
			switch {
			case errors.Is(err, engine.ErrNotFound):
				return &actorpb.CheckTenantResponse{Error: errToPB(engine.NewError(engine.CodeNotFound, "no such tenant"))}
			case err != nil:
				a.d.Logger.Error("checking tenant", "tenant", a.tenant, "err", err)
				return &actorpb.CheckTenantResponse{Error: errToPB(engine.NewError(engine.CodeUnavailable, "try again"))}
			}
			return &actorpb.CheckTenantResponse{}
		})
	case *actorpb.Login:
		a.login(ctx, m)
	case *actorpb.ListConversations:
		caller := callerFromPB(m.Caller)
		if caller.Tenant != a.tenant || !caller.IsStaff() {
			ctx.Respond(&actorpb.ListConversationsResponse{Error: errToPB(engine.NewError(engine.CodeForbidden, "staff only"))})
			return
		}
		q := engine.ConversationQuery{State: engine.ConvState(m.State), Limit: int(m.Limit), AgentID: m.AgentId,
			InvitedID: m.InvitedId, Group: m.Group}
		// Conversations the caller owns or is invited to, and the queue,
		// are theirs to see whatever else the query asks.
		theirs := q.AgentID == caller.Party.ID || q.InvitedID == caller.Party.ID || q.State == engine.StateQueued || q.State == engine.StateBot
		if caller.StaffRole == engine.StaffAgent && !theirs {
			ctx.Respond(&actorpb.ListConversationsResponse{Error: errToPB(engine.NewError(engine.CodeForbidden,
				"agents list their own conversations (agent_id), those they are invited to (invited) or the queue (state QUEUED or BOT)"))})
			return
		}
		if m.BeforeMs > 0 {
			q.Before = time.UnixMilli(m.BeforeMs)
		}
		queries := []engine.ConversationQuery{q}
		if caller.StaffRole == engine.StaffSupervisor && !theirs {
			// Supervisors list their own groups' conversations.
			switch {
			case q.Group != "" && !slices.Contains(caller.Groups, q.Group):
				ctx.Respond(&actorpb.ListConversationsResponse{Error: errToPB(engine.NewError(engine.CodeForbidden, "supervisors list the conversations of their own groups"))})
				return
			case q.Group == "":
				queries = queries[:0]
				for _, g := range caller.Groups {
					gq := q
					gq.Group = g
					queries = append(queries, gq)
				}
			}
		}
		a.off(ctx, func(c context.Context) any {
			var convs []engine.Conversation
			for _, q := range queries {
				page, err := a.d.Store.ListConversations(c, a.tenant, q)
				if err != nil {
					a.d.Logger.Error("listing conversations", "tenant", a.tenant, "err", err)
					return &actorpb.ListConversationsResponse{Error: errToPB(engine.NewError(engine.CodeUnavailable, "try again"))}
				}
				convs = append(convs, page...)
			}
			if len(queries) > 1 { // newest first across the groups, as one query would be
				slices.SortFunc(convs, func(x, y engine.Conversation) int {
					if c := y.CreatedAt.Compare(x.CreatedAt); c != 0 {
						return c
					}
					return strings.Compare(y.ID, x.ID)
				})
				limit := q.Limit
				if limit <= 0 {
					limit = 50 // the store's default
				}
				convs = convs[:min(len(convs), limit)]
			}
			resp := &actorpb.ListConversationsResponse{}
			for _, c := range convs {
				resp.Conversations = append(resp.Conversations, conversationToPB(c))
			}
			return resp
		})
	}
}

// write queues a change behind the earlier ones: the tenant actor applies
// one at a time, so read-modify-writes (knowledge-base versions, customer
// tags) never race. run returns the reply to the requester and messages
// for the actor itself (afterWrite), both delivered once the write is
// done, even if the actor is stopping.
func (a *tenantActor) write(ctx actor.Context, run func(context.Context) (resp any, then []any)) {
	sender := ctx.Sender()
	var resp any
	var then []any
	a.writes.add(ctx, storeWrite{what: "a tenant change", start: func() func(context.Context) error {
		return func(c context.Context) error {
			resp, then = run(c)
			return nil
		}
	}, then: func(ctx actor.Context, err error) {
		if err != nil {
			return // errStillRunning: resp is not ours to read; the requester times out
		}
		reply(ctx, sender, resp)
		a.afterWrite(ctx, then)
	}})
}

// afterWrite handles what a change's run returned for the actor itself.
func (a *tenantActor) afterWrite(ctx actor.Context, msgs []any) {
	for _, m := range msgs {
		switch m := m.(type) {
		case *configChanged:
			a.onConfigChanged(ctx, m)
		case *auditMsg:
			a.record(ctx, m.entries...)
		}
	}
}

// off runs f in a goroutine and sends its result to the requester.
func (a *tenantActor) off(ctx actor.Context, f func(context.Context) any) {
	sender, root, timeout := ctx.Sender(), ctx.ActorSystem().Root, a.d.StoreTimeout
	go func() {
		c, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if resp := f(c); sender != nil {
			root.Send(sender, resp)
		}
	}()
}

// login finds the account by username and hands the password to its
// agent actor, which answers the requester. An unknown username costs the
// same argon2id check as a known one, so timing does not tell them apart.
func (a *tenantActor) login(ctx actor.Context, m *actorpb.Login) {
	sender, root, timeout, self := ctx.Sender(), ctx.ActorSystem().Root, a.d.StoreTimeout, ctx.Self()
	cl := cluster.GetCluster(ctx.ActorSystem())
	tenant, logger := a.tenant, a.d.Logger
	respond := func(e *engine.Error) { root.Send(sender, &actorpb.LoginResponse{Error: errToPB(e)}) }
	go func() {
		c, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		staff, err := a.d.Store.StaffByUsername(c, tenant, m.Username)
		switch {
		case errors.Is(err, engine.ErrNotFound):
			select {
			case passwordChecks <- struct{}{}:
				_, _ = auth.VerifyPassword(dummyHash(), m.Password)
				<-passwordChecks
			default:
			}
			name := strings.ToValidUTF8(m.Username, "?")
			if len(name) > 64 {
				name = strings.ToValidUTF8(name[:64], "")
			}
			root.Send(self, &actorpb.AppendAudit{Entries: []*actorpb.AuditEntry{auditToPB(engine.AuditEntry{
				Action: engine.AuditLoginFailed, IP: m.Ip, Detail: "unknown username " + strconv.Quote(name), At: a.d.Clock.Now()})}})
			respond(errDenied)
		case err != nil:
			logger.Error("login lookup", "tenant", tenant, "err", err)
			respond(errTryAgain)
		default:
			pid, err := routesFor(cl).resolve(AgentIdentity(tenant, staff.ID), KindAgent, cl.Config.RequestTimeoutTime)
			if err != nil {
				respond(errTryAgain)
				return
			}
			root.RequestWithCustomSender(pid, &actorpb.Authenticate{Password: m.Password, Ip: m.Ip, UserAgent: m.UserAgent}, sender)
		}
	}()
}
