package reload

import (
	"context"
	"crypto/sha256"
	"io"
	"os"
	"time"

	"github.com/ladder-ml/ladder/router"
)

// Watch polls a model file and reloads its tier with [Config].Load when
// the file's content changes. It needs no file-system notification: each
// poll compares the file's modification time and size, and on a change
// its SHA-256.
//
// A half-written file seen mid-copy is never served: its reload fails its
// checks and is reported, and the tier keeps its version. That content is
// not tried again; the next change of the file (the copy finishing) is.
type Watch struct {
	// Path is the file polled. Empty means no watching.
	Path string
	// Interval is the time between polls, on the router's clock. Zero
	// means 2s. (A file's modification time is on the wall clock, which
	// the Reloader compares it with.)
	Interval time.Duration
}

// mtimeSlack covers the coarse clock of file modification times, which
// can lag the wall clock by a scheduler tick or more: a file modified less
// than this before the serving version loaded is reloaded once more, to be
// sure, rather than assumed to be what serves.
const mtimeSlack = time.Second

// poll watches w.Path until ctx ends.
func (rl *Reloader) poll(ctx context.Context, h *router.Handle, w Watch) {
	if w.Interval <= 0 {
		w.Interval = 2 * time.Second
	}
	var (
		mod         time.Time
		size        int64 = -1
		served, bad [sha256.Size]byte
		baseline    bool
	)
	tick := h.Clock().NewTimer(w.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C():
			tick.Reset(w.Interval)
		}
		if h.Loading() {
			continue // the first load has the file
		}
		fi, err := os.Stat(w.Path)
		if err != nil || (fi.ModTime().Equal(mod) && fi.Size() == size) {
			continue
		}
		mod, size = fi.ModTime(), fi.Size()
		sum, err := hashFile(w.Path)
		switch {
		case err != nil:
			continue
		case !baseline && rl.installed.Load() != 0 && mod.Before(time.Unix(0, rl.installed.Load()).Add(-mtimeSlack)):
			// Written well before the version serving was loaded: that
			// version came from this content.
			served, baseline = sum, true
			continue
		case sum == served || sum == bad:
			continue
		}
		err = rl.reload(ctx, h, rl.cfg.Load)
		baseline = true
		if err == nil {
			served = sum
		} else if ctx.Err() == nil {
			bad = sum
		}
	}
}

func hashFile(path string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	f, err := os.Open(path)
	if err != nil {
		return sum, err
	}
	defer f.Close()
	hash := sha256.New()
	if _, err := io.Copy(hash, f); err != nil {
		return sum, err
	}
	copy(sum[:], hash.Sum(nil))
	return sum, nil
}
