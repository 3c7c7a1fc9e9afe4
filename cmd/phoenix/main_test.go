package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildPhoenix builds the CLI once per test binary.
func buildPhoenix(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "phoenix")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestSandboxRefusesNonLoopbackListen(t *testing.T) {
	for _, listen := range []string{"0.0.0.0:4566", ":4566", "10.0.0.1:4566", "[::]:4566", "example.com:80"} {
		var out bytes.Buffer
		cmd := newRootCommand()
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs([]string{"sandbox", "--listen", listen})
		err := cmd.ExecuteContext(context.Background())
		if got := exitCode(err); got != exitRefused {
			t.Errorf("--listen %s: exit %d (%v), want %d", listen, got, err, exitRefused)
			continue
		}
		if !strings.Contains(err.Error(), "--listen") || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("--listen %s: error %q does not name the flag and the rule", listen, err)
		}
	}
}

func TestBadFlagIsRefused(t *testing.T) {
	cmd := newRootCommand()
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	cmd.SetArgs([]string{"sandbox", "--time-scale", "fast"})
	if got := exitCode(cmd.ExecuteContext(context.Background())); got != exitRefused {
		t.Fatalf("exit %d, want %d", got, exitRefused)
	}
	cmd = newRootCommand()
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	cmd.SetArgs([]string{"sandbox", "--time-scale", "0"})
	if got := exitCode(cmd.ExecuteContext(context.Background())); got != exitRefused {
		t.Fatalf("exit %d, want %d", got, exitRefused)
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := runVersion(&out); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^phoenix \d+\.\d+\.\d+`).MatchString(out.String()) {
		t.Fatalf("version output %q", out.String())
	}
}

var servingLine = regexp.MustCompile(`serving (http://127\.0\.0\.1:\d+)`)

// startSandboxProcess runs `phoenix sandbox` and returns its URL once it
// serves, and the command to stop.
func startSandboxProcess(t testing.TB, bin string, args ...string) (string, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"sandbox", "--listen", "127.0.0.1:0"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if m := servingLine.FindStringSubmatch(sc.Text()); m != nil {
			go io.Copy(io.Discard, stdout)
			return m[1], cmd
		}
	}
	t.Fatalf("phoenix sandbox exited without serving")
	return "", nil
}

func TestSandboxCommandServesAndStopsOnSignal(t *testing.T) {
	bin := buildPhoenix(t)
	url, cmd := startSandboxProcess(t, bin, "--time-scale", "0.01")
	resp, err := http.Get(url + "/_sandbox/health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"status": "ok"`) || !strings.Contains(string(body), `"time_scale": 0.01`) {
		t.Fatalf("health = %s", body)
	}
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("sandbox exited with %v after SIGINT", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sandbox did not stop on SIGINT")
	}
}

// BenchmarkSandboxStart measures process start until the first answered
// request, against starting a process that does nothing (the baseline).
func BenchmarkSandboxStart(b *testing.B) {
	bin := buildPhoenix(b)
	b.Run("phoenix-sandbox", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			url, cmd := startSandboxProcess(b, bin)
			resp, err := http.Get(url + "/_sandbox/health")
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
			cmd.Process.Signal(syscall.SIGINT)
			cmd.Wait()
		}
	})
	b.Run("baseline-phoenix-version", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if err := exec.Command(bin, "version").Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
