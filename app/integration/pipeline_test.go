package integration

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/asynqqueue/asynqtest"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore"
	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/sqlstoretest"
	"github.com/telemetry-pipeline/telemetry-pipeline/app/apptest"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

func TestDefaultRunServesTheBundledFleet(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir) // the default database is ./telemetry.db
	p := start(t)
	started := time.Now()
	var gpus struct {
		Data []struct {
			UUID     string `json:"uuid"`
			Hostname string `json:"hostname"`
		} `json:"data"`
	}
	require.Eventually(t, func() bool {
		p.get(t, "/api/v1/gpus", &gpus)
		return len(gpus.Data) == 247
	}, 10*time.Second, 50*time.Millisecond)
	t.Logf("247 GPUs listed %s after start", time.Since(started).Round(time.Millisecond))
	counts := csvCounts(t)
	hosts := map[string]bool{}
	for _, g := range gpus.Data {
		assert.Contains(t, counts, g.UUID)
		assert.NotEmpty(t, g.Hostname)
		hosts[g.Hostname] = true
	}
	assert.Len(t, hosts, 31)
	var st stats
	p.get(t, "/api/v1/stats", &st)
	assert.EqualValues(t, 247, st.UniqueGPUs)
	assert.EqualValues(t, 31, st.UniqueHosts)
	// The examples of the README and docs/api.md answer on this run: PromQL now, and the targets of a streamer
	// that scrapes nothing (none, not 404).
	var count struct {
		Data struct{ Result []struct{ Value [2]any } }
	}
	require.Eventually(t, func() bool { // the replay stamps each scrape of the file as it comes: some 3 s
		p.get(t, "/prometheus/api/v1/query?query=count(DCGM_FI_DEV_GPU_UTIL)", &count)
		return len(count.Data.Result) == 1 && count.Data.Result[0].Value[1] == "247"
	}, 10*time.Second, 100*time.Millisecond, "%+v", count)
	var targets struct{ Count int }
	require.Equal(t, http.StatusOK, p.get(t, "/api/v1/targets", &targets))
	assert.Zero(t, targets.Count)
	require.NoError(t, p.stop(t))
	assert.FileExists(t, filepath.Join(dir, "telemetry.db"))
}

func TestExactIngestOnEveryStore(t *testing.T) {
	t.Parallel()
	for name, newURL := range map[string]func(testing.TB) string{
		"sqlite": sqlstoretest.SQLiteURL, "postgres": sqlstoretest.PostgresURL,
	} {
		t.Run(name, func(t *testing.T) {
			dbURL := newURL(t)
			p := start(t, "--database-url="+dbURL, "--loop=false", "--timestamps=csv", "--interval=0", "--batch-size=300")
			st := p.waitForSamples(t, 2470)
			assert.Equal(t, stats{TotalRecords: 2470, UniqueGPUs: 247, UniqueHosts: 31}, st)

			// Every GPU's samples come back through exact, inclusive windows.
			counts := csvCounts(t)
			checked := 0
			for uuid, perTS := range counts {
				if checked == 25 {
					break
				}
				checked++
				var all struct {
					Data []struct{ Timestamp time.Time }
				}
				require.Equal(t, http.StatusOK, p.get(t, "/api/v1/gpus/"+uuid+"/telemetry?limit=1000", &all))
				assert.Len(t, all.Data, 10)
				for ts, n := range perTS {
					var page struct {
						Data []struct {
							Timestamp time.Time `json:"timestamp"`
						} `json:"data"`
					}
					q := url.Values{"start_time": {ts}, "end_time": {ts}}
					require.Equal(t, http.StatusOK, p.get(t, "/api/v1/gpus/"+uuid+"/telemetry?"+q.Encode(), &page))
					require.Len(t, page.Data, n, "%s at %s", uuid, ts)
					for _, s := range page.Data {
						assert.Equal(t, ts, s.Timestamp.Format(time.RFC3339))
					}
				}
			}

			// The API keeps serving after the file is done; a restart replaying the same file
			// with its own timestamps stores nothing twice.
			require.NoError(t, p.stop(t))
			again := start(t, "--database-url="+dbURL, "--loop=false", "--timestamps=csv", "--interval=0", "--batch-size=300")
			require.Eventually(t, func() bool { return len(again.logs.Lines("streamer done")) == 1 }, 30*time.Second, 20*time.Millisecond)
			require.Eventually(t, func() bool {
				var st stats
				again.get(t, "/api/v1/stats", &st)
				return st.TotalRecords == 2470
			}, 5*time.Second, 20*time.Millisecond)
			require.NoError(t, again.stop(t))
			store, err := sqlstore.Open(context.Background(), dbURL, sqlstore.Options{})
			require.NoError(t, err)
			defer store.Close()
			final, err := store.Stats(context.Background())
			require.NoError(t, err)
			assert.Equal(t, telemetry.Stats{TotalSamples: 2470, UniqueGPUs: 247, UniqueHosts: 31,
				Oldest: time.Date(2025, 7, 18, 20, 42, 34, 0, time.UTC), Newest: time.Date(2025, 7, 18, 20, 42, 37, 0, time.UTC)}, final)
		})
	}
}

// dirtyCSV writes the bundled file with bad rows among its own — too few fields, cut
// short, a value not a number, text no database should get — and returns its path and its
// counts of good and bad rows.
func dirtyCSV(t testing.TB) (file string, good, bad int) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(string(apptest.BundledCSV)), "\n")
	dirty := []string{lines[0]}
	for i, line := range lines[1:] {
		switch i % 100 {
		case 7:
			dirty = append(dirty, `"2025-07-18T20:42:34Z","DCGM_FI_DEV_GPU_UTIL","0"`) // too few fields
		case 13:
			dirty = append(dirty, strings.Replace(line, `"GPU-`, `"`+`NOTGPU-`, 1)[:len(line)/2]) // truncated
		case 21:
			dirty = append(dirty, strings.Replace(line, `","DCGM_FI_DRIVER`, `x","DCGM_FI_DRIVER`, 1)) // value not a number
		// Text no database should get: each rejects its row, never its batch.
		case 31:
			dirty = append(dirty, strings.Replace(line, `"GPU-`, "\"GPU-\x00", 1)) // NUL in the UUID
		case 43:
			dirty = append(dirty, strings.Replace(line, `"DCGM_FI_`, "\"DCGM_\xff\xfeFI_", 1)) // invalid UTF-8 in the metric
		case 57:
			dirty = append(dirty, strings.Replace(line, `"GPU-`, "\"GPU-"+strings.Repeat("0", 300), 1)) // over-long UUID
		case 71:
			dirty = append(dirty, strings.Replace(line, `,"`, ",\"\x07", 1)) // a control character in the metric
		}
		dirty = append(dirty, line)
		good++
	}
	bad = len(dirty) - 1 - good
	file = filepath.Join(t.TempDir(), "dirty.csv")
	require.NoError(t, os.WriteFile(file, []byte(strings.Join(dirty, "\r\n")+"\r\n"), 0o644))
	return file, good, bad
}

func TestDirtyFileIngestsEveryGoodRow(t *testing.T) {
	file, good, bad := dirtyCSV(t)
	for name, url := range map[string]func(testing.TB) string{"sqlite": sqlstoretest.SQLiteURL, "postgres": sqlstoretest.PostgresURL} {
		t.Run(name, func(t *testing.T) {
			p := start(t, "--database-url="+url(t), "--csv="+file, "--loop=false", "--timestamps=csv", "--interval=0")
			st := p.waitForSamples(t, int64(good))
			assert.EqualValues(t, good, st.TotalRecords)
			require.Eventually(t, func() bool { return len(p.logs.Lines("streamer done")) == 1 }, 10*time.Second, 20*time.Millisecond)
			done := p.logs.Lines("streamer done")[0]
			rejects := p.logs.Lines("csv row rejected")
			assert.EqualValues(t, bad, done["rejected"], "every bad row counted")
			require.Equal(t, min(bad, 100), len(rejects), "the first 100 logged one by one, with their lines")
			if bad > 100 {
				assert.Len(t, p.logs.Lines("csv: further rejected rows in this pass are counted, not logged"), 1)
			}
			reasons := map[string]bool{}
			for _, r := range rejects {
				assert.Positive(t, r["line"])
				reasons[strings.SplitN(r["reason"].(string), ":", 2)[0]] = true
			}
			for _, want := range []string{"uuid", "metric_name"} {
				assert.True(t, reasons[want], "a row rejected for its %s: %v", want, reasons)
			}
			time.Sleep(500 * time.Millisecond) // a batch refused would be dead-lettered by now
			assert.Empty(t, p.logs.Lines("batch dead-lettered: it can never be stored"), "no batch refused")
			assert.EqualValues(t, good, p.waitForSamples(t, int64(good)).TotalRecords, "and nothing more stored")
		})
	}
}

func TestShutdownLosesNothingAcknowledged(t *testing.T) {
	dbURL := sqlstoretest.SQLiteURL(t)
	p := start(t, "--database-url="+dbURL, "--speed=0", "--batch-size=500", "--queue-capacity=16")
	p.waitForSamples(t, 20_000)
	require.NoError(t, p.stop(t))

	assertStoredAsPublished(t, p, dbURL, "every published sample is stored after a graceful stop")
}

// assertStoredAsPublished checks that the database of a stopped process holds every sample
// its streamer said it published.
func assertStoredAsPublished(t *testing.T, p *process, dbURL, msg string) {
	t.Helper()
	stopped := p.logs.Lines("streamer stopped")
	require.Len(t, stopped, 1, p.logs.String())
	published := int64(stopped[0]["samples"].(float64))
	store, err := sqlstore.Open(context.Background(), dbURL, sqlstore.Options{})
	require.NoError(t, err)
	defer store.Close()
	st, err := store.Stats(context.Background())
	require.NoError(t, err)
	assert.Equal(t, published, st.TotalSamples, msg)
}

func TestHealthCheckFlag(t *testing.T) {
	p := start(t, "--database-url="+sqlstoretest.SQLiteURL(t), "--loop=false")
	addr := strings.TrimPrefix(p.base, "http://")
	_, port, _ := net.SplitHostPort(addr)
	_, err := runOnce(t, "--health-check", "--http-addr=:"+port)
	assert.NoError(t, err)
	_, err = runOnce(t, "--health-check", "--http-addr="+freeAddr(t))
	assert.ErrorContains(t, err, "health check")
}

// Two processes started at once on a new SQLite file both come up, whichever migrates: the
// migrations run under a lock on the file. Fifteen files, to catch the race.
func TestConcurrentFirstStartsOnSQLite(t *testing.T) {
	dir := t.TempDir()
	type result struct {
		file string
		err  error
		out  string
	}
	results := make(chan result, 30)
	for i := range 15 {
		file := filepath.Join(dir, fmt.Sprintf("db-%d.db", i))
		for range 2 {
			cmd := exec.Command(apptest.Binary(t), "--mode=migrate", "--database-url=sqlite:"+file)
			go func() {
				out, err := cmd.CombinedOutput()
				results <- result{file, err, string(out)}
			}()
		}
	}
	for range 30 {
		r := <-results
		assert.NoError(t, r.err, "%s: %s", r.file, r.out)
	}
	for i := range 15 {
		url := "sqlite:" + filepath.Join(dir, fmt.Sprintf("db-%d.db", i))
		store, err := sqlstore.Open(context.Background(), url, sqlstore.Options{})
		require.NoError(t, err, "file %d usable", i)
		_, err = store.Stats(context.Background())
		assert.NoError(t, err)
		store.Close()
	}
}

// Two processes may write one SQLite file at once (WAL, a busy timeout, write transactions
// that take the lock up front): both store all they stream.
func TestTwoWritersShareASQLiteFile(t *testing.T) {
	dbURL := sqlstoretest.SQLiteURL(t)
	var procs []*apptest.Proc
	for _, name := range []string{"writer-a", "writer-b"} {
		procs = append(procs, apptest.Spawn(t, name, "--database-url="+dbURL, "--speed=0", "--passes=20", "--batch-size=500"))
	}
	store, err := sqlstore.Open(context.Background(), dbURL, sqlstore.Options{})
	require.NoError(t, err)
	defer store.Close()
	want := int64(2 * 20 * 2470) // each process's passes, stamped apart
	var stored int64
	require.Eventually(t, func() bool {
		st, err := store.Stats(context.Background())
		stored = st.TotalSamples
		return err == nil && stored >= want
	}, time.Minute, 100*time.Millisecond, "both writers' samples stored")
	assert.Equal(t, want, stored)
	for _, p := range procs {
		p.Signal(syscall.SIGTERM)
		require.NoError(t, p.Wait(t, 30*time.Second))
		assert.False(t, logged(p, "batch dead-lettered: it can never be stored"), p.Name)
		assert.False(t, logged(p, "batch failed, will retry"), "%s: no write waited out the busy timeout", p.Name)
	}
}

// --exit-when-done makes a one-shot import: the process exits once the file is stored, and
// says what it stored and rejected, and that a later run's retention would delete it. It
// serves no HTTP: a busy port is no matter.
func TestOneShotImportExitsWhenStored(t *testing.T) {
	file := filepath.Join(t.TempDir(), "with-bad-rows.csv")
	require.NoError(t, os.WriteFile(file, append(slices.Clone(apptest.BundledCSV), []byte("\"2025-07-18T20:42:38Z\",\"M\",\"0\"\n")...), 0o644))
	dbURL := sqlstoretest.SQLiteURL(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	out, err := runOnce(t, "--csv="+file, "--loop=false", "--timestamps=csv", "--exit-when-done",
		"--database-url="+dbURL, "--http-addr="+busy.Addr().String())
	require.NoError(t, err)
	assert.Contains(t, out, "2471 rows read, 1 rejected (fields=1), 0 blank; 2470 samples stored")
	assert.Contains(t, out, "note: the oldest sample stored is from 2025-07-18T20:42:34Z; a run that prunes this database (mode all or collector) deletes what is older than 1d")
	store, err := sqlstore.Open(context.Background(), dbURL, sqlstore.Options{})
	require.NoError(t, err)
	defer store.Close()
	st, err := store.Stats(context.Background())
	require.NoError(t, err)
	assert.EqualValues(t, 2470, st.TotalSamples)
}

// While the database takes no writes, /ready says so and the stream waits; once it takes
// them again, everything the streamer published is stored.
func TestWriteFailuresShowInReady(t *testing.T) {
	p, db, restore := failingWrites(t)
	var status struct{ Status, Reason string }
	require.Eventually(t, func() bool { return p.get(t, "/ready", &status) == http.StatusServiceUnavailable }, 10*time.Second, 50*time.Millisecond)
	assert.Contains(t, status.Reason, "writes failing")
	assert.Contains(t, status.Reason, `"chunks" does not exist`)
	time.Sleep(time.Second)
	restore()
	require.Eventually(t, func() bool { return p.get(t, "/ready", &status) == http.StatusOK }, 30*time.Second, 50*time.Millisecond, "ready again once writes succeed")
	require.NoError(t, p.stop(t))
	stopped := p.logs.Lines("streamer stopped")
	require.Len(t, stopped, 1)
	published := int64(stopped[0]["samples"].(float64))
	var stored int64
	require.NoError(t, db.QueryRow(`SELECT coalesce(sum(samples), 0) FROM chunks`).Scan(&stored))
	assert.Equal(t, published, stored, "nothing accepted was lost")
}

// A shutdown that cannot store what the in-process queue holds says how many accepted
// samples were not stored, exactly, and fails.
func TestShutdownCountsWhatItCouldNotStore(t *testing.T) {
	p, db, restore := failingWrites(t, "--shutdown-timeout=2s")
	require.Eventually(t, func() bool { return p.get(t, "/ready", nil) == http.StatusServiceUnavailable }, 10*time.Second, 50*time.Millisecond)
	err := p.stop(t)
	require.Error(t, err)
	require.Contains(t, err.Error(), "queue not drained")
	var lost, batches int64
	_, scanErr := fmt.Sscanf(err.Error()[strings.Index(err.Error(), "queue not drained"):], "queue not drained within 1.8s: %d accepted samples (%d batches) not stored", &lost, &batches)
	require.NoError(t, scanErr, err.Error())
	restore()
	published := int64(p.logs.Lines("streamer stopped")[0]["samples"].(float64))
	var stored int64
	require.NoError(t, db.QueryRow(`SELECT coalesce(sum(samples), 0) FROM chunks`).Scan(&stored))
	assert.Positive(t, lost)
	assert.Equal(t, published-stored, lost, "the count is exact")
}

// failingWrites starts mode all streaming into a new PostgreSQL database and, once it has
// stored some, makes every write fail as on a full disk (with an error waiting alone does not
// cure); restore makes writes succeed again.
func failingWrites(t *testing.T, args ...string) (p *process, db *sql.DB, restore func()) {
	dbURL := sqlstoretest.PostgresURL(t)
	p = start(t, append([]string{"--database-url=" + dbURL, "--speed=0", "--batch-size=500"}, args...)...)
	p.waitForSamples(t, 5000)
	db, err := sql.Open("pgx", dbURL)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	_, err = db.Exec(`ALTER TABLE chunks RENAME TO chunks_away`)
	require.NoError(t, err)
	return p, db, func() {
		_, err := db.Exec(`ALTER TABLE chunks_away RENAME TO chunks`)
		require.NoError(t, err)
	}
}

// A disk that really fills up (a small tmpfs holding the SQLite file, then a file taking
// the rest): /ready says why within seconds, the streamer waits, and once space returns
// everything accepted is stored.
func TestFullDiskOnSQLite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" && os.Geteuid() == 0 {
			t.Fatalf("mount tmpfs: %v: %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs here (%v: %s): needs root", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	dbPath := filepath.Join(dir, "telemetry.db")
	p := start(t, "--database-url=sqlite:"+dbPath, "--speed=0", "--batch-size=500", "--passes=400")
	p.waitForSamples(t, 5000)

	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	require.NoError(t, err)
	chunk := make([]byte, 1<<16)
	for {
		if _, err := f.Write(chunk); err != nil {
			require.ErrorIs(t, err, syscall.ENOSPC)
			break
		}
	}
	require.NoError(t, f.Close())
	var status struct{ Status, Reason string }
	require.Eventually(t, func() bool { return p.get(t, "/ready", &status) == http.StatusServiceUnavailable }, 20*time.Second, 50*time.Millisecond,
		"/ready reports the full disk")
	assert.Contains(t, status.Reason, "writes failing")
	assert.Contains(t, status.Reason, "full")
	t.Logf("/ready: %s", status.Reason)
	var before stats
	p.get(t, "/api/v1/stats", &before)
	time.Sleep(time.Second)

	require.NoError(t, os.Remove(filler))
	require.Eventually(t, func() bool { return p.get(t, "/ready", &status) == http.StatusOK }, 30*time.Second, 50*time.Millisecond,
		"ready again once space returns")
	var after stats
	require.Eventually(t, func() bool {
		p.get(t, "/api/v1/stats", &after)
		return after.TotalRecords > before.TotalRecords
	}, 20*time.Second, 50*time.Millisecond, "writes go on")
	require.NoError(t, p.stop(t))
	assertStoredAsPublished(t, p, "sqlite:"+dbPath, "nothing accepted was lost")
}

func TestQueueUIMountedInAPIMode(t *testing.T) {
	redisURL := asynqtest.RedisURL(t)
	p := start(t, "--mode=api", "--database-url="+sqlstoretest.SQLiteURL(t), "--redis-url="+redisURL, "--queue-ui")
	resp, err := http.Get(p.base + "/queues")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(body), "<html")
	var queues struct{ Queues []any }
	assert.Equal(t, http.StatusOK, p.get(t, "/queues/api/queues", &queues))
	var ready struct{ Status string }
	assert.Equal(t, http.StatusOK, p.get(t, "/ready", &ready), "ready: database and Redis answer")

	// Read-only: pausing the queue, from this site or another, changes nothing.
	queue := "telemetry"
	for name, header := range map[string]http.Header{
		"same site":  {},
		"cross site": {"Origin": {"https://evil.example"}, "Sec-Fetch-Site": {"cross-site"}},
	} {
		req, err := http.NewRequest(http.MethodPost, p.base+"/queues/api/queues/"+queue+":pause", nil)
		require.NoError(t, err)
		req.Header = header
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Contains(t, []int{http.StatusForbidden, http.StatusMethodNotAllowed}, resp.StatusCode, name)
	}
	opt, err := asynq.ParseRedisURI(redisURL)
	require.NoError(t, err)
	ins := asynq.NewInspector(opt)
	defer ins.Close()
	if info, err := ins.GetQueueInfo(queue); err == nil {
		assert.False(t, info.Paused, "the queue is not paused")
	}
}

// A file loaded, loaded again with another batch size, then resent in two overlapping
// halves: the store and the API hold each sample once, and each import says how many of
// its samples were already stored.
func TestReloadsStoreEachSampleOnce(t *testing.T) {
	t.Parallel()
	for name, newURL := range map[string]func(testing.TB) string{
		"sqlite": sqlstoretest.SQLiteURL, "postgres": sqlstoretest.PostgresURL,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			lines := strings.SplitAfter(strings.TrimSuffix(string(apptest.BundledCSV), "\n"), "\n")
			head, rows := lines[0], lines[1:]
			write := func(name string, part []string) string {
				path := filepath.Join(dir, name)
				require.NoError(t, os.WriteFile(path, []byte(head+strings.Join(part, "")), 0o644))
				return path
			}
			dbURL := newURL(t)
			load := func(file string, batchSize int) string {
				out, err := runOnce(t, "--csv="+file, "--loop=false", "--timestamps=csv",
					"--exit-when-done", fmt.Sprint("--batch-size=", batchSize), "--database-url="+dbURL,
					"--http-addr="+freeAddr(t), "--compact-interval=0")
				require.NoError(t, err)
				return out
			}
			all := write("all.csv", rows)
			assert.Contains(t, load(all, 5000), "2470 samples stored in 1 batches (0 batches stored before, 0 samples left out, 0 already stored)")
			assert.Contains(t, load(all, 700), "0 samples stored in 4 batches (0 batches stored before, 0 samples left out, 2470 already stored)")
			first, second := write("first.csv", rows[:1500]), write("second.csv", rows[1000:])
			assert.Contains(t, load(first, 333), "1500 already stored")
			assert.Contains(t, load(second, 333), "1470 already stored")

			p := start(t, "--database-url="+dbURL, "--csv="+write("none.csv", nil), "--loop=false", "--compact-interval=0")
			var st stats
			require.Equal(t, http.StatusOK, p.get(t, "/api/v1/stats", &st))
			assert.EqualValues(t, 2470, st.TotalRecords)
			var page struct{ Data []sampleJSON }
			require.Equal(t, http.StatusOK, p.get(t, "/api/v1/gpus/"+someGPU+"/telemetry?limit=1000", &page))
			assert.Len(t, page.Data, 10, "one sample of each metric, once")
		})
	}
}

// With --retention=1h, three hours of samples shrink to the last one within a retention
// cycle — but for the two-hour windows the cutoff falls in or that are not sealed yet (15
// minutes after they end), whose samples stay until they are in the tiers — and the API
// says so.
func TestRetentionPrunesOldSamples(t *testing.T) {
	end := time.Now().Add(-time.Minute).Truncate(time.Minute)
	var csv strings.Builder
	csv.WriteString("timestamp,metric_name,gpu_id,device,uuid,modelName,Hostname,container,pod,namespace,value,labels_raw\n")
	for k := 180; k >= 0; k-- {
		at := end.Add(-time.Duration(k) * time.Minute).UTC().Format(time.RFC3339)
		for m := range 10 {
			fmt.Fprintf(&csv, "%s,DCGM_FI_TEST_%d,0,nvidia0,GPU-retained,H100,host-r,,,,%d,\n", at, m, k+m)
		}
	}
	file := filepath.Join(t.TempDir(), "three-hours.csv")
	require.NoError(t, os.WriteFile(file, []byte(csv.String()), 0o644))
	for name, newURL := range map[string]func(testing.TB) string{
		"sqlite": sqlstoretest.SQLiteURL, "postgres": sqlstoretest.PostgresURL,
	} {
		t.Run(name, func(t *testing.T) {
			// No workload recorder: samples would wait for it to record them, minutes after a
			// process starts (sqlstore's TestWorkloadRecordsOutliveTheSamples tests that).
			p := start(t, "--database-url="+newURL(t), "--csv="+file, "--loop=false", "--timestamps=csv",
				"--retention=1h", "--retention-interval=200ms", "--workload-interval=0")
			keptFrom := end.Add(-time.Hour).Truncate(2 * time.Hour) // the cutoff's window
			if open := end.Add(-15 * time.Minute).Truncate(2 * time.Hour); open.Before(keptFrom) {
				keptFrom = open // the oldest window not sealed yet
			}
			kept := int64(end.Sub(keptFrom)/time.Minute+1) * 10
			var st stats
			require.Eventually(t, func() bool {
				p.get(t, "/api/v1/stats", &st)
				return st.TotalRecords > 0 && st.TotalRecords <= kept
			}, 20*time.Second, 100*time.Millisecond, "pruned to the samples from %s (%d): %+v", keptFrom, kept, st)
			assert.GreaterOrEqual(t, st.TotalRecords, int64(61*10), "the last hour whole")
			var page struct{ Data []sampleJSON }
			require.Equal(t, http.StatusOK, p.get(t, "/api/v1/gpus/GPU-retained/telemetry?limit=1", &page))
			require.Len(t, page.Data, 1)
			assert.False(t, page.Data[0].Timestamp.Before(keptFrom), "the oldest left: %s", page.Data[0].Timestamp)
			// The log line follows the commit the stats already see.
			assert.Eventually(t, func() bool {
				logs := p.logs.String()
				return strings.Contains(logs, `"msg":"retention: pruned"`) || strings.Contains(logs, `"msg":"retention: deleted samples at start`)
			}, 5*time.Second, 20*time.Millisecond, "what was pruned is logged")
		})
	}
}
