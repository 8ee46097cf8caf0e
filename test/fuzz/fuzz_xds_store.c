/* libFuzzer target for the sluice_xds store format as sluice-xds reads it
 * (common/xdsstore: sluice/xds_source.h, sluice/xds_keys.h; docs/xds.md
 * "KV layout").
 *
 * The input is a run of KV events for proxy "p": each is a byte (bit 0:
 * put or delete; bits 1-3: the key's kind: commit, manifest chunk, route
 * part, resource), a key token length and token, a 2-byte value length and
 * the value. The token is the (unescaped) name the key builder is given;
 * when it names nothing (""), the token itself is the key, so the reader
 * also sees keys that are not sluice_xds keys. The events go to a source in
 * the order given, so commits name chunks, chunks name resources and parts,
 * at revisions that may or may not exist. Every value is also split as a
 * RouteConfiguration and, when it splits, joined again: the join must be as
 * long as the input; every key the parser accepts must be built again the
 * same from its parts. A crash, sanitizer report, leak or abort() is a
 * finding.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/xds_cache.h"
#include "sluice/log.h"
#include "sluice/xds.h"
#include "sluice/xds_keys.h"
#include "sluice/xds_source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The type of each event kind (bits 1-3): commit, manifest chunks of
 * routes and clusters, a part of route "r", resources. */
static const sl_xds_type kind_type[] = {SL_XDS_ROUTE,   SL_XDS_ROUTE,    SL_XDS_CLUSTER,  SL_XDS_ROUTE,
                                        SL_XDS_ROUTE,   SL_XDS_CLUSTER,  SL_XDS_ENDPOINT, SL_XDS_LISTENER};

/* The event's key: kind k's key of proxy "p" named tok, or tok itself when
 * that builds no key. */
static void event_key(char *key, size_t cap, int k, const char *tok)
{
    sl_status rc = k == 0   ? sl_xds_key_commit(key, cap, "p")
                   : k <= 2 ? sl_xds_key_manifest(key, cap, "p", kind_type[k], tok)
                   : k == 3 ? sl_xds_key_vhost(key, cap, "p", "r", tok)
                            : sl_xds_key_resource(key, cap, "p", kind_type[k], tok);
    if (rc != SL_OK)
        snprintf(key, cap, "%s", tok);
}

/* Whatever the parser accepts, the builder of its kind makes again. */
static void check_key(const char *key)
{
    static sl_xds_key k;
    char again[SL_XDS_KEY_MAX];
    sl_status rc;
    if (sl_xds_key_parse(&k, key) != SL_OK)
        return;
    switch (k.kind) {
    case SL_XDS_KEY_COMMIT: rc = sl_xds_key_commit(again, sizeof again, k.proxy); break;
    case SL_XDS_KEY_MANIFEST: rc = sl_xds_key_manifest(again, sizeof again, k.proxy, k.type, k.name); break;
    case SL_XDS_KEY_VHOST: rc = sl_xds_key_vhost(again, sizeof again, k.proxy, k.route, k.name); break;
    default: rc = sl_xds_key_resource(again, sizeof again, k.proxy, k.type, k.name); break;
    }
    if (rc != SL_OK || strcmp(again, key) != 0 || (sl_xds_key_is_commit(key) != 0) != (k.kind == SL_XDS_KEY_COMMIT))
        abort();
}

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
        char key[SL_XDS_KEY_MAX], tok[256];
        if (kl > size - i)
            break;
        memcpy(tok, data + i, kl);
        tok[kl] = 0;
        event_key(key, sizeof key, (op >> 1) & 7, tok);
        check_key(tok);
        check_key(key);
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
