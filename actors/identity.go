package actors

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/kefu-dev/kefu/actors/actorpb"
	"github.com/kefu-dev/kefu/engine"
)

// Customers prove who they are in one of three ways; each gives a user id
// of its own prefix, so ids from different sources never collide:
//
//	wx-<openid>   a mini-program user: a wx.login code exchanged with
//	              WeChat's code2session, server-side
//	m-<user id>   a merchant's own user: an identity signed by the
//	              merchant's server with the tenant's identity secret
//	v-<random>    an anonymous visitor (issued by the edge)

// Identity kinds of UserIdentity.
const (
	IdentityWeChat   = "wechat"
	IdentityMerchant = "merchant"
)

// IdentityMaxSkew is how far a signed identity's timestamp may be from
// now: it bounds how long a captured signature can be replayed.
const IdentityMaxSkew = 5 * time.Minute

// WeChatConfig reaches WeChat's server API.
type WeChatConfig struct {
	// APIBase is the API's origin. Empty means https://api.weixin.qq.com.
	APIBase string
	// Client makes the calls. Nil means a client with a 5-second timeout.
	Client *http.Client
}

// IdentitySignature is what a merchant's server sends with a user id: the
// hex HMAC-SHA256, under the tenant's identity secret, of
// "<tenant>:<user id>:<ts>", ts in seconds since the epoch.
func IdentitySignature(secret, tenant, userID string, ts int64) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(tenant + ":" + userID + ":" + strconv.FormatInt(ts, 10)))
	return hex.EncodeToString(mac.Sum(nil))
}

// userIdentity answers a UserIdentity; it runs off the mailbox.
func (a *tenantActor) userIdentity(c context.Context, m *actorpb.UserIdentity) *actorpb.UserIdentityResponse {
	fail := func(e *engine.Error) *actorpb.UserIdentityResponse {
		return &actorpb.UserIdentityResponse{Error: errToPB(e)}
	}
	creds, err := a.d.Store.TenantCredentials(c, a.tenant)
	if err != nil && !errors.Is(err, engine.ErrNotFound) {
		a.d.Logger.Error("reading tenant credentials", "tenant", a.tenant, "err", err)
		return fail(errTryAgain)
	}
	switch m.Kind {
	case IdentityMerchant:
		if creds.IdentitySecret == "" {
			return fail(engine.NewError(engine.CodeForbidden, "this tenant does not accept signed identities"))
		}
		now := a.d.Clock.Now()
		if d := now.Sub(time.Unix(m.Ts, 0)); d > IdentityMaxSkew || d < -IdentityMaxSkew {
			return fail(engine.NewError(engine.CodeUnauthenticated, "the identity's timestamp is too old or in the future"))
		}
		want := IdentitySignature(creds.IdentitySecret, a.tenant, m.UserId, m.Ts)
		if !hmac.Equal([]byte(want), []byte(m.Sig)) {
			return fail(engine.NewError(engine.CodeUnauthenticated, "the identity's signature is wrong"))
		}
		return &actorpb.UserIdentityResponse{UserId: "m-" + m.UserId}
	case IdentityWeChat:
		if creds.WeChatAppSecret == "" {
			return fail(engine.NewError(engine.CodeForbidden, "this tenant has no mini-program AppSecret configured"))
		}
		tenant, err := a.d.Store.Tenant(c, a.tenant)
		if err != nil {
			a.d.Logger.Error("reading tenant", "tenant", a.tenant, "err", err)
			return fail(errTryAgain)
		}
		openid, err := code2session(c, a.d.WeChat, tenant.AppID, creds.WeChatAppSecret, m.Code)
		if err != nil {
			var e *engine.Error
			if errors.As(err, &e) {
				return fail(e)
			}
			a.d.Logger.Warn("code2session", "tenant", a.tenant, "err", err)
			return fail(engine.NewError(engine.CodeUnavailable, "WeChat did not answer; try again"))
		}
		return &actorpb.UserIdentityResponse{UserId: "wx-" + openid}
	}
	return fail(engine.NewError(engine.CodeInvalidField, "unknown identity kind"))
}

// code2sessionResponse is WeChat's answer to jscode2session.
type code2sessionResponse struct {
	OpenID     string `json:"openid"`
	SessionKey string `json:"session_key"`
	UnionID    string `json:"unionid"`
	ErrCode    int    `json:"errcode"`
	ErrMsg     string `json:"errmsg"`
}

// code2session exchanges a wx.login code for the user's openid. The
// session_key WeChat returns with it is not kept: nothing here decrypts
// user data, and a key that is never stored cannot leak.
func code2session(c context.Context, wc WeChatConfig, appID, secret, code string) (string, error) {
	q := url.Values{"appid": {appID}, "secret": {secret}, "js_code": {code}, "grant_type": {"authorization_code"}}
	req, err := http.NewRequestWithContext(c, http.MethodGet, wc.APIBase+"/sns/jscode2session?"+q.Encode(), nil)
	if err != nil {
		return "", err
	}
	resp, err := wc.Client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d", resp.StatusCode)
	}
	var r code2sessionResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&r); err != nil {
		return "", fmt.Errorf("decoding the answer: %w", err)
	}
	switch {
	case r.ErrCode == 40029 || r.ErrCode == 40163: // invalid or already used code
		return "", engine.NewError(engine.CodeUnauthenticated, "the wx.login code is invalid or was used already")
	case r.ErrCode == 45011: // WeChat's rate limit for this user
		return "", engine.NewError(engine.CodeRateLimited, "WeChat refused: too many logins; try again in a minute")
	case r.ErrCode == 40226: // a user WeChat blocks as high-risk
		return "", engine.NewError(engine.CodeForbidden, "WeChat refused this user")
	case r.ErrCode != 0:
		return "", fmt.Errorf("errcode %d: %s", r.ErrCode, r.ErrMsg)
	case !engine.ValidID("wx-" + r.OpenID):
		return "", fmt.Errorf("openid %q is not an id", r.OpenID)
	}
	return r.OpenID, nil
}
