package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// OrdoPackage is what WithOrdo builds.
const OrdoPackage = "github.com/ordo-broker/ordo/cmd/ordo"

type mainConfig struct {
	buildOrdo bool
	leakOpts  []goleak.Option
}

// MainOption configures Main.
type MainOption func(*mainConfig)

// WithOrdo builds the ordo binary once, before any test runs, for
// StartOrdo and NewCluster. Under -race the binary is built with -race,
// so the processes under test are checked too.
func WithOrdo() MainOption { return func(c *mainConfig) { c.buildOrdo = true } }

// IgnoreGoroutine tells the leak check that goroutines whose stack top
// is fn (e.g. a library's pool that lives for the process) are expected.
func IgnoreGoroutine(fn string) MainOption {
	return func(c *mainConfig) { c.leakOpts = append(c.leakOpts, goleak.IgnoreTopFunction(fn)) }
}

// Main is a package's TestMain: it prepares what the options ask for,
// runs the tests and then fails the run if goroutines are left behind
// (goleak retries for a while, so goroutines that are ending anyway are
// not reported).
func Main(m *testing.M, opts ...MainOption) {
	var cfg mainConfig
	for _, o := range opts {
		o(&cfg)
	}
	os.Exit(run(m, cfg))
}

func run(m *testing.M, cfg mainConfig) int {
	if cfg.buildOrdo {
		dir, err := os.MkdirTemp("", "ordo-testkit-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "testkit:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		if ordoBin, err = build(dir); err != nil {
			fmt.Fprintln(os.Stderr, "testkit:", err)
			return 1
		}
	}
	code := m.Run()
	if code == 0 {
		if err := findLeaks(cfg.leakOpts...); err != nil {
			fmt.Fprintf(os.Stderr, "testkit: goroutines leaked by the tests: %v\n", err)
			return 1
		}
	}
	return code
}

// ordoBin is the binary WithOrdo built ("" if it was not asked for).
var ordoBin string

// OrdoBinary is the path of the ordo binary built by Main(WithOrdo()).
func OrdoBinary(t testing.TB) string {
	t.Helper()
	if ordoBin == "" {
		t.Fatal("testkit: no ordo binary; the package's TestMain must call testkit.Main(m, testkit.WithOrdo())")
	}
	return ordoBin
}

func build(dir string) (string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		// `go test` sets GOROOT for the test binary; CI's PATH may lack go.
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(dir, "ordo")
	args := []string{"build", "-o", bin}
	if Race {
		args = append(args, "-race")
	}
	cmd := exec.Command(goTool, append(args, OrdoPackage)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s: %v\n%s", OrdoPackage, err, out)
	}
	return bin, nil
}

// findLeaks is goleak.Find with patience: client libraries (rueidis, go-redis)
// end their background goroutines asynchronously after Close, and on a
// loaded machine that takes longer than Find's own retries (about a
// second). A goroutine that really leaked is still there after the wait.
func findLeaks(opts ...goleak.Option) error {
	deadline := time.Now().Add(Scale(10 * time.Second))
	for {
		err := goleak.Find(opts...)
		if err == nil || time.Now().After(deadline) {
			return err
		}
	}
}
