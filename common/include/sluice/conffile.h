/* sluice/conffile.h - a service's config file, read as extra command-line flags.
 *
 * The file holds one setting per line, `flag = value` or `flag value`, the
 * flag named as on the command line without the leading "--" (for example
 * `nats-url = nats://127.0.0.1:4222`, `log-level debug`); a line with a
 * flag only is a boolean flag; '#' starts a comment. Its settings come
 * before the command line's, so flags given on the command line win.
 * Every service's `--config FILE` option.
 */
#ifndef SLUICE_CONFFILE_H
#define SLUICE_CONFFILE_H

#include "sluice/status.h"

/* The flags of a service: argv[0], the config file's flags, then the rest
 * of the command line. argc/argv may be handed to flag parsers that remove
 * what they consume (sl_service_args_parse()); the strings stay owned by
 * the sl_conffile and are all freed by sl_conffile_deinit(). */
typedef struct sl_conffile {
    int argc;
    char **argv; /* NULL-terminated */
    char **own_; /* private: every string, for sl_conffile_deinit() */
    int n_own_, cap_;
} sl_conffile;

/* Looks for "--config FILE" / "--config=FILE" in argv (else the
 * environment variable env, when not NULL and set) and fills c with a new
 * argv without it: argv[0], the file's flags, then the rest of argv. Without
 * a config file c->argv is a copy of argv. SL_ERR_IO / SL_ERR_PARSE name the
 * file and line. c must be deinitialised with sl_conffile_deinit() whatever
 * the result. */
sl_status sl_conffile_load(sl_conffile *c, int argc, char **argv, const char *env);

/* Frees every string and array of c; c is zeroed. */
void sl_conffile_deinit(sl_conffile *c);

/* Looks up "--name VALUE" / "--name=VALUE" at argv[*i]: returns the value
 * and advances *i past it, or NULL (and *i unchanged) when argv[*i] is not
 * that flag. *missing is set when the flag has no value. */
const char *sl_conffile_flag(int argc, char **argv, int *i, const char *name, int *missing);

#endif
