/* aws_lambda: AWS Lambda upstreams and routes to their functions.
 *
 * The upstream (spec.aws) becomes a LOGICAL_DNS cluster to
 * lambda.<region>.amazonaws.com:443 over TLS. A route whose destination
 * spec is aws calls one of the upstream's lambdaFunctions: Envoy's stock
 * aws_lambda filter, added to the chain disabled and enabled per route
 * (FilterConfig) with the function's ARN, the invocation mode and the
 * credentials of the upstream's secret (request signing). Without a
 * secretRef the filter has no credentials and Envoy signs with its own
 * credential chain (environment, profile, web identity with AWS_ROLE_ARN,
 * container/instance metadata), which stands in for Gloo's credential
 * discovery and service account (STS) credentials; as in Gloo, Settings
 * gloo.awsOptions must allow one of them, else the upstream is Rejected. Stock Envoy cannot assume a role per upstream
 * (roleArn: a Warning), nor wrap or unwrap payloads in Gloo's formats
 * (requestTransformation, unwrapAsAlb, ...: errors naming the field; the
 * function gets the request body as is: payload_passthrough). */
#include <stddef.h>
#include <string.h>

#include "../plugin.h"
#include "envoy/extensions/filters/http/aws_lambda/v3/aws_lambda.pb-c.h"

#define LAMBDA_FILTER "envoy.filters.http.aws_lambda"

static const char *const fields[] = {"UpstreamSpec.aws", "DestinationSpec.aws", NULL};
const sl_tr_plugin sl_tr_plugin_aws_lambda;

static bool region_ok(const char *r)
{
    if (!r || !r[0])
        return false;
    for (; *r; r++)
        if (!((*r >= 'a' && *r <= 'z') || (*r >= '0' && *r <= '9') || *r == '-'))
            return false;
    return true;
}

/* arn:<partition>:iam::<12 digits>:role/<path and name> */
static bool role_arn_ok(const char *a)
{
    const char *p;
    int digits = 0;
    if (strncmp(a, "arn:", 4) != 0 || !(p = strchr(a + 4, ':')) || p == a + 4 || strncmp(p, ":iam::", 6) != 0)
        return false;
    for (p += 6; *p >= '0' && *p <= '9'; p++)
        digits++;
    return digits == 12 && strncmp(p, ":role/", 6) == 0 && p[6];
}

/* An aws upstream without secretRef is signed with the proxy's own
 * credentials, which Gloo allows only when Settings gloo.awsOptions says
 * where they come from (aws/plugin.go ProcessUpstream): otherwise the
 * upstream is in error, with Gloo's words. */
static void check_proxy_credentials(tr_ctx *tx)
{
    const Sluice__V1__GlooOptions *g = tr_settings(tx)->gloo;
    const Sluice__V1__GlooOptions__AWSOptions *o = g ? g->aws_options : NULL;
    if (o && o->credentials_fetcher_case ==
                 SLUICE__V1__GLOO_OPTIONS__AWSOPTIONS__CREDENTIALS_FETCHER_SERVICE_ACCOUNT_CREDENTIALS)
        tr_warn(tx, "spec.aws: signed with the proxy's own credential chain, whose web identity provider reads "
                    "AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN; stock Envoy has no per-filter STS settings, so "
                    "Settings gloo.awsOptions.serviceAccountCredentials cluster, uri, timeout and region are not used");
    else if (!o || !o->enable_credentials_discovey)
        tr_error(tx, "spec.aws.secretRef: no aws secret provided. consider setting enableCredentialsDiscovey to true "
                     "or enabling service account credentials if running in EKS (Settings gloo.awsOptions)");
}

static void cluster(tr_ctx *tx, const tr_upstream_in *in, tr_cluster_t *c)
{
    const Sluice__V1__UpstreamSpec *s = in->up->spec;
    const Sluice__V1__AwsUpstreamSpec *aws;
    Envoy__Config__Endpoint__V3__ClusterLoadAssignment *cla;
    Envoy__Config__Endpoint__V3__LocalityLbEndpoints *lle;
    Envoy__Config__Endpoint__V3__LbEndpoint *le;
    Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext *tls;
    const char *host;
    if (s->upstream_type_case != SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_AWS)
        return;
    aws = s->aws;
    if (!region_ok(aws->region)) {
        tr_error(tx, "spec.aws.region: \"%s\" is not an AWS region", aws->region);
        return;
    }
    if (aws->role_arn[0]) {
        if (!role_arn_ok(aws->role_arn))
            tr_error(tx, "spec.aws.roleArn: \"%s\" is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)",
                     aws->role_arn);
        else if (aws->secret_ref && aws->secret_ref->name[0])
            tr_warn(tx, "spec.aws.roleArn: not used with secretRef (as Gloo, the role is assumed only with the "
                        "proxy's own credentials); requests are signed with the secret's credentials");
        else
            tr_warn(tx, "spec.aws.roleArn: stock Envoy's aws_lambda filter cannot assume a role per upstream; "
                        "requests are signed with the proxy's own credential chain, which assumes the role in the "
                        "proxy's AWS_ROLE_ARN environment (web identity): set AWS_ROLE_ARN=%s there",
                    aws->role_arn);
    }
    if (!aws->secret_ref || !aws->secret_ref->name[0])
        check_proxy_credentials(tx);
    for (size_t i = 0; i < aws->n_lambda_functions; i++)
        if (!aws->lambda_functions[i]->lambda_function_name[0])
            tr_error(tx, "spec.aws.lambdaFunctions[%zu].lambdaFunctionName: required", i);
    host = tr_printf(tx, "lambda.%s.amazonaws.com", aws->region);
    c->type = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DISCOVERY_TYPE__LOGICAL_DNS;
    c->dns_lookup_family = ENVOY__CONFIG__CLUSTER__V3__CLUSTER__DNS_LOOKUP_FAMILY__V4_ONLY;
    c->eds_cluster_config = NULL;
    cla = TR_NEW(tx, envoy__config__endpoint__v3__cluster_load_assignment);
    cla->cluster_name = tr_strdup(tx, c->name);
    lle = TR_NEW(tx, envoy__config__endpoint__v3__locality_lb_endpoints);
    le = TR_NEW(tx, envoy__config__endpoint__v3__lb_endpoint);
    le->host_identifier_case = ENVOY__CONFIG__ENDPOINT__V3__LB_ENDPOINT__HOST_IDENTIFIER_ENDPOINT;
    le->endpoint = TR_NEW(tx, envoy__config__endpoint__v3__endpoint);
    le->endpoint->address = TR_NEW(tx, envoy__config__core__v3__address);
    le->endpoint->address->address_case = ENVOY__CONFIG__CORE__V3__ADDRESS__ADDRESS_SOCKET_ADDRESS;
    le->endpoint->address->socket_address = TR_NEW(tx, envoy__config__core__v3__socket_address);
    le->endpoint->address->socket_address->address = tr_strdup(tx, host);
    le->endpoint->address->socket_address->port_specifier_case =
        ENVOY__CONFIG__CORE__V3__SOCKET_ADDRESS__PORT_SPECIFIER_PORT_VALUE;
    le->endpoint->address->socket_address->port_value = 443;
    TR_PUSH(tx, lle, lb_endpoints, le);
    lle->load_balancing_weight = tr_u32(tx, 1);
    TR_PUSH(tx, cla, endpoints, lle);
    c->load_assignment = cla;
    tls = TR_NEW(tx, envoy__extensions__transport_sockets__tls__v3__upstream_tls_context);
    tls->sni = tr_strdup(tx, host);
    c->transport_socket = TR_NEW(tx, envoy__config__core__v3__transport_socket);
    c->transport_socket->name = tr_strdup(tx, "envoy.transport_sockets.tls");
    c->transport_socket->config_type_case = ENVOY__CONFIG__CORE__V3__TRANSPORT_SOCKET__CONFIG_TYPE_TYPED_CONFIG;
    c->transport_socket->typed_config = tr_any(tx, &tls->base);
}

/* The route's destination spec with the upstream's destinationOverrides:
 * what is set (non-empty, non-zero, true) there wins, as in Gloo. */
static const Sluice__V1__AwsDestinationSpec *with_overrides(tr_ctx *tx, const Sluice__V1__AwsDestinationSpec *d,
                                                            const Sluice__V1__AwsDestinationSpec *o)
{
    Sluice__V1__AwsDestinationSpec *m;
    if (!o)
        return d;
    m = tr_alloc(tx, sizeof *m);
    *m = *d;
    if (o->logical_name[0])
        m->logical_name = o->logical_name;
    if (o->invocation_style)
        m->invocation_style = o->invocation_style;
    m->response_transformation |= o->response_transformation;
    m->unwrap_as_alb |= o->unwrap_as_alb;
    m->unwrap_as_api_gateway |= o->unwrap_as_api_gateway;
    m->wrap_as_api_gateway |= o->wrap_as_api_gateway;
    m->request_transformation |= o->request_transformation;
    return m;
}

static void route(tr_ctx *tx, const tr_route_in *in, tr_route_t *r)
{
    const Sluice__V1__AwsDestinationSpec *d;
    const Sluice__V1__AwsUpstreamSpec *aws;
    const Sluice__V1__LambdaFunctionSpec *fn = NULL;
    const Sluice__V1__Secret *sec;
    Envoy__Extensions__Filters__Http__AwsLambda__V3__PerRouteConfig *pr;
    Envoy__Extensions__Filters__Http__AwsLambda__V3__Config *cfg;
    Envoy__Config__Route__V3__FilterConfig *fc;
    const char *path;
    bool is_aws = in->upstream && in->upstream->spec &&
                  in->upstream->spec->upstream_type_case == SLUICE__V1__UPSTREAM_SPEC__UPSTREAM_TYPE_AWS;

    if (!in->dest_spec || in->dest_spec->destination_type_case != SLUICE__V1__DESTINATION_SPEC__DESTINATION_TYPE_AWS) {
        if (is_aws)
            tr_error(tx, "%s.routeAction.single: a route to an AWS upstream needs destinationSpec.aws", in->route_path);
        return;
    }
    path = tr_printf(tx, "%s.routeAction.single.destinationSpec.aws", in->route_path);
    if (!is_aws) {
        tr_error(tx, "%s: needs an AWS upstream", path);
        return;
    }
    aws = in->upstream->spec->aws;
    d = with_overrides(tx, in->dest_spec->aws, aws->destination_overrides);
    for (size_t i = 0; i < aws->n_lambda_functions; i++) {
        const Sluice__V1__LambdaFunctionSpec *f = aws->lambda_functions[i];
        const char *logical = f->logical_name[0] ? f->logical_name : f->lambda_function_name;
        if (strcmp(logical, d->logical_name) == 0)
            fn = f;
    }
    if (!fn) {
        tr_error(tx, "%s.logicalName: the upstream has no Lambda function \"%s\"", path, d->logical_name);
        return;
    }
    if (!aws->aws_account_id[0]) {
        tr_error(tx, "%s: the upstream needs spec.aws.awsAccountId to build the function ARN", path);
        return;
    }
    {
        /* Envoy's only other payload mode (payload_passthrough: false) wraps
         * the request in its own JSON (raw_path, method, headers,
         * query_string_parameters, body, is_base64_encoded) and requires the
         * function to answer {status_code, headers, cookies, body,
         * is_base64_encoded}: neither Gloo's request event nor ALB's or API
         * Gateway's response shape, and never one without the other. */
        static const struct {
            size_t off;
            const char *json, *why;
        } unsupported[] = {
            {offsetof(Sluice__V1__AwsDestinationSpec, request_transformation), "requestTransformation",
             "Envoy's aws_lambda filter cannot send headers, query and path in Gloo's event format"},
            {offsetof(Sluice__V1__AwsDestinationSpec, wrap_as_api_gateway), "wrapAsApiGateway",
             "Envoy's aws_lambda filter cannot send API Gateway proxy events"},
            {offsetof(Sluice__V1__AwsDestinationSpec, unwrap_as_alb), "unwrapAsAlb",
             "Envoy's aws_lambda filter cannot read ALB target responses"},
            {offsetof(Sluice__V1__AwsDestinationSpec, unwrap_as_api_gateway), "unwrapAsApiGateway",
             "Envoy's aws_lambda filter cannot read API Gateway proxy responses"},
            {offsetof(Sluice__V1__AwsDestinationSpec, response_transformation), "responseTransformation",
             "Envoy's aws_lambda filter cannot parse a JSON response into the body"},
        };
        for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++)
            if (*(const protobuf_c_boolean *)((const char *)d + unsupported[i].off))
                tr_error(tx, "%s.%s: not supported by Sluice: %s (the function gets the request body as sent and "
                             "its response is returned as is)", path, unsupported[i].json, unsupported[i].why);
    }
    sec = NULL;
    if (aws->secret_ref && aws->secret_ref->name[0]) {
        const char *why;
        sec = tr_find_secret_granted(tx, aws->secret_ref, in->upstream->metadata->namespace_, &why);
        if (why) {
            tr_error(tx, "%s: %s", path, why);
            return;
        }
        if (!sec || sec->spec->kind_case != SLUICE__V1__SECRET_SPEC__KIND_AWS) {
            tr_error(tx, "%s: AWS Secret %s.%s of the upstream not found", path,
                     aws->secret_ref->namespace_[0] ? aws->secret_ref->namespace_ : in->upstream->metadata->namespace_,
                     aws->secret_ref->name);
            return;
        }
        if (!sec->spec->aws->access_key[0] || !sec->spec->aws->secret_key[0]) {
            tr_error(tx, "%s: AWS Secret %s.%s of the upstream needs accessKey and secretKey", path,
                     sec->metadata->namespace_, sec->metadata->name);
            return;
        }
    }
    cfg = TR_NEW(tx, envoy__extensions__filters__http__aws_lambda__v3__config);
    cfg->arn = tr_printf(tx, "arn:aws:lambda:%s:%s:function:%s%s%s", aws->region, aws->aws_account_id,
                         fn->lambda_function_name, fn->qualifier[0] ? ":" : "", fn->qualifier);
    cfg->invocation_mode = d->invocation_style == SLUICE__V1__AWS_DESTINATION_SPEC__INVOCATION_STYLE__ASYNC
                               ? ENVOY__EXTENSIONS__FILTERS__HTTP__AWS_LAMBDA__V3__CONFIG__INVOCATION_MODE__ASYNCHRONOUS
                               : ENVOY__EXTENSIONS__FILTERS__HTTP__AWS_LAMBDA__V3__CONFIG__INVOCATION_MODE__SYNCHRONOUS;
    cfg->payload_passthrough = 1;
    if (sec) {
        cfg->credentials = TR_NEW(tx, envoy__extensions__filters__http__aws_lambda__v3__credentials);
        cfg->credentials->access_key_id = tr_strdup(tx, sec->spec->aws->access_key);
        cfg->credentials->secret_access_key = tr_strdup(tx, sec->spec->aws->secret_key);
        cfg->credentials->session_token = tr_strdup(tx, sec->spec->aws->session_token);
    }
    pr = TR_NEW(tx, envoy__extensions__filters__http__aws_lambda__v3__per_route_config);
    pr->invoke_config = cfg;
    fc = TR_NEW(tx, envoy__config__route__v3__filter_config);
    fc->config = tr_any(tx, &pr->base);
    tr_route_filter_config(tx, r, LAMBDA_FILTER, &fc->base);
    if (r->action_case == ENVOY__CONFIG__ROUTE__V3__ROUTE__ACTION_ROUTE) {
        r->route->host_rewrite_specifier_case =
            ENVOY__CONFIG__ROUTE__V3__ROUTE_ACTION__HOST_REWRITE_SPECIFIER_HOST_REWRITE_LITERAL;
        r->route->host_rewrite_literal = tr_printf(tx, "lambda.%s.amazonaws.com", aws->region);
    }
    if (in->gw->proxyless)
        tr_warn(tx, "%s: gRPC proxyless clients do not run HTTP filters", path);
    tr_use(tx, &sl_tr_plugin_aws_lambda);
}

static void http_filters(tr_ctx *tx, const tr_gateway *gw, tr_hcm_t *hcm, tr_filters *f)
{
    Envoy__Extensions__Filters__Http__AwsLambda__V3__Config *cfg;
    (void)gw;
    (void)hcm;
    if (!tr_used(tx, &sl_tr_plugin_aws_lambda))
        return;
    /* Disabled by default; the routes that call a function enable it with
     * their own configuration. The listener-level ARN is required by
     * Envoy's rules but never used. */
    cfg = TR_NEW(tx, envoy__extensions__filters__http__aws_lambda__v3__config);
    cfg->arn = tr_strdup(tx, "arn:aws:lambda:us-east-1:000000000000:function:sluice-disabled");
    tr_add_filter(tx, f, TR_STAGE_UPSTREAM, LAMBDA_FILTER, &cfg->base);
    tr_disable_filter(f, LAMBDA_FILTER);
}

const sl_tr_plugin sl_tr_plugin_aws_lambda = {
    .name = "aws_lambda",
    .fields = fields,
    .http_filters = http_filters,
    .route = route,
    .cluster = cluster,
};
