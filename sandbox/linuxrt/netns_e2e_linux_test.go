package linuxrt

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
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
	// Inside, the instance has its own addresses: lo with its private IP,
	// and no interface of the host's.
	addrs := mustRun(t, c, "ip -4 -o addr show")
	for _, want := range []string{insts[0].Spec().IP + "/32"} {
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
	// The metadata service takes no port of the instance's: an app binds
	// 0.0.0.0:80 (nginx's default), and both answer.
	mustRun(t, c, "sudo sh -c 'mkdir -p /srv/80 && echo port80 > /srv/80/index.html && busybox httpd -p 0.0.0.0:80 -h /srv/80'")
	if got := mustRun(t, c, "curl -sS -m 5 http://127.0.0.1:80/ && curl -sS -m 5 http://169.254.169.254/latest/meta-data/instance-id"); got != "port80\nmetadata of i-net1: GET /latest/meta-data/instance-id" {
		t.Errorf("an app on 0.0.0.0:80 next to the metadata service: %q", got)
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

// The moment Stop and Terminate return, the instance's address is free on
// the host: no relay listens there and every relayed connection is closed.
// A client connected through a relay sees its connection end, and another
// program (or the same instance started again) can bind the address's
// ports at once.
func TestStopFreesAddressAtOnce(t *testing.T) {
	requireE2E(t)
	rt, _ := newTestRuntime(t)
	signer, pub := newKey(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ip := testIP(30)
	spec := InstanceSpec{ID: "i-rebind", IP: ip, AuthorizedKey: pub}

	// bindable reports whether a listener can be opened on ip:port now,
	// as sshd or the relay of a new instance would open it.
	bindable := func(port string) error {
		ln, err := net.Listen("tcp4", net.JoinHostPort(ip, port))
		if err != nil {
			return err
		}
		return ln.Close()
	}
	// connected opens an SSH session and a raw connection to 8080 through
	// the relays and returns them.
	connected := func(inst *Instance) (*ssh.Client, net.Conn) {
		c, _ := sshTo(t, ctx, inst, signer)
		if got := mustRun(t, c, "hostname"); got != inst.Spec().Hostname {
			t.Fatalf("hostname: %q", got)
		}
		mustRun(t, c, "sudo sh -c 'mkdir -p /srv/www && echo up > /srv/www/index.html && busybox httpd -p 0.0.0.0:8080 -h /srv/www'")
		var web net.Conn
		deadline := time.Now().Add(time.Minute)
		for {
			var err error
			web, err = net.DialTimeout("tcp", net.JoinHostPort(ip, "8080"), time.Second)
			if err == nil {
				fmt.Fprintf(web, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
				br := bufio.NewReader(web)
				if line, err := br.ReadString('\n'); err == nil && strings.HasPrefix(line, "HTTP/1.") {
					break
				}
				web.Close()
			}
			if time.Now().After(deadline) {
				t.Fatalf("no web server at %s:8080\nconsole:\n%s", ip, readFile(inst.Spec().ConsoleLog))
			}
			time.Sleep(100 * time.Millisecond)
		}
		return c, web
	}
	// closedByPeer asserts that conn was closed from the instance's side:
	// a read returns at once with an error, not a timeout.
	closedByPeer := func(what string, conn net.Conn) {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 4096)
		for {
			_, err := conn.Read(buf)
			if err == nil {
				continue // the rest of an answer already sent
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Errorf("%s: the relayed connection is still open after the instance stopped", what)
			}
			return
		}
	}

	for round := 1; round <= 2; round++ {
		inst, err := rt.Boot(ctx, spec)
		if err != nil {
			t.Fatalf("boot %d: %v", round, err)
		}
		c, web := connected(inst)
		if err := inst.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		for _, port := range []string{"22", "8080"} {
			if err := bindable(port); err != nil {
				t.Errorf("round %d: right after Stop, %s:%s is not free: %v", round, ip, port, err)
			}
		}
		sshEnded(t, "round "+strconv.Itoa(round), c)
		closedByPeer("web", web)
		c.Close()
		web.Close()
	}

	// Started again, then terminated while connected.
	inst, err := rt.Boot(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	c, web := connected(inst)
	if err := rt.Terminate(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	for _, port := range []string{"22", "8080"} {
		if err := bindable(port); err != nil {
			t.Errorf("right after Terminate, %s:%s is not free: %v", ip, port, err)
		}
	}
	sshEnded(t, "after Terminate", c)
	closedByPeer("web", web)
	c.Close()
	web.Close()
}

// sshEnded asserts that the SSH connection was closed from the server's
// side: the client's Wait returns rather than blocking.
func sshEnded(t *testing.T, what string, c *ssh.Client) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		c.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Errorf("%s: the relayed SSH connection is still open after the instance stopped", what)
	}
}
