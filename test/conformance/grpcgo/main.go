// grpcgo-client: grpc-go's xDS resolver as a conformance client for
// sluice-xds. It dials -target (xds:///<listener>, bootstrap from
// GRPC_XDS_BOOTSTRAP) once, then for every line "N" on stdin makes N calls to
// /sluice.test.Echo/Who and prints one JSON line: {"<backend>": count, ...}
// (failed calls count under "error:<code>").
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/status"
	_ "google.golang.org/grpc/xds" // registers the xds:/// resolver and balancers
)

// rawCodec passes bytes through: WhoRequest is empty, WhoReply is field 1.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

var _ encoding.Codec = rawCodec{}

func main() {
	target := flag.String("target", "xds:///echo", "target")
	flag.Parse()
	conn, err := grpc.NewClient(*target, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		os.Exit(1)
	}
	defer conn.Close()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		n, _ := strconv.Atoi(strings.TrimSpace(in.Text()))
		counts := map[string]int{}
		for i := 0; i < n; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			req, reply := []byte{}, []byte{}
			err := conn.Invoke(ctx, "/sluice.test.Echo/Who", &req, &reply)
			cancel()
			if err != nil {
				counts["error:"+status.Code(err).String()]++
				continue
			}
			name := ""
			if len(reply) >= 2 && reply[0] == 0x0a && int(reply[1])+2 <= len(reply) {
				name = string(reply[2 : 2+int(reply[1])])
			}
			counts[name]++
		}
		b, _ := json.Marshal(counts)
		fmt.Println(string(b))
	}
}
