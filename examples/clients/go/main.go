// Command hello applies a VirtualService through Sluice's NATS API and prints
// its status.
//
//		go run . [-nats-url URL] [-name NAME] [-namespace NS]
//
//	 1. Subscribes to sluice.status.VirtualService.<ns>.<name> (a packed
//	    sluice.v1.Status, published by sluice-reporter on every change).
//	 2. Sends ../hello.yaml to sluice.api.apply (request/reply, Content-Type
//	    application/yaml) and prints the ApplyResponse (protobuf).
//	 3. Prints the first status event; when the apply changed nothing (so no
//	    new status is published) it reads the current one from the KV bucket
//	    sluice_status instead. With -settled, a Pending status (the reporter's
//	    "waiting for the translator") is followed until the next one.
//
// Credentials: the NATS user nkey seed file in env NATS_NKEY; without it,
// <state>/nats-auth/client.nk when that file exists, <state> being
// $SLUICE_STATE, else .state in the current directory or the repository's
// (where `make run` provisions it: the `client` role, in the NATS account
// CLIENTS, may request sluice.api.apply / sluice.api.delete, subscribe to
// sluice.status.> and _INBOX.> and read the sluice_status bucket through the
// JetStream API prefix $JS.sluice.API); with none, no credentials (a NATS
// without authentication).
//
// Protobuf decoding without generated code: protoc (Debian protobuf-compiler)
// turns proto/sluice/v1/*.proto into a descriptor set and dynamicpb decodes
// with it. Exit status 0 when the apply was accepted and a status was seen
// (with -settled: a status other than Pending).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// messages returns the sluice.v1 message descriptors, through protoc.
func messages(protoDir string) (protoreflect.FileDescriptor, error) {
	f, err := os.CreateTemp("", "sluice-*.pb")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	f.Close()
	protoc := os.Getenv("PROTOC")
	if protoc == "" {
		protoc = "protoc"
	}
	cmd := exec.Command(protoc, "-I", protoDir, "--include_imports", "--descriptor_set_out="+f.Name(), "sluice/v1/events.proto")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("protoc: %w", err)
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		return nil, err
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(b, &set); err != nil {
		return nil, err
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		return nil, err
	}
	return files.FindFileByPath("sluice/v1/events.proto")
}

func decode(fd protoreflect.FileDescriptor, name string, b []byte) (*dynamicpb.Message, error) {
	var md protoreflect.MessageDescriptor
	if md = fd.Messages().ByName(protoreflect.Name(name)); md == nil {
		for i := 0; i < fd.Imports().Len() && md == nil; i++ {
			md = fd.Imports().Get(i).Messages().ByName(protoreflect.Name(name))
		}
	}
	if md == nil {
		return nil, fmt.Errorf("no message sluice.v1.%s", name)
	}
	m := dynamicpb.NewMessage(md)
	return m, proto.Unmarshal(b, m)
}

// get reads a field by name: a tiny helper over protoreflect.
func get(m protoreflect.Message, field string) protoreflect.Value {
	return m.Get(m.Descriptor().Fields().ByName(protoreflect.Name(field)))
}

func enumName(m protoreflect.Message, field string) string {
	fd := m.Descriptor().Fields().ByName(protoreflect.Name(field))
	if v := fd.Enum().Values().ByNumber(m.Get(fd).Enum()); v != nil {
		return string(v.Name())
	}
	return fmt.Sprint(m.Get(fd).Enum())
}

func showStatus(fd protoreflect.FileDescriptor, b []byte) (*dynamicpb.Message, error) {
	st, err := decode(fd, "Status", b)
	if err != nil {
		return nil, err
	}
	fmt.Printf("status: %s reportedBy=%s", enumName(st, "state"), get(st, "reported_by").String())
	if r := get(st, "reason").String(); r != "" {
		fmt.Printf(" reason=%q", r)
	}
	j, _ := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(st)
	fmt.Printf("\n  %s\n", j)
	return st, nil
}

func run() error {
	here, _ := os.Getwd()
	url := flag.String("nats-url", envOr("NATS_URL", nats.DefaultURL), "NATS server")
	name := flag.String("name", "hello-go", "VirtualService name")
	ns := flag.String("namespace", "default", "namespace")
	timeout := flag.Duration("timeout", 10*time.Second, "wait this long for the reply and the status")
	protoDir := flag.String("proto-dir", filepath.Join(here, "..", "..", "..", "proto"), "Sluice's proto/ directory")
	settled := flag.Bool("settled", false, "after a Pending status, wait for the next one (Accepted, Warning or Rejected)")
	yamlFile := flag.String("file", filepath.Join(here, "..", "hello.yaml"), "the YAML to apply")
	flag.Parse()

	fd, err := messages(*protoDir)
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(*yamlFile)
	if err != nil {
		return err
	}
	doc := strings.ReplaceAll(strings.ReplaceAll(string(raw), "NAMESPACE", *ns), "NAME", *name)

	var opts []nats.Option
	seed := nkeySeedFile(here)
	authenticated := seed != ""
	if authenticated {
		fmt.Fprintf(os.Stderr, "nats: %s as the nkey in %s\n", *url, seed)
		opt, err := nats.NkeyOptionFromSeed(seed)
		if err != nil {
			return fmt.Errorf("nkey seed %s: %w", seed, err)
		}
		opts = append(opts, opt)
	} else {
		fmt.Fprintf(os.Stderr, "nats: %s without credentials\n", *url)
	}
	nc, err := nats.Connect(*url, opts...)
	if err != nil {
		return fmt.Errorf("cannot connect to %s: %w", *url, err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync(fmt.Sprintf("sluice.status.VirtualService.%s.%s", *ns, *name)) // before applying
	if err != nil {
		return err
	}

	req := nats.NewMsg("sluice.api.apply")
	req.Data = []byte(doc)
	req.Header.Set("Content-Type", "application/yaml")
	req.Header.Set("Sluice-Filename", "hello.yaml")
	req.Header.Set("Sluice-Source", "example-go")
	reply, err := nc.RequestMsg(req, *timeout)
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	resp, err := decode(fd, "ApplyResponse", reply.Data)
	if err != nil {
		return err
	}
	fmt.Printf("apply: accepted=%v", get(resp, "accepted").Bool())
	if e := get(resp, "error").String(); e != "" {
		fmt.Printf(" error=%q", e)
	}
	fmt.Println()
	results := get(resp, "results").List()
	allUnchanged := true
	for i := 0; i < results.Len(); i++ {
		r := results.Get(i).Message()
		ref := get(r, "resource").Message()
		what := "resourceVersion=" + get(r, "resource_version").String()
		if get(r, "unchanged").Bool() {
			what = "unchanged"
		} else {
			allUnchanged = false
		}
		fmt.Printf("  %s %s/%s: %s %s\n", get(ref, "kind").String(), get(ref, "namespace").String(),
			get(ref, "name").String(), enumName(r, "state"), what)
		for _, f := range []string{"errors", "warnings"} {
			for l, j := get(r, f).List(), 0; j < l.Len(); j++ {
				fmt.Printf("    %s\n", l.Get(j).String())
			}
		}
	}
	if !get(resp, "accepted").Bool() {
		return errors.New("apply rejected")
	}

	// A deleted status is an event without body: nextEvent skips it.
	deadline := time.Now().Add(*timeout)
	nextEvent := func() (*dynamicpb.Message, error) {
		for {
			msg, err := sub.NextMsg(time.Until(deadline))
			if err != nil {
				return nil, err
			}
			if len(msg.Data) > 0 {
				fmt.Printf("status event on %s\n", msg.Subject)
				return showStatus(fd, msg.Data)
			}
		}
	}
	var st *dynamicpb.Message
	if !allUnchanged {
		st, _ = nextEvent()
	}
	if st == nil {
		// Nothing changed, so no new status is published: read the stored one.
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		// Sluice's JetStream API as the clients' NATS account imports it
		// (sluice/natsauth.h); without credentials, the standard one.
		js, err := jetstream.New(nc)
		if authenticated {
			js, err = jetstream.NewWithAPIPrefix(nc, "$JS.sluice.API")
		}
		if err != nil {
			return err
		}
		kv, err := js.KeyValue(ctx, "sluice_status")
		if err != nil {
			return err
		}
		e, err := kv.Get(ctx, fmt.Sprintf("VirtualService.%s.%s", *ns, *name))
		if err != nil {
			return fmt.Errorf("no status for VirtualService %s/%s within %v (is sluice-reporter running?): %w", *ns, *name, *timeout, err)
		}
		fmt.Printf("stored status of VirtualService %s/%s\n", *ns, *name)
		if st, err = showStatus(fd, e.Value()); err != nil {
			return err
		}
	}
	for *settled && enumName(st, "state") == "Pending" { // wait for the translator's verdict
		if st, err = nextEvent(); err != nil {
			return fmt.Errorf("no settled status for VirtualService %s/%s within %v (is sluice-translator running?): %w", *ns, *name, *timeout, err)
		}
	}
	return nil
}

// nkeySeedFile is the seed file to authenticate with (see the package
// comment), or "". here is the current directory, examples/clients/go when
// run as documented.
func nkeySeedFile(here string) string {
	if f := os.Getenv("NATS_NKEY"); f != "" {
		return f
	}
	dirs := []string{".state", filepath.Join(here, "..", "..", "..", ".state")}
	if s := os.Getenv("SLUICE_STATE"); s != "" {
		dirs = []string{s}
	}
	for _, d := range dirs {
		f := filepath.Join(d, "nats-auth", "client.nk")
		if st, err := os.Stat(f); err == nil && st.Mode().IsRegular() {
			return f
		}
	}
	return ""
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
