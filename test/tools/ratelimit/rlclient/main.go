// rlclient calls envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit
// on a rate-limit server (envoyproxy/ratelimit) with the descriptors Envoy's
// ratelimit filter would send, and prints the overall code of each answer,
// one line per call: "OK", "OVER_LIMIT" (and "error: ..." when the call
// fails). The global rate limiting test (test/e2e/e2e_ratelimit.py) drives
// it.
//
//	rlclient -addr 127.0.0.1:8081 -domain custom [-n N] -d 'k=v,k2=v2' [-d ...]
//
// Each -d is one descriptor, its entries in order.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	ratelimitcommon "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rls "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

type descriptors []string

func (d *descriptors) String() string     { return strings.Join(*d, " ") }
func (d *descriptors) Set(v string) error { *d = append(*d, v); return nil }

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "the rate-limit server's gRPC address")
	domain := flag.String("domain", "custom", "rate limit domain")
	n := flag.Int("n", 1, "calls to make")
	timeout := flag.Duration("timeout", 5*time.Second, "timeout of each call")
	var ds descriptors
	flag.Var(&ds, "d", "a descriptor: key=value[,key=value...] (repeatable)")
	flag.Parse()

	req := &rls.RateLimitRequest{Domain: *domain, HitsAddend: 1}
	for _, d := range ds {
		desc := &ratelimitcommon.RateLimitDescriptor{}
		for _, kv := range strings.Split(d, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				fmt.Fprintf(os.Stderr, "rlclient: descriptor entry %q is not key=value\n", kv)
				os.Exit(2)
			}
			desc.Entries = append(desc.Entries, &ratelimitcommon.RateLimitDescriptor_Entry{Key: k, Value: v})
		}
		req.Descriptors = append(req.Descriptors, desc)
	}
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintf(os.Stderr, "rlclient: %v\n", err)
		os.Exit(1)
	}
	defer conn.Close()
	client := rls.NewRateLimitServiceClient(conn)
	for i := 0; i < *n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		resp, err := client.ShouldRateLimit(ctx, req)
		cancel()
		if err != nil {
			fmt.Printf("error: %v\n", err)
			continue
		}
		fmt.Println(resp.GetOverallCode().String())
	}
}
