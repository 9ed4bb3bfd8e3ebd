-- Every profiling field efficiency is read from (domain/usage EfficiencyFields), as a share
-- of the model's peak (the activity ratios are shares already; PCIe and NVLink bytes a second
-- are shares of the model's link speed): workload records kept SM, tensor and DRAM activity
-- only, the usage sums none. NULL: not reported. A record's <share> is its mean over
-- <share>_hours, the hours the device reported the field; a usage row's <share>_sum is
-- share × GPU-seconds over <share>_seconds, which add up across rows as means do not.
-- Usage rows recorded before hold none: their hours read as not reported.

ALTER TABLE workloads RENAME COLUMN sm_hours TO sm_active_hours;
ALTER TABLE workloads RENAME COLUMN tensor_hours TO tensor_active_hours;
ALTER TABLE workloads RENAME COLUMN dram_hours TO dram_active_hours;
ALTER TABLE workloads
    ADD COLUMN gr_engine_active double precision, ADD COLUMN gr_engine_active_hours double precision NOT NULL DEFAULT 0,
    ADD COLUMN sm_occupancy double precision, ADD COLUMN sm_occupancy_hours double precision NOT NULL DEFAULT 0,
    ADD COLUMN fp16_active double precision, ADD COLUMN fp16_active_hours double precision NOT NULL DEFAULT 0,
    ADD COLUMN fp32_active double precision, ADD COLUMN fp32_active_hours double precision NOT NULL DEFAULT 0,
    ADD COLUMN fp64_active double precision, ADD COLUMN fp64_active_hours double precision NOT NULL DEFAULT 0,
    ADD COLUMN pcie_tx_share double precision, ADD COLUMN pcie_tx_share_hours double precision NOT NULL DEFAULT 0,
    ADD COLUMN pcie_rx_share double precision, ADD COLUMN pcie_rx_share_hours double precision NOT NULL DEFAULT 0,
    ADD COLUMN nvlink_tx_share double precision, ADD COLUMN nvlink_tx_share_hours double precision NOT NULL DEFAULT 0,
    ADD COLUMN nvlink_rx_share double precision, ADD COLUMN nvlink_rx_share_hours double precision NOT NULL DEFAULT 0;
ALTER TABLE usage_hours
    ADD COLUMN gr_engine_active_seconds double precision, ADD COLUMN gr_engine_active_sum double precision,
    ADD COLUMN sm_active_seconds double precision, ADD COLUMN sm_active_sum double precision,
    ADD COLUMN sm_occupancy_seconds double precision, ADD COLUMN sm_occupancy_sum double precision,
    ADD COLUMN tensor_active_seconds double precision, ADD COLUMN tensor_active_sum double precision,
    ADD COLUMN fp16_active_seconds double precision, ADD COLUMN fp16_active_sum double precision,
    ADD COLUMN fp32_active_seconds double precision, ADD COLUMN fp32_active_sum double precision,
    ADD COLUMN fp64_active_seconds double precision, ADD COLUMN fp64_active_sum double precision,
    ADD COLUMN dram_active_seconds double precision, ADD COLUMN dram_active_sum double precision,
    ADD COLUMN pcie_tx_share_seconds double precision, ADD COLUMN pcie_tx_share_sum double precision,
    ADD COLUMN pcie_rx_share_seconds double precision, ADD COLUMN pcie_rx_share_sum double precision,
    ADD COLUMN nvlink_tx_share_seconds double precision, ADD COLUMN nvlink_tx_share_sum double precision,
    ADD COLUMN nvlink_rx_share_seconds double precision, ADD COLUMN nvlink_rx_share_sum double precision;
ALTER TABLE usage_days
    ADD COLUMN gr_engine_active_seconds double precision, ADD COLUMN gr_engine_active_sum double precision,
    ADD COLUMN sm_active_seconds double precision, ADD COLUMN sm_active_sum double precision,
    ADD COLUMN sm_occupancy_seconds double precision, ADD COLUMN sm_occupancy_sum double precision,
    ADD COLUMN tensor_active_seconds double precision, ADD COLUMN tensor_active_sum double precision,
    ADD COLUMN fp16_active_seconds double precision, ADD COLUMN fp16_active_sum double precision,
    ADD COLUMN fp32_active_seconds double precision, ADD COLUMN fp32_active_sum double precision,
    ADD COLUMN fp64_active_seconds double precision, ADD COLUMN fp64_active_sum double precision,
    ADD COLUMN dram_active_seconds double precision, ADD COLUMN dram_active_sum double precision,
    ADD COLUMN pcie_tx_share_seconds double precision, ADD COLUMN pcie_tx_share_sum double precision,
    ADD COLUMN pcie_rx_share_seconds double precision, ADD COLUMN pcie_rx_share_sum double precision,
    ADD COLUMN nvlink_tx_share_seconds double precision, ADD COLUMN nvlink_tx_share_sum double precision,
    ADD COLUMN nvlink_rx_share_seconds double precision, ADD COLUMN nvlink_rx_share_sum double precision;

-- The views give each share's mean and the seconds it is of.
CREATE OR REPLACE VIEW usage_hourly AS
SELECT u.hour, g.uuid, g.gpu_instance, u.namespace, u.pod, g.hostname, g.model_name,
       CASE WHEN u.engine THEN 'DCGM_FI_PROF_GR_ENGINE_ACTIVE × 100' ELSE 'DCGM_FI_DEV_GPU_UTIL' END AS util_signal,
       u.gpu_seconds, u.util_seconds, u.util_weighted, u.joules, u.peak_memory_mib, u.samples,
       u.gr_engine_active_sum / nullif(u.gr_engine_active_seconds, 0) AS gr_engine_active, u.gr_engine_active_seconds,
       u.sm_active_sum / nullif(u.sm_active_seconds, 0) AS sm_active, u.sm_active_seconds,
       u.sm_occupancy_sum / nullif(u.sm_occupancy_seconds, 0) AS sm_occupancy, u.sm_occupancy_seconds,
       u.tensor_active_sum / nullif(u.tensor_active_seconds, 0) AS tensor_active, u.tensor_active_seconds,
       u.fp16_active_sum / nullif(u.fp16_active_seconds, 0) AS fp16_active, u.fp16_active_seconds,
       u.fp32_active_sum / nullif(u.fp32_active_seconds, 0) AS fp32_active, u.fp32_active_seconds,
       u.fp64_active_sum / nullif(u.fp64_active_seconds, 0) AS fp64_active, u.fp64_active_seconds,
       u.dram_active_sum / nullif(u.dram_active_seconds, 0) AS dram_active, u.dram_active_seconds,
       u.pcie_tx_share_sum / nullif(u.pcie_tx_share_seconds, 0) AS pcie_tx_share, u.pcie_tx_share_seconds,
       u.pcie_rx_share_sum / nullif(u.pcie_rx_share_seconds, 0) AS pcie_rx_share, u.pcie_rx_share_seconds,
       u.nvlink_tx_share_sum / nullif(u.nvlink_tx_share_seconds, 0) AS nvlink_tx_share, u.nvlink_tx_share_seconds,
       u.nvlink_rx_share_sum / nullif(u.nvlink_rx_share_seconds, 0) AS nvlink_rx_share, u.nvlink_rx_share_seconds
FROM usage_hours u JOIN gpus g ON g.id = u.gpu_id;
CREATE OR REPLACE VIEW usage_daily AS
SELECT u.day, g.uuid, g.gpu_instance, u.namespace, u.pod, g.hostname, g.model_name,
       CASE WHEN u.engine THEN 'DCGM_FI_PROF_GR_ENGINE_ACTIVE × 100' ELSE 'DCGM_FI_DEV_GPU_UTIL' END AS util_signal,
       u.gpu_seconds, u.util_seconds, u.util_weighted, u.joules, u.peak_memory_mib, u.samples,
       u.gr_engine_active_sum / nullif(u.gr_engine_active_seconds, 0) AS gr_engine_active, u.gr_engine_active_seconds,
       u.sm_active_sum / nullif(u.sm_active_seconds, 0) AS sm_active, u.sm_active_seconds,
       u.sm_occupancy_sum / nullif(u.sm_occupancy_seconds, 0) AS sm_occupancy, u.sm_occupancy_seconds,
       u.tensor_active_sum / nullif(u.tensor_active_seconds, 0) AS tensor_active, u.tensor_active_seconds,
       u.fp16_active_sum / nullif(u.fp16_active_seconds, 0) AS fp16_active, u.fp16_active_seconds,
       u.fp32_active_sum / nullif(u.fp32_active_seconds, 0) AS fp32_active, u.fp32_active_seconds,
       u.fp64_active_sum / nullif(u.fp64_active_seconds, 0) AS fp64_active, u.fp64_active_seconds,
       u.dram_active_sum / nullif(u.dram_active_seconds, 0) AS dram_active, u.dram_active_seconds,
       u.pcie_tx_share_sum / nullif(u.pcie_tx_share_seconds, 0) AS pcie_tx_share, u.pcie_tx_share_seconds,
       u.pcie_rx_share_sum / nullif(u.pcie_rx_share_seconds, 0) AS pcie_rx_share, u.pcie_rx_share_seconds,
       u.nvlink_tx_share_sum / nullif(u.nvlink_tx_share_seconds, 0) AS nvlink_tx_share, u.nvlink_tx_share_seconds,
       u.nvlink_rx_share_sum / nullif(u.nvlink_rx_share_seconds, 0) AS nvlink_rx_share, u.nvlink_rx_share_seconds
FROM usage_days u JOIN gpus g ON g.id = u.gpu_id;
