/* ctl.h - shared pieces of the sluicectl commands. */
#ifndef SLUICE_CTL_H
#define SLUICE_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/nats.h"

#define CTL_VERSION "0.1.0"

typedef struct ctl {
    sl_nats_settings nats;
    int64_t timeout_ms; /* --request-timeout */
    const char *argv0;
} ctl;

/* Connects with c->nats, or prints an error and returns NULL. */
sl_nats *ctl_connect(ctl *c);
/* Closes what ctl_connect() opened, without a drain. NULL is fine. */
void ctl_close(sl_nats *nc);

/* "virtualservice.gateway.solo.io" for a kind. */
void ctl_kind_ref(char *buf, size_t n, const char *kind);

/* Prints "error: ..." and the command's usage hint; returns 1. */
int ctl_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Shared option scanning: matches "-x VALUE", "--long VALUE", "--long=VALUE". */
bool ctl_opt(int argc, char **argv, int *i, const char *shrt, const char *lng, const char **val);

int ctl_cmd_apply(ctl *c, int argc, char **argv);
int ctl_cmd_delete(ctl *c, int argc, char **argv);
int ctl_cmd_get(ctl *c, int argc, char **argv);
int ctl_cmd_status(ctl *c, int argc, char **argv);
int ctl_cmd_xds(ctl *c, int argc, char **argv);
int ctl_cmd_check(ctl *c, int argc, char **argv);
int ctl_cmd_run(ctl *c, int argc, char **argv);

#endif
