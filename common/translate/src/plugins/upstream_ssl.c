/* upstream_ssl: TLS to upstreams. sslConfig (client certificate and root CA
 * from a Secret over SDS, or files; SNI, SANs, ALPN, parameters), and TLS
 * implied by static.useTls (default on when a host's port is 443) or
 * dns.useTls, with SNI from sslConfig.sni, else the first host's sniAddr,
 * else its addr when autoSniRewrite is on (the default). */
#include <string.h>

#include "../plugin.h"
#include "envoy/config/grpc_credential/v3/file_based_metadata.pb-c.h"
#include "sluice/upstreams.h"

#define SDS_DEFAULT_CLUSTER "gateway_proxy_sds" /* Gloo's */
#define FILE_METADATA_PLUGIN "envoy.grpc_credentials.file_based_metadata"

static const char *const fields[] = {"UpstreamSpec.ssl_config", NULL};

/* An SdsSecretConfig named name, fetched from the SDS server sds names. */
static Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig *sds_secret(tr_ctx *tx, const char *name,
                                                                                const Sluice__V1__SdsConfig *sds)
{
    Envoy__Extensions__TransportSockets__Tls__V3__SdsSecretConfig *sc =
        TR_NEW(tx, envoy__extensions__transport_sockets__tls__v3__sds_secret_config);
    Envoy__Config__Core__V3__ConfigSource *cs = TR_NEW(tx, envoy__config__core__v3__config_source);
    Envoy__Config__Core__V3__ApiConfigSource *api = TR_NEW(tx, envoy__config__core__v3__api_config_source);
    Envoy__Config__Core__V3__GrpcService *gs = TR_NEW(tx, envoy__config__core__v3__grpc_service);
    sc->name = tr_strdup(tx, name);
    sc->sds_config = cs;
    cs->resource_api_version = ENVOY__CONFIG__CORE__V3__API_VERSION__V3;
    cs->config_source_specifier_case = ENVOY__CONFIG__CORE__V3__CONFIG_SOURCE__CONFIG_SOURCE_SPECIFIER_API_CONFIG_SOURCE;
    cs->api_config_source = api;
    api->api_type = ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__GRPC;
    api->transport_api_version = ENVOY__CONFIG__CORE__V3__API_VERSION__V3;
    TR_PUSH(tx, api, grpc_services, gs);
    if (sds->call_credentials) {
        /* Google gRPC to target_uri, local channel credentials, the token
         * file's contents in a header of every call (Gloo's "deprecated" SDS) */
        const Sluice__V1__CallCredentials__FileCredentialSource *fs = sds->call_credentials->file_credential_source;
        Envoy__Config__Core__V3__GrpcService__GoogleGrpc *gg =
            TR_NEW(tx, envoy__config__core__v3__grpc_service__google_grpc);
        Envoy__Config__GrpcCredential__V3__FileBasedMetadataConfig *fm =
            TR_NEW(tx, envoy__config__grpc_credential__v3__file_based_metadata_config);
        Envoy__Config__Core__V3__GrpcService__GoogleGrpc__CallCredentials *cc =
            TR_NEW(tx, envoy__config__core__v3__grpc_service__google_grpc__call_credentials);
        Envoy__Config__Core__V3__GrpcService__GoogleGrpc__CallCredentials__MetadataCredentialsFromPlugin *fp =
            TR_NEW(tx, envoy__config__core__v3__grpc_service__google_grpc__call_credentials__metadata_credentials_from_plugin);
        gs->target_specifier_case = ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_GOOGLE_GRPC;
        gs->google_grpc = gg;
        gg->target_uri = tr_strdup(tx, sds->target_uri);
        gg->stat_prefix = tr_strdup(tx, "sds");
        gg->channel_credentials = TR_NEW(tx, envoy__config__core__v3__grpc_service__google_grpc__channel_credentials);
        gg->channel_credentials->credential_specifier_case =
            ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__GOOGLE_GRPC__CHANNEL_CREDENTIALS__CREDENTIAL_SPECIFIER_LOCAL_CREDENTIALS;
        gg->channel_credentials->local_credentials =
            TR_NEW(tx, envoy__config__core__v3__grpc_service__google_grpc__google_local_credentials);
        gg->credentials_factory_name = tr_strdup(tx, FILE_METADATA_PLUGIN);
        fm->secret_data = tr_file_source(tx, fs ? fs->token_file_name : "");
        fm->header_key = tr_strdup(tx, fs ? fs->header : "");
        fp->name = tr_strdup(tx, FILE_METADATA_PLUGIN);
        fp->config_type_case =
            ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__GOOGLE_GRPC__CALL_CREDENTIALS__METADATA_CREDENTIALS_FROM_PLUGIN__CONFIG_TYPE_TYPED_CONFIG;
        fp->typed_config = tr_any(tx, &fm->base);
        cc->credential_specifier_case =
            ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__GOOGLE_GRPC__CALL_CREDENTIALS__CREDENTIAL_SPECIFIER_FROM_PLUGIN;
        cc->from_plugin = fp;
        TR_PUSH(tx, gg, call_credentials, cc);
    } else {
        gs->target_specifier_case = ENVOY__CONFIG__CORE__V3__GRPC_SERVICE__TARGET_SPECIFIER_ENVOY_GRPC;
        gs->envoy_grpc = TR_NEW(tx, envoy__config__core__v3__grpc_service__envoy_grpc);
        gs->envoy_grpc->cluster_name = tr_strdup(tx, sds->cluster_name[0] ? sds->cluster_name : SDS_DEFAULT_CLUSTER);
    }
    return sc;
}

Envoy__Extensions__TransportSockets__Tls__V3__TlsParameters *tr_tls_params(tr_ctx *tx,
                                                                          const Sluice__V1__SslParameters *p)
{
    Envoy__Extensions__TransportSockets__Tls__V3__TlsParameters *tp =
        TR_NEW(tx, envoy__extensions__transport_sockets__tls__v3__tls_parameters);
    tp->tls_minimum_protocol_version =
        (Envoy__Extensions__TransportSockets__Tls__V3__TlsParameters__TlsProtocol)p->minimum_protocol_version;
    tp->tls_maximum_protocol_version =
        (Envoy__Extensions__TransportSockets__Tls__V3__TlsParameters__TlsProtocol)p->maximum_protocol_version;
    for (size_t i = 0; i < p->n_cipher_suites; i++)
        TR_PUSH(tx, tp, cipher_suites, tr_strdup(tx, p->cipher_suites[i]));
    for (size_t i = 0; i < p->n_ecdh_curves; i++)
        TR_PUSH(tx, tp, ecdh_curves, tr_strdup(tx, p->ecdh_curves[i]));
    return tp;
}

Envoy__Extensions__TransportSockets__Tls__V3__TlsCertificate *tr_tls_cert_files(tr_ctx *tx, const char *cert,
                                                                               const char *key)
{
    Envoy__Extensions__TransportSockets__Tls__V3__TlsCertificate *c =
        TR_NEW(tx, envoy__extensions__transport_sockets__tls__v3__tls_certificate);
    c->certificate_chain = tr_file_source(tx, cert);
    c->private_key = tr_file_source(tx, key);
    return c;
}

Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext *tr_ca_file(tr_ctx *tx, const char *ca)
{
    Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext *vc =
        TR_NEW(tx, envoy__extensions__transport_sockets__tls__v3__certificate_validation_context);
    vc->trusted_ca = tr_file_source(tx, ca);
    return vc;
}

bool tr_sds_config(tr_ctx *tx, const Sluice__V1__SdsConfig *sds, const char *path, size_t n_san, char *const *san,
                   Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *cc)
{
    bool ok = true;
    if (!sds->certificates_secret_name[0] && !sds->validation_context_name[0]) {
        tr_error(tx, "%s: certificatesSecretName or validationContextName is required", path);
        return false;
    }
    if (n_san && !sds->validation_context_name[0]) {
        tr_error(tx, "%s.validationContextName: required to verify subject alternative names (verifySubjectAltName)",
                 path);
        ok = false;
    }
    if (sds->call_credentials) {
        const Sluice__V1__CallCredentials__FileCredentialSource *fs = sds->call_credentials->file_credential_source;
        if (sds->cluster_name[0]) {
            tr_error(tx, "%s: clusterName and callCredentials exclude each other (Envoy gRPC to a cluster, or Google "
                         "gRPC to targetUri)", path);
            ok = false;
        }
        if (!sds->target_uri[0]) {
            tr_error(tx, "%s.targetUri: required with callCredentials", path);
            ok = false;
        }
        if (!fs || !fs->token_file_name[0]) {
            tr_error(tx, "%s.callCredentials.fileCredentialSource.tokenFileName: required", path);
            ok = false;
        }
    } else if (sds->target_uri[0]) {
        tr_warn(tx, "%s.targetUri: not used without callCredentials (as Gloo): the proxy reaches the SDS server "
                    "through its cluster %s", path, sds->cluster_name[0] ? sds->cluster_name : SDS_DEFAULT_CLUSTER);
    }
    if (!ok)
        return false;
    if (sds->certificates_secret_name[0])
        TR_PUSH(tx, cc, tls_certificate_sds_secret_configs, sds_secret(tx, sds->certificates_secret_name, sds));
    if (sds->validation_context_name[0] && !n_san) {
        cc->validation_context_type_case =
            ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT_SDS_SECRET_CONFIG;
        cc->validation_context_sds_secret_config = sds_secret(tx, sds->validation_context_name, sds);
    } else if (sds->validation_context_name[0]) {
        Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext__CombinedCertificateValidationContext *cv =
            TR_NEW(tx, envoy__extensions__transport_sockets__tls__v3__common_tls_context__combined_certificate_validation_context);
        cv->default_validation_context =
            TR_NEW(tx, envoy__extensions__transport_sockets__tls__v3__certificate_validation_context);
        for (size_t i = 0; i < n_san; i++) {
            Envoy__Extensions__TransportSockets__Tls__V3__SubjectAltNameMatcher *m =
                TR_NEW(tx, envoy__extensions__transport_sockets__tls__v3__subject_alt_name_matcher);
            m->san_type = ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SUBJECT_ALT_NAME_MATCHER__SAN_TYPE__DNS;
            m->matcher = TR_NEW(tx, envoy__type__matcher__v3__string_matcher);
            m->matcher->match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT;
            m->matcher->exact = tr_strdup(tx, san[i]);
            TR_PUSH(tx, cv->default_validation_context, match_typed_subject_alt_names, m);
        }
        cv->validation_context_sds_secret_config = sds_secret(tx, sds->validation_context_name, sds);
        cc->validation_context_type_case =
            ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_COMBINED_VALIDATION_CONTEXT;
        cc->combined_validation_context = cv;
    }
    return true;
}

static void cluster(tr_ctx *tx, const tr_upstream_in *in, tr_cluster_t *c)
{
    const Sluice__V1__UpstreamSpec *s = in->up->spec;
    const Sluice__V1__UpstreamSslConfig *ssl = s->ssl_config;
    const Sluice__V1__StaticUpstreamSpec *st =
        s->upstream_type_case == SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_STATIC ? s->static_ : NULL;
    bool tls = ssl != NULL;
    const char *sni = NULL;
    const char *ns = in->up->metadata->namespace_[0] ? in->up->metadata->namespace_ : "default";
    Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext *uc;
    Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *cc;

    if (st) {
        bool port443 = false;
        for (size_t i = 0; i < st->n_hosts; i++)
            if (st->hosts[i]->port == 443)
                port443 = true;
        if (st->use_tls ? st->use_tls->value : port443)
            tls = true;
        if (st->n_hosts && (!st->auto_sni_rewrite || st->auto_sni_rewrite->value))
            sni = st->hosts[0]->sni_addr[0] ? st->hosts[0]->sni_addr : st->hosts[0]->addr;
        else if (st->n_hosts && st->hosts[0]->sni_addr[0])
            sni = st->hosts[0]->sni_addr;
    } else if (sl_upstream_spec_use_tls(s) && sl_upstream_spec_use_tls(s)->value) {
        tls = true; /* dns, etcd: a name's SNI is the name; an SRV name or a registry has none */
        if (s->upstream_type_case == SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_DNS && !s->dns->srv)
            sni = s->dns->name;
    }
    if (!tls || s->upstream_type_case == SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_AWS)
        return;
    if (in->proxyless) {
        tr_warn(tx, "spec.sslConfig: gRPC proxyless clients take TLS only from certificate providers in their "
                    "bootstrap; the cluster is sent without TLS");
        return;
    }
    uc = TR_NEW(tx, envoy__extensions__transport_sockets__tls__v3__upstream_tls_context);
    cc = TR_NEW(tx, envoy__extensions__transport_sockets__tls__v3__common_tls_context);
    uc->common_tls_context = cc;
    if (ssl && ssl->sni[0])
        sni = ssl->sni;
    if (sni) {
        if (strlen(sni) > 255)
            tr_error(tx, "spec.sslConfig.sni: longer than 255 bytes");
        uc->sni = tr_strdup(tx, sni);
    }
    if (ssl) {
        Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext *vc = NULL;
        switch (ssl->ssl_secrets_case) {
        case SLUICE__V1__UPSTREAM_SSL_CONFIG__SSL_SECRETS_SECRET_REF: {
            const char *why;
            const Sluice__V1__Secret *sec = tr_find_secret_granted(tx, ssl->secret_ref, ns, &why);
            if (why) {
                tr_error(tx, "spec.sslConfig.secretRef: %s", why);
                return;
            }
            if (!sec || sec->spec->kind_case != SLUICE__V1__SECRET_SPEC__KIND_TLS) {
                tr_error(tx, "spec.sslConfig.secretRef: TLS Secret %s.%s not found",
                         ssl->secret_ref->namespace_[0] ? ssl->secret_ref->namespace_ : ns, ssl->secret_ref->name);
                return;
            }
            if (sec->spec->tls->cert_chain[0] && sec->spec->tls->private_key[0])
                TR_PUSH(tx, cc, tls_certificate_sds_secret_configs, tr_sds_secret(tx, sec, false));
            if (sec->spec->tls->root_ca[0]) {
                if (ssl->n_verify_subject_alt_name) {
                    tr_error(tx, "spec.sslConfig.verifySubjectAltName: not supported with a secretRef yet (use sslFiles)");
                }
                cc->validation_context_type_case =
                    ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT_SDS_SECRET_CONFIG;
                cc->validation_context_sds_secret_config = tr_sds_secret(tx, sec, true);
            }
            break;
        }
        case SLUICE__V1__UPSTREAM_SSL_CONFIG__SSL_SECRETS_SSL_FILES: {
            const Sluice__V1__SslFiles *f = ssl->ssl_files;
            if (f->tls_cert[0] || f->tls_key[0]) {
                if (!f->tls_cert[0] || !f->tls_key[0])
                    tr_error(tx, "spec.sslConfig.sslFiles: tlsCert and tlsKey go together");
                TR_PUSH(tx, cc, tls_certificates, tr_tls_cert_files(tx, f->tls_cert, f->tls_key));
            }
            if (f->root_ca[0])
                vc = tr_ca_file(tx, f->root_ca);
            break;
        }
        case SLUICE__V1__UPSTREAM_SSL_CONFIG__SSL_SECRETS_SDS:
            if (!tr_sds_config(tx, ssl->sds, "spec.sslConfig.sds", ssl->n_verify_subject_alt_name,
                               ssl->verify_subject_alt_name, cc))
                return;
            break;
        default:
            break;
        }
        if (ssl->n_verify_subject_alt_name && vc) {
            for (size_t i = 0; i < ssl->n_verify_subject_alt_name; i++) {
                Envoy__Extensions__TransportSockets__Tls__V3__SubjectAltNameMatcher *m =
                    TR_NEW(tx, envoy__extensions__transport_sockets__tls__v3__subject_alt_name_matcher);
                m->san_type = ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SUBJECT_ALT_NAME_MATCHER__SAN_TYPE__DNS;
                m->matcher = TR_NEW(tx, envoy__type__matcher__v3__string_matcher);
                m->matcher->match_pattern_case = ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT;
                m->matcher->exact = tr_strdup(tx, ssl->verify_subject_alt_name[i]);
                TR_PUSH(tx, vc, match_typed_subject_alt_names, m);
            }
        } else if (ssl->n_verify_subject_alt_name && ssl->ssl_secrets_case != SLUICE__V1__UPSTREAM_SSL_CONFIG__SSL_SECRETS_SECRET_REF &&
                   ssl->ssl_secrets_case != SLUICE__V1__UPSTREAM_SSL_CONFIG__SSL_SECRETS_SDS) {
            tr_error(tx, "spec.sslConfig.verifySubjectAltName: needs a root CA to verify against");
        }
        if (vc) {
            cc->validation_context_type_case =
                ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT;
            cc->validation_context = vc;
        }
        for (size_t i = 0; i < ssl->n_alpn_protocols; i++)
            TR_PUSH(tx, cc, alpn_protocols, tr_strdup(tx, ssl->alpn_protocols[i]));
        if (ssl->parameters)
            cc->tls_params = tr_tls_params(tx, ssl->parameters);
        if (ssl->allow_renegotiation)
            uc->allow_renegotiation = ssl->allow_renegotiation->value;
    }
    c->transport_socket = TR_NEW(tx, envoy__config__core__v3__transport_socket);
    c->transport_socket->name = tr_strdup(tx, "envoy.transport_sockets.tls");
    c->transport_socket->config_type_case = ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__CONFIG_TYPE_TYPED_CONFIG;
    c->transport_socket->typed_config = tr_any(tx, &uc->base);
}

const sl_tr_plugin sl_tr_plugin_upstream_ssl = {
    .name = "upstream_ssl",
    .fields = fields,
    .cluster = cluster,
};
