/* libFuzzer target for what upstream discovery derives from what its sources hand over: an etcd registry
 * key under a root -> its service (sl_upstream_etcd_service), and any service id (an etcd prefix, a DNS-SD
 * instance name from a PTR answer) -> an Upstream name (sl_upstream_discovered_name).
 *
 * Input: "<root>\n<key>". Invariants (abort on violation): a service found is a proper prefix of the key,
 * starts with the root, does not end in '/'; every name returned passes sl_resource_check_name(), is the
 * same when asked again, and the suffixed name differs from the plain one. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/resource.h"
#include "sluice/upstreams.h"

#define FUZZ_MAX_INPUT 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_name(const char *source, const char *id)
{
    char a[SL_RESOURCE_NAME_MAX + 1], b[SL_RESOURCE_NAME_MAX + 1], c[SL_RESOURCE_NAME_MAX + 1];
    sl_status st = sl_upstream_discovered_name(a, source, id, false);
    if (st != SL_OK) {
        if (st != SL_ERR_INVALID)
            abort();
        return;
    }
    if (sl_resource_check_name(a) != SL_OK || sl_upstream_discovered_name(b, source, id, false) != SL_OK ||
        strcmp(a, b) != 0)
        abort();
    if (sl_upstream_discovered_name(c, source, id, true) != SL_OK || sl_resource_check_name(c) != SL_OK ||
        !strcmp(a, c))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char out[512];
    if (size > FUZZ_MAX_INPUT)
        return 0;
    char *in = malloc(size + 1);
    if (!in)
        return 0;
    memcpy(in, data, size);
    in[size] = '\0';
    char *nl = strchr(in, '\n');
    const char *root = nl ? in : "", *key = nl ? nl + 1 : in;
    if (nl)
        *nl = '\0';
    if (sl_upstream_etcd_service(out, sizeof out, root, key)) {
        size_t n = strlen(out);
        if (!n || n >= strlen(key) || strncmp(out, key, n) != 0 || key[n] != '/' || out[n - 1] == '/' ||
            strncmp(key, root, strlen(root)) != 0)
            abort();
        check_name("etcd", out);
    }
    check_name("dnssd", key);
    free(in);
    return 0;
}
