package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore"
	"github.com/telemetry-pipeline/telemetry-pipeline/app/apptest"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

func targetsOf(t *testing.T, p *apptest.Proc) map[string]apptest.TargetJSON {
	t.Helper()
	resp, err := http.Get("http://" + p.Addr + "/api/v1/targets")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var body struct{ Data []apptest.TargetJSON }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	out := map[string]apptest.TargetJSON{}
	for _, tg := range body.Data {
		out[tg.ScrapeURL] = tg
	}
	return out
}

// scrapesByTarget reads every stored sample back and counts, per scrape target (the
// instance label), the samples of each timestamp.
// scrapesByTarget counts the stored GPU samples of each target by scrape time, and every
// stored sample, the targets' own series (up, …) included.
func scrapesByTarget(t *testing.T, dbURL string) (map[string]map[time.Time]int, int) {
	t.Helper()
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, dbURL, sqlstore.Options{})
	require.NoError(t, err)
	defer store.Close()
	devices, err := store.GPUs(ctx, telemetry.GPUFilter{Targets: true})
	require.NoError(t, err)
	out := map[string]map[time.Time]int{}
	total := 0
	for _, g := range devices {
		target := "http://" + g.Labels["instance"] + "/metrics"
		if out[target] == nil && !g.IsTarget() {
			out[target] = map[time.Time]int{}
		}
		_, err := store.Samples(ctx, telemetry.SampleQuery{GPU: g.Key()}, func(s telemetry.Sample) error {
			total++
			if !g.IsTarget() {
				out[target][s.Time]++
			}
			return nil
		})
		require.NoError(t, err)
	}
	return out, total
}

// The built-in scraper on the simulator's 31 targets, sharded over 3 streamers feeding
// Redis and a collector: each target is scraped by exactly one streamer, each scrape is
// stored once under one timestamp, and a target taken down shows as down within two
// intervals and comes back when it returns.
func TestScraperShardedOverThreeStreamers(t *testing.T) {
	slowTest(t, "three streamers scraping 31 exporters")
	t.Parallel()
	simTargets, _ := simulator(t)
	var groups []struct {
		Targets []string          `json:"targets"`
		Labels  map[string]string `json:"labels"`
	}
	data, err := os.ReadFile(simTargets)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &groups))
	require.Len(t, groups[0].Targets, 31)
	flaky := newProxy(t, groups[0].Targets[0]) // the first host, behind a proxy we can cut
	groups[0].Targets[0] = flaky.addr()
	flakyURL := "http://" + flaky.addr() + "/metrics"
	targetsFile := filepath.Join(t.TempDir(), "targets.json")
	data, _ = json.Marshal(groups)
	require.NoError(t, os.WriteFile(targetsFile, data, 0o644))

	p := newPipeline(t)
	p.collector(t, "collector").WaitReady(t)
	const interval = time.Second
	var streamers []*apptest.Proc
	for i := range 3 {
		s := p.streamer(t, fmt.Sprintf("streamer-%d", i), fmt.Sprintf("%d/3", i),
			"--scrape-targets-file="+targetsFile, "--scrape-interval="+interval.String(), "--scrape-timeout=800ms")
		streamers = append(streamers, s)
	}
	for _, s := range streamers {
		s.WaitReady(t)
	}
	owner := map[string]int{}
	require.Eventually(t, func() bool {
		clear(owner)
		for i, s := range streamers {
			for url, tg := range targetsOf(t, s) {
				if tg.Health == "up" {
					owner[url] = i
				}
			}
		}
		return len(owner) == 31
	}, 20*time.Second, 100*time.Millisecond, "every target up")
	perStreamer := map[int]int{}
	total := 0
	for i, s := range streamers {
		n := len(targetsOf(t, s))
		perStreamer[i] = n
		total += n
	}
	assert.Equal(t, 31, total, "every target scraped by exactly one streamer: %v", perStreamer)
	for i := range 3 {
		assert.Positive(t, perStreamer[i], "streamer %d has targets", i)
	}

	flakyOwner := streamers[owner[flakyURL]]
	healthWithinTwoIntervals := func(want string) {
		t.Helper()
		since := time.Now()
		require.Eventually(t, func() bool { return targetsOf(t, flakyOwner)[flakyURL].Health == want },
			3*interval, 20*time.Millisecond, "the target shows as %s", want)
		assert.LessOrEqual(t, time.Since(since), 2*interval+100*time.Millisecond, "%s within two intervals", want)
	}
	time.Sleep(2 * interval)
	flaky.cut()
	healthWithinTwoIntervals("down")
	assert.NotEmpty(t, targetsOf(t, flakyOwner)[flakyURL].LastError)
	time.Sleep(2 * interval)
	flaky.restore()
	healthWithinTwoIntervals("up")
	time.Sleep(2 * interval)

	// What each streamer did, then a graceful stop.
	reported := map[string]apptest.TargetJSON{}
	for _, s := range streamers {
		for url, tg := range targetsOf(t, s) {
			reported[url] = tg
		}
	}
	for _, s := range streamers {
		s.Signal(syscall.SIGTERM)
		require.NoError(t, s.Wait(t, 20*time.Second))
	}

	published := int64(0)
	for _, s := range streamers {
		published += apptest.LoggedCount(t, s, "live source stopped", "samples")
	}
	var stored map[string]map[time.Time]int
	require.Eventually(t, func() bool {
		var total int
		stored, total = scrapesByTarget(t, p.dbURL)
		return int64(total) >= published
	}, 30*time.Second, 500*time.Millisecond, "what the streamers published is stored")
	require.Len(t, stored, 31)
	scrapes := 0
	for url, times := range stored {
		tg, ok := reported[url]
		require.True(t, ok, "samples of %s, which no streamer scraped", url)
		stamps := make([]time.Time, 0, len(times))
		for ts, n := range times {
			require.Equal(t, tg.SamplesPerScrape, n, "%s: every scrape holds all the target's series, once", url)
			stamps = append(stamps, ts)
		}
		slices.SortFunc(stamps, time.Time.Compare)
		for i := 1; i < len(stamps); i++ {
			require.GreaterOrEqual(t, stamps[i].Sub(stamps[i-1]), interval/2, "%s: two scrapes within an interval", url)
		}
		// Between the last report and the stop a target is scraped once more at most; a
		// scrape counted but still being delivered when the streamer stops is dropped with
		// it, as a scrape the stop interrupted; the flaky target's failures stored nothing.
		failed := int64(1)
		if url == flakyURL {
			failed += 5
		}
		assert.LessOrEqual(t, int64(len(times)), tg.Scrapes+1, "%s: scrapes stored", url)
		assert.GreaterOrEqual(t, int64(len(times)), tg.Scrapes-failed, "%s: scrapes stored", url)
		assert.Zero(t, tg.MissedIntervals, url)
		scrapes += len(times)
	}
	t.Logf("31 targets over 3 streamers (%v): %d scrapes stored, each once", perStreamer, scrapes)
}
