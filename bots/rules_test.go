package bots

import (
	"strings"
	"testing"
)

// Requests for a person, in the many ways people ask. None of these lines
// is from the evaluation sets.
var humanRequests = []string{
	// Bare and commands.
	"人工", "人工！", "人工客服", "转人工", "转 人工", "转人工！！", "转接人工", "给我转人工", "帮我转一下人工", "请转人工客服",
	"我要人工", "我要人工服务", "人工服务", "接人工", "快点接人工", "能不能转人工", "可以转人工吗", "怎么转人工",
	"人工人工", "客服客服客服", "客服", "在线客服", "有人吗", "有没有人", "人呢？", "客服在吗", "客服在吗？？", "有客服吗",
	"找真人", "真人客服", "我要真人", "换个真人", "转真人", "要真人回复", "我要找真人客服", "跟真人聊",
	"不要机器人", "不想跟机器人说话", "别用机器人回复我", "不要自动回复", "找个人来处理一下", "来个人", "换个人来跟我说",
	"找客服", "我要找客服", "联系客服", "叫客服来",
	// Managers.
	"叫你们经理来", "找你们主管", "让你们领导跟我说", "我要找负责人", "你们负责人呢", "经理呢", "叫你们老板出来",
	// Callbacks.
	"给我打个电话", "能不能给我回个电话", "打电话给我", "请尽快电话联系我", "麻烦回电",
	// Complaints.
	"我要投诉", "我要投诉你们", "我必须投诉", "投诉你们！", "我要投诉快递员",
	// English and mixed.
	"human", "Human please", "agent", "talk to a human", "real person please", "I want a live agent", "speak to someone",
	"not a bot", "ＨＵＭＡＮ", "转人工 please",
	// Traditional characters and full width.
	"轉人工", "人工客服！！",
}

// Angry messages: escalated by intensity, whatever they ask.
var angryMessages = []string{
	"垃圾平台", "你们就是骗子", "黑店！退钱", "什么破服务", "坑人啊你们", "气死我了", "忍无可忍了", "受够了你们",
	"再不退款我就打12315", "我要去消协", "我要曝光你们", "等着收律师函吧，我要起诉", "我要报警",
	"机器人听不懂吗", "你这机器人太笨了", "答非所问", "人工智障", "别再给我发模板了",
	"太过分了", "失望，太差劲了", "没人管没人理，敷衍", "说了三遍了还没解决，太离谱", "sb客服",
}

// Look-alikes: messages that mention people, service or complaints but do
// not ask for a person. Decisions are documented on Rules.
var notEscalated = []string{
	"人工智能是什么", "你们用人工智能吗", "安装要收人工费吗", "人工费多少", "人工审核要多久",
	"客服电话多少", "客服几点上班", "人工客服几点下班", "周末有人工客服吗", "晚上有客服吗", "怎么联系人工客服",
	"人工客服入口在哪", "客服热线是多少", "你们招客服吗", "我想应聘客服",
	"有真人实拍图吗", "有没有真人试穿", "真人秀", "扫地机器人没用几天就坏了", "扫地机器人好用吗",
	"怎么投诉快递员", "在哪里可以投诉", "投诉渠道是什么", "投诉电话多少",
	"你们老板是谁", "老板，能发顺丰吗", "请老板发货快一点",
	"能换个人收货吗", "有人跟我说可以退", "可以打电话吗", "客服电话是多少 我想打电话问", "怎么打电话给你们",
	"在吗", "你好", "退货运费谁出", "优惠券怎么用", "我的USB充电线坏了", "订单号20231234567 能取消吗",
	"系统崩溃了 付不了款", "钱扣了 订单还是待付款！！", "快递员态度太差了 在哪可以投诉他", "我买了315元的东西",
	"扣了两次钱", "第二次下单", "给我妈的生日礼物", "这个坑怎么填", "不满意可以退吗",
}

func TestRulesEscalateHumanRequests(t *testing.T) {
	var r Rules
	for _, msg := range humanRequests {
		v := r.Check(msg)
		if !v.Human {
			t.Errorf("%q: not recognised as a request for a person (hits %v)", msg, v.Hits)
		}
		if esc, why := r.Escalates(v); !esc || why != ReasonHumanRequest {
			t.Errorf("%q: escalates %v %q", msg, esc, why)
		}
	}
}

func TestRulesEscalateAnger(t *testing.T) {
	var r Rules
	for _, msg := range angryMessages {
		v := r.Check(msg)
		if esc, _ := r.Escalates(v); !esc {
			t.Errorf("%q: anger %.1f does not escalate (hits %v)", msg, v.Anger, v.Hits)
		}
	}
}

func TestRulesDoNotEscalateLookAlikes(t *testing.T) {
	var r Rules
	for _, msg := range notEscalated {
		v := r.Check(msg)
		if esc, why := r.Escalates(v); esc {
			t.Errorf("%q: escalated (%s, anger %.1f, hits %v)", msg, why, v.Anger, v.Hits)
		}
	}
}

func TestAngerIntensityAddsUp(t *testing.T) {
	var r Rules
	mild := r.Check("有点失望")
	if mild.Anger <= 0 || mild.Anger >= 1 {
		t.Errorf("mild anger %.2f", mild.Anger)
	}
	if esc, _ := r.Escalates(mild); esc {
		t.Error("one mild word escalated")
	}
	two := r.Check("太失望了，太离谱")
	if esc, why := r.Escalates(two); !esc || why != ReasonAnger {
		t.Errorf("two mild words: anger %.2f", two.Anger)
	}
	strict := Rules{AngerThreshold: 3}
	if esc, _ := strict.Escalates(r.Check("垃圾")); esc {
		t.Error("a raised threshold still escalates one strong word")
	}
}

func TestLookup(t *testing.T) {
	var r Rules
	for _, msg := range []string{
		"帮我查一下订单2024061500987现在到哪了", "帮我查下我的快递", "麻烦看看我的订单", "单号SF1234567890 到哪了",
		"我的退款审核通过了没", "我的包裹到哪了", "售后单SH20240610112处理了没有", "我的订单什么时候到",
	} {
		if v := r.Check(msg); !v.Lookup {
			t.Errorf("%q: not a lookup", msg)
		}
	}
	for _, msg := range []string{
		"怎么查物流", "物流信息在哪看", "订单号2024061100358 买重复了 还没发货能取消吗", "退款多久到账",
		"我的退款进度在哪看", "快递一直不动", "怎么查看我的订单",
	} {
		if v := r.Check(msg); v.Lookup {
			t.Errorf("%q: taken for a lookup (hits %v)", msg, v.Hits)
		}
	}
}

// FuzzRulesCheck: the rules never panic and never call a person for a
// message that has no letters.
func FuzzRulesCheck(f *testing.F) {
	for _, s := range append(append([]string{}, humanRequests...), notEscalated...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var r Rules
		v := r.Check(s)
		if v.Anger < 0 {
			t.Fatalf("negative anger for %q", s)
		}
		if strings.TrimFunc(s, func(r rune) bool { return r < 'A' || (r > 'z' && r < 0x80) }) == "" && v.Human {
			t.Fatalf("%q: a message without words asks for a person", s)
		}
	})
}
