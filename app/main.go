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
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
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

// tuneGC trades memory for CPU where the environment does not decide (GOGC, GOMEMLIMIT).
// Every mode keeps a few tens of megabytes live and allocates fast (a page of 1,000 samples
// in the API, decoded requests and batches in streamers and collectors): collecting at
// 400 % heap growth instead of 100 % measured ~10 % more window queries a second in the
// API and 1.25× remote_write ingestion in mode all (docs/performance.md). Inside a container
// with a memory limit, the heap is kept under 90 % of it, collecting harder near it rather
// than being killed.
func tuneGC(log *slog.Logger) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	_, _ = memlimit.Set(memlimit.WithRatio(0.9), memlimit.WithProvider(memlimit.FromCgroup),
		memlimit.WithLogger(log.With("component", "gc")))
}

// run loads the configuration, builds the components of the configured mode and runs them
// until ctx ends (SIGINT or SIGTERM) or one of them fails.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "simulate" {
		return simulate(ctx, args[1:], stdout, stderr)
	}
	cfg, err := config.Load(args, stdout)
	if err != nil {
		return err
	}
	if cfg.HealthCheck {
		return healthCheck(ctx, cfg.HTTPAddr)
	}
	log := newLogger(cfg, stderr)
	gin.SetMode(gin.ReleaseMode)
	tuneGC(log)

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
	began := time.Now()
	if err := runComponents(ctx, log, cfg.ShutdownTimeout, components); err != nil {
		return err
	}
	if cfg.ExitWhenDone && ctx.Err() == nil {
		fmt.Fprint(stdout, w.report(time.Since(began)))
	}
	return nil
}

// healthCheck asks the local process serving on addr for /health.
func healthCheck(ctx context.Context, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("health check: http-addr %q: %w", addr, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("health check: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health check: %s answered %s", req.URL, resp.Status)
	}
	return nil
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
