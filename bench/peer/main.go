// xds-peer: the reference xDS server of the benchmark (bench/xds/run),
// built on go-control-plane's SnapshotCache and sotw server.
//
// It is fed exactly like sluice-xds: it watches the same sluice_xds
// JetStream KV bucket (docs/xds.md, "KV layout") and, on every commit of
// its proxy, builds a go-control-plane Snapshot from the resources the
// commit names (at the named KV revisions) and sets it for the proxy's
// nodes. Each type gets its own version (a hash of its (name, revision)
// pairs, as sluice-xds does), so a change of one endpoint set only moves
// EDS, the same as in sluice-xds. Decoded resources are kept by KV key and
// revision (a route in parts by its parts' revisions), so a commit decodes
// only what changed, as sluice-xds parses only what changed.
//
//	xds-peer --nats-url URL [--listen 127.0.0.1:0] [--bucket sluice_xds] [--proxy gateway-proxy]
//	         [--nats-seed FILE] [--nats-name NAME]
//
// With authentication on (SLUICE_NATS_AUTH_DIR, as the test harness sets
// it), it connects as sluice-xds does: the xds role's seed and connection
// name, replies on _INBOX_<name>. SIGUSR1 runs a garbage collection and
// returns freed memory to the OS (debug.FreeOSMemory), so the benchmark
// samples its RSS after the same clean-up sluice-xds does when idle
// (malloc_trim). Prints "xds-peer listening on port N" on stdout once the
// initial KV values are loaded and the current commit (if any) is served.
package main

import (
	"context"
	"flag"
	"fmt"
	"hash"
	"hash/fnv"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tls "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Every node is served the one proxy's snapshot (the generator's nodes
// carry no role, so sluice-xds serves them its default proxy too).
type oneProxy struct{ proxy string }

func (h oneProxy) ID(*core.Node) string { return h.proxy }

var typeURLs = map[string]string{
	"listener": resource.ListenerType,
	"route":    resource.RouteType,
	"cluster":  resource.ClusterType,
	"endpoint": resource.EndpointType,
	"secret":   resource.SecretType,
}

func newMessage(token string) proto.Message {
	switch token {
	case "listener":
		return &listener.Listener{}
	case "route":
		return &route.RouteConfiguration{}
	case "cluster":
		return &cluster.Cluster{}
	case "endpoint":
		return &endpoint.ClusterLoadAssignment{}
	case "secret":
		return &tls.Secret{}
	}
	return nil
}

// escape is sl_xds_key_escape: [-_a-zA-Z0-9] stay, other bytes become =XX.
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '-' || c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "=%02X", c)
		}
	}
	return b.String()
}

// The commit and manifest chunks (proto/sluice/v1/xds.proto), decoded with
// protowire: this module does not generate Sluice's own protos.
type chunkRef struct {
	typ, id string
	rev     uint64
}

type entry struct {
	name  string
	rev   uint64
	parts uint64
}

// fields calls fn for every top-level field of a protobuf message.
func fields(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte, n uint64) error) error {
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return protowire.ParseError(l)
		}
		b = b[l:]
		var v []byte
		var n uint64
		switch typ {
		case protowire.VarintType:
			n, l = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			v, l = protowire.ConsumeBytes(b)
		default:
			l = protowire.ConsumeFieldValue(num, typ, b)
		}
		if l < 0 {
			return protowire.ParseError(l)
		}
		b = b[l:]
		if err := fn(num, typ, v, n); err != nil {
			return err
		}
	}
	return nil
}

func parseCommit(b []byte) (rev uint64, refs []chunkRef, err error) {
	err = fields(b, func(num protowire.Number, _ protowire.Type, v []byte, n uint64) error {
		switch num {
		case 1:
			rev = n
		case 2:
			var r chunkRef
			if err := fields(v, func(num protowire.Number, _ protowire.Type, v []byte, n uint64) error {
				switch num {
				case 1:
					r.typ = string(v)
				case 2:
					r.id = string(v)
				case 3:
					r.rev = n
				}
				return nil
			}); err != nil {
				return err
			}
			refs = append(refs, r)
		}
		return nil
	})
	return
}

func parseManifest(b []byte) (es []entry, err error) {
	err = fields(b, func(num protowire.Number, _ protowire.Type, v []byte, _ uint64) error {
		if num != 1 {
			return nil
		}
		var e entry
		if err := fields(v, func(num protowire.Number, _ protowire.Type, v []byte, n uint64) error {
			switch num {
			case 1:
				e.name = string(v)
			case 2:
				e.rev = n
			case 3:
				e.parts = n
			}
			return nil
		}); err != nil {
			return err
		}
		es = append(es, e)
		return nil
	})
	return
}

// decoded is a resource decoded at one revision (sig: its revision, or
// for a route in parts the revisions of its head and parts).
type decoded struct {
	sig string
	msg proto.Message
}

type feeder struct {
	kv      nats.KeyValue
	sc      cache.SnapshotCache
	proxy   string
	ptok    string
	mu      sync.Mutex
	entries map[string]nats.KeyValueEntry
	decoded map[string]decoded // by KV key; only apply() touches it
}

// decode is the message of type token in v, or the one decoded before
// under the same key and sig.
func (f *feeder) decode(key, sig, token string, v func() ([]byte, error)) (proto.Message, error) {
	if d, ok := f.decoded[key]; ok && d.sig == sig {
		return d.msg, nil
	}
	b, err := v()
	if err != nil {
		return nil, err
	}
	m := newMessage(token)
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	f.decoded[key] = decoded{sig, m}
	return m, nil
}

// get is key's value at exactly rev: from the watch, or the bucket's history.
func (f *feeder) get(key string, rev uint64) ([]byte, error) {
	f.mu.Lock()
	e := f.entries[key]
	f.mu.Unlock()
	if e == nil || e.Revision() != rev {
		var err error
		if e, err = f.kv.GetRevision(key, rev); err != nil {
			return nil, fmt.Errorf("%s at revision %d: %w", key, rev, err)
		}
	}
	return e.Value(), nil
}

// apply serves the commit: every resource at exactly its named revision,
// or the commit is refused and the previous snapshot keeps serving.
func (f *feeder) apply(raw []byte) error {
	_, refs, err := parseCommit(raw)
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	byType := map[resource.Type][]types.Resource{}
	versions := map[resource.Type]string{}
	hashes := map[string]hash.Hash64{}
	seen := map[string]bool{}
	// The entries of each type, its manifest chunks joined in order (a
	// route's parts may continue in the next chunk).
	var order []string
	byTok := map[string][]entry{}
	for _, ref := range refs {
		if _, ok := typeURLs[ref.typ]; !ok {
			return fmt.Errorf("commit: unknown type %q", ref.typ)
		}
		mkey := f.ptok + ".manifest." + ref.typ + "." + ref.id
		mv, err := f.get(mkey, ref.rev)
		if err != nil {
			return err
		}
		es, err := parseManifest(mv)
		if err != nil {
			return fmt.Errorf("%s: %w", mkey, err)
		}
		if _, ok := byTok[ref.typ]; !ok {
			order = append(order, ref.typ)
		}
		byTok[ref.typ] = append(byTok[ref.typ], es...)
	}
	for _, tok := range order {
		url, es := typeURLs[tok], byTok[tok]
		ref := chunkRef{typ: tok}
		h := fnv.New64a()
		hashes[tok] = h
		for i := 0; i < len(es); i++ {
			e := es[i]
			key := f.ptok + "." + ref.typ + "." + escape(e.name)
			fmt.Fprintf(h, "%s\x00%d\x00", e.name, e.rev)
			sig := fmt.Sprint(e.rev)
			var parts []entry
			if e.parts > 0 { // a route in parts: the next e.parts entries are its virtual hosts
				if uint64(len(es)-i-1) < e.parts {
					return fmt.Errorf("commit: route %s lacks parts", e.name)
				}
				parts = es[i+1 : i+1+int(e.parts)]
				i += int(e.parts)
				for _, p := range parts {
					fmt.Fprintf(h, "%s\x00%d\x00", p.name, p.rev)
					sig += fmt.Sprintf(",%s@%d", p.name, p.rev)
				}
			}
			seen[key] = true
			m, err := f.decode(key, sig, ref.typ, func() ([]byte, error) {
				v, err := f.get(key, e.rev)
				if err != nil || len(parts) == 0 {
					return v, err
				}
				whole := append([]byte(nil), v...)
				for _, p := range parts {
					pv, err := f.get(f.ptok+".vhost."+escape(e.name)+"."+escape(p.name), p.rev)
					if err != nil {
						return nil, err
					}
					whole = protowire.AppendTag(whole, 2, protowire.BytesType)
					whole = protowire.AppendBytes(whole, pv)
				}
				return whole, nil
			})
			if err != nil {
				return fmt.Errorf("%s %s: %w", ref.typ, e.name, err)
			}
			byType[url] = append(byType[url], m)
		}
	}
	for k := range f.decoded { // what the commit no longer names
		if !seen[k] {
			delete(f.decoded, k)
		}
	}
	for token, h := range hashes {
		versions[typeURLs[token]] = fmt.Sprintf("%016x", h.Sum64())
	}
	snap, err := cache.NewSnapshot("", byType)
	if err != nil {
		return err
	}
	for url, v := range versions {
		snap.Resources[cache.GetResponseType(url)].Version = v
	}
	return f.sc.SetSnapshot(context.Background(), f.proxy, snap)
}

func main() {
	natsURL := flag.String("nats-url", "nats://127.0.0.1:4222", "NATS server")
	listen := flag.String("listen", "127.0.0.1:0", "gRPC listen address")
	bucket := flag.String("bucket", "sluice_xds", "xds KV bucket")
	proxyName := flag.String("proxy", "gateway-proxy", "proxy to serve")
	seed := flag.String("nats-seed", "", "NATS user seed (default: $SLUICE_NATS_AUTH_DIR/xds.nk when set)")
	name := flag.String("nats-name", "sluice-xds", "NATS connection name (replies on _INBOX_<name>)")
	flag.Parse()

	opts := []nats.Option{nats.Name(*name)}
	if *seed == "" && os.Getenv("SLUICE_NATS_AUTH_DIR") != "" {
		*seed = filepath.Join(os.Getenv("SLUICE_NATS_AUTH_DIR"), "xds.nk")
	}
	if *seed != "" {
		o, err := nats.NkeyOptionFromSeed(*seed)
		if err != nil {
			log.Fatalf("nats seed: %v", err)
		}
		opts = append(opts, o, nats.CustomInboxPrefix("_INBOX_"+*name))
	}
	// The benchmark samples RSS after SIGUSR1: a collection, freed memory
	// returned to the OS.
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		for range usr1 {
			runtime.GC()
			debug.FreeOSMemory()
		}
	}()

	nc, err := nats.Connect(*natsURL, opts...)
	if err != nil {
		log.Fatalf("nats: %v", err)
	}
	js, err := nc.JetStream()
	if err != nil {
		log.Fatalf("jetstream: %v", err)
	}
	kv, err := js.KeyValue(*bucket)
	if err != nil {
		log.Fatalf("kv %s: %v", *bucket, err)
	}
	f := &feeder{kv: kv, sc: cache.NewSnapshotCache(false, oneProxy{*proxyName}, nil), proxy: *proxyName,
		ptok: escape(*proxyName), entries: map[string]nats.KeyValueEntry{}, decoded: map[string]decoded{}}
	w, err := kv.Watch(f.ptok + ".>")
	if err != nil {
		log.Fatalf("watch: %v", err)
	}
	ready := make(chan struct{})
	go func() {
		initial := true
		for e := range w.Updates() {
			if e == nil { // end of the initial values
				f.mu.Lock()
				c := f.entries[f.ptok+".commit"]
				f.mu.Unlock()
				if c != nil {
					if err := f.apply(c.Value()); err != nil {
						log.Printf("commit refused: %v", err)
					}
				}
				initial = false
				close(ready)
				continue
			}
			f.mu.Lock()
			if e.Operation() == nats.KeyValuePut {
				f.entries[e.Key()] = e
			}
			f.mu.Unlock()
			if !initial && e.Key() == f.ptok+".commit" && e.Operation() == nats.KeyValuePut {
				if err := f.apply(e.Value()); err != nil {
					log.Printf("commit refused: %v", err)
				}
			}
		}
	}()
	<-ready

	srv := server.NewServer(context.Background(), f.sc, nil)
	g := grpc.NewServer(grpc.MaxConcurrentStreams(1 << 20))
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(g, srv)
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	fmt.Printf("xds-peer listening on port %d\n", lis.Addr().(*net.TCPAddr).Port)
	os.Stdout.Sync()
	if err := g.Serve(lis); err != nil {
		log.Fatalf("serve: %v", err)
	}
}
