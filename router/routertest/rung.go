package routertest

import (
	"context"
	"fmt"
	"time"

	"github.com/ladder-ml/ladder/router"
)

// The checks of a rung, in order.
var rungChecks = []namedCheck[router.Rung]{
	{"Name and Kind are set, stable and not reserved", named},
	{"it answers the inputs", rungAnswers},
	{"a done ctx ends Serve with ctx's error", rungHonoursCtx},
	{"a zero Request and bad inputs never panic", rungSurvivesBadInputs},
	{"concurrent Serves are safe and agree with a serial one", concurrentServes},
	{"it serves inside a router", servesInRouter},
}

// serve calls r.Serve through [checker.call].
func (c *checker) serve(what string, limit time.Duration, r router.Rung, ctx context.Context, req router.Request) (a router.Answer, err error, ok bool) {
	ok = c.call(what, limit, func() { a, err = r.Serve(ctx, req) })
	return a, err, ok
}

// served is the rung's answer to req, by [reference].
func (c *checker) served(r router.Rung, req router.Request) (router.Answer, bool) {
	return reference(c, "Serve(Options.Inputs)", "rung", func() (router.Answer, error) {
		return r.Serve(context.Background(), req)
	})
}

func named(c *checker, r router.Rung) {
	var (
		names [2]string
		kinds [2]router.Kind
	)
	if !c.call("Name and Kind", patient, func() {
		names[0], kinds[0] = r.Name(), r.Kind()
		names[1], kinds[1] = r.Name(), r.Kind()
	}) {
		return
	}
	switch name := names[0]; {
	case name == "":
		c.errorf("Name is empty; router.New refuses a rung without a name")
	case name == router.RungCache || name == router.RungHeuristic || name == router.RungDefault:
		c.errorf("Name is %q, which names a built-in rung; router.New refuses it", name)
	case names[1] != name:
		c.errorf("Name returned %q, then %q; it must not change, as answers, falls and Config.Order name the rung by it", name, names[1])
	}
	switch {
	case kinds[0] == "":
		c.errorf("Kind is empty; router.New refuses a rung without a kind")
	case kinds[1] != kinds[0]:
		c.errorf("Kind returned %q, then %q; it must not change", kinds[0], kinds[1])
	}
}

func rungAnswers(c *checker, r router.Rung) {
	req := router.Request{Inputs: c.inputs()}
	a, ok := c.served(r, req)
	if !ok {
		return
	}
	if p := malformed(a.Outputs); p != "" {
		c.errorf("Serve(Options.Inputs) answered %s; an answer needs at least one output, each a tensor whose data fits its shape, with finite values", p)
	} else if err := req.Validate(a.Outputs); err != nil {
		c.errorf("Serve(Options.Inputs) answered outputs that Request.Validate refuses: %v; the router would refuse them too", err)
	}
	if a.Attempts < 0 {
		c.errorf("Serve(Options.Inputs) answered with Attempts %d; want 0 or more", a.Attempts)
	}
	c.leftAlone("Serve", req.Inputs)
}

func rungHonoursCtx(c *checker, r router.Rung) {
	for _, d := range doneCtxs() {
		if _, err, ok := c.serve("Serve with "+d.name, prompt, r, d.ctx, router.Request{Inputs: c.inputs()}); ok {
			c.endedByCtx("Serve", d, err)
		}
	}
}

func rungSurvivesBadInputs(c *checker, r router.Rung) {
	// serve reports a panic or a hang; an error or an answer is the
	// rung's choice, and the router validates an answer.
	c.serve("Serve(the zero Request)", patient, r, context.Background(), router.Request{})
	for _, v := range badInputs(c.opts.Inputs) {
		c.serve(fmt.Sprintf("Serve(%s)", v.name), patient, r, context.Background(), router.Request{Inputs: v.in})
	}
	if _, ok := c.served(r, router.Request{Inputs: c.inputs()}); !ok {
		c.errorf("after the bad inputs, the rung no longer answers Options.Inputs; a bad input must not leave it unfit for the next request")
	}
}

func concurrentServes(c *checker, r router.Rung) {
	want, ok := c.served(r, router.Request{Inputs: c.inputs()})
	if !ok {
		return
	}
	req := router.Request{Inputs: c.inputs()} // shared by every call
	c.concurrently("Serve", func() error {
		a, err := r.Serve(context.Background(), req)
		if err != nil {
			return err
		}
		if d := differ(a.Outputs, want.Outputs); d != "" {
			return fmt.Errorf("an answer differs from a serial call's: %s", d)
		}
		return nil
	})
	c.leftAlone("Serve", req.Inputs)
}

func servesInRouter(c *checker, r router.Rung) {
	want, ok := c.served(r, router.Request{Inputs: c.inputs()})
	if !ok {
		return
	}
	var (
		name string
		kind router.Kind
		rt   *router.Router
		err  error
	)
	if !c.call("router.New", patient, func() {
		name, kind = r.Name(), r.Kind()
		rt, err = router.New(router.Config{Rungs: []router.Rung{r}, Order: []string{name}})
	}) {
		return
	}
	if err != nil {
		c.errorf("router.New with it as the only rung: %v", err)
		return
	}
	defer rt.Close()
	var a router.Answer
	if !c.call("Router.Predict", patient, func() { a, err = rt.Predict(context.Background(), c.inputs()) }) {
		return
	}
	switch {
	case err != nil:
		c.errorf("Router.Predict with it as the only rung = %v, though its Serve answers the inputs", err)
	case a.Tier != name || a.Kind != kind || a.Position != 0:
		c.errorf("Router.Predict answered from tier %q (kind %q, position %d); want %q (kind %q, position 0)", a.Tier, a.Kind, a.Position, name, kind)
	default:
		if d := differ(a.Outputs, want.Outputs); d != "" {
			c.errorf("Router.Predict answers otherwise than Serve: %s", d)
		}
	}
	if _, ok := r.(router.Warmer); ok {
		if c.call("Router.Warmup", patient, func() { err = rt.Warmup(context.Background()) }) && err != nil {
			c.errorf("Router.Warmup = %v; a rung that is a router.Warmer must warm up", err)
		}
	}
}
