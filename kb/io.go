package kb

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MaxImportEntries bounds one import so a wrong file cannot exhaust memory.
const MaxImportEntries = 100_000

// ListSep separates similar questions and tags inside one CSV cell. It is
// not allowed inside a similar question or a tag (Validate rejects it), so
// a CSV round trip is exact.
const ListSep = "|"

// CSVHeader is the header row WriteCSV writes. ParseCSV accepts these
// columns in any order; id, question and answer are required, the others
// may be absent, and unknown columns are an error (a misspelt "similiar"
// column would otherwise drop data silently).
var CSVHeader = []string{"id", "category", "question", "similar", "answer", "tags", "enabled", "updated_at", "version"}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// ParseJSON reads a JSON array of entries (the shape of faq-demo.json) and
// validates them. An absent "enabled" means true. Unknown fields are
// ignored, so exports of newer versions import into older ones.
func ParseJSON(r io.Reader) ([]Entry, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("kb: reading JSON: %w", err)
	}
	data = bytes.TrimPrefix(data, utf8BOM)
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%w: JSON: the file must be an array of entries: %v", ErrFormat, err)
	}
	if len(raw) > MaxImportEntries {
		return nil, fmt.Errorf("%w: %d entries, the limit is %d", ErrFormat, len(raw), MaxImportEntries)
	}
	entries := make([]Entry, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal(r, &entries[i]); err != nil {
			return nil, fmt.Errorf("%w: JSON entry %d: %v", ErrFormat, i+1, err)
		}
	}
	if err := ValidateAll(entries); err != nil {
		return nil, err
	}
	return entries, nil
}

// WriteJSON writes entries as an indented JSON array that ParseJSON reads
// back unchanged. HTML characters are not escaped: answers stay readable.
func WriteJSON(w io.Writer, entries []Entry) error {
	var buf bytes.Buffer
	buf.WriteString("[")
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for i := range entries {
		if i > 0 {
			buf.WriteString(",")
		}
		buf.WriteString("\n  ")
		if err := enc.Encode(&entries[i]); err != nil {
			return fmt.Errorf("kb: encoding entry %q: %w", entries[i].ID, err)
		}
		buf.Truncate(buf.Len() - 1) // Encode's newline
	}
	buf.WriteString("\n]\n")
	_, err := w.Write(buf.Bytes())
	return err
}

// ParseCSV reads entries from CSV with a header row (see CSVHeader).
// Similar questions and tags are joined with ListSep in one cell. A UTF-8
// byte-order mark (Excel and WPS write one) is skipped, and the spreadsheet
// escape WriteCSV adds to formula-like cells is removed. Errors name the
// line.
func ParseCSV(r io.Reader) ([]Entry, error) {
	br := bufio.NewReader(r)
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, utf8BOM) {
		_, _ = br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = 0 // every row must have as many cells as the header
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: CSV: empty input, expected a header row", ErrFormat)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: CSV header: %v", ErrFormat, err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		if !slices.Contains(CSVHeader, h) {
			return nil, fmt.Errorf("%w: CSV header: unknown column %q (known: %s)", ErrFormat, h, strings.Join(CSVHeader, ","))
		}
		if _, dup := col[h]; dup {
			return nil, fmt.Errorf("%w: CSV header: column %q appears twice", ErrFormat, h)
		}
		col[h] = i
	}
	for _, req := range []string{"id", "question", "answer"} {
		if _, ok := col[req]; !ok {
			return nil, fmt.Errorf("%w: CSV header: required column %q is missing", ErrFormat, req)
		}
	}
	var entries []Entry
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// A *csv.ParseError names the line itself; FieldPos is only
			// valid after a successful Read.
			return nil, fmt.Errorf("%w: CSV: %v", ErrFormat, err)
		}
		line, _ := cr.FieldPos(0)
		if len(entries) == MaxImportEntries {
			return nil, fmt.Errorf("%w: more than %d entries", ErrFormat, MaxImportEntries)
		}
		cell := func(name string) string {
			if i, ok := col[name]; ok {
				return unescapeCell(rec[i])
			}
			return ""
		}
		e := Entry{
			ID:       strings.TrimSpace(cell("id")),
			Category: cell("category"),
			Question: cell("question"),
			Similar:  splitList(cell("similar")),
			Answer:   cell("answer"),
			Tags:     splitList(cell("tags")),
		}
		if e.Enabled, err = parseBool(cell("enabled")); err != nil {
			return nil, fmt.Errorf("%w: CSV line %d: enabled: %v", ErrFormat, line, err)
		}
		if s := strings.TrimSpace(cell("updated_at")); s != "" {
			if e.UpdatedAt, err = time.Parse(time.RFC3339Nano, s); err != nil {
				return nil, fmt.Errorf("%w: CSV line %d: updated_at must be RFC 3339 (2024-06-11T08:00:00Z): %q", ErrFormat, line, s)
			}
		}
		if s := strings.TrimSpace(cell("version")); s != "" {
			if e.Version, err = strconv.ParseInt(s, 10, 64); err != nil {
				return nil, fmt.Errorf("%w: CSV line %d: version must be an integer: %q", ErrFormat, line, s)
			}
		}
		if err := e.Validate(); err != nil {
			return nil, fmt.Errorf("CSV line %d: %w", line, err)
		}
		entries = append(entries, e)
	}
	if err := ValidateAll(entries); err != nil {
		return nil, err
	}
	return entries, nil
}

// WriteCSV writes entries with a header row and a UTF-8 byte-order mark, so
// Excel and WPS open the Chinese text correctly. Cells that a spreadsheet
// would run as a formula (starting with = + - @, a tab or a carriage return)
// get a leading apostrophe; ParseCSV removes it again.
func WriteCSV(w io.Writer, entries []Entry) error {
	bw := bufio.NewWriter(w)
	if _, err := bw.Write(utf8BOM); err != nil {
		return err
	}
	cw := csv.NewWriter(bw)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	for _, e := range entries {
		updated := ""
		if !e.UpdatedAt.IsZero() {
			updated = e.UpdatedAt.UTC().Format(time.RFC3339Nano)
		}
		rec := []string{
			escapeCell(e.ID), escapeCell(e.Category), escapeCell(e.Question),
			escapeCell(strings.Join(e.Similar, ListSep)), escapeCell(e.Answer),
			escapeCell(strings.Join(e.Tags, ListSep)),
			strconv.FormatBool(e.Enabled), updated, strconv.FormatInt(e.Version, 10),
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	return bw.Flush()
}

// formulaStart reports whether a spreadsheet would treat a cell starting
// with c as a formula (OWASP "CSV injection").
func formulaStart(c byte) bool {
	return c == '=' || c == '+' || c == '-' || c == '@' || c == '\t' || c == '\r'
}

// escapeCell prefixes an apostrophe to a cell that is formula-like after
// any leading apostrophes. Counting existing apostrophes makes the escape
// reversible: "'=x" becomes "”=x" and comes back as "'=x".
func escapeCell(s string) string {
	rest := strings.TrimLeft(s, "'")
	if rest != "" && formulaStart(rest[0]) {
		return "'" + s
	}
	return s
}

func unescapeCell(s string) string {
	rest := strings.TrimLeft(s, "'")
	if len(rest) < len(s) && rest != "" && formulaStart(rest[0]) {
		return s[1:]
	}
	return s
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ListSep) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "true", "1", "yes", "y", "是", "启用":
		return true, nil // absent means enabled, as in JSON
	case "false", "0", "no", "n", "否", "停用", "禁用":
		return false, nil
	}
	return false, fmt.Errorf("%q is not true or false", s)
}
