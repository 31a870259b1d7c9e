package eval

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/kefu-dev/kefu/bots"
	"github.com/kefu-dev/kefu/kb"
)

// Expectations other than an entry id.
const (
	ExpectHuman = "human" // the bot must hand over
	ExpectNone  = "none"  // the knowledge base cannot answer; the bot must not pretend to
)

// Line is one labelled utterance: {"q": ..., "expect": entry id | "human" | "none"}.
type Line struct {
	Q      string `json:"q"`
	Expect string `json:"expect"`
	Note   string `json:"note,omitempty"`
}

// ErrFormat: a labelled set is malformed.
var ErrFormat = errors.New("eval: malformed labelled set")

// ReadLines reads a labelled set in JSON Lines. Blank lines are skipped;
// errors name the line.
func ReadLines(r io.Reader) ([]Line, error) {
	var lines []Line
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		raw := strings.TrimSpace(sc.Text())
		if raw == "" {
			continue
		}
		var l Line
		if err := json.Unmarshal([]byte(raw), &l); err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrFormat, n, err)
		}
		if strings.TrimSpace(l.Q) == "" || l.Expect == "" {
			return nil, fmt.Errorf("%w: line %d: q and expect are required", ErrFormat, n)
		}
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("eval: reading the labelled set: %w", err)
	}
	return lines, nil
}

// LoadEntries reads a knowledge-base file: CSV when the name ends in .csv,
// JSON otherwise.
func LoadEntries(path string) ([]kb.Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if strings.EqualFold(filepath.Ext(path), ".csv") {
		return kb.ParseCSV(f)
	}
	return kb.ParseJSON(f)
}

// Outcome is the bot's reply to one line.
type Outcome struct {
	Line
	Kind       bots.ReplyKind `json:"kind"`
	EntryID    string         `json:"entry_id,omitempty"`
	Confidence float64        `json:"confidence"`
	Reason     string         `json:"reason"`
	Correct    bool           `json:"correct"`
}

// Got describes the outcome in one word: the answered entry id, or the kind.
func (o Outcome) Got() string {
	if o.Kind == bots.KindAnswer {
		return o.EntryID
	}
	return string(o.Kind)
}

// Report is the result of an evaluation.
type Report struct {
	N int `json:"n"` // lines evaluated
	// AnswerableTop1: of the lines expecting an entry, the share answered
	// (KindAnswer) with that entry. Suggestions, fallbacks and escalations
	// count as wrong.
	AnswerableTop1 float64 `json:"answerable_top1"`
	// HumanRecall: of the lines expecting "human", the share escalated.
	HumanRecall float64 `json:"human_recall"`
	// HumanPrecision: of the escalated lines, the share expecting "human"
	// (0 when nothing was escalated).
	HumanPrecision float64 `json:"human_precision"`
	// NoneFalseAnswerRate: of the lines expecting "none", the share the
	// bot answered as if it knew (KindAnswer).
	NoneFalseAnswerRate float64 `json:"none_false_answer_rate"`

	Answerable  int `json:"answerable"`
	Human       int `json:"human"`
	None        int `json:"none"`
	Escalations int `json:"escalations"`
	// Matrix counts outcomes by expected class (entry, human, none) and
	// what the bot did (answer_right, answer_wrong, suggest, fallback,
	// escalate).
	Matrix map[string]map[string]int `json:"matrix"`
	// Confusions lists every line the bot got wrong.
	Confusions []Outcome `json:"confusions"`
}

// Run evaluates the pipeline over lines, each as the first turn of a
// conversation.
func Run(p *bots.Pipeline, idx *kb.Index, lines []Line) Report {
	return RunContext(context.Background(), p, idx, lines)
}

// RunContext is Run under ctx (which bounds any LLM calls).
func RunContext(ctx context.Context, p *bots.Pipeline, idx *kb.Index, lines []Line) Report {
	rep := Report{Matrix: map[string]map[string]int{}}
	var top1, humanHit, noneAnswered, escalatedHuman int
	for _, l := range lines {
		r := p.Respond(ctx, idx, bots.Turn{Text: l.Q}, nil)
		o := Outcome{Line: l, Kind: r.Kind, EntryID: r.EntryID, Confidence: r.Confidence, Reason: r.Reason}
		class := "entry"
		switch l.Expect {
		case ExpectHuman:
			class = "human"
			rep.Human++
			o.Correct = r.Kind == bots.KindEscalate
			if o.Correct {
				humanHit++
			}
		case ExpectNone:
			class = "none"
			rep.None++
			o.Correct = r.Kind == bots.KindSuggest || r.Kind == bots.KindFallback
			if r.Kind == bots.KindAnswer {
				noneAnswered++
			}
		default:
			rep.Answerable++
			o.Correct = r.Kind == bots.KindAnswer && r.EntryID == l.Expect
			if o.Correct {
				top1++
			}
		}
		if r.Kind == bots.KindEscalate {
			rep.Escalations++
			if l.Expect == ExpectHuman {
				escalatedHuman++
			}
		}
		did := string(r.Kind)
		if r.Kind == bots.KindAnswer {
			did = "answer_wrong"
			if r.EntryID == l.Expect {
				did = "answer_right"
			}
		}
		if rep.Matrix[class] == nil {
			rep.Matrix[class] = map[string]int{}
		}
		rep.Matrix[class][did]++
		if !o.Correct {
			rep.Confusions = append(rep.Confusions, o)
		}
		rep.N++
	}
	rep.AnswerableTop1 = ratio(top1, rep.Answerable)
	rep.HumanRecall = ratio(humanHit, rep.Human)
	rep.HumanPrecision = ratio(escalatedHuman, rep.Escalations)
	rep.NoneFalseAnswerRate = ratio(noneAnswered, rep.None)
	return rep
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// JSON returns the report as one JSON object.
func (r Report) JSON() ([]byte, error) {
	if r.Confusions == nil {
		r.Confusions = []Outcome{}
	}
	return json.Marshal(r)
}

// WriteText writes the report as aligned tables: the figures, the matrix
// and the confusions.
func (r Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "lines\t%d\t(answerable %d, human %d, none %d)\n", r.N, r.Answerable, r.Human, r.None)
	fmt.Fprintf(tw, "answerable_top1\t%.3f\n", r.AnswerableTop1)
	fmt.Fprintf(tw, "human_recall\t%.3f\n", r.HumanRecall)
	fmt.Fprintf(tw, "human_precision\t%.3f\t(%d escalations)\n", r.HumanPrecision, r.Escalations)
	fmt.Fprintf(tw, "none_false_answer_rate\t%.3f\n", r.NoneFalseAnswerRate)
	fmt.Fprintln(tw)
	cols := []string{"answer_right", "answer_wrong", "suggest", "fallback", "escalate"}
	fmt.Fprintf(tw, "expected \\ bot\t%s\n", strings.Join(cols, "\t"))
	for _, class := range []string{"entry", "human", "none"} {
		row := []string{class}
		for _, c := range cols {
			row = append(row, fmt.Sprint(r.Matrix[class][c]))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Confusions) == 0 {
		_, err := fmt.Fprintln(w, "\nno confusions")
		return err
	}
	fmt.Fprintf(w, "\nconfusions (%d)\n", len(r.Confusions))
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "expect\tgot\tconf\treason\tq")
	conf := append([]Outcome(nil), r.Confusions...)
	sort.SliceStable(conf, func(i, j int) bool { return conf[i].Expect < conf[j].Expect })
	for _, o := range conf {
		fmt.Fprintf(tw, "%s\t%s\t%.2f\t%s\t%s\n", o.Expect, o.Got(), o.Confidence, o.Reason, o.Q)
	}
	return tw.Flush()
}
