/* translate_test.h - helpers the translator's unit tests share (include after cmocka.h). */
#ifndef SLUICE_TRANSLATE_TEST_H
#define SLUICE_TRANSLATE_TEST_H

#include <stdio.h>
#include <string.h>

#include "sluice/translate.h"

/* Loads the YAML documents into st; fails the test, printing the
 * diagnostics, when they do not decode. */
static inline void tr_test_load(sl_tr_store *st, const char *yaml)
{
    sl_diag d;
    sl_diag_init(&d);
    if (sl_tr_store_load_yaml(st, yaml, strlen(yaml), "<test>", &d) != SL_OK) {
        sl_diag_print(&d, stderr);
        fail_msg("does not decode");
    }
    sl_diag_deinit(&d);
}

#endif
