package linuxrt

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Two instances serve HTTP on 0.0.0.0:8080 at once, each reachable at its
// own private IP from the machine; one reaches the other through the host,
// and each sees its own metadata service at 169.254.169.254. When they
// stop, nothing listens at their addresses any more.
func TestInstanceOwnNetwork(t *testing.T) {
	requireE2E(t)
	rt, _ := newTestRuntime(t)
	signer, pub := newKey(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	var insts []*Instance
	for n := 1; n <= 2; n++ {
		id := fmt.Sprintf("i-net%d", n)
		userData := fmt.Sprintf("#!/bin/sh\nmkdir -p /srv/www\necho hello from %s > /srv/www/index.html\nexec busybox httpd -f -p 0.0.0.0:8080 -h /srv/www\n", id)
		md := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "metadata of %s: %s %s", id, r.Method, r.URL.Path)
		})
		inst, err := rt.Boot(ctx, InstanceSpec{ID: id, IP: testIP(10 + n), AuthorizedKey: pub, UserData: []byte(userData), Metadata: md})
		if err != nil {
			t.Fatal(err)
		}
		insts = append(insts, inst)
	}
	get := func(url string) (string, error) {
		c := &http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get(url)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return strings.TrimSpace(string(b)), err
	}
	for _, inst := range insts {
		url := "http://" + net.JoinHostPort(inst.Spec().IP, "8080") + "/"
		want := "hello from " + inst.ID()
		deadline := time.Now().Add(time.Minute)
		for {
			got, err := get(url)
			if err == nil && got == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s: %q, %v (want %q)\nconsole:\n%s", url, got, err, want, readFile(inst.Spec().ConsoleLog))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	c, _ := sshTo(t, ctx, insts[0], signer)
	defer c.Close()
	// Inside, the instance has its own addresses: lo with its private IP
	// and the metadata address, and no interface of the host's.
	addrs := mustRun(t, c, "ip -4 -o addr show")
	for _, want := range []string{insts[0].Spec().IP + "/32", "169.254.169.254/32"} {
		if !strings.Contains(addrs, want) {
			t.Errorf("ip addr inside lacks %s:\n%s", want, addrs)
		}
	}
	if strings.Contains(addrs, insts[1].Spec().IP) {
		t.Errorf("instance 1 sees instance 2's address:\n%s", addrs)
	}
	// Another instance, reached at its private IP through the host.
	if got := mustRun(t, c, "curl -sS -m 5 http://"+insts[1].Spec().IP+":8080/"); got != "hello from i-net2" {
		t.Errorf("instance 1 reaching instance 2: %q", got)
	}
	// Its own service on its own address and on 127.0.0.1.
	if got := mustRun(t, c, "curl -sS -m 5 http://127.0.0.1:8080/"); got != "hello from i-net1" {
		t.Errorf("instance 1 reaching itself: %q", got)
	}
	if got := mustRun(t, c, "curl -sS -m 5 -X PUT http://169.254.169.254/latest/api/token"); got != "metadata of i-net1: PUT /latest/api/token" {
		t.Errorf("metadata service inside instance 1: %q", got)
	}
	// Names resolve through the Amazon DNS address and the host's
	// resolver, and connections leave through the host, when the host
	// itself reaches the Debian archive.
	if _, err := net.LookupHost("deb.debian.org"); err == nil {
		if got := mustRun(t, c, "grep nameserver /etc/resolv.conf"); got != "nameserver 169.254.169.253" {
			t.Errorf("resolv.conf inside: %q", got)
		}
		if got := mustRun(t, c, "curl -sS -m 20 -o /dev/null -w '%{http_code}' http://deb.debian.org/debian/dists/bookworm/Release"); got != "200" {
			t.Errorf("instance fetching from the Debian archive: HTTP %s", got)
		}
	}
	// A service bound to 127.0.0.1 inside is not reachable from outside,
	// as on EC2.
	mustRun(t, c, "sudo sh -c 'mkdir -p /srv/lo && echo lo > /srv/lo/index.html && busybox httpd -p 127.0.0.1:8081 -h /srv/lo'")
	if got := mustRun(t, c, "curl -sS -m 5 http://127.0.0.1:8081/"); got != "lo" {
		t.Errorf("loopback-only service inside: %q", got)
	}
	time.Sleep(3 * pollInterval)
	if _, err := get("http://" + net.JoinHostPort(insts[0].Spec().IP, "8081") + "/"); err == nil {
		t.Errorf("a service bound to 127.0.0.1 inside the instance is reachable at its private IP")
	}
	c.Close()

	for _, inst := range insts {
		if err := inst.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		for _, port := range []string{"22", "8080"} {
			addr := net.JoinHostPort(inst.Spec().IP, port)
			if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				conn.Close()
				t.Errorf("%s still accepts connections after Stop", addr)
			}
		}
	}
}
