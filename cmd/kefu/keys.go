package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kefu-dev/kefu/config"
	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/store/sealed"
)

const keysUsage = `usage:
  kefu keys rotate [settings flags]

rotate gives every tenant a new data key version, which encrypts what is
written from then on, and re-wraps every data key under the current master
key (the first of encryption.master_key or encryption.master_key_file). No
message is rewritten; every one stays readable. Settings flags (-data_dir,
-config, -encryption.master_key_file...) locate the store and the master
keys as for kefu serve. Running servers move to the new versions within a
minute.

To replace the master key: put the new key first in the key file, the old
one after it, and restart every server; run kefu keys rotate; then remove
the old key and restart again. See docs/operations.md.
`

// runKeys implements `kefu keys`.
func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 || args[0] != "rotate" {
		fmt.Fprint(stderr, keysUsage)
		return 2
	}
	cfg, err := config.Load(args[1:], getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "kefu keys: invalid configuration:\n  %s\n", strings.ReplaceAll(err.Error(), "\n", "\n  "))
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, keys, _, err := openStore(ctx, cfg, logger, nil)
	if err != nil {
		fmt.Fprintf(stderr, "kefu keys: opening the store: %v\n", err)
		return 1
	}
	defer store.Close()
	r, err := keys.Rotate(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "kefu keys rotate: %v (after %d tenants; running it again is safe)\n", err, r.Tenants)
		return 1
	}
	fmt.Fprintf(stdout, "kefu keys rotate: %d tenants, %d new data key versions, %d data keys re-wrapped under master key %s\n",
		r.Tenants, r.Created, r.Rewrapped, keys.CurrentMasterKeyID())
	if err := auditRotation(ctx, store, keys.CurrentMasterKeyID()); err != nil {
		fmt.Fprintf(stderr, "kefu keys rotate: the keys are rotated, but the audit log was not written: %v\n", err)
		return 1
	}
	return 0
}

// auditRotation records the rotation in the audit log of every tenant
// whose keys it rotated.
func auditRotation(ctx context.Context, store engine.Store, master string) error {
	all, err := store.AllDataKeys(ctx)
	if err != nil {
		return err
	}
	newest := map[string]int{}
	for _, dk := range all {
		newest[dk.Tenant] = max(newest[dk.Tenant], dk.Version)
	}
	now := time.Now().UTC()
	var entries []engine.AuditEntry
	for _, tenant := range slices.Sorted(maps.Keys(newest)) {
		entries = append(entries, engine.AuditEntry{Tenant: tenant, ID: engine.NewID(now), At: now, Action: engine.AuditKeyRotated,
			Detail: fmt.Sprintf("data key version %d, wrapped by master key %s", newest[tenant], master)})
	}
	if len(entries) == 0 {
		return nil
	}
	return store.AppendAudit(ctx, entries)
}

// openKeys reads the master keys and checks that they unwrap every data key
// db holds, so a missing master key stops the start with its id.
func openKeys(ctx context.Context, cfg config.Config, db engine.Store, logger *slog.Logger) (*sealed.Keys, error) {
	masters, err := masterKeys(ctx, cfg, db, logger)
	if err != nil {
		return nil, err
	}
	keys, err := sealed.NewKeys(db, sealed.Config{MasterKeys: masters})
	if err != nil {
		return nil, err
	}
	st, err := keys.Check(ctx)
	if err != nil {
		return nil, fmt.Errorf("encryption: %w (configure that master key: see docs/operations.md)", err)
	}
	if st.Stale > 0 {
		logger.Warn("encryption: some data keys are wrapped by an older master key; run `kefu keys rotate`, then drop the old key",
			"stale_data_keys", st.Stale, "master_key_id", keys.CurrentMasterKeyID())
	}
	logger.Info("encryption at rest", "master_key_id", keys.CurrentMasterKeyID(), "tenants", st.Tenants, "data_keys", st.Keys)
	return keys, nil
}

// masterKeys returns the configured master keys: encryption.master_key, or
// the key file. With SQLite and nothing configured, the key file is
// <data_dir>/master.key, generated on the first start.
func masterKeys(ctx context.Context, cfg config.Config, db engine.DataKeyStore, logger *slog.Logger) ([][]byte, error) {
	enc := cfg.Encryption
	if enc.MasterKey != "" {
		keys, err := sealed.ParseMasterKeys(enc.MasterKey)
		if err != nil {
			return nil, fmt.Errorf("encryption.master_key: %w", err)
		}
		return keys, nil
	}
	if enc.MasterKeyFile == "" && cfg.Store.MongoURI != "" {
		return nil, errors.New("encryption.master_key or encryption.master_key_file is required with store.mongo_uri")
	}
	path := cfg.MasterKeyPath()
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && enc.MasterKeyFile == "" {
		data, err = generateMasterKey(ctx, path, db, logger)
	}
	if err != nil {
		return nil, fmt.Errorf("encryption: master key file: %w", err)
	}
	if info, err := os.Stat(path); err == nil && info.Mode().Perm()&0o077 != 0 {
		logger.Warn("encryption: the master key file is readable by other users; chmod 600 it", "path", path)
	}
	keys, err := sealed.ParseMasterKeys(string(data))
	if err != nil {
		return nil, fmt.Errorf("encryption: %s: %w", path, err)
	}
	return keys, nil
}

// generateMasterKey writes a new master key to path, which must not exist,
// and returns the file's content. It refuses when the database already
// holds data keys: then the key file was lost or moved, and a new key would
// not open them.
func generateMasterKey(ctx context.Context, path string, db engine.DataKeyStore, logger *slog.Logger) ([]byte, error) {
	existing, err := db.AllDataKeys(ctx)
	if err != nil {
		return nil, err
	}
	if len(existing) > 0 {
		return nil, fmt.Errorf("%s is missing, but the database holds data keys wrapped by master key %s: restore the file from its backup, or set encryption.master_key",
			path, existing[0].MasterKeyID)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	data := []byte(sealed.NewMasterKey() + "\n")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) { // another process generated it first
		return os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err != nil {
		os.Remove(path)
		return nil, err
	}
	logger.Warn("encryption: generated a master key; back it up now and keep the copy apart from the database: without it the stored messages cannot be read",
		"path", path)
	return data, nil
}
