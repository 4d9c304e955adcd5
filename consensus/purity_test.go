package consensus

import (
	"os/exec"
	"strings"
	"testing"
)

// The core is a pure state machine: no network, clock or filesystem. This
// is what makes the simulation deterministic.
func TestCoreImportsNoNetOsTime(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list unavailable: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch dep {
		case "net", "os", "time", "os/exec", "syscall":
			t.Errorf("consensus depends on %q (via go list -deps)", dep)
		}
		if strings.HasPrefix(dep, "net/") {
			t.Errorf("consensus depends on %q", dep)
		}
	}
}
