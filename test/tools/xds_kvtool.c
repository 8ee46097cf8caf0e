/* xds-kvtool - writes a proxy's Envoy resources and a commit to the
 * sluice_xds bucket, the way the translator does (a test tool).
 *
 *   xds-kvtool [--nats-url URL] [--bucket B] [--proxy P] apply SPEC...
 *   xds-kvtool dump SPEC...     the resources as varint-delimited Any
 *                               records on stdout (for xdsvalidate)
 *
 * SPEC: see xds_apply.h.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/kv.h"
#include "sluice/log.h"
#include "sluice/wire.h"
#include "xds_apply.h"

static int dump(int n, char **specs)
{
    for (int i = 0; i < n; i++) {
        sl_xds_type t;
        char name[512];
        size_t len;
        uint8_t *b = fx_build(specs[i], &t, name, &len);
        if (!b) {
            fprintf(stderr, "xds-kvtool: bad spec %s\n", specs[i]);
            return 1;
        }
        const char *url = sl_xds_type_url(t);
        size_t any = sl_wire_ld_len(strlen(url)) + sl_wire_ld_len(len);
        uint8_t *o = malloc(10 + any), *w = sl_wire_varint_put(o, any);
        w = sl_wire_ld(w, 1, url, strlen(url));
        w = sl_wire_ld(w, 2, b, len);
        fwrite(o, 1, (size_t)(w - o), stdout);
        free(o);
        free(b);
    }
    return 0;
}

int main(int argc, char **argv)
{
    sl_nats_settings ns;
    sl_nats *nc = NULL;
    sl_kv *kv = NULL;
    const char *bucket = "sluice_xds", *proxy = SL_XDS_DEFAULT_PROXY;
    int i = 1, rc = 1;
    sl_log_set_level(SL_LOG_WARN);
    sl_nats_settings_init(&ns);
    sl_nats_settings_from_env(&ns);
    ns.startup_deadline_ms = 10000;
    while (i < argc && strncmp(argv[i], "--", 2) == 0) {
        bool matched;
        if (sl_nats_settings_parse_arg(&matched, &ns, argc, argv, &i) != SL_OK)
            goto usage;
        if (matched)
            continue;
        if (!strcmp(argv[i], "--bucket") && i + 1 < argc)
            bucket = argv[i + 1];
        else if (!strcmp(argv[i], "--proxy") && i + 1 < argc)
            proxy = argv[i + 1];
        else
            goto usage;
        i += 2;
    }
    if (i < argc && !strcmp(argv[i], "dump")) {
        sl_nats_settings_deinit(&ns);
        return dump(argc - i - 1, argv + i + 1);
    }
    if (i >= argc || strcmp(argv[i], "apply") != 0)
        goto usage;
    i++;
    sl_kv_config cfg;
    sl_kv_config_init(&cfg, bucket);
    cfg.history = 5;
    uint64_t crev;
    if (sl_nats_connect(&nc, &ns) != SL_OK || sl_kv_open(&kv, nc, &cfg) != SL_OK ||
        fx_apply(&crev, kv, proxy, argc - i, argv + i) != SL_OK) {
        fprintf(stderr, "xds-kvtool: %s\n", sl_error_msg());
        goto out;
    }
    printf("committed %s revision %" PRIu64 "\n", proxy, crev);
    rc = 0;
out:
    sl_kv_free(kv);
    sl_nats_close(nc, 1000);
    sl_nats_settings_deinit(&ns);
    return rc;
usage:
    fprintf(stderr, "usage: xds-kvtool [--nats-url URL] [--bucket B] [--proxy P] apply|dump SPEC...\n");
    sl_nats_settings_deinit(&ns);
    return 2;
}
