package perf

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// The chart's layout, in SVG user units (pixels at 1:1).
const (
	svgWidth      = 860
	svgLabelX     = 20  // where the pair names start
	svgBarX       = 270 // where the bars start: room for a 26-character pair name in bold without squeezing (librsvg ignores textLength)
	svgBarMax     = 400 // the longest bar
	svgTop        = 92  // the first row's top
	svgRowH       = 64  // one pair's row
	svgBarH       = 24
	svgLegendRowH = 22 // one row of the legend
	svgFont       = "DejaVu Sans, Verdana, Helvetica, Arial, sans-serif"
	// svgHalo outlines text in white under its fill, so the baseline's
	// dashed line does not cut through the letters.
	svgHalo = ` stroke="#ffffff" stroke-width="4" stroke-linejoin="round" paint-order="stroke"`
)

// kindColors gives each network kind, and each container mode (a pair
// with a container is coloured by the container's mode), its bar colour
// (and a darker one for the baseline's outline and the legend).
var kindColors = map[string][2]string{
	"bridge":            {"#4c78a8", "#27496d"},
	"nat":               {"#f58518", "#a35200"},
	"macvtap":           {"#8e6bbf", "#553a80"},
	"isolated":          {"#54a24b", "#2d6b27"},
	"container bridge":  {"#72b7b2", "#3b7d78"},
	"container host":    {"#e45756", "#9c2a29"},
	"container macvlan": {"#d6a42b", "#8a6510"},
	"container ipvlan":  {"#9d755d", "#5e4231"},
}

// colorKey is what a row is coloured by: its container's mode, else its
// network's kind; and the legend's words for it.
func colorKey(r Result) (key, label string) {
	if r.ContainerMode != "" {
		return "container " + r.ContainerMode, "container, " + containerModeText[r.ContainerMode]
	}
	return r.NetworkKind, r.NetworkKind + " network"
}

// kindColor is a kind's colours, grey for a kind without its own.
func kindColor(kind string) [2]string {
	if c, ok := kindColors[kind]; ok {
		return c
	}
	return [2]string{"#9d9d9d", "#5a5a5a"}
}

// SVG writes the report as a horizontal bar chart: a bar per pair, its
// length the TCP throughput on one scale, coloured by network kind, with
// the value and the ratio to the baseline at its end, the UDP test below
// it, and a dashed line at the baseline's throughput.
func SVG(w io.Writer, rep *Report) error {
	max, step := scale(maxTCP(rep))
	legend := legendRows(rep)
	height := svgTop + svgRowH*len(rep.Pairs) + 84 + svgLegendRowH*max0(len(legend)-1)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="%s">`+"\n",
		svgWidth, height, svgWidth, height, svgFont)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", svgWidth, height)
	svgTitle(&b, rep)
	svgGrid(&b, max, step, len(rep.Pairs))
	svgBaseline(&b, rep, max)
	for i, r := range rep.Pairs {
		svgRow(&b, r, svgTop+i*svgRowH, max)
	}
	svgLegend(&b, legend, height-20)
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// svgTitle writes the title and the line that says what the ratios mean.
func svgTitle(b *strings.Builder, rep *Report) {
	fmt.Fprintf(b, `<text x="%d" y="30" font-size="20" font-weight="bold" fill="#222222">%s</text>`+"\n", svgLabelX,
		esc(fmt.Sprintf("vmnet perf %s: TCP throughput, iperf3, %d s per test", rep.Lab, rep.TestSeconds)))
	note := "no baseline: no pair crosses a bridge network"
	if base := baselineResult(rep); base != nil {
		note = fmt.Sprintf("×N: throughput over the baseline %s (%s), in the same run", base.Pair, base.Mode)
	}
	fmt.Fprintf(b, `<text x="%d" y="52" font-size="13" fill="#555555">%s</text>`+"\n", svgLabelX, esc(note))
}

// svgGrid writes the vertical grid lines and their labels, in Mbit/s
// below 1 Gbit/s and in Gbit/s from there.
func svgGrid(b *strings.Builder, max, step float64, rows int) {
	if max <= 0 {
		return
	}
	unit, div := "Mbit/s", 1e6
	if max >= 1e9 {
		unit, div = "Gbit/s", 1e9
	}
	bottom := svgTop + svgRowH*rows - 8
	for v := 0.0; v <= max+step/2; v += step {
		x := barX(v, max)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e3e3e3" stroke-width="1"/>`+"\n", x, svgTop-4, x, bottom)
		fmt.Fprintf(b, `<text x="%.1f" y="%d" font-size="11" fill="#777777" text-anchor="middle">%s</text>`+"\n", x, bottom+16, number(v/div))
	}
	fmt.Fprintf(b, `<text x="%d" y="%d" font-size="12" fill="#555555" text-anchor="middle">TCP throughput, %s</text>`+"\n", svgBarX+svgBarMax/2, bottom+34, unit)
}

// svgBaseline marks the baseline's throughput with a dashed line across
// each bar, behind the rows (a value's text has a white halo where it
// crosses).
func svgBaseline(b *strings.Builder, rep *Report, max float64) {
	base := baselineResult(rep)
	if base == nil || base.TCP == nil || max <= 0 {
		return
	}
	x := barX(base.TCP.BitsPerSecond, max)
	for i := range rep.Pairs { // one stretch per bar, clear of the text lines
		y := svgTop + i*svgRowH
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#333333" stroke-width="1.5" stroke-dasharray="4,3"/>`+"\n",
			x, y-8, x, y+svgBarH+6)
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%d" font-size="12" fill="#333333" text-anchor="middle">baseline = 1×</text>`+"\n", x, svgTop-12)
}

// svgRow writes one pair: its name and mode, its bar and values, its UDP line.
func svgRow(b *strings.Builder, r Result, y int, max float64) {
	fmt.Fprintf(b, `<text x="%d" y="%d" font-size="14" font-weight="bold" fill="#222222"%s>%s</text>`+"\n", svgLabelX, y+14, fitLabel(r.Pair, 14*0.66), esc(r.Pair))
	fmt.Fprintf(b, `<text x="%d" y="%d" font-size="12" fill="#555555"%s>%s</text>`+"\n", svgLabelX, y+31, fitLabel(r.Mode, 12*0.6), esc(r.Mode))
	if r.TCP == nil || max <= 0 {
		fmt.Fprintf(b, `<text x="%d" y="%d" font-size="13" fill="#b00020"%s>%s</text>`+"\n", svgBarX, y+17, svgHalo, esc("not measured: "+short(r.Error, 70)))
		return
	}
	key, _ := colorKey(r)
	c := kindColor(key)
	end := barX(r.TCP.BitsPerSecond, max)
	stroke := ""
	if r.Baseline {
		stroke = fmt.Sprintf(` stroke="%s" stroke-width="2"`, c[1])
	}
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%.1f" height="%d" rx="3" fill="%s"%s/>`+"\n", svgBarX, y, end-svgBarX, svgBarH, c[0], stroke)
	value := Rate(r.TCP.BitsPerSecond)
	if r.Ratio != nil {
		value += fmt.Sprintf("  ×%.2f", *r.Ratio)
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%d" font-size="14" font-weight="bold" fill="#222222"%s>%s</text>`+"\n", end+8, y+17, svgHalo, esc(value))
	fmt.Fprintf(b, `<text x="%d" y="%d" font-size="12" fill="#555555">%s</text>`+"\n", svgBarX, y+42, esc(udpLine(r)))
}

// fitLabel squeezes a label whose characters, charW wide on average,
// would run into the bars into the room before them; "" for one that fits.
func fitLabel(s string, charW float64) string {
	room := svgBarX - svgLabelX - 10
	if float64(len([]rune(s)))*charW <= float64(room) {
		return ""
	}
	return fmt.Sprintf(` textLength="%d" lengthAdjust="spacingAndGlyphs"`, room)
}

// udpLine is the row's second line: retransmits and the UDP test.
func udpLine(r Result) string {
	s := fmt.Sprintf("%d TCP retransmits", r.TCP.Retransmits)
	if r.UDP == nil {
		return s + "; UDP not measured"
	}
	return s + fmt.Sprintf("; UDP %s of %s, jitter %.3f ms, %.2f %% lost",
		Rate(r.UDP.BitsPerSecond), Rate(r.UDP.TargetBitsPerSecond), r.UDP.JitterMS, r.UDP.LostPercent)
}

// legendItem is one swatch of the legend.
type legendItem struct{ key, label string }

// legendRows is a swatch per network kind and container mode in the
// report, in order of appearance, in rows that fit the chart's width.
func legendRows(rep *Report) [][]legendItem {
	var rows [][]legendItem
	seen := map[string]bool{}
	x := svgLabelX
	for _, r := range rep.Pairs {
		key, label := colorKey(r)
		if seen[key] {
			continue
		}
		seen[key] = true
		if len(rows) == 0 || x+legendWidth(label) > svgWidth {
			rows, x = append(rows, nil), svgLabelX
		}
		rows[len(rows)-1] = append(rows[len(rows)-1], legendItem{key, label})
		x += legendWidth(label)
	}
	return rows
}

// legendWidth is the room one swatch and its label take.
func legendWidth(label string) int { return 20 + 8*len(label) + 24 }

// svgLegend writes the legend's rows, the last one's text at y.
func svgLegend(b *strings.Builder, rows [][]legendItem, y int) {
	y -= svgLegendRowH * (len(rows) - 1)
	for _, row := range rows {
		x := svgLabelX
		for _, it := range row {
			c := kindColor(it.key)
			fmt.Fprintf(b, `<rect x="%d" y="%d" width="14" height="14" rx="2" fill="%s"/>`+"\n", x, y-11, c[0])
			fmt.Fprintf(b, `<text x="%d" y="%d" font-size="12" fill="#333333">%s</text>`+"\n", x+20, y, esc(it.label))
			x += legendWidth(it.label)
		}
		y += svgLegendRowH
	}
}

// max0 is n, or 0 when n is negative.
func max0(n int) int {
	if n < 0 {
		return 0
	}
	return n
}

// barX is where a bar of bps ends.
func barX(bps, max float64) float64 { return svgBarX + bps/max*svgBarMax }

// maxTCP is the highest TCP throughput in the report.
func maxTCP(rep *Report) float64 {
	m := 0.0
	for _, r := range rep.Pairs {
		if r.TCP != nil && r.TCP.BitsPerSecond > m {
			m = r.TCP.BitsPerSecond
		}
	}
	return m
}

// scale rounds max up to a whole number of grid steps of 1, 2 or 5 times a
// power of ten, for 3 to 6 grid lines.
func scale(max float64) (top, step float64) {
	if max <= 0 {
		return 0, 0
	}
	p := math.Pow(10, math.Floor(math.Log10(max)))
	for _, m := range []float64{0.1, 0.2, 0.5, 1, 2, 5} {
		step = m * p
		if max/step <= 5 {
			break
		}
	}
	return math.Ceil(max/step) * step, step
}

// number prints a grid value without needless digits.
func number(v float64) string {
	s := fmt.Sprintf("%.3f", v)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// short cuts s to n runes.
func short(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// esc escapes text for SVG.
func esc(s string) string { return html.EscapeString(s) }
