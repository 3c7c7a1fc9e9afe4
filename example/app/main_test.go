package main

import (
	"net/http"
	"net/http/httptest"
	"os/exec"
	"testing"
)

// The app must build as a static binary: it is copied into a Debian image.
func TestBuildsStatic(t *testing.T) {
	cmd := exec.Command("go", "build", "-o", t.TempDir()+"/app", ".")
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
}

// A broken build answers exactly its share of / with 500; /health is
// another handler and stays up.
func TestRootFailsItsShare(t *testing.T) {
	for _, share := range []float64{0, 0.25, 0.5, 1} {
		h := root("h", share, 0)
		failed := 0
		for range 100 {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			if rec.Code == http.StatusInternalServerError {
				failed++
			} else if rec.Code != http.StatusOK {
				t.Fatalf("status %d", rec.Code)
			}
		}
		if want := int(share * 100); failed != want {
			t.Errorf("share %g: %d of 100 failed, want %d", share, failed, want)
		}
	}
}
