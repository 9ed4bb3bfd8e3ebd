package query_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/query"
	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

func TestValidate(t *testing.T) {
	t0 := time.Date(2025, 7, 18, 20, 42, 34, 0, time.UTC)
	ok := telemetry.SampleQuery{GPU: "GPU-1", Page: telemetry.Page{Limit: query.DefaultLimit}}
	tests := []struct {
		name  string
		edit  func(*telemetry.SampleQuery)
		field string // "" = valid
	}{
		{"defaults", func(*telemetry.SampleQuery) {}, ""},
		{"max limit", func(q *telemetry.SampleQuery) { q.Page.Limit = query.MaxLimit }, ""},
		{"one-instant window", func(q *telemetry.SampleQuery) { q.Range = telemetry.TimeRange{Start: t0, End: t0} }, ""},
		{"open start", func(q *telemetry.SampleQuery) { q.Range.End = t0 }, ""},
		{"no GPU", func(q *telemetry.SampleQuery) { q.GPU = "" }, "uuid"},
		{"zero limit", func(q *telemetry.SampleQuery) { q.Page.Limit = 0 }, "limit"},
		{"limit too large", func(q *telemetry.SampleQuery) { q.Page.Limit = query.MaxLimit + 1 }, "limit"},
		{"negative offset", func(q *telemetry.SampleQuery) { q.Page.Offset = -1 }, "offset"},
		{"end before start", func(q *telemetry.SampleQuery) {
			q.Range = telemetry.TimeRange{Start: t0, End: t0.Add(-time.Nanosecond)}
		}, "end_time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := ok
			tt.edit(&q)
			err := query.Validate(q)
			if tt.field == "" {
				assert.NoError(t, err)
				return
			}
			var verr *telemetry.ValidationError
			assert.ErrorAs(t, err, &verr)
			assert.Equal(t, tt.field, verr.Field)
			assert.ErrorIs(t, err, telemetry.ErrInvalid)
		})
	}
}
