package healthtest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// The planted odd one out of OddOneOut.
const (
	OddGPU     = "GPU-h1-3"
	OddSBERate = 17700.0 // correctable ECC errors a second
)

// OddOneOut is two hours of 32 GPUs scraped every 30 s from t0 — hosts h1, h2 and h3 of
// eight H100s, h4 of one H100 and seven L4s — with the usual noise: temperature following
// power within a degree or two, PCIe replays and correctable ECC errors now and then. When
// planted, OddGPU (on h1) corrects OddSBERate ECC errors a second while its 7 peers on h1 and
// 24 of its model count none.
func OddOneOut(t0 time.Time, planted bool) telemetry.Batch {
	rng := rand.New(rand.NewPCG(7, 11))
	var gpus []telemetry.GPU
	for h := 1; h <= 4; h++ {
		for i := range 8 {
			model := "NVIDIA H100 80GB HBM3"
			if h == 4 && i > 0 {
				model = "NVIDIA L4"
			}
			gpus = append(gpus, telemetry.GPU{UUID: fmt.Sprintf("GPU-h%d-%d", h, i), Hostname: fmt.Sprintf("h%d", h), Index: i, ModelName: model})
		}
	}
	b := telemetry.Batch{ID: fmt.Sprint("odd-one-out-", planted), GPUs: gpus}
	sbe, replays := make([]float64, len(gpus)), make([]float64, len(gpus))
	for at := time.Duration(0); at < 2*time.Hour; at += 30 * time.Second {
		for i, g := range gpus {
			power := 300 + 100*math.Sin(float64(at)/float64(17*time.Minute)+float64(i)) + rng.Float64()*20
			if g.ModelName == "NVIDIA L4" {
				power /= 5
			}
			temp := 30 + 0.1*power + rng.NormFloat64()
			if rng.IntN(200) == 0 {
				replays[i] += float64(1 + rng.IntN(3))
			}
			if rng.IntN(500) == 0 {
				sbe[i]++
			}
			if planted && g.UUID == OddGPU && at > 0 {
				sbe[i] += OddSBERate * 30
			}
			for _, s := range []struct {
				metric string
				value  float64
			}{
				{"DCGM_FI_DEV_POWER_USAGE", math.Round(power*10) / 10}, {"DCGM_FI_DEV_GPU_TEMP", math.Round(temp)},
				{"DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", sbe[i]}, {"DCGM_FI_DEV_PCIE_REPLAY_COUNTER", replays[i]},
				{"DCGM_FI_DEV_XID_ERRORS", 0}, {"DCGM_FI_DEV_CLOCKS_EVENT_REASONS", 0},
			} {
				b.Samples = append(b.Samples, telemetry.Sample{GPU: g.UUID, Metric: s.metric, Time: t0.Add(at), Value: s.value})
			}
		}
	}
	return b
}
