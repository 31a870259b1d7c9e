package bots

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeOpenAI is an in-process server speaking the OpenAI chat-completions
// protocol: POST /v1/chat/completions with a bearer key, a JSON reply, or
// with "stream": true server-sent events of chat.completion.chunk objects
// ending in "data: [DONE]", and errors as {"error": {...}} bodies with the
// HTTP status OpenAI uses.
type fakeOpenAI struct {
	t      *testing.T
	srv    *httptest.Server
	reply  func(req chatRequest) fakeReply
	mu     sync.Mutex
	reqs   []chatRequest
	closed chan struct{} // closed when the server stops, to end hanging handlers
}

type chatRequest struct {
	Model    string `json:"model"`
	Stream   bool   `json:"stream"`
	Messages []struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	} `json:"messages"`
	MaxTokens   int     `json:"max_tokens"`
	Temperature float32 `json:"temperature"`
}

func (r chatRequest) system() string { return r.Messages[0].Content }
func (r chatRequest) user() string   { return r.Messages[len(r.Messages)-1].Content }

// fakeReply says how to answer one request.
type fakeReply struct {
	Status  int    // non-zero: an error with this HTTP status
	ErrType string // OpenAI error type and code for Status
	ErrCode string
	Content string // the whole reply (non-streaming), or split into Chunks
	Chunks  []string
	// Delay before anything is written; ChunkDelay between chunks.
	Delay, ChunkDelay time.Duration
	// CutAfter > 0 drops the connection after that many chunks, without
	// [DONE]: a server dying mid-stream.
	CutAfter int
	// NoFinish ends the response cleanly after the chunks but without a
	// finish reason or [DONE]: a proxy closing the stream early.
	NoFinish bool
}

const fakeKey = "sk-test-123"

func newFakeOpenAI(t *testing.T, reply func(req chatRequest) fakeReply) *fakeOpenAI {
	f := &fakeOpenAI{t: t, reply: reply, closed: make(chan struct{})}
	f.srv = httptest.NewServer(http.HandlerFunc(f.handle))
	t.Cleanup(func() {
		close(f.closed)
		f.srv.CloseClientConnections()
		f.srv.Close()
	})
	return f
}

func (f *fakeOpenAI) URL() string { return f.srv.URL + "/v1" }

func (f *fakeOpenAI) requests() []chatRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]chatRequest(nil), f.reqs...)
}

func (f *fakeOpenAI) writeError(w http.ResponseWriter, status int, typ, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"message": msg, "type": typ, "param": nil, "code": code,
	}})
}

func (f *fakeOpenAI) handle(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
		f.writeError(w, http.StatusNotFound, "invalid_request_error", "unknown_url", "Unknown request URL: "+r.URL.Path)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+fakeKey {
		f.writeError(w, http.StatusUnauthorized, "invalid_request_error", "invalid_api_key", "Incorrect API key provided.")
		return
	}
	var req chatRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Model == "" || len(req.Messages) == 0 {
		f.writeError(w, http.StatusBadRequest, "invalid_request_error", "", "We could not parse the JSON body of your request.")
		return
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	rep := f.reply(req)
	if rep.Delay > 0 && !f.sleep(r, rep.Delay) {
		return
	}
	if rep.Status != 0 {
		f.writeError(w, rep.Status, rep.ErrType, rep.ErrCode, http.StatusText(rep.Status))
		return
	}
	created := time.Now().Unix()
	if !req.Stream {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"id": "chatcmpl-1", "object": "chat.completion", "created": created, "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
				"message": map[string]any{"role": "assistant", "content": rep.Content}}},
			"usage": map[string]int{"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
		})
		return
	}
	chunks := rep.Chunks
	if chunks == nil {
		chunks = []string{rep.Content}
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	flusher := w.(http.Flusher)
	send := func(delta map[string]any, finish any) {
		data, _ := json.Marshal(map[string]any{
			"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": created, "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}},
		})
		fmt.Fprintf(w, "data: %s\n\n", data)
		flusher.Flush()
	}
	send(map[string]any{"role": "assistant", "content": ""}, nil)
	for i, c := range chunks {
		if rep.CutAfter > 0 && i == rep.CutAfter {
			// Drop the connection mid-stream.
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		if i > 0 && rep.ChunkDelay > 0 && !f.sleep(r, rep.ChunkDelay) {
			return
		}
		send(map[string]any{"content": c}, nil)
	}
	if rep.NoFinish {
		return
	}
	send(map[string]any{}, "stop")
	fmt.Fprint(w, "data: [DONE]\n\n")
	flusher.Flush()
}

// sleep waits d unless the client goes away or the server stops first.
func (f *fakeOpenAI) sleep(r *http.Request, d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-r.Context().Done():
		return false
	case <-f.closed:
		return false
	}
}

// split cuts s into pieces of n runes, as a model streams tokens.
func split(s string, n int) []string {
	rs := []rune(s)
	var out []string
	for i := 0; i < len(rs); i += n {
		out = append(out, string(rs[i:min(len(rs), i+n)]))
	}
	return out
}

func newTestLLM(t *testing.T, f *fakeOpenAI, timeout time.Duration) *LLM {
	t.Helper()
	l, err := NewLLM(LLMConfig{BaseURL: f.URL(), Model: "test-model", APIKey: fakeKey, Timeout: timeout, ClassifyTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// pieces collects onDelta calls.
type pieces struct {
	mu  sync.Mutex
	got []string
}

func (p *pieces) add(s string) { p.mu.Lock(); p.got = append(p.got, s); p.mu.Unlock() }
func (p *pieces) text() string { p.mu.Lock(); defer p.mu.Unlock(); return strings.Join(p.got, "") }
func (p *pieces) n() int       { p.mu.Lock(); defer p.mu.Unlock(); return len(p.got) }
