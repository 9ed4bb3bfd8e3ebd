package sqlstore

// The inventory: which devices, hosts and metrics the store holds (ports.Inventory).

import (
	"context"
	"fmt"
	"strings"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// GPUs implements ports.Inventory. First and last sample times come from the chunks
// indexes, one lookup each per GPU.
func (s *Store) GPUs(ctx context.Context, f telemetry.GPUFilter) ([]telemetry.GPUInfo, error) {
	var where []string
	var args []any
	for _, c := range []struct{ col, v string }{{"uuid", f.UUID}, {"hostname", f.Hostname}, {"model_name", f.Model}} {
		if c.v != "" {
			where = append(where, "g."+c.col+" = ?")
			args = append(args, c.v)
		}
	}
	if !f.Targets {
		where = append(where, "g.id_from <> '"+telemetry.IDFromTarget+"'")
	}
	from := "gpus g"
	if f.After != nil || f.Limit > 0 {
		// The page's GPUs first, by the listing index; then their devices.
		pageWhere, pageArgs := where, args
		if f.After != nil {
			pageWhere = append(pageWhere[:len(pageWhere):len(pageWhere)], "(g.hostname, g.gpu_index, g.uuid) > (?, ?, ?)")
			pageArgs = append(pageArgs[:len(pageArgs):len(pageArgs)], f.After.Hostname, f.After.Index, f.After.UUID)
		}
		page := "SELECT DISTINCT g.hostname, g.gpu_index, g.uuid FROM gpus g"
		if len(pageWhere) > 0 {
			page += " WHERE " + strings.Join(pageWhere, " AND ")
		}
		page += " ORDER BY g.hostname, g.gpu_index, g.uuid"
		if f.Limit > 0 {
			page += " LIMIT ?"
			pageArgs = append(pageArgs, f.Limit)
		}
		from = "(" + page + ") p JOIN gpus g ON g.hostname = p.hostname AND g.gpu_index = p.gpu_index AND g.uuid = p.uuid"
		args = append(pageArgs, args...)
	}
	span := `(SELECT min(min_ts) FROM chunks c WHERE c.gpu_id = g.id), (SELECT max(max_ts) FROM chunks c WHERE c.gpu_id = g.id)`
	if f.NoSpan {
		span = `NULL, NULL`
	}
	sqlText := `SELECT g.uuid, g.gpu_instance, g.gpu_instance_profile, g.hostname, g.gpu_index, g.device,
			g.model_name, g.driver_version, g.pci_bus_id, g.labels, g.id_from, g.hostname_label, ` + span + `
		FROM ` + from
	if len(where) > 0 {
		sqlText += " WHERE " + strings.Join(where, " AND ")
	}
	// MIG instances sort after their GPU, by number: '' < '1' < … < '9' < '10'.
	rows, err := s.db.WithContext(ctx).Raw(sqlText+` ORDER BY g.hostname, g.gpu_index, g.uuid,
		length(g.gpu_instance), g.gpu_instance`, args...).Rows()
	if err != nil {
		return nil, classify(fmt.Errorf("list GPUs: %w", err))
	}
	defer rows.Close()
	gpus := []telemetry.GPUInfo{}
	for rows.Next() {
		var r gpuRow
		var first, last timestamp
		if err := rows.Scan(&r.UUID, &r.GPUInstance, &r.GPUInstanceProfile, &r.Hostname, &r.GPUIndex, &r.Device,
			&r.ModelName, &r.DriverVersion, &r.PCIBusID, &r.Labels, &r.IDFrom, &r.HostnameLabel, &first, &last); err != nil {
			return nil, classify(fmt.Errorf("list GPUs: %w", err))
		}
		gpus = append(gpus, telemetry.GPUInfo{GPU: fromGPURow(r), FirstSeen: first.Time, LastSeen: last.Time})
	}
	return gpus, classify(rows.Err())
}

// Hosts implements ports.Inventory.
func (s *Store) Hosts(ctx context.Context, f telemetry.HostFilter) ([]telemetry.Host, error) {
	sqlText := `SELECT g.hostname, count(DISTINCT g.uuid),
			max((SELECT max(max_ts) FROM chunks c WHERE c.gpu_id = g.id))
		FROM gpus g WHERE g.id_from <> '` + telemetry.IDFromTarget + `'`
	var args []any
	if f.After != "" {
		sqlText += " AND g.hostname > ?"
		args = append(args, f.After)
	}
	sqlText += " GROUP BY g.hostname ORDER BY g.hostname"
	if f.Limit > 0 {
		sqlText += " LIMIT ?"
		args = append(args, f.Limit)
	}
	rows, err := s.db.WithContext(ctx).Raw(sqlText, args...).Rows()
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
