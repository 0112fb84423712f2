package router_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/models"
)

var haveRuntime bool

func TestMain(m *testing.M) {
	haveRuntime = testenv.InitRuntime()
	code := m.Run()
	if haveRuntime {
		if err := models.ShutdownRuntime(); err != nil {
			println("ShutdownRuntime:", err.Error())
			code = 1
		}
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			println("goleak:", err.Error())
			code = 1
		}
	}
	os.Exit(code)
}

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
