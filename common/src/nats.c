#include "sluice/nats.h"
#include "sluice/natsauth.h"
#include "sluice/nkey.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sluice/backoff.h"
#include "sluice/log.h"
#include "sluice/service.h"

struct sl_nats {
    natsConnection *conn;
    jsCtx *js;
    sl_nats_settings s; /* private copy */
    unsigned seed;      /* jitter; used by nats.c's reconnect thread only */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    char nkey_seed[SL_NKEY_SEED_LEN + 1]; /* from s.nkey_file; wiped at free */
    char inbox_prefix[160];               /* "_INBOX", or this connection's own */
    bool closed;  /* the closed callback ran */
    atomic_bool closing; /* sl_nats_close() started: disconnects are expected */
    atomic_bool abandoned; /* sl_nats_abandon() closed it */
};

void sl_nats_settings_init(sl_nats_settings *s)
{
    memset(s, 0, sizeof(*s));
    s->connect_timeout_ms = 2000;
    s->startup_deadline_ms = 30000;
    s->reconnect_min_ms = 100;
    s->reconnect_max_ms = 2000;
}

int sl_nats_kv_replicas(const sl_nats *nc)
{
    return nc->s.kv_replicas;
}

/* "1".."5" to a replica count; the caller names the flag or variable. */
static bool parse_replicas(int *out, const char *v)
{
    if (v == NULL || v[0] < '1' || v[0] > '0' + SL_KV_REPLICAS_MAX || v[1] != '\0')
        return false;
    *out = v[0] - '0';
    return true;
}

/* The flag table: name (without "--") to the field it sets: a string, a
 * duration in milliseconds, or the replica count. */
static const struct nats_flag {
    const char *name;
    ssize_t off_str; /* offset of a char * field, or -1 */
    ssize_t off_ms;  /* offset of an int64_t ms field, or -1 */
    ssize_t off_replicas; /* offset of an int 1..SL_KV_REPLICAS_MAX field, or -1 */
} nats_flags[] = {
    {"nats-url", offsetof(sl_nats_settings, urls), -1, -1},
    {"nats-creds", offsetof(sl_nats_settings, creds_file), -1, -1},
    {"nats-nkey", offsetof(sl_nats_settings, nkey_file), -1, -1},
    {"nats-auth-dir", offsetof(sl_nats_settings, auth_dir), -1, -1},
    {"nats-tls-cert", offsetof(sl_nats_settings, tls_cert), -1, -1},
    {"nats-tls-key", offsetof(sl_nats_settings, tls_key), -1, -1},
    {"nats-tls-ca", offsetof(sl_nats_settings, tls_ca), -1, -1},
    {"nats-name", offsetof(sl_nats_settings, name), -1, -1},
    {"nats-connect-timeout", -1, offsetof(sl_nats_settings, startup_deadline_ms), -1},
    {"kv-replicas", -1, -1, offsetof(sl_nats_settings, kv_replicas)},
};

#define N_NATS_FLAGS (sizeof(nats_flags) / sizeof(nats_flags[0]))

/* The string field of s a flag sets (f->off_str >= 0). */
static char **str_field(sl_nats_settings *s, const struct nats_flag *f)
{
    return (char **)((char *)s + f->off_str);
}

void sl_nats_settings_deinit(sl_nats_settings *s)
{
    for (size_t i = 0; i < N_NATS_FLAGS; i++)
        if (nats_flags[i].off_str >= 0)
            free(*str_field(s, &nats_flags[i]));
    sl_nats_settings_init(s);
}

static sl_status set_str(char **dst, const char *value, const char *what)
{
    char *copy = NULL;

    if (value != NULL) {
        copy = strdup(value);
        if (copy == NULL)
            return sl_error_set(SL_ERR_NOMEM, "%s", what);
    }
    free(*dst);
    *dst = copy;
    return SL_OK;
}

sl_status sl_nats_settings_from_env(sl_nats_settings *s)
{
    static const struct {
        const char *env;
        size_t off;
    } vars[] = {
        {"NATS_URL", offsetof(sl_nats_settings, urls)},
        {"NATS_CREDS", offsetof(sl_nats_settings, creds_file)},
        {"NATS_NKEY", offsetof(sl_nats_settings, nkey_file)},
        {"SLUICE_NATS_AUTH_DIR", offsetof(sl_nats_settings, auth_dir)},
        {"NATS_TLS_CERT", offsetof(sl_nats_settings, tls_cert)},
        {"NATS_TLS_KEY", offsetof(sl_nats_settings, tls_key)},
        {"NATS_TLS_CA", offsetof(sl_nats_settings, tls_ca)},
    };
    sl_status st = SL_OK;
    const char *r;

    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]) && st == SL_OK; i++) {
        const char *v = getenv(vars[i].env);
        if (v != NULL && v[0] != '\0')
            st = set_str((char **)((char *)s + vars[i].off), v, vars[i].env);
    }
    r = getenv("SLUICE_KV_REPLICAS");
    if (st == SL_OK && r != NULL && r[0] != '\0' && !parse_replicas(&s->kv_replicas, r))
        st = sl_error_set(SL_ERR_INVALID,
                          "SLUICE_KV_REPLICAS: bad value '%s' (replicas of each bucket, 1 to %d)",
                          r, SL_KV_REPLICAS_MAX);
    return st;
}

const char *sl_nats_settings_usage(void)
{
    return "  --nats-url URL[,URL...]     NATS server(s) (env NATS_URL; default " SL_NATS_DEFAULT_URL
           ")\n"
           "  --nats-creds FILE           NATS credentials file (env NATS_CREDS)\n"
           "  --nats-nkey FILE            NATS user nkey seed file, mode 0600 (env NATS_NKEY)\n"
           "  --nats-auth-dir DIR         role seeds made by sluicectl nats-auth: this process's by\n"
           "                              its connection name (env SLUICE_NATS_AUTH_DIR)\n"
           "  --nats-tls-cert FILE        client certificate, PEM (env NATS_TLS_CERT)\n"
           "  --nats-tls-key FILE         client key, PEM (env NATS_TLS_KEY)\n"
           "  --nats-tls-ca FILE          CA bundle to verify the server, PEM (env NATS_TLS_CA)\n"
           "  --nats-name NAME            connection name (default: the service name)\n"
           "  --nats-connect-timeout DUR  keep trying to connect at start-up this long (default "
           "30s)\n"
           "  --kv-replicas N             replicas of the KV buckets and streams Sluice creates, "
           "1 to 5;\n"
           "                              existing ones are scaled to N (env SLUICE_KV_REPLICAS; "
           "default 1,\n"
           "                              existing ones left as they are)\n";
}

sl_status sl_nats_settings_set(sl_nats_settings *s, const char *name, const char *value)
{
    for (size_t i = 0; i < sizeof(nats_flags) / sizeof(nats_flags[0]); i++) {
        const struct nats_flag *f = &nats_flags[i];
        if (strcmp(f->name, name) != 0)
            continue;
        if (value == NULL || value[0] == '\0')
            return sl_error_set(SL_ERR_INVALID, "--%s: missing value", name);
        if (f->off_str >= 0)
            return set_str((char **)((char *)s + f->off_str), value, name);
        if (f->off_replicas >= 0) {
            if (!parse_replicas((int *)((char *)s + f->off_replicas), value))
                return sl_error_set(SL_ERR_INVALID,
                                    "--%s: bad value '%s' (replicas of each bucket, 1 to %d)",
                                    name, value, SL_KV_REPLICAS_MAX);
            return SL_OK;
        }
        {
            int64_t ms;
            if (sl_parse_duration_ms(&ms, value) != SL_OK)
                return sl_error_set(SL_ERR_INVALID, "--%s: bad duration '%s' (e.g. 30s, 500ms)",
                                    name, value);
            *(int64_t *)((char *)s + f->off_ms) = ms;
            return SL_OK;
        }
    }
    return SL_ERR_NOT_FOUND;
}

sl_status sl_nats_settings_parse_arg(bool *matched, sl_nats_settings *s, int argc, char **argv,
                                     int *i)
{
    sl_status st = SL_OK;
    const char *arg = argv[*i], *eq, *value;
    char name[64];
    size_t nlen;
    int used = 1;

    *matched = false;
    if (strncmp(arg, "--nats-", 7) != 0 && strncmp(arg, "--kv-", 5) != 0)
        goto out;
    eq = strchr(arg, '=');
    nlen = eq != NULL ? (size_t)(eq - arg - 2) : strlen(arg + 2);
    if (nlen >= sizeof(name))
        goto out;
    memcpy(name, arg + 2, nlen);
    name[nlen] = '\0';
    if (eq != NULL) {
        value = eq + 1;
    } else if (*i + 1 < argc) {
        value = argv[*i + 1];
        used = 2;
    } else {
        value = NULL;
    }
    st = sl_nats_settings_set(s, name, value);
    if (st == SL_ERR_NOT_FOUND) {
        st = SL_OK; /* not ours: leave it to the caller */
        goto out;
    }
    *matched = true;
    if (st == SL_OK)
        *i += used;
out:
    return st;
}

/* ---- errors ----------------------------------------------------------- */

sl_status sl_nats_error_(natsStatus s, const char *file, const char *func, int line,
                         const char *fmt, ...)
{
    char what[512];
    const char *last;
    natsStatus ls = NATS_OK;
    sl_status st;
    va_list ap;

    switch (s) {
    case NATS_OK:
        return SL_OK;
    case NATS_TIMEOUT:
        st = SL_ERR_TIMEOUT;
        break;
    case NATS_NOT_FOUND:
        st = SL_ERR_NOT_FOUND;
        break;
    case NATS_CONNECTION_CLOSED:
        st = SL_ERR_CLOSED;
        break;
    case NATS_NO_MEMORY:
        st = SL_ERR_NOMEM;
        break;
    case NATS_INVALID_ARG:
    case NATS_INVALID_SUBJECT:
    case NATS_MAX_PAYLOAD:
        st = SL_ERR_INVALID;
        break;
    default:
        st = SL_ERR_NATS;
        break;
    }
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    last = nats_GetLastError(&ls);
    if (last != NULL && last[0] != '\0' && ls == s)
        return sl_error_set_(st, file, func, line, "%s: %s (%s)", what, natsStatus_GetText(s),
                             last);
    return sl_error_set_(st, file, func, line, "%s: %s", what, natsStatus_GetText(s));
}

/* ---- connection ------------------------------------------------------- */

static const char *conn_url(natsConnection *c, char *buf, size_t size)
{
    if (natsConnection_GetConnectedUrl(c, buf, size) != NATS_OK || buf[0] == '\0')
        snprintf(buf, size, "-");
    return buf;
}

static void on_disconnected(natsConnection *c, void *closure)
{
    sl_nats *nc = closure;
    const char *err = NULL;

    natsConnection_GetLastError(c, &err);
    if (atomic_load(&nc->closing))
        sl_log_debug("nats", "disconnected (closing)");
    else
        sl_log_warn("nats", "disconnected", "err=%s", sl_log_q(err != NULL && err[0] ? err : "-"));
    if (nc->s.on_event != NULL)
        nc->s.on_event(nc, SL_NATS_DISCONNECTED, nc->s.on_event_ud);
}

static void on_reconnected(natsConnection *c, void *closure)
{
    sl_nats *nc = closure;
    char url[256];

    sl_log_info("nats", "reconnected", "url=%s", sl_log_q(conn_url(c, url, sizeof(url))));
    if (nc->s.on_event != NULL)
        nc->s.on_event(nc, SL_NATS_RECONNECTED, nc->s.on_event_ud);
}

static void on_closed(natsConnection *c, void *closure)
{
    sl_nats *nc = closure;

    sl_log_info("nats", "connection closed");
    if (nc->s.on_event != NULL)
        nc->s.on_event(nc, SL_NATS_CLOSED, nc->s.on_event_ud);
    /* Last thing: sl_nats_close() frees nc once it sees this. */
    pthread_mutex_lock(&nc->lock);
    nc->closed = true;
    pthread_cond_broadcast(&nc->cond);
    pthread_mutex_unlock(&nc->lock);
}

static void on_async_error(natsConnection *c, natsSubscription *sub, natsStatus err,
                           void *closure)
{
    const char *subj = sub != NULL ? natsSubscription_GetSubject(sub) : NULL;

    sl_log_warn("nats", "async error", "err=%s subject=%s", sl_log_q(natsStatus_GetText(err)),
                sl_log_q(subj != NULL ? subj : "-"));
}

/* Exponential backoff with up to 25% jitter, between rounds over the
 * whole server list. */
static int64_t backoff_ms(sl_nats *nc, int attempt)
{
    return sl_backoff_ms(nc->s.reconnect_min_ms, nc->s.reconnect_max_ms, attempt, 25, &nc->seed);
}

static int64_t reconnect_delay(natsConnection *c, int attempts, void *closure)
{
    return backoff_ms(closure, attempts);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

sl_status sl_nats_settings_copy(sl_nats_settings *dst, const sl_nats_settings *src)
{
    sl_status st = SL_OK;

    *dst = *src;
    for (size_t i = 0; i < N_NATS_FLAGS; i++)
        if (nats_flags[i].off_str >= 0)
            *str_field(dst, &nats_flags[i]) = NULL;
    for (size_t i = 0; i < N_NATS_FLAGS && st == SL_OK; i++) {
        const struct nats_flag *f = &nats_flags[i];
        if (f->off_str >= 0)
            st = set_str(str_field(dst, f), *(char *const *)((const char *)src + f->off_str), f->name);
    }
    if (st != SL_OK)
        sl_nats_settings_deinit(dst);
    return st;
}

/* nats.c's text of this thread's last error (with a callback's own
 * message), else the status's. */
static const char *nats_last_text(natsStatus s)
{
    const char *t = nats_GetLastError(NULL);
    return t && t[0] ? t : natsStatus_GetText(s);
}

/* nats.c's nonce signature callback: the seed read at connect time. */
static natsStatus sign_nonce(char **custom_err, unsigned char **sig, int *sig_len, const char *nonce, void *ud)
{
    sl_nats *nc = ud;
    if (!nonce || !nonce[0]) {
        /* the server sent no nonce: it does not authenticate clients */
        *custom_err = strdup("the NATS server does not ask for authentication, but an nkey was given "
                             "(--nats-nkey / --nats-auth-dir): turn authentication on in nats-server, or drop "
                             "the nkey");
        return NATS_NOT_PERMITTED;
    }
    return nats_Sign(nc->nkey_seed, nonce, sig, sig_len);
}

/* Authenticates with the nkey in s.nkey_file, and takes replies on an inbox
 * prefix of this connection's own (_INBOX_<name>), so that a user's
 * permissions can allow its own replies and nobody else's. */
static sl_status use_nkey(natsOptions *o, sl_nats *nc)
{
    char pub[SL_NKEY_PUBLIC_LEN + 1], prefix[160];
    natsStatus s;
    sl_status st = sl_nkey_read_seed(nc->nkey_seed, nc->s.nkey_file);
    if (st != SL_OK)
        return st;
    if ((st = sl_nkey_public(pub, nc->nkey_seed)) != SL_OK)
        return st;
    if ((s = natsOptions_SetNKey(o, pub, sign_nonce, nc)) != NATS_OK)
        return sl_nats_error(s, "nats nkey '%s'", nc->s.nkey_file);
    if (nc->s.name) {
        snprintf(prefix, sizeof prefix, "_INBOX_%s", nc->s.name);
        for (char *c = prefix; *c; c++)
            if (*c == '.' || *c == '*' || *c == '>' || *c == ' ')
                *c = '_';
        if ((s = natsOptions_SetCustomInboxPrefix(o, prefix)) != NATS_OK)
            return sl_nats_error(s, "nats inbox prefix '%s'", prefix);
        memcpy(nc->inbox_prefix, prefix, sizeof nc->inbox_prefix);
    }
    return SL_OK;
}

/* --nats-auth-dir: the seed file of the role whose processes connect under
 * this connection name becomes s.nkey_file; a name no role uses gets the
 * directory's admin seed when it has one (tests' own tools). */
static sl_status role_seed_file(sl_nats *nc)
{
    size_t n;
    const sl_natsauth_role *roles = sl_natsauth_roles(&n);
    const char *role = NULL;
    char path[4096];
    for (size_t i = 0; i < n && !role; i++)
        if (roles[i].conn_name && nc->s.name && !strcmp(roles[i].conn_name, nc->s.name))
            role = roles[i].name;
    if (snprintf(path, sizeof path, "%s/%s.nk", nc->s.auth_dir, role ? role : "admin") >= (int)sizeof path)
        return sl_error_set(SL_ERR_INVALID, "nats auth dir: path too long");
    if (!role && access(path, F_OK) != 0)
        return sl_error_set(SL_ERR_INVALID, "nats auth dir %s: no role connects as '%s' (give --nats-nkey)",
                            nc->s.auth_dir, nc->s.name ? nc->s.name : "(no name)");
    return set_str(&nc->s.nkey_file, path, "nkey");
}

/* Turns the settings into nats.c options. */
static sl_status build_options(natsOptions **out, sl_nats *nc)
{
    sl_status st = SL_OK;
    natsOptions *o = NULL;
    natsStatus s;
    const char *servers[32];
    char *list = NULL, *save = NULL;
    int n = 0;

    s = natsOptions_Create(&o);
    if (s != NATS_OK) {
        st = sl_nats_error(s, "nats options");
        goto out;
    }
    list = strdup(nc->s.urls);
    if (list == NULL) {
        st = sl_error_set(SL_ERR_NOMEM, "nats urls");
        goto err;
    }
    for (char *u = strtok_r(list, ", ", &save); u != NULL && n < 32; u = strtok_r(NULL, ", ", &save))
        servers[n++] = u;
    if (n == 0) {
        st = sl_error_set(SL_ERR_INVALID, "nats url: empty");
        goto err;
    }
    s = natsOptions_SetServers(o, servers, n);
    if (s != NATS_OK) {
        st = sl_nats_error(s, "nats url '%s'", nc->s.urls);
        goto err;
    }
    if (nc->s.name != NULL && (s = natsOptions_SetName(o, nc->s.name)) != NATS_OK)
        goto nats_err;
    if ((s = natsOptions_SetTimeout(o, nc->s.connect_timeout_ms > 0 ? nc->s.connect_timeout_ms
                                                                    : 2000)) != NATS_OK)
        goto nats_err;
    if ((s = natsOptions_SetMaxReconnect(o, -1)) != NATS_OK ||
        (s = natsOptions_SetCustomReconnectDelay(o, reconnect_delay, nc)) != NATS_OK ||
        (s = natsOptions_SetDisconnectedCB(o, on_disconnected, nc)) != NATS_OK ||
        (s = natsOptions_SetReconnectedCB(o, on_reconnected, nc)) != NATS_OK ||
        (s = natsOptions_SetClosedCB(o, on_closed, nc)) != NATS_OK ||
        (s = natsOptions_SetErrorHandler(o, on_async_error, nc)) != NATS_OK)
        goto nats_err;
    if (nc->s.creds_file != NULL) {
        s = natsOptions_SetUserCredentialsFromFiles(o, nc->s.creds_file, NULL);
        if (s != NATS_OK) {
            sl_nats_error(s, "nats credentials '%s'", nc->s.creds_file);
            st = SL_ERR_INVALID;
            goto err;
        }
    }
    if (nc->s.nkey_file == NULL && nc->s.auth_dir != NULL && (st = role_seed_file(nc)) != SL_OK)
        goto err;
    if (nc->s.nkey_file != NULL && (st = use_nkey(o, nc)) != SL_OK)
        goto err;
    if (nc->s.tls_cert != NULL || nc->s.tls_key != NULL || nc->s.tls_ca != NULL) {
        if ((nc->s.tls_cert == NULL) != (nc->s.tls_key == NULL)) {
            st = sl_error_set(SL_ERR_INVALID, "nats tls: certificate and key go together");
            goto err;
        }
        if ((s = natsOptions_SetSecure(o, true)) != NATS_OK)
            goto nats_err;
        if (nc->s.tls_ca != NULL && (s = natsOptions_LoadCATrustedCertificates(o, nc->s.tls_ca)) != NATS_OK) {
            sl_nats_error(s, "nats tls ca '%s'", nc->s.tls_ca);
            st = SL_ERR_INVALID;
            goto err;
        }
        if (nc->s.tls_cert != NULL &&
            (s = natsOptions_LoadCertificatesChain(o, nc->s.tls_cert, nc->s.tls_key)) != NATS_OK) {
            sl_nats_error(s, "nats tls cert '%s' / key '%s'", nc->s.tls_cert, nc->s.tls_key);
            st = SL_ERR_INVALID;
            goto err;
        }
    }
    *out = o;
    goto out;

nats_err:
    st = sl_nats_error(s, "nats options");
err:
    natsOptions_Destroy(o);
out:
    free(list);
    return st;
}

static void nats_free(sl_nats *nc)
{
    explicit_bzero(nc->nkey_seed, sizeof nc->nkey_seed);
    sl_nats_settings_deinit(&nc->s);
    pthread_cond_destroy(&nc->cond);
    pthread_mutex_destroy(&nc->lock);
    free(nc);
}

/* Closes nc's connection and waits for nats.c's closed callback (after
 * which nc->conn may be destroyed). */
static void close_and_wait(sl_nats *nc)
{
    natsConnection_Close(nc->conn);
    pthread_mutex_lock(&nc->lock);
    while (!nc->closed)
        pthread_cond_wait(&nc->cond, &nc->lock);
    pthread_mutex_unlock(&nc->lock);
}

sl_status sl_nats_connect(sl_nats **out, const sl_nats_settings *settings)
{
    sl_status st = SL_OK;
    sl_nats *nc = calloc(1, sizeof(*nc));
    natsOptions *opts = NULL;
    natsStatus s = NATS_OK;
    int64_t deadline;
    int attempt = 0;
    char url[256];

    if (nc == NULL) {
        st = sl_error_set(SL_ERR_NOMEM, "nats connection");
        goto out;
    }
    pthread_mutex_init(&nc->lock, NULL);
    pthread_cond_init(&nc->cond, NULL);
    nc->seed = (unsigned)mono_ms() ^ (unsigned)getpid();
    st = sl_nats_settings_copy(&nc->s, settings);
    if (st == SL_OK && nc->s.urls == NULL)
        st = set_str(&nc->s.urls, SL_NATS_DEFAULT_URL, "urls");
    if (st == SL_OK)
        st = build_options(&opts, nc);
    if (st != SL_OK)
        goto err;

    deadline = mono_ms() + (nc->s.startup_deadline_ms > 0 ? nc->s.startup_deadline_ms : 0);
    for (;;) {
        int64_t left, wait;
        if (nc->s.cancelled != NULL && nc->s.cancelled(nc->s.cancelled_ud)) {
            st = sl_error_set(SL_ERR_CLOSED, "connect to %s: stopped before connecting (%d attempts)",
                              nc->s.urls, attempt);
            goto err;
        }
        s = natsConnection_Connect(&nc->conn, opts);
        if (s == NATS_OK)
            break;
        attempt++;
        if (s == NATS_INVALID_ARG || s == NATS_NO_MEMORY || s == NATS_SSL_ERROR)
            break; /* retrying will not help */
        left = deadline - mono_ms();
        if (left <= 0)
            break;
        wait = backoff_ms(nc, attempt);
        if (wait > left)
            wait = left;
        sl_log_warn("nats", "connect failed, retrying", "urls=%s attempt=%d err=%s retry_ms=%lld",
                    sl_log_q(nc->s.urls), attempt, sl_log_q(nats_last_text(s)),
                    (long long)wait);
        /* In slices, so that a stop is noticed within 100 ms. */
        for (int64_t slept = 0; slept < wait; slept += 100) {
            if (nc->s.cancelled != NULL && nc->s.cancelled(nc->s.cancelled_ud))
                break;
            nats_Sleep(wait - slept < 100 ? wait - slept : 100);
        }
    }
    if (s != NATS_OK) {
        st = sl_nats_error(s, "connect to %s (%d attempts)", nc->s.urls, attempt);
        if (st == SL_ERR_NATS && s == NATS_NO_SERVER)
            st = SL_ERR_TIMEOUT;
        goto err;
    }
    s = natsConnection_JetStream(&nc->js, nc->conn, NULL);
    if (s != NATS_OK) {
        st = sl_nats_error(s, "jetstream context");
        goto err;
    }
    sl_log_info("nats", "connected", "url=%s name=%s",
                sl_log_q(conn_url(nc->conn, url, sizeof(url))),
                sl_log_q(nc->s.name != NULL ? nc->s.name : "-"));
    *out = nc;
    nc = NULL;
    goto out;

err:
    if (nc->conn != NULL) {
        /* Not reached today (the JetStream context cannot fail after a
         * connect), but close properly if it ever does. */
        close_and_wait(nc);
        natsConnection_Destroy(nc->conn);
    }
    nats_free(nc);
out:
    natsOptions_Destroy(opts);
    return st;
}

void sl_nats_close(sl_nats *nc, int64_t drain_timeout_ms)
{
    natsStatus s = NATS_ERR;
    struct timespec until;

    if (nc == NULL)
        return;
    atomic_store(&nc->closing, true);
    jsCtx_Destroy(nc->js);
    nc->js = NULL;
    if (drain_timeout_ms > 0 && natsConnection_Status(nc->conn) == NATS_CONN_STATUS_CONNECTED)
        s = natsConnection_DrainTimeout(nc->conn, drain_timeout_ms);
    if (s != NATS_OK)
        natsConnection_Close(nc->conn);

    /* The closed callback runs on nats.c's callback thread; nc must live
     * until it has. A drain closes the connection by itself when done or
     * at its timeout; wait a little longer than that, then force it. */
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (drain_timeout_ms > 0 ? drain_timeout_ms / 1000 : 0) + 5;
    pthread_mutex_lock(&nc->lock);
    while (!nc->closed) {
        if (pthread_cond_timedwait(&nc->cond, &nc->lock, &until) == ETIMEDOUT) {
            pthread_mutex_unlock(&nc->lock);
            close_and_wait(nc);
            pthread_mutex_lock(&nc->lock);
        }
    }
    pthread_mutex_unlock(&nc->lock);
    natsConnection_Destroy(nc->conn);
    nats_free(nc);
}

void sl_nats_abandon(sl_nats *nc, const char *why)
{
    if (nc == NULL || atomic_exchange(&nc->abandoned, true))
        return;
    atomic_store(&nc->closing, true);
    sl_log_warn("nats", "abandoning the connection: what is not flushed is lost",
                "reason=%s connected=%d buffered_bytes=%d", sl_log_q(why), (int)sl_nats_is_connected(nc),
                natsConnection_Buffered(nc->conn));
    natsConnection_Close(nc->conn);
}

bool sl_nats_abandoned(const sl_nats *nc)
{
    return atomic_load(&nc->abandoned);
}

const char *sl_nats_inbox_prefix(const sl_nats *nc)
{
    return nc->inbox_prefix[0] ? nc->inbox_prefix : "_INBOX";
}

natsConnection *sl_nats_conn(sl_nats *nc)
{
    return nc->conn;
}

jsCtx *sl_nats_js(sl_nats *nc)
{
    return nc->js;
}

bool sl_nats_is_connected(sl_nats *nc)
{
    return natsConnection_Status(nc->conn) == NATS_CONN_STATUS_CONNECTED;
}

int64_t sl_nats_max_payload(sl_nats *nc)
{
    return natsConnection_GetMaxPayload(nc->conn);
}

void sl_nats_shutdown(int64_t timeout_ms)
{
    if (nats_CloseAndWait(timeout_ms) != NATS_OK)
        sl_log_warn("nats", "library shutdown incomplete");
}
