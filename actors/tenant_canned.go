package actors

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/kefu-dev/kefu/actors/actorpb"
	"github.com/kefu-dev/kefu/engine"
)

// CannedChange is the body of a canned response's creation or change.
type CannedChange struct {
	Scope    engine.CannedScope `json:"scope"`
	Shortcut string             `json:"shortcut"`
	Title    string             `json:"title"`
	Text     string             `json:"text"`
}

// Canned responses are tenant configuration with one twist: a personal
// one is its owner's alone. A member of staff sees, and may change, the
// tenant's and their own; another's is not found, whatever their role.
// The tenant's are changed by admins and supervisors only, and recorded
// in the audit log; personal ones by their owner, unrecorded.

// cannedVisible returns what caller sees, by shortcut (the tenant's first
// on a tie, then by id).
func (a *tenantActor) cannedVisible(c context.Context, caller Caller) ([]engine.CannedResponse, error) {
	list, err := a.d.Store.CannedResponses(c, a.tenant, caller.Party.ID)
	if err != nil {
		return nil, err
	}
	if list == nil {
		list = []engine.CannedResponse{}
	}
	slices.SortFunc(list, func(x, y engine.CannedResponse) int {
		return cmp.Or(strings.Compare(x.Shortcut, y.Shortcut), strings.Compare(string(y.Scope), string(x.Scope)), strings.Compare(x.ID, y.ID))
	})
	return list, nil
}

func (a *tenantActor) cannedList(c context.Context, caller Caller) *actorpb.TenantConfigResponse {
	list, err := a.cannedVisible(c, caller)
	if err != nil {
		return unavailable(err, "canned responses", a.d.Logger.Error)
	}
	return jsonResp(list)
}

// mayEditCanned reports whether caller may create, change or delete a
// canned response of scope (one they see: a personal one is theirs).
func mayEditCanned(caller Caller, scope engine.CannedScope) bool {
	return scope != engine.CannedTenant || caller.StaffRole == engine.StaffAdmin || caller.StaffRole == engine.StaffSupervisor
}

var errCannedForbidden = engine.NewError(engine.CodeForbidden, "only admins and supervisors change the tenant's canned responses")

// cannedWrite creates (ConfigCreate), changes (ConfigPut) or deletes
// (ConfigDelete) a canned response, and returns the reply and, for a
// change of the tenant's, its audit entry.
func (a *tenantActor) cannedWrite(c context.Context, m *actorpb.TenantConfig) (*actorpb.TenantConfigResponse, engine.AuditEntry) {
	caller, logf := callerFromPB(m.Caller), a.d.Logger.Error
	visible, err := a.cannedVisible(c, caller)
	if err != nil {
		return unavailable(err, "canned responses", logf), engine.AuditEntry{}
	}
	var old *engine.CannedResponse
	if m.Op != ConfigCreate {
		i := slices.IndexFunc(visible, func(r engine.CannedResponse) bool { return r.ID == m.Id })
		if i < 0 {
			return configErr(engine.NewError(engine.CodeNotFound, "no such canned response")), engine.AuditEntry{}
		}
		old = &visible[i]
		if !mayEditCanned(caller, old.Scope) {
			return configErr(errCannedForbidden), engine.AuditEntry{}
		}
	}
	if m.Op == ConfigDelete {
		if err := a.d.Store.DeleteCanned(c, a.tenant, old.ID); err != nil {
			return unavailable(err, "canned response", logf), engine.AuditEntry{}
		}
		return jsonResp(struct{}{}), cannedAudit(old.Scope, old.Scope, old.ID, "deleted, shortcut "+old.Shortcut)
	}

	var ch CannedChange
	if err := json.Unmarshal(m.Json, &ch); err != nil {
		return configErr(engine.Errorf(engine.CodeInvalidField, "the body is not valid: %v", err)), engine.AuditEntry{}
	}
	r := engine.CannedResponse{Tenant: a.tenant, ID: m.Id, Scope: ch.Scope, Shortcut: ch.Shortcut, Title: ch.Title, Text: ch.Text,
		UpdatedAt: a.d.Clock.Now()}.Normalize()
	if old == nil {
		r.ID = engine.NewID(r.UpdatedAt)
	}
	if r.Scope == engine.CannedPersonal {
		r.Owner = caller.Party.ID
	}
	if !mayEditCanned(caller, r.Scope) {
		return configErr(errCannedForbidden), engine.AuditEntry{}
	}
	if err := r.Validate(); err != nil {
		return configErr(err), engine.AuditEntry{}
	}
	taken := engine.Errorf(engine.CodeInvalidField, "shortcut %q is already used by another %s canned response", r.Shortcut, r.Scope)
	if slices.ContainsFunc(visible, func(o engine.CannedResponse) bool {
		return o.ID != r.ID && o.Owner == r.Owner && o.Shortcut == r.Shortcut
	}) {
		return configErr(taken), engine.AuditEntry{}
	}
	switch err := a.d.Store.PutCanned(c, r); {
	case errors.Is(err, engine.ErrExists):
		return configErr(taken), engine.AuditEntry{}
	case err != nil:
		return unavailable(err, "canned response", logf), engine.AuditEntry{}
	}
	from, detail := r.Scope, "created, shortcut "+r.Shortcut
	if old != nil {
		from, detail = old.Scope, fmt.Sprintf("put, shortcut %s, scope %s", r.Shortcut, r.Scope)
	}
	return jsonResp(r), cannedAudit(from, r.Scope, r.ID, detail)
}

// cannedAudit is the audit entry of a change of a canned response from
// scope from to scope to: none when neither is the tenant's.
func cannedAudit(from, to engine.CannedScope, id, detail string) engine.AuditEntry {
	if from != engine.CannedTenant && to != engine.CannedTenant {
		return engine.AuditEntry{}
	}
	return configAudit(ConfigCanned, id, detail)
}
