package kb

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Normalizer turns text into the canonical form that entries and queries
// share, so that 「退貨」, "退货！" and 「退贷」 all index and match alike:
//
//  1. full-width ASCII becomes half-width, the ideographic space a space;
//  2. letters are lower-cased;
//  3. common traditional characters become simplified (a small table);
//  4. anything that is not a letter or a digit (punctuation, emoji,
//     symbols) becomes a space, so it separates segments;
//  5. modal particles at the end of a segment (啊 呀 吧 呢 …) are dropped,
//     and a segment-final 不 (the "A不" question: 能退不) becomes 吗;
//  6. phrases of the synonym and typo table are replaced by their canonical
//     form, longest match first, in one left-to-right pass;
//  7. terms of the expansion table (a product noun's category: 吹风机 → 家电)
//     are appended as extra segments, so a question about any fridge finds
//     the entry about household appliances.
//
// A Normalizer is immutable after NewNormalizer and safe for concurrent use.
type Normalizer struct {
	repl   *phraseTable // surface -> canonical, replacing
	expand *phraseTable // surface -> extra terms, appending
}

// NewNormalizer returns a normalizer with the built-in synonym and
// expansion tables plus the tenant's own (which win over the built-in
// ones). Keys and values of every table are themselves folded (steps 1-4)
// so the tables can be written in any width or case.
func NewNormalizer(synonyms, expansions map[string]string) *Normalizer {
	repl := make(map[string]string, len(builtinSynonyms)+len(synonyms))
	for k, v := range builtinSynonyms {
		repl[k] = v
	}
	for k, v := range synonyms {
		repl[k] = v
	}
	exp := make(map[string]string, len(builtinExpansions)+len(expansions))
	for k, v := range builtinExpansions {
		exp[k] = v
	}
	for k, v := range expansions {
		exp[k] = v
	}
	return &Normalizer{repl: newPhraseTable(repl), expand: newPhraseTable(exp)}
}

var defaultNormalizer = NewNormalizer(nil, nil)

// Normalize applies the default normalizer (built-in tables only).
func Normalize(s string) string { return defaultNormalizer.Normalize(s) }

// Normalize returns the canonical form of s: segments separated by single
// spaces, with expansion terms appended at the end.
func (n *Normalizer) Normalize(s string) string {
	folded := fold(s)
	replaced := n.repl.replace(folded)
	if extra := n.expand.collect(replaced); extra != "" {
		return replaced + " " + extra
	}
	return replaced
}

// Fold applies steps 1-4 only: width, case, traditional characters, and
// punctuation, symbols and emoji to single spaces. The bot's rules match
// on this form, where particles and synonyms are still as the user wrote.
func Fold(s string) string { return strings.Join(strings.Fields(foldChars(s)), " ") }

// fold applies steps 1-5.
func fold(s string) string {
	segs := strings.Fields(foldChars(s))
	out := segs[:0]
	for _, seg := range segs {
		if seg = trimParticles(seg); seg != "" {
			out = append(out, seg)
		}
	}
	return strings.Join(out, " ")
}

// foldChars applies steps 1-4, leaving runs of spaces.
func foldChars(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := true // no leading space
	for _, r := range s {
		r = foldRune(r)
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(r)
			space = false
			continue
		}
		if !space {
			b.WriteByte(' ')
			space = true
		}
	}
	return b.String()
}

// foldRune does width folding, lower-casing and traditional-to-simplified
// conversion of one rune.
func foldRune(r rune) rune {
	switch {
	case r >= 0xFF01 && r <= 0xFF5E: // full-width ASCII
		r -= 0xFEE0
	case r == 0x3000: // ideographic space
		return ' '
	}
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}
	if s, ok := trad2simp[r]; ok {
		return s
	}
	return unicode.ToLower(r)
}

// finalParticles are sentence-final modal particles: they carry tone, not
// content, and their bigrams ("退啊") only add noise.
const finalParticles = "啊呀吧呢哦噢啦呗哇咯喔嘞哟"

func trimParticles(seg string) string {
	for seg != "" {
		r, size := utf8.DecodeLastRuneInString(seg)
		if !strings.ContainsRune(finalParticles, r) || size == len(seg) {
			break
		}
		seg = seg[:len(seg)-size]
	}
	// "能退不" / "可以用支付宝付不" ask a yes-no question like "能退吗".
	if r, size := utf8.DecodeLastRuneInString(seg); r == '不' && len(seg) > size {
		prev, _ := utf8.DecodeLastRuneInString(seg[:len(seg)-size])
		if !strings.ContainsRune("要得对都也并还再是", prev) { // 要不, 不得不, 对不, 一点都不: not a question tag
			seg = seg[:len(seg)-size] + "吗"
		}
	}
	return seg
}

// phraseTable finds table phrases in folded text, longest match first.
type phraseTable struct {
	byFirst map[rune][]phrase // phrases by first rune, longest first
}

type phrase struct{ from, to string }

func newPhraseTable(m map[string]string) *phraseTable {
	t := &phraseTable{byFirst: map[rune][]phrase{}}
	for k, v := range m {
		k, v = fold(k), fold(v)
		if k == "" {
			continue
		}
		// An identity entry (k == v) is kept on purpose: it protects a
		// phrase from a shorter rule inside it (好几天 keeps 几天 intact).
		r, _ := utf8.DecodeRuneInString(k)
		t.byFirst[r] = append(t.byFirst[r], phrase{k, v})
	}
	for _, ps := range t.byFirst {
		sort.Slice(ps, func(i, j int) bool {
			if len(ps[i].from) != len(ps[j].from) {
				return len(ps[i].from) > len(ps[j].from)
			}
			return ps[i].from < ps[j].from
		})
	}
	return t
}

// match returns the longest phrase starting at s[0], if any.
func (t *phraseTable) match(s string) (phrase, bool) {
	r, _ := utf8.DecodeRuneInString(s)
	for _, p := range t.byFirst[r] {
		if strings.HasPrefix(s, p.from) {
			return p, true
		}
	}
	return phrase{}, false
}

// replace rewrites every phrase in one left-to-right pass; replacements are
// not scanned again, so a table cannot loop.
func (t *phraseTable) replace(s string) string {
	if len(t.byFirst) == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		if p, ok := t.match(s[i:]); ok {
			b.WriteString(p.to)
			i += len(p.from)
			continue
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		b.WriteString(s[i : i+size])
		i += size
	}
	return b.String()
}

// collect returns the expansion terms of every phrase found in s, each once,
// joined by spaces.
func (t *phraseTable) collect(s string) string {
	if len(t.byFirst) == 0 {
		return ""
	}
	var out []string
	for i := 0; i < len(s); {
		if p, ok := t.match(s[i:]); ok {
			for _, term := range strings.Fields(p.to) {
				if !containsString(out, term) {
					out = append(out, term)
				}
			}
			i += len(p.from)
			continue
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return strings.Join(out, " ")
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
