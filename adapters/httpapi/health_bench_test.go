package httpapi_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/httpapi"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/health/healthtest"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/query"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// The fleet health views over a day of 256 GPUs on PostgreSQL, sealed: eight copies of
// healthtest.OddOneOut's 32 GPUs (six fields every 30 s: 4.4 million samples), one client,
// the console's Problems and Efficiency pages' requests, and the outliers once the samples
// are gone (read from the 5-minute tier).
//
//	go test -run '^$' -bench FleetHealthViews -benchtime 20x ./adapters/httpapi
func BenchmarkFleetHealthViews(b *testing.B) {
	ctx := context.Background()
	s, err := sqlstore.Open(ctx, sqlstoretest.PostgresURL(b), sqlstore.Options{})
	require.NoError(b, err)
	b.Cleanup(func() { s.Close() })
	for slice := range 12 { // a day, two hours at a time
		day := healthtest.OddOneOut(t0.Add(time.Duration(slice)*2*time.Hour), true)
		for c := range 8 {
			cp := telemetry.Batch{ID: fmt.Sprint(day.ID, slice, c)}
			for _, g := range day.GPUs {
				g.UUID, g.Hostname = fmt.Sprint(g.UUID, "-", c), fmt.Sprint(g.Hostname, "-", c)
				cp.GPUs = append(cp.GPUs, g)
			}
			for _, smp := range day.Samples {
				smp.GPU = fmt.Sprint(smp.GPU, "-", c)
				cp.Samples = append(cp.Samples, smp)
			}
			_, err := s.WriteBatch(ctx, cp)
			require.NoError(b, err)
		}
	}
	_, err = s.Seal(ctx)
	require.NoError(b, err)
	api := httpapi.New(httpapi.Options{Query: query.New(s, s, s, s).WithTiers(s), Fleet: query.NewFleet(s, s).WithTiers(s).WithRecords(s),
		Logger: slog.New(slog.DiscardHandler)})
	day := url.Values{"start_time": {t0.Format(time.RFC3339)}, "end_time": {t0.Add(24 * time.Hour).Format(time.RFC3339)}}.Encode()
	run := func(name, target string) {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				rec := httptest.NewRecorder()
				api.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
				require.Equal(b, http.StatusOK, rec.Code, rec.Body.String())
			}
		})
	}
	run("outliers", "/api/v1/fleet/outliers?"+day)
	run("efficiency", "/api/v1/fleet/efficiency?"+day)
	run("fields", "/api/v1/fleet/fields?"+day)
	run("open-events", "/api/v1/events?open=true&"+day)
	// The samples gone, the outliers are measured from the 5-minute tier.
	_, err = s.Prune(ctx, sqlstore.Cutoffs{Raw: t0.Add(25 * time.Hour)})
	require.NoError(b, err)
	run("outliers-from-tier", "/api/v1/fleet/outliers?"+day)
}
