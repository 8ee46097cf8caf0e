/* sluice/conffile.h - a service's config file: its `--config FILE`.
 *
 * The file holds one setting per line, `flag = value` or `flag value`, the
 * flag named as on the command line without the leading "--" (for example
 * `nats-url = nats://127.0.0.1:4222`, `log-level debug`); a line with a
 * flag only is a boolean flag; '#' starts a comment; a value may be quoted
 * ("a b" or 'a b'; "" for an empty value). The flag parser (sluice/flags.h)
 * reads it with sl_conffile_read(); sl_conffile_load() instead splices it
 * into an argv.
 */
#ifndef SLUICE_CONFFILE_H
#define SLUICE_CONFFILE_H

#include <stddef.h>

#include "sluice/status.h"

/* One line of a config file: the flag's name without "--", its value
 * (NULL for a line with the flag only) and the line number. */
typedef struct sl_conffile_setting {
    char *name;
    char *value;
    int line;
} sl_conffile_setting;

/* A read config file. From sl_conffile_load(): argv[0], the config file's
 * flags, then the rest of the command line; argc/argv may be handed to flag
 * parsers that remove what they consume. From sl_conffile_read(): the
 * settings, in file order. Every string stays owned by the sl_conffile and
 * is freed by sl_conffile_deinit(). */
typedef struct sl_conffile {
    int argc;
    char **argv; /* NULL-terminated */
    sl_conffile_setting *settings;
    size_t n_settings;
    char **own_; /* private: every argv string, for sl_conffile_deinit() */
    int n_own_, cap_;
    size_t cap_settings_;
} sl_conffile;

/* Reads the settings of the file at path into c->settings. SL_ERR_IO
 * (cannot open) and SL_ERR_PARSE name the file (and the line); a file
 * naming "config" is SL_ERR_PARSE. c must be deinitialised with
 * sl_conffile_deinit() whatever the result. */
sl_status sl_conffile_read(sl_conffile *c, const char *path);

/* Looks for "--config FILE" / "--config=FILE" in argv (else the
 * environment variable env, when not NULL and set) and fills c with a new
 * argv without it: argv[0], the file's flags, then the rest of argv. Without
 * a config file c->argv is a copy of argv. SL_ERR_IO / SL_ERR_PARSE name the
 * file and line. c must be deinitialised with sl_conffile_deinit() whatever
 * the result. */
sl_status sl_conffile_load(sl_conffile *c, int argc, char **argv, const char *env);

/* Frees every string, setting and array of c; c is zeroed. */
void sl_conffile_deinit(sl_conffile *c);

/* Looks up "--name VALUE" / "--name=VALUE" at argv[*i]: returns the value
 * and advances *i past it, or NULL (and *i unchanged) when argv[*i] is not
 * that flag. *missing is set when the flag has no value. */
const char *sl_conffile_flag(int argc, char **argv, int *i, const char *name, int *missing);

#endif
