package cache

import (
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   Config
		want Config
	}{
		{"zero value", Config{}, Config{MaxEntries: 10_000, TTL: 10 * time.Minute, SweepInterval: 5 * time.Minute}},
		{"sweep is half the TTL", Config{TTL: 10 * time.Second}, Config{MaxEntries: 10_000, TTL: 10 * time.Second, SweepInterval: 5 * time.Second}},
		{"default sweep at least 1s", Config{TTL: 50 * time.Millisecond}, Config{MaxEntries: 10_000, TTL: 50 * time.Millisecond, SweepInterval: time.Second}},
		{"explicit values kept", Config{MaxEntries: 3, TTL: time.Hour, SweepInterval: time.Millisecond}, Config{MaxEntries: 3, TTL: time.Hour, SweepInterval: time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.resolve()
			if err != nil {
				t.Fatalf("resolve(%+v): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("resolve(%+v) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}
