package telemetry

import (
	"maps"
	"math"
	"slices"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits on the text telemetry keeps, in bytes. Every source checks them where readings
// enter and the collector again before it stores: a value past them, or text that is not
// valid UTF-8 or holds a NUL or another control character, rejects its row or sample.
const (
	MaxUUIDLen     = 128  // DCGM's are 40 ("GPU-" and a UUID); MIG instance ids are short too
	MaxHostnameLen = 253  // a DNS name
	MaxNameLen     = 256  // metric and label names
	MaxTextLen     = 1024 // any other value: model, driver, device, pod, namespace, container, labels
	// MaxLabels bounds a device's other labels (instance, job, Kubernetes' and relabelling's),
	// as VictoriaMetrics' -maxLabelsPerTimeseries: dcgm-exporter writes about 12 in all.
	MaxLabels = 64
)

// Timestamps are kept to the microsecond, between MinTime and MaxTime: the span of
// nanoseconds an int64 counts from 1970, which batch IDs hash.
var (
	MinTime = time.Unix(0, math.MinInt64).UTC().Add(time.Microsecond).Truncate(time.Microsecond)
	MaxTime = time.Unix(0, math.MaxInt64).UTC().Truncate(time.Microsecond)
)

// CheckTime returns an error matching ErrInvalid unless t is set and within MinTime–MaxTime.
func CheckTime(t time.Time) error {
	switch {
	case t.IsZero():
		return Invalid("timestamp", "is missing")
	case t.Before(MinTime) || t.After(MaxTime):
		return Invalid("timestamp", "%s is outside the range kept (%s to %s)", t.Format(time.RFC3339),
			MinTime.Format(time.DateOnly), MaxTime.Format(time.DateOnly))
	}
	return nil
}

// DefaultFutureTolerance is how far ahead of the clock a sample's time may be: a sender's
// clock off by a few minutes is let through, a sample of 2262 is not.
const DefaultFutureTolerance = 10 * time.Minute

// CheckNotFuture returns an error matching ErrInvalid, naming the field future, for a time
// later than now plus tolerance: such a sample would stand as a device's latest until then,
// and the store's newest. Sources check the times they keep (a scrape's, a remote_write
// sender's, a CSV's with --timestamps=csv), not those the streamer stamps.
func CheckNotFuture(t, now time.Time, tolerance time.Duration) error {
	if limit := now.Add(tolerance); t.After(limit) {
		return Invalid("future", "%s is more than %s ahead of the clock (%s)", t.UTC().Format(time.RFC3339), tolerance, now.UTC().Format(time.RFC3339))
	}
	return nil
}

// CheckText returns an error matching ErrInvalid, naming field, unless s is valid UTF-8
// without control characters and at most limit bytes long.
func CheckText(field, s string, limit int) error {
	if len(s) > limit {
		return Invalid(field, "is %d bytes long, more than %d", len(s), limit)
	}
	printable := true // printable ASCII, as nearly all of it is: checked byte by byte
	for i := 0; i < len(s) && printable; i++ {
		printable = s[i] >= 0x20 && s[i] < 0x7f
	}
	if printable {
		return nil
	}
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !validRuneAt(s, i):
			return Invalid(field, "is not valid UTF-8 (byte %d)", i)
		case unicode.IsControl(r):
			return Invalid(field, "holds control character %U (byte %d)", r, i)
		}
	}
	return nil
}

// validRuneAt tells a real U+FFFD from the RuneError that marks an invalid byte.
func validRuneAt(s string, i int) bool {
	_, size := utf8.DecodeRuneInString(s[i:])
	return size == 3
}

// Validate checks the device's text: its UUID is not empty, and every field and label is
// within CheckText's rules.
func (g GPU) Validate() error {
	if g.UUID == "" {
		return Invalid("uuid", "is empty")
	}
	checks := []struct {
		field, value string
		limit        int
	}{
		{"uuid", g.UUID, MaxUUIDLen}, {"gpu_instance", g.Instance, MaxUUIDLen},
		{"gpu_instance_profile", g.InstanceProfile, MaxTextLen}, {"hostname", g.Hostname, MaxHostnameLen},
		{"device", g.Device, MaxTextLen}, {"model_name", g.ModelName, MaxTextLen},
		{"driver_version", g.DriverVersion, MaxTextLen}, {"pci_bus_id", g.PCIBusID, MaxTextLen},
	}
	for _, c := range checks {
		if err := CheckText(c.field, c.value, c.limit); err != nil {
			return err
		}
	}
	if len(g.Labels) > MaxLabels {
		return Invalid("labels", "%d of them, more than %d", len(g.Labels), MaxLabels)
	}
	if labelsOK(g.Labels) { // every scrape checks its devices: no sorting unless one is bad
		return nil
	}
	for _, name := range slices.Sorted(maps.Keys(g.Labels)) { // the first bad one, by name
		if err := CheckText("label name", name, MaxNameLen); err != nil {
			return err
		}
		if err := CheckText("label "+name, g.Labels[name], MaxTextLen); err != nil {
			return err
		}
	}
	return nil
}

func labelsOK(labels map[string]string) bool {
	for name, value := range labels {
		if CheckText("", name, MaxNameLen) != nil || CheckText("", value, MaxTextLen) != nil {
			return false
		}
	}
	return true
}

// checkText checks the sample's text: its device key, metric name and workload.
func (s Sample) checkText() error { return s.checkTextAfter(nil) }

// checkTextAfter is checkText leaving out what s shares with valid, a sample found valid.
func (s Sample) checkTextAfter(valid *Sample) error {
	checks := [...]struct {
		field, value, valid string
		limit               int
	}{
		{"uuid", s.GPU, "", MaxUUIDLen*2 + 1}, {"metric_name", s.Metric, "", MaxNameLen},
		{"container", s.Container, "", MaxTextLen}, {"pod", s.Pod, "", MaxTextLen}, {"namespace", s.Namespace, "", MaxTextLen},
	}
	if valid != nil {
		checks[0].valid, checks[1].valid, checks[2].valid = valid.GPU, valid.Metric, valid.Container
		checks[3].valid, checks[4].valid = valid.Pod, valid.Namespace
	}
	for _, c := range checks {
		if valid != nil && c.value == c.valid {
			continue
		}
		if err := CheckText(c.field, c.value, c.limit); err != nil {
			return err
		}
	}
	return nil
}

// CheckSeries checks what a source read of one series, before its time and value: the
// device and the sample's text.
func (r Reading) CheckSeries() error {
	if err := r.GPU.Validate(); err != nil {
		return err
	}
	return r.Sample.checkText()
}
