/* libFuzzer target for the sluice_xds store format as sluice-xds reads it
 * (services/xds/source.c, docs/xds.md "KV layout").
 *
 * The input is a run of KV events for proxy "p": each is a byte (bit 0:
 * put or delete; bits 1-3: the key's kind: commit, manifest chunk, route
 * part, resource), a key token length and token, a 2-byte value length and
 * the value. The events go to a source in the order given, so commits name
 * chunks, chunks name resources and parts, at revisions that may or may not
 * exist. Every value is also split as a RouteConfiguration and, when it
 * splits, joined again: the join must be as long as the input. A crash,
 * sanitizer report, leak or abort() is a finding.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/xds_cache.h"
#include "sluice/log.h"
#include "sluice/xds.h"
#include "sluice/xds_source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const kinds[] = {"commit", "manifest.route", "manifest.cluster", "vhost.r", "route",
                                    "cluster", "endpoint", "listener"};

static void split_join(const uint8_t *v, size_t len)
{
    uint8_t *head, *joined;
    size_t hl, np, jl;
    sl_xds_part *parts;
    if (sl_xds_route_split(&head, &hl, &parts, &np, v, len) != SL_OK)
        return;
    const uint8_t **pv = malloc((np + 1) * sizeof *pv);
    size_t *pl = malloc((np + 1) * sizeof *pl);
    for (size_t i = 0; i < np; i++) {
        if (parts[i].off + parts[i].len > len || !parts[i].name_len)
            abort();
        pv[i] = v + parts[i].off;
        pl[i] = parts[i].len;
    }
    if (sl_xds_route_join(&joined, &jl, head, hl, pv, pl, np) != SL_OK || jl != len)
        abort();
    free(joined);
    free(pv);
    free(pl);
    free(head);
    free(parts);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int once;
    sl_xds_cache *cache;
    sl_xds_source *src;
    uint64_t rev = 0;
    if (!once) {
        sl_log_set_level(SL_LOG_ERROR);
        once = 1;
    }
    if (size > 256 * 1024 || sl_xds_cache_new(&cache, NULL, NULL) != SL_OK)
        return 0;
    if (sl_xds_source_new(&src, cache, NULL, NULL) != SL_OK) {
        sl_xds_cache_free(cache);
        return 0;
    }
    for (size_t i = 0; i + 2 <= size;) {
        uint8_t op = data[i++], kl = data[i++];
        char key[600];
        if (kl > size - i)
            break;
        int k = (op >> 1) & 7;
        if (k == 0)
            snprintf(key, sizeof key, "p.commit");
        else
            snprintf(key, sizeof key, "p.%s.%.*s", kinds[k], (int)kl, (const char *)data + i);
        i += kl;
        if (i + 2 > size)
            break;
        size_t vl = (size_t)data[i] | (size_t)data[i + 1] << 8;
        i += 2;
        if (vl > size - i)
            vl = size - i;
        if (op & 1) {
            sl_xds_source_delete(src, key);
        } else {
            sl_xds_source_put(src, key, ++rev, data + i, vl);
            split_join(data + i, vl);
        }
        i += vl;
        if (rev == 4)
            sl_xds_source_initial_done(src); /* commits before this are held */
    }
    sl_xds_source_free(src);
    sl_xds_cache_free(cache);
    return 0;
}
