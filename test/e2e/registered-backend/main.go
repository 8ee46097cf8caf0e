// registered-backend: a gRPC back-end that registers itself in etcd the way
// gRPC-Go services do (go.etcd.io/etcd/client/v3/naming/endpoints: key
// "<service>/<addr>" under a lease kept alive), for the end-to-end discovery
// test. It answers every method with WhoReply{backend: -name} (the echo
// service of test/conformance/echo.proto).
//
// On SIGTERM it deregisters gracefully: the key is deleted, calls are still
// answered for -drain (time for the control plane to move clients away),
// then the server stops gracefully. Killed with SIGKILL, its lease expires
// after -ttl and etcd deletes the key.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/naming/endpoints"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
)

// rawCodec passes bytes through: the request is ignored, the reply is made here.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

var _ encoding.Codec = rawCodec{}

func main() {
	name := flag.String("name", "", "the name the back-end answers with")
	listen := flag.String("listen", "127.0.0.1:0", "address to serve gRPC on")
	etcd := flag.String("etcd", "", "etcd endpoint (host:port); empty: do not register")
	service := flag.String("service", "", "the service's key prefix in etcd (e.g. services/echo)")
	metadata := flag.String("metadata", "", "JSON Metadata to register with (e.g. {\"weight\":2})")
	ttl := flag.Int64("ttl", 2, "lease TTL in seconds")
	drain := flag.Duration("drain", 3*time.Second, "how long calls are still answered after deregistering")
	flag.Parse()
	if *name == "" || len(*name) > 100 {
		fmt.Fprintln(os.Stderr, "registered-backend: -name is required (at most 100 bytes)")
		os.Exit(2)
	}

	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}
	reply := append([]byte{0x0a, byte(len(*name))}, *name...)
	srv := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}),
		grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
			req := []byte{}
			if err := stream.RecvMsg(&req); err != nil {
				return err
			}
			out := reply
			return stream.SendMsg(&out)
		}))
	go func() { _ = srv.Serve(lis) }()
	addr := lis.Addr().String()

	var cli *clientv3.Client
	var em endpoints.Manager
	key := *service + "/" + addr
	if *etcd != "" {
		cli, err = clientv3.New(clientv3.Config{Endpoints: []string{*etcd}, DialTimeout: 5 * time.Second})
		if err == nil {
			em, err = endpoints.NewManager(cli, *service)
		}
		var lease *clientv3.LeaseGrantResponse
		if err == nil {
			lease, err = cli.Grant(context.Background(), *ttl)
		}
		if err == nil {
			var md any
			if *metadata != "" {
				err = json.Unmarshal([]byte(*metadata), &md)
			}
			if err == nil {
				err = em.AddEndpoint(context.Background(), key, endpoints.Endpoint{Addr: addr, Metadata: md},
					clientv3.WithLease(lease.ID))
			}
		}
		if err == nil {
			var ka <-chan *clientv3.LeaseKeepAliveResponse
			ka, err = cli.KeepAlive(context.Background(), lease.ID)
			go func() {
				for range ka {
				}
			}()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "register:", err)
			os.Exit(1)
		}
	}
	// The test reads the address from this line.
	fmt.Printf("serving %s\n", addr)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	if em != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := em.DeleteEndpoint(ctx, key); err != nil {
			fmt.Fprintln(os.Stderr, "deregister:", err)
		}
		cancel()
		time.Sleep(*drain)
		cli.Close()
	}
	srv.GracefulStop()
}
