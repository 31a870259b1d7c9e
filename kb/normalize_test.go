package kb

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNormalize(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		// Width, case, punctuation and emoji.
		{"ＶＩＰ３有啥好处？", "vip3有什么好处 会员"},
		{"Refund 多久能到!!!", "refund 多久能到"},
		{"收件人手机号少打了一位数😭", "收货人手机号少打了一位数"},
		{"退款\u3000多久", "退款 多久"},
		{"「退货」《流程》", "退货 流程"},
		// Traditional characters.
		{"訂單怎麼取消", "订单怎么取消"},
		// Final particles and the A-不 question.
		{"能退不", "能退吗"},
		{"刚下的单 不想要了 咋取消啊", "刚下单 不想要了 怎么取消"},
		{"要不", "要不"},
		{"一点都不", "一点都不"},
		{"啊", "啊"},
		// Typos and colloquial synonyms.
		{"无理由退贷吗", "无理由退货吗"},
		{"优惠卷咋用", "优惠券怎么用"},
		{"优惠劵", "优惠券"},
		{"登陆不了", "登录不了"},
		{"邮费谁出", "运费谁出"},
		{"帐号被封", "账号被封"},
		// Longest match first, and identity rules protect phrases.
		{"物流好几天没动", "物流好几天没动"},
		{"退款几天到账", "退款多久到账"},
		{"快递单号在哪看", "物流单号在哪看"},
		{"要开增值税专用发票", "要开增值税专用发票"},
		// Expansions are appended once each.
		{"买的草莓和苹果烂了", "买的草莓和苹果腐烂 水果 生鲜"},
		{"吹风机坏了", "吹风机坏了 家电"},
		{"", ""},
		{"！？。…", ""},
	} {
		if got := Normalize(tc.in); got != tc.want {
			t.Errorf("Normalize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestFold(t *testing.T) {
	if got := Fold(" 转  人工！！ ＡＢＣ "); got != "转 人工 abc" {
		t.Errorf("Fold = %q", got)
	}
}

// TestSynonymTableIsStable checks the built-in tables: every canonical form
// is left alone by the table (no chains, no rule rewriting another's
// output, so normalisation is idempotent), and keys are already folded.
func TestSynonymTableIsStable(t *testing.T) {
	n := NewNormalizer(nil, nil)
	for k, v := range builtinSynonyms {
		if fold(k) != k {
			t.Errorf("synonym key %q is not in folded form %q", k, fold(k))
		}
		if got := n.repl.replace(fold(v)); got != fold(v) {
			t.Errorf("synonym %q -> %q is not stable: normalising the result gives %q", k, v, got)
		}
	}
	for k := range builtinExpansions {
		if fold(k) != k {
			t.Errorf("expansion key %q is not in folded form %q", k, fold(k))
		}
	}
	if len([]rune(traditionalPairs))%2 != 0 {
		t.Error("traditionalPairs has an odd number of characters")
	}
}

func TestNormalizeIsIdempotentOnDemoEntries(t *testing.T) {
	for _, e := range loadDemo(t) {
		for _, s := range append([]string{e.Question}, e.Similar...) {
			once := defaultNormalizer.repl.replace(fold(s))
			if twice := defaultNormalizer.repl.replace(fold(once)); twice != once {
				t.Errorf("%q: %q then %q", s, once, twice)
			}
		}
	}
}

func TestTenantSynonymsWin(t *testing.T) {
	n := NewNormalizer(map[string]string{"邮费": "快递费用", "小蓝瓶": "精华液"}, map[string]string{"精华液": "护肤品"})
	if got := n.Normalize("小蓝瓶的邮费"); got != "精华液的快递费用 护肤品" {
		t.Errorf("got %q", got)
	}
}

func TestTokenize(t *testing.T) {
	var got []string
	var weights []float64
	tokenize(Normalize("退货运费 vip3 订单20240611035872"), func(tk token) {
		got = append(got, tk.text)
		weights = append(weights, tk.weight)
	})
	want := "退 货 退货 运 货运 费 运费 vip 3 订 单 订单 #num 会 员 会员"
	if strings.Join(got, " ") != want {
		t.Errorf("tokens\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	for i, tk := range got {
		switch n := utf8.RuneCountInString(tk); {
		case tk == "vip" || tk == "3" || tk == "#num":
			if weights[i] != weightWord {
				t.Errorf("%q weight %v", tk, weights[i])
			}
		case n == 1 && tk == "会": // a function character (会不会) as well
			if weights[i] != weightUnigram*lightFactor {
				t.Errorf("unigram %q weight %v", tk, weights[i])
			}
		case n == 1 && weights[i] != weightUnigram:
			t.Errorf("unigram %q weight %v", tk, weights[i])
		case n == 2 && weights[i] != weightBigram:
			t.Errorf("bigram %q weight %v", tk, weights[i])
		}
	}
	// Function words weigh less.
	tokenize("你们的", func(tk token) {
		if tk.weight >= weightUnigram {
			t.Errorf("function word %q has full weight %v", tk.text, tk.weight)
		}
	})
}
