package sealed

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/store/storetest"
)

// TestConformance runs the store conformance suite over each adapter
// wrapped by Wrap: sealing changes nothing a caller can see.
func TestConformance(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		storetest.Run(t, func(t *testing.T, clock engine.Clock) engine.Store {
			inner, _ := b.open(t, clock)
			return Wrap(inner, newKeys(t, inner, Config{}))
		})
	})
}

// TestMethods: every method of engine.Store is either sealed here or
// passed through on purpose, so a new port cannot reach the database in
// clear by being promoted unnoticed.
func TestMethods(t *testing.T) {
	sealedMethods := []string{"AddNote", "Append", "Conversation", "CreateConversation", "Customer", "Events",
		"ListConversations", "MessageByClientID", "Messages", "Notes", "PutCustomer", "PutTenantCredentials", "Recent",
		"TenantCredentials", "UpdateConversation"}
	// Nothing personal in these: ids, states, times, staff, the merchant's
	// knowledge base and canned responses, routing settings, timers,
	// wrapped keys; sessions and password hashes (only hashes are stored),
	// login counts, and the audit log (its details never hold message text
	// or secrets).
	plain := []string{"AgentProfile", "AgentProfiles", "AllDataKeys", "CannedResponses", "Close", "CountTenants",
		"CreateDataKey", "CreateStaff", "CreateTenant", "DataKeys", "DeleteCanned", "DeleteFAQ", "DeleteGroup",
		"DueTimers", "FAQEntries", "Groups", "LastSeq", "ListStaff", "PutAgentProfile", "PutCanned",
		"PutFAQ", "PutGroup", "PutSettingIfAbsent", "PutTenantSettings", "SetTimers", "ReadPointers", "RewrapDataKey",
		"SetReadPointer", "StaffByID", "StaffByUsername", "Tenant", "TenantSettings", "Timers",
		"UpdateStaff", "PutSession", "StaffSessions", "PutLoginState", "LoginState", "AppendAudit", "AuditLog"}
	store := reflect.TypeFor[engine.Store]()
	for i := range store.NumMethod() {
		name := store.Method(i).Name
		if slices.Contains(sealedMethods, name) == slices.Contains(plain, name) {
			t.Errorf("engine.Store.%s: list it in TestMethods as sealed or as plain, once", name)
		}
	}
	// The sealed ones are declared in store.go, not promoted.
	f, err := parser.ParseFile(token.NewFileSet(), "store.go", nil, 0)
	mustOK(t, "parse store.go", err)
	var declared []string
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv != nil && fd.Name.IsExported() {
			declared = append(declared, fd.Name.Name)
		}
	}
	slices.Sort(declared)
	if !slices.Equal(declared, sealedMethods) {
		t.Fatalf("store.go declares %v, want the sealed methods %v", declared, sealedMethods)
	}
}

// The secrets of TestNoPlaintextAtRest, each distinctive enough that
// finding it in the database files cannot be chance.
const (
	secretASCII = "ZEBRA-7731-PASSPORT"
	secretCJK   = "我的身份证号是110101199003078888"
)

// TestNoPlaintextAtRest writes every sealed field with secrets in it and
// finds neither secret in any byte of the SQLite files, while the
// knowledge base, which is not sealed, is there to find.
func TestNoPlaintextAtRest(t *testing.T) {
	ctx := context.Background()
	inner, path := openSQLitePath(t, storetest.FixedClock{T: epoch})
	s := Wrap(inner, newKeys(t, inner, Config{}))
	storetest.Seed(t, s, "ta", "c1")
	secret := secretASCII + " " + secretCJK

	m := storetest.Msg("ta", "c1", 1)
	m.Body = engine.Body{Type: engine.BodyQuickReply, Text: "message " + secret,
		Options: []engine.Option{{ID: "o1", Text: "option " + secret}}}
	storetest.AppendAll(t, s, []engine.Message{m})
	note := engine.Note{Tenant: "ta", Conv: "c1", ID: "n1", Author: engine.Party{Role: engine.RoleAgent, ID: "a1"},
		Text: "note " + secret, CreatedAt: epoch}
	mustOK(t, "add note", s.AddNote(ctx, note))
	c, err := s.Conversation(ctx, "ta", "c1")
	mustOK(t, "conversation", err)
	c.State = engine.StateQueued
	mustOK(t, "update", s.UpdateConversation(ctx, c, engine.ConvEvent{Type: engine.EventTransferred, Note: "event " + secret}))
	c.State, c.Rating = engine.StateClosed, &engine.Rating{Score: 2, Comment: "rating " + secret, At: epoch}
	mustOK(t, "rate", s.UpdateConversation(ctx, c, engine.ConvEvent{Type: engine.EventRated, Score: 2, Note: "rating " + secret}))
	cust := engine.Customer{Tenant: "ta", ID: "u1", DisplayName: secret, Attrs: map[string]string{"id_card": secret}}
	mustOK(t, "put customer", s.PutCustomer(ctx, cust))
	const published = "FAQ-ANSWER-PUBLISHED-0042"
	mustOK(t, "put faq", s.PutFAQ(ctx, "ta", []engine.FAQEntry{{ID: "f1", Question: "q", Answer: published, Enabled: true, Version: 1}}))

	// Everything comes back in clear.
	got, err := s.Messages(ctx, "ta", "c1", 0, 10)
	mustOK(t, "messages", err)
	wantMessages(t, "messages", got, []engine.Message{m})
	if notes, err := s.Notes(ctx, "ta", "c1"); err != nil || len(notes) != 1 || notes[0].Text != note.Text {
		t.Fatalf("notes = %+v, %v", notes, err)
	}
	if evs, err := s.Events(ctx, "ta", "c1"); err != nil || len(evs) != 2 || evs[0].Note != "event "+secret || evs[1].Note != "rating "+secret {
		t.Fatalf("events = %+v, %v", evs, err)
	}
	if gc, err := s.Conversation(ctx, "ta", "c1"); err != nil || gc.Rating == nil || gc.Rating.Comment != "rating "+secret {
		t.Fatalf("conversation = %+v, %v", gc, err)
	}
	if list, err := s.ListConversations(ctx, "ta", engine.ConversationQuery{}); err != nil || len(list) != 1 ||
		list[0].Rating == nil || list[0].Rating.Comment != "rating "+secret {
		t.Fatalf("listed = %+v, %v", list, err)
	}
	if gc, err := s.Customer(ctx, "ta", "u1"); err != nil || gc.DisplayName != secret || gc.Attrs["id_card"] != secret {
		t.Fatalf("customer = %+v, %v", gc, err)
	}
	// What the adapter holds is a sealed body.
	if b := storedBody(t, inner, "ta", "c1", 1); b.Type != sealedBody || !regexp.MustCompile(`^enc1:1:[A-Za-z0-9_-]{40,}$`).MatchString(b.Text) {
		t.Fatalf("stored body = %+v", b)
	}

	mustOK(t, "close", s.Close())
	var files []byte
	entries, err := os.ReadDir(filepath.Dir(path))
	mustOK(t, "read dir", err)
	for _, e := range entries { // the database, its WAL and shared memory
		b, err := os.ReadFile(filepath.Join(filepath.Dir(path), e.Name()))
		mustOK(t, "read "+e.Name(), err)
		files = append(files, b...)
	}
	if !bytes.Contains(files, []byte(published)) {
		t.Fatalf("the knowledge base's answer is not in the %d bytes of the files: the search cannot work", len(files))
	}
	for _, s := range []string{secretASCII, secretCJK, "110101199003078888"} {
		if bytes.Contains(files, []byte(s)) {
			t.Errorf("%q is in the database files", s)
		}
	}
}

// TestSealsDiffer: the same body sealed twice differs (random nonces), and
// opens to the same.
func TestSealsDiffer(t *testing.T) {
	inner, _ := openSQLite(t, storetest.FixedClock{T: epoch})
	s := Wrap(inner, newKeys(t, inner, Config{}))
	storetest.Seed(t, s, "ta", "c1", "c2")
	for _, c := range []string{"c1", "c2"} {
		m := storetest.Msg("ta", c, 1)
		m.Body.Text = "same text"
		storetest.AppendAll(t, s, []engine.Message{m})
	}
	a, b := storedBody(t, inner, "ta", "c1", 1), storedBody(t, inner, "ta", "c2", 1)
	if a.Text == b.Text {
		t.Fatalf("two seals of one body are equal: %s", a.Text)
	}
}

// flip returns the sealed value with bit 0 of byte i of its decoded
// nonce|ciphertext|tag flipped.
func flip(tb testing.TB, sealed string, i int) string {
	tb.Helper()
	head := sealed[:strings.LastIndexByte(sealed, ':')+1]
	raw, err := base64.RawURLEncoding.DecodeString(sealed[len(head):])
	if err != nil {
		tb.Fatal(err)
	}
	raw[i] ^= 1
	return head + base64.RawURLEncoding.EncodeToString(raw)
}

// TestTamperedBody: a stored body with one byte flipped, cut short, in
// clear, naming an unknown key, or moved from another message,
// conversation or tenant is an error wrapping ErrTampered (or
// ErrUnknownKey), never a message; put back, it reads again.
func TestTamperedBody(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		inner, raw := b.open(t, storetest.FixedClock{T: epoch})
		s := Wrap(inner, newKeys(t, inner, Config{}))
		storetest.Seed(t, s, "ta", "c1", "c2")
		storetest.Seed(t, s, "tb", "c1")
		want := msgs("ta", "c1", 1, 3)
		storetest.AppendAll(t, s, want)
		storetest.AppendAll(t, s, msgs("ta", "c2", 1, 2))
		storetest.AppendAll(t, s, msgs("tb", "c1", 1, 2))
		orig := storedBody(t, inner, "ta", "c1", 2)
		n := len(orig.Text) - len("enc1:1:")
		n = base64.RawURLEncoding.DecodedLen(n)

		cases := map[string]struct {
			body engine.Body
			want error
		}{
			"flipped nonce byte":        {engine.Body{Type: sealedBody, Text: flip(t, orig.Text, 0)}, ErrTampered},
			"flipped ciphertext byte":   {engine.Body{Type: sealedBody, Text: flip(t, orig.Text, nonceSize+3)}, ErrTampered},
			"flipped tag byte":          {engine.Body{Type: sealedBody, Text: flip(t, orig.Text, n-1)}, ErrTampered},
			"cut short":                 {engine.Body{Type: sealedBody, Text: orig.Text[:len(orig.Text)-4]}, ErrTampered},
			"in clear":                  {engine.Body{Type: engine.BodyText, Text: "message 2 of c1"}, ErrTampered},
			"in clear, typed sealed":    {engine.Body{Type: sealedBody, Text: "message 2 of c1"}, ErrTampered},
			"unknown key version":       {engine.Body{Type: sealedBody, Text: "enc1:9:" + orig.Text[len("enc1:1:"):]}, ErrUnknownKey},
			"from another message":      {storedBody(t, inner, "ta", "c1", 1), ErrTampered},
			"from another conversation": {storedBody(t, inner, "ta", "c2", 2), ErrTampered},
			"from another tenant":       {storedBody(t, inner, "tb", "c1", 2), ErrTampered},
		}
		for name, tc := range cases {
			raw.setBody(t, "ta", "c1", 2, tc.body)
			got, err := s.Messages(ctx, "ta", "c1", 0, 10)
			if !errors.Is(err, tc.want) || got != nil {
				t.Errorf("%s: Messages = %v, %v; want no messages and %v", name, got, err, tc.want)
			}
			if m, err := s.MessageByClientID(ctx, "ta", "c1", "c1-2"); !errors.Is(err, tc.want) || m.Body.Text != "" {
				t.Errorf("%s: MessageByClientID = %+v, %v; want %v", name, m, err, tc.want)
			}
			if _, err := s.Recent(ctx, "ta", "c1", 2); !errors.Is(err, tc.want) {
				t.Errorf("%s: Recent = %v; want %v", name, err, tc.want)
			}
			// The messages around it still read.
			got, err = s.Messages(ctx, "ta", "c1", 2, 10)
			mustOK(t, name+": messages after the tampered one", err)
			wantMessages(t, name+": messages after the tampered one", got, want[2:])
		}
		raw.setBody(t, "ta", "c1", 2, orig)
		got, err := s.Messages(ctx, "ta", "c1", 0, 10)
		mustOK(t, "messages once restored", err)
		wantMessages(t, "messages once restored", got, want)
	})
}

// TestTamperedRecords: notes, event notes, ratings' comments and customers
// are bound to their record and field in the same way.
func TestTamperedRecords(t *testing.T) {
	ctx := context.Background()
	inner, rs := openSQLite(t, storetest.FixedClock{T: epoch})
	raw := rs.(rawSQLite)
	s := Wrap(inner, newKeys(t, inner, Config{}))
	storetest.Seed(t, s, "ta", "c1", "c2")
	agent := engine.Party{Role: engine.RoleAgent, ID: "a1"}
	for _, n := range []engine.Note{{ID: "n1", Text: "first"}, {ID: "n2", Text: "second"}} {
		n.Tenant, n.Conv, n.Author = "ta", "c1", agent
		mustOK(t, "add note", s.AddNote(ctx, n))
	}
	mustOK(t, "add note", s.AddNote(ctx, engine.Note{Tenant: "ta", Conv: "c2", ID: "n1", Author: agent, Text: "c2's"}))
	for _, c := range []string{"c1", "c2"} {
		conv := engine.Conversation{Tenant: "ta", ID: c, State: engine.StateQueued}
		mustOK(t, "update", s.UpdateConversation(ctx, conv, engine.ConvEvent{Type: engine.EventEscalated, Note: "event of " + c}))
	}
	cust := engine.Customer{Tenant: "ta", ID: "u1", DisplayName: "张三", Attrs: map[string]string{"city": "上海", "phone": "13800000000"}}
	mustOK(t, "put customer", s.PutCustomer(ctx, cust))
	mustOK(t, "put customer", s.PutCustomer(ctx, engine.Customer{Tenant: "ta", ID: "u2", DisplayName: "李四"}))

	text := func(table, where string, args ...any) string {
		var v string
		mustOK(t, "read "+table, raw.db.QueryRow(`SELECT `+table+` WHERE `+where, args...).Scan(&v))
		return v
	}
	note1 := text("text FROM notes", "tenant = 'ta' AND conv = 'c1' AND id = 'n1'")
	note2 := text("text FROM notes", "tenant = 'ta' AND conv = 'c1' AND id = 'n2'")
	noteC2 := text("text FROM notes", "tenant = 'ta' AND conv = 'c2' AND id = 'n1'")
	for name, v := range map[string]string{
		"flipped": flip(t, note1, nonceSize+1), "in clear": "first",
		"from another note": note2, "from another conversation": noteC2,
	} {
		raw.exec(t, `UPDATE notes SET text = ? WHERE tenant = 'ta' AND conv = 'c1' AND id = 'n1'`, v)
		if got, err := s.Notes(ctx, "ta", "c1"); !errors.Is(err, ErrTampered) || got != nil {
			t.Errorf("note %s: Notes = %v, %v; want ErrTampered", name, got, err)
		}
	}
	raw.exec(t, `UPDATE notes SET text = ? WHERE tenant = 'ta' AND conv = 'c1' AND id = 'n1'`, note1)
	if got, err := s.Notes(ctx, "ta", "c1"); err != nil || len(got) != 2 || got[0].Text != "first" {
		t.Fatalf("notes once restored = %+v, %v", got, err)
	}

	for _, c := range []string{"c1", "c2"} {
		conv := engine.Conversation{Tenant: "ta", ID: c, State: engine.StateClosed, Rating: &engine.Rating{Score: 1, Comment: "rating of " + c, At: epoch}}
		mustOK(t, "rate", s.UpdateConversation(ctx, conv, engine.ConvEvent{Type: engine.EventRated}))
	}
	rating1 := text("rating_comment FROM conversations", "tenant = 'ta' AND id = 'c1'")
	rating2 := text("rating_comment FROM conversations", "tenant = 'ta' AND id = 'c2'")
	for name, v := range map[string]string{"in clear": "rating of c1", "from another conversation": rating2, "flipped": flip(t, rating1, nonceSize)} {
		raw.exec(t, `UPDATE conversations SET rating_comment = ? WHERE tenant = 'ta' AND id = 'c1'`, v)
		if got, err := s.Conversation(ctx, "ta", "c1"); !errors.Is(err, ErrTampered) || got.ID != "" {
			t.Errorf("rating comment %s: Conversation = %+v, %v; want ErrTampered", name, got, err)
		}
		if got, err := s.ListConversations(ctx, "ta", engine.ConversationQuery{}); !errors.Is(err, ErrTampered) || got != nil {
			t.Errorf("rating comment %s: ListConversations = %+v, %v; want ErrTampered", name, got, err)
		}
	}
	raw.exec(t, `UPDATE conversations SET rating_comment = ? WHERE tenant = 'ta' AND id = 'c1'`, rating1)
	if got, err := s.Conversation(ctx, "ta", "c1"); err != nil || got.Rating == nil || got.Rating.Comment != "rating of c1" {
		t.Fatalf("rating once restored = %+v, %v", got, err)
	}

	ev2 := text("note FROM conv_events", "tenant = 'ta' AND conv = 'c2' ORDER BY n LIMIT 1")
	for name, v := range map[string]string{"empty": "", "from another conversation": ev2} {
		raw.exec(t, `UPDATE conv_events SET note = ? WHERE tenant = 'ta' AND conv = 'c1' AND n = 1`, v)
		if got, err := s.Events(ctx, "ta", "c1"); !errors.Is(err, ErrTampered) || got != nil {
			t.Errorf("event note %s: Events = %v, %v; want ErrTampered", name, got, err)
		}
	}

	doc := func(id string) engine.Customer {
		var c engine.Customer
		mustOK(t, "decode", json.Unmarshal([]byte(text("doc FROM customers", "tenant = 'ta' AND id = ?", id)), &c))
		return c
	}
	u1, u2 := doc("u1"), doc("u2")
	moved := func(f func(c *engine.Customer)) engine.Customer {
		c := u1
		c.Attrs = maps.Clone(u1.Attrs)
		f(&c)
		return c
	}
	for name, c := range map[string]engine.Customer{
		"name from another customer": moved(func(c *engine.Customer) { c.DisplayName = u2.DisplayName }),
		"name from an attribute":     moved(func(c *engine.Customer) { c.DisplayName = u1.Attrs["city"] }),
		"attributes swapped":         moved(func(c *engine.Customer) { c.Attrs["city"], c.Attrs["phone"] = u1.Attrs["phone"], u1.Attrs["city"] }),
		"attribute in clear":         moved(func(c *engine.Customer) { c.Attrs["city"] = "上海" }),
		"flipped name":               moved(func(c *engine.Customer) { c.DisplayName = flip(t, c.DisplayName, nonceSize) }),
	} {
		b, _ := json.Marshal(c)
		raw.exec(t, `UPDATE customers SET doc = ? WHERE tenant = 'ta' AND id = 'u1'`, string(b))
		if got, err := s.Customer(ctx, "ta", "u1"); !errors.Is(err, ErrTampered) || got.DisplayName != "" {
			t.Errorf("customer %s: Customer = %+v, %v; want ErrTampered", name, got, err)
		}
	}
}

// TestTamperedDataKey: a wrapped data key altered or moved to another
// tenant does not unwrap.
func TestTamperedDataKey(t *testing.T) {
	ctx := context.Background()
	inner, rs := openSQLite(t, storetest.FixedClock{T: epoch})
	raw := rs.(rawSQLite)
	s := Wrap(inner, newKeys(t, inner, Config{}))
	storetest.Seed(t, s, "ta", "c1")
	storetest.Seed(t, s, "tb", "c1")
	storetest.AppendAll(t, s, msgs("ta", "c1", 1, 1))
	storetest.AppendAll(t, s, msgs("tb", "c1", 1, 1))
	var wa, wb []byte
	mustOK(t, "read key", raw.db.QueryRow(`SELECT wrapped FROM data_keys WHERE tenant = 'ta'`).Scan(&wa))
	mustOK(t, "read key", raw.db.QueryRow(`SELECT wrapped FROM data_keys WHERE tenant = 'tb'`).Scan(&wb))
	for name, w := range map[string][]byte{"flipped": append([]byte{wa[0] ^ 1}, wa[1:]...), "from another tenant": wb} {
		raw.exec(t, `UPDATE data_keys SET wrapped = ? WHERE tenant = 'ta'`, w)
		fresh := newKeys(t, inner, Config{}) // nothing cached
		if _, err := fresh.Check(ctx); !errors.Is(err, ErrTampered) {
			t.Errorf("%s: Check = %v, want ErrTampered", name, err)
		}
		if _, err := Wrap(inner, fresh).Messages(ctx, "ta", "c1", 0, 10); !errors.Is(err, ErrTampered) {
			t.Errorf("%s: Messages = %v, want ErrTampered", name, err)
		}
	}
}

// TestRotation: Rotate gives each tenant a new version that seals new
// messages at once in this process and within Refresh in another one,
// while every old message still opens, in both processes.
func TestRotation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clock := engine.NewManualClock(epoch)
		inner, _ := b.open(t, clock)
		keys := newKeys(t, inner, Config{Clock: clock})
		s := Wrap(inner, keys)
		storetest.Seed(t, s, "ta", "c1")
		storetest.Seed(t, s, "tb", "c1")
		storetest.Seed(t, s, "tc") // no sealed data: no keys to rotate
		storetest.AppendAll(t, s, msgs("ta", "c1", 1, 3))
		storetest.AppendAll(t, s, msgs("tb", "c1", 1, 1))
		// Another node, which has read with version 1.
		other := Wrap(inner, newKeys(t, inner, Config{Clock: clock}))
		_, err := other.Messages(ctx, "ta", "c1", 0, 10)
		mustOK(t, "other node reads", err)

		r, err := keys.Rotate(ctx)
		if err != nil || r != (Rotation{Tenants: 2, Created: 2}) {
			t.Fatalf("Rotate = %+v, %v; want 2 tenants, 2 new versions, none re-wrapped", r, err)
		}
		wantVersion := func(seq int64, v int) {
			t.Helper()
			if body := storedBody(t, inner, "ta", "c1", seq); !strings.HasPrefix(body.Text, fmt.Sprintf("enc1:%d:", v)) {
				t.Fatalf("message %d is sealed as %.10s..., want version %d", seq, body.Text, v)
			}
		}
		storetest.AppendAll(t, s, msgs("ta", "c1", 4, 4))
		storetest.AppendAll(t, other, msgs("ta", "c1", 5, 5))
		clock.Advance(defaultRefresh)
		storetest.AppendAll(t, other, msgs("ta", "c1", 6, 6))
		for seq, v := range []int{1, 1, 1, 2, 1, 2} {
			wantVersion(int64(seq+1), v)
		}
		for name, st := range map[string]*Store{"this node": s, "other node": other, "new node": Wrap(inner, newKeys(t, inner, Config{}))} {
			got, err := st.Messages(ctx, "ta", "c1", 0, 10)
			mustOK(t, name+" reads", err)
			wantMessages(t, name, got, msgs("ta", "c1", 1, 6))
		}

		r, err = keys.Rotate(ctx)
		if err != nil || r != (Rotation{Tenants: 2, Created: 2}) {
			t.Fatalf("second Rotate = %+v, %v", r, err)
		}
		ks, err := inner.DataKeys(ctx, "ta")
		mustOK(t, "data keys", err)
		if len(ks) != 3 || ks[2].Version != 3 {
			t.Fatalf("ta's data keys after two rotations: %+v", ks)
		}
		storetest.AppendAll(t, s, msgs("ta", "c1", 7, 7))
		wantVersion(7, 3)
	})
}

// TestMasterKeyRotation is the operator's procedure: put the new master
// key first, rotate (every data key is re-wrapped), drop the old key. Every
// record still opens; with the old key alone nothing does, and the error
// names the missing key.
func TestMasterKeyRotation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		inner, _ := b.open(t, storetest.FixedClock{T: epoch})
		k1, k2 := masterKey(1), masterKey(2)
		s1 := Wrap(inner, newKeys(t, inner, Config{MasterKeys: [][]byte{k1}}))
		storetest.Seed(t, s1, "ta", "c1")
		storetest.Seed(t, s1, "tb", "c1")
		storetest.AppendAll(t, s1, msgs("ta", "c1", 1, 2))
		storetest.AppendAll(t, s1, msgs("tb", "c1", 1, 1))
		cust := engine.Customer{Tenant: "ta", ID: "u1", DisplayName: "王五", Attrs: map[string]string{"city": "北京"}}
		mustOK(t, "put customer", s1.PutCustomer(ctx, cust))

		both := newKeys(t, inner, Config{MasterKeys: [][]byte{k2, k1}})
		if st, err := both.Check(ctx); err != nil || st != (Status{Tenants: 2, Keys: 2, Stale: 2}) {
			t.Fatalf("Check before the rotation = %+v, %v", st, err)
		}
		if r, err := both.Rotate(ctx); err != nil || r != (Rotation{Tenants: 2, Created: 2, Rewrapped: 2}) {
			t.Fatalf("Rotate = %+v, %v; want 2 tenants, 2 new versions, 2 re-wrapped", r, err)
		}
		if st, err := both.Check(ctx); err != nil || st != (Status{Tenants: 2, Keys: 4}) {
			t.Fatalf("Check after the rotation = %+v, %v", st, err)
		}

		newOnly := newKeys(t, inner, Config{MasterKeys: [][]byte{k2}})
		_, err := newOnly.Check(ctx)
		mustOK(t, "check with the new key only", err)
		s2 := Wrap(inner, newOnly)
		got, err := s2.Messages(ctx, "ta", "c1", 0, 10)
		mustOK(t, "messages with the new key only", err)
		wantMessages(t, "messages with the new key only", got, msgs("ta", "c1", 1, 2))
		if c, err := s2.Customer(ctx, "ta", "u1"); err != nil || c.DisplayName != "王五" || c.Attrs["city"] != "北京" {
			t.Fatalf("customer with the new key only = %+v, %v", c, err)
		}
		storetest.AppendAll(t, s2, msgs("ta", "c1", 3, 3))

		oldOnly := newKeys(t, inner, Config{MasterKeys: [][]byte{k1}})
		_, err = oldOnly.Check(ctx)
		if !errors.Is(err, ErrUnknownMasterKey) || !strings.Contains(err.Error(), MasterKeyID(k2)) {
			t.Fatalf("Check with the old key only = %v; want ErrUnknownMasterKey naming %s", err, MasterKeyID(k2))
		}
		if _, err := Wrap(inner, oldOnly).Messages(ctx, "ta", "c1", 0, 10); !errors.Is(err, ErrUnknownMasterKey) {
			t.Fatalf("Messages with the old key only = %v; want ErrUnknownMasterKey", err)
		}
	})
}

// TestWrongMasterKey: a store sealed under one master key neither reads nor
// takes writes under another, and says which key it needs.
func TestWrongMasterKey(t *testing.T) {
	ctx := context.Background()
	inner, _ := openSQLite(t, storetest.FixedClock{T: epoch})
	s := Wrap(inner, newKeys(t, inner, Config{MasterKeys: [][]byte{masterKey(1)}}))
	storetest.Seed(t, s, "ta", "c1")
	storetest.AppendAll(t, s, msgs("ta", "c1", 1, 1))

	wrong := newKeys(t, inner, Config{MasterKeys: [][]byte{masterKey(3)}})
	_, err := wrong.Check(ctx)
	if !errors.Is(err, ErrUnknownMasterKey) || !strings.Contains(err.Error(), MasterKeyID(masterKey(1))) {
		t.Fatalf("Check = %v; want ErrUnknownMasterKey naming %s", err, MasterKeyID(masterKey(1)))
	}
	ws := Wrap(inner, wrong)
	if _, err := ws.Messages(ctx, "ta", "c1", 0, 10); !errors.Is(err, ErrUnknownMasterKey) {
		t.Fatalf("Messages = %v", err)
	}
	if n, err := ws.Append(ctx, msgs("ta", "c1", 2, 2)); n != 0 || !errors.Is(err, ErrUnknownMasterKey) {
		t.Fatalf("Append = %d, %v; want ErrUnknownMasterKey", n, err)
	}
	if ks, _ := inner.DataKeys(ctx, "ta"); len(ks) != 1 {
		t.Fatalf("the wrong key created data keys: %+v", ks)
	}
}

// TestFirstWritesRace: a tenant's first sealed writes, racing, agree on one
// data key, and the race detector sees the cache shared safely while a
// rotation and time move on.
func TestFirstWritesRace(t *testing.T) {
	ctx := context.Background()
	clock := engine.NewManualClock(epoch)
	inner, _ := openSQLite(t, clock)
	keys := newKeys(t, inner, Config{Clock: clock, Refresh: time.Second})
	s := Wrap(inner, keys)
	const writers, each = 8, 12
	convs := make([]string, writers)
	for i := range convs {
		convs[i] = fmt.Sprintf("c%d", i)
	}
	storetest.Seed(t, s, "ta", convs...)
	storetest.Seed(t, s, "tb", convs...)

	var wg sync.WaitGroup
	errs := make(chan error, 2*writers+2)
	for _, tenant := range []string{"ta", "tb"} {
		for _, c := range convs {
			wg.Go(func() {
				for seq := int64(1); seq <= each; seq++ {
					if _, err := s.Append(ctx, msgs(tenant, c, seq, seq)); err != nil {
						errs <- err
						return
					}
					if got, err := s.Recent(ctx, tenant, c, 1); err != nil || len(got) != 1 || got[0].Seq != seq {
						errs <- fmt.Errorf("%s/%s seq %d: recent %v, %v", tenant, c, seq, got, err)
						return
					}
					if seq == each/2 && c == "c0" {
						clock.Advance(2 * time.Second)
					}
				}
			})
		}
	}
	wg.Go(func() {
		// Rotate once sealing has begun, so both versions are in use.
		storetest.CheckFor(t, 30*time.Second, "first writes", func() bool {
			ks, _ := inner.DataKeys(ctx, "tb")
			return len(ks) > 0
		})
		if _, err := keys.Rotate(ctx); err != nil {
			errs <- err
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	fresh := Wrap(inner, newKeys(t, inner, Config{}))
	for _, tenant := range []string{"ta", "tb"} {
		ks, err := inner.DataKeys(ctx, tenant)
		mustOK(t, "data keys", err)
		if len(ks) > 2 {
			t.Errorf("%s has %d data keys after one rotation: racing first writes created several", tenant, len(ks))
		}
		for _, c := range convs {
			got, err := fresh.Messages(ctx, tenant, c, 0, 100)
			mustOK(t, "messages", err)
			wantMessages(t, tenant+"/"+c, got, msgs(tenant, c, 1, each))
		}
	}
}

func TestParseMasterKeys(t *testing.T) {
	a, b := NewMasterKey(), NewMasterKey()
	keyA, _ := base64.StdEncoding.DecodeString(a)
	keyB, _ := base64.StdEncoding.DecodeString(b)
	for _, tc := range []struct {
		text string
		want [][]byte
	}{
		{a, [][]byte{keyA}},
		{a + "\n", [][]byte{keyA}},
		{"# current\n" + a + "\n\n# old, remove after kefu keys rotate\n  " + b + "  \r\n", [][]byte{keyA, keyB}},
		{a + "," + b, [][]byte{keyA, keyB}},
		{a + ", " + b, [][]byte{keyA, keyB}},
	} {
		got, err := ParseMasterKeys(tc.text)
		if err != nil || !slices.EqualFunc(got, tc.want, bytes.Equal) {
			t.Errorf("ParseMasterKeys(%q) = %x, %v", tc.text, got, err)
		}
	}
	short := base64.StdEncoding.EncodeToString(make([]byte, 16))
	for _, text := range []string{"", "# nothing\n\n", "not base64!", short, a + "\n" + short, a + ",", a[:len(a)-1]} {
		_, err := ParseMasterKeys(text)
		if err == nil {
			t.Errorf("ParseMasterKeys(%q) accepted it", text)
		} else if strings.Contains(err.Error(), a) {
			t.Errorf("the error reveals a key: %v", err)
		}
	}
	if _, err := NewKeys(nil, Config{MasterKeys: [][]byte{keyA[:16]}}); err == nil {
		t.Error("NewKeys took a 16-byte master key")
	}
	if _, err := NewKeys(nil, Config{}); err == nil {
		t.Error("NewKeys took no master key")
	}
	if id := MasterKeyID(keyA); len(id) != 16 || id == MasterKeyID(keyB) {
		t.Errorf("MasterKeyID = %q and %q", id, MasterKeyID(keyB))
	}
}
