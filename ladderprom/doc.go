// Package ladderprom exports a ladder's behaviour as Prometheus metrics.
//
// A [Metrics] is fed three ways: by the router's events (pass
// [Metrics.OnEvent] as router.Config.OnEvent), by every answer (it is the
// ladderhttp.Observer of an HTTP handler, or call [Metrics.Finished]
// yourself), and, at scrape time, by the router's own state
// ([Metrics.Watch]: breaker states, the next probe, conditions,
// availability). It registers with the prometheus.Registerer it is given
// and never touches the global default registry. It is pure Go.
//
//	reg := prometheus.NewRegistry()
//	m, err := ladderprom.New(reg, ladderprom.Options{})
//	if err != nil {
//		log.Fatal(err)
//	}
//	r, err := router.New(router.Config{Tiers: tiers, Heuristic: rule, OnEvent: m.OnEvent})
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer r.Close()
//	if err := m.Watch(r); err != nil {
//		log.Fatal(err)
//	}
//	h, err := ladderhttp.New(r, ladderhttp.Options{Observer: m})
//	if err != nil {
//		log.Fatal(err)
//	}
//	mux.Handle("POST /v1/predict", h)
//	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// The metrics, with the default namespace "ladder":
//
//	ladder_predictions_total{tier,outcome}        counter: outcome is ok, degraded, invalid_input, no_answer, deadline_exceeded, canceled or error; tier is "none" for a failure
//	ladder_prediction_duration_seconds{tier}      histogram of the ladder's latency per serving rung
//	ladder_falls_total{tier,reason}               counter of falls to a lower rung, by reason (breaker_open, timeout, error, ...)
//	ladder_cache_hits_total                       counter of answers served from the last-good cache
//	ladder_cache_misses_total                     counter of cache rungs with no answer for the input
//	ladder_cache_too_stale_total                  counter of cached answers refused as too old for the request
//	ladder_cache_age_seconds                      histogram of the age of served cached answers
//	ladder_model_info{tier,version}               1 for the version each model tier serves now: one series per tier, the replaced version's is gone
//	ladder_in_flight_requests                     gauge of prediction requests in progress
//	ladder_degraded                               1 while answers come from below the first rung (or none come), 0 once the first rung serves again
//	ladder_breaker_state{tier,state}              1 for the breaker's current state (closed, open, half-open), 0 for the others
//	ladder_breaker_next_probe_seconds{tier}       seconds until an open breaker lets a probe through; 0 when not open
//	ladder_breaker_transitions_total{tier,to}     counter of breaker changes, from events
//	ladder_tier_condition{tier,condition}         1 for the tier's current condition (healthy, loading, unhealthy, breaker-open, reload-failed), 0 for the others
//	ladder_probes_total{tier,result}              counter of canary probes, by result (passed, failed)
//	ladder_reloads_total{tier,outcome}            counter of versions accepted, rejected and rolled_back
//	ladder_switches_total{from,to}                counter of changes of the serving rung, from events
//	ladder_rung_success_ratio{tier}               each rung's success rate since the previous scrape
//	ladder_availability_ratio                     the ladder's estimated availability, R = 1 − Π(1 − r_i) over the rungs' success ratios
//
// Alert on ladder_degraded == 1 for longer than a deploy takes: a
// degradation nobody sees is a permanent fault.
package ladderprom
