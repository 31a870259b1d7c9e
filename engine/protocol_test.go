package engine

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeClientFrame(t *testing.T) {
	long := strings.Repeat("字", MaxTextRunes+1)
	tests := []struct {
		name string
		in   string
		code Code // "" means valid
	}{
		{"hello", `{"type":"hello","v":1,"token":"t"}`, ""},
		{"hello wrong version", `{"type":"hello","v":2,"token":"t"}`, CodeVersion},
		{"hello without token", `{"type":"hello","v":1}`, CodeMissingField},
		{"send", `{"type":"send","conv":"c1","client_msg_id":"m1","body":{"type":"text","text":"你好"}}`, ""},
		{"send unknown fields ignored", `{"type":"send","conv":"c1","client_msg_id":"m1","body":{"type":"text","text":"hi"},"future":1}`, ""},
		{"send without conv", `{"type":"send","client_msg_id":"m1","body":{"type":"text","text":"hi"}}`, CodeMissingField},
		{"send with operator as conv", `{"type":"send","conv":{"$ne":null},"client_msg_id":"m1","body":{"type":"text","text":"hi"}}`, CodeInvalidField},
		{"send with path as conv", `{"type":"send","conv":"../x","client_msg_id":"m1","body":{"type":"text","text":"hi"}}`, CodeInvalidField},
		{"send without client_msg_id", `{"type":"send","conv":"c1","body":{"type":"text","text":"hi"}}`, CodeMissingField},
		{"send with spaces in client_msg_id", `{"type":"send","conv":"c1","client_msg_id":"a b","body":{"type":"text","text":"hi"}}`, CodeInvalidField},
		{"send without body", `{"type":"send","conv":"c1","client_msg_id":"m1"}`, CodeMissingField},
		{"send empty text", `{"type":"send","conv":"c1","client_msg_id":"m1","body":{"type":"text","text":"  "}}`, CodeMissingField},
		{"send text too long", `{"type":"send","conv":"c1","client_msg_id":"m1","body":{"type":"text","text":"` + long + `"}}`, CodeBodyTooLarge},
		{"send reserved image", `{"type":"send","conv":"c1","client_msg_id":"m1","body":{"type":"image"}}`, CodeUnsupportedBody},
		{"send unknown body", `{"type":"send","conv":"c1","client_msg_id":"m1","body":{"type":"video"}}`, CodeUnsupportedBody},
		{"send body without type", `{"type":"send","conv":"c1","client_msg_id":"m1","body":{"text":"x"}}`, CodeMissingField},
		{"resume", `{"type":"resume","conv":"c1","last_seq":10,"limit":20}`, ""},
		{"resume negative", `{"type":"resume","conv":"c1","last_seq":-1}`, CodeInvalidField},
		{"resume limit too big", `{"type":"resume","conv":"c1","limit":1000}`, CodeInvalidField},
		{"resume last_seq as string", `{"type":"resume","conv":"c1","last_seq":"5"}`, CodeInvalidField},
		{"read", `{"type":"read","conv":"c1","seq":3}`, ""},
		{"read zero", `{"type":"read","conv":"c1","seq":0}`, CodeInvalidField},
		{"typing", `{"type":"typing","conv":"c1","on":true}`, ""},
		{"leave", `{"type":"leave","conv":"c1"}`, ""},
		{"ping", `{"type":"ping","id":"r1"}`, ""},
		{"accept", `{"type":"accept","conv":"c1"}`, ""},
		{"accept without conv", `{"type":"accept"}`, CodeMissingField},
		{"transfer to agent", `{"type":"transfer","conv":"c1","agent_id":"a1","note":"退款"}`, ""},
		{"transfer to group", `{"type":"transfer","conv":"c1","group":"refund"}`, ""},
		{"transfer to both", `{"type":"transfer","conv":"c1","agent_id":"a1","group":"refund"}`, CodeMissingField},
		{"transfer to nobody", `{"type":"transfer","conv":"c1"}`, CodeMissingField},
		{"transfer to an operator", `{"type":"transfer","conv":"c1","agent_id":{"$ne":null}}`, CodeInvalidField},
		{"transfer to a path", `{"type":"transfer","conv":"c1","group":"../admin"}`, CodeInvalidField},
		{"transfer note too long", `{"type":"transfer","conv":"c1","group":"g","note":"` + strings.Repeat("长", MaxNoteRunes+1) + `"}`, CodeBodyTooLarge},
		{"invite without agent", `{"type":"invite","conv":"c1"}`, CodeMissingField},
		{"close with reason", `{"type":"close","conv":"c1","reason":"resolved"}`, ""},
		{"close reason too long", `{"type":"close","conv":"c1","reason":"` + strings.Repeat("x", MaxReasonRunes+1) + `"}`, CodeBodyTooLarge},
		{"note", `{"type":"note","conv":"c1","text":"注意"}`, ""},
		{"empty note", `{"type":"note","conv":"c1","text":" "}`, CodeMissingField},
		{"presence away", `{"type":"presence","status":"away"}`, ""},
		{"presence offline", `{"type":"presence","status":"offline"}`, CodeInvalidField},
		{"rate", `{"type":"rate","conv":"c1","score":5,"comment":"很满意"}`, ""},
		{"rate without comment", `{"type":"rate","conv":"c1","score":1}`, ""},
		{"rate without score", `{"type":"rate","conv":"c1"}`, CodeInvalidField},
		{"rate score too high", `{"type":"rate","conv":"c1","score":6}`, CodeInvalidField},
		{"rate negative score", `{"type":"rate","conv":"c1","score":-1}`, CodeInvalidField},
		{"rate fractional score", `{"type":"rate","conv":"c1","score":4.5}`, CodeInvalidField},
		{"rate score as text", `{"type":"rate","conv":"c1","score":"5"}`, CodeInvalidField},
		{"rate without conv", `{"type":"rate","score":5}`, CodeMissingField},
		{"rate comment too long", `{"type":"rate","conv":"c1","score":3,"comment":"` + strings.Repeat("长", MaxRatingComment+1) + `"}`, CodeBodyTooLarge},
		{"rate long comment trimmed", `{"type":"rate","conv":"c1","score":3,"comment":"  ` + strings.Repeat("长", MaxRatingComment) + `\n "}`, ""},
		{"unknown type", `{"type":"teleport"}`, CodeUnknownType},
		{"missing type", `{"conv":"c1"}`, CodeMissingField},
		{"not json", `hello`, CodeBadFrame},
		{"truncated json", `{"type":"send"`, CodeBadFrame},
		{"array", `[1,2]`, CodeBadFrame},
		{"empty", ``, CodeBadFrame},
		{"invalid utf8", "{\"type\":\"ping\",\"id\":\"\xff\"}", CodeInvalidUTF8},
		{"id too long", `{"type":"ping","id":"` + strings.Repeat("x", 65) + `"}`, CodeInvalidField},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeClientFrame([]byte(tc.in))
			if got := CodeOf(err); got != tc.code {
				t.Fatalf("code = %q (%v), want %q", got, err, tc.code)
			}
		})
	}
}

// FuzzDecodeClientFrame checks that the decoder never panics, that every
// rejection carries a client-facing code, and that what it accepts is
// well formed.
func FuzzDecodeClientFrame(f *testing.F) {
	for _, seed := range []string{
		`{"type":"hello","v":1,"token":"t"}`,
		`{"type":"send","conv":"c1","client_msg_id":"m1","body":{"type":"text","text":"你好"}}`,
		`{"type":"resume","conv":"c1","last_seq":10,"limit":20}`,
		`{"type":"read","conv":"c1","seq":3}`, `{"type":"typing","conv":"c","on":true}`,
		`{"type":"send","conv":{"$ne":null}}`, "\xff", `[]`, `{}`, `null`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := DecodeClientFrame(data)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %v is not a client-facing *Error", err)
			}
			return
		}
		if fr.Type != FramePing && fr.Type != FrameHello && !ValidID(fr.Conv) {
			t.Fatalf("accepted %q with invalid conv %q", data, fr.Conv)
		}
		if fr.Type == FrameSend {
			if fr.Body == nil || fr.Body.Type != BodyText || strings.TrimSpace(fr.Body.Text) == "" || fr.ClientMsgID == "" {
				t.Fatalf("accepted malformed send %q", data)
			}
		}
	})
}

func TestMessageJSONRoundTrip(t *testing.T) {
	in := Message{Conv: "c1", Seq: 7, ClientMsgID: "m7", From: Party{Role: RoleUser, ID: "u1"}, Body: Body{Type: BodyText, Text: "hi"}}
	in.CreatedAt = in.CreatedAt.Add(1700000000123 * 1e6).UTC()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"ts":`) || strings.Contains(string(b), "Tenant") {
		t.Fatalf("wire form %s", b)
	}
	var out Message
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.Seq != in.Seq || !reflect.DeepEqual(out.Body, in.Body) || out.From != in.From || out.CreatedAt.UnixMilli() != in.CreatedAt.UnixMilli() {
		t.Fatalf("round trip: got %+v want %+v", out, in)
	}
}

// TestProtocolDocExamples decodes every client frame example in
// docs/protocol.md, so the document cannot drift from the decoder.
func TestProtocolDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(doc), "```json\n")[1:]
	if len(blocks) == 0 {
		t.Fatal("no json examples in docs/protocol.md")
	}
	for _, b := range blocks {
		for _, line := range strings.Split(strings.SplitN(b, "```", 2)[0], "\n") {
			if strings.TrimSpace(line) == "" {
				continue
			}
			if _, err := DecodeClientFrame([]byte(line)); err != nil {
				t.Errorf("docs example %s: %v", line, err)
			}
		}
	}
}
