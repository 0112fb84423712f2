package router

// ReplaceTier exposes the ladder swap to the tests, until a public reload
// API exists.
func ReplaceTier(r *Router, t Tier) error { return r.replaceTier(t) }
