package proc

import (
	"os"
	"testing"
)

func TestStatusKB(t *testing.T) {
	rss, err := StatusKB(os.Getpid(), "VmRSS")
	if err != nil || rss <= 0 {
		t.Fatalf("VmRSS of this process: %d, %v", rss, err)
	}
	if _, err := StatusKB(os.Getpid(), "NoSuchField"); err == nil {
		t.Fatal("a missing field was not an error")
	}
}

func TestFreePort(t *testing.T) {
	if p, err := FreePort(); err != nil || p <= 0 {
		t.Fatalf("FreePort: %d, %v", p, err)
	}
}
