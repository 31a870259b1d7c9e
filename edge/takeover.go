package edge

import (
	"encoding/json"
	"net/http"
	"slices"

	"github.com/gofiber/fiber/v2"

	"github.com/kefu-dev/kefu/actors"
	"github.com/kefu-dev/kefu/actors/actorpb"
	"github.com/kefu-dev/kefu/auth"
	"github.com/kefu-dev/kefu/engine"
)

// The human-takeover API: lifecycle operations, notes, events and the
// customer's rating of a conversation; queues; the tenant's routing
// configuration (settings, skill groups, agents, staff accounts, customer
// profiles) and canned responses. The actors check roles; this layer
// checks shapes.

func (s *Server) takeoverRoutes(v1 fiber.Router) {
	staff := []fiber.Handler{s.checkOrigin, s.requireToken(auth.AudienceStaff)}
	with := func(h fiber.Handler) []fiber.Handler { return append(slices.Clone(staff), h) }

	v1.Get("/conversations/:id/notes", with(s.listNotes)...)
	v1.Post("/conversations/:id/notes", with(s.addNote)...)
	v1.Get("/conversations/:id/events", with(s.listEvents)...)
	v1.Post("/conversations/:id/rating", s.requireAnyToken, s.rate)
	v1.Post("/conversations/:id/:op", s.requireAnyToken, s.convOp)

	v1.Get("/queues/:group", with(s.queue)...)
	v1.Get("/settings", with(s.config(actors.ConfigSettings, actors.ConfigGet))...)
	v1.Put("/settings", with(s.config(actors.ConfigSettings, actors.ConfigPut))...)
	v1.Get("/groups", with(s.config(actors.ConfigGroup, actors.ConfigList))...)
	v1.Put("/groups/:id", with(s.config(actors.ConfigGroup, actors.ConfigPut))...)
	v1.Delete("/groups/:id", with(s.config(actors.ConfigGroup, actors.ConfigDelete))...)
	v1.Get("/agents", with(s.agents)...)
	v1.Get("/agents/:id", with(s.agents)...)
	v1.Put("/agents/:id", with(s.config(actors.ConfigAgent, actors.ConfigPut))...)
	v1.Post("/staff", with(s.config(actors.ConfigStaff, actors.ConfigPut))...)
	v1.Get("/customers/:id", with(s.config(actors.ConfigCustomer, actors.ConfigGet))...)
	v1.Put("/customers/:id", with(s.config(actors.ConfigCustomer, actors.ConfigPut))...)
	v1.Post("/customers/:id/tags", with(s.config(actors.ConfigCustomer, actors.ConfigTag))...)
	v1.Get("/canned", with(s.cannedList)...)
	v1.Post("/canned", with(s.configStatus(actors.ConfigCanned, actors.ConfigCreate, http.StatusCreated))...)
	v1.Put("/canned/:id", with(s.config(actors.ConfigCanned, actors.ConfigPut))...)
	v1.Delete("/canned/:id", with(s.configStatus(actors.ConfigCanned, actors.ConfigDelete, http.StatusNoContent))...)
}

// convParam returns the :id parameter if it is a valid id.
func convParam(c *fiber.Ctx) (string, error) {
	id := c.Params("id")
	if !engine.ValidID(id) {
		return "", engine.NewError(engine.CodeInvalidField, "id is not a valid id")
	}
	return id, nil
}

type opRequest struct {
	AgentID string `json:"agent_id"`
	Group   string `json:"group"`
	Note    string `json:"note"`
	Reason  string `json:"reason"`
}

var restOps = []string{actors.OpAccept, actors.OpTransfer, actors.OpInvite, actors.OpHold, actors.OpUnhold, actors.OpClose, actors.OpReopen}

// convOp runs POST /v1/conversations/:id/{accept,transfer,invite,hold,unhold,close,reopen}.
func (s *Server) convOp(c *fiber.Ctx) error {
	conv, err := convParam(c)
	if err != nil {
		return apiError(c, err)
	}
	op := c.Params("op")
	if !slices.Contains(restOps, op) {
		return apiError(c, engine.NewError(engine.CodeNotFound, "no such operation"))
	}
	var req opRequest
	if len(c.Body()) > 0 {
		if err := decodeJSON(c, &req); err != nil {
			return apiError(c, err)
		}
	}
	f := engine.ClientFrame{Type: op, Conv: conv, AgentID: req.AgentID, Group: req.Group, Note: req.Note, Reason: req.Reason}
	if err := f.Validate(); err != nil {
		return apiError(c, err)
	}
	got, err := s.cfg.Client.Op(c.UserContext(), callerFrom(c), conv, &actorpb.ConvOp{Op: op, AgentId: req.AgentID, Group: req.Group, Note: req.Note, Reason: req.Reason})
	if err != nil {
		return apiError(c, err)
	}
	return c.JSON(got)
}

// rate runs POST /v1/conversations/:id/rating {"score","comment"}: the
// customer rates their closed conversation, and gets the rating back.
func (s *Server) rate(c *fiber.Ctx) error {
	conv, err := convParam(c)
	if err != nil {
		return apiError(c, err)
	}
	var req struct {
		Score   int    `json:"score"`
		Comment string `json:"comment"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return apiError(c, err)
	}
	f := engine.ClientFrame{Type: engine.FrameRate, Conv: conv, Score: req.Score, Comment: req.Comment}
	if err := f.Validate(); err != nil {
		return apiError(c, err)
	}
	got, err := s.cfg.Client.Op(c.UserContext(), callerFrom(c), conv, &actorpb.ConvOp{Op: actors.OpRate, Score: int32(req.Score), Comment: req.Comment})
	if err != nil {
		return apiError(c, err)
	}
	return c.Status(http.StatusCreated).JSON(fiber.Map{"rating": got.Rating})
}

func (s *Server) listNotes(c *fiber.Ctx) error {
	conv, err := convParam(c)
	if err != nil {
		return apiError(c, err)
	}
	notes, err := s.cfg.Client.Notes(c.UserContext(), callerFrom(c), conv)
	if err != nil {
		return apiError(c, err)
	}
	if notes == nil {
		notes = []engine.Note{}
	}
	return c.JSON(fiber.Map{"notes": notes})
}

func (s *Server) addNote(c *fiber.Ctx) error {
	conv, err := convParam(c)
	if err != nil {
		return apiError(c, err)
	}
	var req struct {
		Text string `json:"text"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return apiError(c, err)
	}
	f := engine.ClientFrame{Type: engine.FrameNote, Conv: conv, Text: req.Text}
	if err := f.Validate(); err != nil {
		return apiError(c, err)
	}
	n, err := s.cfg.Client.AddNote(c.UserContext(), callerFrom(c), conv, req.Text)
	if err != nil {
		return apiError(c, err)
	}
	return c.Status(http.StatusCreated).JSON(n)
}

func (s *Server) listEvents(c *fiber.Ctx) error {
	conv, err := convParam(c)
	if err != nil {
		return apiError(c, err)
	}
	raw, err := s.cfg.Client.Events(c.UserContext(), callerFrom(c), conv)
	if err != nil {
		return apiError(c, err)
	}
	return sendField(c, "events", raw)
}

// sendField answers {"<name>": raw}, raw being JSON already.
func sendField(c *fiber.Ctx, name string, raw []byte) error {
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(append(append([]byte(`{"`+name+`":`), raw...), '}'))
}

// cannedList serves GET /v1/canned: the tenant's canned responses and the
// caller's own, by shortcut.
func (s *Server) cannedList(c *fiber.Ctx) error {
	raw, err := s.cfg.Client.Config(c.UserContext(), callerFrom(c), actors.ConfigCanned, actors.ConfigList, "", nil)
	if err != nil {
		return apiError(c, err)
	}
	return sendField(c, "canned", raw)
}

func (s *Server) queue(c *fiber.Ctx) error {
	group := c.Params("group")
	if !engine.ValidID(group) {
		return apiError(c, engine.NewError(engine.CodeInvalidField, "group is not a valid id"))
	}
	raw, err := s.cfg.Client.Queue(c.UserContext(), callerFrom(c), group)
	if err != nil {
		return apiError(c, err)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(raw)
}

// config forwards a configuration request; the body must be a JSON object.
func (s *Server) config(kind, op string) fiber.Handler {
	return s.configStatus(kind, op, http.StatusOK)
}

// configStatus is config answering with status (204: without a body).
func (s *Server) configStatus(kind, op string, status int) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id := c.Params("id")
		if id != "" && !engine.ValidID(id) {
			return apiError(c, engine.NewError(engine.CodeInvalidField, "id is not a valid id"))
		}
		var body []byte
		if op != actors.ConfigGet && op != actors.ConfigList && op != actors.ConfigDelete {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(c.Body(), &obj); err != nil || obj == nil {
				return apiError(c, engine.NewError(engine.CodeBadFrame, "the body must be a JSON object of the documented shape"))
			}
			body = c.Body()
		}
		raw, err := s.cfg.Client.Config(c.UserContext(), callerFrom(c), kind, op, id, body)
		if err != nil {
			return apiError(c, err)
		}
		if status == http.StatusNoContent {
			return c.SendStatus(status)
		}
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Status(status).Send(raw)
	}
}

// agentEntry is an agent with their profile and live state.
type agentEntry struct {
	actors.AgentInfo
	Presence string   `json:"presence"`
	Load     int      `json:"load"`
	Convs    []string `json:"convs"`
}

// agents lists staff with profiles and live presence and load (GET
// /v1/agents), or one of them (GET /v1/agents/:id).
func (s *Server) agents(c *fiber.Ctx) error {
	id := c.Params("id")
	op := actors.ConfigList
	if id != "" {
		op = actors.ConfigGet
	}
	caller := callerFrom(c)
	raw, err := s.cfg.Client.Config(c.UserContext(), caller, actors.ConfigAgent, op, id, nil)
	if err != nil {
		return apiError(c, err)
	}
	var infos []actors.AgentInfo
	if id != "" {
		var one actors.AgentInfo
		err = json.Unmarshal(raw, &one)
		infos = []actors.AgentInfo{one}
	} else {
		err = json.Unmarshal(raw, &infos)
	}
	if err != nil {
		return apiError(c, err)
	}
	out := make([]agentEntry, len(infos))
	for i, info := range infos {
		out[i] = agentEntry{AgentInfo: info, Presence: actors.PresenceOffline, Convs: []string{}}
		if st, err := s.cfg.Client.AgentStatus(c.UserContext(), caller.Tenant, info.Staff.ID); err == nil {
			out[i].Presence, out[i].Load = st.Presence, int(st.Load)
			if st.Convs != nil {
				out[i].Convs = st.Convs
			}
		}
	}
	if id != "" {
		return c.JSON(out[0])
	}
	return c.JSON(fiber.Map{"agents": out})
}
