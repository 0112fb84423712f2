package router_test

import (
	"os"
	"testing"

	"github.com/ladder-ml/ladder/internal/testenv"
	"github.com/ladder-ml/ladder/models"
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
