// Command telemetry is the GPU telemetry pipeline: one binary whose --mode selects what the
// process runs (see --help). This package is the only place that wires adapters to the
// domain services.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
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
	"strings"
	"syscall"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/gin-gonic/gin"
	"golang.org/x/crypto/bcrypt"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/webconfig"
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
// Every mode keeps a few tens of megabytes live and allocates fast (decoded requests and
// batches in streamers and collectors, pages and PromQL series in the API): collecting at
// 400 % heap growth instead of 100 % measured 1.25× remote_write ingestion in mode all. The
// API alone collects at 200 %: at 400 % sixteen clients listing 100,000 GPUs took it to
// 125 MB, and past its 150 MB budget on a loaded machine, against 85 MB at 200 %, for some
// 5 % of PromQL throughput (docs/performance.md). Inside a container with a memory limit,
// the heap is kept under 90 % of it, collecting harder near it rather than being killed.
func tuneGC(log *slog.Logger, mode config.Mode) {
	if os.Getenv("GOGC") == "" {
		percent := 400
		if mode == config.ModeAPI {
			percent = 200
		}
		debug.SetGCPercent(percent)
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
	if len(args) > 0 && args[0] == "hash-password" {
		return hashPassword(os.Stdin, stdout, args[1:])
	}
	cfg, err := config.Load(args, stdout)
	if err != nil {
		return err
	}
	if cfg.HealthCheck {
		return healthCheck(ctx, cfg)
	}
	log := newLogger(cfg, stderr)
	gin.SetMode(gin.ReleaseMode)
	tuneGC(log, cfg.Mode)

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
		fmt.Fprint(stdout, w.report(ctx, time.Since(began)))
	}
	return nil
}

// hashPassword prints the bcrypt hash of the password on the first line of in, for the
// web config's basic_auth_users, as htpasswd -nBC 10 does.
func hashPassword(in io.Reader, out io.Writer, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("hash-password reads the password on stdin and takes no arguments: echo -n PASSWORD | telemetry hash-password")
	}
	line, err := bufio.NewReader(io.LimitReader(in, 73)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	pass := strings.TrimRight(line, "\r\n")
	if pass == "" {
		return errors.New("hash-password: no password on stdin")
	}
	if len(pass) > 72 {
		return errors.New("hash-password: bcrypt takes 72 bytes at most")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, string(hash))
	return err
}

// healthCheck asks the local process serving on cfg.HTTPAddr for /health, over HTTPS when
// its web config serves TLS.
func healthCheck(ctx context.Context, cfg config.Config) error {
	addr := cfg.HTTPAddr
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("health check: http-addr %q: %w", addr, err)
	}
	scheme, client := "http", http.DefaultClient
	if cfg.WebConfigFile != "" {
		web, err := webconfig.Load(cfg.WebConfigFile, slog.New(slog.DiscardHandler))
		if err != nil {
			return fmt.Errorf("health check: %w", err)
		}
		if web.TLS() != nil {
			// The process asks itself: its certificate names the service, not 127.0.0.1.
			scheme = "https"
			client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec
		}
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+net.JoinHostPort(host, port)+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
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
