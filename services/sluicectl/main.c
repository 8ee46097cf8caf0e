/* sluicectl: the Sluice command line. See docs/cli.md. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "sluice/kinds.h"
#include "sluice/log.h"
#include "sluice/service.h"

static const char usage[] =
    "sluicectl controls Sluice, an Envoy control plane on NATS.\n"
    "\n"
    "Usage: sluicectl [global flags] COMMAND [flags]\n"
    "\n"
    "Commands:\n"
    "  apply -f FILE|DIR|- [--dry-run]          create or update resources (apply API)\n"
    "  delete KIND NAME [-n NS] | -f FILE        delete resources (apply API)\n"
    "  get KIND [NAME] [-n NS|-A] [-o table|yaml|json]\n"
    "                                            show stored resources and their status\n"
    "  status [KIND [NAME]] [-n NS|-A] [--watch] show resource status (sluice_status KV)\n"
    "  xds dump --proxy P [--type T] [-o yaml|json]\n"
    "                                            show what a proxy is served (sluice_xds KV)\n"
    "  check                                     check NATS, buckets, services and statuses\n"
    "  run [--config-dir DIR] [--state-dir DIR]  run NATS and every service locally\n"
    "  version                                   print the version\n"
    "\n"
    "Kinds: gateway (gw), virtualservice (vs), routetable (rt), upstream (us),\n"
    "       upstreamgroup (ug), settings; plurals work too.\n"
    "\n"
    "Global flags:\n"
    "  --request-timeout DURATION   how long to wait for the apply API (default 10s)\n"
    "  -h, --help                   this help\n";

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

int main(int argc, char **argv)
{
    ctl c;
    int code = 1;
    char **rest = calloc((size_t)argc + 1, sizeof(char *));
    int nrest = 0;

    memset(&c, 0, sizeof(c));
    c.argv0 = argv[0];
    c.timeout_ms = 10000;
    sl_log_init("sluicectl");
    if (!getenv("SLUICE_LOG_LEVEL"))
        sl_log_set_level(SL_LOG_ERROR);
    sl_nats_settings_init(&c.nats);
    if (sl_nats_settings_from_env(&c.nats) != SL_OK) {
        code = ctl_usage_error(NULL, "%s", sl_error_msg());
        goto out;
    }
    c.nats.startup_deadline_ms = 3000;
    sl_nats_settings_set(&c.nats, "nats-name", "sluicectl");
    if (!rest)
        goto out;
    rest[nrest++] = argv[0];
    for (int i = 1; i < argc; i++) {
        bool matched = false;
        const char *v;
        if (sl_nats_settings_parse_arg(&matched, &c.nats, argc, argv, &i) != SL_OK) {
            code = ctl_usage_error(NULL, "%s", sl_error_msg());
            goto out;
        }
        if (matched) {
            i--; /* parse_arg advanced past the flag; the loop advances once more */
            continue;
        }
        if (ctl_opt(argc, argv, &i, NULL, "--request-timeout", &v)) {
            if (!v || sl_parse_duration_ms(&c.timeout_ms, v) != SL_OK) {
                code = ctl_usage_error(NULL, "--request-timeout: bad duration");
                goto out;
            }
            continue;
        }
        rest[nrest++] = argv[i];
    }
    rest[nrest] = NULL;
    if (nrest < 2 || strcmp(rest[1], "-h") == 0 || strcmp(rest[1], "--help") == 0 ||
        strcmp(rest[1], "help") == 0) {
        fputs(usage, nrest < 2 ? stderr : stdout);
        fputs(sl_nats_settings_usage(), nrest < 2 ? stderr : stdout);
        code = nrest < 2 ? 1 : 0;
        goto out;
    }
    const char *cmd = rest[1];
    int sargc = nrest - 1;
    char **sargv = rest + 1;
    if (strcmp(cmd, "apply") == 0)
        code = ctl_cmd_apply(&c, sargc, sargv);
    else if (strcmp(cmd, "delete") == 0)
        code = ctl_cmd_delete(&c, sargc, sargv);
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
    else if (strcmp(cmd, "version") == 0) {
        printf("sluicectl version %s\n", CTL_VERSION);
        code = 0;
    } else {
        fprintf(stderr, "error: unknown command \"%s\" for \"sluicectl\"\n", cmd);
        fputs(usage, stderr);
        code = 1;
    }
out:
    free(rest);
    sl_nats_settings_deinit(&c.nats);
    sl_nats_shutdown(2000);
    return code;
}
