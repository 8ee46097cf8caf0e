// rlconfcheck loads every RateLimitConfig among Envoy resources with
// envoyproxy/ratelimit's own configuration loader (the code its xDS client
// runs on each response), so a configuration the rate-limit server would
// refuse (and NACK) fails here. Input on stdin: google.protobuf.Any
// records, each preceded by its length as a protobuf varint (what
// sluice-translate --any writes); other types are skipped. Exit status 1
// when a configuration is refused or the input does not decode, or fewer
// than -min RateLimitConfigs arrived.
//
//	rlconfcheck [-min N] < records
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	rlsconf "github.com/envoyproxy/go-control-plane/ratelimit/config/ratelimit/v3"
	"github.com/envoyproxy/ratelimit/src/config"
	"github.com/envoyproxy/ratelimit/src/settings"
	"github.com/envoyproxy/ratelimit/src/stats"
	gostats "github.com/lyft/gostats"
	logger "github.com/sirupsen/logrus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

const rlcType = "type.googleapis.com/ratelimit.config.ratelimit.v3.RateLimitConfig"

// load loads the configurations as the server does; a refusal is a panic
// there (its xDS client recovers and NACKs).
func load(confs []config.RateLimitConfigToLoad) (dump string, err error) {
	defer func() {
		if e := recover(); e != nil {
			err = fmt.Errorf("%v", e)
		}
	}()
	s := settings.NewSettings()
	mgr := stats.NewStatManager(gostats.NewStore(gostats.NewNullSink(), false), s)
	c := config.NewRateLimitConfigLoaderImpl().Load(confs, mgr, s.MergeDomainConfigurations)
	return c.Dump(), nil
}

func main() {
	min := flag.Int("min", 0, "fail when fewer RateLimitConfigs arrive")
	verbose := flag.Bool("v", false, "print what the server loaded")
	flag.Parse()
	logger.SetLevel(logger.WarnLevel)
	in := bufio.NewReader(os.Stdin)
	var confs []config.RateLimitConfigToLoad
	for {
		n, err := binary.ReadUvarint(in)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "rlconfcheck: bad length: %v\n", err)
			os.Exit(1)
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(in, buf); err != nil {
			fmt.Fprintf(os.Stderr, "rlconfcheck: short record: %v\n", err)
			os.Exit(1)
		}
		a := &anypb.Any{}
		if err := proto.Unmarshal(buf, a); err != nil {
			fmt.Fprintf(os.Stderr, "rlconfcheck: not an Any: %v\n", err)
			os.Exit(1)
		}
		if a.GetTypeUrl() != rlcType {
			continue
		}
		c := &rlsconf.RateLimitConfig{}
		if err := a.UnmarshalTo(c); err != nil {
			fmt.Fprintf(os.Stderr, "rlconfcheck: %v\n", err)
			os.Exit(1)
		}
		confs = append(confs, config.RateLimitConfigToLoad{Name: c.GetName(), ConfigYaml: config.ConfigXdsProtoToYaml(c)})
	}
	if len(confs) < *min {
		fmt.Fprintf(os.Stderr, "rlconfcheck: %d RateLimitConfigs, want at least %d\n", len(confs), *min)
		os.Exit(1)
	}
	dump, err := load(confs)
	if err != nil {
		fmt.Fprintf(os.Stderr, "rlconfcheck: envoyproxy/ratelimit refuses the configuration: %v\n", err)
		os.Exit(1)
	}
	if *verbose {
		fmt.Print(dump)
	}
	fmt.Fprintf(os.Stderr, "rlconfcheck: %d RateLimitConfigs loaded by envoyproxy/ratelimit\n", len(confs))
}
