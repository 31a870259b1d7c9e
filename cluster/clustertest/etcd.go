package clustertest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// StartEtcd starts an etcd of the test's own and returns its client
// endpoints (http://127.0.0.1:port). It is stopped when the test ends.
func StartEtcd(t testing.TB) (endpoints []string) {
	t.Helper()
	bin := etcdBinary(t)
	var lastErr error
	// A free port can be taken between choosing it and etcd binding it:
	// try again with others.
	for range 3 {
		endpoint, err := startEtcd(t, bin)
		if err == nil {
			return []string{endpoint}
		}
		lastErr = err
	}
	t.Fatalf("clustertest: etcd did not start: %v", lastErr)
	return nil
}

// ClosedEndpoint returns an etcd endpoint on loopback where nothing
// listens: the shape of an etcd that is down.
func ClosedEndpoint(t testing.TB) string {
	t.Helper()
	return "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
}

func etcdBinary(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("KEFU_TEST_ETCD"); bin != "" {
		return bin
	}
	if bin, err := exec.LookPath("etcd"); err == nil {
		return bin
	}
	t.Fatal("clustertest: no etcd binary: install Debian's etcd-server (apt-get install etcd-server) or set KEFU_TEST_ETCD to one")
	return ""
}

func startEtcd(t testing.TB, bin string) (string, error) {
	client := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	peer := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	var out SyncBuffer
	cmd := exec.Command(bin,
		"--name", "kefutest",
		"--data-dir", t.TempDir(),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "kefutest="+peer, "--initial-cluster-state", "new",
		"--logger", "zap", "--log-level", "error",
	)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-exited:
			return "", fmt.Errorf("etcd exited: %s", out.String())
		default:
		}
		if healthy(client) {
			t.Cleanup(stop)
			return client, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", fmt.Errorf("etcd at %s not healthy within 20s: %s", client, out.String())
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
}

func healthy(endpoint string) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(endpoint + "/health")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	return resp.StatusCode == http.StatusOK && bytes.Contains(body.Bytes(), []byte(`"true"`))
}

// The ports freePort has handed out.
var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// ephemeralLow is the first port of the kernel's ephemeral range.
var ephemeralLow = sync.OnceValue(func() int {
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				return n
			}
		}
	}
	return 32768
})

// freePort picks a loopback TCP port for a process to listen on, never
// the same twice in one test binary. It is below the kernel's ephemeral
// range: a port from that range, free now, may be some outgoing
// connection's local port by the time a killed process starts again on it
// ("address already in use").
func freePort(t testing.TB) int {
	t.Helper()
	low := ephemeralLow()
	const first = 10000
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 1000 {
		port := first + rand.IntN(low-first)
		if portsGiven[port] {
			continue // free, but promised to a process that has not started yet
		}
		if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			l.Close()
			portsGiven[port] = true
			return port
		}
	}
	t.Fatalf("no free port between %d and %d", first, low)
	return 0
}

// SyncBuffer is a bytes.Buffer safe for concurrent use: a process's
// output written by exec's copying goroutine, or a logger's.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what was written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
