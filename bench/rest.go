package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kefu-dev/kefu/engine"
)

// api is a small client of Kefu's REST API.
type api struct {
	base string
	http *http.Client
}

func newAPI(base string, conns int) *api {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = conns, conns
	return &api{base: base, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

func (a *api) close() { a.http.CloseIdleConnections() }

// apiError is a REST call answered with an error status.
type apiError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("bench: %s %s: status %d: %s", e.Method, e.Path, e.Status, strings.TrimSpace(e.Body))
}

func (a *api) do(ctx context.Context, method, path, token string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("bench: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("bench: %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return &apiError{Method: method, Path: path, Status: resp.StatusCode, Body: string(data)}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("bench: %s %s: decoding %.200q: %w", method, path, data, err)
		}
	}
	return nil
}

type tokenResp struct {
	AccessToken string `json:"access_token"`
	UserID      string `json:"user_id"`
}

func (a *api) login(ctx context.Context, tenant, user, password string) (string, error) {
	var r tokenResp
	err := a.do(ctx, "POST", "/v1/auth/login", "", map[string]string{"tenant": tenant, "username": user, "password": password}, &r)
	return r.AccessToken, err
}

// createAgent creates an agent account able to hold capacity conversations,
// routed those of the skill group, and returns its token.
func (a *api) createAgent(ctx context.Context, tenant, adminToken, username, password string, capacity int, group string) (string, error) {
	var st struct {
		ID string `json:"id"`
	}
	if err := a.do(ctx, "POST", "/v1/staff", adminToken, map[string]string{"username": username, "password": password, "role": "agent"}, &st); err != nil {
		return "", err
	}
	profile := map[string]any{"capacity": capacity, "skills": map[string]int{group: 3}}
	if err := a.do(ctx, "PUT", "/v1/agents/"+st.ID, adminToken, profile, nil); err != nil {
		return "", err
	}
	return a.login(ctx, tenant, username, password)
}

// tagCustomer adds tag to a customer's profile.
func (a *api) tagCustomer(ctx context.Context, adminToken, userID, tag string) error {
	return a.do(ctx, "POST", "/v1/customers/"+userID+"/tags", adminToken, map[string][]string{"add": {tag}}, nil)
}

type routingRule struct {
	When     string `json:"when"`
	Group    string `json:"group"`
	Priority int    `json:"priority"`
}

// editRules changes the tenant's routing rules with edit, leaving its
// other settings as they are.
func (a *api) editRules(ctx context.Context, adminToken string, edit func([]routingRule) []routingRule) error {
	var settings map[string]json.RawMessage
	if err := a.do(ctx, "GET", "/v1/settings", adminToken, nil, &settings); err != nil {
		return err
	}
	var rules []routingRule
	if raw := settings["rules"]; raw != nil {
		if err := json.Unmarshal(raw, &rules); err != nil {
			return fmt.Errorf("bench: GET /v1/settings: rules: %w", err)
		}
	}
	raw, err := json.Marshal(edit(rules))
	if err != nil {
		return err
	}
	settings["rules"] = raw
	return a.do(ctx, "PUT", "/v1/settings", adminToken, settings, nil)
}

func (a *api) visitor(ctx context.Context, tenant string) (token, userID string, err error) {
	var r tokenResp
	err = a.do(ctx, "POST", "/v1/auth/visitor", "", map[string]string{"tenant": tenant}, &r)
	return r.AccessToken, r.UserID, err
}

// newConversation creates a conversation of the user and returns its id,
// checked: the harness's frames embed it unescaped.
func (a *api) newConversation(ctx context.Context, userToken string) (string, error) {
	var c struct {
		ID string `json:"id"`
	}
	if err := a.do(ctx, "POST", "/v1/conversations", userToken, nil, &c); err != nil {
		return "", err
	}
	if !engine.ValidID(c.ID) {
		return "", fmt.Errorf("bench: the server returned conversation id %q", c.ID)
	}
	return c.ID, nil
}

// message is a stored message as the protocol shows it.
type message struct {
	Conv        string `json:"conv"`
	Seq         int64  `json:"seq"`
	ClientMsgID string `json:"client_msg_id"`
	From        struct {
		Role string `json:"role"`
		ID   string `json:"id"`
	} `json:"from"`
}

// history pages through a conversation's whole history.
func (a *api) history(ctx context.Context, token, conv string) ([]message, error) {
	var all []message
	after := int64(0)
	for {
		var page struct {
			Messages []message `json:"messages"`
			More     bool      `json:"more"`
		}
		path := fmt.Sprintf("/v1/conversations/%s/messages?after_seq=%d&limit=200", conv, after)
		if err := a.do(ctx, "GET", path, token, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Messages...)
		if !page.More || len(page.Messages) == 0 {
			return all, nil
		}
		after = page.Messages[len(page.Messages)-1].Seq
	}
}

// metric reads one unlabelled sample from the server's /metrics.
func (a *api) metric(ctx context.Context, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", a.base+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("bench: GET /metrics: %w", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("bench: /metrics has no %s (is the process collector registered?)", name)
}
