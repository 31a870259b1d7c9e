package main

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/kefu-dev/kefu/engine"
)

type cannedResp struct {
	Canned []engine.CannedResponse `json:"canned"`
	engine.CannedResponse
	errorResp
}

// canned calls the canned-response API and returns the status and answer.
func (s *testServer) canned(t testing.TB, method, path, token string, body any) (int, cannedResp) {
	t.Helper()
	var r cannedResp
	code := s.api(t, method, "/v1/canned"+path, token, body, &r)
	return code, r
}

func shortcuts(list []engine.CannedResponse) string {
	var out []string
	for _, c := range list {
		out = append(out, string(c.Scope)+":"+c.Shortcut)
	}
	return strings.Join(out, " ")
}

// TestCannedResponses: the demo tenant's shared canned responses are there
// from the first start; every member of staff sees the tenant's and their
// own, never another's; agents keep personal ones, admins and supervisors
// change the tenant's; shortcuts are checked and unique within their
// scope; changes of the tenant's are audited; tenants are isolated.
func TestCannedResponses(t *testing.T) {
	cfg := testConfig(t.TempDir())
	seedOtherTenant(t, cfg)
	s := startServer(t, cfg)
	admin, _ := s.staffToken(t)
	alice := s.createAgent(t, admin, "alice", engine.StaffAgent, 3, nil)
	bob := s.createAgent(t, admin, "bob", engine.StaffAgent, 3, nil)
	sup := s.createAgent(t, admin, "sup", engine.StaffSupervisor, 3, nil)

	code, r := s.canned(t, "GET", "", admin, nil)
	if code != 200 || shortcuts(r.Canned) != "tenant:bye tenant:hi tenant:refund tenant:wait" {
		t.Fatalf("seeded: %d %s", code, shortcuts(r.Canned))
	}
	var hiID string
	for _, c := range r.Canned {
		if c.Shortcut == "hi" {
			hiID = c.ID
			if c.Text != "您好，我是客服，请问有什么可以帮您？" || c.Owner != "" || c.UpdatedAt.IsZero() {
				t.Fatalf("seeded hi: %+v", c)
			}
		}
	}

	// Personal ones: any member of staff, their own.
	code, mine := s.canned(t, "POST", "", alice.token, map[string]any{"scope": "personal", "shortcut": "hi", "title": " 我的问候 ", "text": "您好，我是小艾～"})
	if code != 201 || mine.ID == "" || mine.Owner != alice.id || mine.Scope != engine.CannedPersonal || mine.Title != "我的问候" {
		t.Fatalf("create personal: %d %+v", code, mine)
	}
	if code, r := s.canned(t, "POST", "", alice.token, map[string]any{"scope": "personal", "shortcut": "hi", "text": "again"}); code != 400 ||
		r.Error.Code != string(engine.CodeInvalidField) || !strings.Contains(r.Error.Message, "already used") {
		t.Fatalf("a second personal hi: %d %+v", code, r)
	}
	if _, r := s.canned(t, "GET", "", alice.token, nil); shortcuts(r.Canned) != "tenant:bye tenant:hi personal:hi tenant:refund tenant:wait" {
		t.Fatalf("alice sees %s", shortcuts(r.Canned))
	}
	if _, r := s.canned(t, "GET", "", bob.token, nil); shortcuts(r.Canned) != "tenant:bye tenant:hi tenant:refund tenant:wait" {
		t.Fatalf("bob sees %s", shortcuts(r.Canned))
	}
	for who, token := range map[string]string{"bob": bob.token, "an admin": admin} {
		if code, _ := s.canned(t, "PUT", "/"+mine.ID, token, map[string]any{"scope": "personal", "shortcut": "x", "text": "x"}); code != 404 {
			t.Errorf("%s changing alice's: %d", who, code)
		}
		if code, _ := s.canned(t, "DELETE", "/"+mine.ID, token, nil); code != 404 {
			t.Errorf("%s deleting alice's: %d", who, code)
		}
	}
	code, changed := s.canned(t, "PUT", "/"+mine.ID, alice.token, map[string]any{"scope": "personal", "shortcut": "问候", "title": "", "text": "您好呀"})
	if code != 200 || changed.ID != mine.ID || changed.Shortcut != "问候" || changed.Text != "您好呀" || changed.Owner != alice.id {
		t.Fatalf("alice changes hers: %d %+v", code, changed)
	}

	// The tenant's: admins and supervisors only.
	for what, call := range map[string]func() (int, cannedResp){
		"create": func() (int, cannedResp) {
			return s.canned(t, "POST", "", alice.token, map[string]any{"scope": "tenant", "shortcut": "ship", "text": "x"})
		},
		"change": func() (int, cannedResp) {
			return s.canned(t, "PUT", "/"+hiID, alice.token, map[string]any{"scope": "tenant", "shortcut": "hi", "text": "x"})
		},
		"promote": func() (int, cannedResp) {
			return s.canned(t, "PUT", "/"+mine.ID, alice.token, map[string]any{"scope": "tenant", "shortcut": "问候", "text": "x"})
		},
		"delete": func() (int, cannedResp) { return s.canned(t, "DELETE", "/"+hiID, alice.token, nil) },
	} {
		if code, r := call(); code != 403 || r.Error.Code != string(engine.CodeForbidden) {
			t.Errorf("an agent may not %s the tenant's: %d %+v", what, code, r)
		}
	}
	if code, r := s.canned(t, "POST", "", sup.token, map[string]any{"scope": "tenant", "shortcut": "wait", "text": "x"}); code != 400 ||
		!strings.Contains(r.Error.Message, "already used") {
		t.Fatalf("a second tenant wait: %d %+v", code, r)
	}
	code, ship := s.canned(t, "POST", "", sup.token, map[string]any{"scope": "tenant", "shortcut": "ship", "title": "发货", "text": "您的订单已发货，请留意物流信息。"})
	if code != 201 || ship.Scope != engine.CannedTenant || ship.Owner != "" {
		t.Fatalf("a supervisor creates one: %d %+v", code, ship)
	}
	if code, r := s.canned(t, "PUT", "/"+ship.ID, sup.token, map[string]any{"scope": "tenant", "shortcut": "ship", "text": "已发货"}); code != 200 || r.Text != "已发货" {
		t.Fatalf("a supervisor changes it: %d %+v", code, r)
	}
	if _, r := s.canned(t, "GET", "", bob.token, nil); !strings.Contains(shortcuts(r.Canned), "tenant:ship") {
		t.Fatalf("bob does not see the new one: %s", shortcuts(r.Canned))
	}
	if code, _ := s.canned(t, "DELETE", "/"+ship.ID, sup.token, nil); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if code, r := s.canned(t, "DELETE", "/"+ship.ID, sup.token, nil); code != 404 || r.Error.Code != string(engine.CodeNotFound) {
		t.Fatalf("delete twice: %d %+v", code, r)
	}
	if code, _ := s.canned(t, "PUT", "/nosuchid", admin, map[string]any{"scope": "tenant", "shortcut": "x", "text": "x"}); code != 404 {
		t.Fatalf("changing one that does not exist: %d", code)
	}

	// Shapes.
	for name, body := range map[string]any{
		"no scope":              map[string]any{"shortcut": "a", "text": "x"},
		"unknown scope":         map[string]any{"scope": "global", "shortcut": "a", "text": "x"},
		"a space in a shortcut": map[string]any{"scope": "personal", "shortcut": "a b", "text": "x"},
		"a long shortcut":       map[string]any{"scope": "personal", "shortcut": strings.Repeat("a", 33), "text": "x"},
		"a long title":          map[string]any{"scope": "personal", "shortcut": "a", "title": strings.Repeat("题", 101), "text": "x"},
		"blank text":            map[string]any{"scope": "personal", "shortcut": "a", "text": " \n "},
		"long text":             map[string]any{"scope": "personal", "shortcut": "a", "text": strings.Repeat("字", 2001)},
		"an operator":           map[string]any{"scope": "personal", "shortcut": map[string]any{"$ne": nil}, "text": "x"},
	} {
		if code, r := s.canned(t, "POST", "", alice.token, body); code != 400 || r.Error.Code != string(engine.CodeInvalidField) {
			t.Errorf("%s: %d %+v", name, code, r)
		}
	}
	if code, _ := s.canned(t, "PUT", "/"+url.PathEscape("$ne"), alice.token, map[string]any{"scope": "personal", "shortcut": "a", "text": "x"}); code != 400 {
		t.Errorf("an id of the wrong shape: %d", code)
	}
	user, _ := s.visitor(t)
	if code, _ := s.canned(t, "GET", "", user, nil); code != 401 {
		t.Errorf("a customer: %d", code)
	}

	// Audited: the tenant's, not personal ones.
	eventually(t, "the audit entries of the tenant's canned response", func() bool {
		_, a := s.audit(t, admin, "action=config_changed&target=canned/"+ship.ID)
		return len(a.Entries) == 3 && a.Entries[0].Detail == "deleted, shortcut ship" && a.Entries[2].Detail == "created, shortcut ship" &&
			a.Entries[0].Actor.ID == sup.id
	})
	if _, a := s.audit(t, admin, "action=config_changed&actor="+alice.id); len(a.Entries) != 0 {
		t.Fatalf("personal changes were audited: %+v", a.Entries)
	}

	// Another tenant has none of these.
	other := s.login(t, "other", "admin", otherPassword).AccessToken
	var raw map[string]json.RawMessage
	if code := s.api(t, "GET", "/v1/canned", other, nil, &raw); code != 200 || string(raw["canned"]) != "[]" {
		t.Fatalf("the other tenant's: %d %s", code, raw["canned"])
	}
	if code, _ := s.canned(t, "DELETE", "/"+hiID, other, nil); code != 404 {
		t.Fatalf("the other tenant's admin deleting demo's: %d", code)
	}
}
