/* sluice/types.h - every generated protobuf message type, by full name.
 *
 * The registry holds the descriptors of Envoy's API (the closure of
 * proto/envoy/sluice_envoy_api.proto) and of Sluice's own API
 * (proto/sluice/v1). It is built once, on first use, and never freed;
 * lookups are thread safe.
 */
#ifndef SLUICE_TYPES_H
#define SLUICE_TYPES_H

#include <protobuf-c/protobuf-c.h>

/* The descriptor of the message with this full name
 * ("envoy.config.listener.v3.Listener") or NULL. */
const ProtobufCMessageDescriptor *sl_types_find(const char *full_name);

/* The same for a google.protobuf.Any type URL: the part after the last '/'
 * ("type.googleapis.com/envoy.config.listener.v3.Listener"). */
const ProtobufCMessageDescriptor *sl_types_find_url(const char *type_url);

/* Number of registered message types. */
size_t sl_types_count(void);

#endif
