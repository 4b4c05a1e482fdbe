package check

import (
	"context"
	"testing"
	"time"
)

// A converging run repeats the matrix while checks fail and stops at the
// first green round, saying which round and after how long; one that never
// goes green stops at its deadline with the last round's failures; without
// a deadline it runs once.
func TestConverge(t *testing.T) {
	report := func(pass bool) *Report { return &Report{Results: []Result{{Pass: true}, {Pass: pass}}} }
	t.Run("green in round 3", func(t *testing.T) {
		calls := 0
		rep := converge(context.Background(), nil, "x", time.Minute, time.Millisecond, time.Now(), func() *Report {
			calls++
			return report(calls == 3)
		})
		if calls != 3 || rep.Rounds != 3 || rep.Failed() != 0 || rep.ConvergedAfter <= 0 {
			t.Errorf("calls %d, rounds %d, failed %d, converged after %v", calls, rep.Rounds, rep.Failed(), rep.ConvergedAfter)
		}
	})
	t.Run("never green", func(t *testing.T) {
		calls := 0
		rep := converge(context.Background(), nil, "x", 50*time.Millisecond, 10*time.Millisecond, time.Now(), func() *Report {
			calls++
			return report(false)
		})
		if calls < 2 || rep.Failed() != 1 || rep.ConvergedAfter != 0 || rep.Rounds != calls {
			t.Errorf("calls %d, rounds %d, failed %d, converged after %v", calls, rep.Rounds, rep.Failed(), rep.ConvergedAfter)
		}
	})
	t.Run("once", func(t *testing.T) {
		calls := 0
		rep := converge(context.Background(), nil, "x", 0, time.Millisecond, time.Now(), func() *Report {
			calls++
			return report(false)
		})
		if calls != 1 || rep.Rounds != 1 {
			t.Errorf("calls %d, rounds %d", calls, rep.Rounds)
		}
	})
}
