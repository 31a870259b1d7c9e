package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/websocket"
)

// idleTokensEvery is how many idle sockets share one visitor token (one
// customer's devices): issuing a token per socket would make the setup a
// REST benchmark.
const idleTokensEvery = 100

// runIdle opens cfg.Idle authenticated user sockets that do nothing but
// answer the server's pings, holds them for cfg.Duration and reports the
// connect rate and the server's memory per connection.
func runIdle(ctx context.Context, cfg Config) (*Report, error) {
	want := uint64(cfg.Idle) + 256
	if got := raiseFileLimit(want); got < want {
		return nil, fmt.Errorf("%w: the limit is %d and -idle %d needs about %d (as root: ulimit -n 1048576)", ErrFileLimit, got, cfg.Idle, want)
	}
	logf := func(format string, args ...any) { fmt.Fprintf(cfg.Log, "bench: "+format+"\n", args...) }
	a := newAPI(cfg.URL, cfg.DialConcurrency)
	defer a.close()
	dl, err := newDialer(cfg.URL, cfg.URL, cfg.Sources, 1024)
	if err != nil {
		return nil, err
	}

	tokens := make([]string, (cfg.Idle+idleTokensEvery-1)/idleTokensEvery)
	if err := parallel(ctx, len(tokens), 16, func(i int) error {
		t, _, err := a.visitor(ctx, cfg.Tenant)
		tokens[i] = t
		return err
	}); err != nil {
		return nil, err
	}
	before, err := serverMem(ctx, a)
	if err != nil {
		return nil, err
	}
	logf("idle: opening %d sockets from %d source addresses", cfg.Idle, cfg.Sources)

	conns := make([]*websocket.Conn, cfg.Idle)
	readers := make([]chan struct{}, cfg.Idle)
	var (
		closing  atomic.Bool
		dropped  atomic.Int64
		failures atomic.Int64
		firstErr error
		errOnce  sync.Once
		opened   atomic.Int64
	)
	start := time.Now()
	progress := time.NewTicker(5 * time.Second)
	defer progress.Stop()
	go func() {
		for range progress.C {
			logf("idle: %d open", opened.Load())
		}
	}()
	err = parallel(ctx, cfg.Idle, cfg.DialConcurrency, func(i int) error {
		conn, _, err := dl.dial(ctx, "/v1/ws/user", tokens[i/idleTokensEvery], "", i)
		if err != nil {
			failures.Add(1)
			errOnce.Do(func() { firstErr = err })
			if errors.Is(err, ErrFileLimit) || errors.Is(err, ErrNoPorts) || failures.Load() > 100 {
				return err
			}
			return nil
		}
		conns[i] = conn
		done := make(chan struct{})
		readers[i] = done
		go func() { // answers pings; ends when the socket does
			defer close(done)
			for {
				if _, _, err := conn.ReadMessage(); err != nil {
					if !closing.Load() {
						dropped.Add(1)
					}
					return
				}
			}
		}()
		opened.Add(1)
		return nil
	})
	elapsed := time.Since(start)
	defer func() {
		closing.Store(true)
		for i, c := range conns {
			if c != nil {
				c.Close()
				<-readers[i]
			}
		}
	}()
	if err != nil {
		return nil, fmt.Errorf("bench: idle: %d of %d sockets opened: %w", opened.Load(), cfg.Idle, err)
	}
	n := opened.Load()
	logf("idle: %d sockets open in %v (%d failed); holding for %v", n, elapsed.Round(time.Millisecond), failures.Load(), cfg.Duration)
	time.Sleep(2 * time.Second) // let the server's RSS settle
	after, err := serverMem(ctx, a)
	if err != nil {
		return nil, err
	}
	select {
	case <-time.After(cfg.Duration):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	held, err := serverMem(ctx, a)
	if err != nil {
		return nil, err
	}

	rep := &Report{Mode: "idle", Config: reportConfig(cfg), Connections: int(n)}
	rep.ConnectsPerSec = round1(float64(n) / elapsed.Seconds())
	rep.ConnectFailures = failures.Load()
	rep.Dropped = dropped.Load()
	rep.Errors = rep.ConnectFailures + rep.Dropped
	if firstErr != nil {
		rep.Notes = append(rep.Notes, "first connect error: "+firstErr.Error())
	}
	per := func(a, b float64) int64 {
		if n == 0 {
			return 0
		}
		return int64(math.Round((b - a) / float64(n)))
	}
	rep.ServerRSSBefore, rep.ServerRSSAfter, rep.ServerRSSHeld = int64(before.rss), int64(after.rss), int64(held.rss)
	rep.RSSBytesPerConn = per(before.rss, after.rss)
	rep.Idle = &IdleDetail{
		HeapInusePerConn:  per(before.heap, after.heap),
		StackInusePerConn: per(before.stack, after.stack),
		GoroutinesPerConn: round1(float64(per(before.goroutines*10, after.goroutines*10)) / 10),
		RSSPerConnHeld:    per(before.rss, held.rss),
		HeldSec:           cfg.Duration.Seconds(),
		Sources:           cfg.Sources,
	}
	rep.HarnessRSS = selfRSS()
	rep.DurationSec = round3(elapsed.Seconds())
	rep.Notes = append(rep.Notes, fmt.Sprintf("idle sockets are authenticated customers with no subscription; %d sockets share each visitor token", idleTokensEvery))
	rep.fillHost()
	return rep, nil
}

// mem is a snapshot of the server's memory gauges.
type mem struct{ rss, heap, stack, goroutines float64 }

func serverMem(ctx context.Context, a *api) (mem, error) {
	var m mem
	var err error
	for _, g := range []struct {
		name string
		v    *float64
	}{
		{"process_resident_memory_bytes", &m.rss}, {"go_memstats_heap_inuse_bytes", &m.heap},
		{"go_memstats_stack_inuse_bytes", &m.stack}, {"go_goroutines", &m.goroutines},
	} {
		if *g.v, err = a.metric(ctx, g.name); err != nil {
			return m, err
		}
	}
	return m, nil
}
