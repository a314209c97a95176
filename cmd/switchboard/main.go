// Command switchboard is the Switchboard server.
//
//	switchboard [serve] [flags]   start a node (applies the schema first)
//	switchboard migrate [flags]   apply the database schema and exit
//	switchboard loadtest [flags]  drive a running node and measure it
//	switchboard dev [flags]       make run: local PostgreSQL in .data/, a node, demo data
//	switchboard webhook-echo      a webhook receiver that verifies signatures and prints events
//	switchboard certs             a cluster CA and node certificates for mutual TLS between nodes
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/switchboard-dev/switchboard/loadtest"
	"github.com/switchboard-dev/switchboard/persistence"
	"github.com/switchboard-dev/switchboard/server"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	switch cmd {
	case "serve":
		return serve(ctx, args)
	case "migrate":
		cfg, err := server.LoadConfig("switchboard migrate", args, os.Getenv)
		if err != nil {
			fmt.Fprintln(os.Stderr, "switchboard:", err)
			return 2
		}
		if err := persistence.Migrate(ctx, cfg.DatabaseURL); err != nil {
			fmt.Fprintln(os.Stderr, "switchboard: migrate:", err)
			return 1
		}
		fmt.Println("switchboard: schema is up to date")
		return 0
	case "dev":
		return dev(ctx, args)
	case "certs":
		return certsCmd(args)
	case "webhook-echo":
		return webhookEcho(ctx, args)
	case "loadtest":
		return loadtest.Main(ctx, args, os.Stdout, os.Stderr)
	case "help", "-h", "--help":
		fmt.Println("usage: switchboard [serve|migrate|loadtest] [flags]; switchboard serve -h lists the settings")
		return 0
	default:
		fmt.Fprintf(os.Stderr, "switchboard: unknown command %q (want serve, migrate or loadtest)\n", cmd)
		return 2
	}
}

func serve(ctx context.Context, args []string) int {
	cfg, err := server.LoadConfig("switchboard serve", args, os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "switchboard:", err)
		return 2
	}
	log, err := newLogger(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "switchboard:", err)
		return 2
	}
	log.Info(tuneGC(cfg))
	n, err := server.Start(ctx, cfg, log)
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	log.Info("switchboard is serving", "url", n.URL(), "cluster_provider", cfg.ClusterProvider, "node", n.Member().Address())
	select {
	case <-ctx.Done():
		log.Info("stopping: finishing in-flight requests, flushing commits, snapshotting actors")
	case <-n.Failed():
		log.Error("the node can no longer serve; stopping", "err", n.Err())
	}
	if err := n.Stop(context.Background()); err != nil {
		log.Error("stop", "err", err)
		return 1
	}
	select {
	case <-n.Failed():
		// For a supervisor: this was no requested stop.
		log.Info("stopped after a failure")
		return 1
	default:
	}
	log.Info("stopped")
	return 0
}

// newLogger is the process's logger at cfg's level.
func newLogger(cfg server.Config) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return nil, fmt.Errorf("SWITCHBOARD_LOG_LEVEL: %w", err)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})), nil
}
