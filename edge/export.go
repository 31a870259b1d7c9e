package edge

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/kefu-dev/kefu/engine"
)

// maxExportMessages bounds one export: a conversation longer than this is
// exported in part, and the response says so in X-Kefu-Truncated.
const maxExportMessages = 20000

// export writes a conversation's transcript as CSV (for spreadsheets) or
// JSON, as an attachment. Customers' text is data, never markup or a
// formula: JSON escapes <, > and &, and CSV cells that a spreadsheet would
// evaluate get a leading apostrophe.
func (s *Server) export(c *fiber.Ctx) error {
	conv, err := convParam(c)
	if err != nil {
		return apiError(c, err)
	}
	format := c.Query("format", "csv")
	if format != "csv" && format != "json" {
		return apiError(c, engine.NewError(engine.CodeInvalidField, "format is csv or json"))
	}
	caller := callerFrom(c)
	var msgs []engine.Message
	truncated := false
	for after := int64(0); ; {
		page, err := s.cfg.Client.History(c.UserContext(), caller, conv, after, engine.MaxHistoryPage)
		if err != nil {
			return apiError(c, err)
		}
		msgs = append(msgs, page.Messages...)
		if !page.More || len(page.Messages) == 0 {
			break
		}
		if len(msgs) >= maxExportMessages {
			truncated = true
			break
		}
		after = page.Messages[len(page.Messages)-1].Seq
	}
	s.recordAudit(c, caller, engine.AuditEntry{Action: engine.AuditTranscriptExported, Target: conv,
		Detail: format + ", " + strconv.Itoa(len(msgs)) + " messages"})
	if truncated {
		c.Set("X-Kefu-Truncated", "true")
	}
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="conversation-`+conv+`.`+format+`"`)
	if format == "json" {
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
		b, err := json.Marshal(fiber.Map{"conversation": conv, "messages": msgs})
		if err != nil {
			return apiError(c, err)
		}
		return c.Send(b)
	}
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	return c.Send(transcriptCSV(msgs))
}

// transcriptCSV renders messages as CSV with a UTF-8 byte-order mark, so
// spreadsheet programs read Chinese text correctly.
func transcriptCSV(msgs []engine.Message) []byte {
	var buf bytes.Buffer
	buf.WriteString("\ufeff")
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"seq", "time", "from_role", "from_id", "type", "text"})
	for _, m := range msgs {
		_ = w.Write([]string{
			strconv.FormatInt(m.Seq, 10), m.CreatedAt.UTC().Format(time.RFC3339), string(m.From.Role), csvCell(m.From.ID),
			string(m.Body.Type), csvCell(m.Body.Text),
		})
	}
	w.Flush()
	return buf.Bytes()
}

// csvCell defuses a cell a spreadsheet would run as a formula (CSV
// injection): one starting with =, +, -, @, a tab or a carriage return is
// prefixed with an apostrophe. encoding/csv quotes the rest.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
