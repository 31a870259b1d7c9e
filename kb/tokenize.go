package kb

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// token is one indexed term with the weight its kind carries.
type token struct {
	text   string
	weight float64
}

// Token weights. A CJK bigram is the unit of meaning the index relies on
// (most Chinese words have two characters); single characters catch
// one-character words and typos that break a bigram, but alone they say
// little, so they count for less. ASCII words and numbers are whole words.
const (
	weightBigram  = 1.0
	weightUnigram = 0.35
	weightWord    = 1.0
)

// longNumberToken stands for any run of eight or more digits: order and
// tracking numbers are never in an FAQ, and each distinct one would only
// be an unknown term.
const longNumberToken = "#num"

// tokenize splits normalized text (see Normalizer) into terms: for each run
// of CJK characters its unigrams and bigrams, for each run of ASCII letters
// a word, for each run of digits a number. Bigrams never cross a space or a
// change of script.
func tokenize(s string, emit func(token)) {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == ' ':
			i += size
		case isCJK(r):
			start := i
			for i < len(s) {
				r, size := utf8.DecodeRuneInString(s[i:])
				if !isCJK(r) {
					break
				}
				i += size
			}
			cjkTerms(s[start:i], emit)
		case r < utf8.RuneSelf && isDigit(byte(r)):
			start := i
			for i < len(s) && isDigit(s[i]) {
				i++
			}
			if i-start >= 8 {
				emit(token{longNumberToken, weightWord})
			} else {
				emit(token{s[start:i], weightWord})
			}
		default: // letters of any other script, taken as a word
			start := i
			for i < len(s) {
				r, size := utf8.DecodeRuneInString(s[i:])
				if r == ' ' || isCJK(r) || (r < utf8.RuneSelf && isDigit(byte(r))) {
					break
				}
				i += size
			}
			emit(token{s[start:i], weightWord})
		}
	}
}

func cjkTerms(run string, emit func(token)) {
	prev, prevRune := -1, rune(0)
	for i, r := range run {
		size := utf8.RuneLen(r)
		w := weightUnigram
		if isLight(r) {
			w *= lightFactor
		}
		emit(token{run[i : i+size], w})
		if prev >= 0 {
			bi := run[prev : i+size]
			w := weightBigram
			if lightBigram(prevRune, r, bi) {
				w *= lightFactor
			}
			emit(token{bi, w})
		}
		prev, prevRune = i, r
	}
}

// Function words. A small knowledge base cannot estimate their IDF (你们
// may occur in one entry only and then looks as specific as 退款), so their
// weight is cut by lightFactor instead:
//   - a bigram of two lightChars (你们, 怎么, 还能, 一下);
//   - a bigram with a particle that only ever glues words (的, 吗, 呢 …):
//     "买的", "的券" are word boundaries, not words;
//   - a bigram inside a lightWords phrase (意思 in 什么意思).
const (
	lightFactor    = 0.15
	lightChars     = "我你他她它们这那个是在有和与就都也还又要会能想把被给让么怎什哪一下些着得地很太可以请您吗呢吧啊呀的了"
	particleChars  = "的吗呢吧啊呀"
	lightWordsList = "什么意思 怎么回事 怎么办 怎么操作 什么情况 为什么 是不是 有没有 请问 你好 您好 谢谢 麻烦 " +
		"现在 然后 就是 但是 因为 所以 如果 已经 还是 或者 一般 时候 情况 这样 那样 之前 之后 以后 以前 " +
		"这种 那种 东西 一点 比如 的话 结果 发现 " +
		// Interrogatives say what kind of answer is wanted, not what about.
		"几点 多少 多久 哪些 哪家 哪个 什么 怎么 为什么 是否 " +
		// "Do you support X" is about X.
		"支持"
)

// Rune sets as bitmaps over the Basic Multilingual Plane: tokenizing is
// the hot loop of both building and searching.
var lightSet, particleSet = runeSet(lightChars), runeSet(particleChars)

func runeSet(chars string) *[0x10000 / 64]uint64 {
	var set [0x10000 / 64]uint64
	for _, r := range chars {
		set[r/64] |= 1 << (r % 64)
	}
	return &set
}

func isLight(r rune) bool    { return r < 0x10000 && lightSet[r/64]&(1<<(r%64)) != 0 }
func isParticle(r rune) bool { return r < 0x10000 && particleSet[r/64]&(1<<(r%64)) != 0 }

var lightBigrams = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(lightWordsList) {
		rs := []rune(w)
		for i := 1; i < len(rs); i++ {
			m[string(rs[i-1:i+1])] = true
		}
	}
	return m
}()

func lightBigram(a, b rune, bi string) bool {
	return isParticle(a) || isParticle(b) || (isLight(a) && isLight(b)) || lightBigrams[bi]
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isCJK(r rune) bool {
	return r >= 0x2E80 && (unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hiragana, r) || unicode.Is(unicode.Katakana, r))
}
