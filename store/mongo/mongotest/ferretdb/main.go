package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	_ "modernc.org/sqlite" // FerretDB's own SQLite driver, to add the index below

	"github.com/kefu-dev/kefu/store/mongo/mongotest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	srv, err := mongotest.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		os.Exit(1)
	}
	if srv.FerretDB {
		go indexIDs(ctx, srv.DataDir())
	}
	fmt.Println("ferretdb ready", srv.URI)
	<-ctx.Done()
	if err := srv.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		os.Exit(1)
	}
}

// indexIDs gives every collection of FerretDB's SQLite files, within a
// quarter of a second of its creation, an index on the expression
// FerretDB looks documents up by _id with. FerretDB v1.24 indexes _id
// under another spelling of that expression (->"_id", not ->'$._id'),
// which SQLite does not match, so every lookup by _id (a timer's put and
// delete on most messages) reads the whole table: under the cluster
// tests' load that cost more CPU than every Kefu process together, and
// the tests measured FerretDB. MongoDB looks _id up in its primary index.
func indexIDs(ctx context.Context, dir string) {
	dbs := map[string]*sql.DB{}
	defer func() {
		for _, db := range dbs {
			db.Close()
		}
	}()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*.sqlite"))
		for _, f := range files {
			db, ok := dbs[f]
			if !ok {
				var err error
				if db, err = sql.Open("sqlite", "file:"+f+"?_pragma=busy_timeout(10000)"); err != nil {
					fmt.Fprintln(os.Stderr, "ferretdb: index _id:", err)
					continue
				}
				dbs[f] = db
			}
			if err := indexTables(ctx, db); err != nil {
				fmt.Fprintln(os.Stderr, "ferretdb: index _id:", err)
			}
		}
	}
}

func indexTables(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `SELECT table_name FROM _ferretdb_collections`)
	if err != nil {
		return nil // not a FerretDB database yet
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return err
		}
		tables = append(tables, t)
	}
	rows.Close()
	for _, t := range tables {
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->'$._id')`, t+"_kefu_by_id", t)
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
	}
	return nil
}
