/* faults: RouteOptions.faults -> the fault filter (per-route config). */
#include "../plugin.h"
#include "envoy/extensions/filters/http/fault/v3/fault.pb-c.h"

#define FAULT_FILTER "envoy.filters.http.fault"

static const char *const fields[] = {"RouteOptions.faults", NULL};
const sl_tr_plugin sl_tr_plugin_faults;

/* percent 0..100 as a fraction of a million */
static Envoy__Type__V3__FractionalPercent *percent(tr_ctx *tx, float pct)
{
    Envoy__Type__V3__FractionalPercent *p = TR_NEW(tx, envoy__type__v3__fractional_percent);
    p->numerator = (uint32_t)(pct * 10000.0f + 0.5f);
    p->denominator = ENVOY__TYPE__V3__FRACTIONAL_PERCENT__DENOMINATOR_TYPE__MILLION;
    return p;
}

static void route(tr_ctx *tx, const tr_route_in *in, tr_route_t *r)
{
    const Sluice__V1__RouteFaults *fl = in->options ? in->options->faults : NULL;
    Envoy__Extensions__Filters__Http__Fault__V3__HTTPFault *f;
    if (!fl || (!fl->abort && !fl->delay))
        return;
    f = TR_NEW(tx, envoy__extensions__filters__http__fault__v3__httpfault);
    if (fl->abort) {
        if (fl->abort->percentage < 0 || fl->abort->percentage > 100)
            tr_error(tx, "%s.faults.abort.percentage: %g is not between 0 and 100", in->path, fl->abort->percentage);
        if (fl->abort->http_status < 200 || fl->abort->http_status > 599)
            tr_error(tx, "%s.faults.abort.httpStatus: %u is not between 200 and 599", in->path, fl->abort->http_status);
        f->abort = TR_NEW(tx, envoy__extensions__filters__http__fault__v3__fault_abort);
        f->abort->percentage = percent(tx, fl->abort->percentage);
        f->abort->error_type_case = ENVOY__EXTENSIONS__FILTERS__HTTP__FAULT__V3__FAULT_ABORT__ERROR_TYPE_HTTP_STATUS;
        f->abort->http_status = fl->abort->http_status;
    }
    if (fl->delay) {
        if (fl->delay->percentage < 0 || fl->delay->percentage > 100)
            tr_error(tx, "%s.faults.delay.percentage: %g is not between 0 and 100", in->path, fl->delay->percentage);
        if (!fl->delay->fixed_delay || tr_dur_to_ms(fl->delay->fixed_delay) <= 0)
            tr_error(tx, "%s.faults.delay.fixedDelay: a positive duration is required", in->path);
        f->delay = TR_NEW(tx, envoy__extensions__filters__common__fault__v3__fault_delay);
        f->delay->percentage = percent(tx, fl->delay->percentage);
        f->delay->fault_delay_secifier_case =
            ENVOY__EXTENSIONS__FILTERS__COMMON__FAULT__V3__FAULT_DELAY__FAULT_DELAY_SECIFIER_FIXED_DELAY;
        f->delay->fixed_delay = tr_dur(tx, fl->delay->fixed_delay);
    }
    tr_route_filter_config(tx, r, FAULT_FILTER, &f->base);
    tr_use(tx, &sl_tr_plugin_faults);
}

static void http_filters(tr_ctx *tx, const tr_gateway *gw, tr_hcm_t *hcm, tr_filters *f)
{
    (void)gw;
    (void)hcm;
    if (tr_used(tx, &sl_tr_plugin_faults)) {
        Envoy__Extensions__Filters__Http__Fault__V3__HTTPFault *c =
            TR_NEW(tx, envoy__extensions__filters__http__fault__v3__httpfault);
        tr_add_filter(tx, f, TR_STAGE_FAULT, FAULT_FILTER, &c->base);
    }
}

const sl_tr_plugin sl_tr_plugin_faults = {
    .name = "faults",
    .fields = fields,
    .http_filters = http_filters,
    .route = route,
};
