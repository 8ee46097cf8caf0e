/* ticker.c - a task posted to a loop every interval, at most one queued (sl_ticker, sluice/service.h). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "sluice/service.h"

struct sl_ticker {
    sl_loop *loop;
    int64_t interval_ms;
    sl_loop_fn fn;
    void *ud;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop; /* under mu */
    atomic_bool queued;
};

static void tick_run(void *ud)
{
    sl_ticker *t = ud;
    atomic_store(&t->queued, false);
    t->fn(t->ud);
}

static void tick_dropped(void *ud)
{
    sl_ticker *t = ud;
    atomic_store(&t->queued, false);
}

static void *ticker_main(void *ud)
{
    sl_ticker *t = ud;
    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += t->interval_ms / 1000;
        until.tv_nsec += (t->interval_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!t->stop && pthread_cond_timedwait(&t->cv, &t->mu, &until) == 0)
            ;
        if (t->stop)
            break;
        if (!atomic_exchange(&t->queued, true) && sl_loop_post(t->loop, t, tick_run, tick_dropped, t) != SL_OK)
            atomic_store(&t->queued, false);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

sl_status sl_ticker_start(sl_ticker **out, sl_loop *l, int64_t interval_ms, sl_loop_fn fn, void *ud)
{
    sl_ticker *t;
    *out = NULL;
    if (interval_ms <= 0 || !fn)
        return sl_error_set(SL_ERR_INVALID, "ticker: interval %lldms", (long long)interval_ms);
    if (!(t = calloc(1, sizeof *t)))
        return sl_error_set(SL_ERR_NOMEM, "out of memory");
    *t = (sl_ticker){.loop = l, .interval_ms = interval_ms, .fn = fn, .ud = ud};
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    if (pthread_create(&t->thread, NULL, ticker_main, t) != 0) {
        pthread_mutex_destroy(&t->mu);
        pthread_cond_destroy(&t->cv);
        free(t);
        return sl_error_set(SL_ERR_INTERNAL, "cannot start the ticker");
    }
    *out = t;
    return SL_OK;
}

void sl_ticker_free(sl_ticker *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    t->stop = true;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    sl_loop_cancel(t->loop, t);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t);
}
