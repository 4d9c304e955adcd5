package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/ordo-broker/ordo/broker"
	"github.com/ordo-broker/ordo/broker/logging"
	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"
)

// Every option of `ordo node` is defined once, in broker.Options; this file
// derives the flags, the ORDO_* variables and the YAML loader from that
// table (README.md's table is checked against it by TestREADMEConfigTable).

// nodeFlags are the `ordo node` flags. Each takes its value as a string
// parsed by the option itself, so a flag, its variable and its YAML key
// accept the same syntax and fail with the same message; the one exception
// is booleans, which are switches (--rejoin-empty).
func nodeFlags() []cli.Flag {
	var flags []cli.Flag
	for _, o := range broker.Options() {
		var aliases []string
		if o.Alias != "" {
			aliases = []string{o.Alias}
		}
		env := []string{o.Env()}
		if o.Kind == broker.KindBool {
			flags = append(flags, &cli.BoolFlag{Name: o.Flag(), Aliases: aliases, Usage: o.Usage, EnvVars: env, DefaultText: o.Default})
			continue
		}
		flags = append(flags, &cli.StringFlag{Name: o.Flag(), Aliases: aliases, Usage: o.Usage, EnvVars: env,
			// Shown by --help; the value itself is applied by configFromCLI
			// (a flag's Value would look like "given" to IsSet-free code
			// and would hide the YAML layer below it).
			DefaultText: o.Default})
	}
	return flags
}

// logLevel is the node's log level: SIGHUP rereads the configuration and
// changes it while the node runs.
var logLevel slog.LevelVar

// configFromCLI builds the node configuration from four layers, each
// overriding the one before: defaults, the YAML file, ORDO_* variables,
// flags (urfave/cli merges the last two: a flag beats its variable).
func configFromCLI(c *cli.Context) (broker.Config, error) {
	var cfg broker.Config
	opts := broker.Options()
	for i := range opts {
		o := &opts[i]
		if o.Default != "" && !o.Computed && !o.NoYAML {
			if err := o.Set(&cfg, o.Default); err != nil {
				return cfg, fmt.Errorf("default of %s: %w", o.Key, err)
			}
		}
	}
	given := map[string]bool{}
	if path := c.String("config"); path != "" {
		if err := loadFile(path, &cfg, opts, given); err != nil {
			return cfg, err
		}
		cfg.ConfigFile = path
	}
	for i := range opts {
		o := &opts[i]
		if o.NoYAML || !c.IsSet(o.Flag()) { // --config was read above
			continue
		}
		v := c.String(o.Flag())
		if o.Kind == broker.KindBool {
			v = strconv.FormatBool(c.Bool(o.Flag()))
		}
		if err := o.Set(&cfg, v); err != nil {
			return cfg, fmt.Errorf("%s: %w", source(o, v), err)
		}
		given[o.Key] = true
	}
	if given["cluster_secret"] && given["cluster_secret_file"] {
		return cfg, errors.New("both cluster_secret and cluster_secret_file are given (by flag, ORDO_* variable or the config file): give one")
	}
	level, err := logging.ParseLevel(cfg.LogLevel)
	if err != nil {
		return cfg, err
	}
	cfg.Logger = logging.NewLogger(os.Stderr, cfg.LogFormat, &logLevel)
	// Refuse an impossible combination (heartbeat >= leader timeout, a
	// cluster without a secret...) before anything listens or opens files.
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	logLevel.Set(level)
	return cfg, nil
}

// source names where a bad value came from, so the message points at what
// to fix.
func source(o *broker.Option, v string) string {
	if e, ok := os.LookupEnv(o.Env()); ok && e == v {
		return o.Env()
	}
	return "--" + o.Flag()
}

// loadFile applies a YAML configuration file. It is strict: an unknown or
// repeated key is an error naming it and its line, so a typo never silently
// falls back to a default. Nested keys (retention: {age: 1h}) are the
// table's dotted keys (retention.age).
func loadFile(path string, cfg *broker.Config, opts []broker.Option, given map[string]bool) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(b)).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) { // an empty file: all defaults
			return nil
		}
		return fmt.Errorf("%s: %w", path, err)
	}
	f := &fileLoader{cfg: cfg, byKey: map[string]*broker.Option{}, groups: map[string]bool{}, given: given}
	for i := range opts {
		o := &opts[i]
		if o.NoYAML {
			continue
		}
		f.byKey[o.Key] = o
		for k := o.Key; strings.Contains(k, "."); {
			k = k[:strings.LastIndex(k, ".")]
			f.groups[k] = true
		}
	}
	if err := f.mapping(doc.Content[0], ""); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

type fileLoader struct {
	cfg    *broker.Config
	byKey  map[string]*broker.Option
	groups map[string]bool // prefixes of dotted keys: "retention"
	given  map[string]bool
}

func (f *fileLoader) mapping(m *yaml.Node, prefix string) error {
	if m.Kind != yaml.MappingNode {
		what := "the file"
		if prefix != "" {
			what = strings.TrimSuffix(prefix, ".")
		}
		return fmt.Errorf("line %d: %s must be a mapping of key: value", m.Line, what)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		key := prefix + k.Value
		if seen[key] {
			return fmt.Errorf("line %d: %s given twice", k.Line, key)
		}
		seen[key] = true
		if o, ok := f.byKey[key]; ok {
			s, err := scalar(o, v)
			if err == nil {
				err = o.Set(f.cfg, s)
			}
			if err != nil {
				return fmt.Errorf("line %d: %s: %w", v.Line, key, err)
			}
			f.given[key] = true
			continue
		}
		if f.groups[key] {
			if err := f.mapping(v, key+"."); err != nil {
				return err
			}
			continue
		}
		return fmt.Errorf("line %d: unknown key %q (the keys are listed by `ordo node --help` and in README.md)", k.Line, key)
	}
	return nil
}

// scalar is a YAML value as the option's string syntax. Peers may also be
// a list of {id, host, port}, lines (users) a list of strings.
func scalar(o *broker.Option, v *yaml.Node) (string, error) {
	if o.Kind == broker.KindPeers && v.Kind == yaml.SequenceNode {
		return yamlPeers(v)
	}
	if o.Kind == broker.KindLines && v.Kind == yaml.SequenceNode {
		var lines []string
		for _, n := range v.Content {
			if n.Kind != yaml.ScalarNode {
				return "", fmt.Errorf("line %d: want a list of strings", n.Line)
			}
			lines = append(lines, n.Value)
		}
		return strings.Join(lines, "\n"), nil
	}
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
		return "", fmt.Errorf("want a single %s value", o.Kind)
	}
	return v.Value, nil
}

// yamlPeers turns a list of {id, host, port} (host defaults to 127.0.0.1)
// into id:host:port,...
func yamlPeers(seq *yaml.Node) (string, error) {
	var parts []string
	for _, n := range seq.Content {
		var p struct {
			ID   uint64 `yaml:"id"`
			Host string `yaml:"host"`
			Port int    `yaml:"port"`
		}
		if err := n.Decode(&p); err != nil {
			return "", err
		}
		if n.Kind == yaml.MappingNode {
			for i := 0; i < len(n.Content); i += 2 {
				if k := n.Content[i].Value; k != "id" && k != "host" && k != "port" {
					return "", fmt.Errorf("line %d: unknown peer key %q (want id, host, port)", n.Content[i].Line, k)
				}
			}
		}
		if p.ID == 0 || p.Port == 0 {
			return "", fmt.Errorf("line %d: each peer needs id and port (got id=%d port=%d)", n.Line, p.ID, p.Port)
		}
		if p.Host == "" {
			p.Host = "127.0.0.1"
		}
		parts = append(parts, fmt.Sprintf("%d:%s", p.ID, net.JoinHostPort(p.Host, strconv.Itoa(p.Port))))
	}
	return strings.Join(parts, ","), nil
}
