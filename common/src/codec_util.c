/* The codec's small pieces: string builder, numbers, base64, Duration and
 * Timestamp text, names, and descriptor questions. */
#include "codec_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/vec.h"

/* --- Allocation ------------------------------------------------------------ */

void *codec_alloc(ProtobufCAllocator *a, size_t n)
{
    if (n == 0)
        n = 1;
    return a ? a->alloc(a->allocator_data, n) : malloc(n);
}

void codec_free(ProtobufCAllocator *a, void *p)
{
    if (!p)
        return;
    if (a)
        a->free(a->allocator_data, p);
    else
        free(p);
}

/* --- String builder -------------------------------------------------------- */

void codec_sb_init(codec_sb *sb)
{
    memset(sb, 0, sizeof(*sb));
}

void codec_sb_deinit(codec_sb *sb)
{
    free(sb->buf);
    codec_sb_init(sb);
}

static bool sb_reserve(codec_sb *sb, size_t extra)
{
    size_t need;

    if (sb->oom)
        return false;
    if (extra > SIZE_MAX / 2 - sb->len)
        goto oom;
    need = sb->len + extra + 1;
    /* 64 bytes at least: most strings are short, one allocation holds them */
    if (SL_VEC_RESERVE(sb->buf, sb->cap, need < 64 ? 64 : need) != SL_OK)
        goto oom;
    return true;
oom:
    sb->oom = true;
    return false;
}

void codec_sb_putn(codec_sb *sb, const char *s, size_t n)
{
    if (!sb_reserve(sb, n))
        return;
    memcpy(sb->buf + sb->len, s, n);
    sb->len += n;
    sb->buf[sb->len] = '\0';
}

void codec_sb_puts(codec_sb *sb, const char *s)
{
    codec_sb_putn(sb, s, strlen(s));
}

void codec_sb_putc(codec_sb *sb, char c)
{
    codec_sb_putn(sb, &c, 1);
}

void codec_sb_printf(codec_sb *sb, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !sb_reserve(sb, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

void codec_sb_truncate(codec_sb *sb, size_t len)
{
    if (len < sb->len) {
        sb->len = len;
        sb->buf[len] = '\0';
    }
}

const char *codec_sb_str(const codec_sb *sb)
{
    return sb->buf ? sb->buf : "";
}

char *codec_sb_steal(codec_sb *sb, size_t *len)
{
    char *s;

    if (!sb->buf && !sb->oom)
        sb_reserve(sb, 0);
    if (sb->oom) {
        codec_sb_deinit(sb);
        return NULL;
    }
    s = sb->buf;
    if (len)
        *len = sb->len;
    codec_sb_init(sb);
    return s;
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

void codec_sb_path_key(codec_sb *sb, const char *key)
{
    bool ident = is_alpha(key[0]) || key[0] == '_';

    for (const char *p = key; ident && *p; p++)
        ident = is_alpha(*p) || is_digit(*p) || *p == '_' || *p == '-';
    if (ident) {
        codec_sb_putc(sb, '.');
        codec_sb_puts(sb, key);
        return;
    }
    codec_sb_puts(sb, "[\"");
    for (const char *p = key; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\')
            codec_sb_printf(sb, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            codec_sb_printf(sb, "\\x%02x", c);
        else
            codec_sb_putc(sb, (char)c);
    }
    codec_sb_puts(sb, "\"]");
}

/* --- Numbers --------------------------------------------------------------- */

/* Digits of an unsigned decimal; RANGE past UINT64_MAX. */
static codec_num parse_digits(const char *p, uint64_t *out)
{
    uint64_t v = 0;
    bool over = false;

    if (!is_digit(*p))
        return CODEC_NUM_SYNTAX;
    for (; is_digit(*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            over = true;
        else
            v = v * 10 + d;
    }
    if (*p)
        return CODEC_NUM_SYNTAX;
    *out = v;
    return over ? CODEC_NUM_RANGE : CODEC_NUM_OK;
}

/* An integral number written as a float ("1e3", "5.0"), exact below 2^53. */
static codec_num parse_integral_float(const char *s, double *out)
{
    bool special;
    codec_num r = codec_parse_double(s, out, &special);

    if (r != CODEC_NUM_OK || special)
        return r == CODEC_NUM_RANGE ? CODEC_NUM_RANGE : CODEC_NUM_SYNTAX;
    if (*out != floor(*out))
        return CODEC_NUM_SYNTAX;
    if (fabs(*out) > 9007199254740992.0)
        return CODEC_NUM_RANGE;
    return CODEC_NUM_OK;
}

/* An integer: a sign and digits, or an integral float ("1e3", "-5.0"), as
 * its sign and magnitude; RANGE past neg_max below zero or pos_max above. */
static codec_num parse_integer(const char *s, uint64_t neg_max, uint64_t pos_max, bool *neg,
                               uint64_t *mag)
{
    const char *p = s;
    double d;
    codec_num r;

    *neg = false;
    if (*p == '-' || *p == '+')
        *neg = *p++ == '-';
    r = parse_digits(p, mag);
    if (r == CODEC_NUM_SYNTAX) {
        r = parse_integral_float(s, &d);
        if (r == CODEC_NUM_OK) {
            *neg = d < 0;
            *mag = (uint64_t)fabs(d);
        }
    }
    if (r != CODEC_NUM_OK)
        return r;
    return *mag > (*neg ? neg_max : pos_max) ? CODEC_NUM_RANGE : CODEC_NUM_OK;
}

codec_num codec_parse_int64(const char *s, int64_t *out)
{
    bool neg;
    uint64_t v;
    codec_num r = parse_integer(s, (uint64_t)INT64_MAX + 1, (uint64_t)INT64_MAX, &neg, &v);

    if (r == CODEC_NUM_OK)
        *out = !neg ? (int64_t)v : v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    return r;
}

codec_num codec_parse_uint64(const char *s, uint64_t *out)
{
    bool neg;
    uint64_t v;
    codec_num r = parse_integer(s, 0, UINT64_MAX, &neg, &v);

    if (r == CODEC_NUM_OK)
        *out = v;
    return r;
}

static bool one_of(const char *s, const char *const *words)
{
    for (; *words; words++)
        if (strcmp(s, *words) == 0)
            return true;
    return false;
}

codec_num codec_parse_double(const char *s, double *out, bool *special)
{
    static const char *const nans[] = {"NaN", ".nan", ".NaN", ".NAN", NULL};
    static const char *const infs[] = {"Infinity", ".inf", ".Inf", ".INF", NULL};
    const char *p = s;
    bool digits = false;
    char *end;

    *special = true;
    if (one_of(s, nans)) {
        *out = NAN;
        return CODEC_NUM_OK;
    }
    if (*p == '-' || *p == '+')
        p++;
    if (one_of(p, infs)) {
        *out = *s == '-' ? -INFINITY : INFINITY;
        return CODEC_NUM_OK;
    }
    *special = false;
    /* The grammar first, so that strtod's extras (hex, "inf", spaces) are
     * not accepted. */
    while (is_digit(*p)) {
        p++;
        digits = true;
    }
    if (*p == '.') {
        p++;
        while (is_digit(*p)) {
            p++;
            digits = true;
        }
    }
    if (!digits)
        return CODEC_NUM_SYNTAX;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '-' || *p == '+')
            p++;
        if (!is_digit(*p))
            return CODEC_NUM_SYNTAX;
        while (is_digit(*p))
            p++;
    }
    if (*p)
        return CODEC_NUM_SYNTAX;
    errno = 0;
    *out = strtod(s, &end);
    if (*end)
        return CODEC_NUM_SYNTAX;
    if (isinf(*out))
        return CODEC_NUM_RANGE;
    return CODEC_NUM_OK;
}

bool codec_parse_bool(const char *s, bool *out)
{
    static const char *const t[] = {"true", "True", "TRUE"};
    static const char *const f[] = {"false", "False", "FALSE"};

    for (size_t i = 0; i < 3; i++) {
        if (strcmp(s, t[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcmp(s, f[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

void codec_format_double(char *buf, size_t size, double v)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
}

void codec_format_float(char *buf, size_t size, float v)
{
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, size, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v)
            break;
    }
}

/* --- Base64 ---------------------------------------------------------------- */

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

bool codec_base64_decode(const char *s, size_t len, ProtobufCAllocator *alloc, uint8_t **out,
                         size_t *out_len, bool *nomem)
{
    uint8_t *buf = NULL;
    size_t n = 0, pad = 0;
    uint32_t acc = 0;
    int bits = 0;

    *out = NULL;
    *out_len = 0;
    *nomem = false;
    while (len > 0 && s[len - 1] == '=' && pad < 2) {
        len--;
        pad++;
    }
    if (len % 4 == 1 || (pad && (len + pad) % 4 != 0))
        return false;
    for (size_t i = 0; i < len; i++)
        if (b64_value((unsigned char)s[i]) < 0)
            return false;
    if (len == 0)
        return true;
    buf = codec_alloc(alloc, len * 3 / 4 + 1);
    if (!buf) {
        *nomem = true;
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        acc = (acc << 6) | (uint32_t)b64_value((unsigned char)s[i]);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[n++] = (uint8_t)(acc >> bits);
        }
    }
    *out = buf;
    *out_len = n;
    return true;
}

void codec_base64_encode(codec_sb *sb, const uint8_t *data, size_t len)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16;
        char out[4];
        if (i + 1 < len)
            v |= (uint32_t)data[i + 1] << 8;
        if (i + 2 < len)
            v |= data[i + 2];
        out[0] = abc[(v >> 18) & 63];
        out[1] = abc[(v >> 12) & 63];
        out[2] = i + 1 < len ? abc[(v >> 6) & 63] : '=';
        out[3] = i + 2 < len ? abc[v & 63] : '=';
        codec_sb_putn(sb, out, 4);
    }
}

/* --- Duration and Timestamp -------------------------------------------- */

/* Up to nine fraction digits after the '.', as nanoseconds. */
static const char *parse_fraction(const char *p, int32_t *nanos)
{
    int32_t v = 0;
    int n = 0;

    while (is_digit(*p) && n < 9) {
        v = v * 10 + (*p++ - '0');
        n++;
    }
    if (n == 0 || is_digit(*p))
        return NULL;
    for (; n < 9; n++)
        v *= 10;
    *nanos = v;
    return p;
}

codec_num codec_parse_duration(const char *s, int64_t *seconds, int32_t *nanos)
{
    const char *p = s;
    bool neg = false, big = false;
    int64_t sec = 0;
    int32_t ns = 0;

    if (*p == '-' || *p == '+')
        neg = *p++ == '-';
    if (!is_digit(*p))
        return CODEC_NUM_SYNTAX;
    while (is_digit(*p)) {
        if (sec > CODEC_DURATION_MAX_SECONDS)
            big = true;
        else
            sec = sec * 10 + (*p - '0');
        p++;
    }
    if (*p == '.') {
        p = parse_fraction(p + 1, &ns);
        if (!p)
            return CODEC_NUM_SYNTAX;
    }
    if (p[0] != 's' || p[1] != '\0')
        return CODEC_NUM_SYNTAX;
    if (big || sec > CODEC_DURATION_MAX_SECONDS)
        return CODEC_NUM_RANGE;
    *seconds = neg ? -sec : sec;
    *nanos = neg ? -ns : ns;
    return CODEC_NUM_OK;
}

bool codec_duration_valid(int64_t seconds, int32_t nanos)
{
    if (seconds < -CODEC_DURATION_MAX_SECONDS || seconds > CODEC_DURATION_MAX_SECONDS)
        return false;
    if (nanos <= -1000000000 || nanos >= 1000000000)
        return false;
    return !(seconds > 0 && nanos < 0) && !(seconds < 0 && nanos > 0);
}

/* Nanoseconds as ".5" style digits, trailing zeros dropped; "" for 0. */
static void fraction(char *buf, size_t size, int32_t nanos, bool groups_of_three)
{
    int len = 9;

    if (nanos == 0) {
        buf[0] = '\0';
        return;
    }
    snprintf(buf, size, ".%09d", (int)nanos);
    while (len > 1 && buf[len] == '0')
        len--;
    if (groups_of_three)
        len = (len + 2) / 3 * 3;
    buf[len + 1] = '\0';
}

bool codec_format_duration(char *buf, size_t size, int64_t seconds, int32_t nanos)
{
    char frac[16];
    bool neg = seconds < 0 || nanos < 0;

    if (!codec_duration_valid(seconds, nanos))
        return false;
    fraction(frac, sizeof(frac), nanos < 0 ? -nanos : nanos, false);
    snprintf(buf, size, "%s%lld%ss", neg ? "-" : "", (long long)(seconds < 0 ? -seconds : seconds),
             frac);
    return true;
}

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t era, doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* n digits at p into *v. */
static bool fixed_digits(const char *p, int n, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit(p[i]))
            return false;
        *v = *v * 10 + (unsigned)(p[i] - '0');
    }
    return true;
}

codec_num codec_parse_timestamp(const char *s, int64_t *seconds, int32_t *nanos)
{
    static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    unsigned y, mo, d, h, mi, se, oh = 0, om = 0;
    int32_t ns = 0;
    int64_t secs, off = 0;
    const char *p = s;
    bool leap;

    if (!fixed_digits(p, 4, &y) || p[4] != '-' || !fixed_digits(p + 5, 2, &mo) || p[7] != '-' ||
        !fixed_digits(p + 8, 2, &d) || (p[10] != 'T' && p[10] != 't') ||
        !fixed_digits(p + 11, 2, &h) || p[13] != ':' || !fixed_digits(p + 14, 2, &mi) ||
        p[16] != ':' || !fixed_digits(p + 17, 2, &se))
        return CODEC_NUM_SYNTAX;
    p += 19;
    if (*p == '.') {
        p = parse_fraction(p + 1, &ns);
        if (!p)
            return CODEC_NUM_SYNTAX;
    }
    if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
        off = 0;
    } else if ((*p == '+' || *p == '-') && fixed_digits(p + 1, 2, &oh) && p[3] == ':' &&
               fixed_digits(p + 4, 2, &om) && p[6] == '\0' && oh < 24 && om < 60) {
        off = (int64_t)(oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
    } else {
        return CODEC_NUM_SYNTAX;
    }
    leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) ||
        h > 23 || mi > 59 || se > 59)
        return CODEC_NUM_SYNTAX;
    secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off;
    if (!codec_timestamp_valid(secs, ns))
        return CODEC_NUM_RANGE;
    *seconds = secs;
    *nanos = ns;
    return CODEC_NUM_OK;
}

bool codec_timestamp_valid(int64_t seconds, int32_t nanos)
{
    return seconds >= CODEC_TIMESTAMP_MIN && seconds <= CODEC_TIMESTAMP_MAX && nanos >= 0 &&
           nanos < 1000000000;
}

bool codec_format_timestamp(char *buf, size_t size, int64_t seconds, int32_t nanos)
{
    int64_t days, rem, y;
    unsigned m, d;
    char frac[16];

    if (!codec_timestamp_valid(seconds, nanos))
        return false;
    days = seconds / 86400;
    rem = seconds % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    civil_from_days(days, &y, &m, &d);
    fraction(frac, sizeof(frac), nanos, true);
    snprintf(buf, size, "%04d-%02u-%02uT%02d:%02d:%02d%sZ", (int)y, m, d, (int)(rem / 3600),
             (int)(rem / 60 % 60), (int)(rem % 60), frac);
    return true;
}

/* --- Names ------------------------------------------------------------------ */

static char to_upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

static char to_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* The next character of a proto name in camel case, advancing *p: an
 * underscore is dropped and capitalises what follows (as does *cap set at
 * the start); '\0' at the end. */
static char next_camel(const char **p, bool *cap)
{
    char c;

    while (**p == '_') {
        *cap = true;
        (*p)++;
    }
    if (**p == '\0')
        return '\0';
    c = *cap ? to_upper(**p) : **p;
    *cap = false;
    (*p)++;
    return c;
}

void sl_codec_json_name(char *buf, size_t size, const char *proto_name)
{
    const char *p = proto_name;
    size_t n = 0;
    bool cap = false;
    char c;

    if (size == 0)
        return;
    while (n + 1 < size && (c = next_camel(&p, &cap)) != '\0')
        buf[n++] = c;
    buf[n] = '\0';
}

bool codec_json_name_eq(const char *proto_name, const char *key)
{
    const char *p = proto_name;
    bool cap = false;
    char c;

    while ((c = next_camel(&p, &cap)) != '\0')
        if (*key++ != c)
            return false;
    return *key == '\0';
}

#define DIST_MAX 128

size_t sl_codec_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t rows[3][DIST_MAX + 1];
    size_t *prev2 = rows[0], *prev = rows[1], *cur = rows[2];

    if (la > DIST_MAX || lb > DIST_MAX)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t *t;
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            char ca = to_lower(a[i - 1]), cb = to_lower(b[j - 1]);
            size_t cost = ca != cb;
            size_t v = prev[j] + 1;
            if (cur[j - 1] + 1 < v)
                v = cur[j - 1] + 1;
            if (prev[j - 1] + cost < v)
                v = prev[j - 1] + cost;
            if (i > 1 && j > 1 && ca == to_lower(b[j - 2]) && to_lower(a[i - 2]) == cb &&
                prev2[j - 2] + 1 < v)
                v = prev2[j - 2] + 1;
            cur[j] = v;
        }
        t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb];
}

/* --- Descriptors ------------------------------------------------------------ */

codec_wkt codec_wkt_of(const ProtobufCMessageDescriptor *desc)
{
    static const struct {
        const char *name;
        codec_wkt wkt;
    } table[] = {
        {"Any", CODEC_WKT_ANY},           {"Duration", CODEC_WKT_DURATION},
        {"Timestamp", CODEC_WKT_TIMESTAMP}, {"Struct", CODEC_WKT_STRUCT},
        {"Value", CODEC_WKT_VALUE},       {"ListValue", CODEC_WKT_LIST},
        {"DoubleValue", CODEC_WKT_WRAPPER}, {"FloatValue", CODEC_WKT_WRAPPER},
        {"Int64Value", CODEC_WKT_WRAPPER}, {"UInt64Value", CODEC_WKT_WRAPPER},
        {"Int32Value", CODEC_WKT_WRAPPER}, {"UInt32Value", CODEC_WKT_WRAPPER},
        {"BoolValue", CODEC_WKT_WRAPPER}, {"StringValue", CODEC_WKT_WRAPPER},
        {"BytesValue", CODEC_WKT_WRAPPER},
    };
    static const char prefix[] = "google.protobuf.";

    if (strncmp(desc->name, prefix, sizeof(prefix) - 1) != 0)
        return CODEC_WKT_NONE;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (strcmp(desc->name + sizeof(prefix) - 1, table[i].name) == 0)
            return desc->n_fields >= 1 ? table[i].wkt : CODEC_WKT_NONE;
    return CODEC_WKT_NONE;
}

bool codec_is_map(const ProtobufCFieldDescriptor *f)
{
    const ProtobufCMessageDescriptor *e = f->descriptor;
    const char *s, *p = f->name;
    bool cap = true;
    char c;

    if (f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE || !e ||
        e->n_fields != 2 || e->fields[0].id != 1 || strcmp(e->fields[0].name, "key") != 0 ||
        e->fields[1].id != 2 || strcmp(e->fields[1].name, "value") != 0 ||
        e->fields[0].label == PROTOBUF_C_LABEL_REPEATED ||
        e->fields[1].label == PROTOBUF_C_LABEL_REPEATED)
        return false;
    /* protoc's MapEntryName(): CamelCase of the field name plus "Entry". */
    s = e->short_name;
    while ((c = next_camel(&p, &cap)) != '\0')
        if (*s++ != c)
            return false;
    return strcmp(s, "Entry") == 0;
}

size_t codec_elem_size(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

/* proto3 "zero" values, which protobuf-c does not pack. */
static bool is_zeroish(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)p == 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)p == 0;
    case PROTOBUF_C_TYPE_BOOL:
        return *(const protobuf_c_boolean *)p == 0;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return s == NULL || *s == '\0';
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)p)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(void *const *)p == NULL;
    default: {
        /* The integers and enums, by their width. */
        size_t w = codec_elem_size(f->type);
        return w == 4 ? *(const uint32_t *)p == 0 : w == 8 ? *(const uint64_t *)p == 0 : true;
    }
    }
}

bool codec_field_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    const void *p = codec_member(m, f->offset);
    bool ptr_type = f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_STRING;

    switch (f->label) {
    case PROTOBUF_C_LABEL_REQUIRED:
        return true;
    case PROTOBUF_C_LABEL_REPEATED:
        return *(const size_t *)codec_member(m, f->quantifier_offset) > 0;
    case PROTOBUF_C_LABEL_OPTIONAL:
    case PROTOBUF_C_LABEL_NONE:
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(const uint32_t *)codec_member(m, f->quantifier_offset) != f->id)
                return false;
        } else if (f->label == PROTOBUF_C_LABEL_NONE) {
            return !is_zeroish(f, p);
        } else if (!ptr_type) {
            return *(const protobuf_c_boolean *)codec_member(m, f->quantifier_offset);
        }
        if (ptr_type) {
            const void *v = *(void *const *)p;
            return v != NULL && v != f->default_value;
        }
        return true;
    }
    return false;
}
