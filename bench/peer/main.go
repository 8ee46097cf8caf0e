// xds-peer: the reference xDS server of the benchmark (bench/xds/run),
// built on go-control-plane's SnapshotCache and sotw server.
//
// It is fed exactly like sluice-xds: it watches the same sluice_xds
// JetStream KV bucket (docs/xds.md, "KV layout") and, on every commit of
// its proxy, builds a go-control-plane Snapshot from the resources the
// commit names (at the named KV revisions) and sets it for the proxy's
// nodes. Each type gets its own version (a hash of its (name, revision)
// pairs, as sluice-xds does), so a change of one endpoint set only moves
// EDS, the same as in sluice-xds.
//
//	xds-peer --nats-url URL [--listen 127.0.0.1:0] [--bucket sluice_xds] [--proxy gateway-proxy]
//
// Prints "xds-peer listening on port N" on stdout once the initial KV
// values are loaded and the current commit (if any) is served.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"hash/fnv"
	"log"
	"net"
	"os"
	"sort"
	"strings"
	"sync"

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

type commit struct {
	Revision  uint64                       `json:"revision"`
	Resources map[string]map[string]uint64 `json:"resources"`
}

type feeder struct {
	kv      nats.KeyValue
	sc      cache.SnapshotCache
	proxy   string
	ptok    string
	mu      sync.Mutex
	entries map[string]nats.KeyValueEntry
}

// apply serves the commit: every resource at exactly its named revision,
// or the commit is refused and the previous snapshot keeps serving.
func (f *feeder) apply(raw []byte) error {
	var c commit
	if err := json.Unmarshal(raw, &c); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	byType := map[resource.Type][]types.Resource{}
	versions := map[resource.Type]string{}
	for token, names := range c.Resources {
		url, ok := typeURLs[token]
		if !ok {
			return fmt.Errorf("commit: unknown type %q", token)
		}
		keys := make([]string, 0, len(names))
		for n := range names {
			keys = append(keys, n)
		}
		sort.Strings(keys)
		h := fnv.New64a()
		for _, name := range keys {
			rev := names[name]
			key := f.ptok + "." + token + "." + escape(name)
			f.mu.Lock()
			e := f.entries[key]
			f.mu.Unlock()
			if e == nil || e.Revision() != rev {
				var err error
				if e, err = f.kv.GetRevision(key, rev); err != nil {
					return fmt.Errorf("%s at revision %d: %w", key, rev, err)
				}
			}
			m := newMessage(token)
			if err := proto.Unmarshal(e.Value(), m); err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			byType[url] = append(byType[url], m)
			fmt.Fprintf(h, "%s\x00%d\x00", name, rev)
		}
		versions[url] = fmt.Sprintf("%016x", h.Sum64())
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
	flag.Parse()

	nc, err := nats.Connect(*natsURL)
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
		ptok: escape(*proxyName), entries: map[string]nats.KeyValueEntry{}}
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
