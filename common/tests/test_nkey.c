/* NATS user nkeys: generated seeds round-trip to their public keys, bad
 * seeds and public keys are refused, seed files are private. (A real
 * nats-server accepting them is integration_nats_auth.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "sluice/nkey.h"

static void generated_keys_round_trip(void **state)
{
    (void)state;
    char seed[SL_NKEY_SEED_LEN + 1], pub[SL_NKEY_PUBLIC_LEN + 1], again[SL_NKEY_PUBLIC_LEN + 1];
    char seed2[SL_NKEY_SEED_LEN + 1], pub2[SL_NKEY_PUBLIC_LEN + 1];
    assert_int_equal(sl_nkey_generate(seed, pub), SL_OK);
    assert_int_equal(strlen(seed), SL_NKEY_SEED_LEN);
    assert_int_equal(strlen(pub), SL_NKEY_PUBLIC_LEN);
    assert_memory_equal(seed, "SU", 2);
    assert_int_equal(pub[0], 'U');
    assert_true(sl_nkey_public_valid(pub));
    assert_int_equal(sl_nkey_public(again, seed), SL_OK);
    assert_string_equal(again, pub);
    assert_int_equal(sl_nkey_generate(seed2, pub2), SL_OK);
    assert_string_not_equal(seed, seed2);
    assert_string_not_equal(pub, pub2);
}

static void bad_seeds_refused_without_quoting(void **state)
{
    (void)state;
    char seed[SL_NKEY_SEED_LEN + 1], pub[SL_NKEY_PUBLIC_LEN + 1], out[SL_NKEY_PUBLIC_LEN + 1];
    assert_int_equal(sl_nkey_generate(seed, pub), SL_OK);
    char bad[SL_NKEY_SEED_LEN + 1];
    memcpy(bad, seed, sizeof bad);
    bad[30] = bad[30] == 'A' ? 'B' : 'A'; /* the checksum no longer holds */
    assert_int_equal(sl_nkey_public(out, bad), SL_ERR_INVALID);
    assert_null(strstr(sl_error_msg(), bad));
    assert_int_equal(sl_nkey_public(out, "SU"), SL_ERR_INVALID);
    assert_int_equal(sl_nkey_public(out, pub), SL_ERR_INVALID); /* a public key is no seed */
    memcpy(bad, seed, sizeof bad);
    bad[5] = '1'; /* outside base32 */
    assert_int_equal(sl_nkey_public(out, bad), SL_ERR_INVALID);
    char badpub[SL_NKEY_PUBLIC_LEN + 1];
    memcpy(badpub, pub, sizeof badpub);
    badpub[10] = badpub[10] == 'A' ? 'B' : 'A';
    assert_false(sl_nkey_public_valid(badpub));
    assert_false(sl_nkey_public_valid(seed));
}

static void seed_files_are_private(void **state)
{
    (void)state;
    char dir[] = "/tmp/sluice-nkey-XXXXXX", path[256], seed[SL_NKEY_SEED_LEN + 1], pub[SL_NKEY_PUBLIC_LEN + 1];
    char back[SL_NKEY_SEED_LEN + 1];
    struct stat sb;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/svc.nk", dir);
    assert_int_equal(sl_nkey_generate(seed, pub), SL_OK);
    assert_int_equal(sl_nkey_write_seed(path, seed), SL_OK);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(sl_nkey_read_seed(back, path), SL_OK);
    assert_string_equal(back, seed);
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(sl_nkey_read_seed(back, path), SL_ERR_INVALID);
    assert_non_null(strstr(sl_error_msg(), "readable by others"));
    /* a creds-like file with comments around the seed */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "# the translator's key\n\n   %s\n# end\n", seed);
    fclose(f);
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(sl_nkey_read_seed(back, path), SL_OK);
    assert_string_equal(back, seed);
    f = fopen(path, "w");
    fprintf(f, "SUNOTASEED\n");
    fclose(f);
    assert_int_equal(sl_nkey_read_seed(back, path), SL_ERR_INVALID);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(sl_nkey_read_seed(back, path), SL_ERR_IO);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(generated_keys_round_trip),
        cmocka_unit_test(bad_seeds_refused_without_quoting),
        cmocka_unit_test(seed_files_are_private),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
