package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// GPUs implements ports.Reader.
func (s *Store) GPUs(ctx context.Context) ([]telemetry.GPU, error) {
	var rows []gpuRow
	if err := s.db.WithContext(ctx).Order("hostname, gpu_index, uuid").Find(&rows).Error; err != nil {
		return nil, classify(fmt.Errorf("list GPUs: %w", err))
	}
	gpus := make([]telemetry.GPU, len(rows))
	for i, r := range rows {
		gpus[i] = r.toGPU()
	}
	return gpus, nil
}

// Samples implements ports.Reader.
func (s *Store) Samples(ctx context.Context, q telemetry.SampleQuery) ([]telemetry.Sample, error) {
	gpuID, err := s.gpuID(ctx, q.GPU)
	if err != nil {
		return nil, err
	}
	var where strings.Builder
	args := []any{gpuID}
	where.WriteString("s.gpu_id = ?")
	if !q.Range.Start.IsZero() {
		where.WriteString(" AND s.ts >= ?")
		args = append(args, s.dialect.ts(q.Range.Start))
	}
	if !q.Range.End.IsZero() {
		where.WriteString(" AND s.ts <= ?")
		args = append(args, s.dialect.ts(q.Range.End))
	}
	args = append(args, q.Page.Limit, q.Page.Offset)
	rows, err := s.db.WithContext(ctx).Raw(`SELECT s.ts, m.name, s.value, s.container, s.pod, s.namespace
		FROM samples s JOIN metrics m ON m.id = s.metric_id
		WHERE `+where.String()+`
		ORDER BY s.ts, m.name LIMIT ? OFFSET ?`, args...).Rows()
	if err != nil {
		return nil, classify(fmt.Errorf("query samples: %w", err))
	}
	defer rows.Close()
	samples := make([]telemetry.Sample, 0, min(q.Page.Limit, 1024))
	for rows.Next() {
		var (
			ts                        timestamp
			smp                       = telemetry.Sample{GPU: q.GPU}
			container, pod, namespace *string
		)
		if err := rows.Scan(&ts, &smp.Metric, &smp.Value, &container, &pod, &namespace); err != nil {
			return nil, classify(fmt.Errorf("read samples: %w", err))
		}
		smp.Time, smp.Container, smp.Pod, smp.Namespace = ts.Time, deref(container), deref(pod), deref(namespace)
		samples = append(samples, smp)
	}
	if err := rows.Err(); err != nil {
		return nil, classify(fmt.Errorf("read samples: %w", err))
	}
	return samples, nil
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

// Stats implements ports.Reader. The sample count adds up the batches table, which holds
// one row per thousand or so samples, rather than counting samples.
func (s *Store) Stats(ctx context.Context) (telemetry.Stats, error) {
	var st telemetry.Stats
	db := s.db.WithContext(ctx)
	if err := db.Raw(`SELECT coalesce(sum(samples), 0) FROM batches`).Scan(&st.TotalSamples).Error; err != nil {
		return st, classify(fmt.Errorf("count samples: %w", err))
	}
	err := db.Raw(`SELECT count(*), count(DISTINCT hostname) FROM gpus`).Row().Scan(&st.UniqueGPUs, &st.UniqueHosts)
	if err != nil {
		return st, classify(fmt.Errorf("count GPUs: %w", err))
	}
	return st, nil
}

// timestamp scans the ts column of either dialect: timestamptz on PostgreSQL, Unix
// microseconds on SQLite.
type timestamp struct{ time.Time }

func (t *timestamp) Scan(src any) error {
	switch v := src.(type) {
	case time.Time:
		t.Time = v.UTC()
	case int64:
		t.Time = time.UnixMicro(v).UTC()
	default:
		return fmt.Errorf("ts: unexpected %T", src)
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
