/* lease.c - see sluice/lease.h. */
#include "sluice/lease.h"
#include "sluice/service.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sluice/kv.h"
#include "sluice/log.h"

/* Slice of a wait, so that sl_lease_free() never waits long. */
#define WAIT_SLICE_MS 100

struct sl_lease {
    sl_kv *kv;
    sl_kv_watch *watch; /* the key, while waiting for it */
    char *name;
    char *value; /* JSON: who holds it */
    char host[256];
    char instance[64];
    int64_t ttl_ms;
    void (*on_acquired)(void *ud);
    void (*on_lost)(void *ud);
    void *ud;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    bool stop;
    bool held;
    uint64_t rev;       /* the revision we last wrote */
    int64_t renewed_ms; /* when it was last written (monotonic) */
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool stopping(sl_lease *l)
{
    pthread_mutex_lock(&l->mu);
    bool s = l->stop;
    pthread_mutex_unlock(&l->mu);
    return s;
}

static void set_held(sl_lease *l, bool held, uint64_t rev)
{
    pthread_mutex_lock(&l->mu);
    l->held = held;
    l->rev = rev;
    if (held)
        l->renewed_ms = mono_ms();
    pthread_mutex_unlock(&l->mu);
}

/* When process pid started (clock ticks since boot, /proc/<pid>/stat field
 * 22), or 0 when it does not run or /proc cannot tell. */
static uint64_t proc_start(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* after the command name, which may hold spaces */
    unsigned long long start = 0;
    /* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
     * utime stime cutime cstime priority nice threads itrealvalue starttime */
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
                     &start) != 1)
        return 0;
    return start;
}

/* Whether the value stored was left by a process of this host that no
 * longer runs: its pid is gone, or now belongs to another process (a
 * container's pid 1 after a restart). */
static bool left_by_dead_process(const sl_lease *l, const sl_kv_entry *e)
{
    json_error_t err;
    json_t *j = json_loadb((const char *)e->value, e->len, 0, &err);
    bool stale = false;
    if (j) {
        const char *host = json_string_value(json_object_get(j, "host"));
        json_int_t pid = json_integer_value(json_object_get(j, "pid"));
        uint64_t started = (uint64_t)json_integer_value(json_object_get(j, "processStart"));
        if (host && pid > 0 && strcmp(host, l->host) == 0) {
            uint64_t now = proc_start((pid_t)pid);
            if (now)
                stale = started && now != started;
            else
                stale = kill((pid_t)pid, 0) != 0 && errno == ESRCH;
        }
        json_decref(j);
    }
    return stale;
}

/* One attempt to take the lease. */
static bool try_acquire(sl_lease *l)
{
    uint64_t rev = 0;
    sl_status rc = sl_kv_create(&rev, l->kv, l->name, l->value, strlen(l->value));
    if (rc == SL_ERR_EXISTS) {
        sl_kv_entry e = {0};
        if (sl_kv_get(&e, l->kv, l->name) != SL_OK)
            return false;
        bool stale = left_by_dead_process(l, &e);
        uint64_t last = e.revision;
        if (stale)
            sl_log_info("lease", "taking over the lease a dead process of this host left", "lease=%s holder=%.*s",
                        l->name, (int)e.len, (const char *)e.value);
        sl_kv_entry_deinit(&e);
        if (!stale || sl_kv_update(&rev, l->kv, l->name, l->value, strlen(l->value), last) != SL_OK)
            return false;
        rc = SL_OK;
    }
    if (rc != SL_OK) {
        sl_log_warn("lease", "cannot take the lease", "lease=%s err=%s", l->name, sl_log_q(sl_error_msg()));
        return false;
    }
    set_held(l, true, rev);
    return true;
}

/* Renews; false when the lease is lost. */
static bool renew(sl_lease *l)
{
    uint64_t rev = 0;
    pthread_mutex_lock(&l->mu);
    uint64_t last = l->rev;
    int64_t renewed = l->renewed_ms;
    pthread_mutex_unlock(&l->mu);
    sl_status rc = sl_kv_update(&rev, l->kv, l->name, l->value, strlen(l->value), last);
    if (rc == SL_OK) {
        set_held(l, true, rev);
        return true;
    }
    if (rc == SL_ERR_CONFLICT) {
        sl_log_error("lease", "lease lost: someone else holds it", "lease=%s", l->name);
        return false;
    }
    if (mono_ms() - renewed >= l->ttl_ms) {
        sl_log_error("lease", "lease lost: not renewed within its TTL", "lease=%s err=%s", l->name,
                     sl_log_q(sl_error_msg()));
        return false;
    }
    sl_log_warn("lease", "renewal failed; retrying", "lease=%s err=%s", l->name, sl_log_q(sl_error_msg()));
    return true;
}

/* Waits ms, or less when a stop is asked or, when early is set, when the
 * key is deleted (a waiter sees a release at once). The watch is read
 * while holding too, so its events never pile up. */
static void wait_for(sl_lease *l, int64_t ms, bool early)
{
    int64_t end = mono_ms() + ms;
    while (!stopping(l)) {
        int64_t left = end - mono_ms();
        if (left <= 0)
            return;
        if (left > WAIT_SLICE_MS)
            left = WAIT_SLICE_MS;
        if (!l->watch) {
            struct timespec ts = {0, (long)left * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        sl_kv_entry e = {0};
        bool initial = false;
        sl_status rc = sl_kv_watch_next(&e, &initial, l->watch, left);
        if (rc == SL_OK && !initial) {
            bool gone = e.op != SL_KV_PUT;
            sl_kv_entry_deinit(&e);
            if (gone && early)
                return;
        } else if (rc != SL_OK && rc != SL_ERR_TIMEOUT) {
            sl_kv_watch_free(l->watch); /* polling still works */
            l->watch = NULL;
        }
    }
}

static void *lease_main(void *ud)
{
    sl_lease *l = ud;
    while (!stopping(l)) {
        if (!l->held) { /* only this thread changes it */
            if (try_acquire(l)) {
                sl_log_info("lease", "lease taken", "lease=%s ttl_ms=%" PRId64, l->name, l->ttl_ms);
                if (l->on_acquired && !stopping(l))
                    l->on_acquired(l->ud);
                continue;
            }
            wait_for(l, l->ttl_ms / 4, true);
        } else {
            wait_for(l, l->ttl_ms / 3, false);
            if (stopping(l))
                break;
            if (!renew(l)) {
                set_held(l, false, 0);
                if (l->on_lost && !stopping(l))
                    l->on_lost(l->ud);
            }
        }
    }
    return NULL;
}

/* Values live as long as the bucket's max age, which an earlier start may
 * have set to another TTL: renew (and judge a loss) by the shorter one, or
 * the key would expire between renewals. */
static void bucket_ttl(sl_lease *l, sl_nats *nc)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    if (js_GetStreamInfo(&si, sl_nats_js(nc), "KV_" SL_LEASES_BUCKET, NULL, &jerr) != NATS_OK || !si)
        return;
    int64_t age_ms = si->Config ? si->Config->MaxAge / 1000000 : 0;
    jsStreamInfo_Destroy(si);
    if (age_ms > 0 && age_ms != l->ttl_ms) {
        sl_log_warn("lease", "the leases bucket has another TTL; the shorter one counts", "lease=%s ttl_ms=%" PRId64
                    " bucket_ttl_ms=%" PRId64, l->name, l->ttl_ms, age_ms);
        if (age_ms < l->ttl_ms)
            l->ttl_ms = age_ms;
    }
}

sl_status sl_lease_start(sl_lease **out, sl_nats *nc, const sl_lease_opts *o)
{
    sl_kv_config cfg;
    sl_status rc;
    sl_lease *l;

    *out = NULL;
    if (!o || !o->name || !sl_kv_key_valid(o->name) || o->ttl_ms <= 0)
        return sl_error_set(SL_ERR_INVALID, "lease: a valid key name and a TTL > 0 are required");
    if (!(l = calloc(1, sizeof *l)))
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&l->mu, NULL);
    l->ttl_ms = o->ttl_ms;
    l->on_acquired = o->on_acquired;
    l->on_lost = o->on_lost;
    l->ud = o->ud;
    gethostname(l->host, sizeof l->host - 1);
    {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(l->instance, sizeof l->instance, "%ld-%08lx", (long)getpid(),
                 (unsigned long)((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)(uintptr_t)l));
    }
    json_t *v = json_pack("{s:s, s:s, s:s, s:I, s:I}", "service", o->service ? o->service : "", "host", l->host,
                          "instance", l->instance, "pid", (json_int_t)getpid(), "processStart",
                          (json_int_t)proc_start(getpid()));
    l->value = v ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(v);
    if (!(l->name = strdup(o->name)) || !l->value) {
        rc = sl_error_set(SL_ERR_NOMEM, "out of memory");
        goto fail;
    }
    sl_kv_config_init(&cfg, SL_LEASES_BUCKET);
    cfg.description = "One holder at a time among a service's replicas (sluice/lease.h)";
    cfg.ttl_ms = o->ttl_ms;
    if ((rc = sl_kv_open(&l->kv, nc, &cfg)) != SL_OK)
        goto fail;
    bucket_ttl(l, nc);
    sl_kv_watch_opts wo = {l->name, false};
    if (sl_kv_watch_new(&l->watch, l->kv, &wo) != SL_OK)
        l->watch = NULL; /* polling alone then */
    if (pthread_create(&l->thread, NULL, lease_main, l) != 0) {
        rc = sl_error_set(SL_ERR_INTERNAL, "lease: cannot start its thread");
        goto fail;
    }
    l->started = true;
    *out = l;
    return SL_OK;
fail:
    sl_lease_free(l);
    return rc;
}

bool sl_lease_held(sl_lease *l)
{
    if (!l)
        return false;
    pthread_mutex_lock(&l->mu);
    bool h = l->held && mono_ms() - l->renewed_ms < l->ttl_ms;
    pthread_mutex_unlock(&l->mu);
    return h;
}

void sl_lease_free(sl_lease *l)
{
    if (!l)
        return;
    if (l->started) {
        pthread_mutex_lock(&l->mu);
        l->stop = true;
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
    }
    if (l->held && l->kv) {
        if (sl_kv_delete(NULL, l->kv, l->name, l->rev) == SL_OK)
            sl_log_info("lease", "lease released", "lease=%s", l->name);
        else
            sl_log_warn("lease", "could not release the lease; it expires with its TTL", "lease=%s err=%s", l->name,
                        sl_log_q(sl_error_msg()));
    }
    sl_kv_watch_free(l->watch);
    sl_kv_free(l->kv);
    pthread_mutex_destroy(&l->mu);
    free(l->name);
    free(l->value);
    free(l);
}

sl_status sl_lease_start_service(sl_lease **out, sl_nats *nc, struct sl_service *svc, const char *comp,
                                 const sl_lease_opts *o)
{
    sl_status st;
    *out = NULL;
    if (o->ttl_ms <= 0) {
        o->on_acquired(o->ud);
        return SL_OK;
    }
    if ((st = sl_lease_start(out, nc, o)) != SL_OK)
        return st;
    sl_service_set_ready(svc, true);
    sl_log_info(comp, "waiting for the lease", "lease=%s ttl_ms=%lld", o->name, (long long)o->ttl_ms);
    return SL_OK;
}
