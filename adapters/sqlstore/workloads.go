package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// Workload records (ports.WorkloadStore): plain rows in workloads, and in workload_cursor
// how far the samples are recorded, which each pass advances in its transaction only if
// no other did first.

// workloadColumns are the columns a record is written to and read from, in order.
const workloadColumns = `uuid, gpu_instance, hostname, model_name, namespace, pod, container, start_time, end_time,
	last_seen, open, gpu_hours, util_hours, mean_util, p95_util, idle_hours, idle_fraction, util_signal, energy_kwh,
	peak_memory_mib, sm_active, sm_hours, tensor_active, tensor_hours, dram_active, dram_hours, events, samples, util_histogram`

// OpenWorkloads implements ports.WorkloadStore. The cursor is read first: a pass recorded
// between the two reads moves it, so the caller's pass, made from the older cursor, is not
// recorded.
func (s *Store) OpenWorkloads(ctx context.Context) (time.Time, []telemetry.Workload, error) {
	through, err := s.workloadsThrough(ctx, s.sqlDB)
	if err != nil {
		return time.Time{}, nil, err
	}
	rows, err := s.sqlDB.QueryContext(ctx, s.dialect.rebind(`SELECT id, `+workloadColumns+` FROM workloads WHERE open = ?`), true)
	if err != nil {
		return time.Time{}, nil, classify(fmt.Errorf("read open workload records: %w", err))
	}
	open, err := scanWorkloads(rows)
	return through, open, classify(err)
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

// RecordWorkloads implements ports.WorkloadStore.
func (s *Store) RecordWorkloads(ctx context.Context, through, to time.Time, records []telemetry.Workload) (bool, error) {
	tx, err := s.sqlDB.BeginTx(ctx, nil)
	if err != nil {
		return false, classify(err)
	}
	defer tx.Rollback()
	var res sql.Result
	if through.IsZero() {
		res, err = tx.ExecContext(ctx, s.dialect.rebind(`INSERT INTO workload_cursor (id, through) VALUES (1, ?) ON CONFLICT (id) DO NOTHING`), s.dialect.ts(to))
	} else {
		res, err = tx.ExecContext(ctx, s.dialect.rebind(`UPDATE workload_cursor SET through = ? WHERE through = ?`), s.dialect.ts(to), s.dialect.ts(through))
	}
	if err != nil {
		return false, classify(fmt.Errorf("advance the workload cursor: %w", err))
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, classify(err)
	}
	placeholders := strings.TrimSuffix(strings.Repeat("?, ", strings.Count(workloadColumns, ",")+1), ", ")
	insert, err := tx.PrepareContext(ctx, s.dialect.rebind(`INSERT INTO workloads (`+workloadColumns+`) VALUES (`+placeholders+`) RETURNING id`))
	if err != nil {
		return false, classify(err)
	}
	defer insert.Close()
	set := strings.ReplaceAll(strings.Join(strings.Fields(workloadColumns), " "), ",", " = ?,") + " = ?"
	update, err := tx.PrepareContext(ctx, s.dialect.rebind(`UPDATE workloads SET `+set+` WHERE id = ?`))
	if err != nil {
		return false, classify(err)
	}
	defer update.Close()
	for i := range records {
		w := &records[i]
		args, err := s.workloadArgs(w)
		if err != nil {
			return false, err
		}
		if w.ID == 0 {
			err = insert.QueryRowContext(ctx, args...).Scan(&w.ID)
		} else {
			_, err = update.ExecContext(ctx, append(args, w.ID)...)
		}
		if err != nil {
			return false, classify(fmt.Errorf("write the workload record of pod %q on %s: %w", w.Pod, w.GPU.Key(), err))
		}
	}
	return true, classify(tx.Commit())
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
	return []any{w.GPU.UUID, w.GPU.Instance, w.GPU.Hostname, w.GPU.ModelName, w.Namespace, w.Pod, w.Container,
		d.ts(w.Start), d.ts(w.End), d.ts(w.LastSeen), w.Open, w.GPUHours, w.UtilHours, nullable(w.MeanUtil),
		nullable(w.P95Util), w.IdleHours, nullable(w.IdleFraction()), w.UtilSignal, w.EnergyKWh, nullable(w.PeakMemory),
		nullable(w.SMActive.Mean), w.SMActive.Hours, nullable(w.TensorActive.Mean), w.TensorActive.Hours,
		nullable(w.DRAMActive.Mean), w.DRAMActive.Hours, w.Events, w.Samples, string(histogram)}, nil
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
			w                                       telemetry.Workload
			start, end, seen                        timestamp
			mean, p95, idle, peak, sm, tensor, dram sql.NullFloat64
			histogram                               string
		)
		if err := rows.Scan(&w.ID, &w.GPU.UUID, &w.GPU.Instance, &w.GPU.Hostname, &w.GPU.ModelName, &w.Namespace, &w.Pod,
			&w.Container, &start, &end, &seen, &w.Open, &w.GPUHours, &w.UtilHours, &mean, &p95, &w.IdleHours, &idle,
			&w.UtilSignal, &w.EnergyKWh, &peak, &sm, &w.SMActive.Hours, &tensor, &w.TensorActive.Hours, &dram,
			&w.DRAMActive.Hours, &w.Events, &w.Samples, &histogram); err != nil {
			return nil, err
		}
		w.Start, w.End, w.LastSeen = start.Time, end.Time, seen.Time
		w.MeanUtil, w.P95Util, w.PeakMemory = orNaN(mean), orNaN(p95), orNaN(peak)
		w.SMActive.Mean, w.TensorActive.Mean, w.DRAMActive.Mean = orNaN(sm), orNaN(tensor), orNaN(dram)
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
	query := `SELECT id, ` + workloadColumns + ` FROM workloads`
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

// pruneWorkloads deletes the closed records that ended before cutoff.
func (s *Store) pruneWorkloads(ctx context.Context, tx *sql.Tx, cutoff time.Time) (int64, error) {
	if cutoff.IsZero() {
		return 0, nil
	}
	res, err := tx.ExecContext(ctx, s.dialect.rebind(`DELETE FROM workloads WHERE open = ? AND end_time < ?`), false, s.dialect.ts(cutoff))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
