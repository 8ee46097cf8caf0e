/* Unit tests of sluice_openapi: Petstore (Swagger 2.0, JSON and YAML), OpenAPI 3.1, hostile documents. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sluice/file.h"
#include "sluice/openapi.h"

static sl_status parse_file(sl_openapi_doc *d, const char *path)
{
    char *text;
    size_t len;
    assert_int_equal(sl_file_read(&text, &len, path), SL_OK);
    sl_status rc = sl_openapi_parse(d, text, len, NULL);
    free(text);
    if (rc != SL_OK)
        print_message("%s: %s\n", path, sl_error_msg());
    return rc;
}

static const sl_openapi_function *fn(const sl_openapi_doc *d, const char *name)
{
    for (size_t i = 0; i < d->n_functions; i++)
        if (!strcmp(d->functions[i].name, name))
            return &d->functions[i];
    return NULL;
}

static const sl_openapi_param *param(const sl_openapi_function *f, const char *name, sl_openapi_in in)
{
    for (size_t i = 0; i < f->n_params; i++)
        if (f->params[i].in == in && !strcmp(f->params[i].name, name))
            return &f->params[i];
    return NULL;
}

static bool has_warning(const sl_openapi_doc *d, const char *needle)
{
    for (size_t i = 0; i < d->n_warnings; i++)
        if (strstr(d->warnings[i], needle))
            return true;
    return false;
}

static void check_petstore(const sl_openapi_doc *d)
{
    assert_int_equal(d->major, 2);
    assert_string_equal(d->title, "Swagger Petstore");
    assert_int_equal(d->n_functions, 20);
    const sl_openapi_function *f = fn(d, "getPetById");
    assert_non_null(f);
    assert_string_equal(f->method, "GET");
    assert_string_equal(f->path, "/v2/pet/{petId}");
    assert_string_equal(f->pointer, "/paths/~1pet~1{petId}/get");
    assert_non_null(param(f, "petId", SL_OPENAPI_IN_PATH));
    char *t = sl_openapi_path_template(f);
    assert_string_equal(t, "/v2/pet/{{ default(petId, \"\") }}");
    free(t);
    assert_null(sl_openapi_body_template(f));

    f = fn(d, "addPet");
    assert_non_null(f);
    assert_true(f->has_body && f->body_object);
    assert_true(param(f, "name", SL_OPENAPI_IN_BODY)->required);
    assert_string_equal(param(f, "category", SL_OPENAPI_IN_BODY)->type, "object");
    t = sl_openapi_body_template(f);
    assert_non_null(strstr(t, "\"name\": \"{{ default(name, \"\") }}\""));
    assert_non_null(strstr(t, "\"id\": {{ default(id, \"\") }}"));
    free(t);

    f = fn(d, "loginUser");
    t = sl_openapi_path_template(f);
    assert_string_equal(t, "/v2/user/login?username={{ default(username, \"\") }}&password={{ default(password, \"\") }}");
    free(t);
    assert_non_null(param(fn(d, "deletePet"), "api_key", SL_OPENAPI_IN_HEADER));
    /* an array body: a body, no properties */
    f = fn(d, "createUsersWithListInput");
    assert_true(f->has_body && !f->body_object);

    /* formData cannot be mapped: warnings naming the parameter's pointer */
    assert_true(has_warning(d, "/paths/~1pet~1{petId}/post/parameters/1: formData parameter \"name\""));
    assert_true(has_warning(d, "/paths/~1pet~1{petId}~1uploadImage/post/parameters/2: formData parameter \"file\""));
    /* the functions are sorted by name */
    for (size_t i = 1; i < d->n_functions; i++)
        assert_true(strcmp(d->functions[i - 1].name, d->functions[i].name) < 0);
}

static void test_petstore_json_and_yaml(void **state)
{
    (void)state;
    sl_openapi_doc j, y;
    char dj[17], dy[17];
    assert_int_equal(parse_file(&j, "test/data/openapi/petstore-swagger2.json"), SL_OK);
    assert_int_equal(parse_file(&y, "test/data/openapi/petstore-swagger2.yaml"), SL_OK);
    check_petstore(&j);
    check_petstore(&y);
    sl_openapi_digest(dj, &j);
    sl_openapi_digest(dy, &y);
    assert_string_equal(dj, dy);
    sl_openapi_doc_deinit(&j);
    sl_openapi_doc_deinit(&y);
}

static void test_openapi31(void **state)
{
    (void)state;
    sl_openapi_doc d;
    assert_int_equal(parse_file(&d, "test/data/openapi/bookstore-openapi31.yaml"), SL_OK);
    assert_int_equal(d.major, 3);
    assert_string_equal(d.version, "3.1.0");
    assert_int_equal(d.n_functions, 5);
    const sl_openapi_function *f = fn(&d, "listShelves");
    assert_string_equal(f->path, "/api/shelves");
    assert_string_equal(param(f, "limit", SL_OPENAPI_IN_QUERY)->type, "integer");
    assert_non_null(param(f, "x-request-id", SL_OPENAPI_IN_HEADER));
    f = fn(&d, "createShelf");
    assert_true(f->has_body && f->body_object);
    assert_non_null(param(f, "name", SL_OPENAPI_IN_BODY)); /* from allOf's $ref */
    assert_true(param(f, "theme", SL_OPENAPI_IN_BODY)->required);
    /* path-level parameters; Gloo's name without an operationId */
    f = fn(&d, "delete.shelves.{shelf}");
    assert_non_null(f);
    assert_string_equal(f->method, "DELETE");
    assert_non_null(param(f, "shelf", SL_OPENAPI_IN_PATH));
    assert_true(has_warning(&d, "/paths/~1shelves~1{shelf}/get/parameters/0: cookie parameter \"session\""));
    assert_true(has_warning(&d, "/paths/~1shelves~1{shelf}~1cover/put/requestBody/content: no JSON media type"));
    f = fn(&d, "uploadCover");
    assert_false(f->has_body);
    sl_openapi_doc_deinit(&d);
}

static void expect_error(const char *text, sl_status want, const char *msg)
{
    sl_openapi_doc d;
    sl_status rc = sl_openapi_parse(&d, text, strlen(text), NULL);
    if (rc != want || !strstr(sl_error_msg(), msg))
        fail_msg("%s: got %d (%s), want %d with \"%s\"", text, rc, sl_error_msg(), want, msg);
    assert_int_equal(d.n_functions, 0);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("{", SL_ERR_PARSE, "JSON:");
    expect_error("a: [", SL_ERR_PARSE, "YAML:");
    expect_error("[1, 2]", SL_ERR_INVALID, "not an object");
    expect_error("{\"info\": {}}", SL_ERR_INVALID, "not an OpenAPI or Swagger document");
    expect_error("{\"swagger\": \"1.2\", \"paths\": {}}", SL_ERR_UNSUPPORTED, "1.2");
    expect_error("{\"openapi\": \"4.0.0\"}", SL_ERR_UNSUPPORTED, "4.0.0");
    expect_error("{\"openapi\": 3}", SL_ERR_INVALID, "not a string");
    expect_error("{\"swagger\": \"2.0\", \"paths\": []}", SL_ERR_INVALID, "/paths: not an object");
    expect_error("{\"swagger\": \"2.0\"}", SL_ERR_INVALID, "/paths: missing");
    expect_error("a: &x [1]\nb: *x\n", SL_ERR_PARSE, "aliases");
    expect_error("   ", SL_ERR_PARSE, "empty");
}

/* Wrong types inside: warnings with pointers, the rest still mapped. */
static void test_wrong_types(void **state)
{
    (void)state;
    const char *text = "{\"swagger\": \"2.0\", \"basePath\": 5, \"paths\": {"
                       "\"/a\": 7, \"b\": {}, \"/c\": {\"get\": \"x\", \"post\": {\"parameters\": {}}},"
                       "\"/d\": {\"get\": {\"operationId\": \"d\", \"parameters\": [3, {\"name\": 1},"
                       " {\"$ref\": \"other.json#/p\"}, {\"$ref\": \"#/nowhere\"}]}},"
                       "\"/e\": {\"get\": {\"operationId\": \"d\"}}}}";
    sl_openapi_doc d;
    assert_int_equal(sl_openapi_parse(&d, text, strlen(text), NULL), SL_OK);
    assert_int_equal(d.n_functions, 2); /* post.c, d */
    assert_true(has_warning(&d, "/basePath: basePath is not a string"));
    assert_true(has_warning(&d, "/paths/~1a: path item is not an object"));
    assert_true(has_warning(&d, "/paths/b: path \"b\" does not start"));
    assert_true(has_warning(&d, "/paths/~1c/get: operation is not an object"));
    assert_true(has_warning(&d, "/paths/~1c/post/parameters: parameters is not an array"));
    assert_true(has_warning(&d, "/paths/~1d/get/parameters/0: parameter is not an object"));
    assert_true(has_warning(&d, "/paths/~1d/get/parameters/1: parameter without"));
    assert_true(has_warning(&d, "/paths/~1d/get/parameters/2: $ref \"other.json#/p\" names another document"));
    assert_true(has_warning(&d, "/paths/~1d/get/parameters/3: $ref \"#/nowhere\" points at nothing"));
    assert_true(has_warning(&d, "/paths/~1e/get: function name \"d\" is already used by /paths/~1d/get"));
    assert_non_null(fn(&d, "post.c"));
    sl_openapi_doc_deinit(&d);
}

static void test_ref_cycles(void **state)
{
    (void)state;
    const char *text = "{\"openapi\": \"3.0.3\", \"paths\": {\"/a\": {\"$ref\": \"#/x-items/a\"},"
                       "\"/b\": {\"post\": {\"operationId\": \"b\", \"parameters\": [{\"$ref\": \"#/components/parameters/p\"}],"
                       " \"requestBody\": {\"content\": {\"application/json\": {\"schema\": {\"$ref\": \"#/components/schemas/Node\"}}}}}}},"
                       "\"x-items\": {\"a\": {\"$ref\": \"#/x-items/b\"}, \"b\": {\"$ref\": \"#/x-items/a\"}},"
                       "\"components\": {\"parameters\": {\"p\": {\"$ref\": \"#/components/parameters/p\"}},"
                       "\"schemas\": {\"Node\": {\"type\": \"object\", \"allOf\": [{\"$ref\": \"#/components/schemas/Node\"}],"
                       " \"properties\": {\"next\": {\"$ref\": \"#/components/schemas/Node\"}}}}}}";
    sl_openapi_doc d;
    assert_int_equal(sl_openapi_parse(&d, text, strlen(text), NULL), SL_OK);
    assert_int_equal(d.n_functions, 1);
    assert_true(has_warning(&d, "/paths/~1a: $ref \"#/x-items/"));
    assert_true(has_warning(&d, "reference cycle"));
    assert_true(has_warning(&d, "allOf nested deeper than 8 levels"));
    /* a recursive schema is fine: its property is typed, not expanded */
    assert_string_equal(param(fn(&d, "b"), "next", SL_OPENAPI_IN_BODY)->type, "object");
    sl_openapi_doc_deinit(&d);
}

static char *repeat(const char *head, const char *unit, size_t n, const char *tail)
{
    size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
    char *s = malloc(hl + ul * n + tl + 1);
    memcpy(s, head, hl);
    for (size_t i = 0; i < n; i++)
        memcpy(s + hl + i * ul, unit, ul);
    memcpy(s + hl + n * ul, tail, tl + 1);
    return s;
}

static void test_hostile(void **state)
{
    (void)state;
    sl_openapi_doc d;
    /* deeply nested, JSON and YAML */
    char *deep = repeat("{\"swagger\": \"2.0\", \"paths\": {}, \"x\": ", "[", 100000, "");
    assert_int_equal(sl_openapi_parse(&d, deep, strlen(deep), NULL), SL_ERR_PARSE);
    free(deep);
    deep = repeat("swagger: '2.0'\nx: ", "[", 100000, "");
    assert_int_equal(sl_openapi_parse(&d, deep, strlen(deep), NULL), SL_ERR_PARSE);
    assert_non_null(strstr(sl_error_msg(), "nested deeper"));
    free(deep);
    /* huge */
    sl_openapi_limits lim = {.max_bytes = 1000};
    char *big = repeat("{\"swagger\": \"2.0\", \"paths\": {}, \"x\": \"", "a", 2000, "\"}");
    assert_int_equal(sl_openapi_parse(&d, big, strlen(big), &lim), SL_ERR_INVALID);
    assert_non_null(strstr(sl_error_msg(), "over the limit"));
    assert_int_equal(sl_openapi_parse(&d, big, strlen(big), NULL), SL_OK);
    sl_openapi_doc_deinit(&d);
    free(big);
    /* too many operations */
    char *many = repeat("{\"swagger\": \"2.0\", \"paths\": {\"/a\": {\"get\": {}, \"put\": {}, \"post\": {}}", "", 0, "}}");
    lim = (sl_openapi_limits){.max_functions = 2};
    assert_int_equal(sl_openapi_parse(&d, many, strlen(many), &lim), SL_ERR_INVALID);
    assert_non_null(strstr(sl_error_msg(), "more than 2 operations"));
    free(many);
    /* many warnings are capped */
    char *warns = repeat("{\"swagger\": \"2.0\", \"paths\": {\"/a\": {\"get\": {\"parameters\": [", "7,", 500, "7]}}}}");
    assert_int_equal(sl_openapi_parse(&d, warns, strlen(warns), NULL), SL_OK);
    assert_int_equal(d.n_warnings, 101);
    assert_non_null(strstr(d.warnings[100], "401 more warnings left out"));
    sl_openapi_doc_deinit(&d);
    free(warns);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_petstore_json_and_yaml),
        cmocka_unit_test(test_openapi31),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_ref_cycles),
        cmocka_unit_test(test_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
