/* follow.c - Range, then Watch from the next revision, resumed where it stopped (sluice/etcd_follow.h). */
#include "sluice/etcd_follow.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sluice/log.h"

#define COMP "etcd"
#define POLL_MS 250 /* how long a watch waits before the stop flag is looked at */

struct sl_etcd_follow {
    sl_etcd_follow_opts o;
    char *endpoints, *prefix;
    char **list; /* the endpoints, split */
    size_t n_list;
    pthread_t thread;
    atomic_bool stop;
};

void sl_etcd_batch_free(sl_etcd_batch *b)
{
    if (!b)
        return;
    sl_etcd_kvs_free(b->kvs, b->n_kvs);
    sl_etcd_events_free(b->events, b->n_events);
    free(b);
}

static sl_etcd_batch *batch_new(sl_etcd_step step, const char *server)
{
    sl_etcd_batch *b = calloc(1, sizeof *b);
    if (b) {
        b->step = step;
        snprintf(b->server, sizeof b->server, "%s", server);
    }
    return b;
}

/* Sleeps ms in steps, returning early when stopped. */
static void nap(sl_etcd_follow *s, int64_t ms)
{
    struct timespec ts = {0, 50 * 1000000L};
    for (int64_t t = 0; t < ms && !atomic_load(&s->stop); t += 50)
        nanosleep(&ts, NULL);
}

/* Says that the source failed (once until it answers again). */
static void failed(sl_etcd_follow *s, const char *server, bool *said)
{
    sl_etcd_batch *b;
    if (*said)
        return;
    sl_log_warn(COMP, "etcd failed", "server=%s err=%s", server, sl_log_q(sl_error_msg()));
    if (!(b = batch_new(SL_ETCD_FAILED, server)))
        return;
    snprintf(b->error, sizeof b->error, "%s", sl_error_msg());
    *said = true;
    s->o.cb(b, s->o.ud);
}

/* Follows the watch until it ends; *rev is the last revision applied. */
static sl_status follow(sl_etcd_follow *s, sl_etcd_watch *w, const char *server, int64_t *rev)
{
    while (!atomic_load(&s->stop)) {
        sl_etcd_event *ev = NULL;
        size_t n = 0;
        int64_t r = 0;
        sl_status rc = sl_etcd_watch_next(w, &ev, &n, &r, POLL_MS);
        if (rc == SL_ERR_TIMEOUT)
            continue;
        if (rc != SL_OK)
            return rc;
        if (!n) { /* a progress notification: everything up to r was sent */
            sl_etcd_events_free(ev, n);
            if (r > *rev)
                *rev = r;
            continue;
        }
        sl_etcd_batch *b = batch_new(SL_ETCD_EVENTS, server);
        *rev = ev[n - 1].kv.mod_revision;
        if (!b) {
            sl_etcd_events_free(ev, n);
            return sl_error_set(SL_ERR_NOMEM, "out of memory");
        }
        b->events = ev;
        b->n_events = n;
        b->revision = *rev;
        s->o.cb(b, s->o.ud);
    }
    return SL_OK;
}

static void *run(void *ud)
{
    sl_etcd_follow *s = ud;
    sl_etcd *c = NULL;
    size_t at = 0;
    int64_t rev = 0; /* the last revision handed over */
    bool need_range = true, said = false;

    while (!atomic_load(&s->stop)) {
        const char *server = s->list[at];
        sl_etcd_watch *w = NULL;
        sl_status rc;
        if (!c && sl_etcd_connect(&c, server, s->o.timeout_ms) != SL_OK)
            goto fail;
        if (need_range) {
            sl_etcd_batch *b = batch_new(SL_ETCD_RESET, server);
            if (!b || sl_etcd_range_prefix(c, s->prefix, &b->kvs, &b->n_kvs, &b->revision, s->o.timeout_ms) != SL_OK) {
                sl_etcd_batch_free(b);
                goto fail;
            }
            rev = b->revision;
            need_range = false;
            said = false;
            sl_log_info(COMP, "registry read", "server=%s prefix=%s keys=%zu revision=%lld", server,
                        sl_log_q(s->prefix), b->n_kvs, (long long)rev);
            s->o.cb(b, s->o.ud);
        }
        rc = sl_etcd_watch_start(&w, c, s->prefix, rev + 1);
        if (rc == SL_ERR_CONFLICT) {
            sl_log_info(COMP, "revision compacted; reading the registry again", "revision=%lld", (long long)rev + 1);
            need_range = true;
            continue;
        }
        if (rc != SL_OK)
            goto fail;
        if (said) { /* it answers again: say so, with nothing changed */
            sl_etcd_batch *b = batch_new(SL_ETCD_EVENTS, server);
            said = false;
            if (b) {
                b->revision = rev;
                s->o.cb(b, s->o.ud);
            }
        }
        sl_log_debug(COMP, "watching", "server=%s from_revision=%lld", server, (long long)rev + 1);
        rc = follow(s, w, server, &rev);
        sl_etcd_watch_free(w);
        if (rc == SL_ERR_CONFLICT)
            need_range = true;
        else if (rc != SL_OK)
            sl_log_info(COMP, "watch ended; resuming", "server=%s revision=%lld err=%s", server, (long long)rev,
                        sl_log_q(sl_error_msg()));
        continue; /* the same channel first: a server restarting answers again soon */
    fail:
        failed(s, server, &said);
        sl_etcd_close(c);
        c = NULL;
        at = (at + 1) % s->n_list;
        nap(s, s->o.retry_ms);
    }
    sl_etcd_close(c);
    return NULL;
}

static void etcd_free_fields(sl_etcd_follow *s)
{
    free(s->endpoints);
    free(s->prefix);
    free(s->list);
    free(s);
}

sl_status sl_etcd_follow_start(sl_etcd_follow **out, const sl_etcd_follow_opts *o)
{
    sl_etcd_follow *s = calloc(1, sizeof *s);
    char *save = NULL;
    *out = NULL;
    if (!s)
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    s->o = *o;
    if (!(s->endpoints = strdup(o->endpoints)) || !(s->prefix = strdup(o->prefix ? o->prefix : "")) ||
        !(s->list = calloc(strlen(o->endpoints) / 2 + 1, sizeof *s->list))) {
        etcd_free_fields(s);
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    }
    for (char *t = strtok_r(s->endpoints, ",", &save); t; t = strtok_r(NULL, ",", &save))
        s->list[s->n_list++] = t;
    if (!s->n_list) {
        etcd_free_fields(s);
        return sl_error_set(SL_ERR_INVALID, "no etcd endpoint given");
    }
    if (pthread_create(&s->thread, NULL, run, s) != 0) {
        etcd_free_fields(s);
        return sl_error_set(SL_ERR_INTERNAL, "cannot start the etcd thread");
    }
    *out = s;
    return SL_OK;
}

void sl_etcd_follow_free(sl_etcd_follow *s)
{
    if (!s)
        return;
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    etcd_free_fields(s);
}
