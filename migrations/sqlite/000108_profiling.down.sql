DROP VIEW usage_hourly;
DROP VIEW usage_daily;
ALTER TABLE usage_hours DROP COLUMN gr_engine_active_seconds;
ALTER TABLE usage_hours DROP COLUMN gr_engine_active_sum;
ALTER TABLE usage_hours DROP COLUMN sm_active_seconds;
ALTER TABLE usage_hours DROP COLUMN sm_active_sum;
ALTER TABLE usage_hours DROP COLUMN sm_occupancy_seconds;
ALTER TABLE usage_hours DROP COLUMN sm_occupancy_sum;
ALTER TABLE usage_hours DROP COLUMN tensor_active_seconds;
ALTER TABLE usage_hours DROP COLUMN tensor_active_sum;
ALTER TABLE usage_hours DROP COLUMN fp16_active_seconds;
ALTER TABLE usage_hours DROP COLUMN fp16_active_sum;
ALTER TABLE usage_hours DROP COLUMN fp32_active_seconds;
ALTER TABLE usage_hours DROP COLUMN fp32_active_sum;
ALTER TABLE usage_hours DROP COLUMN fp64_active_seconds;
ALTER TABLE usage_hours DROP COLUMN fp64_active_sum;
ALTER TABLE usage_hours DROP COLUMN dram_active_seconds;
ALTER TABLE usage_hours DROP COLUMN dram_active_sum;
ALTER TABLE usage_hours DROP COLUMN pcie_tx_share_seconds;
ALTER TABLE usage_hours DROP COLUMN pcie_tx_share_sum;
ALTER TABLE usage_hours DROP COLUMN pcie_rx_share_seconds;
ALTER TABLE usage_hours DROP COLUMN pcie_rx_share_sum;
ALTER TABLE usage_hours DROP COLUMN nvlink_tx_share_seconds;
ALTER TABLE usage_hours DROP COLUMN nvlink_tx_share_sum;
ALTER TABLE usage_hours DROP COLUMN nvlink_rx_share_seconds;
ALTER TABLE usage_hours DROP COLUMN nvlink_rx_share_sum;
ALTER TABLE usage_days DROP COLUMN gr_engine_active_seconds;
ALTER TABLE usage_days DROP COLUMN gr_engine_active_sum;
ALTER TABLE usage_days DROP COLUMN sm_active_seconds;
ALTER TABLE usage_days DROP COLUMN sm_active_sum;
ALTER TABLE usage_days DROP COLUMN sm_occupancy_seconds;
ALTER TABLE usage_days DROP COLUMN sm_occupancy_sum;
ALTER TABLE usage_days DROP COLUMN tensor_active_seconds;
ALTER TABLE usage_days DROP COLUMN tensor_active_sum;
ALTER TABLE usage_days DROP COLUMN fp16_active_seconds;
ALTER TABLE usage_days DROP COLUMN fp16_active_sum;
ALTER TABLE usage_days DROP COLUMN fp32_active_seconds;
ALTER TABLE usage_days DROP COLUMN fp32_active_sum;
ALTER TABLE usage_days DROP COLUMN fp64_active_seconds;
ALTER TABLE usage_days DROP COLUMN fp64_active_sum;
ALTER TABLE usage_days DROP COLUMN dram_active_seconds;
ALTER TABLE usage_days DROP COLUMN dram_active_sum;
ALTER TABLE usage_days DROP COLUMN pcie_tx_share_seconds;
ALTER TABLE usage_days DROP COLUMN pcie_tx_share_sum;
ALTER TABLE usage_days DROP COLUMN pcie_rx_share_seconds;
ALTER TABLE usage_days DROP COLUMN pcie_rx_share_sum;
ALTER TABLE usage_days DROP COLUMN nvlink_tx_share_seconds;
ALTER TABLE usage_days DROP COLUMN nvlink_tx_share_sum;
ALTER TABLE usage_days DROP COLUMN nvlink_rx_share_seconds;
ALTER TABLE usage_days DROP COLUMN nvlink_rx_share_sum;
ALTER TABLE workloads DROP COLUMN gr_engine_active;
ALTER TABLE workloads DROP COLUMN gr_engine_active_hours;
ALTER TABLE workloads DROP COLUMN sm_occupancy;
ALTER TABLE workloads DROP COLUMN sm_occupancy_hours;
ALTER TABLE workloads DROP COLUMN fp16_active;
ALTER TABLE workloads DROP COLUMN fp16_active_hours;
ALTER TABLE workloads DROP COLUMN fp32_active;
ALTER TABLE workloads DROP COLUMN fp32_active_hours;
ALTER TABLE workloads DROP COLUMN fp64_active;
ALTER TABLE workloads DROP COLUMN fp64_active_hours;
ALTER TABLE workloads DROP COLUMN pcie_tx_share;
ALTER TABLE workloads DROP COLUMN pcie_tx_share_hours;
ALTER TABLE workloads DROP COLUMN pcie_rx_share;
ALTER TABLE workloads DROP COLUMN pcie_rx_share_hours;
ALTER TABLE workloads DROP COLUMN nvlink_tx_share;
ALTER TABLE workloads DROP COLUMN nvlink_tx_share_hours;
ALTER TABLE workloads DROP COLUMN nvlink_rx_share;
ALTER TABLE workloads DROP COLUMN nvlink_rx_share_hours;
ALTER TABLE workloads RENAME COLUMN sm_active_hours TO sm_hours;
ALTER TABLE workloads RENAME COLUMN tensor_active_hours TO tensor_hours;
ALTER TABLE workloads RENAME COLUMN dram_active_hours TO dram_hours;
CREATE VIEW usage_hourly AS
SELECT u.hour, g.uuid, g.gpu_instance, u.namespace, u.pod, g.hostname, g.model_name,
       CASE WHEN u.engine <> 0 THEN 'DCGM_FI_PROF_GR_ENGINE_ACTIVE × 100' ELSE 'DCGM_FI_DEV_GPU_UTIL' END AS util_signal,
       u.gpu_seconds, u.util_seconds, u.util_weighted, u.joules, u.peak_memory_mib, u.samples
FROM usage_hours u JOIN gpus g ON g.id = u.gpu_id;
CREATE VIEW usage_daily AS
SELECT u.day, g.uuid, g.gpu_instance, u.namespace, u.pod, g.hostname, g.model_name,
       CASE WHEN u.engine <> 0 THEN 'DCGM_FI_PROF_GR_ENGINE_ACTIVE × 100' ELSE 'DCGM_FI_DEV_GPU_UTIL' END AS util_signal,
       u.gpu_seconds, u.util_seconds, u.util_weighted, u.joules, u.peak_memory_mib, u.samples
FROM usage_days u JOIN gpus g ON g.id = u.gpu_id;
