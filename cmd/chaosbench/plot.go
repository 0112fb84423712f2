package main

import (
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// panel is what one scenario contributes to the picture.
type panel struct {
	scenario scenario
	router   *trial
	naive    *trial
}

// buckets is the number of time buckets per scenario in the picture.
const buckets = 50

var (
	faultFill = color.NRGBA{R: 230, G: 60, B: 60, A: 45}
	faultBar  = color.NRGBA{R: 210, G: 40, B: 40, A: 255}
	tierOrder = []string{"primary", "backup", "cache", "heuristic", "error"}
	tierColor = map[string]color.Color{
		"primary":   color.NRGBA{R: 44, G: 160, B: 44, A: 255},
		"backup":    color.NRGBA{R: 31, G: 119, B: 180, A: 255},
		"cache":     color.NRGBA{R: 148, G: 103, B: 189, A: 255},
		"heuristic": color.NRGBA{R: 255, G: 160, B: 40, A: 255},
		"error":     color.NRGBA{A: 255},
	}
)

// drawRouter draws, for each scenario, the router's latency percentiles
// over time (with naive's p99 for contrast) above its tier mix over time,
// fault windows in red, and writes router.png and router.svg to dir.
func drawRouter(dir string, panels []panel, subtitle string) ([]string, error) {
	if len(panels) == 0 {
		return nil, nil
	}
	cols := min(len(panels), 5)
	blocks := (len(panels) + cols - 1) / cols
	grid := make([][]*plot.Plot, 2*blocks)
	for i := range grid {
		grid[i] = make([]*plot.Plot, cols)
	}
	for i, pn := range panels {
		row, col := 2*(i/cols), i%cols
		grid[row][col] = latencyPlot(pn, i == 0)
		grid[row+1][col] = tierPlot(pn, i == 0)
	}
	for r := range grid {
		for c := range grid[r] {
			if grid[r][c] == nil {
				grid[r][c] = blank()
			}
		}
	}

	width := vg.Length(cols) * 4 * vg.Inch
	height := vg.Length(blocks)*4.6*vg.Inch + 0.5*vg.Inch
	paint := func(c draw.Canvas) {
		title := "ladder router under chaos: latency per time bucket (top; dashed = naive switcher p99) and which rung served (bottom); red = fault on; " + subtitle
		sty := draw.TextStyle{Color: color.Black, Font: font.From(plot.DefaultFont, 14), XAlign: draw.XLeft, YAlign: draw.YTop,
			Handler: plot.DefaultTextHandler}
		c.FillText(sty, vg.Point{X: c.Min.X + 10, Y: c.Max.Y - 8}, title)
		body := draw.Crop(c, 0, 0, 0, -0.45*vg.Inch)
		tiles := draw.Tiles{Rows: len(grid), Cols: cols, PadX: 0.35 * vg.Inch, PadY: 0.12 * vg.Inch,
			PadTop: 0.05 * vg.Inch, PadLeft: 0.05 * vg.Inch, PadRight: 0.15 * vg.Inch, PadBottom: 0.05 * vg.Inch}
		canvases := plot.Align(grid, tiles, body)
		for r := range grid {
			for col := range grid[r] {
				grid[r][col].Draw(canvases[r][col])
			}
		}
	}

	img := vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(96))
	dc := draw.New(img)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	paint(dc)
	pngPath := filepath.Join(dir, "router.png")
	if err := writeTo(pngPath, vgimg.PngCanvas{Canvas: img}); err != nil {
		return nil, err
	}
	svg := vgsvg.New(width, height)
	paint(draw.New(svg))
	svgPath := filepath.Join(dir, "router.svg")
	if err := writeTo(svgPath, svg); err != nil {
		return nil, err
	}
	return []string{pngPath, svgPath}, nil
}

func writeTo(path string, c io.WriterTo) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// series holds one run's records in time buckets of valid requests.
type series struct {
	width time.Duration
	lats  [][]time.Duration
	tiers []map[string]int
	count []int
}

func bucketed(rn *trial, end time.Duration) series {
	s := series{width: max(end/buckets, time.Microsecond), lats: make([][]time.Duration, buckets),
		tiers: make([]map[string]int, buckets), count: make([]int, buckets)}
	for i := range s.tiers {
		s.tiers[i] = map[string]int{}
	}
	for _, r := range rn.recs {
		if r.out == outRejected || r.out == outInvalidBad {
			continue
		}
		b := min(int(r.start/s.width), buckets-1)
		s.lats[b] = append(s.lats[b], r.latency)
		tier := r.tier
		if r.out == outError {
			tier = "error"
		}
		s.tiers[b][tier]++
		s.count[b]++
	}
	return s
}

func (s series) mid(b int) float64 { return (time.Duration(b)*s.width + s.width/2).Seconds() }

// latencyPlot draws the router's p50 and p99 per bucket and naive's p99,
// on a log scale, over the scenario's fault windows.
func latencyPlot(pn panel, legend bool) *plot.Plot {
	p := plot.New()
	rn := pn.router
	p.Title.Text = pn.scenario.name
	p.Title.TextStyle.Font.Size = 13
	p.Y.Label.Text = "latency ms"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	end := rn.end
	lines := map[string]plotter.XYs{}
	lo, hi := math.Inf(1), math.Inf(-1)
	add := func(name string, rn *trial, q float64) {
		s := bucketed(rn, end)
		for b, lats := range s.lats {
			if len(lats) == 0 {
				continue
			}
			v := ms(percentiles(lats).at(q))
			v = max(v, 1e-3)
			lines[name] = append(lines[name], plotter.XY{X: s.mid(b), Y: v})
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	add("router p50", rn, 0.50)
	add("router p99", rn, 0.99)
	if nv := pn.naive; nv != nil {
		if pn.scenario.paced() {
			// Same start, same schedule: naive's p99 over time.
			add("naive p99", nv, 0.99)
		} else {
			// Naive ran on its own clock: its overall p99 as a level.
			var lats []time.Duration
			for _, r := range nv.recs {
				if r.out != outRejected && r.out != outInvalidBad {
					lats = append(lats, r.latency)
				}
			}
			v := max(ms(percentiles(lats).p99), 1e-3)
			lines["naive p99"] = plotter.XYs{{X: 0, Y: v}, {X: end.Seconds(), Y: v}}
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	if math.IsInf(lo, 0) {
		lo, hi = 1e-3, 1
	}
	lo, hi = lo/1.5, hi*1.5
	for _, w := range rn.windows {
		shade(p, w, lo, hi, faultFill)
	}
	styles := map[string]func(*plotter.Line){
		"router p50": func(l *plotter.Line) { l.Color = tierColor["primary"]; l.Width = vg.Points(1.2) },
		"router p99": func(l *plotter.Line) { l.Color = color.NRGBA{R: 20, G: 20, B: 120, A: 255}; l.Width = vg.Points(1.6) },
		"naive p99": func(l *plotter.Line) {
			l.Color = color.NRGBA{R: 120, G: 120, B: 120, A: 255}
			l.Width = vg.Points(1.2)
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		},
	}
	for _, name := range []string{"naive p99", "router p50", "router p99"} {
		if len(lines[name]) == 0 {
			continue
		}
		l, err := plotter.NewLine(lines[name])
		if err != nil {
			continue
		}
		styles[name](l)
		p.Add(l)
		if legend {
			p.Legend.Add(name, l)
		}
	}
	p.Legend.Top = true
	p.Legend.TextStyle.Font.Size = 9
	p.X.Min, p.X.Max = 0, end.Seconds()
	p.Y.Min, p.Y.Max = lo, hi
	return p
}

// tierPlot draws the share of each rung per bucket as stacked steps, with
// the fault windows as a red bar above.
func tierPlot(pn panel, legend bool) *plot.Plot {
	p := plot.New()
	rn := pn.router
	end := rn.end
	s := bucketed(rn, end)
	p.X.Label.Text = "seconds"
	p.Y.Label.Text = "served by"
	p.Y.Tick.Marker = plot.ConstantTicks([]plot.Tick{{Value: 0, Label: "0"}, {Value: 0.5, Label: "50%"}, {Value: 1, Label: "100%"}})
	cum := make([]float64, buckets)
	for _, tier := range tierOrder {
		upper := make([]float64, buckets)
		any := false
		for b := range buckets {
			upper[b] = cum[b]
			if s.count[b] > 0 {
				upper[b] += float64(s.tiers[b][tier]) / float64(s.count[b])
				any = any || s.tiers[b][tier] > 0
			}
		}
		if any {
			var ring plotter.XYs
			for b := range buckets {
				x0, x1 := (time.Duration(b) * s.width).Seconds(), (time.Duration(b+1) * s.width).Seconds()
				ring = append(ring, plotter.XY{X: x0, Y: upper[b]}, plotter.XY{X: x1, Y: upper[b]})
			}
			for b := buckets - 1; b >= 0; b-- {
				x0, x1 := (time.Duration(b) * s.width).Seconds(), (time.Duration(b+1) * s.width).Seconds()
				ring = append(ring, plotter.XY{X: x1, Y: cum[b]}, plotter.XY{X: x0, Y: cum[b]})
			}
			poly, err := plotter.NewPolygon(ring)
			if err == nil {
				poly.Color = tierColor[tier]
				poly.LineStyle.Width = 0
				p.Add(poly)
			}
		}
		cum = upper
		if legend {
			// Every rung in the legend, present here or not.
			swatch, err := plotter.NewPolygon(plotter.XYs{{X: 0, Y: 0}, {X: 1, Y: 0}, {X: 1, Y: 1}})
			if err == nil {
				swatch.Color = tierColor[tier]
				swatch.LineStyle.Width = 0
				p.Legend.Add(tier, swatch)
			}
		}
	}
	for _, w := range rn.windows {
		shade(p, w, 1.03, 1.12, faultBar)
	}
	p.Legend.Top = false
	p.Legend.Left = true
	p.Legend.TextStyle.Font.Size = 9
	p.X.Min, p.X.Max = 0, end.Seconds()
	p.Y.Min, p.Y.Max = 0, 1.12
	return p
}

// shade fills the span of w from y lo to hi.
func shade(p *plot.Plot, w window, lo, hi float64, c color.Color) {
	from, to := w.from.Seconds(), w.to.Seconds()
	poly, err := plotter.NewPolygon(plotter.XYs{{X: from, Y: lo}, {X: to, Y: lo}, {X: to, Y: hi}, {X: from, Y: hi}})
	if err != nil {
		return
	}
	poly.Color = c
	poly.LineStyle.Width = 0
	p.Add(poly)
}

func blank() *plot.Plot {
	p := plot.New()
	p.HideAxes()
	return p
}

// at returns the percentile q of the stats it was computed from, among
// those the stats keep.
func (st latencyStats) at(q float64) time.Duration {
	switch {
	case q >= 0.999:
		return st.p999
	case q >= 0.99:
		return st.p99
	case q >= 0.95:
		return st.p95
	}
	return st.p50
}
