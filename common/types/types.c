#include "sluice/types.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/bsearch.h"

extern const ProtobufCMessageDescriptor *const sl_envoyapi_descriptors[];
extern const size_t sl_envoyapi_descriptors_count;
#ifdef SLUICE_HAVE_API
extern const ProtobufCMessageDescriptor *const sl_api_descriptors[];
extern const size_t sl_api_descriptors_count;
#endif

static const ProtobufCMessageDescriptor **table;
static size_t table_len;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static int cmp_desc(const void *a, const void *b)
{
    const ProtobufCMessageDescriptor *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

static void append(const ProtobufCMessageDescriptor *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        table[table_len++] = list[i];
}

static void build(void)
{
    size_t n = sl_envoyapi_descriptors_count;
#ifdef SLUICE_HAVE_API
    n += sl_api_descriptors_count;
#endif
    table = calloc(n ? n : 1, sizeof(*table));
    if (!table)
        return;
    append(sl_envoyapi_descriptors, sl_envoyapi_descriptors_count);
#ifdef SLUICE_HAVE_API
    append(sl_api_descriptors, sl_api_descriptors_count);
#endif
    qsort(table, table_len, sizeof(*table), cmp_desc);
}

/* A full name against a table entry. */
static int cmp_name(const void *key, const void *elem)
{
    const ProtobufCMessageDescriptor *const *d = elem;
    return strcmp(key, (*d)->name);
}

const ProtobufCMessageDescriptor *sl_types_find(const char *full_name)
{
    bool found;
    size_t pos;

    pthread_once(&once, build);
    pos = sl_bsearch_pos(&found, full_name, table, table_len, sizeof *table, cmp_name);
    return found ? table[pos] : NULL;
}

const ProtobufCMessageDescriptor *sl_types_find_url(const char *type_url)
{
    const char *slash = strrchr(type_url, '/');
    return sl_types_find(slash ? slash + 1 : type_url);
}

size_t sl_types_count(void)
{
    pthread_once(&once, build);
    return table_len;
}
