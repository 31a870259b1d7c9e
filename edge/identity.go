package edge

import (
	"github.com/gofiber/fiber/v2"

	"github.com/kefu-dev/kefu/actors"
	"github.com/kefu-dev/kefu/actors/actorpb"
	"github.com/kefu-dev/kefu/auth"
	"github.com/kefu-dev/kefu/engine"
)

// Customer sign-in: a mini-program user trades a wx.login code, an H5 or
// app user an identity signed by the merchant's server. Either way the
// token opens only that user's conversations.

func (s *Server) identityRoutes(v1 fiber.Router) {
	v1.Post("/auth/wechat", s.limitAuth, s.wechatLogin)
	v1.Post("/auth/identity", s.limitAuth, s.merchantIdentity)
	staff := []fiber.Handler{s.checkOrigin, s.requireToken(auth.AudienceStaff)}
	v1.Get("/tenant/credentials", append(staff, s.config(actors.ConfigCredentials, actors.ConfigGet))...)
	v1.Put("/tenant/credentials", append(staff, s.config(actors.ConfigCredentials, actors.ConfigPut))...)
}

type wechatLoginRequest struct {
	Tenant string `json:"tenant"`
	Code   string `json:"code"`
}

// wechatLogin exchanges a wx.login code for a user token. WeChat's answer,
// session_key included, stays on the server.
func (s *Server) wechatLogin(c *fiber.Ctx) error {
	var req wechatLoginRequest
	if err := decodeJSON(c, &req); err != nil {
		return apiError(c, err)
	}
	if !engine.ValidID(req.Tenant) || req.Code == "" || len(req.Code) > 128 {
		return apiError(c, engine.NewError(engine.CodeInvalidField, "tenant and code (a wx.login code) are required"))
	}
	userID, err := s.cfg.Client.UserIdentity(c.UserContext(), req.Tenant, &actorpb.UserIdentity{Kind: actors.IdentityWeChat, Code: req.Code})
	if err != nil {
		return apiError(c, err)
	}
	return s.userToken(c, req.Tenant, userID)
}

type identityRequest struct {
	Tenant string `json:"tenant"`
	UserID string `json:"user_id"`
	TS     int64  `json:"ts"`
	Sig    string `json:"sig"`
}

// merchantIdentity issues a user token for an identity the merchant's
// server signed (actors.IdentitySignature).
func (s *Server) merchantIdentity(c *fiber.Ctx) error {
	var req identityRequest
	if err := decodeJSON(c, &req); err != nil {
		return apiError(c, err)
	}
	// The user id becomes "m-" + user_id, which must be an id too.
	if !engine.ValidID(req.Tenant) || !engine.ValidID("m-"+req.UserID) || req.UserID == "" || req.TS <= 0 || len(req.Sig) != 64 {
		return apiError(c, engine.NewError(engine.CodeInvalidField, "tenant, user_id (up to 62 letters, digits, '-', '_' or '.'), ts and sig (64 hex digits) are required"))
	}
	userID, err := s.cfg.Client.UserIdentity(c.UserContext(), req.Tenant, &actorpb.UserIdentity{Kind: actors.IdentityMerchant, UserId: req.UserID, Ts: req.TS, Sig: req.Sig})
	if err != nil {
		return apiError(c, err)
	}
	return s.userToken(c, req.Tenant, userID)
}
