package bench

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kefu-dev/kefu/engine"
)

// Config is one harness run. The zero value of each field means the default
// written next to it.
type Config struct {
	// URL is the base HTTP URL of a running Kefu. Empty: http://127.0.0.1:8080.
	URL string
	// AgentURL is where agent sockets connect, for a cluster whose agents
	// use another edge than its customers. Empty: URL.
	AgentURL string
	// Tenant is the tenant to load. Empty: demo.
	Tenant string
	// AdminUser and AdminPassword log in the staff account whose token
	// every agent connection uses. AdminUser empty: admin.
	AdminUser, AdminPassword string

	// Users is how many customer WebSockets to open; each owns
	// Convs/Users conversations. Zero: Convs.
	Users int
	// Agents is how many staff WebSockets to open; each follows
	// Convs/Agents conversations. Zero: 10.
	Agents int
	// Convs is how many conversations carry the load. Zero: 100.
	Convs int
	// Rate is the scheduled events per second: messages of users and
	// agents together, and escalations. Zero: 200.
	Rate float64
	// Duration is how long the load runs. Zero: 10s.
	Duration time.Duration
	// Mix says what the load is made of. Zero: DefaultMix.
	Mix Mix
	// Baseline says when the raw echo baseline is measured: "before" the
	// load (default), "during" it, or "off".
	Baseline string
	// Drain bounds the wait for the last acks and deliveries after the
	// load. Zero: 30s.
	Drain time.Duration

	// Idle, when positive, selects the idle-connection mode: open this many
	// WebSockets and hold them for Duration.
	Idle int
	// Sources is how many loopback source addresses (127.0.0.1, .2, ...)
	// connections are spread over; each has about 28k ephemeral ports.
	// Zero: enough for the connections to open.
	Sources int
	// DialConcurrency bounds connections being opened at once. Zero: 64.
	DialConcurrency int

	// Log receives progress lines. Nil: discarded.
	Log io.Writer
}

// Mix weighs what the load does. User, Agent, FAQ and Escalate are
// relative weights of the scheduled events (each is one of them);
// Reconnect is the number of user reconnections per event (0.01: one user
// drops its socket and resumes for every hundred).
type Mix struct {
	User  float64 // a customer writes to their conversation
	Agent float64 // the agent following the conversation answers
	// FAQ: a customer asks a knowledge-base question and waits for the
	// bot's first answer (bot_reply_ms). Until the bot lands, the message
	// is stored and delivered like any user message and no answer comes.
	FAQ float64
	// Escalate: a customer whose conversation is still with the bot asks
	// for a person; routing assigns it to an online agent, who answers and
	// closes it (escalation_ms). Escalations are spread evenly over the
	// schedule, so their number is known before the load starts.
	Escalate  float64
	Reconnect float64
}

// DefaultMix is half customer messages, half agent replies, and one
// customer reconnection per 200 messages.
var DefaultMix = Mix{User: 1, Agent: 1, Reconnect: 0.005}

// ParseMix reads "user=1,agent=1,faq=0,reconnect=0.005" (any subset; the
// keys not given are zero; "user:agent" ratios such as "3:1" are also
// accepted).
func ParseMix(s string) (Mix, error) {
	var m Mix
	s = strings.TrimSpace(s)
	if s == "" {
		return DefaultMix, nil
	}
	if a, b, ok := strings.Cut(s, ":"); ok && !strings.Contains(s, "=") {
		u, err1 := strconv.ParseFloat(a, 64)
		g, err2 := strconv.ParseFloat(b, 64)
		if err1 != nil || err2 != nil {
			return m, fmt.Errorf("bench: mix %q: want user:agent such as 1:1", s)
		}
		m.User, m.Agent, m.Reconnect = u, g, DefaultMix.Reconnect
		return m, m.validate()
	}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		f, err := strconv.ParseFloat(v, 64)
		if !ok || err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
			return m, fmt.Errorf("bench: mix %q: %q is not key=non-negative number", s, part)
		}
		switch k {
		case "user":
			m.User = f
		case "agent":
			m.Agent = f
		case "faq":
			m.FAQ = f
		case "escalate":
			m.Escalate = f
		case "reconnect", "resume", "disconnect":
			m.Reconnect = f
		default:
			return m, fmt.Errorf("bench: mix %q: unknown key %q (user, agent, faq, escalate, reconnect)", s, k)
		}
	}
	return m, m.validate()
}

func (m Mix) validate() error {
	if m.total() <= 0 {
		return errors.New("bench: mix: user, agent, faq and escalate weights are all zero")
	}
	if m.Reconnect > 1 {
		return errors.New("bench: mix reconnect: at most 1 reconnection per message")
	}
	return nil
}

func (m Mix) total() float64 { return m.User + m.Agent + m.FAQ + m.Escalate }

// String writes the mix in the form ParseMix reads.
func (m Mix) String() string {
	return fmt.Sprintf("user=%g,agent=%g,faq=%g,escalate=%g,reconnect=%g", m.User, m.Agent, m.FAQ, m.Escalate, m.Reconnect)
}

func (c *Config) setDefaults() error {
	if c.URL == "" {
		c.URL = "http://127.0.0.1:8080"
	}
	if c.AgentURL == "" {
		c.AgentURL = c.URL
	}
	for _, p := range []*string{&c.URL, &c.AgentURL} {
		u, err := url.Parse(*p)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("bench: url %q: want http://host:port", *p)
		}
		*p = strings.TrimRight(*p, "/")
	}
	if c.Tenant == "" {
		c.Tenant = "demo"
	}
	if c.AdminUser == "" {
		c.AdminUser = "admin"
	}
	if c.Convs == 0 {
		c.Convs = 100
	}
	if c.Users == 0 {
		c.Users = c.Convs
	}
	if c.Agents == 0 {
		c.Agents = 10
	}
	if c.Rate == 0 {
		c.Rate = 200
	}
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.Mix == (Mix{}) {
		c.Mix = DefaultMix
	}
	if c.Baseline == "" {
		c.Baseline = "before"
	}
	if c.Drain == 0 {
		c.Drain = 30 * time.Second
	}
	if c.DialConcurrency == 0 {
		c.DialConcurrency = 64
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	switch {
	case c.Idle < 0:
		return errors.New("bench: idle must not be negative")
	case c.Idle > 0:
		if c.Sources == 0 {
			c.Sources = (c.Idle + portsPerSource - 1) / portsPerSource
		}
		if c.Sources < 1 || c.Sources > 254 {
			return fmt.Errorf("bench: sources must be from 1 to 254 (got %d)", c.Sources)
		}
		return nil
	}
	if c.Sources == 0 {
		c.Sources = 1
	}
	switch {
	case c.Convs < 1 || c.Users < 1 || c.Agents < 1:
		return errors.New("bench: users, agents and convs must be positive")
	case c.Users > c.Convs:
		return fmt.Errorf("bench: users (%d) must not exceed convs (%d): each user owns at least one conversation", c.Users, c.Convs)
	case c.Agents > c.Convs:
		return fmt.Errorf("bench: agents (%d) must not exceed convs (%d): each agent follows at least one conversation", c.Agents, c.Convs)
	case (c.Convs+c.Agents-1)/c.Agents > engine.MaxCapacity:
		per := (c.Convs + c.Agents - 1) / c.Agents
		return fmt.Errorf("bench: %d conversations per agent is over an agent's largest capacity (%d); use at least %d agents", per, engine.MaxCapacity, (c.Convs+engine.MaxCapacity-1)/engine.MaxCapacity)
	case c.Rate < 0 || math.IsInf(c.Rate, 0) || math.IsNaN(c.Rate):
		return errors.New("bench: rate must be a positive number of messages per second")
	case c.Duration < 0:
		return errors.New("bench: duration must be positive")
	case c.Sources < 1 || c.Sources > 254:
		return fmt.Errorf("bench: sources must be from 1 to 254 (got %d)", c.Sources)
	}
	switch c.Baseline {
	case "before", "during", "off":
	default:
		return fmt.Errorf("bench: baseline %q: want before, during or off", c.Baseline)
	}
	return c.Mix.validate()
}

// portsPerSource is how many connections one loopback source address is
// given: the default ephemeral range 32768-60999 holds 28,232 ports.
const portsPerSource = 25000

// perConnRates returns the frames per second one user and one agent
// connection send on average.
func (c *Config) perConnRates() (user, agent float64) {
	total := c.Mix.total()
	user = c.Rate * (c.Mix.User + c.Mix.FAQ) / total / float64(c.Users)
	agent = c.Rate * c.Mix.Agent / total / float64(c.Agents)
	return user, agent
}

// offset is when scheduled event k is due, after the start of the load.
func (c *Config) offset(k int64) time.Duration {
	return time.Duration(float64(k) * float64(time.Second) / c.Rate)
}

// isEscalation reports whether scheduled event k is an escalation: they
// are spread evenly, one every total/escalate events.
func (c *Config) isEscalation(k int64) bool {
	share := c.Mix.Escalate / c.Mix.total()
	return math.Floor(float64(k+1)*share) > math.Floor(float64(k)*share)
}

// escalations is how many escalations the schedule holds: the harness
// reserves one conversation still with the bot for each.
func (c *Config) escalations() int {
	n := 0
	for k := int64(0); c.offset(k) < c.Duration; k++ {
		if c.isEscalation(k) {
			n++
		}
	}
	return n
}
