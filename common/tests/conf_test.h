/* conf_test.h - the --config file of the flag and conffile unit tests
 * (include after cmocka.h). */
#ifndef SLUICE_CONF_TEST_H
#define SLUICE_CONF_TEST_H

#include <stdio.h>
#include <unistd.h>

static char path[64]; /* this process's config file (a test may name it first) */

/* Writes text to path; arg (cap bytes), when not NULL, gets "--config=<path>". */
static void write_conf_arg(const char *text, char *arg, size_t cap)
{
    if (!path[0])
        snprintf(path, sizeof(path), "/tmp/sluice-conf-test-%d.conf", (int)getpid());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    if (arg)
        snprintf(arg, cap, "--config=%s", path);
}

static void write_conf(const char *text)
{
    write_conf_arg(text, NULL, 0);
}

#endif
