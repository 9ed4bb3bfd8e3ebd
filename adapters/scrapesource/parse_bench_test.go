package scrapesource

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// node is an 8-GPU node's exposition as dcgm-exporter writes it: 40 fields, HELP and TYPE
// lines, some 100 kB.
func node(badLines int) []byte {
	var b strings.Builder
	for f := range 40 {
		fmt.Fprintf(&b, "# HELP DCGM_FI_FIELD_%02d Field %d.\n# TYPE DCGM_FI_FIELD_%02d gauge\n", f, f, f)
		for g := range 8 {
			value := fmt.Sprint(f*100 + g)
			if f < badLines && g == 0 {
				value = "ERROR - FAILED TO CONVERT TO STRING"
			}
			fmt.Fprintf(&b, `DCGM_FI_FIELD_%02d{gpu="%d",UUID="GPU-%08d-0000-0000-0000-000000000000",pci_bus_id="00000000:%02X:00.0",device="nvidia%d",modelName="NVIDIA H100 80GB HBM3",Hostname="node-1",DCGM_FI_DRIVER_VERSION="550.54.15",container="",namespace="",pod=""} %s`+"\n",
				f, g, g, 7+16*g, g, value)
		}
	}
	return []byte(b.String())
}

// BenchmarkDecode measures a node's exposition read whole (the usual case) and with bad
// lines, each costing a parse of its family line by line (docs/performance.md).
func BenchmarkDecode(b *testing.B) {
	for _, bad := range []int{0, 1, 40} {
		body := node(bad)
		b.Run(fmt.Sprintf("bad_lines=%d", bad), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				vec, lines, err := decode(body, expfmt.NewFormat(expfmt.TypeTextPlain), model.Now())
				if err != nil || len(vec) != 320-bad || len(lines) != bad {
					b.Fatalf("%d samples, %d bad lines, %v", len(vec), len(lines), err)
				}
			}
		})
	}
}
