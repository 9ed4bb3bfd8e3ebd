package usage

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestModelsAreFoundByTheirLongestName(t *testing.T) {
	for modelName, want := range map[string]string{
		"NVIDIA H100 80GB HBM3": "H100 SXM", "NVIDIA H100 PCIe": "H100 PCIe", "NVIDIA H200": "H200",
		"NVIDIA A100-SXM4-80GB": "A100 SXM", "NVIDIA A100-PCIE-40GB": "A100 PCIe", "NVIDIA L40S": "L40S",
		"NVIDIA L40": "L40", "NVIDIA L4": "L4", "Tesla T4": "T4",
	} {
		m, ok := ModelOf(modelName)
		assert.True(t, ok, modelName)
		assert.Equal(t, want, m.Name, modelName)
	}
	_, ok := ModelOf("NVIDIA GeForce RTX 4090")
	assert.False(t, ok)
	assert.Len(t, Models(), 10)
	assert.Equal(t, -1.0, trafficPeak("NVIDIA L4", NVLinkTxField), "an L4 has no NVLink: no share of it")
	assert.Equal(t, 450e9, trafficPeak("NVIDIA H100 80GB HBM3", NVLinkRxField))
	assert.Zero(t, trafficPeak("NVIDIA H100 80GB HBM3", SMField))
}

func TestClassesOfAHolding(t *testing.T) {
	nan := math.NaN()
	for _, c := range []struct {
		sm, engine, memory float64
		want               string
	}{
		{0.6, nan, 60000, ClassActive},
		{0.002, 0.5, 20000, ClassHeldNoKernels}, // SM activity decides where both are sent
		{nan, 0.003, nan, ClassHeldNoKernels},
		{0.03, nan, 40000, ClassMemoryHeldIdle},
		{0.03, nan, 500, ClassActive},
		{0.03, nan, nan, ClassActive},
		{nan, nan, 80000, ClassNotReported},
	} {
		assert.Equal(t, c.want, Classify(c.sm, c.engine, c.memory), "%+v", c)
	}
}
