package sqlstore

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
	"github.com/telemetry-pipeline/telemetry-pipeline/ports"
)

var (
	_ ports.Inventory    = (*Store)(nil)
	_ ports.SampleReader = (*Store)(nil)
	_ ports.Summarizer   = (*Store)(nil)
)

// GPUs implements ports.Inventory. First and last sample times come from the (gpu_id, ts)
// index, one lookup each per GPU.
func (s *Store) GPUs(ctx context.Context, f telemetry.GPUFilter) ([]telemetry.GPUInfo, error) {
	var where []string
	var args []any
	for col, v := range map[string]string{"uuid": f.UUID, "hostname": f.Hostname, "model_name": f.Model} {
		if v != "" {
			where = append(where, "g."+col+" = ?")
			args = append(args, v)
		}
	}
	sqlText := `SELECT g.uuid, g.hostname, g.gpu_index, g.device, g.model_name, g.driver_version,
			(SELECT min(ts) FROM samples s WHERE s.gpu_id = g.id),
			(SELECT max(ts) FROM samples s WHERE s.gpu_id = g.id)
		FROM gpus g`
	if len(where) > 0 {
		sqlText += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := s.db.WithContext(ctx).Raw(sqlText+" ORDER BY g.hostname, g.gpu_index, g.uuid", args...).Rows()
	if err != nil {
		return nil, classify(fmt.Errorf("list GPUs: %w", err))
	}
	defer rows.Close()
	gpus := []telemetry.GPUInfo{}
	for rows.Next() {
		var g telemetry.GPUInfo
		var first, last timestamp
		if err := rows.Scan(&g.UUID, &g.Hostname, &g.Index, &g.Device, &g.ModelName, &g.DriverVersion, &first, &last); err != nil {
			return nil, classify(fmt.Errorf("list GPUs: %w", err))
		}
		g.FirstSeen, g.LastSeen = first.Time, last.Time
		gpus = append(gpus, g)
	}
	return gpus, classify(rows.Err())
}

// Hosts implements ports.Inventory.
func (s *Store) Hosts(ctx context.Context) ([]telemetry.Host, error) {
	rows, err := s.db.WithContext(ctx).Raw(`SELECT hostname, count(*), max(last) FROM (
			SELECT g.hostname, (SELECT max(ts) FROM samples s WHERE s.gpu_id = g.id) AS last FROM gpus g
		) per_gpu GROUP BY hostname ORDER BY hostname`).Rows()
	if err != nil {
		return nil, classify(fmt.Errorf("list hosts: %w", err))
	}
	defer rows.Close()
	hosts := []telemetry.Host{}
	for rows.Next() {
		var h telemetry.Host
		var last timestamp
		if err := rows.Scan(&h.Hostname, &h.GPUs, &last); err != nil {
			return nil, classify(fmt.Errorf("list hosts: %w", err))
		}
		h.LastSeen = last.Time
		hosts = append(hosts, h)
	}
	return hosts, classify(rows.Err())
}

// Metrics implements ports.Inventory.
func (s *Store) Metrics(ctx context.Context) ([]string, error) {
	names := []string{}
	if err := s.db.WithContext(ctx).Raw(`SELECT name FROM metrics ORDER BY name`).Scan(&names).Error; err != nil {
		return nil, classify(fmt.Errorf("list metrics: %w", err))
	}
	return names, nil
}

// Samples implements ports.SampleReader.
func (s *Store) Samples(ctx context.Context, q telemetry.SampleQuery) (telemetry.SamplePage, error) {
	page := telemetry.SamplePage{Samples: make([]telemetry.Sample, 0, min(q.Page.Limit, 1024))}
	var last cursor
	n := 0
	err := s.eachSample(ctx, q, q.Page.Limit+1, func(smp telemetry.Sample, c cursor) error {
		n++
		if n > q.Page.Limit {
			page.Next = last.encode()
			return errStop
		}
		page.Samples = append(page.Samples, smp)
		last = c
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return telemetry.SamplePage{}, err
	}
	return page, nil
}

var errStop = errors.New("stop")

// EachSample implements ports.SampleReader.
func (s *Store) EachSample(ctx context.Context, q telemetry.SampleQuery, fn func(telemetry.Sample) error) error {
	return s.eachSample(ctx, q, 0, func(smp telemetry.Sample, _ cursor) error { return fn(smp) })
}

// eachSample runs the sample query, limit rows at most (0: all), in (ts, metric_id) order.
func (s *Store) eachSample(ctx context.Context, q telemetry.SampleQuery, limit int, fn func(telemetry.Sample, cursor) error) error {
	gpuID, err := s.gpuID(ctx, q.GPU)
	if err != nil {
		return err
	}
	where, args := s.sampleWhere(gpuID, q.Range)
	if len(q.Metrics) > 0 {
		ids, err := s.knownMetricIDs(ctx, q.Metrics)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil // none of the metrics asked for exists
		}
		where += " AND s.metric_id IN (" + placeholders(len(ids)) + ")"
		args = append(args, ids...)
	}
	cmp, dir := ">", "ASC"
	if q.Desc {
		cmp, dir = "<", "DESC"
	}
	if q.Page.Cursor != "" {
		c, err := decodeCursor(q.Page.Cursor)
		if err != nil {
			return err
		}
		where += " AND (s.ts " + cmp + " ? OR (s.ts = ? AND s.metric_id " + cmp + " ?))"
		ts := s.dialect.ts(time.UnixMicro(c.ts))
		args = append(args, ts, ts, c.metric)
	}
	sqlText := `SELECT s.ts, s.metric_id, m.name, s.value, s.container, s.pod, s.namespace
		FROM samples s JOIN metrics m ON m.id = s.metric_id
		WHERE ` + where + ` ORDER BY s.ts ` + dir + `, s.metric_id ` + dir
	if limit > 0 {
		sqlText += " LIMIT ? OFFSET ?"
		args = append(args, limit, q.Page.Offset)
	}
	rows, err := s.db.WithContext(ctx).Raw(sqlText, args...).Rows()
	if err != nil {
		return classify(fmt.Errorf("query samples: %w", err))
	}
	defer rows.Close()
	for rows.Next() {
		var (
			ts                        timestamp
			c                         cursor
			smp                       = telemetry.Sample{GPU: q.GPU}
			container, pod, namespace sql.NullString
		)
		if err := rows.Scan(&ts, &c.metric, &smp.Metric, &smp.Value, &container, &pod, &namespace); err != nil {
			return classify(fmt.Errorf("read samples: %w", err))
		}
		smp.Time, smp.Container, smp.Pod, smp.Namespace = ts.Time, container.String, pod.String, namespace.String
		c.ts = ts.Time.UnixMicro()
		if err := fn(smp, c); err != nil {
			return err
		}
	}
	return classify(rows.Err())
}

// sampleWhere selects one GPU's samples in a time range.
func (s *Store) sampleWhere(gpuID int32, r telemetry.TimeRange) (string, []any) {
	where, args := "s.gpu_id = ?", []any{gpuID}
	if !r.Start.IsZero() {
		where += " AND s.ts >= ?"
		args = append(args, s.dialect.ts(r.Start))
	}
	if !r.End.IsZero() {
		where += " AND s.ts <= ?"
		args = append(args, s.dialect.ts(r.End))
	}
	return where, args
}

// knownMetricIDs resolves metric names to ids, leaving out names never stored.
func (s *Store) knownMetricIDs(ctx context.Context, names []string) ([]any, error) {
	var ids []int32
	err := s.db.WithContext(ctx).Raw(`SELECT id FROM metrics WHERE name IN (`+placeholders(len(names))+`)`,
		toAny(names)...).Scan(&ids).Error
	if err != nil {
		return nil, classify(fmt.Errorf("look up metrics: %w", err))
	}
	return toAny(ids), nil
}

func placeholders(n int) string { return strings.TrimSuffix(strings.Repeat("?,", n), ",") }

func toAny[T any](xs []T) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}

// cursor marks the last sample of a page: its time (Unix microseconds, the stores'
// resolution) and metric id, the two keys samples are ordered by.
type cursor struct {
	ts     int64
	metric int32
}

func (c cursor) encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte("v1:" + strconv.FormatInt(c.ts, 10) + ":" + strconv.Itoa(int(c.metric))))
}

func decodeCursor(s string) (cursor, error) {
	bad := telemetry.Invalid("cursor", "%q is not a cursor this API returned", s)
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, bad
	}
	parts := strings.Split(string(raw), ":")
	if len(parts) != 3 || parts[0] != "v1" {
		return cursor{}, bad
	}
	ts, err1 := strconv.ParseInt(parts[1], 10, 64)
	metric, err2 := strconv.ParseInt(parts[2], 10, 32)
	if err1 != nil || err2 != nil {
		return cursor{}, bad
	}
	return cursor{ts: ts, metric: int32(metric)}, nil
}

// Latest implements ports.SampleReader: for each metric, the newest sample, found backwards
// through the (gpu_id, ts) index.
func (s *Store) Latest(ctx context.Context, uuid string) ([]telemetry.Sample, error) {
	gpuID, err := s.gpuID(ctx, uuid)
	if err != nil {
		return nil, err
	}
	sqlText := `SELECT m.name, l.ts, l.value, l.container, l.pod, l.namespace FROM metrics m
		CROSS JOIN LATERAL (SELECT ts, value, container, pod, namespace FROM samples
			WHERE gpu_id = ? AND metric_id = m.id ORDER BY ts DESC LIMIT 1) l
		ORDER BY m.name`
	if s.dialect.name == "sqlite" {
		sqlText = `SELECT m.name, s.ts, s.value, s.container, s.pod, s.namespace FROM metrics m
			JOIN samples s ON s.rowid = (SELECT rowid FROM samples
				WHERE gpu_id = ? AND metric_id = m.id ORDER BY ts DESC LIMIT 1)
			ORDER BY m.name`
	}
	rows, err := s.db.WithContext(ctx).Raw(sqlText, gpuID).Rows()
	if err != nil {
		return nil, classify(fmt.Errorf("latest samples: %w", err))
	}
	defer rows.Close()
	out := []telemetry.Sample{}
	for rows.Next() {
		var (
			ts                        timestamp
			smp                       = telemetry.Sample{GPU: uuid}
			container, pod, namespace sql.NullString
		)
		if err := rows.Scan(&smp.Metric, &ts, &smp.Value, &container, &pod, &namespace); err != nil {
			return nil, classify(fmt.Errorf("latest samples: %w", err))
		}
		smp.Time, smp.Container, smp.Pod, smp.Namespace = ts.Time, container.String, pod.String, namespace.String
		out = append(out, smp)
	}
	return out, classify(rows.Err())
}

// Aggregate implements ports.Summarizer, grouping in the database.
func (s *Store) Aggregate(ctx context.Context, q telemetry.AggregateQuery) ([]telemetry.Bucket, error) {
	gpuID, err := s.gpuID(ctx, q.GPU)
	if err != nil {
		return nil, err
	}
	where, args := s.sampleWhere(gpuID, q.Range)
	if len(q.Metrics) > 0 {
		where += " AND m.name IN (" + placeholders(len(q.Metrics)) + ")"
		args = append(args, toAny(q.Metrics)...)
	}
	var bucket, value string
	if s.dialect.name == "postgres" {
		secs := int64(q.Step / time.Second)
		bucket = fmt.Sprintf("to_timestamp(floor(extract(epoch FROM s.ts) / %d) * %d)", secs, secs)
		value = map[telemetry.Aggregation]string{
			telemetry.AggAvg: "avg(s.value)", telemetry.AggMin: "min(s.value)", telemetry.AggMax: "max(s.value)",
			telemetry.AggCount: "count(*)::float8", telemetry.AggLast: "(array_agg(s.value ORDER BY s.ts DESC))[1]",
		}[q.Agg]
	} else {
		micros := q.Step.Microseconds()
		bucket = fmt.Sprintf("(s.ts / %d) * %d", micros, micros)
		value = map[telemetry.Aggregation]string{
			telemetry.AggAvg: "avg(s.value)", telemetry.AggMin: "min(s.value)", telemetry.AggMax: "max(s.value)",
			telemetry.AggCount: "count(*) * 1.0",
			// SQLite takes a bare column from the row that holds max(): the newest value.
			telemetry.AggLast: "s.value, max(s.ts)",
		}[q.Agg]
	}
	args = append(args, q.Limit)
	rows, err := s.db.WithContext(ctx).Raw(`SELECT `+bucket+` AS bucket, m.name, count(*), `+value+`
		FROM samples s JOIN metrics m ON m.id = s.metric_id
		WHERE `+where+`
		GROUP BY bucket, m.name ORDER BY bucket, m.name LIMIT ?`, args...).Rows()
	if err != nil {
		return nil, classify(fmt.Errorf("aggregate samples: %w", err))
	}
	defer rows.Close()
	out := []telemetry.Bucket{}
	for rows.Next() {
		var b telemetry.Bucket
		var start timestamp
		dest := []any{&start, &b.Metric, &b.Count, &b.Value}
		if q.Agg == telemetry.AggLast && s.dialect.name == "sqlite" {
			dest = append(dest, new(any))
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, classify(fmt.Errorf("aggregate samples: %w", err))
		}
		b.Start = start.Time
		out = append(out, b)
	}
	return out, classify(rows.Err())
}

// gpuID resolves a UUID to its surrogate key, telemetry.ErrNotFound when unknown.
func (s *Store) gpuID(ctx context.Context, uuid string) (int32, error) {
	s.mu.Lock()
	known, ok := s.gpus[uuid]
	s.mu.Unlock()
	if ok {
		return known.ID, nil
	}
	var row gpuRow
	err := s.db.WithContext(ctx).Where("uuid = ?", uuid).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return 0, fmt.Errorf("GPU %s: %w", uuid, telemetry.ErrNotFound)
	}
	if err != nil {
		return 0, classify(fmt.Errorf("look up GPU: %w", err))
	}
	s.mu.Lock()
	s.gpus[uuid] = row
	s.mu.Unlock()
	return row.ID, nil
}

// Stats implements ports.Summarizer from the batches table — one row per batch, not per
// sample — and the gpus table.
func (s *Store) Stats(ctx context.Context) (telemetry.Stats, error) {
	var st telemetry.Stats
	var oldest, newest timestamp
	db := s.db.WithContext(ctx)
	err := db.Raw(`SELECT coalesce(sum(samples), 0), min(min_ts), max(max_ts) FROM batches`).Row().Scan(&st.TotalSamples, &oldest, &newest)
	if err != nil {
		return st, classify(fmt.Errorf("count samples: %w", err))
	}
	st.Oldest, st.Newest = oldest.Time, newest.Time
	err = db.Raw(`SELECT count(*), count(DISTINCT hostname) FROM gpus`).Row().Scan(&st.UniqueGPUs, &st.UniqueHosts)
	if err != nil {
		return st, classify(fmt.Errorf("count GPUs: %w", err))
	}
	return st, nil
}

// timestamp scans the ts column of either dialect — timestamptz on PostgreSQL, Unix
// microseconds on SQLite — and NULL as the zero time.
type timestamp struct{ time.Time }

func (t *timestamp) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		t.Time = time.Time{}
	case time.Time:
		t.Time = v.UTC()
	case int64:
		t.Time = time.UnixMicro(v).UTC()
	case float64: // SQLite arithmetic on integers can come back as REAL
		t.Time = time.UnixMicro(int64(v)).UTC()
	default:
		return fmt.Errorf("ts: unexpected %T", src)
	}
	return nil
}
