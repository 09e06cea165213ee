/*
 * Strict DER reader and bounded writer (see include/mailca/der.h for why this is ours).
 */
#include "mailca/der.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

mc_err mc_der_next(mc_der_cur *c, mc_der_tlv *out)
{
    const uint8_t *p = c->p;
    size_t left = c->len;
    if (left < 2)
        return MC_ERR_INVALID;
    unsigned tag = p[0];
    if ((tag & 0x1f) == 0x1f) /* high tag numbers: not used by any structure we parse */
        return MC_ERR_INVALID;
    size_t hdr = 2, len = p[1];
    if (len & 0x80) {
        size_t n = len & 0x7f;
        if (n == 0 || n > sizeof(size_t) || left < 2 + n) /* 0 = indefinite: BER only */
            return MC_ERR_INVALID;
        if (p[2] == 0) /* leading zero octet: not minimal */
            return MC_ERR_INVALID;
        len = 0;
        for (size_t i = 0; i < n; i++)
            len = (len << 8) | p[2 + i];
        if (len < 0x80 || (n > 1 && len < ((size_t)1 << (8 * (n - 1)))))
            return MC_ERR_INVALID; /* long form where a shorter one fits */
        hdr = 2 + n;
    }
    if (len > left - hdr)
        return MC_ERR_INVALID;
    out->tag = tag;
    out->val = p + hdr;
    out->len = len;
    out->raw = p;
    out->rawlen = hdr + len;
    c->p += hdr + len;
    c->len -= hdr + len;
    return MC_OK;
}

mc_err mc_der_expect(mc_der_cur *c, unsigned tag, mc_der_tlv *out)
{
    mc_der_cur save = *c;
    mc_err e = mc_der_next(c, out);
    if (e == MC_OK && out->tag != tag) {
        *c = save;
        return MC_ERR_INVALID;
    }
    if (e != MC_OK)
        *c = save;
    return e;
}

int mc_der_optional(mc_der_cur *c, unsigned tag, mc_der_tlv *out)
{
    if (c->len == 0 || c->p[0] != tag)
        return 0;
    return mc_der_expect(c, tag, out) == MC_OK;
}

int mc_der_peek(const mc_der_cur *c)
{
    return c->len ? c->p[0] : -1;
}

mc_err mc_der_int_check(const uint8_t *v, size_t len)
{
    if (len == 0)
        return MC_ERR_INVALID;
    if (len > 1 && ((v[0] == 0x00 && !(v[1] & 0x80)) || (v[0] == 0xff && (v[1] & 0x80))))
        return MC_ERR_INVALID;
    return MC_OK;
}

mc_err mc_der_int_i64(const mc_der_tlv *t, int64_t *out)
{
    if (t->tag != MC_DER_INTEGER || mc_der_int_check(t->val, t->len) != MC_OK)
        return MC_ERR_INVALID;
    if (t->len > 8 || (t->val[0] & 0x80))
        return MC_ERR_INVALID; /* negative or too large */
    uint64_t v = 0;
    for (size_t i = 0; i < t->len; i++)
        v = (v << 8) | t->val[i];
    *out = (int64_t)v;
    return MC_OK;
}

mc_err mc_der_bool(const mc_der_tlv *t, int *out)
{
    if (t->tag != MC_DER_BOOLEAN || t->len != 1 || (t->val[0] != 0 && t->val[0] != 0xff))
        return MC_ERR_INVALID;
    *out = t->val[0] != 0;
    return MC_OK;
}

static int digits(const uint8_t *p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 1;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian), no libc time zone involvement. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

mc_err mc_der_time(const mc_der_tlv *t, int64_t *out)
{
    int y, mo, d, h, mi, s;
    const uint8_t *p = t->val;
    if (t->tag == MC_DER_UTCTIME) {
        if (t->len != 13 || p[12] != 'Z' || !digits(p, 2, &y))
            return MC_ERR_INVALID;
        y += y >= 50 ? 1900 : 2000;
        p += 2;
    } else if (t->tag == MC_DER_GENERALIZEDTIME) {
        if (t->len != 15 || p[14] != 'Z' || !digits(p, 4, &y))
            return MC_ERR_INVALID;
        p += 4;
    } else {
        return MC_ERR_INVALID;
    }
    if (!digits(p, 2, &mo) || !digits(p + 2, 2, &d) || !digits(p + 4, 2, &h) ||
        !digits(p + 6, 2, &mi) || !digits(p + 8, 2, &s))
        return MC_ERR_INVALID;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) ||
        h > 23 || mi > 59 || s > 59)
        return MC_ERR_INVALID;
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
    return MC_OK;
}

int mc_der_oid_eq(const mc_der_tlv *t, const uint8_t *oid, size_t oidlen)
{
    return t->tag == MC_DER_OID && t->len == oidlen && memcmp(t->val, oid, oidlen) == 0;
}

const char *mc_der_oid_str(const uint8_t *v, size_t len, char *buf, size_t buflen)
{
    size_t o = 0;
    uint64_t acc = 0;
    int first = 1;
    buf[0] = '\0';
    for (size_t i = 0; i < len && o < buflen; i++) {
        acc = (acc << 7) | (v[i] & 0x7f);
        if (v[i] & 0x80)
            continue;
        int n;
        if (first) {
            unsigned a = acc < 40 ? 0 : acc < 80 ? 1 : 2;
            n = snprintf(buf + o, buflen - o, "%u.%llu", a, (unsigned long long)(acc - 40 * a));
            first = 0;
        } else {
            n = snprintf(buf + o, buflen - o, ".%llu", (unsigned long long)acc);
        }
        if (n < 0)
            break;
        o += (size_t)n;
        acc = 0;
    }
    return buf;
}

/* ---- writer ---- */

static int room(mc_der_w *w, size_t n)
{
    if (w->err != MC_OK)
        return 0;
    if (n > w->cap - w->len) {
        w->err = MC_ERR_NOMEM;
        return 0;
    }
    return 1;
}

static size_t len_octets(size_t len)
{
    size_t n = 1;
    if (len >= 0x80)
        for (size_t l = len; l; l >>= 8)
            n++;
    return n;
}

static void put_header(mc_der_w *w, unsigned tag, size_t len)
{
    size_t n = len_octets(len);
    if (!room(w, 1 + n))
        return;
    w->buf[w->len++] = (uint8_t)tag;
    if (n == 1) {
        w->buf[w->len++] = (uint8_t)len;
        return;
    }
    w->buf[w->len++] = (uint8_t)(0x80 | (n - 1));
    for (size_t i = n - 1; i > 0; i--)
        w->buf[w->len++] = (uint8_t)(len >> (8 * (i - 1)));
}

void mc_der_put_raw(mc_der_w *w, const void *p, size_t n)
{
    if (!room(w, n))
        return;
    if (n)
        memcpy(w->buf + w->len, p, n);
    w->len += n;
}

void mc_der_put(mc_der_w *w, unsigned tag, const void *val, size_t len)
{
    put_header(w, tag, len);
    mc_der_put_raw(w, val, len);
}

void mc_der_put_uint(mc_der_w *w, const uint8_t *mag, size_t len)
{
    while (len > 1 && mag[0] == 0) {
        mag++;
        len--;
    }
    int pad = len == 0 || (mag[0] & 0x80);
    put_header(w, MC_DER_INTEGER, len + (size_t)pad);
    if (pad && room(w, 1))
        w->buf[w->len++] = 0;
    mc_der_put_raw(w, mag, len);
}

void mc_der_put_small_uint(mc_der_w *w, uint64_t v)
{
    uint8_t b[8];
    for (int i = 7; i >= 0; i--, v >>= 8)
        b[i] = (uint8_t)v;
    mc_der_put_uint(w, b, 8);
}

void mc_der_put_bool(mc_der_w *w, int v)
{
    uint8_t b = v ? 0xff : 0x00;
    mc_der_put(w, MC_DER_BOOLEAN, &b, 1);
}

void mc_der_put_bits(mc_der_w *w, const void *p, size_t n)
{
    put_header(w, MC_DER_BITSTRING, n + 1);
    if (room(w, 1))
        w->buf[w->len++] = 0;
    mc_der_put_raw(w, p, n);
}

void mc_der_put_named_bits(mc_der_w *w, uint32_t bits, unsigned nbits)
{
    uint8_t b[5] = {0};
    int last = -1;
    for (unsigned i = 0; i < nbits && i < 32; i++)
        if (bits & (1u << i)) {
            b[1 + i / 8] |= (uint8_t)(0x80 >> (i % 8));
            last = (int)i;
        }
    size_t nbytes = last < 0 ? 0 : (size_t)last / 8 + 1;
    b[0] = last < 0 ? 0 : (uint8_t)(7 - last % 8);
    mc_der_put(w, MC_DER_BITSTRING, b, 1 + nbytes);
}

void mc_der_put_time(mc_der_w *w, int64_t t)
{
    int64_t days = t / 86400, rem = t % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    /* civil_from_days */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int d = (int)(doy - (153 * mp + 2) / 5 + 1);
    int m = (int)(mp < 10 ? mp + 3 : mp - 9);
    y += m <= 2;
    /* GeneralizedTime has four year digits (RFC 5280 4.1.2.5.2): a time outside them cannot
     * be written, and the writer fails rather than emit a wrong one. */
    if (y < 0 || y > 9999) {
        if (w->err == MC_OK)
            w->err = MC_ERR_INVALID;
        return;
    }
    /* Digits written directly: two times per certificate, where snprintf cost more than the
     * rest of this function. */
    int h = (int)(rem / 3600), mi = (int)(rem % 3600 / 60), se = (int)(rem % 60);
    int utc = y >= 1950 && y <= 2049;
    int f[6] = {(int)(y % 100), m, d, h, mi, se};
    char s[16], *q = s;
    if (!utc) {
        *q++ = (char)('0' + y / 1000);
        *q++ = (char)('0' + y / 100 % 10);
    }
    for (int i = 0; i < 6; i++) {
        *q++ = (char)('0' + f[i] / 10);
        *q++ = (char)('0' + f[i] % 10);
    }
    *q++ = 'Z';
    mc_der_put(w, utc ? MC_DER_UTCTIME : MC_DER_GENERALIZEDTIME, s, (size_t)(q - s));
}

/* Reserve a 4-byte long-form length (up to 16 MiB) and shrink it at mc_der_end. */
/* A constructed value's header with room for a length of up to room - 1 octets after the
 * 0x8N octet (mc_der_begin: 4, lengths below 16 MiB; mc_der_begin_large: 5, below 4 GiB). */
static size_t begin_room(mc_der_w *w, unsigned tag, size_t room_len)
{
    size_t mark = w->len;
    if (room(w, 1 + room_len)) {
        w->buf[w->len++] = (uint8_t)tag;
        w->len += room_len;
    }
    return mark;
}

/* Writes the minimal length into the room begin_room left and moves the contents down. */
static void end_room(mc_der_w *w, size_t mark, size_t room_len)
{
    if (w->err != MC_OK)
        return;
    size_t start = mark + 1 + room_len, len = w->len - start;
    size_t n = len_octets(len);
    if (n > room_len) {
        w->err = MC_ERR_NOMEM;
        return;
    }
    uint8_t *p = w->buf + mark + 1;
    if (n == 1) {
        p[0] = (uint8_t)len;
    } else {
        p[0] = (uint8_t)(0x80 | (n - 1));
        for (size_t i = 1; i < n; i++)
            p[i] = (uint8_t)(len >> (8 * (n - 1 - i)));
    }
    if (n < room_len)
        memmove(w->buf + mark + 1 + n, w->buf + start, len);
    w->len = mark + 1 + n + len;
}

size_t mc_der_begin(mc_der_w *w, unsigned tag)
{
    return begin_room(w, tag, 4);
}

void mc_der_end(mc_der_w *w, size_t mark)
{
    end_room(w, mark, 4);
}

size_t mc_der_begin_large(mc_der_w *w, unsigned tag)
{
    return begin_room(w, tag, 5);
}

void mc_der_end_large(mc_der_w *w, size_t mark)
{
    end_room(w, mark, 5);
}

size_t mc_der_oid_encode(const char *dotted, uint8_t *out, size_t cap)
{
    unsigned long long arcs[64];
    size_t na = 0;
    const char *s = dotted;
    while (*s && na < 64) {
        if (*s < '0' || *s > '9')
            return 0;
        unsigned long long v = 0;
        while (*s >= '0' && *s <= '9') {
            if (v > (~0ULL) / 10 - 10)
                return 0;
            v = v * 10 + (unsigned)(*s++ - '0');
        }
        arcs[na++] = v;
        if (*s == '.')
            s++;
        else if (*s)
            return 0;
    }
    if (na < 2 || arcs[0] > 2 || (arcs[0] < 2 && arcs[1] > 39) || *s)
        return 0;
    size_t o = 0;
    for (size_t i = 1; i < na; i++) {
        unsigned long long v = i == 1 ? arcs[0] * 40 + arcs[1] : arcs[i];
        uint8_t tmp[10];
        size_t n = 0;
        do {
            tmp[n++] = (uint8_t)(v & 0x7f);
            v >>= 7;
        } while (v);
        if (o + n > cap)
            return 0;
        while (n--)
            out[o++] = (uint8_t)(tmp[n] | (n ? 0x80 : 0));
    }
    return o;
}
