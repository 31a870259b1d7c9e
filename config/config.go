package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kefu-dev/kefu/engine"
)

// Config is everything an operator can set. The yaml tag of each field is
// its name in the file; the environment variable is KEFU_ followed by the
// path in upper case with '_' for '.', and the flag is -path (for example
// http.addr, KEFU_HTTP_ADDR, -http.addr). kefu.example.yaml documents each.
type Config struct {
	// Role is what this process does in a cluster: RoleAll (the zero
	// value is not valid; Default sets it), RoleNode or RoleEdge.
	Role         string       `yaml:"role"`
	DataDir      string       `yaml:"data_dir"`
	HTTP         HTTP         `yaml:"http"`
	WS           WS           `yaml:"ws"`
	Store        Store        `yaml:"store"`
	Encryption   Encryption   `yaml:"encryption"`
	Cluster      Cluster      `yaml:"cluster"`
	Conversation Conversation `yaml:"conversation"`
	Auth         Auth         `yaml:"auth"`
	Bot          Bot          `yaml:"bot"`
	Log          Log          `yaml:"log"`
	Bootstrap    Bootstrap    `yaml:"bootstrap"`
	Limits       Limits       `yaml:"limits"`
	WeChat       WeChat       `yaml:"wechat"`
}

// WeChat configures calls to WeChat's server API.
type WeChat struct {
	// APIBase is the API's origin (code2session is APIBase +
	// /sns/jscode2session).
	APIBase string `yaml:"api_base"`
}

// Limits bound how fast one client may call the HTTP API. WebSocket
// frames have their own limits (WS).
type Limits struct {
	// AuthPerIPPerMinute bounds sign-in and token requests (login,
	// refresh, visitor and user tokens) from one IP address.
	AuthPerIPPerMinute int `yaml:"auth_per_ip_per_minute"`
	// LoginPerAccountPerMinute bounds login attempts at one account from
	// anywhere; failures beyond auth.lockout_threshold lock it.
	LoginPerAccountPerMinute int `yaml:"login_per_account_per_minute"`
	// APIPerIPPerSecond and APIPerAccountPerSecond bound API requests from
	// one IP address and by one signed-in party; bursts of twice as many
	// pass.
	APIPerIPPerSecond      float64 `yaml:"api_per_ip_per_second"`
	APIPerAccountPerSecond float64 `yaml:"api_per_account_per_second"`
}

// Bot configures the AI/FAQ bot that answers first.
type Bot struct {
	Enabled        bool       `yaml:"enabled"`
	MaxFailedTurns int        `yaml:"max_failed_turns"`
	LLM            LLM        `yaml:"llm"`
	Embeddings     Embeddings `yaml:"embeddings"`
}

// Embeddings configures the optional re-ranking of FAQ candidates with an
// OpenAI-compatible embeddings endpoint. Empty BaseURL: lexical only.
type Embeddings struct {
	BaseURL string `yaml:"base_url"`
	Model   string `yaml:"model"`
	APIKey  string `yaml:"api_key"`
}

// LLM configures an OpenAI-compatible chat-completions endpoint. Empty
// BaseURL: the bot answers from the FAQ only.
type LLM struct {
	BaseURL string   `yaml:"base_url"`
	Model   string   `yaml:"model"`
	APIKey  string   `yaml:"api_key"`
	Timeout Duration `yaml:"timeout"`
}

// HTTP configures the edge's listener.
type HTTP struct {
	Addr           string   `yaml:"addr"`
	AllowedOrigins []string `yaml:"allowed_origins"`
	// WidgetFrameAncestors are the origins whose pages may show the chat
	// widget (/chat/) in a frame. Empty: any site may.
	WidgetFrameAncestors []string `yaml:"widget_frame_ancestors"`
	ShutdownTimeout      Duration `yaml:"shutdown_timeout"`
	// TLSCertFile and TLSKeyFile (PEM) switch the listener to HTTPS, with
	// HSTS and secure cookies. Empty: plain HTTP (behind a TLS proxy, set
	// SecureCookies).
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// SecureCookies marks cookies Secure when TLS ends at a proxy in
	// front of Kefu. Implied by TLSCertFile.
	SecureCookies bool `yaml:"secure_cookies"`
}

// WS configures WebSocket limits.
type WS struct {
	MaxFrameBytes int      `yaml:"max_frame_bytes"`
	SendQueue     int      `yaml:"send_queue"`
	RatePerSec    float64  `yaml:"rate_per_sec"`
	Burst         int      `yaml:"burst"`
	FloodLimit    int      `yaml:"flood_limit"`
	PingInterval  Duration `yaml:"ping_interval"`
	HelloTimeout  Duration `yaml:"hello_timeout"`
	WriteTimeout  Duration `yaml:"write_timeout"`
}

// Store configures persistence: the embedded SQLite file, or MongoDB when
// MongoURI is set.
type Store struct {
	SQLitePath string `yaml:"sqlite_path"`
	// MongoURI switches the store to MongoDB (a replica set, for majority
	// writes). Empty: SQLite. KEFU_MONGO_URI is accepted for
	// KEFU_STORE_MONGO_URI.
	MongoURI      string   `yaml:"mongo_uri"`
	MongoDatabase string   `yaml:"mongo_database"`
	MaxBatch      int      `yaml:"max_batch"`
	StoreTimeout  Duration `yaml:"timeout"`
}

// Encryption configures encryption at rest (store/sealed): the master key
// that wraps each tenant's data keys. Set at most one of the two fields.
type Encryption struct {
	// MasterKey is a base64-encoded 32-byte key, or several separated by
	// commas: the first is current, the others older keys that still
	// unwrap the data keys they wrapped. Empty: MasterKeyFile, or with
	// SQLite <data_dir>/master.key, generated on the first start.
	MasterKey string `yaml:"master_key"`
	// MasterKeyFile names a file of such keys, one per line, the current
	// one first. Empty: see MasterKey.
	MasterKeyFile string `yaml:"master_key_file"`
}

// masterKeySize is the size of a master key: AES-256.
const masterKeySize = 32

// MasterKeyPath is the file the master keys are read from when
// Encryption.MasterKey is empty: Encryption.MasterKeyFile, or master.key in
// the data directory (without one, beside the SQLite file).
func (c Config) MasterKeyPath() string {
	switch {
	case c.Encryption.MasterKeyFile != "":
		return c.Encryption.MasterKeyFile
	case c.DataDir != "":
		return filepath.Join(c.DataDir, "master.key")
	default:
		return filepath.Join(filepath.Dir(c.Store.SQLitePath), "master.key")
	}
}

// The roles of a process (Config.Role).
const (
	// RoleAll hosts every actor kind, serves HTTP and WebSockets and runs
	// the timer scheduler: a whole Kefu in one process.
	RoleAll = "all"
	// RoleNode hosts the actor kinds and runs the timer scheduler; its
	// HTTP listener serves only /healthz, /readyz and /metrics.
	RoleNode = "node"
	// RoleEdge serves HTTP and WebSockets and forwards into the cluster
	// as a client member: no actor kinds, no store, no scheduler.
	RoleEdge = "edge"
)

// Cluster configures the actor system and how members find each other.
type Cluster struct {
	Name string `yaml:"name"`
	// Host and Port are where this member's remote listens. Port 0 picks
	// a free port.
	Host string `yaml:"host"`
	Port int    `yaml:"port"`
	// AdvertisedHost and AdvertisedPort are the address other members
	// dial (behind NAT, in containers). Empty and 0: Host and Port.
	AdvertisedHost string `yaml:"advertised_host"`
	AdvertisedPort int    `yaml:"advertised_port"`
	// Etcd lists the etcd endpoints (http://host:port) whose membership
	// records make the cluster. Empty: a single member in this process,
	// no etcd.
	Etcd []string `yaml:"etcd"`
	// JoinTimeout bounds joining the cluster at start, etcd retries
	// included.
	JoinTimeout    Duration `yaml:"join_timeout"`
	RequestTimeout Duration `yaml:"request_timeout"`
}

// Conversation configures conversation actors.
type Conversation struct {
	Recent      int      `yaml:"recent"`
	IdleTimeout Duration `yaml:"idle_timeout"`
	// TimerInterval is how often the scheduler looks for due timers (SLA,
	// idle, queue, hold); timers fire within about this much of their time.
	TimerInterval Duration `yaml:"timer_interval"`
}

// Auth configures tokens and staff sign-in.
type Auth struct {
	// TokenSecret signs tokens. Empty: one is generated on first start and
	// kept in the store, so every node of a cluster shares it.
	TokenSecret string `yaml:"token_secret"`
	// TokenKeys replaces TokenSecret when signing keys rotate: entries
	// "kid:secret", the first signing new tokens, the others still
	// accepted until the tokens they signed expire. Empty: TokenSecret.
	TokenKeys []string `yaml:"token_keys"`
	// StaffTokenTTL is the life of a staff access token; a refresh token
	// (RefreshTokenTTL from login) buys the next.
	StaffTokenTTL   Duration `yaml:"staff_token_ttl"`
	RefreshTokenTTL Duration `yaml:"refresh_token_ttl"`
	VisitorTokenTTL Duration `yaml:"visitor_token_ttl"`
	// LockoutThreshold failed logins in a row lock an account for
	// LockoutDuration.
	LockoutThreshold int      `yaml:"lockout_threshold"`
	LockoutDuration  Duration `yaml:"lockout_duration"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// Bootstrap configures what the first start on an empty store creates.
type Bootstrap struct {
	Tenant        string `yaml:"tenant"`
	AdminUser     string `yaml:"admin_user"`
	AdminPassword string `yaml:"admin_password"`
}

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		Role:    RoleAll,
		DataDir: "./data",
		HTTP:    HTTP{Addr: ":8080", ShutdownTimeout: Duration(15 * time.Second)},
		WS: WS{
			MaxFrameBytes: 64 << 10, SendQueue: 256, RatePerSec: 20, Burst: 40, FloodLimit: 100,
			PingInterval: Duration(25 * time.Second), HelloTimeout: Duration(10 * time.Second),
			WriteTimeout: Duration(10 * time.Second),
		},
		Store: Store{MongoDatabase: "kefu", MaxBatch: 512, StoreTimeout: Duration(10 * time.Second)},
		Cluster: Cluster{Name: "kefu", Host: "127.0.0.1", JoinTimeout: Duration(time.Minute),
			RequestTimeout: Duration(5 * time.Second)},
		Conversation: Conversation{Recent: 200, IdleTimeout: Duration(2 * time.Minute), TimerInterval: Duration(time.Second)},
		Auth: Auth{StaffTokenTTL: Duration(15 * time.Minute), RefreshTokenTTL: Duration(7 * 24 * time.Hour),
			VisitorTokenTTL: Duration(30 * 24 * time.Hour), LockoutThreshold: 5, LockoutDuration: Duration(15 * time.Minute)},
		WeChat:    WeChat{APIBase: "https://api.weixin.qq.com"},
		Limits:    Limits{AuthPerIPPerMinute: 30, LoginPerAccountPerMinute: 10, APIPerIPPerSecond: 200, APIPerAccountPerSecond: 50},
		Bot:       Bot{Enabled: true, MaxFailedTurns: 3, LLM: LLM{Timeout: Duration(15 * time.Second)}},
		Log:       Log{Level: "info", Format: "text"},
		Bootstrap: Bootstrap{Tenant: "demo", AdminUser: "admin"},
	}
}

// SQLiteFile is the SQLite database path: Store.SQLitePath, or kefu.db in
// the data directory.
func (c Config) SQLiteFile() string {
	if c.Store.SQLitePath != "" {
		return c.Store.SQLitePath
	}
	return filepath.Join(c.DataDir, "kefu.db")
}

// Validate reports every invalid setting, one per line.
func (c Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	if c.DataDir == "" && c.Store.SQLitePath == "" {
		bad("data_dir", "must not be empty")
	}
	if _, port, err := net.SplitHostPort(c.HTTP.Addr); err != nil {
		bad("http.addr", "must be host:port or :port (got %q)", c.HTTP.Addr)
	} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		bad("http.addr", "port must be 0-65535 (got %q)", port)
	}
	for _, o := range c.HTTP.AllowedOrigins {
		if !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
			bad("http.allowed_origins", "%q must start with http:// or https://", o)
		}
	}
	for _, o := range c.HTTP.WidgetFrameAncestors {
		if !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") || strings.ContainsAny(o, " ;,'") {
			bad("http.widget_frame_ancestors", "%q must be an origin such as https://shop.example", o)
		}
	}
	if c.WS.MaxFrameBytes < 1024 || c.WS.MaxFrameBytes > 16<<20 {
		bad("ws.max_frame_bytes", "must be from 1024 to 16777216 (got %d)", c.WS.MaxFrameBytes)
	}
	if c.WS.SendQueue < 8 || c.WS.SendQueue > 65536 {
		bad("ws.send_queue", "must be from 8 to 65536 (got %d)", c.WS.SendQueue)
	}
	if c.WS.RatePerSec <= 0 || c.WS.Burst < 1 || c.WS.FloodLimit < 1 {
		bad("ws.rate_per_sec", "rate_per_sec, burst and flood_limit must be positive")
	}
	positive := map[string]Duration{
		"http.shutdown_timeout": c.HTTP.ShutdownTimeout, "ws.ping_interval": c.WS.PingInterval,
		"ws.hello_timeout": c.WS.HelloTimeout, "ws.write_timeout": c.WS.WriteTimeout, "store.timeout": c.Store.StoreTimeout,
		"cluster.request_timeout": c.Cluster.RequestTimeout, "cluster.join_timeout": c.Cluster.JoinTimeout,
		"conversation.idle_timeout":   c.Conversation.IdleTimeout,
		"conversation.timer_interval": c.Conversation.TimerInterval,
		"auth.staff_token_ttl":        c.Auth.StaffTokenTTL, "auth.visitor_token_ttl": c.Auth.VisitorTokenTTL,
		"auth.refresh_token_ttl": c.Auth.RefreshTokenTTL, "auth.lockout_duration": c.Auth.LockoutDuration,
	}
	for _, name := range sortedKeys(positive) {
		if positive[name] <= 0 {
			bad(name, "must be a positive duration such as 30s or 5m")
		}
	}
	if u := c.Store.MongoURI; u != "" && !strings.HasPrefix(u, "mongodb://") && !strings.HasPrefix(u, "mongodb+srv://") {
		// Not echoed: a URI may hold a password.
		bad("store.mongo_uri", "must start with mongodb:// or mongodb+srv://")
	}
	if d := c.Store.MongoDatabase; d == "" || len(d) > 63 || strings.ContainsAny(d, "/\\. \"$\x00") {
		bad("store.mongo_database", "must be 1-63 characters without / \\ . space \" or $ (got %q)", d)
	}
	switch e := c.Encryption; {
	case e.MasterKey != "" && e.MasterKeyFile != "":
		bad("encryption.master_key", "set it or encryption.master_key_file, not both")
	case e.MasterKey != "":
		for i, k := range strings.Split(e.MasterKey, ",") {
			// Not echoed: it is a secret.
			if b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(k)); err != nil || len(b) != masterKeySize {
				bad("encryption.master_key", "key %d is not %d bytes in base64 (make one with: openssl rand -base64 32)", i+1, masterKeySize)
			}
		}
	case e.MasterKeyFile == "" && c.Store.MongoURI != "":
		bad("encryption.master_key", "a master key (or encryption.master_key_file) is required with store.mongo_uri: every node of a cluster must use the same one")
	}
	if c.Store.MaxBatch < 1 || c.Store.MaxBatch > 10000 {
		bad("store.max_batch", "must be from 1 to 10000 (got %d)", c.Store.MaxBatch)
	}
	if c.Cluster.Port < 0 || c.Cluster.Port > 65535 {
		bad("cluster.port", "must be 0-65535 (got %d)", c.Cluster.Port)
	}
	if c.Cluster.Name == "" {
		bad("cluster.name", "must not be empty")
	}
	c.validateCluster(bad)
	if c.Conversation.Recent < 10 || c.Conversation.Recent > 100000 {
		bad("conversation.recent", "must be from 10 to 100000 (got %d)", c.Conversation.Recent)
	}
	if c.Bot.MaxFailedTurns < 1 || c.Bot.MaxFailedTurns > 20 {
		bad("bot.max_failed_turns", "must be from 1 to 20 (got %d)", c.Bot.MaxFailedTurns)
	}
	if l := c.Bot.LLM; l.BaseURL != "" {
		if !strings.HasPrefix(l.BaseURL, "http://") && !strings.HasPrefix(l.BaseURL, "https://") {
			bad("bot.llm.base_url", "must start with http:// or https:// (got %q)", l.BaseURL)
		}
		if l.Model == "" {
			bad("bot.llm.model", "is required when bot.llm.base_url is set")
		}
		if l.Timeout <= 0 {
			bad("bot.llm.timeout", "must be a positive duration")
		}
	}
	if e := c.Bot.Embeddings; e.BaseURL != "" {
		if !strings.HasPrefix(e.BaseURL, "http://") && !strings.HasPrefix(e.BaseURL, "https://") {
			bad("bot.embeddings.base_url", "must start with http:// or https:// (got %q)", e.BaseURL)
		}
		if e.Model == "" {
			bad("bot.embeddings.model", "is required when bot.embeddings.base_url is set")
		}
	}
	if s := c.Auth.TokenSecret; s != "" && len(s) < 32 {
		bad("auth.token_secret", "must be at least 32 characters (got %d)", len(s))
	}
	if _, _, err := c.Auth.Keys(); err != nil {
		bad("auth.token_keys", "%v", err)
	}
	if c.Auth.LockoutThreshold < 1 || c.Auth.LockoutThreshold > 100 {
		bad("auth.lockout_threshold", "must be from 1 to 100 (got %d)", c.Auth.LockoutThreshold)
	}
	if c.Auth.StaffTokenTTL > c.Auth.RefreshTokenTTL {
		bad("auth.staff_token_ttl", "must not be longer than auth.refresh_token_ttl")
	}
	if b := c.WeChat.APIBase; !strings.HasPrefix(b, "https://") && !strings.HasPrefix(b, "http://") {
		bad("wechat.api_base", "must start with https:// (got %q)", b)
	}
	if (c.HTTP.TLSCertFile == "") != (c.HTTP.TLSKeyFile == "") {
		bad("http.tls_cert_file", "tls_cert_file and tls_key_file go together")
	}
	if l := c.Limits; l.AuthPerIPPerMinute < 1 || l.LoginPerAccountPerMinute < 1 || l.APIPerIPPerSecond <= 0 || l.APIPerAccountPerSecond <= 0 {
		bad("limits", "every limit must be positive")
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error (got %q)", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "must be text or json (got %q)", c.Log.Format)
	}
	if !engine.ValidID(c.Bootstrap.Tenant) {
		bad("bootstrap.tenant", "must be 1-64 letters, digits, '-', '_' or '.' (got %q)", c.Bootstrap.Tenant)
	}
	if c.Bootstrap.AdminUser == "" {
		bad("bootstrap.admin_user", "must not be empty")
	}
	if p := c.Bootstrap.AdminPassword; p != "" && len(p) < 8 {
		bad("bootstrap.admin_password", "must be at least 8 characters")
	}
	return errors.Join(errs...)
}

// validateCluster checks the role and what it needs from the cluster
// settings.
func (c Config) validateCluster(bad func(name, format string, args ...any)) {
	switch c.Role {
	case RoleAll, RoleNode, RoleEdge:
	default:
		bad("role", "must be all, node or edge (got %q)", c.Role)
		return
	}
	if c.Cluster.AdvertisedPort < 0 || c.Cluster.AdvertisedPort > 65535 {
		bad("cluster.advertised_port", "must be 0-65535 (got %d)", c.Cluster.AdvertisedPort)
	}
	for _, e := range c.Cluster.Etcd {
		if err := checkEtcdEndpoint(e); err != nil {
			bad("cluster.etcd", "%q %v", e, err)
		}
	}
	if len(c.Cluster.Etcd) == 0 {
		if c.Role != RoleAll {
			bad("role", "%s needs a cluster to join: set cluster.etcd (the single-process default is role all)", c.Role)
		}
		return
	}
	if ip := net.ParseIP(c.Cluster.Host); ip != nil && ip.IsUnspecified() && c.Cluster.AdvertisedHost == "" {
		bad("cluster.advertised_host", "is required when cluster.host is %s: other members cannot dial that address", c.Cluster.Host)
	}
	if c.Role != RoleEdge && c.Store.MongoURI == "" {
		bad("store.mongo_uri", "is required with cluster.etcd for role %s: every node must share one MongoDB (a SQLite file cannot be shared)", c.Role)
	}
	if c.Role == RoleEdge && c.Auth.TokenSecret == "" && len(c.Auth.TokenKeys) == 0 {
		bad("auth.token_secret", "role edge opens no store, where a generated key would be kept: set auth.token_secret or auth.token_keys, the same on every member that serves HTTP")
	}
}

// checkEtcdEndpoint accepts http://host:port (the scheme may be left
// out). TLS to etcd is not supported yet.
func checkEtcdEndpoint(e string) error {
	hostport := e
	if rest, ok := strings.CutPrefix(e, "http://"); ok {
		hostport = rest
	} else if strings.Contains(e, "://") {
		return errors.New("must be http://host:port (TLS to etcd is not supported)")
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || host == "" {
		return errors.New("must be http://host:port")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return errors.New("has no valid port")
	}
	return nil
}

// Duration is a time.Duration written as "30s", "5m" or "1h30m".
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration such as 30s or 5m", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Keys returns the token signing keys by key id and the id of the one
// that signs: TokenKeys when set, else TokenSecret under "k1". An empty
// map means neither is set (the store then keeps a generated key).
func (a Auth) Keys() (current string, keys map[string][]byte, err error) {
	if len(a.TokenKeys) == 0 {
		if a.TokenSecret == "" {
			return "", nil, nil
		}
		return "k1", map[string][]byte{"k1": []byte(a.TokenSecret)}, nil
	}
	keys = make(map[string][]byte, len(a.TokenKeys))
	for i, entry := range a.TokenKeys {
		kid, secret, ok := strings.Cut(entry, ":")
		switch {
		case !ok || !engine.ValidID(kid):
			return "", nil, fmt.Errorf("entry %d is not kid:secret with a kid of letters, digits, '-', '_' or '.'", i+1)
		case len(secret) < 32:
			return "", nil, fmt.Errorf("the secret of key %q must be at least 32 characters", kid)
		case keys[kid] != nil:
			return "", nil, fmt.Errorf("key id %q appears twice", kid)
		}
		keys[kid] = []byte(secret)
		if i == 0 {
			current = kid
		}
	}
	return current, keys, nil
}
