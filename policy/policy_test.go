package policy_test

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ladder-ml/ladder/policy"
)

func TestResolveRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name  string
		cfg   policy.Config
		field string
	}{
		{"negative timeout", policy.Config{Timeout: -1}, "Timeout"},
		{"negative attempts", policy.Config{MaxAttempts: -1}, "MaxAttempts"},
		{"backoff above max", policy.Config{Backoff: time.Second, MaxBackoff: time.Millisecond}, "MaxBackoff"},
		{"jitter above 1", policy.Config{Jitter: 2}, "Jitter"},
		{"budget above 1", policy.Config{RetryBudget: 1.5}, "RetryBudget"},
		{"failure rate above 1", policy.Config{FailureRate: 2}, "FailureRate"},
		{"negative bulkhead", policy.Config{MaxConcurrent: -3}, "MaxConcurrent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.cfg.Resolve()
			if !errors.Is(err, policy.ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tt.field) || !strings.Contains(err.Error(), "expected") {
				t.Errorf("message %q does not name %s and what is expected", err, tt.field)
			}
		})
	}
}

func TestResolveFillsInTheDefaults(t *testing.T) {
	c, err := policy.Config{}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if c.Timeout != 100*time.Millisecond || c.MaxAttempts != 2 || c.Executions != 30 || c.FailureRate != 0.5 ||
		c.OpenFor != time.Second || c.Trials != 3 || c.MaxConcurrent != 4*runtime.GOMAXPROCS(0) || c.RetryBudget != 0.2 {
		t.Fatalf("defaults = %+v", c)
	}
	if c, _ := (policy.Config{Jitter: -1, MaxAttempts: 1}).Resolve(); c.Jitter != 0 || c.MaxAttempts != 1 {
		t.Errorf("explicit values changed: %+v", c)
	}
}

func TestMarksKeepTheError(t *testing.T) {
	cause := errors.New("NaN output")
	for name, err := range map[string]error{"Permanent": policy.Permanent(cause), "Uncounted": policy.Uncounted(cause)} {
		if !errors.Is(err, cause) || err.Error() != cause.Error() {
			t.Errorf("%s(err) = %v, want it to wrap and read as err", name, err)
		}
	}
	if policy.Permanent(nil) != nil || policy.Uncounted(nil) != nil {
		t.Error("a nil error was marked")
	}
}
