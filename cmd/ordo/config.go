package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ordo-broker/ordo/broker"
	"go.yaml.in/yaml/v3"
)

// fileConfig is the YAML configuration file. Decoding is strict: an unknown
// key is an error that names it, so a typo never silently falls back to a
// default.
type fileConfig struct {
	ID                uint64        `yaml:"id"`
	Host              string        `yaml:"host"`
	Port              int           `yaml:"port"`
	DataDir           string        `yaml:"data_dir"`
	Peers             []filePeer    `yaml:"peers"`
	LogLevel          string        `yaml:"log_level"`
	LogFormat         string        `yaml:"log_format"`
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
	LeaderTimeout     time.Duration `yaml:"leader_timeout"`
	PublishTimeout    time.Duration `yaml:"publish_timeout"`
	Fsync             string        `yaml:"fsync"`
	MaxMessageSize    byteSize      `yaml:"max_message_size"`
	MaxRequestSize    byteSize      `yaml:"max_request_size"`
	MaxClients        int           `yaml:"max_clients"`
	PubsubBuffer      struct {
		Hard        byteSize `yaml:"hard"`
		Soft        byteSize `yaml:"soft"`
		SoftSeconds int      `yaml:"soft_seconds"`
	} `yaml:"pubsub_output_buffer"`
	Retention struct {
		Bytes byteSize      `yaml:"bytes"`
		Age   time.Duration `yaml:"age"`
	} `yaml:"retention"`
	SegmentSize byteSize `yaml:"segment_size"`
}

type filePeer struct {
	ID   uint64 `yaml:"id"`
	Host string `yaml:"host"`
	Port int    `yaml:"port"`
}

func loadFile(path string) (*fileConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var fc fileConfig
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&fc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &fc, nil
}

// byteSize accepts 1048576, "1mb", "512kb", "32MiB".
type byteSize int64

func (b *byteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseByteSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*b = byteSize(v)
	return nil
}

func parseByteSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"gib", 1 << 30}, {"mib", 1 << 20}, {"kib", 1 << 10}, {"gb", 1 << 30}, {"mb", 1 << 20}, {"kb", 1 << 10}, {"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10}, {"b", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("invalid size %q (want e.g. 1048576, 512kb, 32mb)", s)
	}
	return v * mult, nil
}

// parsePeers parses "1:127.0.0.1:5001,2:127.0.0.1:5002".
func parsePeers(s string) ([]broker.Peer, error) {
	var out []broker.Peer
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		idStr, addr, ok := strings.Cut(part, ":")
		id, err := strconv.ParseUint(idStr, 10, 64)
		if !ok || err != nil || id == 0 || !strings.Contains(addr, ":") {
			return nil, fmt.Errorf("invalid peer %q (want id:host:port, e.g. 2:127.0.0.1:5002)", part)
		}
		out = append(out, broker.Peer{ID: id, Addr: addr})
	}
	return out, nil
}

// apply copies the file's settings into cfg (flags and environment are
// applied after, so they win).
func (fc *fileConfig) apply(cfg *broker.Config, logLevel, logFormat *string) error {
	if fc.ID != 0 {
		cfg.ID = fc.ID
	}
	if fc.Host != "" {
		cfg.Host = fc.Host
	}
	if fc.Port != 0 {
		cfg.Port = fc.Port
	}
	if fc.DataDir != "" {
		cfg.DataDir = fc.DataDir
	}
	for _, p := range fc.Peers {
		if p.ID == 0 || p.Port == 0 {
			return fmt.Errorf("peers: each peer needs id and port (got id=%d port=%d)", p.ID, p.Port)
		}
		host := p.Host
		if host == "" {
			host = "127.0.0.1"
		}
		cfg.Peers = append(cfg.Peers, broker.Peer{ID: p.ID, Addr: fmt.Sprintf("%s:%d", host, p.Port)})
	}
	if fc.LogLevel != "" {
		*logLevel = fc.LogLevel
	}
	if fc.LogFormat != "" {
		*logFormat = fc.LogFormat
	}
	setDur(&cfg.HeartbeatInterval, fc.HeartbeatInterval)
	setDur(&cfg.LeaderTimeout, fc.LeaderTimeout)
	setDur(&cfg.PublishTimeout, fc.PublishTimeout)
	if fc.Fsync != "" {
		v, err := parseFsync(fc.Fsync)
		if err != nil {
			return err
		}
		cfg.NoSync = v
	}
	l := &cfg.Limits
	setInt(&l.MaxMessageBytes, int64(fc.MaxMessageSize))
	setInt(&l.MaxRequestBytes, int64(fc.MaxRequestSize))
	if fc.MaxClients != 0 {
		l.MaxClients = fc.MaxClients
	}
	setInt(&l.PubsubHardBytes, int64(fc.PubsubBuffer.Hard))
	setInt(&l.PubsubSoftBytes, int64(fc.PubsubBuffer.Soft))
	if fc.PubsubBuffer.SoftSeconds != 0 {
		l.PubsubSoftDuration = time.Duration(fc.PubsubBuffer.SoftSeconds) * time.Second
	}
	setInt(&cfg.RetainBytes, int64(fc.Retention.Bytes))
	if fc.SegmentSize != 0 {
		cfg.SegmentBytes = int(fc.SegmentSize)
	}
	setDur(&cfg.RetainAge, fc.Retention.Age)
	return nil
}

// parseFsync maps the durability mode to NoSync.
func parseFsync(s string) (noSync bool, err error) {
	switch strings.ToLower(s) {
	case "always", "yes", "true":
		return false, nil
	case "never", "no", "false":
		return true, nil
	}
	return false, fmt.Errorf("fsync must be always (acknowledge after fsync, the default) or never (fast mode: a crash of every node can lose acknowledged messages), got %q", s)
}

func setDur(dst *time.Duration, v time.Duration) {
	if v != 0 {
		*dst = v
	}
}

func setInt(dst *int64, v int64) {
	if v != 0 {
		*dst = v
	}
}
