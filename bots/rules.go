package bots

import (
	"context"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/kefu-dev/kefu/kb"
)

// Verdict is what the rules found in one message.
type Verdict struct {
	// Human: the user asks for a person (转人工, 找真人, 叫你们经理 …).
	Human bool
	// Anger is the intensity of anger or complaint, summed over the
	// lexicon's hits; Rules.AngerThreshold decides when it escalates.
	Anger float64
	// Lookup: the user asks the bot to look up their own order or
	// after-sales case (帮我查一下订单…到哪了). No FAQ answers that.
	Lookup bool
	// Hits names the rules that fired, for Reply.Reason and logs.
	Hits []string
}

// Intent is what a Classifier says about a message.
type Intent struct {
	Human bool    // the user wants a person
	Anger float64 // 0 (calm) to 1 (furious)
}

// Classifier is an optional second opinion on escalation, such as an LLM
// (LLM implements it). It is asked only about messages the lexicon did not
// already escalate.
type Classifier interface {
	Classify(ctx context.Context, text string) (Intent, error)
}

// Rules is the first stage: explicit requests for a person, anger and
// complaints, and requests to look up personal records. Matching is on
// kb.Fold'ed text (full-width folded, lower case, punctuation removed), so
// "转 人工！" and "转人工" are the same. The zero value is ready to use.
//
// Decisions on look-alikes (tested in rules_test.go):
//   - "人工智能是什么", "有真人实拍图吗", "人工费多少": not requests; these
//     compounds are removed before matching.
//   - "客服电话多少", "人工客服几点上班", "怎么联系人工客服", "怎么投诉快递员":
//     questions about the service, which the FAQ answers; a how/where/when
//     or phone-number word turns a soft request phrase (人工客服, 找客服,
//     投诉) into a question. The FAQ's own answer tells the user how to
//     reach a person.
//   - "转人工", "接人工", "我要人工", "换个真人" are commands and escalate
//     even inside a question ("怎么转人工" wants a person now).
//   - A message that is nothing but request words ("人工", "客服客服",
//     "有人吗", "客服在吗") escalates: that is how people ask in chat.
//   - "我要投诉" escalates (the user wants a complaint handled), "在哪投诉"
//     is a question about the channel.
type Rules struct {
	// AngerThreshold is the anger intensity that escalates. Zero: 1.0,
	// which one strong word (垃圾, 骗子, 12315) reaches alone and mild
	// words (失望, 太差) reach only together.
	AngerThreshold float64
	// Classifier, if set, is asked about messages the lexicon does not
	// escalate (see Pipeline). Nil: lexicon only.
	Classifier Classifier
}

func (r *Rules) angerThreshold() float64 {
	if r == nil || r.AngerThreshold <= 0 {
		return 1.0
	}
	return r.AngerThreshold
}

// Check applies the lexicon rules to text. It is pure and fast (no I/O).
func (r *Rules) Check(text string) Verdict {
	var v Verdict
	folded := kb.Fold(text)
	// c is the compact form: Chinese has no spaces, and users put them
	// anywhere ("转 人工").
	c := strings.ReplaceAll(folded, " ", "")
	c = lookAlikes.ReplaceAllString(c, "#")
	info := infoQuestion.MatchString(c)

	hit := func(name string) { v.Hits = append(v.Hits, name) }
	switch {
	case humanCommand.MatchString(c):
		v.Human = true
		hit("human_command")
	case !info && humanSoft.MatchString(c):
		v.Human = true
		hit("human_request")
	case !info && bareRequest(c):
		v.Human = true
		hit("human_bare")
	case summonBoss.MatchString(c):
		v.Human = true
		hit("summon_manager")
	case callback.MatchString(c):
		v.Human = true
		hit("callback")
	case !info && complainIntent.MatchString(c):
		v.Human = true
		hit("complaint")
	case englishHuman.MatchString(" " + folded + " "):
		v.Human = true
		hit("human_english")
	}

	// Each distinct word adds its group's weight: "失望" alone is mild,
	// "失望，太离谱" is not.
	for _, a := range angerLexicon {
		seen := map[string]bool{}
		for _, m := range a.re.FindAllString(c, -1) {
			if !seen[m] {
				seen[m] = true
				v.Anger += a.weight
			}
		}
		if len(seen) > 0 {
			hit("anger:" + a.name)
		}
	}
	if n := strings.Count(text, "!") + strings.Count(text, "！"); n >= 2 {
		v.Anger += 0.2
	}
	if n := strings.Count(text, "?") + strings.Count(text, "？"); n >= 3 {
		v.Anger += 0.2
	}

	if lookupRequest(c) {
		v.Lookup = true
		hit("lookup")
	}
	return v
}

// Escalates reports whether v alone is reason to hand over, and why.
func (r *Rules) Escalates(v Verdict) (bool, string) {
	switch {
	case v.Human:
		return true, ReasonHumanRequest
	case v.Anger >= r.angerThreshold():
		return true, ReasonAnger
	}
	return false, ""
}

// phrases joins literal phrases into one alternation.
func phrases(list ...string) string {
	q := make([]string, len(list))
	for i, p := range list {
		q[i] = regexp.QuoteMeta(p)
	}
	return "(?:" + strings.Join(q, "|") + ")"
}

var (
	// lookAlikes are compounds containing request words that are not
	// requests. They are blanked out before matching.
	lookAlikes = regexp.MustCompile(phrases(
		"人工智能", "人工费", "人工成本", "人工合成", "人工湖", "人工降雨", "人工呼吸", "人工养殖", "人工种植",
		"人工草坪", "人工皮革", "人工宝石", "人工钻石", "人工晶体", "人工耳蜗", "人工关节", "人工授精", "人工服务费",
		"真人秀", "真人版", "真人实拍", "真人试穿", "真人图", "真人照", "真人cs", "真人模特", "真人尺寸", "真人拍摄", "真人视频",
		"人工审核", "人工核对", "人工核实", "人工检测", "人工质检", "人工分拣", "人工打包", "人工安装", "人工清洗",
		"做客服", "当客服", "招客服", "客服岗", "客服工作", "客服职位", "应聘客服",
		// Robots that are products, not the bot.
		"扫地机器人", "擦窗机器人", "拖地机器人", "炒菜机器人", "玩具机器人", "机器人玩具", "编程机器人",
		"早教机器人", "陪伴机器人", "智能机器人", "机器人吸尘器",
	))

	// infoQuestion marks a question about the service (how, where, when,
	// which number) rather than a request for it.
	infoQuestion = regexp.MustCompile(phrases(
		"怎么", "如何", "怎样", "咋", "在哪", "哪里", "哪儿", "入口", "电话多少", "电话是", "号码", "热线", "几点",
		"时间", "上班", "下班", "营业", "周末", "晚上", "半夜", "凌晨", "节假日", "假期", "放假", "渠道", "方式", "流程",
	))

	// humanCommand: unambiguous commands for a person, escalated even
	// inside a question.
	humanCommand = regexp.MustCompile(
		`(?:转|接|换|切|呼叫|请求|申请|需要|要|找|叫|给我|帮我转|我要|我想要|请)(?:个|一下|一个|接)?(?:人工|真人|活人)|` +
			phrases("转人工", "转接人工", "转真人", "人工服务", "人工坐席", "人工座席", "人工回复", "人工处理", "真人服务",
				"真人回复", "真人客服", "活人客服", "不要机器人", "不想跟机器人", "不想和机器人", "不跟机器人", "别用机器人",
				"不要自动回复", "别自动回复", "不想跟bot", "不要bot", "换人来", "人来处理", "人来回复", "人来跟我说",
				"跟人说话", "和人说话", "跟真人", "和真人") +
			// 找个人来处理, but not 换个人收货 (another recipient).
			`|(?:找|来|派|换)(?:个|一个)(?:真)?人(?:来|跟|和|处理|回复|说|聊|$)`)

	// humanSoft: request phrases that a how/where/when word turns into a
	// question about the service ("人工客服几点上班").
	humanSoft = regexp.MustCompile(
		`(?:找|联系|接通|转接|要|叫|喊|呼叫)(?:一下|个|你们)?(?:的)?(?:客服|人工客服|在线客服)|人工客服|人工`)

	// callback: asking to be called back, which only a person can do.
	callback = regexp.MustCompile(
		`给我(?:打|回|来)(?:个|一个|一通)?电话|打电话给我|(?:回|来)个电话|回电|电话联系我|打给我|回拨|致电给我`)

	// summonBoss: asking for a manager.
	// Shoppers address the seller as 老板 ("老板，请发顺丰"), so 老板
	// counts only after a verb that fetches someone.
	summonBoss = regexp.MustCompile(
		`(?:叫|找|喊|换|让|请|要)(?:你们|你家|你们的|你们家)?(?:的)?(?:经理|主管|领导|负责人|上级|店长|管事的|管理员)|` +
			`(?:叫|找|喊)(?:你们|你家|你们的|你们家)?(?:的)?老板|` +
			`(?:经理|主管|领导|负责人|店长|管事的)(?:呢|在哪|出来|在吗)`)

	// complainIntent: the user is complaining, not asking how to.
	complainIntent = regexp.MustCompile(
		`(?:我要|我想|我必须|我会|我去|我就|必须|一定要|坚决)投诉|投诉你们|投诉你|要投诉`)

	// englishHuman: English requests, matched on words.
	englishHuman = regexp.MustCompile(
		` (?:human|humans|agent|representative|operator|real person|live person|live agent|real human|` +
			`a person|someone real|not a bot|no bot|no bots|talk to someone|speak to someone|customer service rep) `)
)

// bareRequests are the words a message may consist of, and nothing else,
// to count as a request for a person; fillers are allowed around them.
var (
	bareRequestWords = []string{
		"人工客服", "在线客服", "真人客服", "人工", "客服", "真人", "活人", "有人吗", "有没有人", "人呢", "在吗", "在不在", "有人在吗",
	}
	bareFillers = regexp.MustCompile(phrases(
		"请", "麻烦", "帮我", "给我", "我要", "我想", "我找", "要", "找", "转", "接", "快点", "赶紧", "马上", "立刻", "你好", "您好",
		"喂", "谢谢", "呢", "吗", "啊", "呀", "吧", "哈", "嗯", "了", "的", "一下", "服务", "在", "有",
	))
)

// bareRequest reports whether c is nothing but request words and fillers,
// with at least one request word: "人工人工人工", "客服在吗", "有人吗".
// A bare "在吗" alone is a greeting and does not count.
func bareRequest(c string) bool {
	if c == "" || c == "在吗" || c == "在不在" || utf8.RuneCountInString(c) > 16 {
		return false
	}
	rest, found := c, false
	for _, w := range bareRequestWords {
		if strings.Contains(rest, w) {
			found = found || (w != "在吗" && w != "在不在")
			rest = strings.ReplaceAll(rest, w, "")
		}
	}
	rest = bareFillers.ReplaceAllString(rest, "")
	return found && rest == ""
}

// anger is one lexicon group with its intensity.
type anger struct {
	name   string
	weight float64
	re     *regexp.Regexp
}

// angerLexicon: intensity 1.0 escalates alone, smaller ones add up. The
// words are general Chinese abuse, threats to go to regulators or the
// press, frustration with the bot, and strong emotion.
var angerLexicon = []anger{
	{"abuse", 1.0, regexp.MustCompile(phrases(
		"垃圾", "骗子", "骗人", "诈骗", "坑人", "坑爹", "黑店", "无良", "奸商", "傻逼", "煞笔", "傻b", "他妈的", "妈了个",
		"草泥马", "操你", "滚蛋", "去死", "混蛋", "王八蛋", "畜生", "废物", "脑残", "智障", "弱智", "流氓",
		"什么破", "破服务", "破平台", "破店", "破公司", "破系统", "破机器人", "狗屁", "放屁", "恶心死", "太恶心", "欺诈",
		"欺骗消费者",
	) + `|(?:^|[^a-z])(?:sb|tmd|nmd|wtf|fuck|shit)(?:$|[^a-z])`)},
	// Hotlines only as whole numbers: 12315 inside an order number is not a threat.
	{"threat", 1.0, regexp.MustCompile(phrases(
		"消协", "消费者协会", "工商局", "市场监管", "曝光", "媒体", "记者", "律师", "起诉", "法院", "报警",
		"举报你们", "黑猫投诉", "维权", "315晚会",
	) + `|(?:^|[^0-9])(?:12315|12345)(?:$|[^0-9])`)},
	{"bot_frustration", 1.0, regexp.MustCompile(
		`听不懂人话|答非所问|人工智障|机器人.{0,4}(?:听不懂|没用|太笨|好笨|真笨|傻|废|垃圾|有病)|` +
			`(?:别|不要)(?:再)?(?:给我)?发(?:这些)?(?:模板|套话|自动回复)|复制粘贴|车轱辘话|说了等于没说|问了也白问`)},
	{"emotion", 1.0, regexp.MustCompile(phrases(
		"气死", "忍无可忍", "受够了", "太过分了", "欺人太甚", "火大", "烦死了",
	))},
	// 崩溃 is also what an app does, so it only counts half.
	{"negative", 0.5, regexp.MustCompile(phrases(
		"过分", "离谱", "太差", "差劲", "无语", "失望", "生气", "愤怒", "恼火", "不靠谱", "不负责", "没人管", "没人理",
		"不理我", "没人处理", "敷衍", "踢皮球", "推卸", "耍我", "浪费我时间", "给个说法", "讨个说法", "不满意", "郁闷", "坑",
		"崩溃", "卧槽",
	))},
	{"repeated", 0.5, regexp.MustCompile(
		`(?:问|说|找|打|联系)了?(?:你们)?(?:[两三四五六七八九十几好多]+|多少)(?:遍|次)|第[二三四五几]次|再不(?:处理|解决|退|给|回复)`)},
}

// lookupRequest reports whether c asks the bot to look up the user's own
// record: an order or case number with a status question, or "帮我查…".
func lookupRequest(c string) bool {
	hasID := recordID.MatchString(c)
	switch {
	case !hasID && howTo.MatchString(c):
		return false // 我的退款进度在哪看: the FAQ explains where to look
	case lookupAsk.MatchString(c):
		return true
	case hasID && statusAsk.MatchString(c):
		return true
	case ownRecord.MatchString(c) && statusAsk.MatchString(c):
		return true
	}
	return false
}

var (
	// recordID: order, tracking or after-sales numbers (8+ digits,
	// optionally after letters: SF1234567890, SH20240610112).
	recordID  = regexp.MustCompile(`[a-z]{0,4}[0-9]{8,}`)
	lookupAsk = regexp.MustCompile(`(?:帮我|帮忙|给我|麻烦你?|请你?)(?:查|看|查询|查看|核实|确认)(?:一下|下|查|看)?(?:我的|我|订单|快递|物流|退款|售后|包裹|这个|单号)`)
	statusAsk = regexp.MustCompile(
		`到哪|到了没|到没到|进度|状态|通过了?没|审核了?没|审核通过|处理了?没|处理得怎么样|怎么样了|发了没|发货了?没|退了没|到账了?没|什么时候到|现在在哪|查一下|查查`)
	howTo     = regexp.MustCompile(`怎么|如何|怎样|在哪|哪里|哪儿|去哪`)
	ownRecord = regexp.MustCompile(`(?:我的|我那个|我这个|我那笔|我这笔)(?:订单|快递|包裹|退款|售后|退货|申请|工单|换货)`)
)
