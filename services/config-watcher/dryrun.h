/* dryrun.h - the apply API's dry-run translation (cw_dry_run_fn) backed by
 * the translator library (services/translator). */
#ifndef SLUICE_CW_DRYRUN_H
#define SLUICE_CW_DRYRUN_H

#include "watcher.h"

/* Translates the stored configuration (w's cache) with the proposed
 * resources of set in place of their stored versions, as a dry run (the
 * translator records nothing), and adds the translator's errors and warnings
 * about each proposed resource to its diag: a VirtualService whose domain
 * another one already holds, a bad regex, an unsupported field... Secrets
 * live in another bucket the config-watcher does not read, so problems that
 * name a missing Secret are warnings here (the translator reports them for
 * real). ud is unused. */
void cw_translator_dry_run(cw *w, sl_cfg_set *set, void *ud);

#endif
