package cluster

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/switchboard-dev/switchboard/internal/certs"
	"github.com/switchboard-dev/switchboard/internal/poll"
)

// The sender is this test binary run again as a separate process (a real
// outsider with its own actor system) that sends actor messages to the
// nodes of a test. TestMain runs it instead of the tests when
// SENDER_MODE is set.
const (
	envMode    = "SENDER_MODE" // plaintext, nocert, or tls (with SENDER_CERT/KEY)
	envTargets = "SENDER_TARGETS"
	envCA      = "SENDER_CA" // the CA the sender trusts for the server
	envCert    = "SENDER_CERT"
	envKey     = "SENDER_KEY"
)

func TestMain(m *testing.M) {
	if os.Getenv(envMode) != "" {
		os.Exit(senderMain())
	}
	os.Exit(m.Run())
}

// senderMain sends one message to the recorder of every target, reports on
// stdout whether its connection to each was established ("connected") or
// given up ("terminated"), then stays up until stdin closes so nothing it
// sent is cut off by its exit.
func senderMain() int {
	targets := strings.Split(os.Getenv(envTargets), ",")
	cfg := remote.Configure("127.0.0.1", 0)
	cfg.MaxRetryCount = 1 // one refused connection is the answer; do not wait out retries
	if mode := os.Getenv(envMode); mode != "plaintext" {
		pool := x509.NewCertPool()
		caPEM, err := os.ReadFile(os.Getenv(envCA))
		if err != nil || !pool.AppendCertsFromPEM(caPEM) {
			fmt.Fprintln(os.Stderr, "sender: CA:", err)
			return 2
		}
		tc := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool}
		if mode == "tls" {
			cert, err := tls.LoadX509KeyPair(os.Getenv(envCert), os.Getenv(envKey))
			if err != nil {
				fmt.Fprintln(os.Stderr, "sender: certificate:", err)
				return 2
			}
			tc.GetClientCertificate = presentAnyway(cert)
		}
		cfg.DialOptions = []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(tc))}
	}
	system := actor.NewActorSystem()
	results := make(chan string, 2*len(targets))
	system.EventStream.Subscribe(func(ev any) {
		switch e := ev.(type) {
		case *remote.EndpointConnectedEvent:
			results <- e.Address + " connected"
		case *remote.EndpointTerminatedEvent:
			results <- e.Address + " terminated"
		}
	})
	r := remote.NewRemote(system, cfg)
	r.Start()
	for _, t := range targets {
		system.Root.Send(actor.NewPID(t, "recorder"), wrapperspb.String("from outside"))
	}
	seen := map[string]bool{}
	timeout := time.After(30 * time.Second)
	for len(seen) < len(targets) {
		select {
		case res := <-results:
			addr, _, _ := strings.Cut(res, " ")
			if !seen[addr] {
				seen[addr] = true
				fmt.Println(res)
			}
		case <-timeout:
			fmt.Fprintln(os.Stderr, "sender: no outcome for every target within 30s")
			return 1
		}
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	r.Shutdown(false)
	return 0
}

// presentAnyway makes a TLS client send cert even when the server asks for
// another CA's: with Certificates alone, Go sends no certificate at all then,
// and a foreign certificate would never reach the server.
func presentAnyway(cert tls.Certificate) func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
}

// sender is a running sender process.
type sender struct {
	stdin    io.WriteCloser
	outcomes map[string]string
	cmd      *exec.Cmd
}

// runSender starts a sender process against targets and waits for its
// outcome at each; close it with stop.
func runSender(t *testing.T, env []string, targets ...string) *sender {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append(env, envTargets+"="+strings.Join(targets, ","))...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &sender{stdin: stdin, outcomes: map[string]string{}, cmd: cmd}
	t.Cleanup(s.stop)
	sc := bufio.NewScanner(stdout)
	for len(s.outcomes) < len(targets) && sc.Scan() {
		addr, outcome, _ := strings.Cut(sc.Text(), " ")
		s.outcomes[addr] = outcome
	}
	if len(s.outcomes) < len(targets) {
		t.Fatalf("sender process gave outcomes %v for targets %v", s.outcomes, targets)
	}
	return s
}

func (s *sender) stop() {
	_ = s.stdin.Close()
	_ = s.cmd.Wait()
}

// recorder counts what arrives at a named actor "recorder" of a node.
func recorder(t *testing.T, system *actor.ActorSystem) *atomic.Int64 {
	t.Helper()
	var n atomic.Int64
	props := actor.PropsFromFunc(func(ctx actor.Context) {
		if _, ok := ctx.Message().(*wrapperspb.StringValue); ok {
			n.Add(1)
		}
	})
	if _, err := system.Root.SpawnNamed(props, "recorder"); err != nil {
		t.Fatal(err)
	}
	return &n
}

// memberFiles issues a certificate of ca for 127.0.0.1 into dir.
func memberFiles(t *testing.T, ca *certs.CA, dir, name string) TLSFiles {
	t.Helper()
	p, err := ca.Issue(name, []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f := TLSFiles{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+"-key.pem")}
	for path, b := range map[string][]byte{f.CA: ca.CertPEM, f.Cert: p.CertPEM, f.Key: p.KeyPEM} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func newCA(t *testing.T, name string) *certs.CA {
	t.Helper()
	ca, err := certs.NewCA(name, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func loadTLS(t *testing.T, f TLSFiles) *MutualTLS {
	t.Helper()
	m, err := LoadMutualTLS(f)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Two members with certificates of the cluster CA form a cluster over
// automanaged and pass actor messages; a process with no certificate, with
// TLS but no certificate, or with a certificate of a foreign CA delivers
// nothing to either, and the members refused its handshakes. The same
// sender with a member's certificate does deliver: the harness can see a
// message that gets through.
func TestMutualTLSKeepsOutsidersOut(t *testing.T) {
	ca, foreign := newCA(t, "cluster CA"), newCA(t, "foreign CA")
	dir := t.TempDir()
	pa, pb := freePort(t), freePort(t)
	seeds := []string{fmt.Sprintf("127.0.0.1:%d", pa), fmt.Sprintf("127.0.0.1:%d", pb)}
	a := startNode(t, Config{Provider: ProviderAutomanaged, AutomanagedPort: pa, Seeds: seeds, TLS: loadTLS(t, memberFiles(t, ca, dir, "a"))})
	b := startNode(t, Config{Provider: ProviderAutomanaged, AutomanagedPort: pb, Seeds: seeds, TLS: loadTLS(t, memberFiles(t, ca, dir, "b"))})
	awaitMembers(t, 2, a, b)
	crossNode(t, a, b)
	gotA, gotB := recorder(t, a.System), recorder(t, b.System)

	outsider := memberFiles(t, foreign, t.TempDir(), "outsider")
	member := memberFiles(t, ca, t.TempDir(), "third")
	for _, c := range []struct {
		name string
		env  []string
	}{
		{"no TLS at all", []string{envMode + "=plaintext"}},
		{"TLS without a certificate", []string{envMode + "=nocert", envCA + "=" + member.CA}},
		{"certificate of a foreign CA", []string{envMode + "=tls", envCA + "=" + member.CA, envCert + "=" + outsider.Cert, envKey + "=" + outsider.Key}},
	} {
		t.Run(c.name, func(t *testing.T) {
			refusedA, refusedB := a.RefusedConnections(), b.RefusedConnections()
			s := runSender(t, c.env, a.Address(), b.Address())
			for addr, outcome := range s.outcomes {
				if outcome != "terminated" {
					t.Errorf("the sender's connection to %s: %s, want terminated", addr, outcome)
				}
			}
			poll.Until(t, 10*time.Second, "both members to have refused a handshake", func() bool {
				return a.RefusedConnections() > refusedA && b.RefusedConnections() > refusedB
			})
			s.stop()
			if n, m := gotA.Load(), gotB.Load(); n != 0 || m != 0 {
				t.Fatalf("messages from the sender arrived: %d at a, %d at b", n, m)
			}
		})
	}

	t.Run("control: a certificate of the cluster CA", func(t *testing.T) {
		s := runSender(t, []string{envMode + "=tls", envCA + "=" + member.CA, envCert + "=" + member.Cert, envKey + "=" + member.Key}, a.Address(), b.Address())
		for addr, outcome := range s.outcomes {
			if outcome != "connected" {
				t.Errorf("the sender's connection to %s: %s, want connected", addr, outcome)
			}
		}
		poll.Until(t, 10*time.Second, "the member's messages to arrive", func() bool {
			return gotA.Load() == 1 && gotB.Load() == 1
		})
	})
}

// A member dials only servers the cluster CA vouches for: a server with a
// foreign certificate, even one that would accept the member, receives
// nothing from it.
func TestMemberRefusesAServerWithAForeignCertificate(t *testing.T) {
	ca, foreign := newCA(t, "cluster CA"), newCA(t, "foreign CA")
	a := startNode(t, Config{Provider: ProviderSingle, TLS: loadTLS(t, memberFiles(t, ca, t.TempDir(), "a"))})

	// The impostor trusts the cluster CA for its clients but presents a
	// certificate of its own CA.
	imp := memberFiles(t, foreign, t.TempDir(), "impostor")
	cert, err := tls.LoadX509KeyPair(imp.Cert, imp.Key)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	serverTLS := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	impSystem := actor.NewActorSystem()
	impRemote := remote.NewRemote(impSystem, remote.Configure("127.0.0.1", 0, remote.WithServerOptions(grpc.Creds(credentials.NewTLS(serverTLS)))))
	impRemote.Start()
	t.Cleanup(func() { impRemote.Shutdown(false) })
	got := recorder(t, impSystem)

	outcome := make(chan any, 2)
	sub := a.System.EventStream.Subscribe(func(ev any) {
		switch e := ev.(type) {
		case *remote.EndpointConnectedEvent:
			if e.Address == impSystem.Address() {
				outcome <- e
			}
		case *remote.EndpointTerminatedEvent:
			if e.Address == impSystem.Address() {
				outcome <- e
			}
		}
	})
	defer a.System.EventStream.Unsubscribe(sub)
	a.System.Root.Send(actor.NewPID(impSystem.Address(), "recorder"), wrapperspb.String("secret"))
	// The library tries five times, two seconds apart, before giving up.
	select {
	case ev := <-outcome:
		if _, ok := ev.(*remote.EndpointTerminatedEvent); !ok {
			t.Fatalf("the member connected to the impostor: %T", ev)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the member neither connected to the impostor nor gave up within 30s")
	}
	if n := got.Load(); n != 0 {
		t.Fatalf("the impostor received %d messages", n)
	}
}

// The automanaged membership endpoint answers members only.
func TestAutomanagedEndpointServesMembersOnly(t *testing.T) {
	ca, foreign := newCA(t, "cluster CA"), newCA(t, "foreign CA")
	dir := t.TempDir()
	port := freePort(t)
	files := memberFiles(t, ca, dir, "a")
	mtls := loadTLS(t, files)
	startNode(t, Config{Provider: ProviderAutomanaged, AutomanagedPort: port, Seeds: []string{fmt.Sprintf("127.0.0.1:%d", port)}, TLS: mtls})
	url := fmt.Sprintf("https://127.0.0.1:%d/_health", port)

	get := func(tc *tls.Config, url string) error {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
		res, err := c.Get(url)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", res.StatusCode)
		}
		return nil
	}
	if err := get(mtls.ClientConfig("127.0.0.1"), url); err != nil {
		t.Fatalf("a member cannot read the membership endpoint: %v", err)
	}
	x := memberFiles(t, foreign, t.TempDir(), "x")
	xCert, err := tls.LoadX509KeyPair(x.Cert, x.Key)
	if err != nil {
		t.Fatal(err)
	}
	foreignTLS := mtls.ClientConfig("127.0.0.1") // trusts the server; only the client is foreign
	foreignTLS.Certificates, foreignTLS.GetClientCertificate = nil, presentAnyway(xCert)
	noCert := mtls.ClientConfig("127.0.0.1")
	noCert.Certificates = nil
	for name, tc := range map[string]*tls.Config{"no certificate": noCert, "foreign certificate": foreignTLS} {
		if err := get(tc, url); err == nil {
			t.Errorf("%s: the membership endpoint answered", name)
		}
	}
	if err := get(nil, strings.Replace(url, "https", "http", 1)); err == nil {
		t.Error("the membership endpoint answered plain HTTP")
	}
}

func TestLoadMutualTLSRejectsACertificateOfAnotherCA(t *testing.T) {
	ca, foreign := newCA(t, "cluster CA"), newCA(t, "foreign CA")
	f := memberFiles(t, foreign, t.TempDir(), "x")
	if err := os.WriteFile(f.CA, ca.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadMutualTLS(f); err == nil {
		t.Fatal("a node certificate of a foreign CA was accepted")
	}
	if _, err := LoadMutualTLS(TLSFiles{CA: f.CA, Cert: f.Cert, Key: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Fatal("a missing key was accepted")
	}
}
