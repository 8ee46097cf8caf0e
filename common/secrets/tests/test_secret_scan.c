/* Unit tests of the directory scan and the PEM checks (certs made with the
 * openssl CLI at test time). */
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

#include "sluice/secrets.h"
#include "sluice/v1/secret.pb-c.h"

static char dir[256];

static void sh(const char *fmt, const char *arg)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, fmt, arg, arg, arg, arg);
    assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/sluice-secret-unit-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "cd %s && openssl req -x509 -newkey rsa:2048 -nodes -keyout a.key -out a.crt -days 2 -subj /CN=a "
             ">/dev/null 2>&1 && openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.crt "
             "-days 2 -subj /CN=o >/dev/null 2>&1",
             dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void scan_pairs_dirs_yaml(void **state)
{
    (void)state;
    /* k8s-style dir, a mismatched pair, a key without cert, YAML */
    sh("cd %s && mkdir -p k8s && cp a.crt k8s/tls.crt && cp a.key k8s/tls.key && cp a.crt k8s/ca.crt && "
       "cp a.crt bad.crt && cp other.key bad.key && cp other.key lone.key",
       dir);
    sh("cd %s && printf 'apiVersion: gloo.solo.io/v1\\nkind: Secret\\nmetadata:\\n  name: aws1\\n  namespace: ns1\\n"
       "spec:\\n  aws:\\n    accessKey: AK\\n    secretKey: SK\\n---\\napiVersion: gloo.solo.io/v1\\nkind: Secret\\n"
       "metadata:\\n  name: hdr\\nheader:\\n  headers:\\n    x-token: t\\n' > s.yaml",
       dir);
    sec_set s;
    sec_set_init(&s);
    assert_int_equal(sec_scan_dir(&s, dir, "gw"), SL_OK);
    sec_item *a = sec_set_find(&s, "Secret.gw.a");
    assert_non_null(a);
    assert_null(a->error);
    Sluice__V1__Secret *m = sluice__v1__secret__unpack(NULL, a->len, a->value);
    assert_non_null(m);
    assert_int_equal(m->spec->kind_case, SLUICE__V1__SECRET_SPEC__KIND_TLS);
    assert_non_null(strstr(m->spec->tls->cert_chain, "BEGIN CERTIFICATE"));
    assert_non_null(strstr(m->spec->tls->private_key, "PRIVATE KEY"));
    sluice__v1__secret__free_unpacked(m, NULL);
    sec_item *k = sec_set_find(&s, "Secret.gw.k8s");
    assert_non_null(k);
    assert_null(k->error);
    sec_item *b = sec_set_find(&s, "Secret.gw.bad");
    assert_non_null(b);
    assert_non_null(b->error);
    assert_non_null(strstr(b->error, "does not match"));
    assert_non_null(strstr(b->error, "bad.crt"));
    assert_null(strstr(b->error, "BEGIN"));
    sec_item *l = sec_set_find(&s, "Secret.gw.lone");
    assert_non_null(l);
    assert_non_null(strstr(l->error, "no matching certificate"));
    sec_item *aws = sec_set_find(&s, "Secret.ns1.aws1");
    assert_non_null(aws);
    assert_null(aws->error);
    sec_item *h = sec_set_find(&s, "Secret.gw.hdr");
    assert_non_null(h);
    assert_null(h->error);
    sec_set_deinit(&s);
}

static void check_tls_reasons(void **state)
{
    (void)state;
    char why[256];
    const char *junk = "-----BEGIN CERTIFICATE-----\nnot base64 !!\n-----END CERTIFICATE-----\n";
    assert_int_not_equal(sec_check_tls(junk, strlen(junk), "x", 1, NULL, 0, why, sizeof why), SL_OK);
    assert_non_null(strstr(why, "certificate"));
    assert_int_not_equal(sec_check_tls("hello", 5, "x", 1, NULL, 0, why, sizeof why), SL_OK);
    assert_non_null(strstr(why, "no PEM certificate"));
}

/* Found by fuzz_secrets: a quote left open in metadata.name swallows the
 * lines after it, secret material included, into the name; the error about
 * the invalid name quoted it. */
static void errors_never_quote_material(void **state)
{
    (void)state;
    char sub[300], path[400];
    snprintf(sub, sizeof sub, "%s/leak", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(path, sizeof path, "%s/s.yaml", sub);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("apiVersion: gloo.solo.io/v1\nkind: Secret\nmetadata:\n  name: 'tls\nspec:\n  aws:\n"
          "    accessKey: AK\n    secretKey: c2VjcmV0a2V5bWF0ZXJpYWw'\n",
          f);
    fclose(f);
    sec_set s;
    sec_set_init(&s);
    assert_int_equal(sec_scan_dir(&s, sub, "gw"), SL_OK);
    assert_int_equal(s.n, 1);
    assert_non_null(s.items[0].error);
    assert_non_null(strstr(s.items[0].error, "s.yaml:1: invalid name"));
    assert_null(strstr(s.items[0].error, "c2VjcmV0a2V5bWF0ZXJpYWw"));
    sec_set_deinit(&s);
    unlink(path);
    rmdir(sub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scan_pairs_dirs_yaml),
        cmocka_unit_test(check_tls_reasons),
        cmocka_unit_test(errors_never_quote_material),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
