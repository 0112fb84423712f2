package ladderhttp_test

import (
	"testing"

	"github.com/ladder-ml/ladder/internal/testenv"
)

func TestMain(m *testing.M) { testenv.VerifyTestMain(m) }
