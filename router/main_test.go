package router_test

import (
	"os"
	"testing"

	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/models"
	"github.com/ladder-ml/ladder/router"
)

var haveRuntime bool

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &haveRuntime)) }

func load(t testing.TB, name string) *models.Model {
	t.Helper()
	testenv.RequireRuntime(t, haveRuntime)
	m, err := models.Load(testenv.Testdata(name), models.Options{})
	if err != nil {
		t.Fatalf("Load(%s): %v", name, err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// newLadder builds the test ladder ([testenv.NewLadder]) on the primary
// model file primaryFile and backup.onnx.
func newLadder(t *testing.T, primaryFile string, opts ...func(*router.Config)) *testenv.Ladder {
	t.Helper()
	return testenv.NewLadder(t, load(t, primaryFile), load(t, "backup.onnx"), opts...)
}
