// xdsvalidate checks Envoy resources against Envoy's own validation rules:
// the protoc-gen-validate annotations compiled into go-control-plane
// (ValidateAll on every message), descending into every google.protobuf.Any
// (typed_config and friends), which ValidateAll alone does not do.
//
// Input on stdin: a stream of google.protobuf.Any messages, each preceded by
// its length as a protobuf varint (what Sluice's tools write). Output: one
// line per violation, "<index> <type>: <error>"; exit status 1 if any
// resource is invalid or cannot be decoded, or if fewer records than -min
// (default 1) or not exactly -want arrived, 0 otherwise. Zero records fail
// by default: a producer that crashed or wrote nothing must not pass as
// "no violations" (issue 14); a caller that may legitimately see none (the
// fuzz corpus) says -min 0.
//
//	xdsvalidate [-min N] [-want N] < records
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"

	_ "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/config/grpc_credential/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/grpc/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/compression/gzip/compressor/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/aws_lambda/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/buffer/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/compressor/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/csrf/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/grpc_json_transcoder/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/grpc_web/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/health_check/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/lua/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ratelimit/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/proxy_protocol/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/connection_limit/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/local_ratelimit/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/sni_cluster/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/health_check/event_sinks/file/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/http/early_header_mutation/header_mutation/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/http/header_formatters/preserve_case/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/request_id/uuid/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/priority/previous_priorities/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/raw_buffer/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tcp_stats/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	_ "github.com/envoyproxy/go-control-plane/ratelimit/config/ratelimit/v3"
)

type validator interface{ ValidateAll() error }

// check validates m and every message packed in an Any beneath it.
func check(m protoreflect.Message, path string, report func(string, error)) {
	if a, ok := m.Interface().(*anypb.Any); ok {
		inner, err := a.UnmarshalNew()
		if err != nil {
			report(path, fmt.Errorf("cannot unpack Any %q: %w", a.GetTypeUrl(), err))
			return
		}
		check(inner.ProtoReflect(), path+"<"+string(inner.ProtoReflect().Descriptor().FullName())+">", report)
		return
	}
	if v, ok := m.Interface().(validator); ok {
		if err := v.ValidateAll(); err != nil {
			report(path, err)
		}
	}
	m.Range(func(fd protoreflect.FieldDescriptor, val protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind {
			return true
		}
		sub := path + "." + string(fd.Name())
		switch {
		case fd.IsList():
			l := val.List()
			for i := 0; i < l.Len(); i++ {
				check(l.Get(i).Message(), fmt.Sprintf("%s[%d]", sub, i), report)
			}
		case fd.IsMap():
			if fd.MapValue().Kind() == protoreflect.MessageKind {
				val.Map().Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
					check(v.Message(), fmt.Sprintf("%s[%v]", sub, k.Interface()), report)
					return true
				})
			}
		default:
			check(val.Message(), sub, report)
		}
		return true
	})
}

func readRecord(r *bufio.Reader) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > 64<<20 {
		return nil, fmt.Errorf("record of %d bytes is larger than 64 MiB", n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("truncated record: %w", err)
	}
	return buf, nil
}

func main() {
	min := flag.Int("min", 1, "fail when fewer records than this arrive")
	want := flag.Int("want", -1, "fail unless exactly this many records arrive (-1: any)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: xdsvalidate [-min N] [-want N] < records")
		os.Exit(2)
	}
	r := bufio.NewReader(os.Stdin)
	bad, count := 0, 0
	for ; ; count++ {
		rec, err := readRecord(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fmt.Printf("%d: %v\n", count, err)
			os.Exit(1)
		}
		var a anypb.Any
		if err := proto.Unmarshal(rec, &a); err != nil {
			fmt.Printf("%d: not a google.protobuf.Any: %v\n", count, err)
			bad++
			continue
		}
		idx := count
		check(a.ProtoReflect(), "", func(path string, err error) {
			fmt.Printf("%d %s%s: %v\n", idx, a.GetTypeUrl(), path, err)
			bad++
		})
	}
	fmt.Fprintf(os.Stderr, "xdsvalidate: %d resources, %d violations\n", count, bad)
	if count < *min {
		fmt.Printf("only %d records, at least %d expected (did the producer fail?)\n", count, *min)
		bad++
	}
	if *want >= 0 && count != *want {
		fmt.Printf("%d records, exactly %d expected\n", count, *want)
		bad++
	}
	if bad > 0 {
		os.Exit(1)
	}
}
