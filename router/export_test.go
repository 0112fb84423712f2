package router

// ReplaceTier exposes the ladder swap under Handle.Swap to the tests: it
// replaces a tier's config as it is, keeping its breaker when its Policy
// is unchanged, without the fresh start a Swap gives a new version.
func ReplaceTier(r *Router, t Tier) error { return r.replaceTier(t) }
