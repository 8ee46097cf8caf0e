// grpcgo-client: grpc-go's xDS resolver as a conformance client for
// sluice-xds (bootstrap from GRPC_XDS_BOOTSTRAP; its channel_creds may be
// "tls" with a client certificate, gRFC A65, which the other real clients
// here cannot do). Two modes:
//
//	-target xds:///<listener>: dials it once, then for every line "N" on
//	stdin makes N calls to /sluice.test.Echo/Who and prints one JSON line:
//	{"<backend>": count, ...} (failed calls count under "error:<code>").
//
//	-calls: for every line "<target> <timeout ms>" on stdin makes one call
//	(one channel per target, kept) and prints one line: "ok <backend>" or
//	"error <code>: <message>" (the end-to-end test's client).
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

func dial(target string) *grpc.ClientConn {
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		os.Exit(1)
	}
	return conn
}

// who makes one call: the name of the back-end that answered.
func who(conn *grpc.ClientConn, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, reply := []byte{}, []byte{}
	if err := conn.Invoke(ctx, "/sluice.test.Echo/Who", &req, &reply); err != nil {
		return "", err
	}
	if len(reply) >= 2 && reply[0] == 0x0a && int(reply[1])+2 <= len(reply) {
		return string(reply[2 : 2+int(reply[1])]), nil
	}
	return "", nil
}

func counts(target string) {
	conn := dial(target)
	defer conn.Close()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		n, _ := strconv.Atoi(strings.TrimSpace(in.Text()))
		counts := map[string]int{}
		for i := 0; i < n; i++ {
			name, err := who(conn, 3*time.Second)
			if err != nil {
				counts["error:"+status.Code(err).String()]++
				continue
			}
			counts[name]++
		}
		b, _ := json.Marshal(counts)
		fmt.Println(string(b))
	}
}

func calls() {
	conns := map[string]*grpc.ClientConn{}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) != 2 {
			fmt.Println("error usage: want \"<target> <timeout ms>\"")
			continue
		}
		ms, _ := strconv.Atoi(f[1])
		conn := conns[f[0]]
		if conn == nil {
			conn = dial(f[0])
			conns[f[0]] = conn
		}
		name, err := who(conn, time.Duration(ms)*time.Millisecond)
		if err != nil {
			s := status.Convert(err)
			fmt.Printf("error %s: %s\n", s.Code(), strings.ReplaceAll(s.Message(), "\n", " "))
			continue
		}
		fmt.Println("ok " + name)
	}
	for _, c := range conns {
		c.Close()
	}
}

func main() {
	target := flag.String("target", "xds:///echo", "target (counting mode)")
	lines := flag.Bool("calls", false, "one call per stdin line \"<target> <timeout ms>\"")
	flag.Parse()
	if *lines {
		calls()
	} else {
		counts(*target)
	}
}
