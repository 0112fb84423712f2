package ladderhttp_test

import (
	"os"
	"testing"

	"github.com/ladder-ml/ladder/internal/testenv"
)

var ortAvailable bool

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &ortAvailable)) }
