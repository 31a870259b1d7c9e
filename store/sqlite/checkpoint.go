package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"
)

// checkpointEvery is how often the checkpointer copies the WAL's new pages
// into the database file. Measured with `kefu bench` at 1,000 msgs/s over
// 5,000 conversations (docs/performance.md): when commits checkpointed by
// themselves every walCheckpointPages pages, the commit that did it took
// 120-240 ms and held up every message behind it, making the p99 of a
// message's delivery 200 ms; with this checkpointer it is 5 ms. Every
// 100 ms keeps each round small (a few ms); every 250 ms let rounds reach
// 250-500 ms, which slowed the commits running beside them.
const checkpointEvery = 100 * time.Millisecond

// checkpointer runs PASSIVE checkpoints on its own connection, so the
// writer's commits never copy the WAL into the database themselves. A
// PASSIVE checkpoint never blocks the writer or the readers: it copies
// what it can and leaves the rest for the next round. The writer keeps
// wal_autocheckpoint as a backstop; by the time it fires, the checkpointer
// has already copied almost every page, so it costs little.
type checkpointer struct {
	db      *sql.DB
	log     *slog.Logger
	metrics *metrics
	stop    chan struct{}
	done    chan struct{}
}

func startCheckpointer(ctx context.Context, path string, log *slog.Logger, m *metrics) (*checkpointer, error) {
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open checkpointer: %w", err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open checkpointer: %w", err)
	}
	c := &checkpointer{db: db, log: log, metrics: m, stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c, nil
}

func (c *checkpointer) run() {
	defer close(c.done)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			start := time.Now()
			var busy, log, copied int
			if err := c.db.QueryRowContext(bg, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &copied); err != nil {
				c.log.Warn("sqlite: checkpoint failed; commits will checkpoint by themselves", "err", err)
				continue
			}
			c.metrics.checkpointSeconds.Observe(time.Since(start).Seconds())
		}
	}
}

// close stops the checkpointer and waits for a running checkpoint.
func (c *checkpointer) close() error {
	close(c.stop)
	<-c.done
	return c.db.Close()
}
