package edge

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/kefu-dev/kefu/engine"
)

// httpStatus maps client-facing codes to HTTP statuses.
func httpStatus(code engine.Code) int {
	switch code {
	case engine.CodeUnauthenticated:
		return http.StatusUnauthorized
	case engine.CodeForbidden:
		return http.StatusForbidden
	case engine.CodeNotFound:
		return http.StatusNotFound
	case engine.CodeRateLimited:
		return http.StatusTooManyRequests
	case engine.CodeAccountLocked:
		return http.StatusLocked
	case engine.CodeUnavailable:
		return http.StatusServiceUnavailable
	case engine.CodeInternal:
		return http.StatusInternalServerError
	case engine.CodeFrameTooLarge, engine.CodeBodyTooLarge:
		return http.StatusRequestEntityTooLarge
	case engine.CodeInvalidState, engine.CodeAtCapacity, engine.CodeAgentUnavailable, engine.CodeReopenExpired:
		return http.StatusConflict
	default:
		return http.StatusBadRequest
	}
}

type errorBody struct {
	Error struct {
		Code    engine.Code `json:"code"`
		Message string      `json:"message"`
	} `json:"error"`
}

// apiError writes err as {"error":{"code","message"}} with its HTTP status.
func apiError(c *fiber.Ctx, err error) error {
	var e *engine.Error
	if !errors.As(err, &e) {
		e = engine.NewError(engine.CodeInternal, "internal error")
	}
	var body errorBody
	body.Error.Code, body.Error.Message = e.Code, e.Message
	return c.Status(httpStatus(e.Code)).JSON(body)
}

// errorHandler renders Fiber's own errors (404, 413, 426...) in the API's
// error shape.
func (s *Server) errorHandler(c *fiber.Ctx, err error) error {
	var fe *fiber.Error
	if errors.As(err, &fe) {
		code := engine.CodeInvalidField
		switch fe.Code {
		case http.StatusNotFound:
			code = engine.CodeNotFound
		case http.StatusRequestEntityTooLarge:
			code = engine.CodeFrameTooLarge
		case http.StatusServiceUnavailable:
			code = engine.CodeUnavailable
		}
		var body errorBody
		body.Error.Code, body.Error.Message = code, fe.Message
		return c.Status(fe.Code).JSON(body)
	}
	s.log.Error("http handler", "path", c.Path(), "err", err)
	return apiError(c, err)
}

// decodeJSON reads a JSON request body into v. Fields are typed, so an
// operator object where a string belongs is a 400, never a query.
func decodeJSON(c *fiber.Ctx, v any) error {
	if err := json.Unmarshal(c.Body(), v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" { // an object where a string belongs, say
			return engine.Errorf(engine.CodeInvalidField, "field %q has the wrong type", typeErr.Field)
		}
		return engine.NewError(engine.CodeBadFrame, "the body must be a JSON object of the documented shape")
	}
	return nil
}

func (s *Server) createConversation(c *fiber.Ctx) error {
	conv, err := s.cfg.Client.CreateConversation(c.UserContext(), callerFrom(c))
	if err != nil {
		return apiError(c, err)
	}
	return c.Status(http.StatusCreated).JSON(conv)
}

func (s *Server) listConversations(c *fiber.Ctx) error {
	q := engine.ConversationQuery{State: engine.ConvState(c.Query("state")), AgentID: c.Query("agent_id"), Group: c.Query("group")}
	if c.QueryBool("mine") {
		q.AgentID = callerFrom(c).Party.ID
	}
	if c.QueryBool("invited") {
		q.InvitedID = callerFrom(c).Party.ID
	}
	if (q.AgentID != "" && !engine.ValidID(q.AgentID)) || (q.Group != "" && !engine.ValidID(q.Group)) {
		return apiError(c, engine.NewError(engine.CodeInvalidField, "agent_id or group is not a valid id"))
	}
	var err error
	if q.Limit, err = queryInt(c, "limit", 50, 1, 200); err != nil {
		return apiError(c, err)
	}
	if q.Before, err = queryBefore(c); err != nil {
		return apiError(c, err)
	}
	switch q.State {
	case "", engine.StateBot, engine.StateQueued, engine.StateAssigned, engine.StateOnHold, engine.StateClosed:
	default:
		return apiError(c, engine.NewError(engine.CodeInvalidField, "unknown state"))
	}
	convs, err := s.cfg.Client.ListConversations(c.UserContext(), callerFrom(c), q)
	if err != nil {
		return apiError(c, err)
	}
	return c.JSON(fiber.Map{"conversations": convs})
}

func (s *Server) history(c *fiber.Ctx) error {
	conv := c.Params("id")
	if !engine.ValidID(conv) {
		return apiError(c, engine.NewError(engine.CodeInvalidField, "conversation id is not valid"))
	}
	after, err := queryInt(c, "after_seq", 0, 0, 1<<62)
	if err != nil {
		return apiError(c, err)
	}
	limit, err := queryInt(c, "limit", engine.DefaultHistoryPage, 1, engine.MaxHistoryPage)
	if err != nil {
		return apiError(c, err)
	}
	caller := callerFrom(c)
	page, err := s.cfg.Client.History(c.UserContext(), caller, conv, int64(after), limit)
	if err != nil {
		return apiError(c, err)
	}
	if caller.IsStaff() { // a customer reading their own conversation is not audited
		s.recordAudit(c, caller, engine.AuditEntry{Action: engine.AuditTranscriptViewed, Target: conv,
			Detail: fmt.Sprintf("after_seq %d, %d messages", after, len(page.Messages))})
	}
	return c.JSON(page)
}

// queryBefore reads the before query parameter, milliseconds since the
// epoch; absent, it is the zero time.
func queryBefore(c *fiber.Ctx) (time.Time, error) {
	v := c.Query("before")
	if v == "" {
		return time.Time{}, nil
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms <= 0 {
		return time.Time{}, engine.NewError(engine.CodeInvalidField, "before must be milliseconds since the epoch")
	}
	return time.UnixMilli(ms), nil
}

// queryInt reads an integer query parameter within [lo, hi].
func queryInt(c *fiber.Ctx, name string, def, lo, hi int) (int, error) {
	v := c.Query(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, engine.Errorf(engine.CodeInvalidField, "%s must be an integer from %d to %d", name, lo, hi)
	}
	return n, nil
}
