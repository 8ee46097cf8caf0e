/* sluicectl: the Sluice command line. See docs/cli.md. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "sluice/kinds.h"
#include "sluice/log.h"
#include "sluice/flags.h"
#include "sluice/service.h"

static const char usage[] =
    "sluicectl controls Sluice, an Envoy control plane on NATS.\n"
    "\n"
    "Usage: sluicectl [global flags] COMMAND [flags]\n"
    "\n"
    "Commands:\n"
    "  apply -f FILE|DIR|- [--dry-run]          create or update resources (apply API)\n"
    "  delete KIND NAME [-n NS] | -f FILE        delete resources (apply API; secrets: secret API)\n"
    "  create secret tls|aws|header NAME ...     create a Secret (secret-watcher's API)\n"
    "  get KIND [NAME] [-n NS|-A] [-o table|yaml|json]\n"
    "                                            show stored resources and their status\n"
    "  status [KIND [NAME]] [-n NS|-A] [--watch] show resource status (sluice_status KV)\n"
    "  xds dump --proxy P [--type T] [-o yaml|json]\n"
    "                                            show what a proxy is served (sluice_xds KV)\n"
    "  check                                     check NATS, buckets, services and statuses\n"
    "  run [--config-dir DIR] [--state-dir DIR]  run NATS and every service locally\n"
    "  nats-auth DIR [--admin]                   make NATS credentials: a seed per role, auth.conf\n"
    "  certs DIR [--proxy NS~NAME ...]           make a CA, sluice-xds/NATS/proxy certificates\n"
    "  version                                   print the version\n"
    "\n"
    "Kinds: gateway (gw), virtualservice (vs), routetable (rt), upstream (us),\n"
    "       upstreamgroup (ug), settings, secret (sec, delete only); plurals work too.\n"
    "\n"
    "Global flags go anywhere on the line (--flag value or --flag=value; the\n"
    "command line wins over the environment). 'sluicectl COMMAND --help' shows\n"
    "a command's own flags.\n";

int ctl_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "error: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nSee 'sluicectl %s --help' for usage.\n", cmd ? cmd : "");
    return 1;
}

bool ctl_opt(int argc, char **argv, int *i, const char *shrt, const char *lng, const char **val)
{
    const char *a = argv[*i];
    size_t ll = lng ? strlen(lng) : 0;
    if ((shrt && strcmp(a, shrt) == 0) || (lng && strcmp(a, lng) == 0)) {
        if (*i + 1 >= argc) {
            *val = NULL;
            return true;
        }
        *val = argv[++*i];
        return true;
    }
    if (lng && strncmp(a, lng, ll) == 0 && a[ll] == '=') {
        *val = a + ll + 1;
        return true;
    }
    if (shrt && strncmp(a, shrt, strlen(shrt)) == 0 && shrt[1] && !shrt[2] && a[2] && a[1] == shrt[1]) {
        *val = a + 2; /* -nfoo */
        return true;
    }
    return false;
}

sl_nats *ctl_connect(ctl *c)
{
    sl_nats *nc = NULL;
    if (sl_nats_connect(&nc, &c->nats) != SL_OK) {
        fprintf(stderr, "error: cannot connect to NATS at %s: %s\n",
                c->nats.urls ? c->nats.urls : SL_NATS_DEFAULT_URL, sl_error_msg());
        return NULL;
    }
    return nc;
}

void ctl_close(sl_nats *nc)
{
    /* Every command's NATS work is synchronous (requests, JetStream
     * publishes with acks, KV reads) and done by now: nothing to drain, and
     * nats.c's drain polls every 100 ms, which would be most of an apply. */
    sl_nats_close(nc, 0);
}

void ctl_kind_ref(char *buf, size_t n, const char *kind)
{
    const sl_kind *k = sl_kind_by_name(kind);
    char lower[80];
    size_t i;
    for (i = 0; kind[i] && i + 1 < sizeof(lower); i++)
        lower[i] = (char)(kind[i] >= 'A' && kind[i] <= 'Z' ? kind[i] + 32 : kind[i]);
    lower[i] = '\0';
    if (k) {
        const char *slash = strchr(k->api_version, '/');
        int gl = slash ? (int)(slash - k->api_version) : (int)strlen(k->api_version);
        snprintf(buf, n, "%s.%.*s", lower, gl, k->api_version);
    } else {
        snprintf(buf, n, "%s", lower[0] ? lower : "unknown");
    }
}

/* Without credentials given, those of a local `sluicectl run` (or `make
 * run`): <state dir>/nats-auth/sluicectl.nk, the state dir being
 * $SLUICE_STATE or .state. */
static void ctl_local_credentials(ctl *c)
{
    char dir[4096], seed[4200];
    const char *state = getenv("SLUICE_STATE");
    if (c->nats.nkey_file || c->nats.auth_dir || c->nats.creds_file)
        return;
    snprintf(dir, sizeof dir, "%s/nats-auth", state && state[0] ? state : ".state");
    snprintf(seed, sizeof seed, "%s/sluicectl.nk", dir);
    if (access(seed, R_OK) == 0)
        sl_nats_settings_set(&c->nats, "nats-auth-dir", dir);
}

/* The global flags: taken from anywhere on the line; what is not one stays
 * in argv for the command. */
static int parse_global_flags(ctl *c, sl_flags *fs, int *argc, char **argv)
{
    static sl_flag table[SL_NATS_FLAGS_N + 1];
    static sl_nats_flags nats;

    sl_nats_flags_table(table, &nats, "3s");
    table[SL_NATS_FLAGS_N] = (sl_flag){.name = "request-timeout", .kind = SL_FLAG_DURATION,
                                       .target = &c->timeout_ms, .def = "10s",
                                       .help = "how long to wait for the apply API"};
    if (sl_flags_add(fs, "Global flags", table, SL_NATS_FLAGS_N + 1) != SL_OK ||
        sl_flags_parse(fs, argc, argv, SL_FLAGS_KEEP_UNKNOWN) != SL_OK ||
        sl_nats_settings_set(&c->nats, "nats-name", "sluicectl") != SL_OK ||
        sl_nats_flags_apply(&c->nats, &nats) != SL_OK)
        return ctl_usage_error(NULL, "%s", sl_error_msg());
    ctl_local_credentials(c);
    return 0;
}

int main(int argc, char **argv)
{
    ctl c;
    sl_flags fs;
    int code = 1;

    memset(&c, 0, sizeof(c));
    c.argv0 = argv[0];
    sl_log_init("sluicectl");
    if (!getenv("SLUICE_LOG_LEVEL"))
        sl_log_set_level(SL_LOG_ERROR);
    sl_nats_settings_init(&c.nats);
    sl_flags_init(&fs);
    if (parse_global_flags(&c, &fs, &argc, argv) != 0)
        goto out;
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        FILE *f = argc < 2 ? stderr : stdout;
        fputs(usage, f);
        sl_flags_print_help(&fs, f);
        fputs("  -h, --help                  this help\n", f);
        code = argc < 2 ? 1 : 0;
        goto out;
    }
    const char *cmd = argv[1];
    int sargc = argc - 1;
    char **sargv = argv + 1;
    if (strcmp(cmd, "apply") == 0)
        code = ctl_cmd_apply(&c, sargc, sargv);
    else if (strcmp(cmd, "delete") == 0)
        code = ctl_cmd_delete(&c, sargc, sargv);
    else if (strcmp(cmd, "create") == 0)
        code = ctl_cmd_create(&c, sargc, sargv);
    else if (strcmp(cmd, "get") == 0)
        code = ctl_cmd_get(&c, sargc, sargv);
    else if (strcmp(cmd, "status") == 0)
        code = ctl_cmd_status(&c, sargc, sargv);
    else if (strcmp(cmd, "xds") == 0)
        code = ctl_cmd_xds(&c, sargc, sargv);
    else if (strcmp(cmd, "check") == 0)
        code = ctl_cmd_check(&c, sargc, sargv);
    else if (strcmp(cmd, "run") == 0)
        code = ctl_cmd_run(&c, sargc, sargv);
    else if (strcmp(cmd, "nats-auth") == 0 || strcmp(cmd, "certs") == 0)
        code = (cmd[0] == 'n' ? ctl_cmd_nats_auth : ctl_cmd_certs)(&c, sargc, sargv);
    else if (strcmp(cmd, "version") == 0) {
        printf("sluicectl version %s\n", CTL_VERSION);
        code = 0;
    } else {
        fprintf(stderr, "error: unknown command \"%s\" for \"sluicectl\"\n", cmd);
        fputs(usage, stderr);
        code = 1;
    }
out:
    sl_flags_deinit(&fs);
    sl_nats_settings_deinit(&c.nats);
    sl_nats_shutdown(2000);
    return code;
}
