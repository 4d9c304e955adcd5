package scorecard

import (
	"fmt"
	"image/color"
	"io"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// chartCap is where bars stop: a row at 700x its goal would flatten the
// others. The label above the bar still gives the real figure.
const chartCap = 2.0

var (
	metColor    = color.RGBA{R: 44, G: 160, B: 44, A: 255} // green
	missedColor = color.RGBA{R: 214, G: 39, B: 40, A: 255} // red
)

// WriteChart draws every measured row as a bar of its Progress towards
// its goal (1 = the goal exactly, so one axis serves ratios, rates,
// times and memory), green where met and red where not, each labelled
// with ordo's median and the ratio to the reference.
func WriteChart(w io.Writer, rep Report) error {
	var rows []Row
	for _, r := range rep.Rows {
		if !math.IsNaN(r.Progress()) {
			rows = append(rows, r)
		}
	}
	if len(rows) == 0 {
		return fmt.Errorf("chart: no row was measured")
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("ordo vs its goals (issue 10), %s, %s",
		rep.Header.Started.UTC().Format("2006-01-02"), rep.Header.Machine)
	p.Title.TextStyle.Font.Size = vg.Points(11)
	p.Y.Label.Text = "towards the goal (1 = goal met; ratio / goal, or goal / time or memory)"
	top := 1.2 // the goal line always shows, with room for labels
	for _, r := range rows {
		top = math.Max(top, math.Min(r.Progress(), chartCap)+0.15)
	}
	p.Y.Min, p.Y.Max = 0, top*1.1
	p.Add(plotter.NewGrid())

	met, missed := make(plotter.Values, len(rows)), make(plotter.Values, len(rows))
	names := make([]string, len(rows))
	var labels plotter.XYLabels
	for i, r := range rows {
		v := math.Min(r.Progress(), chartCap)
		if m, _ := r.Met(); m {
			met[i] = v
		} else {
			missed[i] = v
		}
		names[i] = r.ID
		l := Num(r.OrdoMedian()) + " " + r.Unit
		if !math.IsNaN(r.Ratio()) {
			l += "\n" + Num(r.Ratio()) + "x " + r.RefName
		}
		labels.XYs = append(labels.XYs, plotter.XY{X: float64(i), Y: v + 0.03})
		labels.Labels = append(labels.Labels, l)
	}
	width := vg.Points(math.Max(8, 360/float64(len(rows))))
	for _, b := range []struct {
		v plotter.Values
		c color.Color
		n string
	}{{met, metColor, "goal met"}, {missed, missedColor, "goal not met"}} {
		bars, err := plotter.NewBarChart(b.v, width)
		if err != nil {
			return err
		}
		bars.Color, bars.LineStyle.Width = b.c, 0
		p.Add(bars)
		p.Legend.Add(b.n, bars)
	}
	goal := plotter.NewFunction(func(float64) float64 { return 1 })
	goal.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
	goal.Width = vg.Points(1.5)
	p.Add(goal)
	p.Legend.Add("goal", goal)
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs = vg.Points(8)

	lbl, err := plotter.NewLabels(labels)
	if err != nil {
		return err
	}
	for i := range lbl.TextStyle {
		lbl.TextStyle[i].Font.Size = vg.Points(7)
		lbl.TextStyle[i].XAlign = draw.XCenter
		lbl.TextStyle[i].YAlign = draw.YBottom
		lbl.TextStyle[i].Handler = p.TextHandler
	}
	p.Add(lbl)
	p.NominalX(names...)
	p.X.Min, p.X.Max = -0.7, float64(len(rows))-0.3
	p.X.Tick.Label.Rotation = math.Pi / 6
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Tick.Label.YAlign = draw.YCenter

	img := vgimg.NewWith(vgimg.UseWH(12*vg.Inch, 6.5*vg.Inch), vgimg.UseDPI(100))
	p.Draw(draw.New(img))
	_, err = vgimg.PngCanvas{Canvas: img}.WriteTo(w)
	return err
}
