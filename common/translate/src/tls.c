/* tls.c - downstream TLS: a VirtualService's sslConfig as a TLS transport
 * socket (SDS, files or secrets), and one filter chain per SNI set. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb-c.h"
#include "translate_internal.h"

/* The SNI set of an ssl virtual service, sorted and joined: the key of its
 * filter chain. */
static const char *sni_key(tr_ctx *tx, const Sluice__V1__SslConfig *ssl)
{
    char **v = tr_alloc(tx, (ssl->n_sni_domains + 1) * sizeof *v);
    char *key = tr_strdup(tx, "");
    if (ssl->n_sni_domains) {
        memcpy(v, ssl->sni_domains, ssl->n_sni_domains * sizeof *v);
        qsort(v, ssl->n_sni_domains, sizeof *v, tr_cmp_strp);
    }
    for (size_t i = 0; i < ssl->n_sni_domains; i++)
        key = tr_printf(tx, "%s%s%s", key, i ? "," : "", v[i]);
    return key;
}

static const char *ssl_identity(tr_ctx *tx, const Sluice__V1__SslConfig *ssl)
{
    uint8_t *buf;
    size_t len = protobuf_c_message_get_packed_size(&ssl->base);
    char *hex;
    /* two configs are the same when they pack to the same bytes */
    buf = tr_alloc(tx, len + 1);
    protobuf_c_message_pack(&ssl->base, buf);
    hex = tr_alloc(tx, len * 2 + 1);
    for (size_t i = 0; i < len; i++)
        sprintf(hex + 2 * i, "%02x", buf[i]);
    hex[len * 2] = '\0';
    return hex;
}

Envoy__Config__Core__V3__TransportSocket *tr_downstream_tls(tr_ctx *tx, const Sluice__V1__SslConfig *ssl,
                                                                const char *def_ns, const char *p)
{
    Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext *dc =
        TR_NEW(tx, envoy__extensions__transport_sockets__tls__v3__downstream_tls_context);
    Envoy__Extensions__TransportSockets__Tls__V3__CommonTlsContext *cc =
        TR_NEW(tx, envoy__extensions__transport_sockets__tls__v3__common_tls_context);
    Envoy__Config__Core__V3__TransportSocket *ts = TR_NEW(tx, envoy__config__core__v3__transport_socket);
    dc->common_tls_context = cc;
    switch (ssl->ssl_secrets_case) {
    case SLUICE__V1__SSL_CONFIG__SSL_SECRETS_SECRET_REF: {
        const char *why;
        const Sluice__V1__Secret *sec = tr_find_secret_granted(tx, ssl->secret_ref, def_ns, &why);
        const char *sns = ssl->secret_ref->namespace_ && ssl->secret_ref->namespace_[0] ? ssl->secret_ref->namespace_ : def_ns;
        bool warn = tx->settings->gateway && tx->settings->gateway->validation &&
                    tx->settings->gateway->validation->warn_missing_tls_secret &&
                    tx->settings->gateway->validation->warn_missing_tls_secret->value;
        if (why) { /* handled as a missing secret */
            if (warn)
                tr_warn(tx, "%s.secretRef: %s", p, why);
            else
                tr_error(tx, "%s.secretRef: %s", p, why);
            return NULL;
        }
        if (!sec) {
            if (warn)
                tr_warn(tx, "%s.secretRef: Secret %s.%s not found", p, sns, ssl->secret_ref->name);
            else
                tr_error(tx, "%s.secretRef: Secret %s.%s not found", p, sns, ssl->secret_ref->name);
            return NULL;
        }
        if (sec->spec->kind_case != SLUICE__V1__SECRET_SPEC__KIND_TLS || !sec->spec->tls->cert_chain[0] ||
            !sec->spec->tls->private_key[0]) {
            tr_error(tx, "%s.secretRef: Secret %s.%s is not a TLS secret with certChain and privateKey", p, sns,
                     ssl->secret_ref->name);
            return NULL;
        }
        TR_PUSH(tx, cc, tls_certificate_sds_secret_configs, tr_sds_secret(tx, sec, false));
        if (sec->spec->tls->root_ca[0]) {
            cc->validation_context_type_case =
                ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT_SDS_SECRET_CONFIG;
            cc->validation_context_sds_secret_config = tr_sds_secret(tx, sec, true);
            if (!(ssl->one_way_tls && ssl->one_way_tls->value))
                dc->require_client_certificate = tr_bool(tx, true);
        }
        break;
    }
    case SLUICE__V1__SSL_CONFIG__SSL_SECRETS_SSL_FILES: {
        const Sluice__V1__SslFiles *f = ssl->ssl_files;
        if (!f->tls_cert[0] || !f->tls_key[0]) {
            tr_error(tx, "%s.sslFiles: tlsCert and tlsKey are required", p);
            return NULL;
        }
        TR_PUSH(tx, cc, tls_certificates, tr_tls_cert_files(tx, f->tls_cert, f->tls_key));
        if (f->root_ca[0]) {
            cc->validation_context_type_case =
                ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__COMMON_TLS_CONTEXT__VALIDATION_CONTEXT_TYPE_VALIDATION_CONTEXT;
            cc->validation_context = tr_ca_file(tx, f->root_ca);
            if (!(ssl->one_way_tls && ssl->one_way_tls->value))
                dc->require_client_certificate = tr_bool(tx, true);
        }
        break;
    }
    case SLUICE__V1__SSL_CONFIG__SSL_SECRETS_SDS: /* plugins/upstream_ssl.c */
        if (!ssl->sds->certificates_secret_name[0]) {
            tr_error(tx, "%s.sds.certificatesSecretName: required (the listener's certificate)", p);
            return NULL;
        }
        if (!tr_sds_config(tx, ssl->sds, tr_printf(tx, "%s.sds", p), ssl->n_verify_subject_alt_name,
                           ssl->verify_subject_alt_name, cc))
            return NULL;
        if (ssl->sds->validation_context_name[0] && !(ssl->one_way_tls && ssl->one_way_tls->value))
            dc->require_client_certificate = tr_bool(tx, true);
        break;
    default:
        tr_error(tx, "%s: secretRef or sslFiles is required", p);
        return NULL;
    }
    if (ssl->n_verify_subject_alt_name && ssl->ssl_secrets_case != SLUICE__V1__SSL_CONFIG__SSL_SECRETS_SDS)
        tr_error(tx, "%s.verifySubjectAltName: not supported by Sluice yet (only with sds)", p);
    /* transportSocketConnectTimeout: on the filter chain (tr_tls_chain_timeout) */
    if (ssl->parameters)
        cc->tls_params = tr_tls_params(tx, ssl->parameters);
    if (ssl->n_alpn_protocols) {
        for (size_t i = 0; i < ssl->n_alpn_protocols; i++)
            TR_PUSH(tx, cc, alpn_protocols, tr_strdup(tx, ssl->alpn_protocols[i]));
    } else {
        TR_PUSH(tx, cc, alpn_protocols, tr_strdup(tx, "h2"));
        TR_PUSH(tx, cc, alpn_protocols, tr_strdup(tx, "http/1.1"));
    }
    if (ssl->disable_tls_session_resumption && ssl->disable_tls_session_resumption->value) {
        dc->session_ticket_keys_type_case =
            ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__DOWNSTREAM_TLS_CONTEXT__SESSION_TICKET_KEYS_TYPE_DISABLE_STATELESS_SESSION_RESUMPTION;
        dc->disable_stateless_session_resumption = 1;
    }
    dc->ocsp_staple_policy = (Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext__OcspStaplePolicy)
                                 ssl->ocsp_staple_policy;
    ts->name = tr_strdup(tx, "envoy.transport_sockets.tls");
    ts->config_type_case = ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__CONFIG_TYPE_TYPED_CONFIG;
    ts->typed_config = tr_any(tx, &dc->base);
    return ts;
}

void tr_tls_chain_timeout(tr_ctx *tx, const Sluice__V1__SslConfig *ssl, Envoy__Config__Listener__V3__FilterChain *fc)
{
    if (ssl->transport_socket_connect_timeout) /* as Gloo's newSslFilterChain */
        fc->transport_socket_connect_timeout = tr_dur(tx, ssl->transport_socket_connect_timeout);
}

/* ssl completed by dflt where it leaves a field unset (Gloo's
 * MergeSslConfig, a shallow merge): a hybrid gateway's matcher gives its
 * HTTP gateway's virtual services their defaults. */
static const Sluice__V1__SslConfig *ssl_merged(tr_ctx *tx, const Sluice__V1__SslConfig *ssl,
                                               const Sluice__V1__SslConfig *dflt)
{
    return (const Sluice__V1__SslConfig *)tr_merge_options(tx, dflt ? &dflt->base : NULL, &ssl->base);
}

/* A filter chain of the gateway being translated: its SNI set, and the
 * TLS configuration (packed) of the virtual service that owns it. */
typedef struct chain_item {
    const char *sni;
    const char *identity;
    const tr_vs_item *owner;
    Envoy__Config__Listener__V3__FilterChain *fc;
} chain_item;

/* The filter chain of it (key: its SNI set, id: its TLS configuration),
 * with its transport socket and SNI match; NULL when the TLS
 * configuration is unusable (reported: it is dropped). */
static chain_item *sni_chain(tr_ctx *tx, tr_vs_item *it, const Sluice__V1__SslConfig *ssl, const char *key,
                             const char *id)
{
    chain_item *ci = tr_alloc(tx, sizeof *ci);
    int before = tx->cur ? tx->cur->errors : 0;
    ci->sni = key;
    ci->identity = id;
    ci->owner = it;
    ci->fc = TR_NEW(tx, envoy__config__listener__v3__filter_chain);
    ci->fc->transport_socket = tr_downstream_tls(tx, ssl, tr_md_ns(it->vs->metadata), "spec.sslConfig");
    if (!ci->fc->transport_socket) {
        if (tx->cur && tx->cur->errors > before)
            *tr_flag(tx, tr_kind.vs, (size_t)it->idx) |= TR_REJECTED;
        it->dropped = true;
        tr_forget_vhost(tx, it->vh->name);
        return NULL;
    }
    tr_tls_chain_timeout(tx, ssl, ci->fc);
    if (ssl->n_sni_domains) {
        ci->fc->filter_chain_match = TR_NEW(tx, envoy__config__listener__v3__filter_chain_match);
        for (size_t d = 0; d < ssl->n_sni_domains; d++)
            TR_PUSH(tx, ci->fc->filter_chain_match, server_names, tr_strdup(tx, ssl->sni_domains[d]));
    }
    return ci;
}

size_t tr_sni_chains(tr_ctx *tx, const tr_gw_item *g, const char *lname, const Sluice__V1__SslConfig *dflt,
                     tr_gw_vhosts *v, Envoy__Config__Listener__V3__FilterChain ***chains)
{
    tr_bucket *vb = tr_bucket_of(tx, tr_kind.vs);
    tr_map by_sni = {0};
    size_t n = 0;
    *chains = tr_alloc(tx, (v->n_items + 1) * sizeof **chains);
    for (size_t k = 0; k < v->n_items; k++) {
        tr_vs_item *it = &v->items[k];
        const Sluice__V1__SslConfig *ssl;
        const char *key, *id;
        chain_item *ci;
        tr_cur vcur = tr_cur_of(tr_kind.vs, &vb->v[it->idx]);
        if (it->dropped)
            continue;
        ssl = ssl_merged(tx, it->vs->spec->ssl_config, dflt);
        key = sni_key(tx, ssl);
        id = ssl_identity(tx, ssl);
        ci = tr_map_get(&by_sni, key);
        tx->cur = (*tr_flag(tx, tr_kind.vs, (size_t)it->idx) & TR_REJECTED) ? NULL : &vcur;
        if (ci) {
            /* the same set with another certificate is a conflict: the
             * older virtual service (the first) keeps it */
            if (strcmp(ci->identity, id) != 0) {
                const tr_entry *o = &vb->v[ci->owner->idx];
                tr_error(tx, "spec.sslConfig: the SNI domains [%s] of Gateway %s.%s are already served with another "
                             "TLS configuration by VirtualService %s.%s",
                         key, g->ns, g->name, o->ns, o->name);
                *tr_flag(tx, tr_kind.vs, (size_t)it->idx) |= TR_REJECTED;
                it->dropped = true;
                tr_forget_vhost(tx, it->vh->name);
            }
            tx->cur = NULL;
            continue;
        }
        ci = sni_chain(tx, it, ssl, key, id);
        tx->cur = NULL;
        if (!ci)
            continue;
        ci->fc->name = tr_printf(tx, "%s-%zu", lname, n);
        tr_map_put(tx, &by_sni, key, ci);
        (*chains)[n++] = ci->fc;
    }
    return n;
}
