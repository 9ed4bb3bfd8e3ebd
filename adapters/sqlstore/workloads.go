package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/usage"
)

// Workload records (ports.WorkloadStore): plain rows in workloads, and in workload_cursor
// how far the samples are recorded, which each pass advances in its transaction only if
// no other did first.

// workloadColumns are the columns a record is written to and read from, in order: then
// each profiling field's mean share and hours (profilingColumns).
const workloadColumns = `uuid, gpu_instance, hostname, model_name, namespace, pod, container, start_time, end_time,
	last_seen, open, gpu_hours, util_hours, mean_util, p95_util, idle_hours, idle_fraction, util_signal, energy_kwh,
	peak_memory_mib, events, samples, util_histogram`

// recordColumns are all the columns of a record, in the order written and read.
var recordColumns = workloadColumns + profilingColumns("", "%s, %s_hours")

// profilingColumns lists, after a comma, the columns of each of usage.EfficiencyFields'
// shares, its short name in format twice, each column prefixed.
func profilingColumns(prefix, format string) string {
	var b strings.Builder
	for _, field := range usage.EfficiencyFields {
		name := prefix + usage.ShareName(field)
		b.WriteString(", " + fmt.Sprintf(format, name, name))
	}
	return b.String()
}

// recorderLock is the PostgreSQL advisory lock of the workload recorder's passes.
const recorderLock = 7_315_005

// LockRecorder implements ports.WorkloadStore: on PostgreSQL a session's advisory lock, on
// a connection kept for the pass; on SQLite, whose writers take turns anyway, no lock.
func (s *Store) LockRecorder(ctx context.Context) (func(), bool, error) {
	if s.dialect.name != "postgres" {
		return func() {}, true, nil
	}
	conn, err := s.sqlDB.Conn(ctx)
	if err != nil {
		return nil, false, classify(err)
	}
	var mine bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, recorderLock).Scan(&mine); err != nil || !mine {
		conn.Close()
		return nil, false, classify(err)
	}
	return func() {
		// A fresh context: the pass's may have ended, and the lock must go with the connection
		// back to the pool.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, recorderLock); err != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn }) // drop the connection, and its lock with it
		}
		conn.Close()
	}, true, nil
}

// OpenWorkloads implements ports.WorkloadStore. The cursor is read first: a pass recorded
// between the two reads moves it, so the caller's pass, made from the older cursor, is not
// recorded.
func (s *Store) OpenWorkloads(ctx context.Context) (telemetry.RecorderState, []telemetry.Workload, error) {
	state, err := s.recorderState(ctx, s.sqlDB)
	if err != nil {
		return state, nil, err
	}
	rows, err := s.sqlDB.QueryContext(ctx, s.dialect.rebind(`SELECT id, `+recordColumns+` FROM workloads WHERE open = ?`), true)
	if err != nil {
		return state, nil, classify(fmt.Errorf("read open workload records: %w", err))
	}
	open, err := scanWorkloads(rows)
	return state, open, classify(err)
}

// recorderState reads the cursor, and the store's clock.
func (s *Store) recorderState(ctx context.Context, db querier) (telemetry.RecorderState, error) {
	var st telemetry.RecorderState
	var through, replay timestamp
	err := db.QueryRowContext(ctx, `SELECT through, replay_until FROM workload_cursor`).Scan(&through, &replay)
	if err != nil && err != sql.ErrNoRows {
		return st, classify(fmt.Errorf("read how far workloads are recorded: %w", err))
	}
	st.Through, st.Replay = through.Time, replay.Time
	st.Now, err = s.clock(ctx, db)
	return st, err
}

// clock is the time by the clock that stamps batches' stored_at: PostgreSQL's (now() is
// its transaction's start), or this process's for SQLite, which stamps them itself.
func (s *Store) clock(ctx context.Context, db querier) (time.Time, error) {
	if s.dialect.name != "postgres" {
		return time.Now().UTC(), nil
	}
	var now time.Time
	if err := db.QueryRowContext(ctx, `SELECT clock_timestamp()`).Scan(&now); err != nil {
		return now, classify(fmt.Errorf("read the database's clock: %w", err))
	}
	return now.UTC(), nil
}

// workloadsThrough is how far the samples are recorded, the zero time before any pass.
func (s *Store) workloadsThrough(ctx context.Context, db querier) (time.Time, error) {
	var through timestamp
	err := db.QueryRowContext(ctx, `SELECT through FROM workload_cursor`).Scan(&through)
	if err == sql.ErrNoRows {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, classify(fmt.Errorf("read how far workloads are recorded: %w", err))
	}
	return through.Time, nil
}

// lateSlack is how long before a pass began a batch may have been stamped stored_at and
// still commit after the pass read the samples: writes stamp their batches last, just
// before they commit.
const lateSlack = time.Second

// RecordWorkloads implements ports.WorkloadStore.
func (s *Store) RecordWorkloads(ctx context.Context, state telemetry.RecorderState, to time.Time, records []telemetry.Workload, parts []telemetry.UsagePart) (time.Time, bool, error) {
	keys := make([]string, 0, len(parts))
	for _, p := range parts {
		keys = append(keys, p.GPU.Key())
	}
	ids, err := s.lookupGPUIDs(ctx, keys) // before the transaction: SQLite has one connection
	if err != nil {
		return time.Time{}, false, err
	}
	tx, err := s.sqlDB.BeginTx(ctx, nil)
	if err != nil {
		return time.Time{}, false, classify(err)
	}
	defer tx.Rollback()
	var prevStart timestamp
	var res sql.Result
	if state.Through.IsZero() {
		res, err = tx.ExecContext(ctx, s.dialect.rebind(`INSERT INTO workload_cursor (id, through, started_at) VALUES (1, ?, ?)
			ON CONFLICT (id) DO NOTHING`), s.dialect.ts(to), s.dialect.ts(state.Now))
	} else {
		// The previous pass's start, then the cursor moved on if no other pass moved it: the
		// row's lock makes racing passes wait, and find the cursor moved.
		err = tx.QueryRowContext(ctx, `SELECT started_at FROM workload_cursor`).Scan(&prevStart)
		if err == nil {
			res, err = tx.ExecContext(ctx, s.dialect.rebind(`UPDATE workload_cursor SET through = ?, started_at = ? WHERE through = ?`),
				s.dialect.ts(to), s.dialect.ts(state.Now), s.dialect.ts(state.Through))
		}
	}
	if err != nil {
		return time.Time{}, false, classify(fmt.Errorf("advance the workload cursor: %w", err))
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return time.Time{}, false, classify(err)
	}
	placeholders := strings.TrimSuffix(strings.Repeat("?, ", strings.Count(recordColumns, ",")+1), ", ")
	insert, err := tx.PrepareContext(ctx, s.dialect.rebind(`INSERT INTO workloads (`+recordColumns+`) VALUES (`+placeholders+`) RETURNING id`))
	if err != nil {
		return time.Time{}, false, classify(err)
	}
	defer insert.Close()
	set := strings.ReplaceAll(strings.Join(strings.Fields(recordColumns), " "), ",", " = ?,") + " = ?"
	update, err := tx.PrepareContext(ctx, s.dialect.rebind(`UPDATE workloads SET `+set+` WHERE id = ?`))
	if err != nil {
		return time.Time{}, false, classify(err)
	}
	defer update.Close()
	for i := range records {
		w := &records[i]
		args, err := s.workloadArgs(w)
		if err != nil {
			return time.Time{}, false, err
		}
		if w.ID == 0 {
			err = insert.QueryRowContext(ctx, args...).Scan(&w.ID)
		} else {
			_, err = update.ExecContext(ctx, append(args, w.ID)...)
		}
		if err != nil {
			return time.Time{}, false, classify(fmt.Errorf("write the workload record of pod %q on %s: %w", w.Pod, w.GPU.Key(), err))
		}
	}
	if err := s.addUsage(ctx, tx, parts, ids); err != nil {
		return time.Time{}, false, classify(fmt.Errorf("add to the hours' usage: %w", err))
	}
	through, err := s.replayLate(ctx, tx, state, prevStart.Time, to)
	if err != nil {
		return time.Time{}, false, classify(fmt.Errorf("look for samples stored late: %w", err))
	}
	return through, true, classify(tx.Commit())
}

// replayLate looks for batches that may hold samples the recorder has not seen: stored
// since the previous pass began with samples before this pass's interval, or stored since
// this pass began with samples before its end. It moves the cursor back to the hour of the
// oldest such sample — not before the oldest sample kept, which retention has cut — drops
// the hourly sums from there, and marks the passes until to as a replay. It returns where
// the cursor is.
func (s *Store) replayLate(ctx context.Context, tx *sql.Tx, state telemetry.RecorderState, prevStart, to time.Time) (time.Time, error) {
	if state.Through.IsZero() {
		return to, nil
	}
	d := s.dialect
	var late timestamp
	if err := tx.QueryRowContext(ctx, d.rebind(`SELECT min(min_ts) FROM batches WHERE stored_at >= ? AND
		(min_ts < ? OR (stored_at >= ? AND min_ts < ?))`),
		d.ts(prevStart.Add(-lateSlack)), d.ts(state.Through), d.ts(state.Now.Add(-lateSlack)), d.ts(to)).Scan(&late); err != nil || late.IsZero() {
		return to, err
	}
	var oldest, deleted timestamp
	if err := tx.QueryRowContext(ctx, `SELECT (SELECT min(min_ts) FROM batches), samples_before FROM pruned`).Scan(&oldest, &deleted); err != nil {
		return to, err
	}
	back := late.Truncate(time.Hour)
	if oldest.After(back) && (s.prunedAny(ctx, tx)) {
		back = oldest.Truncate(time.Hour).Add(time.Hour) // the hour retention cut into keeps its sums
	}
	// Not from before retention's cutoff, nor within a gap after it (the sample standing at
	// an hour's start may be gone): those hours' other samples are gone, and computing them
	// again from the late ones alone would lose every other device's usage there. They keep
	// their sums, without the late samples.
	if floor := ceilHour(deleted.Add(usage.DefaultGap)); !deleted.IsZero() && back.Before(floor) {
		s.log.WarnContext(ctx, "workload records: samples arrived for hours whose other samples retention has deleted; those hours keep the usage recorded, without them",
			"from", back, "until", floor)
		back = floor
	}
	if !back.Before(to) {
		return to, nil
	}
	s.log.WarnContext(ctx, "workload records: samples arrived after their hours were recorded; the hourly usage is computed again from their hour (records made before keep them out)",
		"from", back, "until", to)
	replay := d.ts(to)
	if state.Replay.After(to) { // a replay under way goes on to its end
		replay = d.ts(state.Replay)
	}
	if _, err := tx.ExecContext(ctx, d.rebind(`UPDATE workload_cursor SET through = ?, replay_until = ?`), d.ts(back), replay); err != nil {
		return to, err
	}
	return back, s.dropUsageFrom(ctx, tx, back)
}

// ceilHour is t rounded up to a whole hour.
func ceilHour(t time.Time) time.Time {
	if h := t.Truncate(time.Hour); h.Before(t) {
		return h.Add(time.Hour)
	}
	return t
}

// prunedAny reports whether retention has deleted samples.
func (s *Store) prunedAny(ctx context.Context, tx *sql.Tx) bool {
	var deleted int64
	err := tx.QueryRowContext(ctx, `SELECT batch_samples FROM pruned`).Scan(&deleted)
	return err != nil || deleted > 0
}

// usageColumns are the columns of usage_hours and usage_days after the first (hour, day),
// in the order addUsage writes them: then each profiling field's seconds and share ×
// seconds (shareSums), NULL where not reported.
var usageColumns = []string{"gpu_id", "namespace", "pod", "engine", "gpu_seconds", "util_seconds", "util_weighted",
	"joules", "peak_memory_mib", "samples"}

// shareSums are the columns of each of usage.EfficiencyFields in the usage sums, in order.
var shareSums = strings.Split(strings.TrimPrefix(profilingColumns("", "%s_seconds, %s_sum"), ", "), ", ")

// usageRowsAStatement bounds the rows of one INSERT: 35 parameters each, under both
// databases' limits (65,535 and 32,766).
const usageRowsAStatement = 500

// day is the UTC day of t.
func day(t time.Time) time.Time { return t.UTC().Truncate(24 * time.Hour) }

// addUsage adds parts to their hours' rows and their days': sums add, peaks keep the
// higher. ids are the parts' devices' surrogate keys.
func (s *Store) addUsage(ctx context.Context, tx *sql.Tx, parts []telemetry.UsagePart, ids map[string]int32) error {
	for _, t := range []struct {
		table, key string
		parts      []telemetry.UsagePart
	}{{"usage_hours", "hour", parts}, {"usage_days", "day", byDay(parts)}} {
		parts := t.parts
		columns := slices.Concat(usageColumns, shareSums)
		row := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(columns)+1), ", ") + ")"
		var shares strings.Builder // a sum adds to NULL as to 0, and NULL to a sum leaves it
		for _, c := range shareSums {
			fmt.Fprintf(&shares, ",\n\t\t\t\t\t%[1]s = CASE WHEN excluded.%[1]s IS NULL THEN %[2]s.%[1]s ELSE coalesce(%[2]s.%[1]s, 0) + excluded.%[1]s END", c, t.table)
		}
		for rest := parts; len(rest) > 0; {
			batch := rest[:min(len(rest), usageRowsAStatement)]
			rest = rest[len(batch):]
			args := make([]any, 0, len(batch)*(len(columns)+1))
			for _, p := range batch {
				id, ok := ids[p.GPU.Key()]
				if !ok {
					return fmt.Errorf("usage of %s, a device the store does not know", p.GPU.Key())
				}
				args = append(args, s.dialect.ts(p.Start), id, p.Namespace, p.Pod, p.Signal == usage.SignalEngine,
					p.Seconds, p.UtilSeconds, p.UtilWeighted, p.Joules, nullable(p.PeakMemory), p.Samples)
				for _, field := range usage.EfficiencyFields {
					if w := p.Profiling[field]; w.Seconds > 0 {
						args = append(args, w.Seconds, w.Sum)
					} else {
						args = append(args, nil, nil)
					}
				}
			}
			if _, err := tx.ExecContext(ctx, s.dialect.rebind(`INSERT INTO `+t.table+` (`+t.key+`, `+strings.Join(columns, ", ")+`)
				VALUES `+strings.TrimSuffix(strings.Repeat(row+", ", len(batch)), ", ")+`
				ON CONFLICT (`+t.key+`, gpu_id, namespace, pod) DO UPDATE SET engine = excluded.engine,
					gpu_seconds = `+t.table+`.gpu_seconds + excluded.gpu_seconds,
					util_seconds = `+t.table+`.util_seconds + excluded.util_seconds,
					util_weighted = `+t.table+`.util_weighted + excluded.util_weighted,
					joules = `+t.table+`.joules + excluded.joules,
					peak_memory_mib = CASE WHEN `+t.table+`.peak_memory_mib IS NULL OR excluded.peak_memory_mib > `+t.table+`.peak_memory_mib
						THEN excluded.peak_memory_mib ELSE `+t.table+`.peak_memory_mib END,
					samples = `+t.table+`.samples + excluded.samples`+shares.String()), args...); err != nil {
				return err
			}
		}
	}
	return nil
}

// byDay sums parts by day, device and workload: one statement may not update a row twice.
func byDay(parts []telemetry.UsagePart) []telemetry.UsagePart {
	type key struct {
		day                     time.Time
		uuid, instance, ns, pod string
	}
	at := map[key]int{}
	var out []telemetry.UsagePart
	for _, p := range parts {
		k := key{day(p.Start), p.GPU.UUID, p.GPU.Instance, p.Namespace, p.Pod}
		i, ok := at[k]
		if !ok {
			p.Start = k.day
			at[k] = len(out)
			out = append(out, p)
			continue
		}
		sum := &out[i]
		sum.Seconds += p.Seconds
		sum.UtilSeconds += p.UtilSeconds
		sum.UtilWeighted += p.UtilWeighted
		sum.Joules += p.Joules
		sum.Samples += p.Samples
		if !math.IsNaN(p.PeakMemory) && (math.IsNaN(sum.PeakMemory) || p.PeakMemory > sum.PeakMemory) {
			sum.PeakMemory = p.PeakMemory
		}
		if len(p.Profiling) > 0 {
			profiling := maps.Clone(sum.Profiling) // the first part's map is the caller's
			if profiling == nil {
				profiling = map[string]telemetry.Weighted{}
			}
			for field, w := range p.Profiling {
				profiling[field] = profiling[field].Add(w)
			}
			sum.Profiling = profiling
		}
	}
	return out
}

// dropUsageFrom deletes the hourly sums from back (a whole hour) on, and makes the day
// back falls in the sum of its hours before back.
func (s *Store) dropUsageFrom(ctx context.Context, tx *sql.Tx, back time.Time) error {
	d := s.dialect
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`DELETE FROM usage_hours WHERE hour >= ?`, []any{d.ts(back)}},
		{`DELETE FROM usage_days WHERE day >= ?`, []any{d.ts(day(back))}},
		{`INSERT INTO usage_days (day, ` + strings.Join(slices.Concat(usageColumns, shareSums), ", ") + `)
			SELECT ?, gpu_id, namespace, pod, ` + s.dialect.anyTrue("engine") + `, sum(gpu_seconds), sum(util_seconds), sum(util_weighted),
				sum(joules), max(peak_memory_mib), sum(samples)` + sums("", shareSums) + `
			FROM usage_hours WHERE hour >= ? AND hour < ? GROUP BY gpu_id, namespace, pod`,
			[]any{d.ts(day(back)), d.ts(day(back)), d.ts(back)}},
	} {
		if _, err := tx.ExecContext(ctx, d.rebind(q.sql), q.args...); err != nil {
			return err
		}
	}
	return nil
}

// UsageParts implements ports.WorkloadStore: whole days from usage_days, the hours either
// side from usage_hours. The last hour recorded counts up to the cursor, where the samples
// take over; a start whose hour is no longer kept starts at its day.
func (s *Store) UsageParts(ctx context.Context, q telemetry.UsagePartQuery) ([]telemetry.UsagePart, time.Time, time.Time, error) {
	from := q.Range.Start
	through, err := s.workloadsThrough(ctx, s.sqlDB)
	if err != nil {
		return nil, from, time.Time{}, err
	}
	until := q.Range.End
	if through.Before(until) {
		until = through
	}
	if !until.After(from) {
		return nil, from, until, nil
	}
	d := s.dialect
	var floor timestamp // the oldest hour kept, once retention has deleted some
	if err := s.sqlDB.QueryRowContext(ctx, `SELECT max(hours_from) FROM workload_cursor`).Scan(&floor); err != nil {
		return nil, from, until, classify(fmt.Errorf("find the oldest hour of usage kept: %w", err))
	}
	if from.Before(floor.Time) {
		from = day(from)
	}
	days := telemetry.TimeRange{Start: day(from.Add(24*time.Hour - time.Nanosecond)), End: day(until)}
	if !days.End.After(days.Start) {
		days = telemetry.TimeRange{Start: until, End: until} // hours only
	}
	var filters string
	var filterArgs []any
	for _, f := range []struct{ column, value string }{{"g.hostname", q.Hostname}, {"g.model_name", q.Model}, {"u.namespace", q.Namespace}} {
		if f.value != "" {
			filters += " AND " + f.column + " = ?"
			filterArgs = append(filterArgs, f.value)
		}
	}
	// Summed in the database as far as the grouping allows: a month of a fleet whose pods
	// change every few hours holds tens of thousands of device and pod pairs.
	workload, by := `'', ''`, ""
	switch q.Per {
	case telemetry.GroupPod:
		workload, by = "u.namespace, u.pod", ", u.namespace, u.pod"
	case telemetry.GroupNamespace:
		workload, by = "u.namespace, ''", ", u.namespace"
	}
	cols := strings.Join(slices.Concat(usageColumns, shareSums), ", ")
	args := append([]any{d.ts(days.Start), d.ts(days.End), d.ts(from), d.ts(days.Start), d.ts(days.End), d.ts(until)}, filterArgs...)
	rows, err := s.sqlDB.QueryContext(ctx, d.rebind(`SELECT g.uuid, g.gpu_instance, `+workload+`, max(g.hostname), max(g.model_name),
		max(CASE WHEN `+d.truth("u.engine")+` THEN 1 ELSE 0 END), sum(u.gpu_seconds), sum(u.util_seconds), sum(u.util_weighted), sum(u.joules),
		max(u.peak_memory_mib), sum(u.samples),
		sum(CASE WHEN u.namespace <> '' OR u.pod <> '' THEN u.gpu_seconds ELSE 0 END)`+sums("u.", shareSums)+`
		FROM (SELECT `+cols+` FROM usage_days WHERE day >= ? AND day < ?
			UNION ALL SELECT `+cols+` FROM usage_hours WHERE (hour >= ? AND hour < ?) OR (hour >= ? AND hour < ?)) u
		JOIN gpus g ON g.id = u.gpu_id
		WHERE true`+filters+`
		GROUP BY g.uuid, g.gpu_instance`+by), args...)
	if err != nil {
		return nil, from, until, classify(fmt.Errorf("sum the recorded usage: %w", err))
	}
	defer rows.Close()
	var out []telemetry.UsagePart
	for rows.Next() {
		var p telemetry.UsagePart
		var peak sql.NullFloat64
		var engine int
		profiling := make([]sql.NullFloat64, len(shareSums))
		dest := []any{&p.GPU.UUID, &p.GPU.Instance, &p.Namespace, &p.Pod, &p.GPU.Hostname, &p.GPU.ModelName, &engine,
			&p.Seconds, &p.UtilSeconds, &p.UtilWeighted, &p.Joules, &peak, &p.Samples, &p.HeldSeconds}
		for i := range profiling {
			dest = append(dest, &profiling[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, from, until, classify(err)
		}
		for i, field := range usage.EfficiencyFields {
			if seconds, sum := profiling[2*i], profiling[2*i+1]; seconds.Valid && seconds.Float64 > 0 {
				if p.Profiling == nil {
					p.Profiling = map[string]telemetry.Weighted{}
				}
				p.Profiling[field] = telemetry.Weighted{Seconds: seconds.Float64, Sum: sum.Float64}
			}
		}
		p.Signal = usage.SignalUtil
		if engine != 0 {
			p.Signal = usage.SignalEngine
		}
		p.PeakMemory = orNaN(peak)
		out = append(out, p)
	}
	return out, from, until, classify(rows.Err())
}

func (s *Store) workloadArgs(w *telemetry.Workload) ([]any, error) {
	hist := map[int]float64{}
	for pct, h := range w.UtilHistogram {
		if h != 0 {
			hist[pct] = h
		}
	}
	histogram, err := json.Marshal(hist)
	if err != nil {
		return nil, err
	}
	d := s.dialect
	args := []any{w.GPU.UUID, w.GPU.Instance, w.GPU.Hostname, w.GPU.ModelName, w.Namespace, w.Pod, w.Container,
		d.ts(w.Start), d.ts(w.End), d.ts(w.LastSeen), w.Open, w.GPUHours, w.UtilHours, nullable(w.MeanUtil),
		nullable(w.P95Util), w.IdleHours, nullable(w.IdleFraction()), w.UtilSignal, w.EnergyKWh, nullable(w.PeakMemory),
		w.Events, w.Samples, string(histogram)}
	for _, field := range usage.EfficiencyFields {
		a, ok := w.Profiling[field]
		if !ok {
			a.Mean = math.NaN()
		}
		args = append(args, nullable(a.Mean), a.Hours)
	}
	return args, nil
}

// sums lists, after a comma, the sum of each column, prefixed.
func sums(prefix string, columns []string) string {
	var b strings.Builder
	for _, c := range columns {
		b.WriteString(", sum(" + prefix + c + ")")
	}
	return b.String()
}

// nullable is NULL for NaN: what SQL users read as "no value".
func nullable(v float64) sql.NullFloat64 {
	return sql.NullFloat64{Float64: v, Valid: !math.IsNaN(v) && !math.IsInf(v, 0)}
}

func scanWorkloads(rows *sql.Rows) ([]telemetry.Workload, error) {
	defer rows.Close()
	var out []telemetry.Workload
	for rows.Next() {
		var (
			w                     telemetry.Workload
			start, end, seen      timestamp
			mean, p95, idle, peak sql.NullFloat64
			histogram             string
			shares                = make([]sql.NullFloat64, len(usage.EfficiencyFields))
			hours                 = make([]float64, len(usage.EfficiencyFields))
		)
		dest := []any{&w.ID, &w.GPU.UUID, &w.GPU.Instance, &w.GPU.Hostname, &w.GPU.ModelName, &w.Namespace, &w.Pod,
			&w.Container, &start, &end, &seen, &w.Open, &w.GPUHours, &w.UtilHours, &mean, &p95, &w.IdleHours, &idle,
			&w.UtilSignal, &w.EnergyKWh, &peak, &w.Events, &w.Samples, &histogram}
		for i := range usage.EfficiencyFields {
			dest = append(dest, &shares[i], &hours[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		w.Start, w.End, w.LastSeen = start.Time, end.Time, seen.Time
		w.MeanUtil, w.P95Util, w.PeakMemory = orNaN(mean), orNaN(p95), orNaN(peak)
		for i, field := range usage.EfficiencyFields {
			if shares[i].Valid {
				if w.Profiling == nil {
					w.Profiling = map[string]telemetry.Activity{}
				}
				w.Profiling[field] = telemetry.Activity{Mean: shares[i].Float64, Hours: hours[i]}
			}
		}
		var hist map[string]float64
		if err := json.Unmarshal([]byte(histogram), &hist); err != nil {
			return nil, fmt.Errorf("workload record %d: utilisation histogram: %w", w.ID, err)
		}
		for pct, h := range hist {
			if i, err := strconv.Atoi(pct); err == nil && i >= 0 && i < len(w.UtilHistogram) {
				w.UtilHistogram[i] = h
			}
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

func orNaN(v sql.NullFloat64) float64 {
	if !v.Valid {
		return math.NaN()
	}
	return v.Float64
}

// Workloads implements ports.WorkloadStore.
func (s *Store) Workloads(ctx context.Context, q telemetry.WorkloadQuery) ([]telemetry.Workload, *telemetry.WorkloadPosition, error) {
	var where []string
	var args []any
	add := func(cond string, values ...any) {
		where = append(where, cond)
		args = append(args, values...)
	}
	if !q.Range.Start.IsZero() {
		add("end_time >= ?", s.dialect.ts(q.Range.Start))
	}
	if !q.Range.End.IsZero() {
		add("start_time <= ?", s.dialect.ts(q.Range.End))
	}
	for _, f := range []struct{ column, value string }{{"namespace", q.Namespace}, {"pod", q.Pod}, {"hostname", q.Hostname}, {"model_name", q.Model}} {
		if f.value != "" {
			add(f.column+" = ?", f.value)
		}
	}
	if q.GPU != "" {
		uuid, instance := telemetry.SplitDeviceKey(q.GPU)
		add("uuid = ? AND gpu_instance = ?", uuid, instance)
	}
	if q.State != "" {
		add("open = ?", q.State == telemetry.WorkloadOpen)
	}
	if q.After != nil {
		add("(end_time < ? OR (end_time = ? AND id < ?))", s.dialect.ts(q.After.End), s.dialect.ts(q.After.End), q.After.ID)
	}
	query := `SELECT id, ` + recordColumns + ` FROM workloads`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY end_time DESC, id DESC LIMIT ` + strconv.Itoa(q.Limit+1)
	rows, err := s.sqlDB.QueryContext(ctx, s.dialect.rebind(query), args...)
	if err != nil {
		return nil, nil, classify(fmt.Errorf("list workload records: %w", err))
	}
	out, err := scanWorkloads(rows)
	if err != nil {
		return nil, nil, classify(fmt.Errorf("list workload records: %w", err))
	}
	if len(out) <= q.Limit {
		return out, nil, nil
	}
	last := out[q.Limit-1]
	return out[:q.Limit], &telemetry.WorkloadPosition{End: last.End, ID: last.ID}, nil
}

// pruneWorkloads deletes the hourly usage sums before hours (kept as long as the 5-minute
// tier), and the closed records that ended before cutoff and the days of usage before it.
func (s *Store) pruneWorkloads(ctx context.Context, tx *sql.Tx, cutoff, hours time.Time) (int64, error) {
	if !hours.IsZero() {
		from := s.dialect.ts(hours.Truncate(time.Hour))
		res, err := tx.ExecContext(ctx, s.dialect.rebind(`DELETE FROM usage_hours WHERE hour < ?`), from)
		if err != nil {
			return 0, err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			if _, err := tx.ExecContext(ctx, s.dialect.rebind(`UPDATE workload_cursor SET hours_from = ?`), from); err != nil {
				return 0, err
			}
		}
	}
	if cutoff.IsZero() {
		return 0, nil
	}
	res, err := tx.ExecContext(ctx, s.dialect.rebind(`DELETE FROM workloads WHERE open = ? AND end_time < ?`), false, s.dialect.ts(cutoff))
	if err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, s.dialect.rebind(`DELETE FROM usage_days WHERE day < ?`), s.dialect.ts(day(cutoff))); err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
