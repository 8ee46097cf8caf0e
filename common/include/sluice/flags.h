/* sluice/flags.h - one flag table and one parser for every Sluice program.
 *
 * A program describes its flags in a table of sl_flag (name, environment
 * variable, kind, where the value goes, default, help) and hands it to
 * sl_flags_parse(), which reads the command line, the environment and the
 * config file, and prints --help from the same table:
 *
 *   static int64_t debounce_ms;
 *   static const char *bucket;
 *   static const sl_flag own[] = {
 *       {.name = "debounce", .kind = SL_FLAG_DURATION, .target = &debounce_ms,
 *        .def = "10ms", .help = "quiet time after a change"},
 *       {.name = "bucket", .kind = SL_FLAG_STRING, .target = &bucket,
 *        .def = "sluice_xds", .env = "SLUICE_XDS_BUCKET", .help = "KV bucket to write"},
 *   };
 *
 * Services do not call the parser themselves: sl_service_args_parse()
 * (sluice/service.h) adds the common flags and --config and calls it.
 *
 * Where a flag's value comes from, first match wins:
 *   1. the command line: `--name value` or `--name=value` (a boolean:
 *      `--name`, `--name=true`, `--name=false`);
 *   2. the flag's environment variable (an empty one counts as unset,
 *      unless the flag has SL_FLAG_EMPTY_OK);
 *   3. the config file: the SL_FLAG_CONFIG flag's value (command line, then
 *      its variable), in the format of sluice/conffile.h;
 *   4. the table's default (def), parsed like any value.
 * A repeatable flag (SL_FLAG_LIST) takes all the values of the first source
 * that has any: several `--dir` on the command line replace the config
 * file's; its variable holds a ':'-separated list. Values of lower sources
 * that are overridden are not looked at, so a bad one there is no error.
 *
 * Errors (SL_ERR_INVALID, context in sl_error_msg()) name the flag as the
 * user wrote it and the problem: "unknown flag --resinc (did you mean
 * --resync?)", "--debounce: missing value", "--debounce: bad duration
 * 'soon' (...)", "SLUICE_KV_REPLICAS: bad value '7' (...)", "FILE:3:
 * unknown flag 'resinc'".
 */
#ifndef SLUICE_FLAGS_H
#define SLUICE_FLAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sluice/status.h"

/* What a flag holds, and the type its target points to. */
typedef enum sl_flag_kind {
    SL_FLAG_STRING,   /* const char **: a string owned by the sl_flags */
    SL_FLAG_LIST,     /* sl_flag_list *: repeatable; strings owned by the sl_flags */
    SL_FLAG_INT,      /* int *: decimal, within min..max when min < max */
    SL_FLAG_DURATION, /* int64_t *: milliseconds, "500ms", "10s", "2m", "1h" or "0";
                         within min..max when min < max */
    SL_FLAG_BOOL,     /* bool *: true, false (also 1/0, yes/no, on/off) */
    SL_FLAG_CHOICE,   /* const char **: one of the words of choices ("auto|on|off") */
} sl_flag_kind;

/* sl_flag.opts */
enum {
    SL_FLAG_EMPTY_OK = 1 << 0, /* "" is a value: `--name ""`, and an empty variable is set */
    SL_FLAG_CONFIG = 1 << 1,   /* SL_FLAG_STRING naming the config file to read */
    SL_FLAG_EXIT = 1 << 2,     /* SL_FLAG_BOOL such as --help, --version: given on the command
                                  line, it is the only flag applied and nothing is an error */
};

/* The values of a SL_FLAG_LIST, in order. */
typedef struct sl_flag_list {
    const char **v;
    size_t n;
} sl_flag_list;

/* One flag. Tables are usually static const; the targets are the
 * program's variables. */
typedef struct sl_flag {
    const char *name;    /* without the leading "--": "drain-timeout" */
    char shorthand;      /* 'h' for -h, or 0 */
    sl_flag_kind kind;
    void *target;        /* see sl_flag_kind */
    const char *def;     /* default, as it would be written on the command line, shown by
                            --help; NULL: the target keeps what it holds */
    const char *env;     /* environment variable, or NULL */
    const char *help;    /* one line, or lines separated by '\n' */
    const char *arg;     /* placeholder in --help ("DIR"); NULL: from the kind */
    const char *choices; /* SL_FLAG_CHOICE: the words, '|'-separated */
    int64_t min, max;    /* SL_FLAG_INT, SL_FLAG_DURATION: bounds, when min < max */
    unsigned opts;       /* SL_FLAG_EMPTY_OK, SL_FLAG_CONFIG, SL_FLAG_EXIT */
} sl_flag;

#define SL_FLAGS_MAX_GROUPS 4

/* sl_flags_parse() mode */
enum {
    /* Arguments that are not flags of the tables (unknown flags, other
     * words) stay in argv for the caller, in order, instead of being
     * errors (sluicectl: global flags anywhere, the rest for the command). */
    SL_FLAGS_KEEP_UNKNOWN = 1 << 0,
};

/* A parser: groups of flags (each table with a --help heading), and every
 * string value it produced. Caller storage: sl_flags_init(), then
 * sl_flags_deinit(), after which no string it set in a target is valid. */
typedef struct sl_flags {
    struct {
        const char *title;
        const sl_flag *v;
        size_t n;
    } groups_[SL_FLAGS_MAX_GROUPS]; /* private */
    size_t n_groups_;
    void **own_; /* private: every string value and list array */
    size_t n_own_, cap_own_;
} sl_flags;

void sl_flags_init(sl_flags *fs);

/* Frees every string value; the targets' strings and lists become
 * invalid. The tables are not the parser's. */
void sl_flags_deinit(sl_flags *fs);

/* Adds a table of n flags under the --help heading title (e.g. "Common
 * flags"). The table must outlive fs. SL_ERR_INVALID after
 * SL_FLAGS_MAX_GROUPS tables. */
sl_status sl_flags_add(sl_flags *fs, const char *title, const sl_flag *table, size_t n);

/* Sets every flag's target from its sources (see the top of this file).
 * argv[0] is the program. Without SL_FLAGS_KEEP_UNKNOWN every argument
 * must be a flag of the tables (no positional arguments; a "--" may end
 * the line) and argv is left as it is; with it, what is not a flag of the
 * tables stays in argv (argv[0] first, *argc updated, argv[*argc] = NULL)
 * and "--" ends the flags (it and what follows stay). SL_OK,
 * SL_ERR_INVALID (a usage error: the context names the flag and the
 * problem), SL_ERR_IO / SL_ERR_PARSE for the config file (naming it and the
 * line), SL_ERR_NOMEM. On error, targets may be partly set. */
sl_status sl_flags_parse(sl_flags *fs, int *argc, char **argv, unsigned mode);

/* Prints every group of flags: a heading, then one entry per flag with its
 * help, variable and default. */
void sl_flags_print_help(const sl_flags *fs, FILE *f);

/* Whether list, a comma separated value ("a,b,c") such as a list flag's,
 * names name exactly. NULL list: false. */
bool sl_list_has(const char *list, const char *name);

#endif
