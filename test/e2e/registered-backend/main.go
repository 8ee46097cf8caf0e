// registered-backend: a gRPC back-end that registers itself in etcd the way
// gRPC-Go services do (go.etcd.io/etcd/client/v3/naming/endpoints: key
// "<service>/<addr>" under a lease kept alive), for the end-to-end discovery
// test. It answers every method with WhoReply{backend: -name} (the echo
// service of test/conformance/echo.proto).
//
// With -reflection it serves gRPC server reflection (grpc-go's reflection
// package) describing sluice.test.Echo, for function discovery.
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
	"google.golang.org/grpc/reflection"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The reply WhoReply{backend: name} is field 1, a string: what
// google.protobuf.StringValue is on the wire; the request (WhoRequest, empty)
// decodes as Empty. So the server needs no generated code and keeps grpc-go's
// own codec (which its reflection service needs too).

// registerEcho describes sluice.test.Echo (test/conformance/echo.proto)
// in the global registry, where grpc-go's reflection looks symbols up, and
// serves it on srv: Who answers name.
func registerEcho(srv *grpc.Server, name string) error {
	str := descriptorpb.FieldDescriptorProto_TYPE_STRING
	opt := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL
	fdp := &descriptorpb.FileDescriptorProto{
		Name: proto.String("sluice/test/echo.proto"), Package: proto.String("sluice.test"),
		Syntax: proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("WhoRequest")},
			{Name: proto.String("WhoReply"), Field: []*descriptorpb.FieldDescriptorProto{{
				Name: proto.String("backend"), Number: proto.Int32(1), Type: &str, Label: &opt,
				JsonName: proto.String("backend")}}},
		},
		Service: []*descriptorpb.ServiceDescriptorProto{{Name: proto.String("Echo"),
			Method: []*descriptorpb.MethodDescriptorProto{{Name: proto.String("Who"),
				InputType: proto.String(".sluice.test.WhoRequest"), OutputType: proto.String(".sluice.test.WhoReply")}}}},
	}
	fd, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
	if err == nil {
		err = protoregistry.GlobalFiles.RegisterFile(fd)
	}
	if err != nil {
		return err
	}
	srv.RegisterService(&grpc.ServiceDesc{ServiceName: "sluice.test.Echo", HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "Who",
			Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				if err := dec(&emptypb.Empty{}); err != nil {
					return nil, err
				}
				return wrapperspb.String(name), nil
			}}},
		Metadata: "sluice/test/echo.proto"}, struct{}{})
	return nil
}

func main() {
	name := flag.String("name", "", "the name the back-end answers with")
	listen := flag.String("listen", "127.0.0.1:0", "address to serve gRPC on")
	etcd := flag.String("etcd", "", "etcd endpoint (host:port); empty: do not register")
	service := flag.String("service", "", "the service's key prefix in etcd (e.g. services/echo)")
	metadata := flag.String("metadata", "", "JSON Metadata to register with (e.g. {\"weight\":2})")
	ttl := flag.Int64("ttl", 2, "lease TTL in seconds")
	drain := flag.Duration("drain", 3*time.Second, "how long calls are still answered after deregistering")
	withReflection := flag.Bool("reflection", false, "serve sluice.test.Echo with gRPC server reflection")
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
	srv := grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
		if err := stream.RecvMsg(&emptypb.Empty{}); err != nil {
			return err
		}
		return stream.SendMsg(wrapperspb.String(*name))
	}))
	if *withReflection {
		if err := registerEcho(srv, *name); err != nil {
			fmt.Fprintln(os.Stderr, "reflection:", err)
			os.Exit(1)
		}
		reflection.Register(srv)
	}
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
