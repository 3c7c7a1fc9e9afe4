package linuxrt

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Every instance has a network namespace of its own, as an EC2 instance has
// its own network stack: an app binds 0.0.0.0:8080 on every instance at
// once. Inside, lo carries 127.0.0.1/8, the instance's private IP, the
// instance metadata address and the Amazon DNS address. The runtime, in the
// host's namespace, connects it to the machine:
//
//   - inbound: every TCP port the instance listens on (on 0.0.0.0, :: or its
//     private IP) is listened on at the private IP on the host and each
//     connection is relayed into the namespace, so SSH, health checks and
//     the load balancer's proxy reach the instance at its private IP as if
//     it were on the host's network;
//   - outbound: the init redirects TCP connections to any address that is
//     not the instance's own (iptables in the instance's namespace) to the
//     runtime's relay, which makes them from the host's namespace;
//   - DNS: 169.254.169.253:53 (UDP), the address of the Amazon DNS server
//     on EC2, relays to the host's resolver;
//   - instance metadata: connections to 169.254.169.254:80 go the
//     outbound way and are served by InstanceSpec.Metadata (nothing
//     listens on port 80 inside, so the instance's apps can).
//
// https://docs.aws.amazon.com/vpc/latest/userguide/AmazonDNS-concepts.html
// (the Amazon DNS server at 169.254.169.253)
const (
	metadataIP = "169.254.169.254"
	dnsIP      = "169.254.169.253"
	// outboundPort is where, inside the instance, the redirected outbound
	// connections arrive (on 127.0.0.1 only, so it is never relayed
	// inbound). Port 1 (tcpmux) is one no service of a Debian system uses.
	outboundPort = 1
	// pollInterval is how often the runtime looks for new listening ports
	// in an instance.
	pollInterval = 100 * time.Millisecond
)

// netNS is an instance's network namespace, held open by the runtime.
type netNS struct {
	f *os.File
}

func openNetNS(pid int) (*netNS, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return nil, fmt.Errorf("opening network namespace: %w", err)
	}
	return &netNS{f: f}, nil
}

func (n *netNS) Close() error { return n.f.Close() }

// do runs fn on a thread that has entered the namespace. Sockets fn creates
// belong to the namespace for good; Go's poller serves them from any thread.
func (n *netNS) do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		host, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer host.Close()
		if err := unix.Setns(int(n.f.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("entering network namespace: %w", err)
			return
		}
		errc <- fn()
		if err := unix.Setns(int(host.Fd()), unix.CLONE_NEWNET); err != nil {
			// The thread stays locked and dies with this goroutine.
			return
		}
		runtime.UnlockOSThread()
	}()
	return <-errc
}

// freeBind lets a socket bind an address that lo does not carry yet: the
// runtime opens its listeners before the init has configured lo.
func freeBind(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

func (n *netNS) listenTCP(addr string) (net.Listener, error) {
	var ln net.Listener
	err := n.do(func() error {
		var err error
		lc := net.ListenConfig{Control: freeBind}
		ln, err = lc.Listen(context.Background(), "tcp4", addr)
		return err
	})
	return ln, err
}

func (n *netNS) listenUDP(addr string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := n.do(func() error {
		var err error
		lc := net.ListenConfig{Control: freeBind}
		pc, err = lc.ListenPacket(context.Background(), "udp4", addr)
		return err
	})
	return pc, err
}

// dial connects to addr from inside the namespace. The socket is created
// there; the connect itself may finish on any thread.
func (n *netNS) dial(ctx context.Context, addr string) (net.Conn, error) {
	var fd int
	err := n.do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "netns-socket")
	defer f.Close()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ip := net.ParseIP(host).To4()
	p, err := strconv.Atoi(port)
	if ip == nil || err != nil {
		return nil, fmt.Errorf("bad address %q", addr)
	}
	sa := &unix.SockaddrInet4{Port: p}
	copy(sa.Addr[:], ip)
	// A blocking connect to a local address answers at once.
	if err := unix.Connect(fd, sa); err != nil {
		return nil, err
	}
	return net.FileConn(f)
}

// instanceNet is the runtime's side of one instance's network.
type instanceNet struct {
	ns       *netNS
	ip       string
	log      func(format string, args ...any)
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	mu       sync.Mutex
	inbound  map[int]net.Listener // port -> host listener at ip:port
	closers  []io.Closer
	metadata http.Handler
	mdConns  *connListener // connections to the metadata address
}

// connListener is a net.Listener of connections handed to it.
type connListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newConnListener() *connListener {
	return &connListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *connListener) Addr() net.Addr {
	return &net.TCPAddr{IP: net.ParseIP(metadataIP), Port: 80}
}

// hand gives c to the listener's server; false when it is closed.
func (l *connListener) hand(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.closed:
		return false
	}
}

// startNet opens the instance's side of its network: the outbound relay,
// the DNS relay and the metadata service now (before the init brings lo
// up), the inbound relays as the instance starts listening.
func startNet(pid int, ip string, metadata http.Handler, log func(string, ...any)) (*instanceNet, error) {
	ns, err := openNetNS(pid)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &instanceNet{ns: ns, ip: ip, log: log, ctx: ctx, cancel: cancel, inbound: map[int]net.Listener{}, metadata: metadata}
	if metadata != nil {
		// Before the outbound relay, which hands connections to it.
		n.mdConns = newConnListener()
	}
	out, err := ns.listenTCP(net.JoinHostPort("127.0.0.1", strconv.Itoa(outboundPort)))
	if err != nil {
		n.Close()
		return nil, fmt.Errorf("outbound relay: %w", err)
	}
	n.closers = append(n.closers, out)
	n.serve(out, n.relayOutbound)
	dns, err := ns.listenUDP(net.JoinHostPort(dnsIP, "53"))
	if err != nil {
		n.Close()
		return nil, fmt.Errorf("DNS relay: %w", err)
	}
	n.closers = append(n.closers, dns)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		relayDNS(n.ctx, dns)
	}()
	if metadata != nil {
		// No socket in the instance listens at the metadata address: one
		// would keep the instance's own apps from binding 0.0.0.0:80.
		// Connections to it are redirected to the outbound relay like any
		// other, which hands them to this server (relayOutbound).
		srv := &http.Server{Handler: metadata, ReadHeaderTimeout: 10 * time.Second}
		n.closers = append(n.closers, srv)
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			srv.Serve(n.mdConns)
		}()
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.watchListeners(pid)
	}()
	return n, nil
}

// Close stops every relay and listener of the instance.
func (n *instanceNet) Close() {
	n.cancel()
	n.mu.Lock()
	for _, c := range n.closers {
		c.Close()
	}
	for port, ln := range n.inbound {
		ln.Close()
		delete(n.inbound, port)
	}
	n.mu.Unlock()
	n.wg.Wait()
	n.ns.Close()
}

// serve accepts on ln until it is closed, handing each connection to
// handle in a goroutine of its own.
func (n *instanceNet) serve(ln net.Listener, handle func(net.Conn)) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				handle(c)
			}()
		}
	}()
}

// relayOutbound makes a redirected connection from the host's namespace.
func (n *instanceNet) relayOutbound(c net.Conn) {
	dst, err := originalDst(c)
	if err != nil {
		n.log("outbound relay: %v", err)
		c.Close()
		return
	}
	if dst == net.JoinHostPort(metadataIP, "80") {
		if n.mdConns == nil || !n.mdConns.hand(c) {
			c.Close()
		}
		return // the metadata server owns the connection now
	}
	defer c.Close()
	var d net.Dialer
	ctx, cancel := context.WithTimeout(n.ctx, 30*time.Second)
	up, err := d.DialContext(ctx, "tcp4", dst)
	cancel()
	if err != nil {
		return // the instance sees the connection closed, as after a refusal
	}
	pipe(n.ctx, c, up)
}

// relayInbound carries a connection from the host's ip:port to the same
// port inside the instance.
func (n *instanceNet) relayInbound(port int) func(net.Conn) {
	return func(c net.Conn) {
		defer c.Close()
		ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
		in, err := n.ns.dial(ctx, net.JoinHostPort(n.ip, strconv.Itoa(port)))
		cancel()
		if err != nil {
			return
		}
		pipe(n.ctx, c, in)
	}
}

// pipe copies both ways until both directions are done or ctx ends.
func pipe(ctx context.Context, a, b net.Conn) {
	defer b.Close()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			dst.Close()
		}
		done <- struct{}{}
	}
	go cp(a, b)
	go cp(b, a)
	for i := 0; i < 2; i++ {
		select {
		case <-done:
		case <-ctx.Done():
			a.Close()
			b.Close()
			<-done
		}
	}
}

// originalDst reads where a redirected connection was going
// (SO_ORIGINAL_DST, from netfilter's connection tracking).
func originalDst(c net.Conn) (string, error) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return "", errors.New("not a TCP connection")
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return "", err
	}
	var sa [16]byte
	var serr error
	err = raw.Control(func(fd uintptr) {
		l := uint32(len(sa))
		_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_IP, unix.SO_ORIGINAL_DST,
			uintptr(unsafe.Pointer(&sa[0])), uintptr(unsafe.Pointer(&l)), 0)
		if e != 0 {
			serr = e
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return "", fmt.Errorf("SO_ORIGINAL_DST: %w", err)
	}
	port := binary.BigEndian.Uint16(sa[2:4])
	return net.JoinHostPort(net.IP(sa[4:8]).String(), strconv.Itoa(int(port))), nil
}

// relayDNS forwards each query to the host's resolver and its answer back.
func relayDNS(ctx context.Context, pc net.PacketConn) {
	upstream := hostResolver()
	buf := make([]byte, 65535)
	for {
		nr, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		q := append([]byte(nil), buf[:nr]...)
		go func() {
			var d net.Dialer
			qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			c, err := d.DialContext(qctx, "udp", upstream)
			if err != nil {
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write(q); err != nil {
				return
			}
			ans := make([]byte, 65535)
			na, err := c.Read(ans)
			if err != nil {
				return
			}
			pc.WriteTo(ans[:na], from)
		}()
	}
}

// hostResolver is the first name server of the host's resolv.conf.
func hostResolver() string {
	f, err := os.Open("/etc/resolv.conf")
	if err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) >= 2 && fs[0] == "nameserver" && net.ParseIP(fs[1]) != nil {
				return net.JoinHostPort(fs[1], "53")
			}
		}
	}
	return "127.0.0.1:53"
}

// watchListeners keeps a host listener at ip:port for every port the
// instance listens on where the instance's network would be reachable from
// outside (0.0.0.0, ::, its private IP), and drops it when the instance
// stops listening there.
func (n *instanceNet) watchListeners(pid int) {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		ports := listeningPorts(pid, n.ip)
		n.mu.Lock()
		if n.ctx.Err() != nil {
			n.mu.Unlock()
			return
		}
		for port, ln := range n.inbound {
			if !ports[port] {
				ln.Close()
				delete(n.inbound, port)
			}
		}
		for port := range ports {
			if n.inbound[port] != nil {
				continue
			}
			ln, err := net.Listen("tcp4", net.JoinHostPort(n.ip, strconv.Itoa(port)))
			if err != nil {
				continue // tried again at the next poll
			}
			n.inbound[port] = ln
			n.serve(ln, n.relayInbound(port))
		}
		n.mu.Unlock()
		select {
		case <-n.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// listeningPorts reads the TCP sockets in LISTEN state of pid's network
// namespace that a connection to ip would reach.
func listeningPorts(pid int, ip string) map[int]bool {
	ports := map[int]bool{}
	want := map[string]bool{
		"00000000":                               true, // 0.0.0.0
		hexIPv4(ip):                              true,
		"00000000000000000000000000000000":       true, // ::
		"0000000000000000FFFF0000" + hexIPv4(ip): true,
	}
	for _, file := range []string{"tcp", "tcp6"} {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, file))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 4 || f[3] != "0A" { // TCP_LISTEN
				continue
			}
			addr, port, ok := strings.Cut(f[1], ":")
			if !ok || !want[addr] {
				continue
			}
			if p, err := strconv.ParseUint(port, 16, 16); err == nil && p != outboundPort {
				ports[int(p)] = true
			}
		}
	}
	return ports
}

// hexIPv4 writes ip as /proc/net/tcp does: the address's bytes in host
// (little-endian) order.
func hexIPv4(ip string) string {
	b := net.ParseIP(ip).To4()
	if b == nil {
		return ""
	}
	return strings.ToUpper(hex.EncodeToString([]byte{b[3], b[2], b[1], b[0]}))
}

// iptablesPaths are where the init looks for the host's iptables, legacy
// (x_tables) first: it works on kernels without nf_tables.
var iptablesPaths = []string{"/usr/sbin/iptables-legacy", "/sbin/iptables-legacy", "/usr/sbin/iptables", "/sbin/iptables"}

func findIPTables() string {
	for _, p := range iptablesPaths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// ensureIPTables installs iptables from Debian's packages when the machine
// lacks it, as EnsureBaseRootfs does debootstrap, so that a fresh machine
// (CI's) needs no extra step.
func ensureIPTables() error {
	if findIPTables() != "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	install := func() error {
		return runLogged(ctx, io.Discard, "apt-get", "install", "-y", "--no-install-recommends", "iptables")
	}
	if err := install(); err != nil {
		if err := runLogged(ctx, io.Discard, "apt-get", "update"); err != nil {
			return fmt.Errorf("linuxrt: instances' networks need iptables: apt-get update: %w", err)
		}
		if err := install(); err != nil {
			return fmt.Errorf("linuxrt: instances' networks need iptables (apt-get install iptables): %w", err)
		}
	}
	if findIPTables() == "" {
		return errors.New("linuxrt: instances' networks need iptables (apt-get install iptables)")
	}
	return nil
}
