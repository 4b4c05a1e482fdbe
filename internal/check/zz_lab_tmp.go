package check

import (
	"context"

	"vmnet/internal/lab"
	"vmnet/internal/vm"
)

// Lab is a stand-in until the lab matrix lands: each node's own matrix.
func Lab(ctx context.Context, e vm.Env, l lab.Lab, opt Options) (*Report, error) {
	out := &Report{VM: l.Name, Matrix: "lab"}
	for _, n := range l.NodeOrder {
		r, err := VM(ctx, e, n, MatrixAuto, opt)
		if err != nil {
			return nil, err
		}
		out.Results = append(out.Results, r.Results...)
		out.Duration += r.Duration
		out.Started = r.Started
	}
	return out, nil
}
