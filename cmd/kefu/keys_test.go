package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kefu-dev/kefu/config"
	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/store/sealed"
)

// TestKeysRotate is the operator's master key rotation through the real
// wiring, on each store: messages written under master key 1; the new key
// put first in the key file; `kefu keys rotate`; the old key removed. The
// server then reads every old message and seals new ones with data key
// version 2, and with the old key alone it does not start, naming the key
// it lacks. The database never holds a body in clear.
func TestKeysRotate(t *testing.T) { forEachStore(t, testKeysRotate) }

func testKeysRotate(t *testing.T, cfg config.Config) {
	k1, k2 := sealed.NewMasterKey(), sealed.NewMasterKey()
	keyFile := filepath.Join(t.TempDir(), "master.key")
	writeKeys := func(keys ...string) {
		t.Helper()
		if err := os.WriteFile(keyFile, []byte(strings.Join(keys, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeKeys(k1)
	cfg.Encryption.MasterKey, cfg.Encryption.MasterKeyFile = "", keyFile

	s := startServer(t, cfg)
	userToken, _ := s.visitor(t)
	conv := s.newConversation(t, userToken)
	user := dial(t, s, "/v1/ws/user", nil)
	user.hello(userToken)
	texts := []string{"旧消息一 ZEBRA-OLD-1", "旧消息二 ZEBRA-OLD-2"}
	for i, text := range texts {
		user.sendText(conv, fmt.Sprintf("old-%d", i), text)
		user.ack(fmt.Sprintf("old-%d", i))
	}
	s.stop(t)
	wantSealed(t, cfg, conv, map[int64]int{1: 1, 2: 1})

	// The new key first, the old one still there; rotate.
	writeKeys(k2, k1)
	var out, errOut bytes.Buffer
	args := []string{"keys", "rotate", "-encryption.master_key_file", keyFile}
	if cfg.Store.MongoURI != "" {
		args = append(args, "-store.mongo_uri", cfg.Store.MongoURI, "-store.mongo_database", cfg.Store.MongoDatabase)
	} else {
		args = append(args, "-data_dir", cfg.DataDir)
	}
	noEnv := func(string) string { return "" }
	if code := run(context.Background(), args, &out, &errOut, noEnv); code != 0 {
		t.Fatalf("kefu keys rotate: exit %d, %s", code, errOut.String())
	}
	id2 := sealed.MasterKeyID(decodeKey(t, k2))
	if want := "1 tenants, 1 new data key versions, 1 data keys re-wrapped under master key " + id2; !strings.Contains(out.String(), want) {
		t.Fatalf("kefu keys rotate printed %q, want %q", out.String(), want)
	}
	wantSealed(t, cfg, conv, map[int64]int{1: 1, 2: 1})

	// The old key removed: the old messages read, new ones use version 2.
	writeKeys(k2)
	s2 := startServer(t, cfg)
	// The rotation is in the tenant's audit log.
	admin2, _ := s2.staffToken(t)
	var log struct{ Entries []engine.AuditEntry }
	if code := s2.api(t, "GET", "/v1/audit?action=key_rotated", admin2, nil, &log); code != 200 || len(log.Entries) != 1 ||
		!strings.Contains(log.Entries[0].Detail, "data key version 2, wrapped by master key "+id2) {
		t.Errorf("audit of the rotation: %d %+v", code, log.Entries)
	}
	user2 := dial(t, s2, "/v1/ws/user", nil)
	user2.hello(userToken)
	user2.sendText(conv, "new-0", "新消息 ZEBRA-NEW")
	user2.ack("new-0")
	msgs, _ := user2.resumeAll(conv, 0, 10)
	if len(msgs) != 3 || msgs[0].Body.Text != texts[0] || msgs[1].Body.Text != texts[1] || msgs[2].Body.Text != "新消息 ZEBRA-NEW" {
		t.Fatalf("after the rotation the conversation holds %+v", msgs)
	}
	s2.stop(t)
	wantSealed(t, cfg, conv, map[int64]int{1: 1, 2: 1, 3: 2})

	// With the old key alone the data keys do not unwrap.
	writeKeys(k1)
	err := serve(context.Background(), cfg, slog.New(slog.DiscardHandler), io.Discard, serveHooks{})
	if err == nil || !strings.Contains(err.Error(), id2) {
		t.Fatalf("serve with the old master key only: %v; want an error naming master key %s", err, id2)
	}
}

// wantSealed opens the database without sealing and checks that each
// message of conv in the demo tenant is stored sealed, under the data key
// version versions gives for its seq, with no ZEBRA marker in clear.
func wantSealed(t *testing.T, cfg config.Config, conv string, versions map[int64]int) {
	t.Helper()
	db, _, err := openDatabase(context.Background(), cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stored, err := db.Messages(context.Background(), "demo", conv, 0, 100)
	if err != nil || len(stored) != len(versions) {
		t.Fatalf("stored messages: %d, %v; want %d", len(stored), err, len(versions))
	}
	for _, m := range stored {
		prefix := fmt.Sprintf("enc1:%d:", versions[m.Seq])
		if m.Body.Type != "sealed" || !strings.HasPrefix(m.Body.Text, prefix) || strings.Contains(m.Body.Text, "ZEBRA") {
			t.Fatalf("message %d is stored as %+v, want it sealed as %s...", m.Seq, m.Body, prefix)
		}
	}
}

func decodeKey(t *testing.T, k string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKeysGeneratedOnFirstStart: with SQLite and no master key configured,
// the first start writes <data_dir>/master.key (mode 0600) and later starts
// use it; if it goes missing once the database holds data keys, the server
// refuses to start rather than make a new key that would open nothing.
func TestKeysGeneratedOnFirstStart(t *testing.T) {
	cfg := testConfig(t.TempDir())
	path := filepath.Join(cfg.DataDir, "master.key")
	s := startServer(t, cfg)
	userToken, _ := s.visitor(t)
	conv := s.newConversation(t, userToken)
	user := dial(t, s, "/v1/ws/user", nil)
	user.hello(userToken)
	user.sendText(conv, "m1", "第一条消息")
	user.ack("m1")
	s.stop(t)
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("master.key: %v, %v; want a file of mode 0600", info, err)
	}
	first, _ := os.ReadFile(path)
	if _, err := sealed.ParseMasterKeys(string(first)); err != nil {
		t.Fatalf("master.key holds %d bytes that do not parse: %v", len(first), err)
	}

	s2 := startServer(t, cfg)
	user2 := dial(t, s2, "/v1/ws/user", nil)
	user2.hello(userToken)
	if msgs, _ := user2.resumeAll(conv, 0, 10); len(msgs) != 1 || msgs[0].Body.Text != "第一条消息" {
		t.Fatalf("after a restart: %+v", msgs)
	}
	s2.stop(t)
	if again, _ := os.ReadFile(path); !bytes.Equal(again, first) {
		t.Fatal("the second start replaced master.key")
	}

	if err := os.Rename(path, path+".moved"); err != nil {
		t.Fatal(err)
	}
	err = serve(context.Background(), cfg, slog.New(slog.DiscardHandler), io.Discard, serveHooks{})
	if err == nil || !strings.Contains(err.Error(), "restore") {
		t.Fatalf("serve without master.key: %v; want it refused", err)
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("a new master.key was generated over a database whose data keys it cannot open")
	}
}

// TestKeysCommandUsage: `kefu help` names the command, which refuses
// anything but rotate.
func TestKeysCommandUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	noEnv := func(string) string { return "" }
	if code := run(context.Background(), []string{"help"}, &out, &errOut, noEnv); code != 0 || !strings.Contains(out.String(), "kefu keys rotate") {
		t.Fatalf("kefu help: %d %q", code, out.String())
	}
	for _, args := range [][]string{{"keys"}, {"keys", "spin"}} {
		errOut.Reset()
		if code := run(context.Background(), args, &out, &errOut, noEnv); code != 2 || !strings.Contains(errOut.String(), "kefu keys rotate") {
			t.Errorf("kefu %v: exit %d, %q; want usage and exit 2", args, code, errOut.String())
		}
	}
}
