/* sluice/arena.h - a bump allocator for one message's worth of memory.
 *
 * Decode a NATS payload into an arena, handle it, reset the arena:
 *
 *   sl_arena a;
 *   sl_arena_init(&a, 0);
 *   for (each message) {
 *       ProtobufCMessage *m;
 *       if (sl_arena_unpack(&m, &a, &sluice__v1__upstream__descriptor, data, len) == SL_OK)
 *           handle(m);
 *       sl_arena_reset(&a);          // everything unpacked is gone
 *   }
 *   sl_arena_deinit(&a);
 *
 * Memory comes in chunks (default 16 KiB); an allocation larger than a
 * quarter of a chunk gets a chunk of its own, so big values never waste the
 * rest of a standard chunk. Every pointer is aligned for max_align_t.
 * sl_arena_reset() keeps up to four standard chunks for the next message and
 * frees the rest, so the memory held between messages is bounded.
 *
 * An arena is not thread safe: use one per thread (or per handler).
 * Never call protobuf_c_message_free_unpacked() on a message unpacked into
 * an arena; the arena's allocator frees nothing until reset or deinit.
 */
#ifndef SLUICE_ARENA_H
#define SLUICE_ARENA_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include "sluice/status.h"

struct sl_arena_chunk;

typedef struct sl_arena {
    /* Pass &arena->allocator to protobuf_c_message_unpack(). Its
     * allocator_data points back at the arena. */
    ProtobufCAllocator allocator;
    /* private */
    struct sl_arena_chunk *chunks; /* in use, newest first */
    struct sl_arena_chunk *spare;  /* standard chunks kept by reset */
    size_t chunk_size;
    size_t used;     /* bytes handed out since the last reset */
    size_t reserved; /* bytes held in chunks, in use or spare */
    int oom;         /* an allocation failed since the last reset */
} sl_arena;

/* Prepares a caller-owned arena; allocates nothing yet. chunk_size 0 means
 * 16 KiB; smaller values are raised to 256 bytes. */
void sl_arena_init(sl_arena *a, size_t chunk_size);

/* Frees every chunk. The arena may be initialised again afterwards. */
void sl_arena_deinit(sl_arena *a);

/* n bytes aligned for max_align_t, valid until the next reset or deinit;
 * NULL when out of memory. n == 0 returns a valid, unique pointer. */
void *sl_arena_alloc(sl_arena *a, size_t n);

/* A copy of s (NUL-terminated) in the arena, or NULL when out of memory. */
char *sl_arena_strdup(sl_arena *a, const char *s);

/* Releases everything allocated since the last reset. Pointers from the
 * arena become invalid. */
void sl_arena_reset(sl_arena *a);

/* Bytes handed out since the last reset (without alignment padding). */
size_t sl_arena_used(const sl_arena *a);

/* Bytes of chunks the arena holds now, including spare chunks. */
size_t sl_arena_reserved(const sl_arena *a);

/* Unpacks len bytes of data as a message of type desc into the arena.
 * *out is valid until the next reset; the payload itself is not referenced
 * afterwards. The bytes are checked first (sl_pb_check(), SL_PB_MAX_DEPTH):
 * SL_ERR_PARSE (with the message name in the error context) when they nest
 * too deep or are not a valid desc, SL_ERR_NOMEM when the arena could not grow. */
sl_status sl_arena_unpack(ProtobufCMessage **out, sl_arena *a, const ProtobufCMessageDescriptor *desc,
                          const void *data, size_t len);

#endif
