package clustertest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Secrets every process of a harness shares: the token signing key (edges
// verify what any member signed) and the master key of the store's data
// keys.
const (
	TokenSecret   = "cluster-test-token-secret-0123456789abcdef"
	MasterKey     = "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s=" // 32 bytes, base64
	AdminPassword = "cluster-admin-pass-1"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds the kefu binary and the FerretDB program once per test
// process and returns their paths.
func binaries(t testing.TB) (kefu, ferretdb string) {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "kefu-cluster-bin-")
		if buildErr != nil {
			return
		}
		root := moduleRoot()
		for name, pkg := range map[string]string{"kefu": "./cmd/kefu", "ferretdb": "./store/mongo/mongotest/ferretdb"} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, name), pkg)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "kefu"), filepath.Join(binDir, "ferretdb")
}

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Proc is one OS process of the harness.
type Proc struct {
	Name string
	t    testing.TB
	bin  string
	args []string
	env  []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	logs   strings.Builder
	exited chan struct{}
	lines  chan string // stdout and stderr lines, for waiting on one
}

func newProc(t testing.TB, name, bin string, env []string, args ...string) *Proc {
	return &Proc{Name: name, t: t, bin: bin, env: env, args: args}
}

// start runs the process; its output is kept for the failure report.
func (p *Proc) start() {
	p.t.Helper()
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("%s: %v", p.Name, err)
	}
	exited := make(chan struct{})
	lines := make(chan string, 1024)
	p.mu.Lock()
	p.cmd, p.exited, p.lines = cmd, exited, lines
	p.mu.Unlock()
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.logs.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			select {
			case lines <- sc.Text():
			default: // nobody waits for lines: keep only the log
			}
		}
	}()
	go func() {
		_ = cmd.Wait()
		pw.Close()
		close(exited)
	}()
}

// waitLine waits for an output line containing s and returns it.
func (p *Proc) waitLine(s string, d time.Duration) string {
	p.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case line := <-p.lines:
			if strings.Contains(line, s) {
				return line
			}
		case <-p.exited:
			p.t.Fatalf("%s exited before printing %q:\n%s", p.Name, s, p.Logs())
		case <-deadline:
			p.t.Fatalf("%s did not print %q in %v:\n%s", p.Name, s, d, p.Logs())
		}
	}
}

// Logs returns everything the process printed.
func (p *Proc) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// Kill ends the process with SIGKILL, as a crash would, and waits for it.
func (p *Proc) Kill() { p.signal(syscall.SIGKILL) }

// Stop ends the process with SIGTERM (a graceful shutdown) and waits.
func (p *Proc) Stop() { p.signal(syscall.SIGTERM) }

func (p *Proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// Running reports whether the process is alive.
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// waitHTTP polls url until it answers 200.
func waitHTTP(t testing.TB, p *Proc, url string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	client := &http.Client{Timeout: time.Second}
	for {
		res, err := client.Get(url)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		if !p.Running() {
			t.Fatalf("%s exited:\n%s", p.Name, p.Logs())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s did not answer 200 in %v (last error %v):\n%s", p.Name, url, d, err, p.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// CPU is the CPU time (user and system) the running process has used, from
// /proc; zero where that cannot be read.
func (p *Proc) CPU() time.Duration {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// The fields after the command's name, which is in parentheses and
	// may hold spaces: utime and stime are the 14th and 15th of the line.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// clockTicks is the kernel's USER_HZ, the unit of /proc's CPU times: 100
// on every Linux architecture Go supports.
const clockTicks = 100
