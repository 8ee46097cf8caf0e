/* proxies.c - the per-proxy state in KV sluice_proxies (see proxies.h). */
#include "proxies.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sluice/kv.h"
#include "sluice/log.h"

#define TICK_MS 1000 /* at most one put per proxy per tick */

struct xds_proxies {
    xds_server *srv;
    sl_xds_cache *cache;
    sl_kv *kv;
    char *instance;
    char inst_token[256];
    int64_t interval_ms;
    pthread_t thread;
    int started;
    pthread_mutex_t mu; /* stop flag */
    pthread_cond_t cv;
    int stop;
    json_t *published; /* key -> the value last put (string) */
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Under the server's registry lock: memory only. */
static void gather(void *ud, const xds_stream_state *st)
{
    json_t *byproxy = ud, *arr = json_object_get(byproxy, st->proxy);
    if (!arr) {
        arr = json_array();
        if (!arr || json_object_set_new(byproxy, st->proxy, arr) != 0)
            return;
    }
    json_array_append_new(arr, json_pack("{s:s, s:I, s:b, s:s}", "node_id", st->node_id, "acked_revision",
                                         (json_int_t)st->synced, "nacked", st->nacked, "last_error", st->error));
}

static void publish(xds_proxies *p, int refresh)
{
    json_t *byproxy = json_object(), *now = json_object();
    const char *proxy, *key;
    json_t *streams, *v;
    void *tmp;
    if (!byproxy || !now)
        goto out;
    xds_server_each(p->srv, gather, byproxy);
    json_object_foreach(byproxy, proxy, streams)
    {
        char esc[768], k[1024];
        if (sl_xds_key_escape(esc, sizeof esc, proxy) != SL_OK)
            continue;
        snprintf(k, sizeof k, "%s.%s", p->inst_token, esc);
        sl_xds_snapshot *snap = sl_xds_cache_get(p->cache, proxy);
        json_t *o = json_pack("{s:s, s:s, s:I, s:O}", "proxy", proxy, "instance", p->instance,
                              "commit_revision_served", (json_int_t)(snap ? snap->revision : 0), "streams",
                              streams);
        sl_xds_snapshot_unref(snap);
        char *val = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (!val)
            continue;
        const char *prev = json_string_value(json_object_get(p->published, k));
        if (refresh || !prev || strcmp(prev, val) != 0) {
            if (sl_kv_put(NULL, p->kv, k, val, strlen(val)) != SL_OK) {
                sl_log_warn("proxies", "cannot publish proxy state", "key=%s err=%s", sl_log_q(k),
                            sl_log_q(sl_error_msg()));
                free(val);
                continue; /* not recorded: tried again next tick */
            }
        }
        json_object_set_new(now, k, json_string(val));
        free(val);
    }
    /* Proxies whose last stream went away. */
    json_object_foreach_safe(p->published, tmp, key, v)
    {
        if (!json_object_get(now, key) && sl_kv_delete(NULL, p->kv, key, 0) != SL_OK)
            sl_log_warn("proxies", "cannot delete proxy state", "key=%s err=%s", sl_log_q(key),
                        sl_log_q(sl_error_msg()));
    }
    json_decref(p->published);
    p->published = now;
    now = NULL;
out:
    json_decref(byproxy);
    json_decref(now);
}

static void *run(void *arg)
{
    xds_proxies *p = arg;
    unsigned seen = xds_server_state_gen(p->srv) - 1; /* publish at once */
    uint64_t last_full = mono_ms();
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        pthread_mutex_unlock(&p->mu);
        unsigned gen = xds_server_state_gen(p->srv);
        uint64_t t = mono_ms();
        int refresh = t - last_full >= (uint64_t)p->interval_ms;
        if (gen != seen || refresh) {
            seen = gen;
            publish(p, refresh);
            if (refresh)
                last_full = t;
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += (long)TICK_MS * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_mutex_lock(&p->mu);
        while (!p->stop && pthread_cond_timedwait(&p->cv, &p->mu, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

sl_status xds_proxies_start(xds_proxies **out, sl_nats *nc, xds_server *srv, sl_xds_cache *cache,
                               const char *instance, int64_t interval_ms)
{
    sl_status rc;
    sl_kv_config cfg;
    xds_proxies *p = calloc(1, sizeof *p);
    if (!p)
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->srv = srv;
    p->cache = cache;
    p->interval_ms = interval_ms > 0 ? interval_ms : 5000;
    if (!(p->instance = strdup(instance)) || !(p->published = json_object())) {
        rc = sl_error_set(SL_ERR_NOMEM, "out of memory");
        goto err;
    }
    if ((rc = sl_xds_key_escape(p->inst_token, sizeof p->inst_token, instance)) != SL_OK)
        goto err;
    sl_kv_config_init(&cfg, XDS_PROXIES_BUCKET);
    cfg.description = "What each connected proxy is on, per xDS server instance (sluice-xds)";
    cfg.ttl_ms = 3 * p->interval_ms;
    cfg.storage = SL_KV_MEMORY;
    if ((rc = sl_kv_open(&p->kv, nc, &cfg)) != SL_OK)
        goto err;
    if (pthread_create(&p->thread, NULL, run, p) != 0) {
        rc = sl_error_set(SL_ERR_NOMEM, "cannot start the proxy state thread");
        goto err;
    }
    p->started = 1;
    *out = p;
    return SL_OK;
err:
    xds_proxies_stop(p);
    return rc;
}

void xds_proxies_stop(xds_proxies *p)
{
    if (!p)
        return;
    if (p->started) {
        pthread_mutex_lock(&p->mu);
        p->stop = 1;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thread, NULL);
    }
    const char *key;
    json_t *v;
    if (p->kv)
        json_object_foreach(p->published, key, v)
        {
            if (sl_kv_delete(NULL, p->kv, key, 0) != SL_OK)
                sl_log_warn("proxies", "cannot delete proxy state", "key=%s err=%s", sl_log_q(key),
                            sl_log_q(sl_error_msg()));
        }
    json_decref(p->published);
    sl_kv_free(p->kv);
    free(p->instance);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
