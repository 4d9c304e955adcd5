package consensus

import (
	"os/exec"
	"strings"
	"testing"
)

// The core is a pure state machine: no network, clock, filesystem or global
// randomness (Config.Rand is injected). This is what makes the simulation
// deterministic.
func TestCoreImportsNoNetOsTimeRand(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps failed: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch dep {
		case "net", "os", "time", "os/exec", "syscall", "math/rand", "math/rand/v2":
			t.Errorf("consensus depends on %q (via go list -deps)", dep)
		}
		if strings.HasPrefix(dep, "net/") {
			t.Errorf("consensus depends on %q", dep)
		}
	}
}
