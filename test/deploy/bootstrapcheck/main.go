// bootstrapcheck checks Envoy bootstrap files against Envoy's own rules and
// against what Sluice needs from them.
//
// Input: file arguments, each the JSON form of one bootstrap (the test script
// converts the YAML in deploy/ with python3-yaml). Each is decoded strictly
// (protojson: unknown fields are errors) as envoy.config.bootstrap.v3.Bootstrap
// and checked with go-control-plane's generated validators (ValidateAll,
// Envoy's protoc-gen-validate annotations), descending into every
// google.protobuf.Any. Then Sluice's expectations: ADS over gRPC to a static
// cluster, LDS and CDS through ADS, node.metadata.role "<ns>~<proxy>", mutual
// TLS to the xDS server (an UpstreamTlsContext whose client certificate and
// trusted CA come through file-based SDS, so that Envoy takes up rotated
// files without a restart, and which checks the server's SAN), and the admin
// address. A file named *-sds-*.json is a file-based SDS file instead
// (a DiscoveryResponse holding one Secret): checked with the same validators,
// and its certificate, key or CA must be files Envoy watches for renames
// (watched_directory). Output: "<file>: ok ..." or "<file>: <error>" lines;
// exit status 1 if any file fails.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"

	bootstrap "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

type validator interface{ ValidateAll() error }

// validate runs ValidateAll on m (which descends into embedded messages but
// not into the contents of an Any) and then on every message packed in an
// Any below it.
func validate(m protoreflect.Message, path string) error {
	var errs []error
	if v, ok := m.Interface().(validator); ok {
		if err := v.ValidateAll(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
		}
	}
	errs = append(errs, anys(m, path))
	return errors.Join(errs...)
}

// anys validates the message in every Any reachable from m.
func anys(m protoreflect.Message, path string) error {
	if a, ok := m.Interface().(*anypb.Any); ok {
		inner, err := a.UnmarshalNew()
		if err != nil {
			return fmt.Errorf("%s: %s: %w", path, a.GetTypeUrl(), err)
		}
		return validate(inner.ProtoReflect(), path+"("+a.GetTypeUrl()+")")
	}
	var errs []error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		p := path + "." + string(fd.Name())
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := 0; i < v.List().Len(); i++ {
				errs = append(errs, anys(v.List().Get(i).Message(), fmt.Sprintf("%s[%d]", p, i)))
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				errs = append(errs, anys(mv.Message(), fmt.Sprintf("%s[%s]", p, k.String())))
				return true
			})
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			errs = append(errs, anys(v.Message(), p))
		}
		return true
	})
	return errors.Join(errs...)
}

// sluiceRules: what a bootstrap for Sluice must say.
func sluiceRules(b *bootstrap.Bootstrap) (string, error) {
	role := b.GetNode().GetMetadata().GetFields()["role"].GetStringValue()
	if ns, proxy, ok := strings.Cut(role, "~"); !ok || ns == "" || proxy == "" {
		return "", fmt.Errorf("node.metadata.role %q is not \"<namespace>~<proxy>\"", role)
	}
	dr := b.GetDynamicResources()
	ads := dr.GetAdsConfig()
	if ads.GetApiType() != core.ApiConfigSource_GRPC || ads.GetTransportApiVersion() != core.ApiVersion_V3 {
		return "", errors.New("dynamic_resources.ads_config must be api_type GRPC, transport_api_version V3")
	}
	if len(ads.GetGrpcServices()) != 1 || ads.GetGrpcServices()[0].GetEnvoyGrpc() == nil {
		return "", errors.New("ads_config needs exactly one envoy_grpc service")
	}
	cluster := ads.GetGrpcServices()[0].GetEnvoyGrpc().GetClusterName()
	for what, cs := range map[string]*core.ConfigSource{"lds_config": dr.GetLdsConfig(), "cds_config": dr.GetCdsConfig()} {
		if cs.GetAds() == nil || cs.GetResourceApiVersion() != core.ApiVersion_V3 {
			return "", fmt.Errorf("dynamic_resources.%s must be ads with resource_api_version V3", what)
		}
	}
	var xds string
	for _, c := range b.GetStaticResources().GetClusters() {
		if c.GetName() != cluster {
			continue
		}
		if _, ok := c.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]; !ok {
			return "", fmt.Errorf("cluster %s: gRPC needs HTTP/2 (typed_extension_protocol_options HttpProtocolOptions)", cluster)
		}
		if err := mtls(c.GetTransportSocket().GetTypedConfig()); err != nil {
			return "", fmt.Errorf("cluster %s: %w", cluster, err)
		}
		for _, e := range c.GetLoadAssignment().GetEndpoints() {
			for _, lb := range e.GetLbEndpoints() {
				sa := lb.GetEndpoint().GetAddress().GetSocketAddress()
				xds = fmt.Sprintf("%s:%d", sa.GetAddress(), sa.GetPortValue())
			}
		}
	}
	if xds == "" {
		return "", fmt.Errorf("no static cluster %q with an endpoint for ADS", cluster)
	}
	admin := b.GetAdmin().GetAddress().GetSocketAddress()
	return fmt.Sprintf("role=%s xds=%s mtls admin=%s:%d", role, xds, admin.GetAddress(), admin.GetPortValue()), nil
}

// fileSDS: the path of a file-based SDS config, or "".
func fileSDS(c *tlsv3.SdsSecretConfig) string {
	return c.GetSdsConfig().GetPathConfigSource().GetPath()
}

// mtls: the xDS cluster's transport socket is TLS with the proxy's client
// certificate (its identity for sluice-xds) and a CA to verify the server,
// both from file-based SDS (static tls_certificates are read once, at start:
// rotating them would need a restart).
func mtls(a *anypb.Any) error {
	if a == nil {
		return errors.New("no transport_socket: sluice-xds needs mutual TLS (UpstreamTlsContext)")
	}
	var tc tlsv3.UpstreamTlsContext
	if err := a.UnmarshalTo(&tc); err != nil {
		return fmt.Errorf("transport_socket is not an UpstreamTlsContext: %w", err)
	}
	ctx := tc.GetCommonTlsContext()
	if len(ctx.GetTlsCertificateSdsSecretConfigs()) != 1 || fileSDS(ctx.GetTlsCertificateSdsSecretConfigs()[0]) == "" {
		return errors.New("UpstreamTlsContext without a client certificate from file-based SDS " +
			"(tls_certificate_sds_secret_configs with sds_config.path_config_source)")
	}
	cv := ctx.GetCombinedValidationContext()
	if fileSDS(cv.GetValidationContextSdsSecretConfig()) == "" {
		return errors.New("UpstreamTlsContext does not verify the server with a CA from file-based SDS " +
			"(combined_validation_context.validation_context_sds_secret_config)")
	}
	if len(cv.GetDefaultValidationContext().GetMatchTypedSubjectAltNames()) == 0 {
		return errors.New("UpstreamTlsContext does not check the server's name " +
			"(combined_validation_context.default_validation_context.match_typed_subject_alt_names)")
	}
	return nil
}

// checkSDS: a file-based SDS file holds one Secret, a certificate and key
// or a CA read from files in a watched directory.
func checkSDS(data []byte) (string, error) {
	var r discovery.DiscoveryResponse
	if err := (protojson.UnmarshalOptions{}).Unmarshal(data, &r); err != nil {
		return "", fmt.Errorf("does not decode as a DiscoveryResponse: %w", err)
	}
	if err := validate(proto.Message(&r).ProtoReflect(), "DiscoveryResponse"); err != nil {
		return "", err
	}
	if len(r.GetResources()) != 1 {
		return "", fmt.Errorf("file-based SDS needs exactly one resource, not %d", len(r.GetResources()))
	}
	var sec tlsv3.Secret
	if err := r.GetResources()[0].UnmarshalTo(&sec); err != nil {
		return "", fmt.Errorf("resources[0] is not a Secret: %w", err)
	}
	var files []string
	var dir string
	switch {
	case sec.GetTlsCertificate() != nil:
		tc := sec.GetTlsCertificate()
		files = []string{tc.GetCertificateChain().GetFilename(), tc.GetPrivateKey().GetFilename()}
		dir = tc.GetWatchedDirectory().GetPath()
	case sec.GetValidationContext() != nil:
		files = []string{sec.GetValidationContext().GetTrustedCa().GetFilename()}
		dir = sec.GetValidationContext().GetWatchedDirectory().GetPath()
	default:
		return "", fmt.Errorf("secret %q is neither a tls_certificate nor a validation_context", sec.GetName())
	}
	if dir == "" {
		return "", fmt.Errorf("secret %q has no watched_directory: a rotated file would not be taken up", sec.GetName())
	}
	for _, f := range files {
		if f == "" {
			return "", fmt.Errorf("secret %q: every part must be a file (filename)", sec.GetName())
		}
		if rel, err := filepath.Rel(dir, f); err != nil || strings.HasPrefix(rel, "..") {
			return "", fmt.Errorf("secret %q: %s is not under its watched_directory %s", sec.GetName(), f, dir)
		}
	}
	return fmt.Sprintf("sds secret=%s files=%s watched=%s", sec.GetName(), strings.Join(files, ","), dir), nil
}

func check(file string) (string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	if strings.Contains(filepath.Base(file), "-sds-") {
		return checkSDS(data)
	}
	var b bootstrap.Bootstrap
	if err := (protojson.UnmarshalOptions{}).Unmarshal(data, &b); err != nil {
		return "", fmt.Errorf("does not decode as envoy.config.bootstrap.v3.Bootstrap: %w", err)
	}
	if err := validate(proto.Message(&b).ProtoReflect(), "Bootstrap"); err != nil {
		return "", err
	}
	return sluiceRules(&b)
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bootstrapcheck FILE.json...")
		os.Exit(2)
	}
	failed := false
	for _, f := range os.Args[1:] {
		if what, err := check(f); err != nil {
			fmt.Printf("%s: %v\n", f, err)
			failed = true
		} else {
			fmt.Printf("%s: ok %s\n", f, what)
		}
	}
	if failed {
		os.Exit(1)
	}
}
