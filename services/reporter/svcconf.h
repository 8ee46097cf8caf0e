/* svcconf.h - a service's config file, read as extra command-line flags.
 *
 * The file holds one setting per line, `flag = value` or `flag value`, the
 * flag named as on the command line without the leading "--" (for example
 * `nats-url = nats://127.0.0.1:4222`, `log-level debug`); a line with a
 * flag only is a boolean flag; '#' starts a comment. Its settings come
 * before the command line's, so flags given on the command line win.
 * Shared by sluice-reporter and sluice-secret-watcher.
 */
#ifndef SLUICE_SVCCONF_H
#define SLUICE_SVCCONF_H

#include "sluice/status.h"

/* Looks for "--config FILE" / "--config=FILE" in argv (else the
 * environment variable env, when not NULL and set), removes it from argv
 * and returns in *out_argv a new argv: argv[0], the file's flags, then the
 * rest of argv, NULL-terminated (*out_argc entries). Free with
 * svcconf_free(). Without a config file *out_argv is a copy of argv.
 * SL_ERR_IO / SL_ERR_PARSE name the file and line. */
sl_status svcconf_load(int *out_argc, char ***out_argv, int argc, char **argv, const char *env);

/* Frees what svcconf_load() returned. */
void svcconf_free(int argc, char **argv);

/* Looks up "--name VALUE" / "--name=VALUE" at argv[*i]: returns the value
 * and advances *i past it, or NULL (and *i unchanged) when argv[*i] is not
 * that flag. *missing is set when the flag has no value. */
const char *svcconf_flag(int argc, char **argv, int *i, const char *name, int *missing);

#endif
