/* ratelimit: local (per proxy) rate limiting with token buckets on routes
 * and virtual hosts (localRatelimit, or Gloo's place for it,
 * ratelimit.localRatelimit), and the listener's defaults
 * (httpLocalRatelimit). */
#include "../plugin.h"
#include "envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.pb-c.h"
#include "sluice/v1/ratelimit.pb-c.h"

#define RL_FILTER "envoy.filters.http.local_ratelimit"

static const char *const fields[] = {"RouteOptions.local_ratelimit", "VirtualHostOptions.local_ratelimit",
                                     "HttpListenerOptions.http_local_ratelimit", NULL};
const sl_tr_plugin sl_tr_plugin_ratelimit;

static Envoy__Extensions__Filters__Http__LocalRatelimit__V3__LocalRateLimit *
limit(tr_ctx *tx, const Sluice__V1__TokenBucket *b, const char *prefix, const char *path)
{
    Envoy__Extensions__Filters__Http__LocalRatelimit__V3__LocalRateLimit *l =
        TR_NEW(tx, envoy__extensions__filters__http__local_ratelimit__v3__local_rate_limit);
    Envoy__Config__Core__V3__RuntimeFractionalPercent *on[2];
    l->stat_prefix = tr_strdup(tx, prefix);
    if (b) {
        l->token_bucket = tr_token_bucket(tx, b, path);
        for (int i = 0; i < 2; i++) {
            on[i] = TR_NEW(tx, envoy__config__core__v3__runtime_fractional_percent);
            on[i]->default_value = TR_NEW(tx, envoy__type__v3__fractional_percent);
            on[i]->default_value->numerator = 100;
            on[i]->runtime_key = tr_printf(tx, "%s_%s", prefix, i ? "enforced" : "enabled");
        }
        l->filter_enabled = on[0];
        l->filter_enforced = on[1];
    }
    return l;
}

/* The token bucket of an option: localRatelimit (Sluice's place), or
 * ratelimit.localRatelimit (Gloo's); both set is an error. *sub is the
 * field path of the one used. */
static const Sluice__V1__TokenBucket *bucket(tr_ctx *tx, const Sluice__V1__TokenBucket *own,
                                             const Sluice__V1__TokenBucket *gloo, const char *path, const char **sub)
{
    if (own && gloo)
        tr_error(tx, "%s: both localRatelimit and ratelimit.localRatelimit set (one place for the bucket)", path);
    *sub = own ? "localRatelimit" : "ratelimit.localRatelimit";
    return own ? own : gloo;
}

static void route(tr_ctx *tx, const tr_route_in *in, tr_route_t *r)
{
    const Sluice__V1__TokenBucket *b;
    const char *sub;
    if (!in->options ||
        !(b = bucket(tx, in->options->local_ratelimit,
                     in->options->ratelimit ? in->options->ratelimit->local_ratelimit : NULL, in->path, &sub)))
        return;
    tr_route_filter_config(tx, r, RL_FILTER,
                           &limit(tx, b, "local_rate_limit_route", tr_printf(tx, "%s.%s", in->path, sub))->base);
    tr_use(tx, &sl_tr_plugin_ratelimit);
}

static void virtual_host(tr_ctx *tx, const tr_vhost_in *in, tr_vhost_t *vh)
{
    const Sluice__V1__TokenBucket *b;
    const char *sub;
    if (!in->options ||
        !(b = bucket(tx, in->options->local_ratelimit,
                     in->options->ratelimit ? in->options->ratelimit->local_ratelimit : NULL, in->path, &sub)))
        return;
    tr_vhost_filter_config(tx, vh, RL_FILTER,
                           &limit(tx, b, "local_rate_limit_vhost", tr_printf(tx, "%s.%s", in->path, sub))->base);
    tr_use(tx, &sl_tr_plugin_ratelimit);
}

static void http_filters(tr_ctx *tx, const tr_gateway *gw, tr_hcm_t *hcm, tr_filters *f)
{
    const Sluice__V1__HttpGateway *hg = gw->gw->spec->http_gateway;
    const Sluice__V1__LocalRatelimitSettings *s = hg && hg->options ? hg->options->http_local_ratelimit : NULL;
    Envoy__Extensions__Filters__Http__LocalRatelimit__V3__LocalRateLimit *l;
    (void)hcm;
    if (!s && !tr_used(tx, &sl_tr_plugin_ratelimit))
        return;
    l = limit(tx, s ? s->default_limit : NULL, "local_rate_limit",
              "spec.httpGateway.options.httpLocalRatelimit.defaultLimit");
    if (s && s->local_rate_limit_per_downstream_connection)
        l->local_rate_limit_per_downstream_connection = s->local_rate_limit_per_downstream_connection->value;
    if (s && s->enable_x_ratelimit_headers && s->enable_x_ratelimit_headers->value)
        l->enable_x_ratelimit_headers =
            ENVOY__EXTENSIONS__COMMON__RATELIMIT__V3__XRATE_LIMIT_HEADERS_RFCVERSION__DRAFT_VERSION_03;
    tr_add_filter(tx, f, TR_STAGE_RATELIMIT, RL_FILTER, &l->base);
}

const sl_tr_plugin sl_tr_plugin_ratelimit = {
    .name = "ratelimit",
    .fields = fields,
    .http_filters = http_filters,
    .virtual_host = virtual_host,
    .route = route,
};
