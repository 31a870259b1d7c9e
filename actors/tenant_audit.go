package actors

import (
	"context"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/kefu-dev/kefu/actors/actorpb"
	"github.com/kefu-dev/kefu/engine"
)

// The tenant actor is the single writer of its tenant's audit log. Entries
// come from the edge and other actors (AppendAudit) and from its own
// configuration and knowledge-base writes (auditMsg). One store write is in
// flight at a time; what arrives meanwhile waits in a.audit and goes in the
// next write, so under load the store sees a few large writes, not one per
// entry, and the mailbox never waits for the store, except as the actor
// stops (finishAudit).

// maxAuditBatch bounds the entries of one store write.
const maxAuditBatch = 256

// auditMsg carries entries a change recorded off the mailbox (a write that
// succeeded) back to the actor (tenantActor.afterWrite).
type auditMsg struct{ entries []engine.AuditEntry }

// auditWrittenMsg reports that the audit write in flight finished.
type auditWrittenMsg struct{}

// appendAudit records entries sent by the edge or another actor. An
// invalid entry refuses the whole message: the sender has a bug, and
// storing part of what it meant would hide it.
func (a *tenantActor) appendAudit(ctx actor.Context, m *actorpb.AppendAudit) {
	entries := make([]engine.AuditEntry, len(m.Entries))
	for i, pb := range m.Entries {
		entries[i] = auditFromPB(a.tenant, pb)
		if err := entries[i].Validate(); err != nil {
			a.d.Logger.Error("refused audit entries", "tenant", a.tenant, "count", len(m.Entries),
				"action", entries[i].Action, "actor_id", entries[i].Actor.ID, "target", entries[i].Target, "err", err)
			if ctx.Sender() != nil {
				ctx.Respond(&actorpb.AppendAuditResponse{Error: errToPB(err)})
			}
			return
		}
	}
	a.record(ctx, entries...)
	if ctx.Sender() != nil {
		ctx.Respond(&actorpb.AppendAuditResponse{})
	}
}

// record queues entries for the store, with the tenant, a new id and, when
// unset, the time.
func (a *tenantActor) record(ctx actor.Context, entries ...engine.AuditEntry) {
	now := a.d.Clock.Now()
	for _, e := range entries {
		e.Tenant, e.ID = a.tenant, a.nextAuditID(now)
		if e.At.IsZero() {
			e.At = now
		}
		a.audit = append(a.audit, e)
	}
	a.flushAudit(ctx)
}

// nextAuditID is a new id that sorts after every id this activation gave
// before: the log lists entries of the same millisecond by id, and ids of
// one millisecond are otherwise in random order.
func (a *tenantActor) nextAuditID(now time.Time) string {
	ms := max(now.UnixMilli(), a.lastAuditMs+1)
	a.lastAuditMs = ms
	return engine.NewID(time.UnixMilli(ms))
}

// flushAudit starts the next store write unless one is in flight.
func (a *tenantActor) flushAudit(ctx actor.Context) {
	if a.auditing != nil || len(a.audit) == 0 {
		return
	}
	batch := a.nextAuditBatch()
	a.auditing = goStore(ctx, a.d.StoreTimeout, func(c context.Context) error { return a.writeAudit(c, batch) },
		func(error) any { return &auditWrittenMsg{} })
}

// nextAuditBatch takes the oldest entries queued, at most maxAuditBatch.
func (a *tenantActor) nextAuditBatch() []engine.AuditEntry {
	n := min(len(a.audit), maxAuditBatch)
	batch := a.audit[:n:n] // appends to a.audit cannot reach it
	a.audit = a.audit[n:]
	if len(a.audit) == 0 {
		a.audit = nil
	}
	return batch
}

// writeAudit stores batch. A failed write is logged entry by entry, so the
// log keeps what the store did not.
func (a *tenantActor) writeAudit(c context.Context, batch []engine.AuditEntry) error {
	err := a.d.Store.AppendAudit(c, batch)
	if err != nil {
		logLostAudit(a.d.Logger, batch, err)
	}
	return err
}

// finishAudit stores what is still queued when the actor stops, after the
// write in flight (see writes.go). It passivates only with nothing queued,
// so this happens when the node shuts down or the cluster moves it.
func (a *tenantActor) finishAudit() {
	if a.auditing == nil && len(a.audit) == 0 {
		return
	}
	a.d.Logger.Info(logFinishing, "tenant", a.tenant, "queued", len(a.audit), "what", "audit entries")
	if a.auditing != nil {
		if _, ok := a.auditing.wait(a.d.StoreTimeout); !ok {
			a.d.Logger.Error("an audit write was still running as the tenant actor stopped", "tenant", a.tenant, "err", errStillRunning)
		}
		a.auditing = nil
	}
	for len(a.audit) > 0 {
		batch := a.nextAuditBatch()
		storeNow(a.d.StoreTimeout, func(c context.Context) error { return a.writeAudit(c, batch) })
	}
}

func logLostAudit(log *slog.Logger, batch []engine.AuditEntry, err error) {
	log.Error("audit entries not stored; each follows in this log", "count", len(batch), "err", err)
	for _, e := range batch {
		log.Error("audit entry not stored", "tenant", e.Tenant, "id", e.ID, "at", e.At, "action", e.Action,
			"actor_role", e.Actor.Role, "actor_id", e.Actor.ID, "ip", e.IP, "target", e.Target, "detail", e.Detail)
	}
}

// listAudit answers an admin's read of the log, off the mailbox.
func (a *tenantActor) listAudit(ctx actor.Context, m *actorpb.ListAudit) {
	caller := callerFromPB(m.Caller)
	if caller.Tenant != a.tenant || !caller.IsStaff() || caller.StaffRole != engine.StaffAdmin {
		ctx.Respond(&actorpb.ListAuditResponse{Error: errToPB(engine.NewError(engine.CodeForbidden, "only admins read the audit log"))})
		return
	}
	if m.Limit < 0 || m.Limit > engine.MaxAuditLimit {
		ctx.Respond(&actorpb.ListAuditResponse{Error: errToPB(engine.Errorf(engine.CodeInvalidField, "limit is at most %d", engine.MaxAuditLimit))})
		return
	}
	q := engine.AuditQuery{Action: engine.AuditAction(m.Action), ActorID: m.ActorId, Target: m.Target, Before: timeOrZero(m.BeforeMs), Limit: int(m.Limit)}
	a.off(ctx, func(c context.Context) any {
		entries, err := a.d.Store.AuditLog(c, a.tenant, q)
		if err != nil {
			a.d.Logger.Error("reading the audit log", "tenant", a.tenant, "err", err)
			return &actorpb.ListAuditResponse{Error: errToPB(engine.NewError(engine.CodeUnavailable, "try again"))}
		}
		resp := &actorpb.ListAuditResponse{Entries: make([]*actorpb.AuditEntry, len(entries))}
		for i, e := range entries {
			resp.Entries[i] = auditToPB(e)
		}
		return resp
	})
}

func auditToPB(e engine.AuditEntry) *actorpb.AuditEntry {
	return &actorpb.AuditEntry{Id: e.ID, AtMs: msOrZero(e.At), Actor: partyToPB(e.Actor), Ip: e.IP,
		Action: string(e.Action), Target: e.Target, Detail: e.Detail}
}

// auditFromPB converts an entry; its getters make a nil entry (which only
// a local sender could build) an empty one, which Validate refuses.
func auditFromPB(tenant string, e *actorpb.AuditEntry) engine.AuditEntry {
	return engine.AuditEntry{Tenant: tenant, ID: e.GetId(), At: timeOrZero(e.GetAtMs()), Actor: partyFromPB(e.GetActor()),
		IP: e.GetIp(), Action: engine.AuditAction(e.GetAction()), Target: e.GetTarget(), Detail: e.GetDetail()}
}
