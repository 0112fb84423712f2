package router

import (
	"context"
	"time"

	"golang.org/x/sync/errgroup"
)

// startLoads loads the tiers that have a Loader and no Model. Those that
// must load ([Tier].MustLoad, [Config].MustLoad) load concurrently before
// it returns, and the first failure is its error. The others load in the
// background, retried with backoff until they load or the router closes;
// each failure is a ReloadFailed event and shows in Health.
func (r *Router) startLoads(tiers []Tier, must bool) error {
	g, ctx := errgroup.WithContext(r.stopCtx) // the first failure stops the others
	for _, t := range tiers {
		if t.Load == nil || !t.v.placeholder() {
			continue
		}
		if t.MustLoad || must {
			g.Go(func() error { return r.install(ctx, t.Name, t.Load) })
			continue
		}
		r.bg.Add(1)
		go r.loadInBackground(t)
	}
	return g.Wait()
}

// loadInBackground installs t's first version, retrying until it loads
// and passes its checks, a [Router.Reload] installs one, or the router
// closes.
func (r *Router) loadInBackground(t Tier) {
	defer r.bg.Done()
	ctx, cancel := r.bound(context.Background())
	defer cancel()
	rt := t.LoadRetry.resolve()
	delay := rt.Backoff
	h := r.healths[t.Name]
	for {
		select {
		case h.reloading <- struct{}{}:
		case <-ctx.Done():
			return
		}
		if !r.tierConfig(t.Name).v.placeholder() {
			<-h.reloading
			return // a Reload installed a version meanwhile
		}
		err := r.install(ctx, t.Name, t.Load)
		<-h.reloading
		if err == nil || ctx.Err() != nil {
			return
		}
		timer := time.NewTimer(jittered(delay, 0.2))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		delay = min(2*delay, rt.MaxBackoff)
	}
}
