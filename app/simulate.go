package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/csvsource"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/dcgmsim"
	"github.com/telemetry-pipeline/telemetry-pipeline/config"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// simulate serves a simulated fleet of dcgm-exporters until ctx ends: host i of the CSV's
// fleet on the port after i of --listen's.
func simulate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := config.LoadSimulate(args, stdout)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	src := csvsource.Bytes(bundledCSVName, bundledCSV, csvsource.Options{Logger: log})
	if cfg.CSV != "" {
		src = csvsource.File(cfg.CSV, csvsource.Options{Logger: log})
	}
	var readings []telemetry.Reading
	if _, err := src.Scan(ctx, func(r telemetry.Reading) error {
		readings = append(readings, r)
		return nil
	}); err != nil {
		return err
	}
	fleet := dcgmsim.New(readings, dcgmsim.Options{MIG: cfg.MIG, Pods: cfg.Pods, Hosts: cfg.Hosts,
		TimeSliced: cfg.TimeSliced, BadLine: cfg.BadLine, Health: true})
	host, portText, _ := net.SplitHostPort(cfg.Listen)
	port, _ := strconv.Atoi(portText)

	var servers []*http.Server
	var targets []string
	errc := make(chan error, len(fleet.Hosts()))
	for i, name := range fleet.Hosts() {
		addr := net.JoinHostPort(host, strconv.Itoa(port+i))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, s := range servers {
				s.Close()
			}
			return fmt.Errorf("simulate host %s: %w", name, err)
		}
		srv := &http.Server{Handler: fleet.Handler(name), ReadHeaderTimeout: 5 * time.Second}
		servers = append(servers, srv)
		advertised := ln.Addr().String()
		if cfg.Advertise != "" {
			advertised = net.JoinHostPort(cfg.Advertise, strconv.Itoa(port+i))
		}
		targets = append(targets, advertised)
		go func() { errc <- srv.Serve(ln) }()
	}
	if cfg.TargetsFile != "" {
		data, _ := json.MarshalIndent([]map[string]any{{"targets": targets, "labels": map[string]string{}}}, "", "  ")
		if err := os.WriteFile(cfg.TargetsFile, append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("targets-file: %w", err)
		}
	}
	log.Info("simulating dcgm-exporters", "hosts", len(targets), "first", "http://"+targets[0]+"/metrics",
		"last", "http://"+targets[len(targets)-1]+"/metrics", "series_per_host", fleet.Series(fleet.Hosts()[0]),
		"mig_instances", cfg.MIG, "targets_file", cfg.TargetsFile)
	select {
	case <-ctx.Done():
	case err := <-errc:
		log.Error("simulated exporter failed", "err", err)
	}
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			_ = s.Shutdown(sctx)
		}()
	}
	wg.Wait()
	return nil
}
