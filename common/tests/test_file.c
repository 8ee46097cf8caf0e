/* sl_file_read: whole files, NUL-terminated, errors naming the path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "sluice/file.h"

static void reads_whole_files(void **state)
{
    char path[64], *text = NULL;
    size_t len = 0;
    snprintf(path, sizeof(path), "/tmp/sluice-file-%d", (int)getpid());
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    /* Larger than one read chunk, with a NUL byte inside. */
    for (int i = 0; i < 100000; i++)
        fputc(i == 5 ? '\0' : 'a' + i % 26, f);
    fclose(f);
    assert_int_equal(sl_file_read(&text, &len, path), SL_OK);
    assert_int_equal(len, 100000);
    assert_int_equal(text[5], '\0');
    assert_int_equal(text[99999], 'a' + 99999 % 26);
    assert_int_equal(text[100000], '\0');
    free(text);

    f = fopen(path, "wb");
    fclose(f);
    assert_int_equal(sl_file_read(&text, NULL, path), SL_OK);
    assert_string_equal(text, "");
    free(text);
    unlink(path);
}

static void errors_name_the_path(void **state)
{
    char *text = (char *)"unchanged?";
    assert_int_equal(sl_file_read(&text, NULL, "/nonexistent/sluice.yaml"), SL_ERR_IO);
    assert_null(text);
    assert_string_equal(sl_error_msg(), "/nonexistent/sluice.yaml: No such file or directory");
    assert_int_equal(sl_file_read(&text, NULL, "/"), SL_ERR_IO);
    assert_null(text);
    assert_non_null(strstr(sl_error_msg(), "/: "));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_whole_files),
        cmocka_unit_test(errors_name_the_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
