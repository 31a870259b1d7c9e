package edge

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/kefu-dev/kefu/actors"
	"github.com/kefu-dev/kefu/auth"
	"github.com/kefu-dev/kefu/engine"
)

// Authentication: staff sign in with a password and hold a short-lived
// access token (a JWT naming their session) and a refresh token; every
// staff request is checked against the session, so a logout or a password
// change takes effect at once. Customers hold a user token.

const callerKey = "kefu.caller"

// refreshCookie carries a browser's refresh token: HttpOnly, so scripts
// never read it, and sent only to the auth endpoints.
const refreshCookie = "kefu_refresh"

func (s *Server) authRoutes(v1 fiber.Router) {
	v1.Post("/auth/login", s.checkOrigin, s.limitAuth, s.login)
	v1.Post("/auth/refresh", s.checkOrigin, s.limitAuth, s.refresh)
	v1.Post("/auth/logout", s.checkOrigin, s.requireToken(auth.AudienceStaff), s.logout)
	v1.Post("/auth/password", s.checkOrigin, s.requireToken(auth.AudienceStaff), s.changeOwnPassword)
	v1.Post("/auth/visitor", s.limitAuth, s.visitor)
	v1.Post("/staff/:id/password", s.checkOrigin, s.requireToken(auth.AudienceStaff), s.resetPassword)
	v1.Post("/staff/:id/logout", s.checkOrigin, s.requireToken(auth.AudienceStaff), s.signOutStaff)
}

// requireToken authenticates a bearer token for audience; a staff token's
// session must still be active, and its role and groups are taken from
// the account as it is now.
func (s *Server) requireToken(audience string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		caller, err := s.authenticate(c, audience)
		if err != nil {
			return apiError(c, err)
		}
		return s.withCaller(c, caller)
	}
}

// requireAnyToken accepts a customer or a staff token.
func (s *Server) requireAnyToken(c *fiber.Ctx) error {
	caller, err := s.authenticate(c, auth.AudienceUser)
	if err != nil {
		if caller, err = s.authenticate(c, auth.AudienceStaff); err != nil {
			return apiError(c, err)
		}
	}
	return s.withCaller(c, caller)
}

// withCaller admits the caller if their rate allows, and runs the handler.
func (s *Server) withCaller(c *fiber.Ctx, caller actors.Caller) error {
	if !s.accountLimit.allow(caller.Tenant+"/"+string(caller.Party.Role)+"/"+caller.Party.ID, s.cfg.Clock.Now()) {
		return apiError(c, engine.NewError(engine.CodeRateLimited, "too many requests; slow down"))
	}
	c.Locals(callerKey, caller)
	return c.Next()
}

func (s *Server) authenticate(c *fiber.Ctx, audience string) (actors.Caller, error) {
	token, ok := strings.CutPrefix(c.Get(fiber.HeaderAuthorization), "Bearer ")
	if !ok || token == "" {
		return actors.Caller{}, engine.NewError(engine.CodeUnauthenticated, "an Authorization: Bearer token is required")
	}
	return s.callerOfToken(c.UserContext(), token, audience, c.IP())
}

// callerOfToken verifies a token and, for staff, their session.
func (s *Server) callerOfToken(ctx context.Context, token, audience, ip string) (actors.Caller, error) {
	claims, err := s.cfg.Verifier.Verify(token, audience)
	if err != nil {
		return actors.Caller{}, engine.NewError(engine.CodeUnauthenticated, "invalid or expired token")
	}
	caller := callerOf(claims)
	caller.IP = ip
	if audience == auth.AudienceStaff {
		return s.cfg.Client.CheckSession(ctx, caller)
	}
	return caller, nil
}

func callerFrom(c *fiber.Ctx) actors.Caller { return c.Locals(callerKey).(actors.Caller) }

// callerOf turns verified token claims into the caller actors see.
func callerOf(c auth.Claims) actors.Caller {
	if c.Audience == auth.AudienceStaff {
		return actors.Caller{Tenant: c.Tenant, Party: engine.Party{Role: engine.RoleAgent, ID: c.Subject}, StaffRole: engine.StaffRole(c.Role), Session: c.Session}
	}
	return actors.Caller{Tenant: c.Tenant, Party: engine.Party{Role: engine.RoleUser, ID: c.Subject}}
}

// limitAuth bounds the unauthenticated endpoints (login, refresh, token
// issuing) per client IP: guessing passwords or farming visitor tokens
// from one address runs into it long before the account lockout.
func (s *Server) limitAuth(c *fiber.Ctx) error {
	if !s.authLimit.allow(c.IP(), s.cfg.Clock.Now()) {
		return apiError(c, engine.NewError(engine.CodeRateLimited, "too many sign-in requests from this address; wait a minute"))
	}
	return c.Next()
}

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
	// RefreshToken (staff only) buys the next access token at
	// /v1/auth/refresh; browsers also get it as an HttpOnly cookie.
	RefreshToken     string `json:"refresh_token,omitempty"`
	RefreshExpiresIn int64  `json:"refresh_expires_in,omitempty"`
}

func (s *Server) login(c *fiber.Ctx) error {
	var req loginRequest
	if err := decodeJSON(c, &req); err != nil {
		return apiError(c, err)
	}
	if req.Tenant == "" || req.Username == "" || req.Password == "" {
		return apiError(c, engine.NewError(engine.CodeMissingField, "tenant, username and password are required"))
	}
	if !engine.ValidID(req.Tenant) || len(req.Username) > 128 || len(req.Password) > actors.MaxPasswordLen {
		return apiError(c, engine.NewError(engine.CodeInvalidField, "tenant, username or password is malformed"))
	}
	if !s.loginLimit.allow(req.Tenant+"/"+req.Username, s.cfg.Clock.Now()) {
		return apiError(c, engine.NewError(engine.CodeRateLimited, "too many sign-in attempts for this account; wait a minute"))
	}
	ua := c.Get(fiber.HeaderUserAgent)
	if len(ua) > 256 {
		ua = ua[:256]
	}
	in, err := s.cfg.Client.Login(c.UserContext(), req.Tenant, req.Username, req.Password, c.IP(), strings.ToValidUTF8(ua, ""))
	if err != nil {
		return apiError(c, err)
	}
	return s.signedIn(c, in)
}

// signedIn answers a login or a refresh with a fresh access token and the
// session's next refresh token.
func (s *Server) signedIn(c *fiber.Ctx, in actors.SignIn) error {
	token, err := s.issue(auth.Claims{Audience: auth.AudienceStaff, Tenant: in.Staff.Tenant, Subject: in.Staff.ID,
		Role: string(in.Staff.Role), Session: in.Session}, s.cfg.StaffTokenTTL)
	if err != nil {
		return apiError(c, err)
	}
	refreshIn := int64(in.RefreshExpiresAt.Sub(s.cfg.Clock.Now()).Seconds())
	c.Cookie(&fiber.Cookie{
		Name: refreshCookie, Value: in.RefreshToken, Path: "/v1/auth", Expires: in.RefreshExpiresAt,
		HTTPOnly: true, Secure: s.cfg.SecureCookies, SameSite: fiber.CookieSameSiteStrictMode,
	})
	return c.JSON(tokenResponse{AccessToken: token, TokenType: "Bearer", ExpiresIn: int64(s.cfg.StaffTokenTTL.Seconds()),
		Staff: &in.Staff, Tenant: in.Staff.Tenant, RefreshToken: in.RefreshToken, RefreshExpiresIn: refreshIn})
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

// refresh trades a refresh token, from the body or the cookie, for a new
// access token and the next refresh token.
func (s *Server) refresh(c *fiber.Ctx) error {
	var req refreshRequest
	if len(c.Body()) > 0 {
		if err := decodeJSON(c, &req); err != nil {
			return apiError(c, err)
		}
	}
	if req.RefreshToken == "" {
		req.RefreshToken = c.Cookies(refreshCookie)
	}
	rt, err := auth.ParseRefreshToken(req.RefreshToken)
	if err != nil {
		return apiError(c, engine.NewError(engine.CodeUnauthenticated, "invalid refresh token"))
	}
	in, err := s.cfg.Client.Refresh(c.UserContext(), rt.Tenant, rt.StaffID, rt.Session, rt.Secret, c.IP())
	if err != nil {
		return apiError(c, err)
	}
	return s.signedIn(c, in)
}

type logoutRequest struct {
	All bool `json:"all"`
}

// logout revokes the caller's session (or, with "all", every session of
// theirs) and closes the sockets opened under it.
func (s *Server) logout(c *fiber.Ctx) error {
	var req logoutRequest
	if len(c.Body()) > 0 {
		if err := decodeJSON(c, &req); err != nil {
			return apiError(c, err)
		}
	}
	caller := callerFrom(c)
	if err := s.cfg.Client.Logout(c.UserContext(), caller, caller.Party.ID, req.All); err != nil {
		return apiError(c, err)
	}
	s.clearRefreshCookie(c)
	return c.SendStatus(http.StatusNoContent)
}

func (s *Server) clearRefreshCookie(c *fiber.Ctx) {
	c.Cookie(&fiber.Cookie{Name: refreshCookie, Value: "", Path: "/v1/auth", Expires: time.Unix(0, 0),
		HTTPOnly: true, Secure: s.cfg.SecureCookies, SameSite: fiber.CookieSameSiteStrictMode})
}

type passwordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// changeOwnPassword sets the caller's password; every session of theirs,
// this one included, is revoked, so they sign in again.
func (s *Server) changeOwnPassword(c *fiber.Ctx) error {
	var req passwordRequest
	if err := decodeJSON(c, &req); err != nil {
		return apiError(c, err)
	}
	if req.CurrentPassword == "" || req.NewPassword == "" {
		return apiError(c, engine.NewError(engine.CodeMissingField, "current_password and new_password are required"))
	}
	caller := callerFrom(c)
	if err := s.cfg.Client.ChangePassword(c.UserContext(), caller, caller.Party.ID, req.CurrentPassword, req.NewPassword); err != nil {
		return apiError(c, err)
	}
	s.clearRefreshCookie(c)
	return c.SendStatus(http.StatusNoContent)
}

// resetPassword lets an admin set another member of staff's password.
func (s *Server) resetPassword(c *fiber.Ctx) error {
	id, err := convParam(c)
	if err != nil {
		return apiError(c, err)
	}
	var req passwordRequest
	if err := decodeJSON(c, &req); err != nil {
		return apiError(c, err)
	}
	if req.NewPassword == "" {
		return apiError(c, engine.NewError(engine.CodeMissingField, "new_password is required"))
	}
	caller := callerFrom(c)
	if caller.StaffRole != engine.StaffAdmin {
		return apiError(c, engine.NewError(engine.CodeForbidden, "admins only"))
	}
	if err := s.cfg.Client.ChangePassword(c.UserContext(), caller, id, "", req.NewPassword); err != nil {
		return apiError(c, err)
	}
	return c.SendStatus(http.StatusNoContent)
}

// signOutStaff lets an admin revoke every session of a member of staff.
func (s *Server) signOutStaff(c *fiber.Ctx) error {
	id, err := convParam(c)
	if err != nil {
		return apiError(c, err)
	}
	caller := callerFrom(c)
	if caller.StaffRole != engine.StaffAdmin {
		return apiError(c, engine.NewError(engine.CodeForbidden, "admins only"))
	}
	if err := s.cfg.Client.Logout(c.UserContext(), caller, id, true); err != nil {
		return apiError(c, err)
	}
	return c.SendStatus(http.StatusNoContent)
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
	return s.userToken(c, req.Tenant, "v-"+engine.NewID(time.Now()))
}

// userToken answers with a customer token for userID.
func (s *Server) userToken(c *fiber.Ctx, tenant, userID string) error {
	token, err := s.issue(auth.Claims{Audience: auth.AudienceUser, Tenant: tenant, Subject: userID, Role: string(engine.RoleUser)}, s.cfg.VisitorTokenTTL)
	if err != nil {
		return apiError(c, err)
	}
	return c.JSON(tokenResponse{AccessToken: token, TokenType: "Bearer", ExpiresIn: int64(s.cfg.VisitorTokenTTL.Seconds()), UserID: userID, Tenant: tenant})
}

func (s *Server) issue(claims auth.Claims, ttl time.Duration) (string, error) {
	now := s.cfg.Clock.Now()
	claims.IssuedAt, claims.ExpiresAt, claims.ID = now, now.Add(ttl), engine.NewID(now)
	token, err := s.cfg.Signer.Sign(claims)
	if err != nil {
		s.log.Error("signing token", "err", err)
		return "", engine.NewError(engine.CodeInternal, "could not issue a token")
	}
	return token, nil
}
