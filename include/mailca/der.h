/*
 * mc_der: a small strict DER reader and writer.
 *
 * Why our own: the worker builds and re-parses a TBSCertificate for every order; OpenSSL's ASN.1
 * object layer allocates per field and takes locks (see DESIGN.md, "Building the TBS"), so the hot
 * path uses this zero-allocation code instead. OpenSSL remains the reference in the tests.
 *
 * Reader: a cursor over a byte range; mc_der_next returns one TLV and refuses anything that is not
 * canonical DER (indefinite or non-minimal lengths, high tag numbers above 30 are not supported).
 * Writer: appends to a caller-owned fixed buffer; constructed values are opened with mc_der_begin
 * and closed with mc_der_end, which writes the minimal length. A full buffer sets w->err and later
 * calls do nothing, so a sequence of writes is checked once at the end.
 */
#ifndef MAILCA_DER_H
#define MAILCA_DER_H

#include "mailca/err.h"

#include <stddef.h>
#include <stdint.h>

/* Universal tags and common context tags (the full identifier octet). */
enum {
    MC_DER_BOOLEAN = 0x01,
    MC_DER_INTEGER = 0x02,
    MC_DER_BITSTRING = 0x03,
    MC_DER_OCTETSTRING = 0x04,
    MC_DER_NULL = 0x05,
    MC_DER_OID = 0x06,
    MC_DER_UTF8STRING = 0x0c,
    MC_DER_PRINTABLESTRING = 0x13,
    MC_DER_T61STRING = 0x14,
    MC_DER_IA5STRING = 0x16,
    MC_DER_UTCTIME = 0x17,
    MC_DER_GENERALIZEDTIME = 0x18,
    MC_DER_VISIBLESTRING = 0x1a,
    MC_DER_UNIVERSALSTRING = 0x1c,
    MC_DER_BMPSTRING = 0x1e,
    MC_DER_SEQUENCE = 0x30,
    MC_DER_SET = 0x31,
};
#define MC_DER_CTX(n) (0x80u | (unsigned)(n))      /* [n] IMPLICIT primitive */
#define MC_DER_CTX_CONS(n) (0xa0u | (unsigned)(n)) /* [n] constructed / EXPLICIT */

/* ---- reader ---- */

typedef struct mc_der_tlv {
    unsigned tag;       /* identifier octet */
    const uint8_t *val; /* contents */
    size_t len;         /* contents length */
    const uint8_t *raw; /* whole TLV, header included */
    size_t rawlen;
} mc_der_tlv;

typedef struct mc_der_cur {
    const uint8_t *p;
    size_t len;
} mc_der_cur;

/* Cursor over [p, p+len). */
static inline mc_der_cur mc_der_cur_make(const uint8_t *p, size_t len)
{
    mc_der_cur c = {p, len};
    return c;
}

/* Cursor over the contents of a constructed TLV. */
static inline mc_der_cur mc_der_cur_in(const mc_der_tlv *t)
{
    mc_der_cur c = {t->val, t->len};
    return c;
}

static inline int mc_der_cur_empty(const mc_der_cur *c)
{
    return c->len == 0;
}

/* Reads the next TLV and advances. MC_ERR_INVALID on truncated or non-DER input, or at end. */
mc_err mc_der_next(mc_der_cur *c, mc_der_tlv *out);

/* Like mc_der_next but also requires the tag; MC_ERR_INVALID when it differs (cursor unchanged). */
mc_err mc_der_expect(mc_der_cur *c, unsigned tag, mc_der_tlv *out);

/* If the next TLV has this tag, reads it and returns 1; otherwise leaves the cursor and returns 0
 * (also 0 at end or on malformed input, which the next read will report). */
int mc_der_optional(mc_der_cur *c, unsigned tag, mc_der_tlv *out);

/* Peeks at the next tag; -1 at end. */
int mc_der_peek(const mc_der_cur *c);

/* INTEGER contents checks: minimal encoding. Returns MC_ERR_INVALID if not minimal or empty. */
mc_err mc_der_int_check(const uint8_t *v, size_t len);

/* Reads a small non-negative INTEGER (fits in int64). */
mc_err mc_der_int_i64(const mc_der_tlv *t, int64_t *out);

/* BOOLEAN must be 0x00 or 0xff in DER. */
mc_err mc_der_bool(const mc_der_tlv *t, int *out);

/* Parses UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ) as RFC 5280 requires
 * into seconds since the Unix epoch. */
mc_err mc_der_time(const mc_der_tlv *t, int64_t *out);

/* Compares the contents of an OID TLV against encoded OID bytes (no tag/len). */
int mc_der_oid_eq(const mc_der_tlv *t, const uint8_t *oid, size_t oidlen);

/* Writes the dotted form of an OID's contents into buf (for messages). */
const char *mc_der_oid_str(const uint8_t *v, size_t len, char *buf, size_t buflen);

/* ---- writer ---- */

typedef struct mc_der_w {
    uint8_t *buf;
    size_t cap;
    size_t len;
    mc_err err; /* MC_ERR_NOMEM once the buffer overflowed, MC_ERR_INVALID for a bad value */
} mc_der_w;

static inline void mc_der_w_init(mc_der_w *w, uint8_t *buf, size_t cap)
{
    w->buf = buf;
    w->cap = cap;
    w->len = 0;
    w->err = MC_OK;
}

/* Appends raw bytes (an already-encoded TLV, e.g. from a compiled template). */
void mc_der_put_raw(mc_der_w *w, const void *p, size_t n);
/* Appends tag, minimal length, contents. */
void mc_der_put(mc_der_w *w, unsigned tag, const void *val, size_t len);
/* INTEGER from big-endian unsigned magnitude (adds a 0x00 when the top bit is set, strips
 * redundant leading zeros). */
void mc_der_put_uint(mc_der_w *w, const uint8_t *mag, size_t len);
void mc_der_put_small_uint(mc_der_w *w, uint64_t v);
void mc_der_put_bool(mc_der_w *w, int v);
/* BIT STRING with 0 unused bits. */
void mc_der_put_bits(mc_der_w *w, const void *p, size_t n);
/* Named-bit BIT STRING (e.g. keyUsage): bits numbered from 0 = MSB of first byte, DER minimal
 * (trailing zero bits removed, unused-bits count set). */
void mc_der_put_named_bits(mc_der_w *w, uint32_t bits, unsigned nbits);
/* UTCTime for years 1950-2049, GeneralizedTime otherwise (RFC 5280 4.1.2.5); a year outside
 * 0000-9999 sets w->err to MC_ERR_INVALID. */
void mc_der_put_time(mc_der_w *w, int64_t unix_seconds);

/* Opens a constructed value: returns a mark for mc_der_end. */
size_t mc_der_begin(mc_der_w *w, unsigned tag);
/* Closes the value opened at mark, writing the minimal length. */
void mc_der_end(mc_der_w *w, size_t mark);
/* The same for values that may reach 16 MiB or more (a CRL of hundreds of thousands of
 * entries): room for a 4-octet length, up to 4 GiB. Pair mc_der_begin_large with
 * mc_der_end_large. */
size_t mc_der_begin_large(mc_der_w *w, unsigned tag);
void mc_der_end_large(mc_der_w *w, size_t mark);

/* Encodes a dotted OID string into OID contents (no tag/len). Returns length, or 0 on error.
 * Cold path (profile compilation). */
size_t mc_der_oid_encode(const char *dotted, uint8_t *out, size_t cap);

#endif
