package network

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// waitSpare waits for the manager's spare endpoint and returns it.
func waitSpare(t *testing.T, m *Manager, k spareKind, not string) *Attachment {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		m.mu.Lock()
		sp := m.spares[k].att
		m.mu.Unlock()
		if sp != nil && sp.ContainerID != not {
			return sp
		}
	}
	t.Fatal("no spare endpoint made")
	return nil
}

// leasesOf lists the leases (address files of host-local) held by CNI
// container id.
func leasesOf(m *Manager, id string) []string {
	var out []string
	leases, _ := filepath.Glob(filepath.Join(m.ipamDir, "*", "*"))
	for _, l := range leases {
		if b, _ := os.ReadFile(l); strings.HasPrefix(string(b), id) {
			out = append(out, filepath.Base(l))
		}
	}
	return out
}

// TestSpareEndpoint: once a container attached to the default network, a
// spare endpoint is made; the next container that fits takes it (its
// namespace pinned at the container's path, its address, the plugins'
// container ID kept for DEL) and works; one that asks for something of its
// own (a published port, an alias) does not; detaching the taker releases
// what the spare's ADD made; Close detaches the spare, leaving nothing.
func TestSpareEndpoint(t *testing.T) {
	m, _ := openTest(t, func(c *Config) { c.NoSpares = false })
	ctx := context.Background()
	def, _ := m.Default()
	first := strings.Repeat("a1", 32)
	if _, err := m.Attach(ctx, AttachRequest{ContainerID: first, Name: "first", Networks: []EndpointRequest{{Network: "bridge"}}}); err != nil {
		t.Fatal(err)
	}
	sp := waitSpare(t, m, spareEndpoint, "")
	spareID, spareAddr := sp.ContainerID, sp.Endpoints[0].Address.Addr()
	if !IsSpare(spareID) || !fileExists(m.NetNSPath(spareID)) || !fileExists(m.store.attachmentPath(spareID)) || len(leasesOf(m, spareID)) != 1 {
		t.Fatalf("spare %s: netns, record or lease missing (leases %v)", spareID, leasesOf(m, spareID))
	}
	if _, ok := m.Attachment(spareID); ok {
		t.Errorf("the spare is listed as a container's attachment")
	}

	taker := strings.Repeat("b2", 32)
	hosts := filepath.Join(t.TempDir(), "hosts")
	att, err := m.Attach(ctx, AttachRequest{ContainerID: taker, Name: "taker", Hostname: "tk", HostsPath: hosts,
		Networks: []EndpointRequest{{Network: "bridge"}}})
	if err != nil {
		t.Fatal(err)
	}
	if att.CNIContainerID != spareID || att.NetNS != m.NetNSPath(taker) || att.Endpoints[0].Address.Addr() != spareAddr {
		t.Fatalf("the taker did not get the spare: %+v", att)
	}
	if fileExists(m.NetNSPath(spareID)) || fileExists(m.store.attachmentPath(spareID)) || !fileExists(m.store.attachmentPath(taker)) {
		t.Errorf("the spare's pin or record not moved to the taker's")
	}
	if out, err := inNS(att.NetNS, "busybox", "ping", "-c1", "-W2", def.Gateway.String()); err != nil {
		t.Errorf("ping the gateway from the taken spare: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(hosts); !strings.Contains(string(b), spareAddr.String()+"\ttk\n") {
		t.Errorf("hosts:\n%s", b)
	}

	// The next spare; containers asking for their own get none of it.
	next := waitSpare(t, m, spareEndpoint, spareID)
	own := []AttachRequest{
		{ContainerID: strings.Repeat("c3", 32), Name: "alias", Networks: []EndpointRequest{{Network: "bridge", Aliases: []string{"x"}}}},
		{ContainerID: strings.Repeat("d4", 32), Name: "port", Networks: []EndpointRequest{{Network: "bridge"}},
			Ports: []PortSpec{{HostIP: "127.0.0.1", ContainerPort: 80, Protocol: "tcp"}}},
	}
	for _, req := range own {
		a, err := m.Attach(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", req.Name, err)
		}
		if a.CNIContainerID != "" {
			t.Errorf("%s took the spare", req.Name)
		}
		if err := m.Detach(ctx, req.ContainerID); err != nil {
			t.Fatal(err)
		}
	}
	m.mu.Lock()
	still := m.spares[spareEndpoint].att == next
	m.mu.Unlock()
	if !still {
		t.Errorf("the spare changed under containers that did not take it")
	}

	// The taker's detach releases what the spare's ADD made.
	for _, id := range []string{first, taker} {
		if err := m.Detach(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if l := leasesOf(m, spareID); len(l) > 0 {
		t.Errorf("lease of the taken spare left: %v", l)
	}
	assertNoLeftovers(t, m, taker, spareAddr)
	if v := vethsOn(def.Bridge); len(v) != 1 {
		t.Errorf("veths on %s with only the spare attached: %v", def.Bridge, v)
	}

	// Close detaches the spare.
	nextID := next.ContainerID
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if fileExists(m.NetNSPath(nextID)) || fileExists(m.store.attachmentPath(nextID)) || len(leasesOf(m, nextID)) > 0 {
		t.Errorf("spare %s left after Close", nextID)
	}
	if linkExists(def.Bridge) {
		t.Errorf("bridge %s left after Close with only the spare attached", def.Bridge)
	}
}

// TestSpareBare: a container without networks (--network none) gets a
// namespace with lo only; once one did, a bare spare is made, which the
// next such container takes over, and which a container on the default
// network does not; Close removes it.
func TestSpareBare(t *testing.T) {
	m, _ := openTest(t, func(c *Config) { c.NoSpares = false })
	ctx := context.Background()
	first := strings.Repeat("e5", 32)
	if _, err := m.Attach(ctx, AttachRequest{ContainerID: first, Name: "first"}); err != nil {
		t.Fatal(err)
	}
	sp := waitSpare(t, m, spareBare, "")
	spareID := sp.ContainerID
	if len(sp.Endpoints) != 0 || !fileExists(m.NetNSPath(spareID)) || !fileExists(m.store.attachmentPath(spareID)) {
		t.Fatalf("bare spare %+v: pin or record missing, or endpoints", sp)
	}
	// One on the default network makes its own and leaves the bare spare.
	onBridge := strings.Repeat("f6", 32)
	if a, err := m.Attach(ctx, AttachRequest{ContainerID: onBridge, Name: "br", Networks: []EndpointRequest{{Network: "bridge"}}}); err != nil || a.CNIContainerID != "" {
		t.Fatalf("a container on the bridge: %v %+v", err, a)
	}
	taker := strings.Repeat("a7", 32)
	att, err := m.Attach(ctx, AttachRequest{ContainerID: taker, Name: "taker"})
	if err != nil {
		t.Fatal(err)
	}
	if att.CNIContainerID != spareID || att.NetNS != m.NetNSPath(taker) || len(att.Endpoints) != 0 {
		t.Fatalf("the taker did not get the bare spare: %+v", att)
	}
	if fileExists(m.NetNSPath(spareID)) || fileExists(m.store.attachmentPath(spareID)) {
		t.Errorf("the bare spare's pin or record not moved")
	}
	out, err := inNS(att.NetNS, "ip", "-o", "link")
	if err != nil || !strings.Contains(out, "lo: <LOOPBACK,UP") || strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("links of the taken bare spare (want lo only, up): %v\n%s", err, out)
	}
	next := waitSpare(t, m, spareBare, spareID)
	for _, id := range []string{first, onBridge, taker} {
		if err := m.Detach(ctx, id); err != nil {
			t.Fatal(err)
		}
		if fileExists(m.NetNSPath(id)) || fileExists(m.store.attachmentPath(id)) {
			t.Errorf("%s: pin or record left after Detach", id)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if fileExists(m.NetNSPath(next.ContainerID)) || fileExists(m.store.attachmentPath(next.ContainerID)) {
		t.Errorf("bare spare %s left after Close", next.ContainerID)
	}
}

// socketIn opens a TCP socket in the namespace pinned at path and returns
// its descriptor (a thread enters the namespace and is left to die).
func socketIn(t *testing.T, path string) int {
	t.Helper()
	fdc := make(chan int, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		f, err := os.Open(path)
		if err == nil {
			err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
			f.Close()
		}
		fd := -1
		if err == nil {
			fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		}
		if err != nil {
			t.Error(err)
		}
		fdc <- fd
	}()
	return <-fdc
}

// TestRecycle: a plain attachment detached with reuse becomes the spare
// of its kind (its namespace, address and lease, still under the ADD's
// container ID) when that is missing, and the next container takes it and
// works; one with a socket left in its namespace, one that is not plain
// (an alias) or one detached without reuse is undone as before; a
// namespace with lo only becomes the bare spare.
func TestRecycle(t *testing.T) {
	m, _ := openTest(t, func(c *Config) { c.NoSpares = false })
	ctx := context.Background()
	def, _ := m.Default()
	attach := func(id string, nets ...EndpointRequest) Attachment {
		t.Helper()
		a, err := m.Attach(ctx, AttachRequest{ContainerID: id, Name: "c" + id[:4], Networks: nets})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	detach := func(id string, reuse bool) {
		t.Helper()
		if done := m.DetachInBackground(ctx, id, reuse); done != nil {
			<-done
		}
	}
	spareNow := func(k spareKind) *Attachment {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.spares[k].att
	}
	bridge := EndpointRequest{Network: "bridge"}

	first := strings.Repeat("a1", 32)
	attach(first, bridge)
	sp := waitSpare(t, m, spareEndpoint, "")
	spareID, addr := sp.ContainerID, sp.Endpoints[0].Address.Addr()
	taker := strings.Repeat("b2", 32)
	if a := attach(taker, bridge); a.CNIContainerID != spareID {
		t.Fatalf("the spare was not taken: %+v", a)
	}
	detach(taker, true) // before the next spare's making
	got := spareNow(spareEndpoint)
	if got == nil || got.ContainerID != spareID || got.CNIContainerID != "" || got.Endpoints[0].Address.Addr() != addr {
		t.Fatalf("the detached namespace is not the spare again: %+v", got)
	}
	if !fileExists(m.NetNSPath(spareID)) || !fileExists(m.store.attachmentPath(spareID)) || len(leasesOf(m, spareID)) != 1 {
		t.Errorf("recycled spare: pin, record or lease missing (leases %v)", leasesOf(m, spareID))
	}
	if fileExists(m.NetNSPath(taker)) || fileExists(m.store.attachmentPath(taker)) {
		t.Errorf("the detached container's pin or record left")
	}
	if _, ok := m.Attachment(taker); ok {
		t.Errorf("the detached container still has an attachment")
	}

	// The next container gets it, and it works.
	second := strings.Repeat("c3", 32)
	a := attach(second, bridge)
	if a.CNIContainerID != spareID || a.Endpoints[0].Address.Addr() != addr {
		t.Fatalf("the recycled spare was not taken: %+v", a)
	}
	if out, err := inNS(a.NetNS, "busybox", "ping", "-c1", "-W2", def.Gateway.String()); err != nil {
		t.Errorf("ping the gateway from a recycled namespace: %v\n%s", err, out)
	}
	// A socket left in it: not reused, undone.
	fd := socketIn(t, a.NetNS)
	detach(second, true)
	unix.Close(fd)
	if sp := spareNow(spareEndpoint); sp != nil && sp.ContainerID == spareID {
		t.Errorf("a namespace with a socket became the spare")
	}
	assertNoLeftovers(t, m, second, addr)
	if l := leasesOf(m, spareID); len(l) > 0 {
		t.Errorf("lease of the undone namespace left: %v", l)
	}

	// Not plain, or no reuse: undone, the slot left to the making.
	nextID := waitSpare(t, m, spareEndpoint, "").ContainerID
	// An alias: the attach does not take the spare, which stays.
	aliased := strings.Repeat("d4", 32)
	a = attach(aliased, EndpointRequest{Network: "bridge", Aliases: []string{"x"}})
	detach(aliased, true)
	assertNoLeftovers(t, m, aliased, a.Endpoints[0].Address.Addr())
	if sp := spareNow(spareEndpoint); sp == nil || sp.ContainerID != nextID {
		t.Errorf("an aliased container: the spare is %+v, want %s still", sp, nextID)
	}
	// No reuse: the spare it took is not the spare again (the spare
	// there afterwards, if any, is one made since, under an ID of its own).
	unreused := strings.Repeat("e5", 32)
	if a = attach(unreused, bridge); a.CNIContainerID != nextID {
		t.Fatalf("the spare %s was not taken: %+v", nextID, a)
	}
	detach(unreused, false)
	assertNoLeftovers(t, m, unreused, a.Endpoints[0].Address.Addr())
	if sp := spareNow(spareEndpoint); sp != nil && sp.ContainerID == nextID {
		t.Errorf("a detach without reuse: its namespace became the spare")
	}

	// Bare: a namespace with lo only.
	none := strings.Repeat("f6", 32)
	attach(none)
	bareID := waitSpare(t, m, spareBare, "").ContainerID // the taker changes it
	none2 := strings.Repeat("a7", 32)
	if a := attach(none2); a.CNIContainerID != bareID {
		t.Fatalf("the bare spare was not taken: %+v", a)
	}
	detach(none2, true)
	if sp := spareNow(spareBare); sp == nil || sp.ContainerID != bareID || !fileExists(m.NetNSPath(bareID)) {
		t.Errorf("the bare namespace is not the spare again: %+v", sp)
	}
	for _, id := range []string{first, none} {
		detach(id, false)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(netnsDir(m.cfg.ExecRoot)); len(ents) > 0 {
		t.Errorf("pins left after Close: %v", ents)
	}
}

func TestParseSockstat(t *testing.T) {
	for _, c := range []struct {
		in       string
		used, tw int
		bad      bool
	}{
		{"sockets: used 0\nTCP: inuse 0 orphan 0 tw 0 alloc 1 mem 145\nUDP: inuse 0 mem 0\n", 0, 0, false},
		{"sockets: used 3\nTCP: inuse 1 orphan 0 tw 2 alloc 1 mem 145\n", 3, 2, false},
		{"sockets: used 0\n", 0, 0, true},
		{"sockets: used x\nTCP: inuse 0 orphan 0 tw 0 alloc 1 mem 145\n", 0, 0, true},
	} {
		used, tw, err := parseSockstat(c.in)
		if used != c.used || tw != c.tw || (err != nil) != c.bad {
			t.Errorf("%q: used %d, tw %d, err %v", c.in, used, tw, err)
		}
	}
}
