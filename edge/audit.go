package edge

import (
	"github.com/gofiber/fiber/v2"

	"github.com/kefu-dev/kefu/actors"
	"github.com/kefu-dev/kefu/engine"
)

// auditLog serves GET /v1/audit?action=&actor=&target=&before=&limit=: the
// caller's tenant's audit log, newest first. The tenant actor lets only
// admins read it; this layer checks that every filter has its documented
// shape before it travels anywhere.
func (s *Server) auditLog(c *fiber.Ctx) error {
	q := engine.AuditQuery{Action: engine.AuditAction(c.Query("action")), ActorID: c.Query("actor"), Target: c.Query("target")}
	switch {
	case q.Action != "" && !engine.ValidAuditAction(q.Action):
		return apiError(c, engine.Errorf(engine.CodeInvalidField, "unknown action %q", q.Action))
	case q.ActorID != "" && !engine.ValidID(q.ActorID):
		return apiError(c, engine.NewError(engine.CodeInvalidField, "actor is not a valid id"))
	case q.Target != "" && !engine.ValidAuditTarget(q.Target):
		return apiError(c, engine.NewError(engine.CodeInvalidField, "target is not an id or kind/id"))
	}
	var err error
	if q.Limit, err = queryInt(c, "limit", engine.DefaultAuditLimit, 1, engine.MaxAuditLimit); err != nil {
		return apiError(c, err)
	}
	if q.Before, err = queryBefore(c); err != nil {
		return apiError(c, err)
	}
	entries, err := s.cfg.Client.AuditLog(c.UserContext(), callerFrom(c), q)
	if err != nil {
		return apiError(c, err)
	}
	return c.JSON(fiber.Map{"entries": entries})
}

// recordAudit appends e, done by caller from the request's address, to the
// tenant's audit log. A failure to record does not fail the request it
// audits (the cluster's answer is not worth refusing service over); it is
// logged with the whole entry, so the record survives in the log.
func (s *Server) recordAudit(c *fiber.Ctx, caller actors.Caller, e engine.AuditEntry) {
	e.Actor, e.IP = caller.Party, c.IP()
	if err := s.cfg.Client.RecordAudit(c.UserContext(), caller.Tenant, e); err != nil {
		s.log.Error("audit entry not recorded", "tenant", caller.Tenant, "action", e.Action, "actor_id", e.Actor.ID,
			"ip", e.IP, "target", e.Target, "detail", e.Detail, "err", err)
	}
}
