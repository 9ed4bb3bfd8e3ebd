// Command telemetry is the GPU telemetry pipeline: one binary whose --mode selects what the
// process runs (see --help). This package is the only place that wires adapters to the
// domain services.
package main

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/gin-gonic/gin"

	"github.com/telemetry-pipeline/telemetry-pipeline/config"
)

// bundledCSV is the default source: a DCGM export of 247 GPUs on 31 hosts.
//
//go:embed data/dcgm_metrics_20250718_134233.csv
var bundledCSV []byte

const bundledCSVName = "dcgm_metrics_20250718_134233.csv (bundled)"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, config.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "telemetry:", err)
		os.Exit(1)
	}
}

// run loads the configuration, builds the components of the configured mode and runs them
// until ctx ends (SIGINT or SIGTERM) or one of them fails.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := config.Load(args, stdout)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	gin.SetMode(gin.ReleaseMode)

	// A second signal during shutdown stops at once.
	go func() {
		<-ctx.Done()
		again := make(chan os.Signal, 1)
		signal.Notify(again, os.Interrupt, syscall.SIGTERM)
		<-again
		log.Error("second signal: exiting without finishing shutdown")
		os.Exit(2)
	}()

	log.Info("starting", "mode", cfg.Mode, "http_addr", cfg.HTTPAddr)
	w := &wiring{cfg: cfg, log: log}
	defer w.close()
	components, err := w.build(ctx)
	if err != nil {
		return err
	}
	return runComponents(ctx, log, cfg.ShutdownTimeout, components)
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
