package edge

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/kefu-dev/kefu/auth"
	"github.com/kefu-dev/kefu/engine"
	"github.com/kefu-dev/kefu/kb"
)

// The knowledge-base API. Entries use the kb JSON shape (the shape of the
// demo FAQ file); imports also take CSV. Reads are for any staff, writes
// for admins and supervisors (the tenant actor checks).

func (s *Server) kbRoutes(v1 fiber.Router) {
	g := v1.Group("/kb", s.checkOrigin, s.requireToken(auth.AudienceStaff))
	g.Get("/entries", s.kbList)
	g.Get("/entries/:id", s.kbGet)
	g.Put("/entries/:id", s.kbPutOne)
	g.Post("/entries", s.kbPutOne)
	g.Delete("/entries/:id", s.kbDelete)
	g.Post("/import", s.kbImport)
	g.Get("/export", s.kbExport)
	g.Get("/search", s.kbSearch)
}

func (s *Server) kbEntries(c *fiber.Ctx) ([]kb.Entry, error) {
	raw, err := s.cfg.Client.KBEntries(c.UserContext(), callerFrom(c))
	if err != nil {
		return nil, err
	}
	return kb.ParseJSON(bytes.NewReader(raw))
}

func (s *Server) kbList(c *fiber.Ctx) error {
	entries, err := s.kbEntries(c)
	if err != nil {
		return apiError(c, err)
	}
	return c.JSON(entries)
}

func (s *Server) kbGet(c *fiber.Ctx) error {
	entries, err := s.kbEntries(c)
	if err != nil {
		return apiError(c, err)
	}
	for _, e := range entries {
		if e.ID == c.Params("id") {
			return c.JSON(e)
		}
	}
	return apiError(c, engine.NewError(engine.CodeNotFound, "no such entry"))
}

// kbPutOne creates (POST, id optional) or replaces (PUT) one entry.
func (s *Server) kbPutOne(c *fiber.Ctx) error {
	var e kb.Entry
	if err := decodeJSON(c, &e); err != nil {
		return apiError(c, err)
	}
	if id := c.Params("id"); id != "" {
		if e.ID != "" && e.ID != id {
			return apiError(c, engine.NewError(engine.CodeInvalidField, "the entry's id differs from the URL's"))
		}
		e.ID = id
	} else if e.ID == "" {
		e.ID = "faq-" + strings.ToLower(engine.NewID(s.cfg.Clock.Now()))
	}
	raw, _ := json.Marshal([]kb.Entry{e})
	if _, err := s.cfg.Client.KBPut(c.UserContext(), callerFrom(c), raw, false); err != nil {
		return apiError(c, err)
	}
	return c.JSON(e)
}

func (s *Server) kbDelete(c *fiber.Ctx) error {
	if err := s.cfg.Client.KBDelete(c.UserContext(), callerFrom(c), c.Params("id")); err != nil {
		return apiError(c, err)
	}
	return c.SendStatus(http.StatusNoContent)
}

// kbImport takes a JSON or CSV file (?format=json|csv, or by Content-Type)
// and upserts its entries; with ?replace=true the others are deleted.
func (s *Server) kbImport(c *fiber.Ctx) error {
	var entries []kb.Entry
	var err error
	if c.Query("format") == "csv" || strings.HasPrefix(c.Get(fiber.HeaderContentType), "text/csv") {
		entries, err = kb.ParseCSV(bytes.NewReader(c.Body()))
	} else {
		entries, err = kb.ParseJSON(bytes.NewReader(c.Body()))
	}
	if err != nil {
		return apiError(c, engine.NewError(engine.CodeInvalidField, err.Error()))
	}
	raw, _ := json.Marshal(entries)
	n, err := s.cfg.Client.KBPut(c.UserContext(), callerFrom(c), raw, c.QueryBool("replace"))
	if err != nil {
		return apiError(c, err)
	}
	return c.JSON(fiber.Map{"imported": n})
}

// kbExport writes the knowledge base as JSON or CSV (?format=csv).
func (s *Server) kbExport(c *fiber.Ctx) error {
	entries, err := s.kbEntries(c)
	if err != nil {
		return apiError(c, err)
	}
	var buf bytes.Buffer
	if c.Query("format") == "csv" {
		err = kb.WriteCSV(&buf, entries)
		c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
		c.Set(fiber.HeaderContentDisposition, `attachment; filename="kb.csv"`)
	} else {
		err = kb.WriteJSON(&buf, entries)
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
		c.Set(fiber.HeaderContentDisposition, `attachment; filename="kb.json"`)
	}
	if err != nil {
		return apiError(c, err)
	}
	return c.Send(buf.Bytes())
}

// MaxKBQuery bounds a knowledge-base search's query, in characters.
const MaxKBQuery = 200

// kbSearch serves GET /v1/kb/search?q=&limit=: the knowledge-base answers
// to a free query, found as assist finds them.
func (s *Server) kbSearch(c *fiber.Ctx) error {
	q := strings.TrimSpace(c.Query("q"))
	switch {
	case !utf8.ValidString(q):
		return apiError(c, engine.NewError(engine.CodeInvalidUTF8, "q is not valid UTF-8"))
	case q == "":
		return apiError(c, engine.NewError(engine.CodeMissingField, "q is missing"))
	case utf8.RuneCountInString(q) > MaxKBQuery:
		return apiError(c, engine.Errorf(engine.CodeInvalidField, "q is at most %d characters", MaxKBQuery))
	}
	limit, err := queryInt(c, "limit", 5, 1, 20)
	if err != nil {
		return apiError(c, err)
	}
	suggestions, err := s.cfg.Client.KBSearch(c.UserContext(), callerFrom(c), q, limit)
	if err != nil {
		return apiError(c, err)
	}
	return c.JSON(fiber.Map{"query": q, "suggestions": suggestions})
}

// assist returns knowledge-base suggestions for a conversation's latest
// customer message.
func (s *Server) assist(c *fiber.Ctx) error {
	conv := c.Params("id")
	if !engine.ValidID(conv) {
		return apiError(c, engine.NewError(engine.CodeInvalidField, "conversation id is not valid"))
	}
	limit, err := queryInt(c, "limit", 3, 1, 10)
	if err != nil {
		return apiError(c, err)
	}
	query, suggestions, err := s.cfg.Client.Assist(c.UserContext(), callerFrom(c), conv, limit)
	if err != nil {
		return apiError(c, err)
	}
	return c.JSON(fiber.Map{"query": query, "suggestions": suggestions})
}
