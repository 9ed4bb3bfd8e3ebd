package sqlstore

// The catalog: the surrogate keys of devices and metrics, registered as batches bring them
// and cached, so that chunks refer to a device and a metric by a small number.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"gorm.io/gorm/clause"

	"github.com/telemetry-pipeline/telemetry-pipeline/adapters/sqlstore/engine"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// gpuRow is a row of the gpus table: a device.
type gpuRow struct {
	ID                 int32  `gorm:"primaryKey"`
	UUID               string `gorm:"column:uuid"`
	GPUInstance        string `gorm:"column:gpu_instance"`
	GPUInstanceProfile string `gorm:"column:gpu_instance_profile"`
	Hostname           string
	GPUIndex           int `gorm:"column:gpu_index"`
	Device             string
	ModelName          string
	DriverVersion      string
	PCIBusID           string `gorm:"column:pci_bus_id"`
	Labels             string // a JSON object, keys sorted: rows compare as strings
	IDFrom             string `gorm:"column:id_from"`
	HostnameLabel      string `gorm:"column:hostname_label"`
}

func (gpuRow) TableName() string { return "gpus" }

func (r gpuRow) key() string { return telemetry.DeviceKey(r.UUID, r.GPUInstance) }

func toGPURow(g telemetry.GPU) gpuRow {
	labels := []byte("{}")
	if len(g.Labels) > 0 {
		labels, _ = json.Marshal(g.Labels) // a map of strings always encodes
	}
	return gpuRow{UUID: g.UUID, GPUInstance: g.Instance, GPUInstanceProfile: g.InstanceProfile,
		Hostname: g.Hostname, GPUIndex: g.Index, Device: g.Device, ModelName: g.ModelName,
		DriverVersion: g.DriverVersion, PCIBusID: g.PCIBusID, Labels: string(labels), IDFrom: g.IDFrom, HostnameLabel: g.HostnameLabel}
}

// fromGPURow is toGPURow reversed; labels that are not a JSON object of strings (edited by
// hand, say) are left out.
func fromGPURow(r gpuRow) telemetry.GPU {
	g := telemetry.GPU{UUID: r.UUID, IDFrom: r.IDFrom, HostnameLabel: r.HostnameLabel, Instance: r.GPUInstance, InstanceProfile: r.GPUInstanceProfile,
		Hostname: r.Hostname, Index: r.GPUIndex, Device: r.Device, ModelName: r.ModelName,
		DriverVersion: r.DriverVersion, PCIBusID: r.PCIBusID}
	if r.Labels != "" && r.Labels != "{}" {
		_ = json.Unmarshal([]byte(r.Labels), &g.Labels)
	}
	return g
}

// metricRow is a row of the metrics table.
type metricRow struct {
	ID   int32 `gorm:"primaryKey"`
	Name string
}

func (metricRow) TableName() string { return "metrics" }

// registerPairs records which device reports which metric (gpus.metric_ids), so that the
// latest value of each is found without reading a device's whole history. Known pairs cost
// no query; a device's new metrics are added to its row in one statement, whatever other
// writers add at the same time.
func (s *Store) registerPairs(ctx context.Context, runs []engine.Run) error {
	var distinct []metricPair
	seen := map[int32]bool{}
	for _, run := range runs {
		clear(seen)
		for _, p := range run.Points {
			if !seen[p.Metric] {
				seen[p.Metric] = true
				distinct = append(distinct, metricPair{run.Device, p.Metric})
			}
		}
	}
	s.mu.Lock()
	missing := slices.DeleteFunc(distinct, func(pair metricPair) bool { return s.pairs[pair] })
	s.mu.Unlock()
	if len(missing) == 0 {
		return nil
	}
	slices.SortFunc(missing, func(a, b metricPair) int { return cmp.Or(cmp.Compare(a.gpu, b.gpu), cmp.Compare(a.metric, b.metric)) })
	type added struct {
		gpu     int32
		metrics []int32
	}
	var devices []added
	for _, pair := range missing {
		if n := len(devices); n > 0 && devices[n-1].gpu == pair.gpu {
			devices[n-1].metrics = append(devices[n-1].metrics, pair.metric)
		} else {
			devices = append(devices, added{pair.gpu, []int32{pair.metric}})
		}
	}
	err := inChunks(devices, func(part []added) error {
		if s.dialect.name == "sqlite" {
			for _, d := range part {
				ids, _ := json.Marshal(d.metrics)
				if err := s.db.WithContext(ctx).Exec(`UPDATE gpus SET metric_ids = (SELECT json_group_array(value) FROM
					(SELECT value FROM json_each(gpus.metric_ids) UNION SELECT value FROM json_each(?) ORDER BY value)) WHERE id = ?`,
					string(ids), d.gpu).Error; err != nil {
					return err
				}
			}
			return nil
		}
		values, args := make([]string, len(part)), make([]any, 0, 2*len(part))
		for i, d := range part {
			// The ids as an array literal: GORM would expand a slice into a row.
			ids := make([]string, len(d.metrics))
			for k, m := range d.metrics {
				ids[k] = strconv.Itoa(int(m))
			}
			values[i] = "(?::integer, ?::integer[])"
			args = append(args, d.gpu, "{"+strings.Join(ids, ",")+"}")
		}
		return s.db.WithContext(ctx).Exec(`UPDATE gpus AS g SET metric_ids =
			(SELECT array_agg(DISTINCT x ORDER BY x) FROM unnest(g.metric_ids || v.ids) AS x)
			FROM (VALUES `+strings.Join(values, ", ")+`) AS v(id, ids) WHERE g.id = v.id AND NOT g.metric_ids @> v.ids`, args...).Error
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, pair := range missing {
		s.pairs[pair] = true
	}
	return nil
}

// metricPair is a device and a metric it reports.
type metricPair struct{ gpu, metric int32 }

// gpuIDs returns the surrogate key of each GPU, registering new GPUs and updating those whose
// metadata changed. Known, unchanged GPUs cost no query.
func (s *Store) gpuIDs(ctx context.Context, gpus []telemetry.GPU) (map[string]int32, error) {
	ids := make(map[string]int32, len(gpus))
	var upsert []gpuRow
	s.mu.Lock()
	for _, g := range gpus {
		key := g.Key()
		if known, ok := s.gpus[key]; ok && known.gpu.Equal(g) {
			ids[key] = known.id
			continue
		}
		upsert = append(upsert, toGPURow(g))
	}
	s.mu.Unlock()
	if len(upsert) == 0 {
		return ids, nil
	}
	// A stable order keeps concurrent collectors from deadlocking on each other's rows.
	slices.SortFunc(upsert, func(a, b gpuRow) int {
		return cmp.Or(strings.Compare(a.UUID, b.UUID), strings.Compare(a.GPUInstance, b.GPUInstance))
	})
	upsert = slices.CompactFunc(upsert, func(a, b gpuRow) bool { return a.key() == b.key() })
	err := inChunks(upsert, func(part []gpuRow) error {
		return s.db.WithContext(ctx).Clauses(
			clause.OnConflict{
				Columns: []clause.Column{{Name: "uuid"}, {Name: "gpu_instance"}},
				DoUpdates: clause.AssignmentColumns([]string{"gpu_instance_profile", "hostname", "gpu_index", "device",
					"model_name", "driver_version", "pci_bus_id", "labels", "id_from", "hostname_label"}),
			},
			clause.Returning{Columns: []clause.Column{{Name: "id"}, {Name: "uuid"}, {Name: "gpu_instance"}}},
		).Create(&part).Error // fills in part's IDs, and so upsert's
	})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, row := range upsert {
		if row.ID == 0 {
			return nil, errors.New("database returned no id for GPU " + row.key())
		}
		s.gpus[row.key()] = knownGPU{id: row.ID, gpu: fromGPURow(row)}
		ids[row.key()] = row.ID
	}
	return ids, nil
}

// inChunks calls insert on rows 1,000 at a time: one INSERT of many rows binds a parameter
// per column and row, and PostgreSQL takes 65,535 parameters at most (a group commit of
// batches from a large fleet registers tens of thousands of GPUs at once).
func inChunks[T any](rows []T, insert func([]T) error) error {
	for part := range slices.Chunk(rows, 1000) {
		if err := insert(part); err != nil {
			return err
		}
	}
	return nil
}

// knownGPU is a registered device: its surrogate key and the description stored with it.
type knownGPU struct {
	id  int32
	gpu telemetry.GPU
}

// metricIDs returns the surrogate key of each metric name in the batches, registering new
// names.
func (s *Store) metricIDs(ctx context.Context, bs []telemetry.Batch) (map[string]int32, error) {
	ids := make(map[string]int32)
	var missing []metricRow
	s.mu.Lock()
	var last string
	for i, smp := range allSamples(bs) {
		if i > 0 && smp.Metric == last {
			continue
		}
		last = smp.Metric
		if _, done := ids[smp.Metric]; done {
			continue
		}
		if id, ok := s.metrics[smp.Metric]; ok {
			ids[smp.Metric] = id
			continue
		}
		ids[smp.Metric] = 0
		missing = append(missing, metricRow{Name: smp.Metric})
	}
	s.mu.Unlock()
	if len(missing) == 0 {
		return ids, nil
	}
	slices.SortFunc(missing, func(a, b metricRow) int { return strings.Compare(a.Name, b.Name) })
	err := inChunks(missing, func(part []metricRow) error {
		return s.db.WithContext(ctx).Clauses(
			clause.OnConflict{Columns: []clause.Column{{Name: "name"}}, DoUpdates: clause.AssignmentColumns([]string{"name"})},
			clause.Returning{Columns: []clause.Column{{Name: "id"}, {Name: "name"}}},
		).Create(&part).Error
	})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, row := range missing {
		if row.ID == 0 {
			return nil, errors.New("database returned no id for metric " + row.Name)
		}
		s.metrics[row.Name] = row.ID
		s.names[row.ID] = row.Name
		ids[row.Name] = row.ID
	}
	return ids, nil
}

// storedMetrics returns the ids of the named metrics that were ever stored, nil when names is
// empty or none was. Names this process has seen come from its cache: a dashboard asks for
// the same few metrics many times a second.
func (s *Store) storedMetrics(ctx context.Context, names []string) (map[int32]bool, error) {
	if len(names) == 0 {
		return nil, nil
	}
	set := make(map[int32]bool, len(names))
	var unknown []string
	s.mu.Lock()
	for _, n := range names {
		if id, ok := s.metrics[n]; ok {
			set[id] = true
		} else {
			unknown = append(unknown, n)
		}
	}
	s.mu.Unlock()
	if len(unknown) > 0 {
		var ids []int32
		err := s.db.WithContext(ctx).Raw(`SELECT id FROM metrics WHERE name IN (`+placeholders(len(unknown))+`)`,
			toAny(unknown)...).Scan(&ids).Error
		if err != nil {
			return nil, classify(fmt.Errorf("look up metrics: %w", err))
		}
		for _, id := range ids {
			set[id] = true
		}
	}
	if len(set) == 0 {
		return nil, nil
	}
	return set, nil
}

// metricName resolves a metric id, reloading the metrics table when the id is new to this
// process (another collector registered it).
func (s *Store) metricName(ctx context.Context, id int32) (string, error) {
	s.mu.Lock()
	name, ok := s.names[id]
	s.mu.Unlock()
	if ok {
		return name, nil
	}
	var rows []metricRow
	if err := s.db.WithContext(ctx).Find(&rows).Error; err != nil {
		return "", classify(fmt.Errorf("look up metrics: %w", err))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range rows {
		s.metrics[r.Name], s.names[r.ID] = r.ID, r.Name
	}
	if name, ok = s.names[id]; !ok {
		return "", fmt.Errorf("metric id %d: %w", id, engine.ErrCorrupt)
	}
	return name, nil
}

// gpuID resolves a device key to its surrogate key, telemetry.ErrNotFound when unknown.
func (s *Store) gpuID(ctx context.Context, key string) (int32, error) {
	found, err := s.lookupGPUIDs(ctx, []string{key})
	if err != nil {
		return 0, err
	}
	if id, ok := found[key]; ok {
		return id, nil
	}
	if uuid, instance := telemetry.SplitDeviceKey(key); instance != "" {
		return 0, fmt.Errorf("GPU %s has no MIG instance %s: %w", uuid, instance, telemetry.ErrNotFound)
	}
	return 0, fmt.Errorf("GPU %s: %w", key, telemetry.ErrNotFound)
}

// lookupGPUIDs returns the surrogate ids of the devices keys name that are stored, by key:
// those not known yet read by the thousand, not one query each (a PromQL query over a
// fleet of 100,000 GPUs read them one by one in 15 s).
func (s *Store) lookupGPUIDs(ctx context.Context, keys []string) (map[string]int32, error) {
	out := make(map[string]int32, len(keys))
	var missing []string // their UUIDs
	s.mu.Lock()
	for _, key := range keys {
		if known, ok := s.gpus[key]; ok {
			out[key] = known.id
		} else {
			uuid, _ := telemetry.SplitDeviceKey(key)
			missing = append(missing, uuid)
		}
	}
	s.mu.Unlock()
	slices.Sort(missing)
	missing = slices.Compact(missing)
	for uuids := range slices.Chunk(missing, 1000) {
		var rows []gpuRow
		if err := s.db.WithContext(ctx).Where("uuid IN ?", uuids).Find(&rows).Error; err != nil {
			return nil, classify(fmt.Errorf("look up GPUs: %w", err))
		}
		s.mu.Lock()
		for _, row := range rows {
			key := telemetry.DeviceKey(row.UUID, row.GPUInstance)
			s.gpus[key] = knownGPU{id: row.ID, gpu: fromGPURow(row)}
		}
		s.mu.Unlock()
	}
	if len(missing) > 0 {
		s.mu.Lock()
		for _, key := range keys {
			if known, ok := s.gpus[key]; ok {
				out[key] = known.id
			}
		}
		s.mu.Unlock()
	}
	return out, nil
}
