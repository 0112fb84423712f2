package router_test

import (
	"testing"

	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/router"
)

func TestMain(m *testing.M) { testenv.VerifyTestMain(m) }

// newLadder builds the test ladder ([testenv.NewLadder]) on the primary
// model file primaryFile and backup.onnx.
func newLadder(t *testing.T, primaryFile string, opts ...func(*router.Config)) *testenv.Ladder {
	t.Helper()
	return testenv.NewLadder(t, testenv.Load(t, primaryFile), testenv.Load(t, "backup.onnx"), opts...)
}
