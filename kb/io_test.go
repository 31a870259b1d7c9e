package kb

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseDemoJSON(t *testing.T) {
	entries := loadDemo(t)
	if len(entries) < 29 {
		t.Fatalf("demo has %d entries", len(entries))
	}
	for _, e := range entries {
		if !e.Enabled {
			t.Errorf("%s: enabled should default to true", e.ID)
		}
	}
	if entries[0].ID != "faq-001" || len(entries[0].Similar) != 3 || len(entries[0].Tags) != 3 {
		t.Errorf("first entry: %+v", entries[0])
	}
}

func TestEnabledDefaultsToTrueOnlyWhenAbsent(t *testing.T) {
	in := `[{"id":"a","question":"q","answer":"x"},{"id":"b","question":"q","answer":"x","enabled":false},{"id":"c","question":"q","answer":"x","enabled":true}]`
	entries, err := ParseJSON(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if got := []bool{entries[0].Enabled, entries[1].Enabled, entries[2].Enabled}; !reflect.DeepEqual(got, []bool{true, false, true}) {
		t.Errorf("enabled = %v", got)
	}
}

// tricky entries exercise quoting, separators, formula-like cells,
// newlines and every optional field.
func trickyEntries() []Entry {
	ts := time.Date(2024, 6, 11, 8, 30, 0, 123456789, time.UTC)
	return []Entry{
		{ID: "faq-001", Category: "订单", Question: "下单后怎么取消订单？", Similar: []string{"订单不想要了", "能撤销吗"},
			Answer: "在“我的-订单”中点击\"取消\"，\n款项原路退回。", Tags: []string{"取消", "退款"}, Enabled: true, UpdatedAt: ts, Version: 3},
		{ID: "=cmd|'/C_calc'!A0", Question: "=SUM(A1:A9)", Similar: []string{"+86 电话", "-5 度", "@user"},
			Answer: "@SUM(1,2)", Tags: []string{"=x", "-y"}, Enabled: false, Version: 0},
		{ID: "q3", Question: "'=already quoted", Answer: "\tleading tab, and, commas", Category: "+plus"},
		{ID: "q4", Question: "a, \"quoted\" question", Answer: "''=two apostrophes", Similar: nil, Tags: nil, Enabled: true},
	}
}

func TestJSONRoundTrip(t *testing.T) {
	want := trickyEntries()
	var buf bytes.Buffer
	if err := WriteJSON(&buf, want); err != nil {
		t.Fatal(err)
	}
	got, err := ParseJSON(&buf)
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
	// The demo file round-trips too.
	demo := loadDemo(t)
	buf.Reset()
	if err := WriteJSON(&buf, demo); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "“我的-全部订单”") {
		t.Error("WriteJSON escaped characters it should keep readable")
	}
	back, err := ParseJSON(&buf)
	if err != nil || !reflect.DeepEqual(back, demo) {
		t.Errorf("demo round trip failed: %v", err)
	}
}

func TestCSVRoundTrip(t *testing.T) {
	for name, want := range map[string][]Entry{"tricky": trickyEntries(), "demo": loadDemo(t)} {
		var buf bytes.Buffer
		if err := WriteCSV(&buf, want); err != nil {
			t.Fatal(err)
		}
		got, err := ParseCSV(bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, buf.String())
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s round trip:\n got %+v\nwant %+v", name, got, want)
		}
	}
}

func TestWriteCSVEscapesFormulas(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteCSV(&buf, trickyEntries()); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.HasPrefix(out, "\uFEFFid,category,question,similar,answer,tags,enabled,updated_at,version\n") {
		t.Errorf("header: %q", out[:min(len(out), 80)])
	}
	for _, cell := range []string{`'=cmd|'/C_calc'!A0`, `'=SUM(A1:A9)`, `'+86 电话|-5 度|@user`, `'@SUM(1,2)`, `'=x|-y`, `''=already quoted`, `"'` + "\t" + `leading tab`, `'+plus`, `'''=two apostrophes`} {
		if !strings.Contains(out, cell) {
			t.Errorf("export lacks the escaped cell %q:\n%s", cell, out)
		}
	}
	for _, bad := range []string{",=SUM", ",@SUM", ",+86", ",=x"} {
		if strings.Contains(out, bad) {
			t.Errorf("export has an unescaped formula cell %q", bad)
		}
	}
}

func TestParseCSVFlexibleHeader(t *testing.T) {
	in := "Question, ID ,answer,tags\n怎么开发票,f1,在订单详情申请, 发票 | 电子发票 ||\n"
	got, err := ParseCSV(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{{ID: "f1", Question: "怎么开发票", Answer: "在订单详情申请", Tags: []string{"发票", "电子发票"}, Enabled: true}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v", got)
	}
	got, err = ParseCSV(strings.NewReader("id,question,answer,enabled\na,q,x,否\nb,q,x,1\n"))
	if err != nil || got[0].Enabled || !got[1].Enabled {
		t.Errorf("enabled column: %+v, %v", got, err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		csv      bool
		want     error
	}{
		{"json not an array", `{"id":"a"}`, false, ErrFormat},
		{"json garbage", `[{"id":`, false, ErrFormat},
		{"json wrong type", `[{"id":"a","question":"q","answer":"x","similar":"not a list"}]`, false, ErrFormat},
		{"json missing answer", `[{"id":"a","question":"q"}]`, false, ErrInvalid},
		{"json blank question", `[{"id":"a","question":"  ","answer":"x"}]`, false, ErrInvalid},
		{"json id with space", `[{"id":"a b","question":"q","answer":"x"}]`, false, ErrInvalid},
		{"json pipe in similar", `[{"id":"a","question":"q","answer":"x","similar":["x|y"]}]`, false, ErrInvalid},
		{"json negative version", `[{"id":"a","question":"q","answer":"x","version":-1}]`, false, ErrInvalid},
		{"json duplicate", `[{"id":"a","question":"q","answer":"x"},{"id":"a","question":"q2","answer":"y"}]`, false, ErrDuplicate},
		{"csv empty", ``, true, ErrFormat},
		{"csv unknown column", "id,question,answer,similiar\na,q,x,y\n", true, ErrFormat},
		{"csv missing column", "id,question\na,q\n", true, ErrFormat},
		{"csv repeated column", "id,question,answer,id\na,q,x,a\n", true, ErrFormat},
		{"csv short row", "id,question,answer\na,q\n", true, ErrFormat},
		{"csv bare quote", "id,question,answer\na,\"q,x\n", true, ErrFormat},
		{"csv bad enabled", "id,question,answer,enabled\na,q,x,maybe\n", true, ErrFormat},
		{"csv bad version", "id,question,answer,version\na,q,x,v2\n", true, ErrFormat},
		{"csv bad time", "id,question,answer,updated_at\na,q,x,yesterday\n", true, ErrFormat},
		{"csv invalid entry", "id,question,answer\na,q,\n", true, ErrInvalid},
		{"csv duplicate", "id,question,answer\na,q,x\na,q,y\n", true, ErrDuplicate},
	} {
		var err error
		if tc.csv {
			_, err = ParseCSV(strings.NewReader(tc.in))
		} else {
			_, err = ParseJSON(strings.NewReader(tc.in))
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	_, err := ParseCSV(strings.NewReader("id,question,answer\na,q,x\nb,q,\n"))
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("CSV errors should name the line: %v", err)
	}
}

func TestValidate(t *testing.T) {
	ok := Entry{ID: "faq-1", Question: "q", Answer: "a", Enabled: true}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("长", MaxQuestionLen+1)
	for name, mut := range map[string]func(*Entry){
		"empty id":       func(e *Entry) { e.ID = "" },
		"id too long":    func(e *Entry) { e.ID = strings.Repeat("x", MaxIDLen+1) },
		"id control":     func(e *Entry) { e.ID = "a\x00" },
		"long question":  func(e *Entry) { e.Question = long },
		"long answer":    func(e *Entry) { e.Answer = strings.Repeat("长", MaxAnswerLen+1) },
		"empty similar":  func(e *Entry) { e.Similar = []string{" "} },
		"too many tags":  func(e *Entry) { e.Tags = make([]string, MaxTags+1) },
		"long tag":       func(e *Entry) { e.Tags = []string{strings.Repeat("t", MaxTagLen+1)} },
		"bad utf8":       func(e *Entry) { e.Answer = "\xff" },
		"pipe in tag":    func(e *Entry) { e.Tags = []string{"a|b"} },
		"long similar":   func(e *Entry) { e.Similar = []string{long} },
		"many similar":   func(e *Entry) { e.Similar = make([]string, MaxSimilar+1) },
		"negative vers.": func(e *Entry) { e.Version = -2 },
	} {
		e := ok
		mut(&e)
		if err := e.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

// FuzzParseCSV: the parser never panics, and whatever it accepts survives
// an export and re-import unchanged.
func FuzzParseCSV(f *testing.F) {
	f.Add("id,question,answer\na,q,x\n")
	f.Add("\uFEFFid,category,question,similar,answer,tags,enabled,updated_at,version\nx,c,'=q,a|b,\"x,y\",t,false,2024-01-01T00:00:00Z,2\n")
	f.Fuzz(func(t *testing.T, in string) {
		entries, err := ParseCSV(strings.NewReader(in))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := WriteCSV(&buf, entries); err != nil {
			t.Fatal(err)
		}
		back, err := ParseCSV(&buf)
		if err != nil {
			t.Fatalf("re-import of an export failed: %v", err)
		}
		if !reflect.DeepEqual(back, entries) {
			t.Fatalf("round trip changed entries:\n%+v\n%+v", entries, back)
		}
	})
}

// FuzzParseJSON: the parser never panics, and what it accepts round-trips.
func FuzzParseJSON(f *testing.F) {
	f.Add(`[{"id":"a","question":"q","answer":"x","similar":["s"],"tags":["t"],"enabled":false,"version":3}]`)
	f.Fuzz(func(t *testing.T, in string) {
		entries, err := ParseJSON(strings.NewReader(in))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := WriteJSON(&buf, entries); err != nil {
			t.Fatal(err)
		}
		back, err := ParseJSON(&buf)
		if err != nil {
			t.Fatalf("re-import failed: %v", err)
		}
		if len(back) != len(entries) {
			t.Fatalf("round trip lost entries")
		}
	})
}
