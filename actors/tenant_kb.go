package actors

import (
	"bytes"
	"context"
	"errors"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/kefu-dev/kefu/actors/actorpb"
	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/kb"
)

func canEditKB(c Caller) bool {
	return c.IsStaff() && (c.StaffRole == engine.StaffAdmin || c.StaffRole == engine.StaffSupervisor)
}

func (a *tenantActor) kbList(ctx actor.Context, m *actorpb.KBList) {
	if c := callerFromPB(m.Caller); c.Tenant != a.tenant || !c.IsStaff() {
		ctx.Respond(&actorpb.KBListResponse{Error: errToPB(engine.NewError(engine.CodeForbidden, "staff only"))})
		return
	}
	a.off(ctx, func(c context.Context) any {
		entries, err := a.d.Store.FAQEntries(c, a.tenant)
		if err != nil {
			a.d.Logger.Error("listing faq entries", "tenant", a.tenant, "err", err)
			return &actorpb.KBListResponse{Error: errToPB(engine.NewError(engine.CodeUnavailable, "try again"))}
		}
		var buf bytes.Buffer
		if err := kb.WriteJSON(&buf, EntriesFromStore(entries)); err != nil {
			return &actorpb.KBListResponse{Error: errToPB(err)}
		}
		return &actorpb.KBListResponse{EntriesJson: buf.Bytes()}
	})
}

// kbSearch answers a member of staff's free query of the knowledge base
// with the retrieval agent assist uses, off the mailbox.
func (a *tenantActor) kbSearch(ctx actor.Context, m *actorpb.KBSearch) {
	if c := callerFromPB(m.Caller); c.Tenant != a.tenant || !c.IsStaff() {
		ctx.Respond(&actorpb.AssistResponse{Error: errToPB(engine.NewError(engine.CodeForbidden, "staff only"))})
		return
	}
	a.off(ctx, func(c context.Context) any { return a.d.Knowledge.assist(c, a.tenant, m.Query, int(m.Limit)) })
}

// kbEnqueue queues a change; writes run one at a time (tenantActor.write).
// A change that succeeds is recorded in the audit log, target "kb".
func (a *tenantActor) kbEnqueue(ctx actor.Context, caller *actorpb.Caller, msg any) {
	by := callerFromPB(caller)
	if by.Tenant != a.tenant || !canEditKB(by) {
		err := errToPB(engine.NewError(engine.CodeForbidden, "only admins and supervisors edit the knowledge base"))
		if _, ok := msg.(*actorpb.KBPut); ok {
			ctx.Respond(&actorpb.KBPutResponse{Error: err})
		} else {
			ctx.Respond(&actorpb.KBDeleteResponse{Error: err})
		}
		return
	}
	a.write(ctx, func(c context.Context) (any, []any) {
		change := engine.AuditEntry{Actor: by.Party, Action: engine.AuditConfigChanged, Target: "kb"}
		if m, ok := msg.(*actorpb.KBPut); ok {
			resp := a.kbPut(c, m)
			if resp.Error != nil {
				return resp, nil
			}
			change.Detail = "put " + plural(int(resp.Count), "entry", "entries")
			if m.Replace {
				change.Detail = "replaced all with " + plural(int(resp.Count), "entry", "entries")
			}
			return resp, []any{&auditMsg{entries: []engine.AuditEntry{change}}}
		}
		m := msg.(*actorpb.KBDelete)
		resp := a.kbDelete(c, m)
		if resp.Error != nil {
			return resp, nil
		}
		change.Detail = "deleted entry " + m.Id
		return resp, []any{&auditMsg{entries: []engine.AuditEntry{change}}}
	})
}

// kbPut runs off the mailbox: it merges, validates, stores and rebuilds.
func (a *tenantActor) kbPut(c context.Context, m *actorpb.KBPut) *actorpb.KBPutResponse {
	incoming, err := kb.ParseJSON(bytes.NewReader(m.EntriesJson))
	if err == nil && len(incoming) == 0 && !m.Replace {
		err = errors.New("no entries given")
	}
	if err != nil {
		return &actorpb.KBPutResponse{Error: errToPB(engine.NewError(engine.CodeInvalidField, err.Error()))}
	}
	_, err = ApplyKBChange(c, a.d.Store, a.tenant, incoming, m.Replace, a.d.Clock.Now())
	switch {
	case errors.Is(err, kb.ErrInvalid), errors.Is(err, kb.ErrDuplicate):
		return &actorpb.KBPutResponse{Error: errToPB(engine.NewError(engine.CodeInvalidField, err.Error()))}
	case err != nil:
		a.d.Logger.Error("storing faq entries", "tenant", a.tenant, "err", err)
		return &actorpb.KBPutResponse{Error: errToPB(engine.NewError(engine.CodeUnavailable, "not stored, or partly; try again"))}
	}
	a.rebuild(c)
	return &actorpb.KBPutResponse{Count: int32(len(incoming))}
}

func (a *tenantActor) kbDelete(c context.Context, m *actorpb.KBDelete) *actorpb.KBDeleteResponse {
	err := a.d.Store.DeleteFAQ(c, a.tenant, m.Id)
	switch {
	case errors.Is(err, engine.ErrNotFound):
		return &actorpb.KBDeleteResponse{Error: errToPB(engine.NewError(engine.CodeNotFound, "no such entry"))}
	case err != nil:
		a.d.Logger.Error("deleting a faq entry", "tenant", a.tenant, "err", err)
		return &actorpb.KBDeleteResponse{Error: errToPB(engine.NewError(engine.CodeUnavailable, "try again"))}
	}
	a.rebuild(c)
	return &actorpb.KBDeleteResponse{}
}

// rebuild refreshes this node's index so the bot uses the change at once.
func (a *tenantActor) rebuild(c context.Context) {
	if err := a.d.Knowledge.Rebuild(c, a.tenant); err != nil {
		a.d.Logger.Warn("rebuilding the knowledge index; it catches up on its next check", "tenant", a.tenant, "err", err)
	}
}
