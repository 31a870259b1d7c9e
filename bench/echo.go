package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fasthttp/websocket"
)

// echoPayload pads an echo frame to the size of a typical send frame.
var echoPayload = `|{"type":"send","conv":"01JD3Q8ZK7M2B5X9V4C6N1P0RT","client_msg_id":"b0a1b2c3-123456-12345678","body":{"type":"text","text":"你好，我想问一下发货时间"}}`

// runEcho measures the physical floor the figures are compared with: a raw
// WebSocket echo server on loopback in this process, and conns clients
// sending to it at rate frames per second for d, open loop, each round trip
// timed from its scheduled instant like the load's messages.
func runEcho(ctx context.Context, rate float64, d time.Duration, conns int, log io.Writer) (Latency, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Latency{}, fmt.Errorf("bench: echo server: %w", err)
	}
	up := websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096}
	var handlers sync.WaitGroup
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		c, err := up.Upgrade(w, req, nil)
		if err != nil {
			return
		}
		handlers.Add(1)
		defer handlers.Done()
		defer c.Close()
		for {
			kind, data, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(kind, data); err != nil {
				return
			}
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		_ = srv.Close()
		handlers.Wait()
	}()

	h := newHistogram()
	start := time.Now()
	type echoConn struct {
		c    *websocket.Conn
		out  chan time.Duration
		done chan struct{}
	}
	cs := make([]*echoConn, conns)
	var writers sync.WaitGroup
	for i := range cs {
		c, _, err := websocket.DefaultDialer.DialContext(ctx, "ws://"+ln.Addr().String()+"/", nil)
		if err != nil {
			for _, ec := range cs[:i] {
				ec.c.Close()
				<-ec.done
			}
			return Latency{}, fmt.Errorf("bench: echo client: %w", err)
		}
		ec := &echoConn{c: c, out: make(chan time.Duration, 1024), done: make(chan struct{})}
		cs[i] = ec
		go func() { // reader
			defer close(ec.done)
			for {
				_, data, err := c.ReadMessage()
				if err != nil {
					return
				}
				now := time.Since(start)
				head, _, _ := strings.Cut(string(data), "|")
				if ns, err := strconv.ParseInt(head, 10, 64); err == nil {
					h.record(now - time.Duration(ns))
				}
			}
		}()
		writers.Add(1)
		go func() { // writer
			defer writers.Done()
			for due := range ec.out {
				if err := c.WriteMessage(websocket.TextMessage, []byte(strconv.FormatInt(int64(due), 10)+echoPayload)); err != nil {
					return
				}
			}
		}()
	}
	interval := float64(time.Second) / rate
	var sent int64
	for k := int64(0); ; k++ {
		due := time.Duration(float64(k) * interval)
		if due >= d || ctx.Err() != nil {
			break
		}
		if wait := due - time.Since(start); wait > 0 {
			time.Sleep(wait)
		}
		cs[k%int64(conns)].out <- due
		sent++
	}
	for _, ec := range cs {
		close(ec.out)
	}
	writers.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for h.summary().N < sent && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for _, ec := range cs {
		ec.c.Close()
		<-ec.done
	}
	l := h.summary()
	if l.N < sent {
		fmt.Fprintf(log, "bench: baseline: %d of %d echoes came back\n", l.N, sent)
	}
	if ctx.Err() != nil {
		return l, ctx.Err()
	}
	if l.N == 0 && sent > 0 {
		return l, errors.New("bench: baseline: no echo came back")
	}
	return l, nil
}
