package bots

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSummary(t *testing.T) {
	long := strings.Repeat("订单", 40) // 80 characters
	var nilBot *Pipeline
	got := nilBot.Summary(Handover{Reason: ReasonHumanRequest, BotTurns: 4,
		Questions: []string{"第一个问题", "运费怎么算？", "我的快递\n  到哪了", long, "转人工"}})
	want := "转人工原因：客户要求转人工\n" +
		"机器人已接待：4 轮\n" +
		"客户最近的问题：\n" +
		"1. 我的快递 到哪了\n" +
		"2. " + strings.Repeat("订单", 29) + "订…\n" +
		"3. 转人工"
	if got != want {
		t.Fatalf("Summary =\n%s\nwant\n%s", got, want)
	}
	if line := strings.Split(got, "\n")[4]; utf8.RuneCountInString(line) != len("2. ")+SummaryQuestionRunes {
		t.Fatalf("a long question is not cut to %d characters: %q", SummaryQuestionRunes, line)
	}

	for reason, words := range map[string]string{
		ReasonHumanRequest: "客户要求转人工", ReasonAnger: "客户情绪不满", ReasonClassifier: "客户需要人工协助（模型判断）",
		ReasonFailedTurns: "机器人多次未能解答", ReasonUserRequest: "客户点击了“转人工”", "something_new": "机器人转交",
	} {
		if got := New(Config{}).Summary(Handover{Reason: reason}); !strings.HasPrefix(got, "转人工原因："+words+"\n") {
			t.Errorf("reason %s: %q", reason, got)
		}
	}
	if got := New(Config{}).Summary(Handover{Reason: ReasonUserRequest}); !strings.HasSuffix(got, "机器人已接待：0 轮\n客户最近的问题：（无）") {
		t.Errorf("no turns, no questions: %q", got)
	}

	// The words are configurable field by field, like the bot's others.
	custom := New(Config{Texts: Texts{Handover: HandoverTexts{ReasonLabel: "Reason", Anger: "customer upset", TurnsUnit: "turns"}}})
	got = custom.Summary(Handover{Reason: ReasonAnger, BotTurns: 2, Questions: []string{"太差了"}})
	if want := "Reason：customer upset\n机器人已接待：2 turns\n客户最近的问题：\n1. 太差了"; got != want {
		t.Fatalf("custom Summary = %q, want %q", got, want)
	}
}
