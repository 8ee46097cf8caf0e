#include "sluice/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sluice/log.h"

/* One series. The typed handles (sl_counter, sl_gauge, sl_histogram) are
 * pointers to this struct; the family's type decides which fields mean
 * something. */
struct series {
    struct series *next;
    const struct sl_metric_family *family;
    char **values;              /* nlabels copies */
    _Atomic uint64_t value;     /* counter value, or gauge bits (double) */
    _Atomic uint64_t sum_bits;  /* histogram sum (double) */
    _Atomic uint64_t *buckets;  /* histogram: nbounds + 1, not cumulative */
};

struct sl_metric_family {
    struct sl_metric_family *next;
    sl_metric_type type;
    char *name;
    char *help;
    char *labels[SL_METRICS_MAX_LABELS];
    size_t nlabels;
    double bounds[SL_METRICS_MAX_BUCKETS];
    size_t nbounds;
    pthread_mutex_t lock; /* guards the series list (not the values) */
    struct series *series;
    struct series **tail;
};

struct sl_metrics {
    pthread_mutex_t lock; /* guards the family list */
    struct sl_metric_family *families;
    struct sl_metric_family **tail;
};

static uint64_t dbl_bits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof(u));
    return u;
}

static double bits_dbl(uint64_t u)
{
    double v;
    memcpy(&v, &u, sizeof(v));
    return v;
}

sl_status sl_metrics_new(sl_metrics **out)
{
    sl_status st = SL_OK;
    sl_metrics *reg = calloc(1, sizeof(*reg));

    if (reg == NULL) {
        st = sl_error_set(SL_ERR_NOMEM, "metrics registry");
        goto out;
    }
    pthread_mutex_init(&reg->lock, NULL);
    reg->tail = &reg->families;
    *out = reg;
out:
    return st;
}

static void series_free(struct series *s, size_t nlabels)
{
    for (size_t i = 0; s->values != NULL && i < nlabels; i++)
        free(s->values[i]);
    free(s->values);
    free(s->buckets);
    free(s);
}

static void family_free(struct sl_metric_family *f)
{
    struct series *s = f->series;

    while (s != NULL) {
        struct series *next = s->next;
        series_free(s, f->nlabels);
        s = next;
    }
    for (size_t i = 0; i < f->nlabels; i++)
        free(f->labels[i]);
    free(f->name);
    free(f->help);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

void sl_metrics_free(sl_metrics *reg)
{
    struct sl_metric_family *f;

    if (reg == NULL)
        return;
    f = reg->families;
    while (f != NULL) {
        struct sl_metric_family *next = f->next;
        family_free(f);
        f = next;
    }
    pthread_mutex_destroy(&reg->lock);
    free(reg);
}

static int valid_name(const char *s, int allow_colon)
{
    if (s == NULL || *s == '\0')
        return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                    (allow_colon && c == ':');
        if (!alpha && !(p != s && c >= '0' && c <= '9'))
            return 0;
    }
    return 1;
}

static const char *type_name(sl_metric_type t)
{
    switch (t) {
    case SL_METRIC_COUNTER:
        return "counter";
    case SL_METRIC_GAUGE:
        return "gauge";
    case SL_METRIC_HISTOGRAM:
        return "histogram";
    }
    return "untyped";
}

static sl_status check_family_args(sl_metric_type type, const char *name, const char *const *labels,
                                   size_t nlabels, const double *bounds, size_t nbounds)
{
    if (type != SL_METRIC_COUNTER && type != SL_METRIC_GAUGE && type != SL_METRIC_HISTOGRAM)
        return sl_error_set(SL_ERR_INVALID, "metric type %d", (int)type);
    if (!valid_name(name, 1))
        return sl_error_set(SL_ERR_INVALID, "metric name '%s'", name ? name : "(null)");
    if (nlabels > SL_METRICS_MAX_LABELS)
        return sl_error_set(SL_ERR_INVALID, "metric %s: %zu labels, at most %d", name, nlabels,
                            SL_METRICS_MAX_LABELS);
    for (size_t i = 0; i < nlabels; i++) {
        if (!valid_name(labels[i], 0) || strncmp(labels[i], "__", 2) == 0 ||
            (type == SL_METRIC_HISTOGRAM && strcmp(labels[i], "le") == 0))
            return sl_error_set(SL_ERR_INVALID, "metric %s: label name '%s'", name,
                                labels[i] ? labels[i] : "(null)");
        for (size_t j = 0; j < i; j++)
            if (strcmp(labels[i], labels[j]) == 0)
                return sl_error_set(SL_ERR_INVALID, "metric %s: label '%s' twice", name,
                                    labels[i]);
    }
    if (type == SL_METRIC_HISTOGRAM) {
        if (nbounds == 0 || nbounds > SL_METRICS_MAX_BUCKETS)
            return sl_error_set(SL_ERR_INVALID, "histogram %s: %zu buckets, need 1..%d", name,
                                nbounds, SL_METRICS_MAX_BUCKETS);
        for (size_t i = 0; i < nbounds; i++)
            if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
                return sl_error_set(SL_ERR_INVALID,
                                    "histogram %s: bounds must be finite and increasing", name);
    } else if (nbounds != 0) {
        return sl_error_set(SL_ERR_INVALID, "metric %s: only histograms have buckets", name);
    }
    return SL_OK;
}

static int same_family(const struct sl_metric_family *f, sl_metric_type type,
                       const char *const *labels, size_t nlabels, const double *bounds,
                       size_t nbounds)
{
    if (f->type != type || f->nlabels != nlabels || f->nbounds != nbounds)
        return 0;
    for (size_t i = 0; i < nlabels; i++)
        if (strcmp(f->labels[i], labels[i]) != 0)
            return 0;
    for (size_t i = 0; i < nbounds; i++)
        if (f->bounds[i] != bounds[i])
            return 0;
    return 1;
}

sl_status sl_metrics_family_new(sl_metric_family **out, sl_metrics *reg, sl_metric_type type,
                                const char *name, const char *help, const char *const *labels,
                                size_t nlabels, const double *bounds, size_t nbounds)
{
    sl_status st;
    struct sl_metric_family *f = NULL;

    st = check_family_args(type, name, labels, nlabels, bounds, nbounds);
    if (st != SL_OK)
        return st;

    pthread_mutex_lock(&reg->lock);
    for (struct sl_metric_family *e = reg->families; e != NULL; e = e->next) {
        if (strcmp(e->name, name) != 0)
            continue;
        if (same_family(e, type, labels, nlabels, bounds, nbounds))
            *out = e;
        else
            st = sl_error_set(SL_ERR_EXISTS, "metric %s already registered differently", name);
        goto out;
    }

    f = calloc(1, sizeof(*f));
    if (f == NULL)
        goto nomem;
    f->type = type;
    f->name = strdup(name);
    f->help = strdup(help != NULL ? help : "");
    if (f->name == NULL || f->help == NULL)
        goto nomem;
    for (size_t i = 0; i < nlabels; i++) {
        f->labels[i] = strdup(labels[i]);
        if (f->labels[i] == NULL)
            goto nomem;
        f->nlabels = i + 1;
    }
    if (nbounds > 0)
        memcpy(f->bounds, bounds, nbounds * sizeof(*bounds));
    f->nbounds = nbounds;
    pthread_mutex_init(&f->lock, NULL);
    f->tail = &f->series;
    *reg->tail = f;
    reg->tail = &f->next;
    *out = f;
    f = NULL;
    goto out;

nomem:
    st = sl_error_set(SL_ERR_NOMEM, "metric %s", name);
    if (f != NULL) {
        /* The lock was not initialised yet; free the parts by hand. */
        for (size_t i = 0; i < f->nlabels; i++)
            free(f->labels[i]);
        free(f->name);
        free(f->help);
        free(f);
    }
out:
    pthread_mutex_unlock(&reg->lock);
    return st;
}

static sl_status family_series(struct series **out, sl_metric_family *f, sl_metric_type want,
                               const char *const *values)
{
    sl_status st = SL_OK;
    struct series *s = NULL;

    if (f->type != want)
        return sl_error_set(SL_ERR_INVALID, "metric %s is a %s, not a %s", f->name,
                            type_name(f->type), type_name(want));
    for (size_t i = 0; i < f->nlabels; i++)
        if (values == NULL || values[i] == NULL)
            return sl_error_set(SL_ERR_INVALID, "metric %s: no value for label %s", f->name,
                                f->labels[i]);

    pthread_mutex_lock(&f->lock);
    for (s = f->series; s != NULL; s = s->next) {
        size_t i = 0;
        while (i < f->nlabels && strcmp(s->values[i], values[i]) == 0)
            i++;
        if (i == f->nlabels) {
            *out = s;
            goto out;
        }
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        goto nomem;
    if (f->nlabels > 0) {
        s->values = calloc(f->nlabels, sizeof(char *));
        if (s->values == NULL)
            goto nomem;
        for (size_t i = 0; i < f->nlabels; i++) {
            s->values[i] = strdup(values[i]);
            if (s->values[i] == NULL)
                goto nomem;
        }
    }
    if (f->type == SL_METRIC_HISTOGRAM) {
        s->buckets = calloc(f->nbounds + 1, sizeof(*s->buckets));
        if (s->buckets == NULL)
            goto nomem;
    }
    s->family = f;
    atomic_init(&s->value, f->type == SL_METRIC_GAUGE ? dbl_bits(0.0) : 0);
    atomic_init(&s->sum_bits, dbl_bits(0.0));
    *f->tail = s;
    f->tail = &s->next;
    *out = s;
    goto out;

nomem:
    st = sl_error_set(SL_ERR_NOMEM, "metric %s series", f->name);
    if (s != NULL)
        series_free(s, f->nlabels);
out:
    pthread_mutex_unlock(&f->lock);
    return st;
}

sl_status sl_metric_family_counter(sl_counter **out, sl_metric_family *f, const char *const *values)
{
    struct series *s;
    sl_status st = family_series(&s, f, SL_METRIC_COUNTER, values);
    if (st == SL_OK)
        *out = (sl_counter *)s;
    return st;
}

sl_status sl_metric_family_gauge(sl_gauge **out, sl_metric_family *f, const char *const *values)
{
    struct series *s;
    sl_status st = family_series(&s, f, SL_METRIC_GAUGE, values);
    if (st == SL_OK)
        *out = (sl_gauge *)s;
    return st;
}

sl_status sl_metric_family_histogram(sl_histogram **out, sl_metric_family *f,
                                     const char *const *values)
{
    struct series *s;
    sl_status st = family_series(&s, f, SL_METRIC_HISTOGRAM, values);
    if (st == SL_OK)
        *out = (sl_histogram *)s;
    return st;
}

sl_status sl_metrics_counter(sl_counter **out, sl_metrics *reg, const char *name, const char *help)
{
    sl_metric_family *f;
    sl_status st = sl_metrics_family_new(&f, reg, SL_METRIC_COUNTER, name, help, NULL, 0, NULL, 0);
    if (st == SL_OK)
        st = sl_metric_family_counter(out, f, NULL);
    return st;
}

sl_status sl_metrics_gauge(sl_gauge **out, sl_metrics *reg, const char *name, const char *help)
{
    sl_metric_family *f;
    sl_status st = sl_metrics_family_new(&f, reg, SL_METRIC_GAUGE, name, help, NULL, 0, NULL, 0);
    if (st == SL_OK)
        st = sl_metric_family_gauge(out, f, NULL);
    return st;
}

sl_status sl_metrics_histogram(sl_histogram **out, sl_metrics *reg, const char *name,
                               const char *help, const double *bounds, size_t nbounds)
{
    sl_metric_family *f;
    sl_status st = sl_metrics_family_new(&f, reg, SL_METRIC_HISTOGRAM, name, help, NULL, 0,
                                         bounds, nbounds);
    if (st == SL_OK)
        st = sl_metric_family_histogram(out, f, NULL);
    return st;
}

/* ---- updates ---------------------------------------------------------- */

void sl_counter_inc(sl_counter *c)
{
    atomic_fetch_add_explicit(&((struct series *)c)->value, 1, memory_order_relaxed);
}

void sl_counter_add(sl_counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(&((struct series *)c)->value, n, memory_order_relaxed);
}

uint64_t sl_counter_get(const sl_counter *c)
{
    return atomic_load_explicit(&((struct series *)c)->value, memory_order_relaxed);
}

void sl_gauge_set(sl_gauge *g, double v)
{
    atomic_store_explicit(&((struct series *)g)->value, dbl_bits(v), memory_order_relaxed);
}

/* Adds to a double kept as bits: a compare-and-swap loop, as there is no
 * atomic floating-point add. */
static void atomic_add_double(_Atomic uint64_t *bits, double d)
{
    uint64_t old = atomic_load_explicit(bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(bits, &old, dbl_bits(bits_dbl(old) + d),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

void sl_gauge_add(sl_gauge *g, double delta)
{
    atomic_add_double(&((struct series *)g)->value, delta);
}

double sl_gauge_get(const sl_gauge *g)
{
    return bits_dbl(atomic_load_explicit(&((struct series *)g)->value, memory_order_relaxed));
}

void sl_histogram_observe(sl_histogram *h, double v)
{
    struct series *s = (struct series *)h;
    const struct sl_metric_family *f = s->family;
    size_t i = 0;

    /* NaN compares false everywhere and lands in +Inf. */
    while (i < f->nbounds && !(v <= f->bounds[i]))
        i++;
    atomic_fetch_add_explicit(&s->buckets[i], 1, memory_order_relaxed);
    atomic_add_double(&s->sum_bits, v);
}

/* ---- exposition ------------------------------------------------------- */

/* The shortest of %.15g / %.17g that reads back as v, and Prometheus'
 * spellings of the special values. */
static void fmt_double(char *buf, size_t size, double v)
{
    if (isnan(v)) {
        snprintf(buf, size, "NaN");
    } else if (isinf(v)) {
        snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");
    } else {
        snprintf(buf, size, "%.15g", v);
        if (strtod(buf, NULL) != v)
            snprintf(buf, size, "%.17g", v);
    }
}

/* HELP text escapes '\' and newline; label values also '"'. */
static void put_escaped(FILE *f, const char *s, int quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\\\", f);
        else if (*s == '\n')
            fputs("\\n", f);
        else if (quote && *s == '"')
            fputs("\\\"", f);
        else
            fputc(*s, f);
    }
}

/* name{l1="v1",l2="v2"[,le="b"]} */
static void put_series_name(FILE *f, const struct sl_metric_family *fam, const struct series *s,
                            const char *suffix, const char *le)
{
    int first = 1;

    fputs(fam->name, f);
    fputs(suffix, f);
    if (fam->nlabels == 0 && le == NULL)
        return;
    fputc('{', f);
    for (size_t i = 0; i < fam->nlabels; i++) {
        fprintf(f, "%s%s=\"", first ? "" : ",", fam->labels[i]);
        put_escaped(f, s->values[i], 1);
        fputc('"', f);
        first = 0;
    }
    if (le != NULL)
        fprintf(f, "%sle=\"%s\"", first ? "" : ",", le);
    fputc('}', f);
}

static void render_series(FILE *f, const struct sl_metric_family *fam, const struct series *s)
{
    char num[64];

    switch (fam->type) {
    case SL_METRIC_COUNTER:
        put_series_name(f, fam, s, "", NULL);
        fprintf(f, " %llu\n",
                (unsigned long long)atomic_load_explicit(&s->value, memory_order_relaxed));
        break;
    case SL_METRIC_GAUGE:
        fmt_double(num, sizeof(num),
                   bits_dbl(atomic_load_explicit(&s->value, memory_order_relaxed)));
        put_series_name(f, fam, s, "", NULL);
        fprintf(f, " %s\n", num);
        break;
    case SL_METRIC_HISTOGRAM: {
        uint64_t cum = 0;
        for (size_t i = 0; i <= fam->nbounds; i++) {
            char le[64];
            cum += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
            if (i < fam->nbounds)
                fmt_double(le, sizeof(le), fam->bounds[i]);
            else
                snprintf(le, sizeof(le), "+Inf");
            put_series_name(f, fam, s, "_bucket", le);
            fprintf(f, " %llu\n", (unsigned long long)cum);
        }
        fmt_double(num, sizeof(num),
                   bits_dbl(atomic_load_explicit(&s->sum_bits, memory_order_relaxed)));
        put_series_name(f, fam, s, "_sum", NULL);
        fprintf(f, " %s\n", num);
        /* _count is the +Inf bucket, so the two always agree in a scrape. */
        put_series_name(f, fam, s, "_count", NULL);
        fprintf(f, " %llu\n", (unsigned long long)cum);
        break;
    }
    }
}

sl_status sl_metrics_render(char **out, size_t *len, sl_metrics *reg)
{
    sl_status st = SL_OK;
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);

    if (f == NULL) {
        st = sl_error_set(SL_ERR_NOMEM, "metrics render: %s", strerror(errno));
        goto out;
    }
    pthread_mutex_lock(&reg->lock);
    for (struct sl_metric_family *fam = reg->families; fam != NULL; fam = fam->next) {
        fprintf(f, "# HELP %s ", fam->name);
        put_escaped(f, fam->help, 0);
        fprintf(f, "\n# TYPE %s %s\n", fam->name, type_name(fam->type));
        pthread_mutex_lock(&fam->lock);
        for (struct series *s = fam->series; s != NULL; s = s->next)
            render_series(f, fam, s);
        pthread_mutex_unlock(&fam->lock);
    }
    pthread_mutex_unlock(&reg->lock);
    if (ferror(f)) {
        fclose(f);
        st = sl_error_set(SL_ERR_NOMEM, "metrics render");
        goto out;
    }
    if (fclose(f) != 0) {
        st = sl_error_set(SL_ERR_NOMEM, "metrics render");
        goto out;
    }
    *out = buf;
    *len = n;
    buf = NULL;
out:
    free(buf);
    return st;
}

/* ---- HTTP endpoint ---------------------------------------------------- */

#define HTTP_MAX_CONNS 64
#define HTTP_MAX_HEAD 8192
#define HTTP_READ_TIMEOUT_MS 5000
#define HTTP_WRITE_TIMEOUT_MS 10000
#define HTTP_LINGER_MS 2000

struct http_conn {
    int fd; /* -1: free slot */
    int64_t deadline;
    size_t rlen;
    char req[HTTP_MAX_HEAD];
    char *resp; /* malloc'd head + body while writing */
    size_t resp_len;
    size_t resp_off;
    int lingering; /* answer sent, write side shut: reading to EOF */
};

struct sl_metrics_server {
    sl_metrics *reg;
    int lfd;
    int wake[2]; /* a byte on wake[1] stops the thread */
    int port;
    pthread_t thread;
    atomic_bool ready;
    struct http_conn conns[HTTP_MAX_CONNS];
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void conn_close(struct http_conn *c)
{
    close(c->fd);
    c->fd = -1;
    free(c->resp);
    c->resp = NULL;
    c->resp_len = c->resp_off = c->rlen = 0;
    c->lingering = 0;
}

/* Builds the whole answer (head and, unless HEAD, body) into c->resp. */
static void conn_respond(struct http_conn *c, int code, const char *reason, const char *ctype,
                         const char *body, size_t body_len, int head_only)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                     code, reason, ctype, body_len);
    size_t blen = head_only ? 0 : body_len;

    c->resp = malloc((size_t)n + blen);
    if (c->resp == NULL) {
        conn_close(c);
        return;
    }
    memcpy(c->resp, head, (size_t)n);
    if (blen > 0)
        memcpy(c->resp + n, body, blen);
    c->resp_len = (size_t)n + blen;
    c->resp_off = 0;
    c->deadline = now_ms() + HTTP_WRITE_TIMEOUT_MS;
}

static void conn_text(struct http_conn *c, int code, const char *reason, const char *body,
                      int head_only)
{
    conn_respond(c, code, reason, "text/plain; charset=utf-8", body, strlen(body), head_only);
}

/* Called once the request head is complete (or can no longer be). */
static void conn_handle(sl_metrics_server *srv, struct http_conn *c)
{
    char method[16], target[1024], version[16];
    int head_only;
    char *q;

    c->req[c->rlen] = '\0';
    if (sscanf(c->req, "%15s %1023s %15s", method, target, version) != 3 ||
        strncmp(version, "HTTP/1.", 7) != 0 || strchr(c->req, '\n') == NULL) {
        conn_text(c, 400, "Bad Request", "bad request\n", 0);
        return;
    }
    head_only = strcmp(method, "HEAD") == 0;
    if (!head_only && strcmp(method, "GET") != 0) {
        conn_text(c, 405, "Method Not Allowed", "method not allowed\n", 0);
        return;
    }
    q = strchr(target, '?');
    if (q != NULL)
        *q = '\0';
    if (strcmp(target, "/metrics") == 0) {
        char *body = NULL;
        size_t len = 0;
        if (sl_metrics_render(&body, &len, srv->reg) != SL_OK) {
            conn_text(c, 500, "Internal Server Error", "out of memory\n", head_only);
            return;
        }
        conn_respond(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", body, len,
                     head_only);
        free(body);
    } else if (strcmp(target, "/healthz") == 0) {
        conn_text(c, 200, "OK", "ok\n", head_only);
    } else if (strcmp(target, "/readyz") == 0) {
        if (atomic_load(&srv->ready))
            conn_text(c, 200, "OK", "ready\n", head_only);
        else
            conn_text(c, 503, "Service Unavailable", "not ready\n", head_only);
    } else {
        conn_text(c, 404, "Not Found", "not found\n", head_only);
    }
}

static void conn_read(sl_metrics_server *srv, struct http_conn *c)
{
    ssize_t n;

    /* Leave one byte for the terminator conn_handle() adds. */
    n = recv(c->fd, c->req + c->rlen, sizeof(c->req) - 1 - c->rlen, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(c);
        return;
    }
    c->rlen += (size_t)n;
    c->req[c->rlen] = '\0';
    if (strstr(c->req, "\r\n\r\n") != NULL || strstr(c->req, "\n\n") != NULL)
        conn_handle(srv, c);
    else if (c->rlen == sizeof(c->req) - 1)
        conn_text(c, 431, "Request Header Fields Too Large", "request too large\n", 0);
}

static void conn_write(struct http_conn *c)
{
    ssize_t n = send(c->fd, c->resp + c->resp_off, c->resp_len - c->resp_off, MSG_NOSIGNAL);

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(c);
        return;
    }
    c->resp_off += (size_t)n;
    if (c->resp_off == c->resp_len) {
        /* Closing with unread input (an oversized or pipelined request)
         * makes the kernel send a reset, which can destroy the answer
         * before the client reads it. Shut the write side and read until
         * the client closes (or a short deadline) instead. */
        free(c->resp);
        c->resp = NULL;
        c->lingering = 1;
        c->deadline = now_ms() + HTTP_LINGER_MS;
        shutdown(c->fd, SHUT_WR);
    }
}

static void conn_linger(struct http_conn *c)
{
    char scratch[4096];
    ssize_t n = recv(c->fd, scratch, sizeof(scratch), 0);

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0)
        conn_close(c);
}

static void accept_all(sl_metrics_server *srv)
{
    for (;;) {
        struct http_conn *slot = NULL;
        int fd = accept4(srv->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or a transient error such as EMFILE */
        for (size_t i = 0; i < HTTP_MAX_CONNS && slot == NULL; i++)
            if (srv->conns[i].fd < 0)
                slot = &srv->conns[i];
        if (slot == NULL) {
            /* Full: shed the newcomer rather than an answer in flight. */
            close(fd);
            continue;
        }
        slot->fd = fd;
        slot->rlen = 0;
        slot->deadline = now_ms() + HTTP_READ_TIMEOUT_MS;
    }
}

static void *server_main(void *arg)
{
    sl_metrics_server *srv = arg;
    struct pollfd pfd[HTTP_MAX_CONNS + 2];
    struct http_conn *who[HTTP_MAX_CONNS + 2];

    for (;;) {
        int64_t now = now_ms(), next = now + 1000;
        nfds_t n = 0;
        int rc;

        pfd[n] = (struct pollfd){.fd = srv->wake[0], .events = POLLIN};
        who[n++] = NULL;
        pfd[n] = (struct pollfd){.fd = srv->lfd, .events = POLLIN};
        who[n++] = NULL;
        for (size_t i = 0; i < HTTP_MAX_CONNS; i++) {
            struct http_conn *c = &srv->conns[i];
            if (c->fd < 0)
                continue;
            if (c->deadline <= now) {
                conn_close(c); /* too slow, or done lingering */
                continue;
            }
            if (c->deadline < next)
                next = c->deadline;
            pfd[n] = (struct pollfd){.fd = c->fd, .events = c->resp != NULL ? POLLOUT : POLLIN};
            who[n++] = c;
        }
        rc = poll(pfd, n, (int)(next - now));
        if (rc < 0 && errno != EINTR) {
            sl_log_error("metrics", "poll failed", "err=%s", sl_log_q(strerror(errno)));
            break;
        }
        if (rc <= 0)
            continue;
        if (pfd[0].revents != 0)
            break;
        for (nfds_t i = 2; i < n; i++) {
            struct http_conn *c = who[i];
            if (pfd[i].revents == 0 || c->fd < 0)
                continue;
            if (c->lingering)
                conn_linger(c);
            else if (c->resp != NULL)
                conn_write(c);
            else
                conn_read(srv, c);
        }
        if (pfd[1].revents & POLLIN)
            accept_all(srv);
    }
    return NULL;
}

/* Splits "host:port", "[v6]:port" or ":port". */
static sl_status split_addr(char *host, size_t hsize, char *port, size_t psize, const char *addr)
{
    const char *colon;
    size_t hlen;

    if (addr == NULL || *addr == '\0')
        return sl_error_set(SL_ERR_INVALID, "metrics address: empty");
    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');
        if (end == NULL || end[1] != ':')
            return sl_error_set(SL_ERR_INVALID, "metrics address '%s': expected [host]:port",
                                addr);
        hlen = (size_t)(end - addr - 1);
        colon = end + 1;
        addr++;
    } else {
        colon = strrchr(addr, ':');
        if (colon == NULL)
            return sl_error_set(SL_ERR_INVALID, "metrics address '%s': expected host:port", addr);
        hlen = (size_t)(colon - addr);
    }
    if (hlen >= hsize || strlen(colon + 1) >= psize || colon[1] == '\0')
        return sl_error_set(SL_ERR_INVALID, "metrics address '%s': bad host or port", addr);
    memcpy(host, addr, hlen);
    host[hlen] = '\0';
    strcpy(port, colon + 1);
    for (const char *p = port; *p; p++)
        if (*p < '0' || *p > '9')
            return sl_error_set(SL_ERR_INVALID, "metrics address: port '%s' is not a number",
                                port);
    if (atoi(port) > 65535)
        return sl_error_set(SL_ERR_INVALID, "metrics address: port %s out of range", port);
    return SL_OK;
}

static sl_status listen_on(int *out_fd, int *out_port, const char *addr)
{
    sl_status st = SL_OK;
    char host[256], port[16];
    struct addrinfo hints = {0}, *res = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int fd = -1, rc, err = 0, one = 1, zero = 0;

    st = split_addr(host, sizeof(host), port, sizeof(port), addr);
    if (st != SL_OK)
        goto out;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(host[0] != '\0' ? host : NULL, port, &hints, &res);
    if (rc != 0) {
        st = sl_error_set(SL_ERR_INVALID, "metrics address '%s': %s", addr, gai_strerror(rc));
        goto out;
    }
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (ai->ai_family == AF_INET6 && host[0] == '\0')
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 64) == 0)
            break;
        err = errno;
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        st = sl_error_set(SL_ERR_IO, "metrics: cannot listen on %s: %s", addr, strerror(err));
        goto out;
    }
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        st = sl_error_set(SL_ERR_IO, "metrics: getsockname: %s", strerror(errno));
        close(fd);
        goto out;
    }
    *out_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    *out_fd = fd;
out:
    if (res != NULL)
        freeaddrinfo(res);
    return st;
}

sl_status sl_metrics_server_start(sl_metrics_server **out, sl_metrics *reg, const char *addr)
{
    sl_status st = SL_OK;
    sl_metrics_server *srv = calloc(1, sizeof(*srv));
    int rc;

    if (srv == NULL) {
        st = sl_error_set(SL_ERR_NOMEM, "metrics server");
        goto out;
    }
    srv->reg = reg;
    srv->lfd = srv->wake[0] = srv->wake[1] = -1;
    for (size_t i = 0; i < HTTP_MAX_CONNS; i++)
        srv->conns[i].fd = -1;
    atomic_init(&srv->ready, false);
    st = listen_on(&srv->lfd, &srv->port, addr);
    if (st != SL_OK)
        goto err;
    if (pipe2(srv->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        st = sl_error_set(SL_ERR_IO, "metrics: pipe: %s", strerror(errno));
        goto err;
    }
    rc = pthread_create(&srv->thread, NULL, server_main, srv);
    if (rc != 0) {
        st = sl_error_set(SL_ERR_IO, "metrics: thread: %s", strerror(rc));
        goto err;
    }
    sl_log_info("metrics", "listening", "addr=%s port=%d", sl_log_q(addr), srv->port);
    *out = srv;
    goto out;
err:
    if (srv->lfd >= 0)
        close(srv->lfd);
    if (srv->wake[0] >= 0) {
        close(srv->wake[0]);
        close(srv->wake[1]);
    }
    free(srv);
out:
    return st;
}

int sl_metrics_server_port(const sl_metrics_server *s)
{
    return s->port;
}

void sl_metrics_server_set_ready(sl_metrics_server *s, bool ready)
{
    atomic_store(&s->ready, ready);
}

void sl_metrics_server_stop(sl_metrics_server *s)
{
    ssize_t n;

    if (s == NULL)
        return;
    do
        n = write(s->wake[1], "x", 1);
    while (n < 0 && errno == EINTR);
    pthread_join(s->thread, NULL);
    for (size_t i = 0; i < HTTP_MAX_CONNS; i++)
        if (s->conns[i].fd >= 0)
            conn_close(&s->conns[i]);
    close(s->lfd);
    close(s->wake[0]);
    close(s->wake[1]);
    free(s);
}
