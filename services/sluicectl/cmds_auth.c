/* cmds_auth.c - sluicectl nats-auth (NATS role seeds and auth.conf) and sluicectl certs (a CA and the xDS/NATS/proxy certificates). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ctl.h"
#include "sluice/natsauth.h"

/* ---- sluicectl nats-auth ------------------------------------------------ */

static const char nats_auth_usage[] =
    "Usage: sluicectl nats-auth DIR [--admin] [--client NAME ...]\n"
    "Writes one NATS user nkey seed per Sluice role, DIR/<role>.nk (mode 0600,\n"
    "DIR mode 0700), and DIR/auth.conf, the nats-server `accounts` block with\n"
    "every user's public key and least-privilege permissions (Sluice's processes\n"
    "and operators in account SLUICE, users' programs in CLIENTS, importing the\n"
    "apply API and statuses), for the server's configuration to `include`.\n"
    "Seeds that exist are kept: to rotate a role's\n"
    "credentials, delete DIR/<role>.nk, run this again, reload nats-server\n"
    "(SIGHUP) and restart that role's processes. Give each process its own seed\n"
    "(--nats-nkey DIR/<role>.nk or NATS_NKEY), or DIR itself (--nats-auth-dir,\n"
    "SLUICE_NATS_AUTH_DIR: a service picks the seed of its role).\n"
    "  --admin        also an 'admin' user allowed everything (tests, recovery;\n"
    "                 never in a production deployment)\n"
    "  --client NAME  also DIR/client-NAME.nk, another user of the client role:\n"
    "                 a program of its own identity and apply rate budget\n"
    "                 (NAME: a-z, 0-9, '-'); every DIR/client-*.nk is kept\n";

int ctl_cmd_nats_auth(ctl *c, int argc, char **argv)
{
    const char *dir = NULL, *clients[64];
    bool admin = false;
    size_t n = 0, nclients = 0;
    (void)c;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(nats_auth_usage, stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--admin"))
            admin = true;
        else if (!strcmp(argv[i], "--client") && (i + 1 >= argc || nclients == sizeof clients / sizeof clients[0]))
            return ctl_usage_error("nats-auth", i + 1 >= argc ? "--client needs a NAME" : "more than 64 --client");
        else if (!strcmp(argv[i], "--client"))
            clients[nclients++] = argv[++i];
        else if (argv[i][0] == '-' || dir)
            return ctl_usage_error("nats-auth", "unexpected argument \"%s\"", argv[i]);
        else
            dir = argv[i];
    }
    if (!dir)
        return ctl_usage_error("nats-auth", "nats-auth needs a directory");
    const sl_natsauth_role *roles = sl_natsauth_roles(&n);
    bool *had = calloc(n + 1, sizeof *had);
    char path[4200];
    if (!had) {
        fprintf(stderr, "error: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i <= n; i++) {
        snprintf(path, sizeof path, "%s/%s.nk", dir, i < n ? roles[i].name : "admin");
        had[i] = access(path, F_OK) == 0;
    }
    bool *made = calloc(nclients + 1, sizeof *made);
    sl_status st = made ? SL_OK : sl_error_set(SL_ERR_NOMEM, "nats-auth");
    for (size_t i = 0; i < nclients && st == SL_OK; i++)
        st = sl_natsauth_client_seed(dir, clients[i], &made[i]);
    if (st != SL_OK || sl_natsauth_provision(dir, admin) != SL_OK) {
        fprintf(stderr, "error: %s\n", sl_error_msg());
        free(had);
        free(made);
        return 1;
    }
    printf("%s/auth.conf: the nats-server accounts block (include it from the server's config)\n", dir);
    printf("%-16s %-42s %-7s %s\n", "ROLE", "SEED", "", "FOR");
    for (size_t i = 0; i <= n; i++) {
        if (i == n && !admin)
            break;
        snprintf(path, sizeof path, "%s/%s.nk", dir, i < n ? roles[i].name : "admin");
        printf("%-16s %-42s %-7s %s\n", i < n ? roles[i].name : "admin", path, had[i] ? "kept" : "created",
               i < n ? roles[i].doc : "everything (tests, recovery)");
    }
    for (size_t i = 0; i < nclients; i++) {
        char role[80];
        snprintf(role, sizeof role, "client-%s", clients[i]);
        snprintf(path, sizeof path, "%s/%s.nk", dir, role);
        printf("%-16s %-42s %-7s %s\n", role, path, made[i] ? "created" : "kept", "a user of the client role");
    }
    free(had);
    free(made);
    return 0;
}

/* ---- sluicectl certs ------------------------------------------------------ */

static const char certs_usage[] =
    "Usage: sluicectl certs DIR [--trust-domain NAME] [--server-name NAME ...]\n"
    "                          [--nats-host NAME ...] [--proxy NS~NAME ...] [--days N]\n"
    "Makes a certificate authority and, signed by it (ECDSA P-256):\n"
    "  DIR/ca.crt, DIR/ca.key            the CA (keep ca.key offline once done)\n"
    "  DIR/xds/{tls.crt,tls.key,ca.crt}  sluice-xds' server certificate: DNS SANs\n"
    "                                    sluice-xds, localhost and each --server-name\n"
    "                                    (an address gives an IP SAN), 127.0.0.1\n"
    "  DIR/nats/{tls.crt,tls.key,ca.crt} with --nats-host: nats-server's certificate\n"
    "                                    for client connections and cluster routes\n"
    "                                    (server and client use, DNS SAN\n"
    "                                    sluice-nats-route for route authorization)\n"
    "  DIR/proxies/NS~NAME/{tls.crt,tls.key,ca.crt}\n"
    "                                    a client certificate per --proxy, URI SAN\n"
    "                                    spiffe://<trust domain>/ns/NS/proxy/NAME:\n"
    "                                    the identity sluice-xds --tls-client-ca checks\n"
    "Keys are mode 0600. Files that exist are kept (and must chain to DIR/ca.crt):\n"
    "to rotate one, delete its tls.crt and tls.key and run this again; to rotate\n"
    "the CA, start from an empty DIR.\n"
    "  --trust-domain NAME  SPIFFE trust domain (default sluice; sluice-xds --trust-domain)\n"
    "  --days N             validity of the leaf certificates (default 365; the CA 3650)\n";

#define CERTS_MAX_NAMES 64

typedef struct certs_opts {
    const char *dir, *trust_domain;
    const char *server[CERTS_MAX_NAMES], *nats[CERTS_MAX_NAMES], *proxy[CERTS_MAX_NAMES];
    int nserver, nnats, nproxy, days;
} certs_opts;

/* The CA as loaded or made. */
typedef struct certs_ca {
    X509 *crt;
    EVP_PKEY *key;
} certs_ca;

static int ssl_fail(const char *what, const char *path)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "";
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    fprintf(stderr, "error: %s: %s%s%s\n", path, what, buf[0] ? ": " : "", buf);
    ERR_clear_error();
    return -1;
}

static bool exists(const char *path)
{
    return access(path, F_OK) == 0;
}

static int mkdir_p(const char *dir, mode_t mode)
{
    if (mkdir(dir, mode) != 0 && errno != EEXIST) {
        fprintf(stderr, "error: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* Opens path for writing, truncated, with mode. */
static FILE *open_out(const char *path, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "w");
    if (!f) {
        fprintf(stderr, "error: %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    if (fchmod(fd, mode) != 0) {
        fprintf(stderr, "error: %s: %s\n", path, strerror(errno));
        fclose(f);
        return NULL;
    }
    return f;
}

static int write_key(const char *path, EVP_PKEY *key)
{
    FILE *f = open_out(path, 0600);
    if (!f)
        return -1;
    int ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    if (fclose(f) != 0 || !ok) {
        unlink(path);
        return ssl_fail("cannot write the key", path);
    }
    return 0;
}

static int write_crt(const char *path, X509 *crt)
{
    FILE *f = open_out(path, 0644);
    if (!f)
        return -1;
    int ok = PEM_write_X509(f, crt);
    if (fclose(f) != 0 || !ok) {
        unlink(path);
        return ssl_fail("cannot write the certificate", path);
    }
    return 0;
}

static X509 *read_crt(const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (!f)
        fprintf(stderr, "error: %s: %s\n", path, strerror(errno));
    else if (!x)
        ssl_fail("not a PEM certificate", path);
    if (f)
        fclose(f);
    return x;
}

static EVP_PKEY *read_key(const char *path)
{
    FILE *f = fopen(path, "r");
    EVP_PKEY *k = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (!f)
        fprintf(stderr, "error: %s: %s\n", path, strerror(errno));
    else if (!k)
        ssl_fail("not a PEM private key", path);
    if (f)
        fclose(f);
    return k;
}

static int add_ext(X509 *crt, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok = ext && X509_add_ext(crt, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/* A certificate for key, signed by ca (self-signed when ca is NULL).
 * sans: an X509v3 subjectAltName value, or NULL. */
static X509 *make_crt(EVP_PKEY *key, const char *cn, const certs_ca *ca, const char *sans, const char *eku,
                      int days)
{
    X509 *x = X509_new();
    BIGNUM *serial = BN_new();
    X509_NAME *name = X509_NAME_new();
    X509V3_CTX ctx;
    int ok = x && serial && name && X509_set_version(x, 2) && BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
             BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) &&
             X509_gmtime_adj(X509_getm_notBefore(x), -300) &&
             X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400) &&
             X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"Sluice", -1, -1, 0) &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0) &&
             X509_set_subject_name(x, name) &&
             X509_set_issuer_name(x, ca ? X509_get_subject_name(ca->crt) : name) && X509_set_pubkey(x, key);
    if (ok) {
        X509V3_set_ctx(&ctx, ca ? ca->crt : x, x, NULL, NULL, 0);
        ok = add_ext(x, &ctx, NID_basic_constraints, ca ? "critical,CA:FALSE" : "critical,CA:TRUE,pathlen:0") == 0 &&
             add_ext(x, &ctx, NID_key_usage, ca ? "critical,digitalSignature,keyEncipherment"
                                                : "critical,keyCertSign,cRLSign") == 0 &&
             add_ext(x, &ctx, NID_subject_key_identifier, "hash") == 0 &&
             (!ca || add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") == 0) &&
             (!eku || add_ext(x, &ctx, NID_ext_key_usage, eku) == 0) &&
             (!sans || add_ext(x, &ctx, NID_subject_alt_name, sans) == 0) &&
             X509_sign(x, ca ? ca->key : key, EVP_sha256()) > 0;
    }
    X509_NAME_free(name);
    BN_free(serial);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* DIR/ca.{crt,key}: loaded when both exist, made when neither does. */
static int certs_ca_get(certs_ca *ca, const certs_opts *o, bool *made)
{
    char crt[4200], key[4200];
    snprintf(crt, sizeof crt, "%s/ca.crt", o->dir);
    snprintf(key, sizeof key, "%s/ca.key", o->dir);
    *made = false;
    if (exists(crt) != exists(key)) {
        fprintf(stderr, "error: %s exists without %s: restore it, or delete %s to start a new CA\n",
                exists(crt) ? crt : key, exists(crt) ? key : crt, o->dir);
        return -1;
    }
    if (exists(crt)) {
        if (!(ca->crt = read_crt(crt)) || !(ca->key = read_key(key)))
            return -1;
        if (X509_check_private_key(ca->crt, ca->key) != 1)
            return ssl_fail("the key is not the one of ca.crt", key);
        return 0;
    }
    if (!(ca->key = EVP_EC_gen("P-256")))
        return ssl_fail("cannot generate a key", key);
    char cn[300];
    snprintf(cn, sizeof cn, "Sluice CA (%s)", o->trust_domain);
    if (!(ca->crt = make_crt(ca->key, cn, NULL, NULL, NULL, 3650)))
        return ssl_fail("cannot make the CA certificate", crt);
    if (write_key(key, ca->key) != 0 || write_crt(crt, ca->crt) != 0)
        return -1;
    *made = true;
    return 0;
}

/* DIR/<sub>/ca.crt: the CA certificate beside the leaf, so that each
 * directory is all one consumer needs (a Kubernetes Secret, a volume). */
static int copy_ca(const char *sub, const certs_ca *ca)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/ca.crt", sub);
    if (exists(path)) {
        X509 *x = read_crt(path);
        int same = x && X509_cmp(x, ca->crt) == 0;
        X509_free(x);
        if (same)
            return 0;
    }
    return write_crt(path, ca->crt);
}

/* One leaf: DIR/<sub>/tls.{crt,key}, kept when present (and checked). */
static int certs_leaf(const certs_opts *o, const certs_ca *ca, const char *sub, const char *cn, const char *sans,
                      const char *eku, const char *what)
{
    char d[4200], crt[4300], key[4300];
    X509 *x = NULL;
    EVP_PKEY *k = NULL;
    int rc = -1;
    snprintf(d, sizeof d, "%s/%s", o->dir, sub);
    snprintf(crt, sizeof crt, "%s/tls.crt", d);
    snprintf(key, sizeof key, "%s/tls.key", d);
    if (mkdir_p(d, 0700) != 0)
        return -1;
    if (exists(crt) != exists(key)) {
        fprintf(stderr, "error: %s exists without %s: delete it to make a new pair\n", exists(crt) ? crt : key,
                exists(crt) ? key : crt);
        return -1;
    }
    if (exists(crt)) {
        if (!(x = read_crt(crt)) || !(k = read_key(key)))
            goto out;
        if (X509_check_private_key(x, k) != 1) {
            ssl_fail("the key does not match tls.crt", key);
            goto out;
        }
        EVP_PKEY *capub = X509_get0_pubkey(ca->crt);
        if (!capub || X509_verify(x, capub) != 1) {
            fprintf(stderr, "error: %s is not signed by %s/ca.crt: delete it and its key to make a new one\n", crt,
                    o->dir);
            ERR_clear_error();
            goto out;
        }
        printf("kept     %s (%s)\n", crt, what);
    } else {
        if (!(k = EVP_EC_gen("P-256"))) {
            ssl_fail("cannot generate a key", key);
            goto out;
        }
        if (!(x = make_crt(k, cn, ca, sans, eku, o->days))) {
            ssl_fail("cannot make the certificate", crt);
            goto out;
        }
        if (write_key(key, k) != 0 || write_crt(crt, x) != 0)
            goto out;
        printf("created  %s (%s)\n", crt, what);
    }
    rc = copy_ca(d, ca);
out:
    X509_free(x);
    EVP_PKEY_free(k);
    return rc;
}

/* Appends ",DNS:name" or ",IP:addr" for each name to buf. */
static int add_names(char *buf, size_t cap, const char *const *names, int n)
{
    for (int i = 0; i < n; i++) {
        const char *v = names[i];
        bool ip = strspn(v, "0123456789.") == strlen(v) || strchr(v, ':');
        size_t len = strlen(buf);
        if (snprintf(buf + len, cap - len, "%s%s:%s", len ? "," : "", ip ? "IP" : "DNS", v) >= (int)(cap - len))
            return -1;
    }
    return 0;
}

static bool name_ok(const char *s, const char *extra)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || strchr(extra, *s)))
            return false;
    return true;
}

static int certs_parse(certs_opts *o, int argc, char **argv)
{
    o->trust_domain = "sluice";
    o->days = 365;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(certs_usage, stdout);
            return 0;
        }
        const char **list = NULL;
        int *n = NULL;
        if (ctl_opt(argc, argv, &i, NULL, "--server-name", &v))
            list = o->server, n = &o->nserver;
        else if (ctl_opt(argc, argv, &i, NULL, "--nats-host", &v))
            list = o->nats, n = &o->nnats;
        else if (ctl_opt(argc, argv, &i, NULL, "--proxy", &v))
            list = o->proxy, n = &o->nproxy;
        else if (ctl_opt(argc, argv, &i, NULL, "--trust-domain", &v)) {
            if (!v || !name_ok(v, ".-_"))
                return ctl_usage_error("certs", "--trust-domain needs a name of letters, digits, '.', '-', '_'");
            o->trust_domain = v;
            continue;
        } else if (ctl_opt(argc, argv, &i, NULL, "--days", &v)) {
            char *end = NULL;
            long d = v ? strtol(v, &end, 10) : 0;
            if (!v || *end || d < 1 || d > 36500)
                return ctl_usage_error("certs", "--days needs a number of days (1 to 36500)");
            o->days = (int)d;
            continue;
        } else if (argv[i][0] == '-' || o->dir) {
            return ctl_usage_error("certs", "unexpected argument \"%s\"", argv[i]);
        } else {
            o->dir = argv[i];
            continue;
        }
        if (!v || !*v)
            return ctl_usage_error("certs", "%s needs a value", argv[i]);
        if (*n >= CERTS_MAX_NAMES)
            return ctl_usage_error("certs", "at most %d of %s", CERTS_MAX_NAMES, argv[i - 1]);
        if (list == o->proxy) {
            const char *t = strchr(v, '~');
            char ns[256];
            snprintf(ns, sizeof ns, "%.*s", t ? (int)(t - v) : 0, v);
            if (!t || !name_ok(ns, ".-_") || !name_ok(t + 1, ".-_"))
                return ctl_usage_error("certs", "--proxy \"%s\": want NAMESPACE~NAME (letters, digits, '.', '-', '_')",
                                       v);
        } else if (!name_ok(v, ".-_*:")) {
            return ctl_usage_error("certs", "\"%s\" is not a host name or address", v);
        }
        list[(*n)++] = v;
    }
    if (!o->dir)
        return ctl_usage_error("certs", "certs needs a directory");
    return -1; /* go on */
}

int ctl_cmd_certs(ctl *c, int argc, char **argv)
{
    certs_opts o;
    certs_ca ca = {0};
    bool made = false;
    int rc;
    char sans[8192], sub[600];
    (void)c;
    memset(&o, 0, sizeof o);
    if ((rc = certs_parse(&o, argc, argv)) >= 0)
        return rc;
    rc = 1;
    if (mkdir_p(o.dir, 0700) != 0 || certs_ca_get(&ca, &o, &made) != 0)
        goto out;
    printf("%-8s %s/ca.crt (CA, trust domain %s; key %s/ca.key)\n", made ? "created" : "kept", o.dir,
           o.trust_domain, o.dir);
    /* sluice-xds: the DNS SAN "sluice-xds" is what the shipped Envoy
     * bootstraps check, whatever address they dial. */
    snprintf(sans, sizeof sans, "DNS:sluice-xds,DNS:localhost,IP:127.0.0.1");
    if (add_names(sans, sizeof sans, o.server, o.nserver) != 0 ||
        certs_leaf(&o, &ca, "xds", "sluice-xds", sans, "serverAuth", "sluice-xds server") != 0)
        goto out;
    if (o.nnats) {
        /* server and client: routes dial each other with this pair; the
         * DNS SAN sluice-nats-route is the route user (verify_and_map) */
        snprintf(sans, sizeof sans, "DNS:sluice-nats-route");
        if (add_names(sans, sizeof sans, o.nats, o.nnats) != 0 ||
            certs_leaf(&o, &ca, "nats", "sluice-nats", sans, "serverAuth,clientAuth", "nats-server, clients and routes") != 0)
            goto out;
    }
    snprintf(sub, sizeof sub, "%s/proxies", o.dir);
    if (o.nproxy && mkdir_p(sub, 0700) != 0)
        goto out;
    for (int i = 0; i < o.nproxy; i++) {
        const char *t = strchr(o.proxy[i], '~');
        char what[sizeof sans + 300];
        snprintf(sans, sizeof sans, "URI:spiffe://%s/ns/%.*s/proxy/%s", o.trust_domain, (int)(t - o.proxy[i]),
                 o.proxy[i], t + 1);
        snprintf(sub, sizeof sub, "proxies/%s", o.proxy[i]);
        snprintf(what, sizeof what, "proxy %s, %s", o.proxy[i], sans + 4);
        if (certs_leaf(&o, &ca, sub, o.proxy[i], sans, "clientAuth", what) != 0)
            goto out;
    }
    rc = 0;
out:
    X509_free(ca.crt);
    EVP_PKEY_free(ca.key);
    return rc;
}
