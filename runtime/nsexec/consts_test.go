package nsexec

import (
	"testing"

	"github.com/hako-project/hako/internal/timerslack"
)

// TestTimerSlackConstants: the C constructor coarsens the timer slack to
// the value internal/timerslack uses.
func TestTimerSlackConstants(t *testing.T) {
	if coarseSlack != timerslack.Coarse {
		t.Errorf("proto.h has HAKO_COARSE_SLACK %d, internal/timerslack Coarse %d", coarseSlack, timerslack.Coarse)
	}
}
