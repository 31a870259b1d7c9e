package config

import (
	"encoding/base64"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaultsAreValid(t *testing.T) {
	cfg, err := Load(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Addr != ":8080" || cfg.DataDir != "./data" || cfg.SQLiteFile() != filepath.Join("data", "kefu.db") {
		t.Fatalf("defaults: %+v", cfg)
	}
}

func TestPrecedenceFileEnvFlags(t *testing.T) {
	file := filepath.Join(t.TempDir(), "kefu.yaml")
	if err := os.WriteFile(file, []byte("http:\n  addr: \":7000\"\nws:\n  burst: 7\n  ping_interval: 5s\nlog:\n  level: debug\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load([]string{"-config", file, "-log.level", "error"},
		env(map[string]string{"KEFU_HTTP_ADDR": ":7001", "KEFU_LOG_LEVEL": "warn", "KEFU_HTTP_ALLOWED_ORIGINS": "https://a.example, https://b.example", "KEFU_ADMIN_PASSWORD": "s3cret-pass"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case cfg.HTTP.Addr != ":7001": // env beats file
		t.Errorf("http.addr = %q", cfg.HTTP.Addr)
	case cfg.Log.Level != "error": // flag beats env
		t.Errorf("log.level = %q", cfg.Log.Level)
	case cfg.WS.Burst != 7 || cfg.WS.PingInterval.D() != 5*time.Second: // file beats default
		t.Errorf("ws = %+v", cfg.WS)
	case len(cfg.HTTP.AllowedOrigins) != 2 || cfg.HTTP.AllowedOrigins[1] != "https://b.example":
		t.Errorf("allowed_origins = %q", cfg.HTTP.AllowedOrigins)
	case cfg.Bootstrap.AdminPassword != "s3cret-pass":
		t.Errorf("KEFU_ADMIN_PASSWORD not applied")
	}
}

func TestInvalidSettingsAreNamed(t *testing.T) {
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"-http.addr", "8080"}, nil, "http.addr"},
		{[]string{"-ws.max_frame_bytes", "10"}, nil, "ws.max_frame_bytes"},
		{nil, map[string]string{"KEFU_WS_PING_INTERVAL": "soon"}, "KEFU_WS_PING_INTERVAL"},
		{[]string{"-log.level", "loud"}, nil, "log.level"},
		{[]string{"-auth.token_secret", "short"}, nil, "auth.token_secret"},
		{[]string{"-bootstrap.tenant", "a b"}, nil, "bootstrap.tenant"},
		{[]string{"-http.allowed_origins", "evil.example"}, nil, "http.allowed_origins"},
		{[]string{"-store.max_batch", "x"}, nil, "-store.max_batch"},
		{nil, map[string]string{"KEFU_MONGO_URI": "localhost:27017"}, "store.mongo_uri"},
		{[]string{"-store.mongo_database", "kefu.prod"}, nil, "store.mongo_database"},
		{[]string{"stray"}, nil, "unexpected argument"},
	}
	for _, tc := range tests {
		_, err := Load(tc.args, env(tc.env), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%v, %v) = %v, want an error naming %q", tc.args, tc.env, err, tc.want)
		}
	}
}

func TestMongoURIAlias(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{nil, ""},
		{map[string]string{"KEFU_MONGO_URI": "mongodb://a/?replicaSet=rs0"}, "mongodb://a/?replicaSet=rs0"},
		{map[string]string{"KEFU_STORE_MONGO_URI": "mongodb://b"}, "mongodb://b"},
		{map[string]string{"KEFU_MONGO_URI": "mongodb://a", "KEFU_STORE_MONGO_URI": "mongodb://b"}, "mongodb://b"},
	} {
		tc.env = maps.Clone(tc.env)
		if tc.env != nil {
			tc.env["KEFU_ENCRYPTION_MASTER_KEY"] = testMasterKey
		}
		cfg, err := Load(nil, env(tc.env), io.Discard)
		if err != nil || cfg.Store.MongoURI != tc.want || cfg.Store.MongoDatabase != "kefu" {
			t.Errorf("env %v: mongo_uri %q database %q, %v; want %q, kefu", tc.env, cfg.Store.MongoURI, cfg.Store.MongoDatabase, err, tc.want)
		}
	}
	// A flag beats the alias, like every flag beats the environment.
	cfg, err := Load([]string{"-store.mongo_uri", "mongodb://c", "-encryption.master_key", testMasterKey}, env(map[string]string{"KEFU_MONGO_URI": "mongodb://a"}), io.Discard)
	if err != nil || cfg.Store.MongoURI != "mongodb://c" {
		t.Errorf("flag over alias: %q, %v", cfg.Store.MongoURI, err)
	}
	// A rejected URI is not echoed: it may hold a password.
	_, err = Load(nil, env(map[string]string{"KEFU_MONGO_URI": "http://kefu:s3cret@db"}), io.Discard)
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("bad URI: %v", err)
	}
}

func TestUnknownFileKeyIsAnError(t *testing.T) {
	file := filepath.Join(t.TempDir(), "kefu.yaml")
	if err := os.WriteFile(file, []byte("htp:\n  addr: \":1\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load([]string{"-config", file}, env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "htp") {
		t.Fatalf("a misspelt key was accepted: %v", err)
	}
}

func TestExampleFileMatchesDefaults(t *testing.T) {
	cfg, err := Load([]string{"-config", "../kefu.example.yaml"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	def := Default()
	// The file writes empty lists as []; the defaults leave them nil.
	for _, l := range []*[]string{&cfg.HTTP.AllowedOrigins, &cfg.HTTP.WidgetFrameAncestors, &cfg.Auth.TokenKeys, &cfg.Cluster.Etcd} {
		if len(*l) == 0 {
			*l = nil
		}
	}
	if !reflect.DeepEqual(cfg, def) {
		t.Fatalf("kefu.example.yaml differs from the defaults:\n%+v\n%+v", cfg, def)
	}
}

// testMasterKey is a valid master key: 32 bytes in base64.
var testMasterKey = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

// TestEncryptionSettings: a master key must be 32 bytes in base64 (several
// allowed, comma-separated), it or a key file but not both, and one of them
// with MongoDB; the errors never echo a key.
func TestEncryptionSettings(t *testing.T) {
	old := base64.StdEncoding.EncodeToString([]byte("fedcba9876543210fedcba9876543210"))
	short := base64.StdEncoding.EncodeToString([]byte("sixteen byte key"))
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string // "" means valid
	}{
		{nil, map[string]string{"KEFU_ENCRYPTION_MASTER_KEY": testMasterKey}, ""},
		{[]string{"-encryption.master_key", testMasterKey + "," + old}, nil, ""},
		{[]string{"-encryption.master_key_file", "/etc/kefu/master.key"}, nil, ""},
		{[]string{"-store.mongo_uri", "mongodb://db/?replicaSet=rs0", "-encryption.master_key_file", "/etc/kefu/master.key"}, nil, ""},
		{nil, map[string]string{"KEFU_ENCRYPTION_MASTER_KEY": short}, "encryption.master_key: key 1 is not 32 bytes"},
		{[]string{"-encryption.master_key", testMasterKey + "," + short}, nil, "key 2 is not 32 bytes"},
		{[]string{"-encryption.master_key", "not base64!"}, nil, "encryption.master_key"},
		{[]string{"-encryption.master_key", testMasterKey, "-encryption.master_key_file", "k"}, nil, "not both"},
		{[]string{"-store.mongo_uri", "mongodb://db/?replicaSet=rs0"}, nil, "required with store.mongo_uri"},
	} {
		_, err := Load(tc.args, env(tc.env), io.Discard)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("Load(%v, %v) = %v, want it valid", tc.args, tc.env, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("Load(%v, %v) = %v, want an error with %q", tc.args, tc.env, err, tc.want)
		case err != nil && (strings.Contains(err.Error(), short) || strings.Contains(err.Error(), testMasterKey)):
			t.Errorf("the error reveals a key: %v", err)
		}
	}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{DataDir: "/var/lib/kefu"}, "/var/lib/kefu/master.key"},
		{Config{DataDir: "/var/lib/kefu", Store: Store{SQLitePath: "/db/kefu.db"}}, "/var/lib/kefu/master.key"},
		{Config{Store: Store{SQLitePath: "/db/kefu.db"}}, "/db/master.key"},
		{Config{DataDir: "/var/lib/kefu", Encryption: Encryption{MasterKeyFile: "/etc/kefu/keys"}}, "/etc/kefu/keys"},
	} {
		if got := tc.cfg.MasterKeyPath(); got != filepath.FromSlash(tc.want) {
			t.Errorf("MasterKeyPath of %+v = %q, want %q", tc.cfg, got, tc.want)
		}
	}
}

// TestClusterSettings: the role and what each needs from the cluster
// settings, named in every error.
func TestClusterSettings(t *testing.T) {
	const mongo, secret = "mongodb://db/?replicaSet=rs0", "0123456789abcdef0123456789abcdef"
	etcd := map[string]string{"KEFU_CLUSTER_ETCD": "http://127.0.0.1:2379, 127.0.0.1:22379"}
	withEnv := func(extra map[string]string) map[string]string {
		m := maps.Clone(etcd)
		maps.Copy(m, extra)
		return m
	}
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string // "" means valid
	}{
		{"default", nil, nil, ""},
		{"unknown role", []string{"-role", "worker"}, nil, "role: must be all, node or edge"},
		{"node without etcd", []string{"-role", "node"}, nil, "role: node needs a cluster to join: set cluster.etcd"},
		{"edge without etcd", nil, map[string]string{"KEFU_ROLE": "edge", "KEFU_AUTH_TOKEN_SECRET": secret}, "role: edge needs a cluster"},
		{"etcd without mongo", nil, etcd, "store.mongo_uri: is required with cluster.etcd for role all"},
		{"node without mongo", []string{"-role", "node"}, etcd, "store.mongo_uri: is required with cluster.etcd for role node"},
		{"node", []string{"-role", "node", "-store.mongo_uri", mongo, "-encryption.master_key", testMasterKey}, etcd, ""},
		{"all", []string{"-store.mongo_uri", mongo, "-encryption.master_key", testMasterKey}, etcd, ""},
		{"edge without keys", []string{"-role", "edge"}, etcd, "auth.token_secret: role edge opens no store"},
		{"edge", []string{"-role", "edge"}, withEnv(map[string]string{"KEFU_AUTH_TOKEN_SECRET": secret}), ""},
		{"edge with rotating keys", []string{"-role", "edge", "-auth.token_keys", "k2:" + secret}, etcd, ""},
		{"https etcd", []string{"-role", "edge", "-auth.token_secret", secret, "-cluster.etcd", "https://e:2379"}, nil, "TLS to etcd is not supported"},
		{"bad endpoint", []string{"-role", "edge", "-auth.token_secret", secret, "-cluster.etcd", "http://e"}, nil, `cluster.etcd: "http://e" must be http://host:port`},
		{"unspecified host", []string{"-role", "edge", "-auth.token_secret", secret, "-cluster.host", "0.0.0.0"}, etcd, "cluster.advertised_host: is required when cluster.host is 0.0.0.0"},
		{"advertised", []string{"-role", "edge", "-auth.token_secret", secret, "-cluster.host", "0.0.0.0", "-cluster.advertised_host", "10.0.0.7", "-cluster.advertised_port", "4020"}, etcd, ""},
		{"advertised port", []string{"-cluster.advertised_port", "70000"}, nil, "cluster.advertised_port"},
		{"join timeout", []string{"-cluster.join_timeout", "0s"}, nil, "cluster.join_timeout"},
	} {
		cfg, err := Load(tc.args, env(tc.env), io.Discard)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v, want it valid", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		case tc.name == "advertised" && (cfg.Cluster.AdvertisedHost != "10.0.0.7" || cfg.Cluster.AdvertisedPort != 4020):
			t.Errorf("advertised address: %+v", cfg.Cluster)
		case tc.name == "node" && (cfg.Role != RoleNode || !reflect.DeepEqual(cfg.Cluster.Etcd, []string{"http://127.0.0.1:2379", "127.0.0.1:22379"})):
			t.Errorf("node: role %q etcd %q", cfg.Role, cfg.Cluster.Etcd)
		}
	}
	// The file's etcd is a list.
	file := filepath.Join(t.TempDir(), "kefu.yaml")
	if err := os.WriteFile(file, []byte("role: node\ncluster:\n  etcd: [http://a:2379, http://b:2379]\n  join_timeout: 5s\nstore:\n  mongo_uri: "+mongo+"\nencryption:\n  master_key: "+testMasterKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load([]string{"-config", file}, env(nil), io.Discard)
	if err != nil || cfg.Role != RoleNode || len(cfg.Cluster.Etcd) != 2 || cfg.Cluster.JoinTimeout.D() != 5*time.Second {
		t.Errorf("from the file: role %q etcd %q join_timeout %v, %v", cfg.Role, cfg.Cluster.Etcd, cfg.Cluster.JoinTimeout, err)
	}
}
