/* transformation.h - private to plugins/transformation.c and its Lua. */
#ifndef SLUICE_TR_TRANSFORMATION_H
#define SLUICE_TR_TRANSFORMATION_H

/* transformation_lua.c: the Lua code every transformation script starts
 * with; it defines the local table S (JSON, regex, S.apply, S.on_request,
 * S.on_response, S.serve). */
extern const char tr_transformation_lua[];

/* transformation_lua.c: what follows the runtime in the source the routes
 * share: the handlers run the program in the route's metadata. */
extern const char tr_transformation_dispatch_lua[];

#endif
