package edge

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/kefu-dev/kefu/actors"
	"github.com/kefu-dev/kefu/auth"
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

const callerKey = "kefu.caller"

// requireToken authenticates a bearer token for audience.
func (s *Server) requireToken(audience string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		claims, err := s.bearer(c, audience)
		if err != nil {
			return apiError(c, err)
		}
		c.Locals(callerKey, callerOf(claims))
		return c.Next()
	}
}

// requireAnyToken accepts a customer or a staff token.
func (s *Server) requireAnyToken(c *fiber.Ctx) error {
	claims, err := s.bearer(c, auth.AudienceUser)
	if err != nil {
		if claims, err = s.bearer(c, auth.AudienceStaff); err != nil {
			return apiError(c, err)
		}
	}
	c.Locals(callerKey, callerOf(claims))
	return c.Next()
}

func (s *Server) bearer(c *fiber.Ctx, audience string) (auth.Claims, error) {
	h := c.Get(fiber.HeaderAuthorization)
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || token == "" {
		return auth.Claims{}, engine.NewError(engine.CodeUnauthenticated, "an Authorization: Bearer token is required")
	}
	claims, err := s.cfg.Verifier.Verify(token, audience)
	if err != nil {
		return auth.Claims{}, engine.NewError(engine.CodeUnauthenticated, "invalid or expired token")
	}
	return claims, nil
}

func callerFrom(c *fiber.Ctx) actors.Caller { return c.Locals(callerKey).(actors.Caller) }

type loginRequest struct {
	Tenant   string `json:"tenant"`
	Username string `json:"username"`
	Password string `json:"password"`
}

type tokenResponse struct {
	AccessToken string        `json:"access_token"`
	TokenType   string        `json:"token_type"`
	ExpiresIn   int64         `json:"expires_in"`
	Staff       *engine.Staff `json:"staff,omitempty"`
	UserID      string        `json:"user_id,omitempty"`
	Tenant      string        `json:"tenant"`
}

func (s *Server) login(c *fiber.Ctx) error {
	var req loginRequest
	if err := decodeJSON(c, &req); err != nil {
		return apiError(c, err)
	}
	if req.Tenant == "" || req.Username == "" || req.Password == "" {
		return apiError(c, engine.NewError(engine.CodeMissingField, "tenant, username and password are required"))
	}
	if !engine.ValidID(req.Tenant) || len(req.Username) > 128 || len(req.Password) > 1024 {
		return apiError(c, engine.NewError(engine.CodeInvalidField, "tenant, username or password is malformed"))
	}
	staff, err := s.cfg.Client.Login(c.UserContext(), req.Tenant, req.Username, req.Password)
	if err != nil {
		return apiError(c, err)
	}
	token, err := s.issue(auth.AudienceStaff, req.Tenant, staff.ID, string(staff.Role), s.cfg.StaffTokenTTL)
	if err != nil {
		return apiError(c, err)
	}
	return c.JSON(tokenResponse{AccessToken: token, TokenType: "Bearer", ExpiresIn: int64(s.cfg.StaffTokenTTL.Seconds()), Staff: &staff, Tenant: req.Tenant})
}

type visitorRequest struct {
	Tenant string `json:"tenant"`
}

// visitor issues a token to an anonymous visitor of an existing tenant.
func (s *Server) visitor(c *fiber.Ctx) error {
	var req visitorRequest
	if err := decodeJSON(c, &req); err != nil {
		return apiError(c, err)
	}
	if !engine.ValidID(req.Tenant) {
		return apiError(c, engine.NewError(engine.CodeInvalidField, "tenant is required"))
	}
	if err := s.cfg.Client.CheckTenant(c.UserContext(), req.Tenant); err != nil {
		return apiError(c, err)
	}
	userID := "v-" + engine.NewID(time.Now())
	token, err := s.issue(auth.AudienceUser, req.Tenant, userID, string(engine.RoleUser), s.cfg.VisitorTokenTTL)
	if err != nil {
		return apiError(c, err)
	}
	return c.JSON(tokenResponse{AccessToken: token, TokenType: "Bearer", ExpiresIn: int64(s.cfg.VisitorTokenTTL.Seconds()), UserID: userID, Tenant: req.Tenant})
}

func (s *Server) issue(audience, tenant, subject, role string, ttl time.Duration) (string, error) {
	now := s.cfg.Clock.Now()
	token, err := s.cfg.Signer.Sign(auth.Claims{
		Audience: audience, Subject: subject, Tenant: tenant, Role: role,
		IssuedAt: now, ExpiresAt: now.Add(ttl), ID: engine.NewID(now),
	})
	if err != nil {
		s.log.Error("signing token", "err", err)
		return "", engine.NewError(engine.CodeInternal, "could not issue a token")
	}
	return token, nil
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
