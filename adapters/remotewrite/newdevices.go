package remotewrite

import (
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/telemetry-pipeline/telemetry-pipeline/domain/telemetry"
)

// maxKnownDevices bounds the devices newDevices remembers (8 bytes each, by hash); past it
// they are forgotten together and come back as new within their senders' budgets.
const maxKnownDevices = 1 << 20

// newDevices counts, by sender and minute, the devices the Receiver has not seen before,
// so that one sender cannot make the fleet 200,000 GPUs larger in a minute: every fleet
// view (/fleet/latest, the console's heatmap, PromQL over the fleet) grows with it. A
// device counts as seen once a request bringing it was let through.
type newDevices struct {
	limit int // a minute, by sender; 0: no limit
	seed  maphash.Seed

	mu     sync.Mutex
	known  map[uint64]struct{} // hashes of device keys
	minute time.Time
	spent  map[string]int // by sender, this minute
}

// limitError is a request refused by newDevices.
type limitError struct {
	sender     string
	spent, add int
	limit      int
}

func (e *limitError) Error() string {
	return fmt.Sprintf("sender %s brought %d new devices this minute and this request %d more, past the %d allowed",
		e.sender, e.spent, e.add, e.limit)
}

func newNewDevices(limit int) *newDevices {
	return &newDevices{limit: limit, seed: maphash.MakeSeed(), known: map[uint64]struct{}{}, spent: map[string]int{}}
}

// admit counts the devices of readings not seen before against sender's budget for the
// minute of now, and remembers them; a *limitError, and nothing remembered, when they are
// more than the budget left.
func (n *newDevices) admit(sender string, readings []telemetry.Reading, now time.Time) error {
	if n.limit <= 0 {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	var fresh []uint64
	last := ""
	for i := range readings {
		key := readings[i].Sample.GPU
		if key == last { // a device's samples usually come together
			continue
		}
		last = key
		h := maphash.String(n.seed, key)
		if _, ok := n.known[h]; !ok {
			n.known[h] = struct{}{} // for now, so that it counts once; undone when refused
			fresh = append(fresh, h)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	if m := now.Truncate(time.Minute); !m.Equal(n.minute) {
		n.minute = m
		clear(n.spent)
	}
	if spent := n.spent[sender]; spent+len(fresh) > n.limit {
		for _, h := range fresh {
			delete(n.known, h)
		}
		return &limitError{sender: sender, spent: spent, add: len(fresh), limit: n.limit}
	}
	n.spent[sender] += len(fresh)
	if len(n.known) > maxKnownDevices {
		clear(n.known)
	}
	return nil
}
