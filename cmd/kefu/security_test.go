package main

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kefu-dev/kefu/actors"
	"github.com/kefu-dev/kefu/auth"
	"github.com/kefu-dev/kefu/config"
	"github.com/kefu-dev/kefu/engine"
)

// The attack suite: what a hostile client tries against Kefu, over REST
// and WebSocket, and what it must get (a documented refusal) instead.

// attackSecret signs the server's tokens, so the suite can mint tokens
// that are well signed but wrong in one other way.
const attackSecret = "attack-suite-signing-secret-0123456789abcdef"

func attackConfig(t *testing.T) config.Config {
	cfg := testConfig(t.TempDir())
	cfg.Auth.TokenSecret = attackSecret
	return cfg
}

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// mint signs claims with key under kid "k1", as the server would.
func mint(t *testing.T, key string, c auth.Claims) string {
	t.Helper()
	keys, err := auth.NewKeyring("k1", map[string][]byte{"k1": []byte(key)})
	if err != nil {
		t.Fatal(err)
	}
	token, err := (&auth.Signer{Keys: keys, Issuer: "kefu"}).Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// wsHelloRefused opens a socket, says hello with token and wants an
// unauthenticated error and close code 4001.
func wsHelloRefused(t *testing.T, s *testServer, path, token string) {
	t.Helper()
	c := dial(t, s, path, nil)
	c.send(map[string]any{"type": "hello", "v": 1, "token": token})
	if f := c.nextType("error"); f.Code != string(engine.CodeUnauthenticated) {
		t.Errorf("%s hello: error %s, want unauthenticated", path, f.Code)
	}
	if code := c.closeCode(); code != 4001 {
		t.Errorf("%s hello: close code %d, want 4001", path, code)
	}
}

func TestAttackTokens(t *testing.T) {
	s := startServer(t, attackConfig(t))
	userToken, userID := s.visitor(t)
	staffToken, staffID := s.staffToken(t)
	now := time.Now()
	staffClaims := auth.Claims{Audience: auth.AudienceStaff, Subject: staffID, Tenant: "demo", Role: "admin", Session: "s1",
		IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	userClaims := auth.Claims{Audience: auth.AudienceUser, Subject: userID, Tenant: "demo", Role: "user", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	parts := strings.Split(userToken, ".")
	expired := userClaims
	expired.IssuedAt, expired.ExpiresAt = now.Add(-2*time.Hour), now.Add(-time.Hour)

	for _, tc := range []struct {
		name, token string
		staff       bool // the token is aimed at staff endpoints
	}{
		{"forged: signed with another key", mint(t, "not-the-servers-secret-0123456789abcdef", userClaims), false},
		{"forged staff token", mint(t, "not-the-servers-secret-0123456789abcdef", staffClaims), true},
		{"expired", mint(t, attackSecret, expired), false},
		{"user token at staff endpoints (wrong audience)", userToken, true},
		{"staff token at customer endpoints (wrong audience)", staffToken, false},
		{"alg none", b64(map[string]string{"alg": "none", "typ": "JWT"}) + "." + parts[1] + ".", false},
		{"alg none, no signature segment", b64(map[string]string{"alg": "none", "typ": "JWT"}) + "." + parts[1], false},
		{"key in the header (jwk)", b64(map[string]any{"alg": "HS256", "typ": "JWT", "kid": "k1", "jwk": map[string]string{"kty": "oct", "k": "AAAA"}}) + "." + parts[1] + "." + parts[2], false},
		{"unknown kid", b64(map[string]string{"alg": "HS256", "typ": "JWT", "kid": "k9"}) + "." + parts[1] + "." + parts[2], false},
		{"payload escalated to admin", parts[0] + "." + b64(map[string]any{"iss": "kefu", "aud": auth.AudienceStaff, "sub": userID, "ten": "demo", "role": "admin", "sid": "x", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}) + "." + parts[2], true},
		{"well signed staff token of a session that never existed", mint(t, attackSecret, staffClaims), true},
		{"garbage", "not.a.token", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, ws := "/v1/conversations", "/v1/ws/user"
			method := "POST"
			if tc.staff {
				method, ws = "GET", "/v1/ws/agent"
			}
			var e errorResp
			if code := s.api(t, method, path, tc.token, nil, &e); code != http.StatusUnauthorized || e.Error.Code != string(engine.CodeUnauthenticated) {
				t.Errorf("%s %s: %d %s, want 401 unauthenticated", method, path, code, e.Error.Code)
			}
			wsHelloRefused(t, s, ws, tc.token)
		})
	}
}

type errorResp struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (s *testServer) login(t *testing.T, tenant, username, password string) tokenResp {
	t.Helper()
	var r tokenResp
	if code := s.api(t, "POST", "/v1/auth/login", "", map[string]string{"tenant": tenant, "username": username, "password": password}, &r); code != 200 {
		t.Fatalf("login %s/%s: status %d", tenant, username, code)
	}
	return r
}

func TestAttackCrossTenantAndCrossUser(t *testing.T) {
	cfg := attackConfig(t)
	seedOtherTenant(t, cfg)
	s := startServer(t, cfg)
	alice, aliceID := s.visitor(t)
	bob, _ := s.visitor(t)
	conv := s.newConversation(t, alice)
	c := dial(t, s, "/v1/ws/user", nil)
	c.hello(alice)
	c.sendText(conv, "m1", "我的手机号是 13800000000")
	c.ack("m1")
	admin, adminID := s.staffToken(t)
	other := s.login(t, "other", "admin", otherPassword).AccessToken
	var otherUser tokenResp
	if code := s.api(t, "POST", "/v1/auth/visitor", "", map[string]string{"tenant": "other"}, &otherUser); code != 200 {
		t.Fatalf("the other tenant's visitor: %d", code)
	}

	for _, tc := range []struct {
		name, method, path, token string
		body                      any
		want                      int
	}{
		{"another tenant's admin reads the transcript", "GET", "/v1/conversations/" + conv + "/messages", other, nil, 404},
		{"another tenant's admin exports it", "GET", "/v1/conversations/" + conv + "/export", other, nil, 404},
		{"another tenant's admin reads its events", "GET", "/v1/conversations/" + conv + "/events", other, nil, 404},
		{"another tenant's admin writes a note", "POST", "/v1/conversations/" + conv + "/notes", other, map[string]string{"text": "x"}, 404},
		{"another tenant's admin accepts it", "POST", "/v1/conversations/" + conv + "/accept", other, nil, 404},
		{"another tenant's admin assigns it to this tenant's admin", "POST", "/v1/conversations/" + conv + "/transfer", other, map[string]string{"agent_id": adminID}, 404},
		{"another tenant's admin closes it", "POST", "/v1/conversations/" + conv + "/close", other, nil, 404},
		{"another tenant's admin reads this tenant's agent", "GET", "/v1/agents/" + adminID, other, nil, 404},
		{"another tenant's admin resets this tenant's admin's password", "POST", "/v1/staff/" + adminID + "/password", other, map[string]string{"new_password": "pwned-pwned"}, 404},
		{"another tenant's admin signs this tenant's admin out", "POST", "/v1/staff/" + adminID + "/logout", other, nil, 404},
		{"another tenant's customer reads it", "GET", "/v1/conversations/" + conv + "/messages", otherUser.AccessToken, nil, 404},
		{"another customer reads it", "GET", "/v1/conversations/" + conv + "/messages", bob, nil, 404},
		{"another customer closes it", "POST", "/v1/conversations/" + conv + "/close", bob, nil, 404},
		{"a customer calls a staff API", "GET", "/v1/conversations", alice, nil, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e errorResp
			if code := s.api(t, tc.method, tc.path, tc.token, tc.body, &e); code != tc.want {
				t.Errorf("%s %s: status %d (%s), want %d", tc.method, tc.path, code, e.Error.Code, tc.want)
			}
		})
	}

	// Another tenant's customer profile of the same id holds nothing of
	// this tenant's.
	var info actors.CustomerInfo
	if code := s.api(t, "GET", "/v1/customers/"+aliceID, other, nil, &info); code != 200 || len(info.Conversations) != 0 {
		t.Errorf("the other tenant sees demo's customer %s: status %d, %d conversations", aliceID, code, len(info.Conversations))
	}
	// Over the socket, bob can neither read nor write alice's conversation.
	bc := dial(t, s, "/v1/ws/user", nil)
	bc.hello(bob)
	bc.send(map[string]any{"type": "resume", "id": "r1", "conv": conv, "last_seq": 0})
	if f := bc.next(func(f frame) bool { return f.ID == "r1" }, "resume answer"); f.Type != "error" || f.Code != string(engine.CodeNotFound) {
		t.Errorf("bob resumes alice's conversation: %s", f.Raw)
	}
	bc.sendText(conv, "b1", "hijack")
	if f := bc.next(func(f frame) bool { return f.ClientMsgID == "b1" }, "send answer"); f.Type != "error" || f.Code != string(engine.CodeNotFound) {
		t.Errorf("bob sends into alice's conversation: %s", f.Raw)
	}
	// Nothing of it reached the transcript, and this tenant's admin is
	// still in charge of their account.
	if hist := s.history(t, admin, conv); len(hist) != 1 || hist[0].Body.Text != "我的手机号是 13800000000" {
		t.Errorf("transcript after the attacks: %+v", hist)
	}
	s.staffToken(t)
}

func TestAttackOperatorPayloads(t *testing.T) {
	s := startServer(t, attackConfig(t))
	admin, _ := s.staffToken(t)
	user, _ := s.visitor(t)
	ne := `{"$ne":null}`
	for _, tc := range []struct {
		name, method, path, token string
		raw                       string // a raw JSON body
		want                      int
	}{
		{"login with operator username and password", "POST", "/v1/auth/login", "", `{"tenant":"demo","username":` + ne + `,"password":` + ne + `}`, 400},
		{"login with operator tenant", "POST", "/v1/auth/login", "", `{"tenant":` + ne + `,"username":"admin","password":"x"}`, 400},
		{"visitor of an operator tenant", "POST", "/v1/auth/visitor", "", `{"tenant":` + ne + `}`, 400},
		{"refresh with an operator token", "POST", "/v1/auth/refresh", "", `{"refresh_token":` + ne + `}`, 400},
		{"identity with an operator user id", "POST", "/v1/auth/identity", "", `{"tenant":"demo","user_id":` + ne + `,"ts":1,"sig":"x"}`, 400},
		{"operator id in the path", "GET", "/v1/conversations/" + url.PathEscape(ne) + "/messages", user, "", 400},
		{"operator agent filter", "GET", "/v1/conversations?agent_id=" + url.QueryEscape(ne), admin, "", 400},
		{"operator group filter", "GET", "/v1/conversations?group=" + url.QueryEscape(`{"$gt":""}`), admin, "", 400},
		{"operator state filter", "GET", "/v1/conversations?state=" + url.QueryEscape(ne), admin, "", 400},
		{"bracket operator in the query", "GET", "/v1/conversations?agent_id[$ne]=x", admin, "", 200}, // an unknown parameter, ignored
		{"operator transfer target", "POST", "/v1/conversations/c1/transfer", admin, `{"agent_id":` + ne + `}`, 400},
		{"operator in a customer's tags", "POST", "/v1/customers/u1/tags", admin, `{"add":` + ne + `}`, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, s.url(tc.path), strings.NewReader(tc.raw))
			req.Header.Set("Content-Type", "application/json")
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d (%s), want %d", resp.StatusCode, body, tc.want)
			}
		})
	}
	c := dial(t, s, "/v1/ws/user", nil)
	c.hello(user)
	c.sendRaw([]byte(`{"type":"send","conv":` + ne + `,"client_msg_id":"x","body":{"type":"text","text":"hi"}}`))
	if f := c.nextType("error"); f.Code != string(engine.CodeInvalidField) && f.Code != string(engine.CodeBadFrame) {
		t.Errorf("operator conv over the socket: %s", f.Raw)
	}
}

func TestAttackLockoutAndRateLimits(t *testing.T) {
	cfg := attackConfig(t)
	cfg.Auth.LockoutThreshold = 3
	clock := engine.NewManualClock(time.Now())
	s := startServerClock(t, cfg, clock)
	admin, _ := s.staffToken(t)
	alerts := dial(t, s, "/v1/ws/agent", nil)
	alerts.hello(admin)
	s.createAgent(t, admin, "victim", engine.StaffAgent, 3, nil)

	wrong := map[string]string{"tenant": "demo", "username": "victim", "password": "guess"}
	for i := 1; i <= 3; i++ {
		var e errorResp
		code := s.api(t, "POST", "/v1/auth/login", "", wrong, &e)
		want, wantCode := 401, engine.CodeUnauthenticated
		if i == 3 {
			want, wantCode = 423, engine.CodeAccountLocked
		}
		if code != want || e.Error.Code != string(wantCode) {
			t.Fatalf("failed login %d: %d %s, want %d %s", i, code, e.Error.Code, want, wantCode)
		}
	}
	if f := alerts.next(func(f frame) bool { return f.Type == "notice" && f.Kind == "account_locked" }, "lockout alert"); !strings.Contains(f.Text, "victim") {
		t.Errorf("alert: %s", f.Raw)
	}
	right := map[string]string{"tenant": "demo", "username": "victim", "password": "password-victim"}
	var e errorResp
	if code := s.api(t, "POST", "/v1/auth/login", "", right, &e); code != 423 {
		t.Fatalf("the right password while locked: %d %s, want 423", code, e.Error.Code)
	}
	clock.Advance(cfg.Auth.LockoutDuration.D() + time.Second)
	s.login(t, "demo", "victim", "password-victim")

	// Per-address limit on sign-in requests: a tight one on a new server.
	cfg2 := attackConfig(t)
	cfg2.Limits.AuthPerIPPerMinute = 5
	s2 := startServer(t, cfg2)
	limited := 0
	for range 8 {
		if code := s2.api(t, "POST", "/v1/auth/visitor", "", map[string]string{"tenant": "demo"}, &e); code == 429 {
			limited++
			if e.Error.Code != string(engine.CodeRateLimited) {
				t.Errorf("429 with code %s", e.Error.Code)
			}
		}
	}
	if limited != 3 {
		t.Errorf("%d of 8 visitor requests were limited, want 3 (burst 5)", limited)
	}
	if resp, err := http.Get(s2.url("/healthz")); err != nil || resp.StatusCode != 200 {
		t.Errorf("health after the flood: %v", err)
	}
}

func TestAttackRevocation(t *testing.T) {
	s := startServer(t, attackConfig(t))
	admin, _ := s.staffToken(t)
	agent := s.createAgent(t, admin, "amy", engine.StaffAgent, 3, nil)
	second := s.login(t, "demo", "amy", "password-amy")
	first := dial(t, s, "/v1/ws/agent", nil)
	first.hello(agent.token)
	other := dial(t, s, "/v1/ws/agent", nil)
	other.hello(second.AccessToken)

	// Logging out the first session closes its socket, not the other's.
	if code := s.api(t, "POST", "/v1/auth/logout", agent.token, nil, nil); code != 204 {
		t.Fatalf("logout: %d", code)
	}
	if code := first.closeCode(); code != 4003 {
		t.Errorf("the logged-out session's socket closed with %d, want 4003", code)
	}
	var e errorResp
	if code := s.api(t, "GET", "/v1/conversations?mine=true", agent.token, nil, &e); code != 401 {
		t.Errorf("the logged-out access token: %d, want 401", code)
	}
	wsHelloRefused(t, s, "/v1/ws/agent", agent.token)
	other.send(map[string]any{"type": "ping", "id": "p1"})
	other.nextType("pong")

	// A refresh token is single use: the second use revokes the session.
	var next tokenResp
	if code := s.api(t, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": second.RefreshToken}, &next); code != 200 || next.RefreshToken == second.RefreshToken {
		t.Fatalf("refresh: %d", code)
	}
	if code := s.api(t, "GET", "/v1/conversations?mine=true", next.AccessToken, nil, nil); code != 200 {
		t.Fatalf("the refreshed access token: %d", code)
	}
	if code := s.api(t, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": second.RefreshToken}, &e); code != 401 {
		t.Fatalf("reusing a refresh token: %d, want 401", code)
	}
	if code := other.closeCode(); code != 4003 {
		t.Errorf("after refresh-token reuse the session's socket closed with %d, want 4003", code)
	}
	if code := s.api(t, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": next.RefreshToken}, &e); code != 401 {
		t.Errorf("the thief's refresh token after reuse: %d, want 401", code)
	}

	// A password change revokes every session and closes every socket.
	third := s.login(t, "demo", "amy", "password-amy")
	sock := dial(t, s, "/v1/ws/agent", nil)
	sock.hello(third.AccessToken)
	if code := s.api(t, "POST", "/v1/auth/password", third.AccessToken, map[string]string{"current_password": "wrong-one", "new_password": "new-password-amy"}, &e); code != 403 {
		t.Fatalf("password change with a wrong current password: %d", code)
	}
	if code := s.api(t, "POST", "/v1/auth/password", third.AccessToken, map[string]string{"current_password": "password-amy", "new_password": "new-password-amy"}, nil); code != 204 {
		t.Fatalf("password change: %d", code)
	}
	if code := sock.closeCode(); code != 4003 {
		t.Errorf("after a password change the socket closed with %d, want 4003", code)
	}
	if code := s.api(t, "GET", "/v1/conversations?mine=true", third.AccessToken, nil, nil); code != 401 {
		t.Errorf("an access token from before the password change: %d, want 401", code)
	}
	if code := s.api(t, "POST", "/v1/auth/login", "", map[string]string{"tenant": "demo", "username": "amy", "password": "password-amy"}, nil); code != 401 {
		t.Errorf("the old password: %d, want 401", code)
	}
	s.login(t, "demo", "amy", "new-password-amy")
}

// fakeWeChat implements jscode2session as WeChat documents it: codes are
// single use; errcode 40029 for an unknown code, 40163 for a used one.
func fakeWeChat(t *testing.T, appID, secret string) *httptest.Server {
	used := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		w.Header().Set("Content-Type", "text/plain") // as WeChat sends it
		switch {
		case r.URL.Path != "/sns/jscode2session" || q.Get("grant_type") != "authorization_code":
			w.WriteHeader(404)
		case q.Get("appid") != appID || q.Get("secret") != secret:
			io.WriteString(w, `{"errcode":40125,"errmsg":"invalid appsecret"}`)
		case used[q.Get("js_code")]:
			io.WriteString(w, `{"errcode":40163,"errmsg":"code been used"}`)
		case strings.HasPrefix(q.Get("js_code"), "code-"):
			used[q.Get("js_code")] = true
			io.WriteString(w, `{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o","session_key":"tiihtNczf5v6AKRyjwEUhQ==","unionid":"o6_bmasdasdsad6_2sgVt7hMZOPfL"}`)
		default:
			io.WriteString(w, `{"errcode":40029,"errmsg":"invalid code"}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestUserIdentities(t *testing.T) {
	cfg := attackConfig(t)
	wx := fakeWeChat(t, "demo", "the-app-secret")
	cfg.WeChat.APIBase = wx.URL
	s := startServer(t, cfg)
	admin, _ := s.staffToken(t)
	var e errorResp

	// Before the admin configures the secrets, neither way works.
	if code := s.api(t, "POST", "/v1/auth/wechat", "", map[string]string{"tenant": "demo", "code": "code-1"}, &e); code != 403 {
		t.Fatalf("wechat login without an AppSecret: %d", code)
	}
	identitySecret := auth.GenerateSecret(32)
	if code := s.api(t, "PUT", "/v1/tenant/credentials", admin, map[string]string{"wechat_app_secret": "the-app-secret", "identity_secret": identitySecret}, nil); code != 200 {
		t.Fatalf("put credentials: %d", code)
	}
	var status map[string]any
	s.api(t, "GET", "/v1/tenant/credentials", admin, nil, &status)
	if b, _ := json.Marshal(status); strings.Contains(string(b), "the-app-secret") || strings.Contains(string(b), identitySecret) || status["identity_secret_set"] != true {
		t.Errorf("GET credentials: %s", b)
	}

	// A mini-program user: the code becomes a token for wx-<openid>; the
	// session_key never reaches the client.
	req := map[string]string{"tenant": "demo", "code": "code-1"}
	resp, _ := http.Post(s.url("/v1/auth/wechat"), "application/json", strings.NewReader(`{"tenant":"demo","code":"code-1"}`))
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var wxTok tokenResp
	json.Unmarshal(raw, &wxTok)
	if resp.StatusCode != 200 || wxTok.UserID != "wx-oUpF8uMuAJO_M2pxb1Q9zNjWeS6o" || strings.Contains(string(raw), "tiihtNczf5v6AKRyjwEUhQ") {
		t.Fatalf("wechat login: %d %s", resp.StatusCode, raw)
	}
	if code := s.api(t, "POST", "/v1/auth/wechat", "", req, &e); code != 401 {
		t.Errorf("a used code: %d %s", code, e.Error.Code)
	}
	if code := s.api(t, "POST", "/v1/auth/wechat", "", map[string]string{"tenant": "demo", "code": "bogus"}, &e); code != 401 {
		t.Errorf("an invalid code: %d", code)
	}

	// A merchant's user: a signed identity, fresh and untampered.
	ts := time.Now().Unix()
	sig := actors.IdentitySignature(identitySecret, "demo", "member-42", ts)
	var mTok tokenResp
	if code := s.api(t, "POST", "/v1/auth/identity", "", map[string]any{"tenant": "demo", "user_id": "member-42", "ts": ts, "sig": sig}, &mTok); code != 200 || mTok.UserID != "m-member-42" {
		t.Fatalf("signed identity: %d %+v", code, mTok)
	}
	for name, body := range map[string]map[string]any{
		"another user id under the signature": {"tenant": "demo", "user_id": "member-43", "ts": ts, "sig": sig},
		"another time under the signature":    {"tenant": "demo", "user_id": "member-42", "ts": ts + 1, "sig": sig},
		"a stale identity": {"tenant": "demo", "user_id": "member-42", "ts": ts - 600,
			"sig": actors.IdentitySignature(identitySecret, "demo", "member-42", ts-600)},
		"signed with another secret": {"tenant": "demo", "user_id": "member-42", "ts": ts, "sig": actors.IdentitySignature("x", "demo", "member-42", ts)},
	} {
		if code := s.api(t, "POST", "/v1/auth/identity", "", body, &e); code != 401 {
			t.Errorf("%s: %d %s, want 401", name, code, e.Error.Code)
		}
	}
	// Each user token opens only its own user's conversations.
	conv := s.newConversation(t, wxTok.AccessToken)
	if code := s.api(t, "GET", "/v1/conversations/"+conv+"/messages", mTok.AccessToken, nil, &e); code != 404 {
		t.Errorf("the merchant's user reads the WeChat user's conversation: %d", code)
	}
	if code := s.api(t, "GET", "/v1/conversations/"+conv+"/messages", wxTok.AccessToken, nil, nil); code != 200 {
		t.Errorf("the WeChat user reads their own conversation: %d", code)
	}
}

func TestTranscriptExportIsEscaped(t *testing.T) {
	s := startServer(t, attackConfig(t))
	user, _ := s.visitor(t)
	conv := s.newConversation(t, user)
	c := dial(t, s, "/v1/ws/user", nil)
	c.hello(user)
	evil := []string{`=HYPERLINK("http://evil.example","点我")`, `<script>alert(1)</script>`, `a,"b"` + "\n" + `c`}
	for i, text := range evil {
		id := "e" + strconv.Itoa(i)
		c.sendText(conv, id, text)
		c.ack(id)
	}
	admin, _ := s.staffToken(t)
	get := func(format string) (string, http.Header) {
		req, _ := http.NewRequest("GET", s.url("/v1/conversations/"+conv+"/export?format="+format), nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("export %s: %v %v", format, err, resp.Status)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b), resp.Header
	}
	csvText, h := get("csv")
	if !strings.Contains(h.Get("Content-Disposition"), "attachment") || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") {
		t.Errorf("csv headers: %v", h)
	}
	if !strings.Contains(csvText, `'=HYPERLINK(""http://evil.example"",""点我"")`) || strings.Contains(csvText, `,=HYPERLINK`) {
		t.Errorf("a formula is not defused in the CSV:\n%s", csvText)
	}
	if !strings.Contains(csvText, `"a,""b""`+"\n"+`c"`) {
		t.Errorf("quotes and newlines are not escaped in the CSV:\n%s", csvText)
	}
	jsonText, _ := get("json")
	if strings.Contains(jsonText, "<script>") || !strings.Contains(jsonText, `\u003cscript\u003e`) {
		t.Errorf("markup is not escaped in the JSON export: %s", jsonText)
	}
	user2, _ := s.visitor(t)
	if code := s.api(t, "GET", "/v1/conversations/"+conv+"/export", user2, nil, nil); code != 401 {
		t.Errorf("a customer exports: %d, want 401", code)
	}
}
