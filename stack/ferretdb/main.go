// Command ferretdb serves the MongoDB wire protocol for Bazaar's local stack.
//
// It embeds FerretDB's library API instead of building FerretDB's own command,
// whose `go install` binary panics at start without build metadata
// (FerretDB issue #2982). Flags are the only configuration.
package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen-addr", "127.0.0.1:27017", "TCP address to listen on")
	handler := flag.String("handler", "postgresql", "backend: postgresql or sqlite")
	postgresURL := flag.String("postgresql-url", "", "PostgreSQL connection URL (postgresql handler)")
	sqliteURL := flag.String("sqlite-url", "", "SQLite directory URI (sqlite handler)")
	flag.Parse()

	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:      ferretdb.ListenerConfig{TCP: *listen},
		Logger:        logger,
		Handler:       *handler,
		PostgreSQLURL: *postgresURL,
		SQLiteURL:     *sqliteURL,
	})
	if err != nil {
		logger.Error("ferretdb: invalid configuration", "error", err)
		os.Exit(2)
	}

	if err := f.Run(ctx); err != nil && ctx.Err() == nil {
		logger.Error("ferretdb: stopped with an error", "error", err)
		os.Exit(1)
	}
}
