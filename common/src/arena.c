#include "sluice/arena.h"
#include "sluice/pbcheck.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Under AddressSanitizer, memory not handed out (and all memory after a
 * reset) is poisoned, so a use of a message after its arena was reset is
 * reported instead of reading the next message's bytes. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define ARENA_DEFAULT_CHUNK (16u * 1024u)
#define ARENA_MIN_CHUNK 256u
#define ARENA_KEEP_SPARE 4u
#define ALIGN alignof(max_align_t)

struct sl_arena_chunk {
    struct sl_arena_chunk *next;
    size_t size; /* usable bytes after the header */
    size_t off;  /* next free byte */
    int big;     /* a chunk of its own for one large allocation */
};

/* The data of a chunk starts after the header, rounded up so that it is
 * aligned like malloc's result. */
#define HDR_SIZE ((sizeof(struct sl_arena_chunk) + ALIGN - 1) & ~(ALIGN - 1))

static unsigned char *chunk_data(struct sl_arena_chunk *c)
{
    return (unsigned char *)c + HDR_SIZE;
}

static void *pb_alloc(void *data, size_t n)
{
    return sl_arena_alloc(data, n);
}

/* protobuf-c frees on its error paths; memory goes back at reset. */
static void pb_free(void *data, void *p)
{
    (void)data;
    (void)p;
}

void sl_arena_init(sl_arena *a, size_t chunk_size)
{
    memset(a, 0, sizeof(*a));
    if (chunk_size == 0)
        chunk_size = ARENA_DEFAULT_CHUNK;
    if (chunk_size < ARENA_MIN_CHUNK)
        chunk_size = ARENA_MIN_CHUNK;
    a->chunk_size = (chunk_size + ALIGN - 1) & ~(ALIGN - 1);
    a->allocator.alloc = pb_alloc;
    a->allocator.free = pb_free;
    a->allocator.allocator_data = a;
}

static void free_list(struct sl_arena_chunk *c)
{
    while (c != NULL) {
        struct sl_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
}

void sl_arena_deinit(sl_arena *a)
{
    free_list(a->chunks);
    free_list(a->spare);
    a->chunks = NULL;
    a->spare = NULL;
    a->used = 0;
    a->reserved = 0;
}

static struct sl_arena_chunk *chunk_new(sl_arena *a, size_t size, int big)
{
    struct sl_arena_chunk *c;

    if (size > SIZE_MAX - HDR_SIZE)
        return NULL;
    c = malloc(HDR_SIZE + size);
    if (c == NULL)
        return NULL;
    c->size = size;
    c->off = 0;
    c->big = big;
    a->reserved += size;
    POISON(chunk_data(c), size);
    return c;
}

void *sl_arena_alloc(sl_arena *a, size_t n)
{
    struct sl_arena_chunk *c = a->chunks;
    size_t need;
    void *p = NULL;

    /* Round up so that the next allocation stays aligned; 0 still takes a
     * slot so that every call returns a distinct pointer. */
    if (n > SIZE_MAX - ALIGN)
        goto out;
    need = n == 0 ? ALIGN : (n + ALIGN - 1) & ~(ALIGN - 1);

    if (need > a->chunk_size / 4) {
        /* Large: a chunk of its own, linked behind the current chunk so
         * that the current chunk keeps filling up. */
        struct sl_arena_chunk *big = chunk_new(a, need, 1);
        if (big == NULL)
            goto out;
        big->off = need;
        if (c != NULL) {
            big->next = c->next;
            c->next = big;
        } else {
            big->next = NULL;
            a->chunks = big;
        }
        p = chunk_data(big);
        UNPOISON(p, need);
        a->used += n;
        goto out;
    }

    if (c == NULL || c->big || c->size - c->off < need) {
        if (a->spare != NULL) {
            c = a->spare;
            a->spare = c->next;
            c->off = 0;
        } else {
            c = chunk_new(a, a->chunk_size, 0);
            if (c == NULL)
                goto out;
        }
        c->next = a->chunks;
        a->chunks = c;
    }
    p = chunk_data(c) + c->off;
    UNPOISON(p, need);
    c->off += need;
    a->used += n;
out:
    if (p == NULL)
        a->oom = 1;
    return p;
}

char *sl_arena_strdup(sl_arena *a, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = sl_arena_alloc(a, n);

    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

void sl_arena_reset(sl_arena *a)
{
    struct sl_arena_chunk *c = a->chunks;
    size_t kept = 0;

    for (struct sl_arena_chunk *s = a->spare; s != NULL; s = s->next)
        kept++;
    while (c != NULL) {
        struct sl_arena_chunk *next = c->next;
        if (!c->big && kept < ARENA_KEEP_SPARE) {
            POISON(chunk_data(c), c->size);
            c->off = 0;
            c->next = a->spare;
            a->spare = c;
            kept++;
        } else {
            a->reserved -= c->size;
            free(c);
        }
        c = next;
    }
    a->chunks = NULL;
    a->used = 0;
    a->oom = 0;
}

size_t sl_arena_used(const sl_arena *a)
{
    return a->used;
}

size_t sl_arena_reserved(const sl_arena *a)
{
    return a->reserved;
}

sl_status sl_arena_unpack(ProtobufCMessage **out, sl_arena *a, const ProtobufCMessageDescriptor *desc,
                          const void *data, size_t len)
{
    sl_status st = SL_OK;
    ProtobufCMessage *m;

    /* untrusted bytes: bounded nesting before protobuf-c recurses */
    if ((st = sl_pb_check(desc, data, len, SL_PB_MAX_DEPTH)) != SL_OK)
        goto out;
    a->oom = 0;
    m = protobuf_c_message_unpack(desc, &a->allocator, len, data);
    if (m == NULL) {
        /* protobuf-c does not tell a malformed payload from a failed
         * allocation; the arena remembers the latter. */
        if (a->oom)
            st = sl_error_set(SL_ERR_NOMEM, "out of memory unpacking %zu bytes as %s", len,
                              desc->name);
        else
            st = sl_error_set(SL_ERR_PARSE, "payload of %zu bytes is not a valid %s", len,
                              desc->name);
        goto out;
    }
    *out = m;
out:
    return st;
}
