package testkit

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// httpClient opens a connection per request: nothing idle outlives a
// test (the leak check would report it), and a node that was killed
// cannot answer from a pooled connection.
var httpClient = &http.Client{
	Timeout:   10 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true},
}

// HTTPGet fetches url and returns the status code and body.
func HTTPGet(url string) (int, string, error) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// Metrics is a parsed Prometheus scrape, by metric family name.
type Metrics map[string]*dto.MetricFamily

// Scrape fetches a /metrics endpoint (addr is host:port) and parses the
// text exposition.
func Scrape(addr string) (Metrics, error) {
	code, body, err := HTTPGet("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %d %s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("parse /metrics: %w", err)
	}
	return Metrics(fams), nil
}

// metric finds the sample of family name whose labels include the given
// name/value pairs.
func (m Metrics) metric(name string, labels ...string) (*dto.Metric, error) {
	f := m[name]
	if f == nil {
		return nil, fmt.Errorf("no metric %s", name)
	}
	for _, s := range f.GetMetric() {
		if hasLabels(s, labels) {
			return s, nil
		}
	}
	return nil, fmt.Errorf("no %s sample with labels %v", name, labels)
}

func hasLabels(s *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		if !slices.ContainsFunc(s.GetLabel(), func(l *dto.LabelPair) bool {
			return l.GetName() == labels[i] && l.GetValue() == labels[i+1]
		}) {
			return false
		}
	}
	return true
}

// Value is a counter's, gauge's or untyped metric's value; labels are
// name/value pairs the sample must carry.
func (m Metrics) Value(name string, labels ...string) (float64, error) {
	s, err := m.metric(name, labels...)
	if err != nil {
		return 0, err
	}
	switch {
	case s.Counter != nil:
		return s.Counter.GetValue(), nil
	case s.Gauge != nil:
		return s.Gauge.GetValue(), nil
	case s.Untyped != nil:
		return s.Untyped.GetValue(), nil
	}
	return 0, fmt.Errorf("%s is a %v, not a number", name, m[name].GetType())
}

// Histogram is a histogram's sample count and sum.
func (m Metrics) Histogram(name string, labels ...string) (count uint64, sum float64, err error) {
	s, err := m.metric(name, labels...)
	if err != nil {
		return 0, 0, err
	}
	if s.Histogram == nil {
		return 0, 0, fmt.Errorf("%s is a %v, not a histogram", name, m[name].GetType())
	}
	return s.Histogram.GetSampleCount(), s.Histogram.GetSampleSum(), nil
}

// LabelValues lists the values label takes across name's samples.
func (m Metrics) LabelValues(name, label string) []string {
	var out []string
	for _, s := range m[name].GetMetric() {
		for _, l := range s.GetLabel() {
			if l.GetName() == label {
				out = append(out, l.GetValue())
			}
		}
	}
	slices.Sort(out)
	return out
}
