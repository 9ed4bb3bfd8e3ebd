package health

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
)

// What failed, by who has to act: the application (its code, its inputs), the driver or
// firmware (software below the application), or the hardware (the board, its memory, its
// links, its power). It is the most common cause, not the only one: a catalog file of the
// user's says otherwise where a fleet knows better.
const (
	ClassApp      = "app"
	ClassDriver   = "driver"
	ClassHardware = "hardware"
)

// What to do about it, from the least to the most disruptive, as NVIDIA's XID catalog's
// immediate resolutions say: nothing (it is informational, or follows another error),
// restart the application, reset the GPU (nvidia-smi -r, or drain and reset), reboot the
// node, or take the GPU out of service and have it repaired or replaced (RMA).
const (
	ActionNone       = "none"
	ActionRestartApp = "restart_app"
	ActionResetGPU   = "reset_gpu"
	ActionRebootNode = "reboot_node"
	ActionIsolate    = "isolate"
)

// Classes and Actions list the values, Actions in order of disruption.
var (
	Classes = []string{ClassApp, ClassDriver, ClassHardware}
	Actions = []string{ActionNone, ActionRestartApp, ActionResetGPU, ActionRebootNode, ActionIsolate}
)

// XID is what one XID code means and what to do about it.
type XID struct {
	Code        int    `json:"code"`
	Mnemonic    string `json:"mnemonic"`    // the driver's name for it: ROBUST_CHANNEL_GPU_HAS_FALLEN_OFF_THE_BUS
	Description string `json:"description"` // in a few words
	Class       string `json:"class"`       // one of Classes
	Action      string `json:"action"`      // one of Actions
}

// Catalog maps XID codes to their meaning. The zero Catalog knows no code.
type Catalog struct {
	byCode map[int]XID
}

// shippedXIDs is NVIDIA's XID catalog (docs.nvidia.com/deploy/xid-errors, the codes in use
// up to 172), each code's class judged by its usual cause and its immediate resolution
// mapped to an Action.
//
//go:embed xids.json
var shippedXIDs []byte

// DefaultCatalog is the catalog the project ships.
func DefaultCatalog() Catalog { return shipped() }

var shipped = sync.OnceValue(func() Catalog {
	c, err := Catalog{}.With(shippedXIDs)
	if err != nil {
		panic(fmt.Sprintf("the shipped XID catalog: %v", err)) // a defect of the build, caught by its test
	}
	return c
})

// With returns c with the entries of a catalog file (a JSON list of XID) in place of its own
// of the same codes: a fleet's own judgement of a code, or codes newer than the release. A
// file that does not parse, or an entry without a code or with an unknown class or action,
// is an error naming it.
func (c Catalog) With(data []byte) (Catalog, error) {
	var entries []XID
	if err := json.Unmarshal(data, &entries); err != nil {
		return c, fmt.Errorf("XID catalog: not a JSON list of {code, mnemonic, description, class, action}: %w", err)
	}
	out := Catalog{byCode: maps.Clone(c.byCode)}
	if out.byCode == nil {
		out.byCode = make(map[int]XID, len(entries))
	}
	for i, e := range entries {
		switch {
		case e.Code <= 0:
			return c, fmt.Errorf("XID catalog: entry %d: code must be a positive number, got %d", i+1, e.Code)
		case !slices.Contains(Classes, e.Class):
			return c, fmt.Errorf("XID catalog: code %d: class %q is not one of %s", e.Code, e.Class, strings.Join(Classes, ", "))
		case !slices.Contains(Actions, e.Action):
			return c, fmt.Errorf("XID catalog: code %d: action %q is not one of %s", e.Code, e.Action, strings.Join(Actions, ", "))
		}
		out.byCode[e.Code] = e
	}
	return out, nil
}

// Lookup returns what code means, if the catalog knows it.
func (c Catalog) Lookup(code int) (XID, bool) {
	x, ok := c.byCode[code]
	return x, ok
}

// Len is how many codes the catalog knows.
func (c Catalog) Len() int { return len(c.byCode) }
