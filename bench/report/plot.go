package report

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"strconv"
	"time"

	"github.com/ordo-broker/ordo/bench"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// The plot's size and resolution: readable on a laptop screen and in a
// README without scaling.
const (
	plotWidth  = 10 * vg.Inch
	plotHeight = 7 * vg.Inch
	plotDPI    = 110
)

var (
	ackColor      = color.RGBA{R: 31, G: 119, B: 180, A: 255} // blue
	deliveryColor = color.RGBA{R: 255, G: 127, B: 14, A: 255} // orange
)

// SavePNG draws r's latency and throughput over time into a PNG file.
func SavePNG(path string, r Run) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := WritePNG(f, r); err != nil {
		return err
	}
	return f.Close()
}

// WritePNG draws r's samples as two panels on one time axis: ack and
// end-to-end latency (p50 solid, p99 dashed) above, published and
// delivered msg/s below, with the run's parameters as the title.
func WritePNG(w io.Writer, r Run) error {
	if len(r.Samples) == 0 {
		return fmt.Errorf("plot: the run has no samples")
	}
	lat, err := latencyPlot(r)
	if err != nil {
		return err
	}
	thr, err := throughputPlot(r)
	if err != nil {
		return err
	}
	// One time axis for both panels, labelled once, below; headroom above
	// the lines for the legends.
	lat.X.Min, lat.X.Max = 0, max(lat.X.Max, thr.X.Max, r.Samples[len(r.Samples)-1].At.Seconds())
	thr.X.Min, thr.X.Max = 0, lat.X.Max
	lat.X.Label.Text = ""
	for _, p := range []*plot.Plot{lat, thr} {
		p.X.Tick.Marker = ticks{plain}
		p.Y.Max *= 1.35
	}

	img := vgimg.NewWith(vgimg.UseWH(plotWidth, plotHeight), vgimg.UseDPI(plotDPI))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadTop: vg.Points(6), PadBottom: vg.Points(6),
		PadLeft: vg.Points(6), PadRight: vg.Points(12), PadY: vg.Points(14)}
	plots := [][]*plot.Plot{{lat}, {thr}}
	canvases := plot.Align(plots, tiles, dc)
	lat.Draw(canvases[0][0])
	thr.Draw(canvases[1][0])
	_, err = vgimg.PngCanvas{Canvas: img}.WriteTo(w)
	return err
}

func latencyPlot(r Run) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "ordo bench " + Title(r.Params)
	p.Title.TextStyle.Font.Size = vg.Points(12)
	p.Y.Label.Text = "latency (ms)"
	p.Y.Tick.Marker = ticks{plain}
	p.X.Label.Text = "seconds since publishing started"
	p.Y.Min = 0
	p.Add(plotter.NewGrid())
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.ThumbnailWidth = vg.Points(24)
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	// End-to-end first, wide, and ack over it, narrow: when the two are
	// the same (a broker delivers as it acknowledges) both stay visible.
	series := []struct {
		name   string
		c      color.Color
		width  vg.Length // points
		dashed bool
		value  func(bench.Sample) (float64, bool)
	}{
		{"end-to-end p50", deliveryColor, 3, false, func(s bench.Sample) (float64, bool) { return ms(s.DeliveryP50), s.Delivered > 0 }},
		{"end-to-end p99", deliveryColor, 3, true, func(s bench.Sample) (float64, bool) { return ms(s.DeliveryP99), s.Delivered > 0 }},
		{"ack p50", ackColor, 1.25, false, func(s bench.Sample) (float64, bool) { return ms(s.AckP50), s.Published > 0 }},
		{"ack p99", ackColor, 1.25, true, func(s bench.Sample) (float64, bool) { return ms(s.AckP99), s.Published > 0 }},
	}
	for _, s := range series {
		if err := addLine(p, r.Samples, s.name, s.c, s.width, s.dashed, s.value); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func throughputPlot(r Run) (*plot.Plot, error) {
	p := plot.New()
	p.Y.Label.Text = "messages per second"
	p.X.Label.Text = "seconds since publishing started"
	p.Y.Min = 0
	p.Y.Tick.Marker = ticks{si}
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	p.Legend.Left = true
	p.Legend.ThumbnailWidth = vg.Points(24)
	// A rate over a sliver of time says little: the last sample, after
	// the publishers stopped, is usually one.
	whole := func(s bench.Sample) bool { return s.Span >= r.Params.Interval/2 }
	if err := addLine(p, r.Samples, "published (acknowledged)", ackColor, 2, false,
		func(s bench.Sample) (float64, bool) { return s.PublishRate, whole(s) }); err != nil {
		return nil, err
	}
	if r.Params.Subscribers > 0 {
		name := "delivered"
		if r.Params.Subscribers > 1 {
			name = fmt.Sprintf("delivered (sum over %d subscribers)", r.Params.Subscribers)
		}
		if err := addLine(p, r.Samples, name, deliveryColor, 2, false,
			func(s bench.Sample) (float64, bool) { return s.DeliveryRate, whole(s) }); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// addLine plots value at the middle of each sample's interval; a sample
// for which value has nothing to say (no message in that interval) is left
// out rather than drawn as a zero latency.
func addLine(p *plot.Plot, samples []bench.Sample, name string, c color.Color, width vg.Length, dashed bool, value func(bench.Sample) (float64, bool)) error {
	var xys plotter.XYs
	for _, s := range samples {
		if v, ok := value(s); ok {
			xys = append(xys, plotter.XY{X: (s.At - s.Span/2).Seconds(), Y: v})
		}
	}
	if len(xys) == 0 {
		return nil
	}
	line, points, err := plotter.NewLinePoints(xys)
	if err != nil {
		return err
	}
	line.Color, points.Color = c, c
	line.Width = width
	if dashed {
		line.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
	}
	points.Shape = draw.CircleGlyph{}
	points.Radius = width
	p.Add(line, points)
	p.Legend.Add(name, line)
	return nil
}

// ticks places about eight labelled ticks on nice values (1, 2, 2.5 or 5
// times a power of ten), with an unlabelled one between each two: gonum's
// default gives three or four, too few to read a value off.
type ticks struct{ label func(float64) string }

func (t ticks) Ticks(min, max float64) []plot.Tick {
	if !(max > min) {
		return []plot.Tick{{Value: min, Label: t.label(min)}}
	}
	raw := (max - min) / 8
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	step := 10 * pow
	for _, m := range []float64{1, 2, 2.5, 5} {
		if m*pow >= raw {
			step = m * pow
			break
		}
	}
	var out []plot.Tick
	for i := math.Ceil(min / step * 2); i/2*step <= max*(1+1e-9); i++ {
		v := i / 2 * step
		if math.Mod(i, 2) == 0 {
			out = append(out, plot.Tick{Value: v, Label: t.label(v)})
		} else {
			out = append(out, plot.Tick{Value: v})
		}
	}
	return out
}

func plain(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// si labels large counts as 250k or 1.5M instead of 250000 or 1.5e+06.
func si(v float64) string {
	switch {
	case v >= 1e6:
		return plain(v/1e6) + "M"
	case v >= 1e3:
		return plain(v/1e3) + "k"
	}
	return plain(v)
}
