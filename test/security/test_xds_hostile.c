/* Hostile xDS requests against the real sluice-xds (issue 12): a request
 * whose node.metadata nests google.protobuf.Value lists 10,000 deep (74 KB,
 * no credentials; it killed sluice-xds with SIGSEGV) and variants of it get
 * INVALID_ARGUMENT naming the problem, and the server keeps serving: a
 * well-formed request on a new stream is answered, and at the end the
 * server still exits 0 on SIGTERM. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "harness.h"
#include "sluice/kv.h"
#include "sluice/wire.h"
#include "xds_apply.h"
#include "xds_client.h"

#define ADS "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
#define DADS "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"
#define CDS_URL "type.googleapis.com/envoy.config.cluster.v3.Cluster"

static harness_nats *srv;
static sl_nats *nc;
static pid_t xds_pid;
static int xds_port;

static void start_xds(void)
{
    const char *const args[] = {"--default-proxy", "gateway-proxy", "--log-level", "warn", NULL};
    xds_pid = harness_start_xds(srv, args, &xds_port, NULL);
    assert_true(xds_pid > 0);
}

static int group_setup(void **state)
{
    char *specs[] = {"cluster:a", "endpoint:a:127.0.0.1:1001"};
    (void)state;
    grpc_init();
    if (harness_up(&srv, &nc) != 0 ||
        fx_apply_nats(nc, "gateway-proxy", 2, specs) != SL_OK)
        return -1;
    start_xds();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (xds_pid <= 0)
        return -1;
    int st = harness_stop(xds_pid, SIGTERM);
    harness_down(srv, nc);
    grpc_shutdown();
    /* survived everything and stopped cleanly */
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static void put_varint_before(uint8_t **p, uint64_t v)
{
    *p -= sl_wire_varint_len(v);
    sl_wire_varint_put(*p, v);
}

static void wrap(uint8_t **p, const uint8_t *end, unsigned f)
{
    put_varint_before(p, (uint64_t)(end - *p));
    put_varint_before(p, (uint64_t)f << 3 | 2);
}

/* A (Delta)DiscoveryRequest for CDS whose node.metadata holds a Value
 * nested `lists` list_values deep (in a struct_value every other level
 * when mixed). node is field 2 of DiscoveryRequest and 1 of
 * DeltaDiscoveryRequest. */
static uint8_t *nested_request(size_t lists, int delta, int mixed, size_t *len)
{
    size_t cap = 256 + lists * 24;
    uint8_t *buf = malloc(cap), *end = buf + cap, *p = end;
    assert_non_null(buf);
    *--p = 0;
    *--p = 1 << 3; /* Value.null_value: the innermost Value is p..end */
    for (size_t i = 0; i < lists; i++) {
        if (mixed && i % 2) {
            wrap(&p, end, 2); /* entry.value */
            *--p = 'k';
            *--p = 1;
            *--p = 1 << 3 | 2; /* entry.key = "k" */
            wrap(&p, end, 1);  /* Struct.fields */
            wrap(&p, end, 5);  /* Value.struct_value */
        } else {
            wrap(&p, end, 1); /* ListValue.values */
            wrap(&p, end, 6); /* Value.list_value */
        }
    }
    wrap(&p, end, 2); /* entry.value */
    *--p = 'm';
    *--p = 1;
    *--p = 1 << 3 | 2; /* entry.key = "m" */
    wrap(&p, end, 1);  /* Struct.fields */
    wrap(&p, end, 3);  /* Node.metadata */
    wrap(&p, end, delta ? 1 : 2); /* (Delta)DiscoveryRequest.node */
    /* type_url after the node field (appending would move the end) */
    size_t ul = strlen(CDS_URL), body = (size_t)(end - p);
    *len = body + 2 + ul;
    memmove(buf, p, body);
    buf[body] = (uint8_t)((delta ? 2 : 4) << 3 | 2);
    buf[body + 1] = (uint8_t)ul;
    memcpy(buf + body + 2, CDS_URL, ul);
    return buf;
}

/* A well-formed CDS request on a new stream is answered with cluster a. */
static void server_still_serves(void)
{
    size_t len;
    uint8_t *b = xc_ask(xds_port, ADS, CDS_URL, 5000, &len);
    assert_non_null(b);
    Envoy__Service__Discovery__V3__DiscoveryResponse *r =
        envoy__service__discovery__v3__discovery_response__unpack(NULL, len, b);
    assert_non_null(r);
    assert_int_equal(r->n_resources, 1);
    envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
    free(b);
}

static void refused(const char *method, const uint8_t *req, size_t len, const char *why)
{
    char msg[512] = "";
    xc *c = xc_open(xds_port, method);
    assert_non_null(c);
    assert_int_equal(xc_send(c, req, len), 0);
    assert_int_equal(xc_status(c, msg, sizeof msg, 10000), GRPC_STATUS_INVALID_ARGUMENT);
    if (!strstr(msg, why))
        fail_msg("status message '%s' does not say '%s'", msg, why);
    xc_close(c);
}

static void deep_nesting_refused_and_server_serves(void **state)
{
    size_t len;
    (void)state;
    uint8_t *b = nested_request(10000, 0, 0, &len);
    assert_true(len < 100 * 1024);
    refused(ADS, b, len, "nested deeper than 64 levels");
    free(b);
    server_still_serves();
    b = nested_request(10000, 1, 0, &len);
    refused(DADS, b, len, "nested deeper than 64 levels");
    free(b);
    b = nested_request(5000, 0, 1, &len); /* lists and structs alternating */
    refused(ADS, b, len, "nested deeper than 64 levels");
    free(b);
    server_still_serves();
}

/* Within the limit the same shape is an ordinary request. */
static void shallow_nesting_served(void **state)
{
    size_t len, rlen;
    int ended = 0;
    (void)state;
    uint8_t *b = nested_request(20, 0, 1, &len);
    xc *c = xc_open(xds_port, ADS);
    assert_int_equal(xc_send(c, b, len), 0);
    uint8_t *r = xc_recv(c, 5000, &rlen, &ended);
    assert_non_null(r);
    free(r);
    xc_close(c);
    free(b);
}

/* Truncations of the deep request: every one refused or answered, never a
 * crash (the group teardown checks the exit status). */
static void truncated_requests_survive(void **state)
{
    size_t len;
    (void)state;
    uint8_t *b = nested_request(200, 0, 1, &len);
    for (size_t cut = 1; cut < len; cut += 97) {
        char msg[256];
        xc *c = xc_open(xds_port, ADS);
        assert_int_equal(xc_send(c, b, cut), 0);
        grpc_status_code code = xc_status(c, msg, sizeof msg, 10000);
        assert_true(code == GRPC_STATUS_INVALID_ARGUMENT || code == GRPC_STATUS_OK);
        xc_close(c);
    }
    free(b);
    server_still_serves();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(deep_nesting_refused_and_server_serves),
        cmocka_unit_test(shallow_nesting_served),
        cmocka_unit_test(truncated_requests_survive),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
