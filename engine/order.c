/*
 * Order intake: strict decoding of one order from a msgpack map (docs/orders.md), the Mailbox
 * Address syntax check (SBR 1.6.1) and the CSR check (proof of possession, SBR 6.1.5, 6.1.6,
 * 7.1.3.1). Decoding allocates nothing (but inside libidn2 for IDN domains): strings and byte
 * arrays point into the msgpack object, a mailbox whose domain was converted to A-labels
 * (SBR 7.1.4.2.1) into the order's own idn buffer.
 * Every error names the field path ("mailboxes[1].address"), the rule and the offending value.
 */
#include "mailca/order.h"

#include "mailca/crypto.h"
#include "mailca/der.h"
#include "mailca/keycheck.h"
#include "mailca/text.h"
#include "mailca/weakkeys.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* libidn2: IDNA2008 with UTS #46 mapping (pkg-config libidn2). */
#include <idn2.h>

#define R_MAILBOX "SBR 1.6.1"
#define R_IDN "SBR 7.1.4.2.1"
#define R_METHOD "SBR 3.2.2"
#define R_KEYSIZE "SBR 6.1.5"
#define R_EXPONENT "SBR 6.1.6"
#define R_SPKI "SBR 7.1.3.1"
#define R_CSR "RFC 2986"

/* ---- small helpers ---- */

/* Writes p[0..len) into buf for a message: printable ASCII as is, anything else as \xNN, cut
 * with "..." so that a hostile value cannot fill the whole message. */
static const char *show(const void *vp, size_t len, char *buf, size_t cap)
{
    const unsigned char *p = vp;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (o + 8 >= cap) {
            memcpy(buf + o, "...", 4);
            return buf;
        }
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
            buf[o++] = (char)p[i];
        else
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", p[i]);
    }
    buf[o] = '\0';
    return buf;
}

static const char *type_name(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return "nil";
    case MSGPACK_OBJECT_BOOLEAN:
        return "boolean";
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return "integer";
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return "negative integer";
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return "float";
    case MSGPACK_OBJECT_STR:
        return "str";
    case MSGPACK_OBJECT_ARRAY:
        return "array";
    case MSGPACK_OBJECT_MAP:
        return "map";
    case MSGPACK_OBJECT_BIN:
        return "bin";
    case MSGPACK_OBJECT_EXT:
        return "ext";
    }
    return "unknown";
}

/* Length of the valid UTF-8 prefix of p (mc_utf8_seq_len). Equal to len when the whole string
 * is valid. */
static size_t utf8_valid_prefix(const unsigned char *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = mc_utf8_seq_len(p + i, len - i);
        if (!n)
            return i;
        i += n;
    }
    return i;
}

static int key_eq(const msgpack_object *k, const char *s)
{
    size_t n = strlen(s);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
           memcmp(k->via.str.ptr, s, n) == 0;
}

/* Text field: a str of min..max bytes; utf8text additionally requires valid UTF-8 without control
 * characters (such values end up in logs and the database). */
static mc_err get_text(const msgpack_object *v, const char *field, const char *rule, size_t min,
                       size_t max, int utf8text, mc_str *out, mc_errdetail *err)
{
    if (v->type != MSGPACK_OBJECT_STR)
        return mc_err_set(err, MC_ERR_INVALID, field, rule, "must be a str, got %s", type_name(v));
    size_t n = v->via.str.size;
    if (n < min || n > max)
        return mc_err_set(err, MC_ERR_INVALID, field, rule, "is %zu bytes long, allowed %zu..%zu",
                          n, min, max);
    const unsigned char *p = (const unsigned char *)v->via.str.ptr;
    if (utf8text) {
        size_t ok = utf8_valid_prefix(p, n);
        if (ok != n)
            return mc_err_set(err, MC_ERR_INVALID, field, rule,
                              "is not valid UTF-8 (byte %zu is 0x%02x)", ok, p[ok]);
        for (size_t i = 0; i < n; i++)
            if (p[i] < 0x20 || p[i] == 0x7f)
                return mc_err_set(err, MC_ERR_INVALID, field, rule,
                                  "contains the control character 0x%02x at byte %zu", p[i], i);
    }
    out->p = v->via.str.ptr;
    out->len = n;
    return MC_OK;
}

/* The order id: printable ASCII (0x20..0x7e), so that it can be quoted anywhere. */
static mc_err get_id(const msgpack_object *v, mc_str *out, mc_errdetail *err)
{
    mc_str s;
    mc_err e = get_text(v, "id", "orders.md id", 1, MC_ORDER_ID_MAX, 0, &s, err);
    if (e)
        return e;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c < 0x20 || c > 0x7e)
            return mc_err_set(err, MC_ERR_INVALID, "id", "orders.md id",
                              "must be printable ASCII, byte %zu is 0x%02x", i, c);
    }
    *out = s;
    return MC_OK;
}

/* ---- IDNA (SBR 7.1.4.2.1: the certificate carries the domain as A-labels, RFC 9598 3) ---- */

int mc_idn_to_ascii(const char *dom, size_t dlen, char *out, size_t cap, const char **why)
{
    char in[1024];
    uint8_t *res = NULL;
    const char *w = NULL;
    int rc = -1;
    if (dlen == 0 || dlen >= sizeof in || memchr(dom, '\0', dlen)) {
        w = "empty, too long or holds a NUL byte";
        goto done;
    }
    memcpy(in, dom, dlen);
    in[dlen] = '\0';
    /* IDNA2008 with UTS #46 non-transitional mapping (so "ß" stays "ß"), NFC, STD3 ASCII rules,
     * and the A-label round trip: an xn-- label must decode to a valid U-label that encodes back
     * to the same label (RFC 5891 5.4). */
    int r = idn2_lookup_u8((const uint8_t *)in, &res,
                           IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL | IDN2_USE_STD3_ASCII_RULES |
                               IDN2_ALABEL_ROUNDTRIP);
    if (r != IDN2_OK) {
        w = idn2_strerror(r);
        goto done;
    }
    size_t n = strlen((const char *)res);
    if (n + 1 > cap) {
        w = "the A-label form is too long";
        goto done;
    }
    memcpy(out, res, n + 1);
    rc = 0;
done:
    if (res)
        idn2_free(res);
    if (why)
        *why = w;
    return rc;
}

/* ---- mailbox address syntax (SBR 1.6.1) ---- */

/* RFC 5322 3.2.3 atext, ASCII part (RFC 6532 3.2 adds UTF8-non-ascii, handled by the caller). */
static int is_atext(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static int is_ldh(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

/* The syntax check and the A-label form (out: cap >= MC_MAILBOX_MAX + 1, or NULL). With
 * copy == 0 an address whose domain needs no conversion is not written (*out_len is len, and
 * *converted 0); *converted (may be NULL) is 1 when out holds a converted address. */
static mc_err mailbox_check(const char *p, size_t len, const char *field, char *out, size_t cap,
                            size_t *out_len, int copy, int *converted, mc_errdetail *err)
{
    /* SBR 1.6.1: a Mailbox Address is RFC 5321 4.1.2 Mailbox as amended by RFC 6532 3.2, "with
     * no additional padding or structure". */
    const unsigned char *u = (const unsigned char *)p;
    char shown[96];
    if (!p || len == 0)
        return mc_err_set(err, MC_ERR_INVALID, field, R_MAILBOX, "empty mailbox address");
    if (len > MC_MAILBOX_MAX) /* RFC 5321 4.5.3.1.3 */
        return mc_err_set(err, MC_ERR_INVALID, field, R_MAILBOX,
                          "mailbox address is %zu octets, the limit is %d (RFC 5321 4.5.3.1.3)",
                          len, MC_MAILBOX_MAX);
    size_t ok = utf8_valid_prefix(u, len);
    if (ok != len) /* RFC 6532 3.1: UTF-8 only */
        return mc_err_set(err, MC_ERR_INVALID, field, R_MAILBOX,
                          "mailbox address %s is not valid UTF-8 (byte %zu is 0x%02x)",
                          show(p, len, shown, sizeof shown), ok, u[ok]);
    if (memchr(p, '<', len) || memchr(p, '>', len))
        return mc_err_set(err, MC_ERR_INVALID, field, R_MAILBOX,
                          "%s is not a bare address: no display name or angle brackets",
                          show(p, len, shown, sizeof shown));
    /* Deliberate restrictions beyond RFC 5321 (docs/orders.md, "Mailbox addresses") carry an
     * orders.md rule: quoted-string local parts, address literals. */
    if (p[0] == '"')
        return mc_err_set(err, MC_ERR_INVALID, field, "orders.md quoted-local-part",
                          "%s: quoted-string local parts are not accepted",
                          show(p, len, shown, sizeof shown));
    const char *at = memchr(p, '@', len);
    if (!at)
        return mc_err_set(err, MC_ERR_INVALID, field, R_MAILBOX, "%s has no '@'",
                          show(p, len, shown, sizeof shown));
    size_t llen = (size_t)(at - p);
    const unsigned char *dom = (const unsigned char *)at + 1;
    size_t dlen = len - llen - 1;

    /* Local part: RFC 5321 4.1.2 Dot-string = Atom *("." Atom), atext extended by RFC 6532. */
    if (llen == 0)
        return mc_err_set(err, MC_ERR_INVALID, field, R_MAILBOX, "%s has an empty local part",
                          show(p, len, shown, sizeof shown));
    if (llen > MC_MAILBOX_LOCAL_MAX) /* RFC 5321 4.5.3.1.1 */
        return mc_err_set(err, MC_ERR_INVALID, field, R_MAILBOX,
                          "local part is %zu octets, the limit is %d (RFC 5321 4.5.3.1.1)", llen,
                          MC_MAILBOX_LOCAL_MAX);
    if (u[0] == '.' || u[llen - 1] == '.')
        return mc_err_set(err, MC_ERR_INVALID, field, R_MAILBOX,
                          "local part of %s starts or ends with a dot",
                          show(p, len, shown, sizeof shown));
    for (size_t i = 0; i < llen; i++) {
        unsigned char c = u[i];
        if (c == '.') {
            if (u[i + 1] == '.')
                return mc_err_set(err, MC_ERR_INVALID, field, R_MAILBOX,
                                  "local part of %s has two dots in a row",
                                  show(p, len, shown, sizeof shown));
        } else if (c < 0x80 && !is_atext(c)) {
            return mc_err_set(err, MC_ERR_INVALID, field, R_MAILBOX,
                              "local part of %s has the character 0x%02x, not allowed in a "
                              "Dot-string",
                              show(p, len, shown, sizeof shown), c);
        }
    }

    /* Domain: RFC 5321 4.1.2 Domain = sub-domain *("." sub-domain), LDH labels. */
    if (dlen == 0)
        return mc_err_set(err, MC_ERR_INVALID, field, R_MAILBOX, "%s has an empty domain",
                          show(p, len, shown, sizeof shown));
    if (dom[0] == '[')
        return mc_err_set(err, MC_ERR_INVALID, field, "orders.md address-literal",
                          "%s: address literals are not accepted, a domain name is required",
                          show(p, len, shown, sizeof shown));
    /* Internationalized domains (SBR 7.1.4.2.1, RFC 9598 3): the certificate carries A-labels, and
     * CAA (SBR 4.2.2.1) is looked up for the A-label domain, so a U-label domain is converted here,
     * before anything else sees it. Its ASCII characters must already be LDH: UTS #46 would
     * silently drop or map some (e.g. '_'), which would change the mailbox. */
    char adom[256];
    int has_u = 0;
    for (size_t i = 0; i < dlen; i++)
        has_u |= dom[i] >= 0x80;
    if (has_u) {
        for (size_t i = 0; i < dlen; i++)
            if (dom[i] < 0x80 && dom[i] != '.' && !is_ldh(dom[i]))
                return mc_err_set(err, MC_ERR_INVALID, field, R_MAILBOX,
                                  "domain of %s has the character 0x%02x, only letters, digits, "
                                  "hyphens and dots are allowed",
                                  show(p, len, shown, sizeof shown), dom[i]);
        const char *why = NULL;
        int r = mc_idn_to_ascii((const char *)dom, dlen, adom, sizeof adom, &why);
        if (r != 0)
            return mc_err_set(err, MC_ERR_INVALID, field, R_IDN,
                              "domain of %s is not a valid internationalized domain name "
                              "(IDNA2008, UTS #46 non-transitional): %s",
                              show(p, len, shown, sizeof shown), why);
        dom = (const unsigned char *)adom;
        dlen = strlen(adom);
        if (llen + 1 + dlen > MC_MAILBOX_MAX)
            return mc_err_set(err, MC_ERR_INVALID, field, R_MAILBOX,
                              "%s is %zu octets with its domain as A-labels (%s), the limit is %d",
                              show(p, len, shown, sizeof shown), llen + 1 + dlen, adom,
                              MC_MAILBOX_MAX);
    }
    if (dlen > 253)
        return mc_err_set(err, MC_ERR_INVALID, field, R_MAILBOX,
                          "domain is %zu octets, the limit is 253", dlen);
    size_t labels = 0, start = 0;
    for (size_t i = 0; i <= dlen; i++) {
        if (i < dlen && dom[i] != '.') {
            if (!is_ldh(dom[i]))
                return mc_err_set(err, MC_ERR_INVALID, field, R_MAILBOX,
                                  "domain of %s has the character 0x%02x, only letters, digits, "
                                  "hyphens and dots are allowed",
                                  show(p, len, shown, sizeof shown), dom[i]);
            continue;
        }
        size_t n = i - start;
        if (n == 0)
            return mc_err_set(err, MC_ERR_INVALID, field, R_MAILBOX,
                              "domain of %s has an empty label", show(p, len, shown, sizeof shown));
        if (n > 63)
            return mc_err_set(err, MC_ERR_INVALID, field, R_MAILBOX,
                              "domain label %s is %zu octets, the limit is 63",
                              show(dom + start, n, shown, sizeof shown), n);
        if (dom[start] == '-' || dom[i - 1] == '-')
            return mc_err_set(err, MC_ERR_INVALID, field, R_MAILBOX,
                              "domain label %s starts or ends with a hyphen",
                              show(dom + start, n, shown, sizeof shown));
        labels++;
        start = i + 1;
    }
    if (labels < 2)
        return mc_err_set(err, MC_ERR_INVALID, field, R_MAILBOX,
                          "domain of %s must have at least two labels",
                          show(p, len, shown, sizeof shown));
    /* An ASCII domain with A-labels (xn--, any case): each must be a valid A-label, i.e. decode
     * to a valid U-label that encodes back to it (RFC 5890 2.3.2.1, RFC 5891 5.4). */
    if (!has_u) {
        int has_a = 0;
        for (size_t i = 0; i + 4 <= dlen; i++)
            if ((i == 0 || dom[i - 1] == '.') && strncasecmp((const char *)dom + i, "xn--", 4) == 0)
                has_a = 1;
        const char *why = NULL;
        int r = has_a ? mc_idn_to_ascii((const char *)dom, dlen, adom, sizeof adom, &why) : 0;
        if (r == 0 && has_a && (strlen(adom) != dlen || strncasecmp(adom, (const char *)dom, dlen)))
            r = -1, why = "it is not in its canonical A-label form";
        if (r != 0)
            return mc_err_set(err, MC_ERR_INVALID, field, R_IDN,
                              "domain of %s has an xn-- label that is not a valid A-label: %s",
                              show(p, len, shown, sizeof shown), why);
    }
    if (converted)
        *converted = has_u;
    if (out && !has_u && !copy) {
        *out_len = len;
    } else if (out) {
        if (llen + 1 + dlen + 1 > cap)
            return mc_err_set(err, MC_ERR_INTERNAL, field, NULL, "buffer of %zu bytes too small",
                              cap);
        memcpy(out, p, llen + 1);
        memcpy(out + llen + 1, dom, dlen);
        out[llen + 1 + dlen] = '\0';
        *out_len = llen + 1 + dlen;
    }
    return MC_OK;
}

mc_err mc_mailbox_check(const char *p, size_t len, const char *field, mc_errdetail *err)
{
    return mailbox_check(p, len, field, NULL, 0, NULL, 0, NULL, err);
}

mc_err mc_mailbox_to_ascii(const char *p, size_t len, char *out, size_t cap, size_t *out_len,
                           const char *field, mc_errdetail *err)
{
    if (!out || !out_len)
        return mc_err_set(err, MC_ERR_INTERNAL, field, NULL, "no output buffer");
    return mailbox_check(p, len, field, out, cap, out_len, 1, NULL, err);
}

/* ---- order decoding ---- */

enum {
    K_ID,
    K_ACCOUNT,
    K_PROFILE,
    K_USAGE,
    K_MAILBOXES,
    K_CSR,
    K_REPLACES,
    K_PUBLIC_KEY,
    K_KEY_SOURCE,
    K_SUBJECT,
    K_LEI,
    K_LEI_ROLE,
    K_IDENTITY,
    K_ORDER_N
};
static const char *const order_keys[K_ORDER_N] = {
    "id",         "account",    "profile", "usage", "mailboxes", "csr",     "replaces",
    "public_key", "key_source", "subject", "lei",   "lei_role",  "identity"};
/* csr / public_key: exactly one, checked after the loop */
static const unsigned order_required =
    (1u << K_ID) | (1u << K_ACCOUNT) | (1u << K_PROFILE) | (1u << K_USAGE) | (1u << K_MAILBOXES);

enum { M_ADDRESS, M_METHOD, M_VALIDATED_AT, M_REFERENCE, K_MAILBOX_N };
static const char *const mailbox_keys[K_MAILBOX_N] = {"address", "method", "validated_at",
                                                      "reference"};

/* Finds the index of k in names; -1 when unknown or not a str. */
static int key_index(const msgpack_object *k, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (key_eq(k, names[i]))
            return i;
    return -1;
}

/* Reports a map key that is unknown, repeated or not a str, under prefix ("" at top level). */
static mc_err bad_key(const msgpack_object *k, const char *prefix, int dup, mc_errdetail *err)
{
    char path[MC_ERR_FIELD_MAX], shown[48];
    if (k->type != MSGPACK_OBJECT_STR) {
        snprintf(path, sizeof path, "%s", prefix);
        return mc_err_set(err, MC_ERR_INVALID, path, "orders.md keys",
                          "map keys must be str, got %s", type_name(k));
    }
    show(k->via.str.ptr, k->via.str.size, shown, sizeof shown);
    snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "." : "", shown);
    if (dup)
        return mc_err_set(err, MC_ERR_INVALID, path, "orders.md duplicate-key",
                          "key \"%s\" appears more than once", shown);
    return mc_err_set(err, MC_ERR_INVALID, path, "orders.md unknown-key", "unknown field \"%s\"",
                      shown);
}

/* idn: the order's buffer for this mailbox, used when the domain is converted to A-labels. */
static mc_err decode_mailbox(const msgpack_object *v, size_t idx, mc_mailbox *mb, char *idn,
                             mc_errdetail *err)
{
    char prefix[24], path[MC_ERR_FIELD_MAX];
    mc_err_field_index(prefix, sizeof prefix, "mailboxes", idx);
    if (v->type != MSGPACK_OBJECT_MAP)
        return mc_err_set(err, MC_ERR_INVALID, prefix, "orders.md mailboxes",
                          "each mailbox must be a map, got %s", type_name(v));
    unsigned seen = 0;
    mc_err e;
    for (uint32_t i = 0; i < v->via.map.size; i++) {
        const msgpack_object *k = &v->via.map.ptr[i].key, *val = &v->via.map.ptr[i].val;
        int ki = key_index(k, mailbox_keys, K_MAILBOX_N);
        if (ki < 0 || (seen & (1u << ki)))
            return bad_key(k, prefix, ki >= 0, err);
        seen |= 1u << ki;
        mc_err_field(path, sizeof path, prefix, mailbox_keys[ki]);
        switch (ki) {
        case M_ADDRESS: {
            if (val->type != MSGPACK_OBJECT_STR)
                return mc_err_set(err, MC_ERR_INVALID, path, "orders.md mailboxes.address",
                                  "must be a str, got %s", type_name(val));
            int converted = 0;
            e = mailbox_check(val->via.str.ptr, val->via.str.size, path, idn, MC_MAILBOX_MAX + 1,
                              &mb->address.len, 0, &converted, err);
            if (e)
                return e;
            /* The address as given when its domain is ASCII (no copy), else the order's own
             * A-label copy (SBR 7.1.4.2.1). */
            mb->address.p = converted ? idn : val->via.str.ptr;
            break;
        }
        case M_METHOD: {
            /* SBR 3.2.2: the mailbox was validated by one of 3.2.2.1 - 3.2.2.4. */
            static const char *const methods[] = {"3.2.2.1", "3.2.2.2", "3.2.2.3", "3.2.2.4"};
            static const mc_vmethod vm[] = {MC_VM_DOMAIN, MC_VM_EMAIL, MC_VM_SMTP, MC_VM_ACME};
            if (val->type != MSGPACK_OBJECT_STR)
                return mc_err_set(err, MC_ERR_INVALID, path, R_METHOD, "must be a str, got %s",
                                  type_name(val));
            mb->method = 0;
            for (size_t m = 0; m < 4; m++)
                if (key_eq(val, methods[m]))
                    mb->method = vm[m];
            if (!mb->method) {
                char shown[48];
                return mc_err_set(err, MC_ERR_INVALID, path, R_METHOD,
                                  "\"%s\" is not a validation method; allowed: 3.2.2.1, "
                                  "3.2.2.2, 3.2.2.3, 3.2.2.4",
                                  show(val->via.str.ptr, val->via.str.size, shown, sizeof shown));
            }
            break;
        }
        case M_VALIDATED_AT:
            if (val->type != MSGPACK_OBJECT_POSITIVE_INTEGER &&
                val->type != MSGPACK_OBJECT_NEGATIVE_INTEGER)
                return mc_err_set(err, MC_ERR_INVALID, path, "orders.md mailboxes.validated_at",
                                  "must be an integer (Unix seconds), got %s", type_name(val));
            if (val->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
                return mc_err_set(err, MC_ERR_INVALID, path, "orders.md mailboxes.validated_at",
                                  "must be a positive number of Unix seconds, got %lld",
                                  (long long)val->via.i64);
            if (val->via.u64 == 0 || val->via.u64 > INT64_MAX)
                return mc_err_set(err, MC_ERR_INVALID, path, "orders.md mailboxes.validated_at",
                                  "must be a positive number of Unix seconds below 2^63, got %llu",
                                  (unsigned long long)val->via.u64);
            mb->validated_at = (int64_t)val->via.u64;
            break;
        case M_REFERENCE:
            e = get_text(val, path, "orders.md mailboxes.reference", 1, MC_ORDER_REFERENCE_MAX, 1,
                         &mb->reference, err);
            if (e)
                return e;
            break;
        }
    }
    for (int ki = 0; ki < K_MAILBOX_N; ki++)
        if (!(seen & (1u << ki))) {
            mc_err_field(path, sizeof path, prefix, mailbox_keys[ki]);
            return mc_err_set(err, MC_ERR_INVALID, path, "orders.md required",
                              "required field is missing");
        }
    return MC_OK;
}

/* Same mailbox: exact local part, domain compared without regard to ASCII case (RFC 5321 2.4;
 * the domain is ASCII once mc_mailbox_check passed). */
static int same_mailbox(const mc_str *a, const mc_str *b)
{
    const char *aa = memchr(a->p, '@', a->len), *ba = memchr(b->p, '@', b->len);
    size_t al = (size_t)(aa - a->p), bl = (size_t)(ba - b->p);
    if (al != bl || a->len != b->len || memcmp(a->p, b->p, al) != 0)
        return 0;
    return strncasecmp(aa, ba, a->len - al) == 0;
}

static mc_err decode_mailboxes(const msgpack_object *v, mc_order *out, mc_errdetail *err)
{
    if (v->type != MSGPACK_OBJECT_ARRAY)
        return mc_err_set(err, MC_ERR_INVALID, "mailboxes", "orders.md mailboxes",
                          "must be an array of maps, got %s", type_name(v));
    size_t n = v->via.array.size;
    if (n < 1 || n > MC_ORDER_MAILBOXES_MAX)
        return mc_err_set(err, MC_ERR_INVALID, "mailboxes", "orders.md mailboxes",
                          "has %zu entries, allowed 1..%d", n, MC_ORDER_MAILBOXES_MAX);
    for (size_t i = 0; i < n; i++) {
        mc_err e = decode_mailbox(&v->via.array.ptr[i], i, &out->mailboxes[i], out->idn[i], err);
        if (e)
            return e;
        for (size_t j = 0; j < i; j++)
            if (same_mailbox(&out->mailboxes[j].address, &out->mailboxes[i].address)) {
                char path[MC_ERR_FIELD_MAX], shown[96];
                snprintf(path, sizeof path, "mailboxes[%zu].address", i);
                return mc_err_set(err, MC_ERR_INVALID, path, "orders.md duplicate-mailbox",
                                  "%s is the same mailbox as mailboxes[%zu]",
                                  show(out->mailboxes[i].address.p, out->mailboxes[i].address.len,
                                       shown, sizeof shown),
                                  j);
            }
    }
    out->n_mailboxes = n;
    return MC_OK;
}

/* ---- subject attributes (SBR 7.1.4.2.2) ---- */

static const uint8_t OID_AT_C[] = {0x55, 0x04, 0x06}, OID_AT_ST[] = {0x55, 0x04, 0x08},
                     OID_AT_L[] = {0x55, 0x04, 0x07}, OID_AT_STREET[] = {0x55, 0x04, 0x09},
                     OID_AT_POSTAL[] = {0x55, 0x04, 0x11}, OID_AT_O[] = {0x55, 0x04, 0x0a},
                     OID_AT_OU[] = {0x55, 0x04, 0x0b}, OID_AT_ORGID[] = {0x55, 0x04, 0x61},
                     OID_AT_TITLE[] = {0x55, 0x04, 0x0c}, OID_AT_SN[] = {0x55, 0x04, 0x04},
                     OID_AT_GN[] = {0x55, 0x04, 0x2a}, OID_AT_PSEUDO[] = {0x55, 0x04, 0x41},
                     OID_AT_SERIAL[] = {0x55, 0x04, 0x05};

/* Upper bounds: RFC 5280 Appendix A, X.520 for streetAddress and postalCode. givenName and
 * surname (ub-name 32768) and organizationIdentifier (unbounded) get mailca's own limits
 * (docs/orders.md), so a whole TBS always fits its buffer. */
static const mc_subj_attr_info subj_attrs[MC_SA_COUNT] = {
    [MC_SA_COUNTRY] = {"country", "countryName", OID_AT_C, 3, 2, 1},
    [MC_SA_STATE] = {"state", "stateOrProvinceName", OID_AT_ST, 3, 128, 0},
    [MC_SA_LOCALITY] = {"locality", "localityName", OID_AT_L, 3, 128, 0},
    [MC_SA_STREET] = {"street", "streetAddress", OID_AT_STREET, 3, 128, 0},
    [MC_SA_POSTAL_CODE] = {"postal_code", "postalCode", OID_AT_POSTAL, 3, 40, 0},
    [MC_SA_ORGANIZATION] = {"organization_name", "organizationName", OID_AT_O, 3, 64, 0},
    [MC_SA_ORG_UNIT] = {"organizational_unit", "organizationalUnitName", OID_AT_OU, 3, 64, 0},
    [MC_SA_ORG_IDENTIFIER] = {"organization_identifier", "organizationIdentifier", OID_AT_ORGID, 3,
                              64, 0},
    [MC_SA_TITLE] = {"title", "title", OID_AT_TITLE, 3, 64, 0},
    [MC_SA_SURNAME] = {"surname", "surname", OID_AT_SN, 3, 64, 0},
    [MC_SA_GIVEN_NAME] = {"given_name", "givenName", OID_AT_GN, 3, 64, 0},
    [MC_SA_PSEUDONYM] = {"pseudonym", "pseudonym", OID_AT_PSEUDO, 3, 128, 0},
    [MC_SA_SERIAL_NUMBER] = {"serial_number", "serialNumber", OID_AT_SERIAL, 3, 64, 1},
};

const mc_subj_attr_info *mc_subj_attr_get(mc_subj_attr a)
{
    return (int)a >= 0 && a < MC_SA_COUNT ? &subj_attrs[a] : NULL;
}

const char *mc_cn_source_name(mc_cn_source c)
{
    static const char *const names[] = {
        [MC_CN_NONE] = "none",
        [MC_CN_MAILBOX] = "mailbox",
        [MC_CN_ORGANIZATION] = "organization-name",
        [MC_CN_PERSONAL_NAME] = "personal-name",
        [MC_CN_PSEUDONYM] = "pseudonym",
    };
    return c > MC_CN_DEFAULT && c <= MC_CN_PSEUDONYM ? names[c] : NULL;
}

/* ISO 3166-1 alpha-2, officially assigned codes (iso-codes 4.15), sorted. */
static const char iso3166[] =
    "ADAEAFAGAIALAMAOAQARASATAUAWAXAZBABBBDBEBFBGBHBIBJBLBMBNBOBQBRBSBTBVBWBYBZCACCCD"
    "CFCGCHCICKCLCMCNCOCRCUCVCWCXCYCZDEDJDKDMDODZECEEEGEHERESETFIFJFKFMFOFRGAGBGDGEGF"
    "GGGHGIGLGMGNGPGQGRGSGTGUGWGYHKHMHNHRHTHUIDIEILIMINIOIQIRISITJEJMJOJPKEKGKHKIKMKN"
    "KPKRKWKYKZLALBLCLILKLRLSLTLULVLYMAMCMDMEMFMGMHMKMLMMMNMOMPMQMRMSMTMUMVMWMXMYMZNA"
    "NCNENFNGNINLNONPNRNUNZOMPAPEPFPGPHPKPLPMPNPRPSPTPWPYQARERORSRURWSASBSCSDSESGSHSI"
    "SJSKSLSMSNSOSRSSSTSVSXSYSZTCTDTFTGTHTJTKTLTMTNTOTRTTTVTWTZUAUGUMUSUYUZVAVCVEVGVI"
    "VNVUWFWSYEYTZAZMZW";

int mc_country_code_valid(const char *p, size_t len)
{
    if (len != 2 || p[0] < 'A' || p[0] > 'Z' || p[1] < 'A' || p[1] > 'Z')
        return 0;
    if (p[0] == 'X' && p[1] == 'X') /* SBR 7.1.4.2.2(n): no official code */
        return 1;
    for (size_t i = 0; i + 1 < sizeof iso3166; i += 2)
        if (iso3166[i] == p[0] && iso3166[i + 1] == p[1])
            return 1;
    return 0;
}

int mc_lei_valid(const char *p, size_t len)
{
    if (len != 20)
        return 0;
    /* ISO 7064 MOD 97-10 over the digits, letters as 10..35: the remainder must be 1. */
    unsigned r = 0;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (c >= '0' && c <= '9')
            r = (r * 10 + (unsigned)(c - '0')) % 97;
        else if (c >= 'A' && c <= 'Z' && i < 18)
            r = (r * 100 + (unsigned)(c - 'A' + 10)) % 97;
        else
            return 0;
    }
    return r == 1;
}

static int upper_alnum(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

#define ORGID_WHY(...)                                                                             \
    do {                                                                                           \
        if (why)                                                                                   \
            snprintf(why, whylen, __VA_ARGS__);                                                    \
    } while (0)

int mc_org_identifier_check(const char *p, size_t len, const char *country, size_t country_len,
                            char *why, size_t whylen)
{
    if (why && whylen)
        why[0] = '\0';
    if (len < 5) {
        ORGID_WHY("is shorter than a scheme and a country (e.g. NTRGB-12345678)");
        return 1;
    }
    static const char *const schemes[] = {"NTR", "VAT", "PSD", "LEI", "GOV", "INT"};
    int sch = -1;
    for (int i = 0; i < 6; i++)
        if (memcmp(p, schemes[i], 3) == 0)
            sch = i;
    if (sch < 0) {
        ORGID_WHY("scheme '%.3s' is not NTR, VAT, PSD, LEI, GOV or INT", p);
        return 1;
    }
    const char *cc = p + 3;
    int is_lei = sch == 3, is_gov = sch == 4, is_int = sch == 5, is_vat = sch == 1;
    int art215 = is_vat && ((cc[0] == 'E' && cc[1] == 'L') || (cc[0] == 'X' && cc[1] == 'I'));
    if ((is_lei || is_int)
            ? (cc[0] != 'X' || cc[1] != 'G')
            : (!art215 && (!mc_country_code_valid(cc, 2) || (cc[0] == 'X' && cc[1] == 'X')))) {
        ORGID_WHY("country '%.2s' is not %s", cc,
                  (is_lei || is_int) ? "XG (required for LEI and INT)" : "an ISO 3166-1 code");
        return 1;
    }
    size_t i = 5;
    if (i < len && p[i] == '+') {
        /* ISO 3166-2 subdivision: 1..3 letters or digits, for country-level schemes only */
        size_t n = 0;
        while (i + 1 + n < len && upper_alnum(p[i + 1 + n]))
            n++;
        if (is_lei || is_int || n < 1 || n > 3) {
            ORGID_WHY("subdivision after '+' must be 1..3 upper-case letters or digits%s",
                      (is_lei || is_int) ? " and is not allowed for LEI or INT" : "");
            return 1;
        }
        i += 1 + n;
    }
    if (is_gov || is_int) {
        /* Note 2: GOVcc[+sub] and INTXG carry no Registration Reference */
        if (i != len) {
            ORGID_WHY("scheme %s takes no registration reference", schemes[sch]);
            return 1;
        }
    } else {
        if (i >= len || p[i] != '-' || i + 1 == len) {
            ORGID_WHY("needs '-' and a registration reference after %.*s", (int)i, p);
            return 1;
        }
        const char *ref = p + i + 1;
        size_t rl = len - i - 1;
        for (size_t k = 0; k < rl; k++)
            if ((unsigned char)ref[k] <= 0x20 || (unsigned char)ref[k] == 0x7f) {
                ORGID_WHY("registration reference has a space or control character");
                return 1;
            }
        if (is_lei && !mc_lei_valid(ref, rl)) {
            ORGID_WHY("reference is not a 20-character LEI with valid check digits (ISO 17442)");
            return 1;
        }
    }
    /* Note 1: the country must match countryName, except for LEI and INT; an Article 215 VAT
     * prefix stands for its ISO code. */
    if (country && country_len == 2 && !is_lei && !is_int) {
        char c0 = cc[0], c1 = cc[1];
        if (art215 && c0 == 'E') {
            c0 = 'G';
            c1 = 'R';
        } else if (art215) {
            c0 = 'G';
            c1 = 'B';
        }
        if (c0 != country[0] || c1 != country[1]) {
            ORGID_WHY("country %.2s does not match countryName %.2s", cc, country);
            return 2;
        }
    }
    return 0;
}

/* A value that only says "absent" (SBR 7.1.4.2): filler characters or an n/a-style word. */
static int placeholder_value(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && p[i] && strchr(" .-_/\\*?", p[i]))
        i++;
    if (i == n)
        return 1;
    static const char *const words[] = {"n/a",     "na",  "none",  "null",          "nil",
                                        "unknown", "tbd", "-n/a-", "not applicable"};
    for (size_t w = 0; w < sizeof words / sizeof words[0]; w++)
        if (strlen(words[w]) == n && strncasecmp(p, words[w], n) == 0)
            return 1;
    return 0;
}

static int printable_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c && strchr(" '()+,-./:=?", c) != NULL);
}

static size_t utf8_chars(const char *p, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)p[i] & 0xc0) != 0x80;
    return c;
}

int mc_lei_role_valid(const char *p, size_t len)
{
    if (!p || len < 1 || len > MC_LEI_ROLE_MAX)
        return 0;
    int nonspace = 0;
    for (size_t i = 0; i < len; i++) {
        if (!printable_char((unsigned char)p[i]))
            return 0;
        nonspace |= p[i] != ' ';
    }
    return nonspace;
}

enum { L_VALUE, L_REG_STATUS, L_ENT_STATUS, L_VSOURCES, L_VERIFIED_AT, L_REFERENCE, K_LEI_N };
static const char *const lei_keys[K_LEI_N] = {"value",         "registration_status",
                                              "entity_status", "validation_sources",
                                              "verified_at",   "reference"};
/* SBR 7.1.2.3(l) and 3.2.3.2.1: the only GLEIF record states an LEI may be used with. */
static const char *const lei_status_ok[K_LEI_N] = {NULL, "ISSUED", "ACTIVE", "FULLY_CORROBORATED"};
#define R_LEI "SBR 7.1.2.3(l)"

/* "lei" (role 0) or "lei_role" (role 1): a map of what the CA verified (docs/orders.md "lei").
 * The LEI needs the three GLEIF states; the role carries only value, verified_at and reference
 * (its LEI's record is the one in "lei"). */
static mc_err decode_lei(const msgpack_object *v, int role, mc_lei *out, mc_errdetail *err)
{
    const char *prefix = role ? "lei_role" : "lei";
    char path[MC_ERR_FIELD_MAX], shown[112];
    if (v->type != MSGPACK_OBJECT_MAP)
        return mc_err_set(err, MC_ERR_INVALID, prefix, "orders.md lei", "must be a map, got %s",
                          type_name(v));
    unsigned seen = 0;
    mc_err e;
    for (uint32_t i = 0; i < v->via.map.size; i++) {
        const msgpack_object *k = &v->via.map.ptr[i].key, *val = &v->via.map.ptr[i].val;
        int ki = key_index(k, lei_keys, K_LEI_N);
        if (role && ki >= L_REG_STATUS && ki <= L_VSOURCES)
            ki = -1; /* the role has no GLEIF record of its own */
        if (ki < 0 || (seen & (1u << ki)))
            return bad_key(k, prefix, ki >= 0, err);
        seen |= 1u << ki;
        mc_err_field(path, sizeof path, prefix, lei_keys[ki]);
        switch (ki) {
        case L_VALUE:
            if (val->type != MSGPACK_OBJECT_STR)
                return mc_err_set(err, MC_ERR_INVALID, path, R_LEI, "must be a str, got %s",
                                  type_name(val));
            show(val->via.str.ptr, val->via.str.size, shown, sizeof shown);
            /* SBR 7.1.2.3(l): ISO 17442-1 Clause 6 LEI; ISO 17442-2 Clause 4 role */
            if (!role && !mc_lei_valid(val->via.str.ptr, val->via.str.size))
                return mc_err_set(err, MC_ERR_INVALID, path, R_LEI,
                                  "\"%s\" is not a 20-character LEI with valid check digits "
                                  "(ISO 17442)",
                                  shown);
            if (role && !mc_lei_role_valid(val->via.str.ptr, val->via.str.size))
                return mc_err_set(err, MC_ERR_INVALID, path, R_LEI,
                                  "\"%s\" is not 1..%d PrintableString characters (ISO 17442-2)",
                                  shown, MC_LEI_ROLE_MAX);
            out->value = (mc_str){val->via.str.ptr, val->via.str.size};
            break;
        case L_REG_STATUS:
        case L_ENT_STATUS:
        case L_VSOURCES:
            /* SBR 7.1.2.3(l): RegistrationStatus ISSUED, EntityStatus ACTIVE, ValidationSources
             * FULLY_CORROBORATED; anything else (PARTIALLY_CORROBORATED, PENDING, LAPSED, ...)
             * means the LEI SHALL NOT be used. */
            if (val->type != MSGPACK_OBJECT_STR)
                return mc_err_set(err, MC_ERR_INVALID, path, R_LEI, "must be a str, got %s",
                                  type_name(val));
            if (!key_eq(val, lei_status_ok[ki]))
                return mc_err_set(err, MC_ERR_INVALID, path, R_LEI,
                                  "GLEIF %s is \"%s\"; an LEI may be used only when it is %s",
                                  lei_keys[ki],
                                  show(val->via.str.ptr, val->via.str.size, shown, sizeof shown),
                                  lei_status_ok[ki]);
            break;
        case L_VERIFIED_AT:
            if (val->type != MSGPACK_OBJECT_POSITIVE_INTEGER || val->via.u64 == 0 ||
                val->via.u64 > INT64_MAX)
                return mc_err_set(err, MC_ERR_INVALID, path, "orders.md lei",
                                  "must be a positive number of Unix seconds below 2^63, got %s",
                                  type_name(val));
            out->verified_at = (int64_t)val->via.u64;
            break;
        case L_REFERENCE:
            e = get_text(val, path, "orders.md lei", 1, MC_ORDER_REFERENCE_MAX, 1, &out->reference,
                         err);
            if (e)
                return e;
            break;
        }
    }
    for (int ki = 0; ki < K_LEI_N; ki++) {
        if (role && ki >= L_REG_STATUS && ki <= L_VSOURCES)
            continue;
        if (!(seen & (1u << ki))) {
            snprintf(path, sizeof path, "%s.%s", prefix, lei_keys[ki]);
            /* SBR 7.1.2.3(l): without the three states the CA has not shown the record fits */
            return mc_err_set(err, MC_ERR_INVALID, path,
                              ki >= L_REG_STATUS && ki <= L_VSOURCES ? R_LEI : "orders.md required",
                              "required field is missing");
        }
    }
    return MC_OK;
}

/* "identity": the completed validations of the subject's identity, each a map of validated_at
 * and reference (docs/orders.md "Identity validation"). Which ones a profile needs is checked at
 * issuance (mc_evidence_check_identity), not here. */
enum { I_ORG, I_INDIVIDUAL, K_IDENTITY_N };
static const char *const identity_keys[K_IDENTITY_N] = {"organization", "individual"};
enum { IE_VALIDATED_AT, IE_REFERENCE, K_IDEV_N };
static const char *const idev_keys[K_IDEV_N] = {"validated_at", "reference"};
#define R_IDENTITY "orders.md identity"

static mc_err decode_identity_evidence(const msgpack_object *v, const char *prefix,
                                       mc_identity_evidence *out, mc_errdetail *err)
{
    char path[MC_ERR_FIELD_MAX];
    if (v->type != MSGPACK_OBJECT_MAP)
        return mc_err_set(err, MC_ERR_INVALID, prefix, R_IDENTITY, "must be a map, got %s",
                          type_name(v));
    unsigned seen = 0;
    for (uint32_t i = 0; i < v->via.map.size; i++) {
        const msgpack_object *k = &v->via.map.ptr[i].key, *val = &v->via.map.ptr[i].val;
        int ki = key_index(k, idev_keys, K_IDEV_N);
        if (ki < 0 || (seen & (1u << ki)))
            return bad_key(k, prefix, ki >= 0, err);
        seen |= 1u << ki;
        mc_err_field(path, sizeof path, prefix, idev_keys[ki]);
        if (ki == IE_VALIDATED_AT) {
            if (val->type != MSGPACK_OBJECT_POSITIVE_INTEGER || val->via.u64 == 0 ||
                val->via.u64 > INT64_MAX)
                return mc_err_set(err, MC_ERR_INVALID, path, R_IDENTITY,
                                  "must be a positive number of Unix seconds below 2^63, got %s",
                                  type_name(val));
            out->validated_at = (int64_t)val->via.u64;
        } else {
            mc_err e =
                get_text(val, path, R_IDENTITY, 1, MC_ORDER_REFERENCE_MAX, 1, &out->reference, err);
            if (e)
                return e;
        }
    }
    for (int ki = 0; ki < K_IDEV_N; ki++)
        if (!(seen & (1u << ki))) {
            mc_err_field(path, sizeof path, prefix, idev_keys[ki]);
            return mc_err_set(err, MC_ERR_INVALID, path, "orders.md required",
                              "required field is missing");
        }
    return MC_OK;
}

static mc_err decode_identity(const msgpack_object *v, mc_order *out, mc_errdetail *err)
{
    char path[MC_ERR_FIELD_MAX];
    if (v->type != MSGPACK_OBJECT_MAP)
        return mc_err_set(err, MC_ERR_INVALID, "identity", R_IDENTITY, "must be a map, got %s",
                          type_name(v));
    if (v->via.map.size == 0)
        return mc_err_set(err, MC_ERR_INVALID, "identity", R_IDENTITY,
                          "is empty: leave it out when no identity was validated");
    unsigned seen = 0;
    for (uint32_t i = 0; i < v->via.map.size; i++) {
        const msgpack_object *k = &v->via.map.ptr[i].key;
        int ki = key_index(k, identity_keys, K_IDENTITY_N);
        if (ki < 0 || (seen & (1u << ki)))
            return bad_key(k, "identity", ki >= 0, err);
        seen |= 1u << ki;
        mc_err_field(path, sizeof path, "identity", identity_keys[ki]);
        mc_err e = decode_identity_evidence(&v->via.map.ptr[i].val, path,
                                            ki == I_ORG ? &out->id_org : &out->id_individual, err);
        if (e)
            return e;
    }
    return MC_OK;
}

static mc_err decode_subject(const msgpack_object *v, mc_subject *s, mc_errdetail *err)
{
    if (v->type != MSGPACK_OBJECT_MAP)
        return mc_err_set(err, MC_ERR_INVALID, "subject", "orders.md subject",
                          "must be a map, got %s", type_name(v));
    unsigned seen = 0;
    char path[MC_ERR_FIELD_MAX], shown[96];
    for (uint32_t i = 0; i < v->via.map.size; i++) {
        const msgpack_object *k = &v->via.map.ptr[i].key, *val = &v->via.map.ptr[i].val;
        int ki = -1;
        for (int a = 0; a < MC_SA_COUNT; a++)
            if (key_eq(k, subj_attrs[a].key))
                ki = a;
        if (key_eq(k, "common_name"))
            ki = MC_SA_COUNT;
        if (ki < 0 || (seen & (1u << ki)))
            return bad_key(k, "subject", ki >= 0, err);
        seen |= 1u << ki;
        if (ki == MC_SA_COUNT) {
            if (val->type != MSGPACK_OBJECT_STR)
                return mc_err_set(err, MC_ERR_INVALID, "subject.common_name",
                                  "orders.md subject.common_name", "must be a str, got %s",
                                  type_name(val));
            for (int c = MC_CN_NONE; c <= MC_CN_PSEUDONYM; c++)
                if (key_eq(val, mc_cn_source_name((mc_cn_source)c)))
                    s->cn = (mc_cn_source)c;
            if (s->cn == MC_CN_DEFAULT)
                return mc_err_set(err, MC_ERR_INVALID, "subject.common_name",
                                  "orders.md subject.common_name",
                                  "\"%s\" is not one of none, mailbox, organization-name, "
                                  "personal-name, pseudonym",
                                  show(val->via.str.ptr, val->via.str.size, shown, sizeof shown));
            continue;
        }
        const mc_subj_attr_info *a = &subj_attrs[ki];
        mc_err_field(path, sizeof path, "subject", a->key);
        mc_str t;
        /* UTF-8 text without control characters, at most 4 bytes a character */
        mc_err e = get_text(val, path, "orders.md subject", 1, a->max_chars * 4, 1, &t, err);
        if (e)
            return e;
        size_t chars = utf8_chars(t.p, t.len);
        /* RFC 5280 Appendix A upper bounds (SBR 7.1.4.2.2(a) Note, 7.1.4) */
        if (chars > a->max_chars)
            return mc_err_set(err, MC_ERR_INVALID, path, "RFC 5280 App. A",
                              "is %zu characters, the upper bound of %s is %zu", chars, a->name,
                              a->max_chars);
        if (a->printable)
            for (size_t j = 0; j < t.len; j++)
                if (!printable_char((unsigned char)t.p[j]))
                    return mc_err_set(err, MC_ERR_INVALID, path, "SBR 7.1.4",
                                      "%s is a PrintableString: byte %zu (0x%02x) is not allowed",
                                      a->name, j, (unsigned char)t.p[j]);
        /* SBR 7.1.4.2: no attribute holding only metadata or "not applicable" */
        if (placeholder_value(t.p, t.len))
            return mc_err_set(err, MC_ERR_INVALID, path, "SBR 7.1.4.2",
                              "\"%s\" only says the value is absent or not applicable",
                              show(t.p, t.len, shown, sizeof shown));
        /* SBR 7.1.4.2.2(n) */
        if (ki == MC_SA_COUNTRY && !mc_country_code_valid(t.p, t.len))
            return mc_err_set(err, MC_ERR_INVALID, path, "SBR 7.1.4.2.2(n)",
                              "\"%s\" is not an upper-case ISO 3166-1 alpha-2 code or XX",
                              show(t.p, t.len, shown, sizeof shown));
        s->attr[ki] = t;
    }
    /* SBR 7.1.4.2.2(d): format, and Note 1 (country match), once countryName is known */
    const mc_str *oi = &s->attr[MC_SA_ORG_IDENTIFIER], *c = &s->attr[MC_SA_COUNTRY];
    if (oi->len) {
        char why[160];
        int r =
            mc_org_identifier_check(oi->p, oi->len, c->len ? c->p : NULL, c->len, why, sizeof why);
        if (r)
            return mc_err_set(err, MC_ERR_INVALID, "subject.organization_identifier",
                              r == 2 ? "SBR 7.1.4.2.2(d) Note 1" : "SBR 7.1.4.2.2(d)", "\"%s\" %s",
                              show(oi->p, oi->len, shown, sizeof shown), why);
    }
    return MC_OK;
}

mc_err mc_order_decode(const msgpack_object *obj, mc_order *out, mc_errdetail *err)
{
    memset(out, 0, offsetof(mc_order, idn)); /* idn is written only where used */
    mc_err_clear(err);
    if (!obj || obj->type != MSGPACK_OBJECT_MAP)
        return mc_err_set(err, MC_ERR_INVALID, "", "orders.md order",
                          "an order must be a msgpack map, got %s", obj ? type_name(obj) : "none");
    const msgpack_object_map *m = &obj->via.map;

    /* Read the id first so that any rejection below can carry it. */
    for (uint32_t i = 0; i < m->size; i++)
        if (key_eq(&m->ptr[i].key, "id")) {
            if (get_id(&m->ptr[i].val, &out->id, NULL) != MC_OK)
                out->id = (mc_str){NULL, 0};
            break;
        }

    unsigned seen = 0;
    int id_bad = 0;
    mc_err e = MC_OK;
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object *k = &m->ptr[i].key, *v = &m->ptr[i].val;
        int ki = key_index(k, order_keys, K_ORDER_N);
        if (ki < 0 || (seen & (1u << ki))) {
            id_bad |= ki == K_ID;
            e = bad_key(k, "", ki >= 0, err);
            goto done;
        }
        seen |= 1u << ki;
        switch (ki) {
        case K_ID:
            e = get_id(v, &out->id, err);
            id_bad |= e != MC_OK;
            break;
        case K_ACCOUNT:
            e = get_text(v, "account", "orders.md account", 1, MC_ORDER_ACCOUNT_MAX, 1,
                         &out->account, err);
            break;
        case K_PROFILE:
            e = get_text(v, "profile", "orders.md profile", 1, MC_ORDER_PROFILE_MAX, 0,
                         &out->profile, err);
            for (size_t j = 0; !e && j < out->profile.len; j++) {
                unsigned char c = (unsigned char)out->profile.p[j];
                if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
                    e = mc_err_set(err, MC_ERR_INVALID, "profile", "orders.md profile",
                                   "may hold only a-z, 0-9 and '-', byte %zu is 0x%02x", j, c);
            }
            break;
        case K_USAGE:
            if (v->type != MSGPACK_OBJECT_STR)
                e = mc_err_set(err, MC_ERR_INVALID, "usage", "orders.md usage",
                               "must be a str, got %s", type_name(v));
            else if (key_eq(v, "signing"))
                out->usage = MC_USAGE_SIGNING;
            else if (key_eq(v, "key-management"))
                out->usage = MC_USAGE_KEYMGMT;
            else if (key_eq(v, "dual"))
                out->usage = MC_USAGE_DUAL;
            else {
                char shown[48];
                e = mc_err_set(err, MC_ERR_INVALID, "usage", "orders.md usage",
                               "\"%s\" is not one of signing, key-management, dual",
                               show(v->via.str.ptr, v->via.str.size, shown, sizeof shown));
            }
            break;
        case K_MAILBOXES:
            e = decode_mailboxes(v, out, err);
            break;
        case K_CSR:
            if (v->type != MSGPACK_OBJECT_BIN)
                e = mc_err_set(err, MC_ERR_INVALID, "csr", "orders.md csr",
                               "must be bin (PKCS#10 DER), got %s", type_name(v));
            else if (v->via.bin.size < 1 || v->via.bin.size > MC_ORDER_CSR_MAX)
                e = mc_err_set(err, MC_ERR_INVALID, "csr", "orders.md csr",
                               "is %u bytes long, allowed 1..%d", v->via.bin.size,
                               MC_ORDER_CSR_MAX);
            else {
                out->csr = (const uint8_t *)v->via.bin.ptr;
                out->csr_len = v->via.bin.size;
            }
            break;
        case K_PUBLIC_KEY:
            if (v->type != MSGPACK_OBJECT_BIN)
                e = mc_err_set(err, MC_ERR_INVALID, "public_key", "orders.md public_key",
                               "must be bin (SubjectPublicKeyInfo DER), got %s", type_name(v));
            else if (v->via.bin.size < 1 || v->via.bin.size > MC_ORDER_CSR_MAX)
                e = mc_err_set(err, MC_ERR_INVALID, "public_key", "orders.md public_key",
                               "is %u bytes long, allowed 1..%d", v->via.bin.size,
                               MC_ORDER_CSR_MAX);
            else {
                out->public_key = (const uint8_t *)v->via.bin.ptr;
                out->public_key_len = v->via.bin.size;
            }
            break;
        case K_KEY_SOURCE:
            e = get_text(v, "key_source", "orders.md key_source", 1, MC_ORDER_KEY_SOURCE_MAX, 0,
                         &out->key_source, err);
            break;
        case K_SUBJECT:
            e = decode_subject(v, &out->subject, err);
            break;
        case K_LEI:
            e = decode_lei(v, 0, &out->lei, err);
            break;
        case K_LEI_ROLE:
            e = decode_lei(v, 1, &out->lei_role, err);
            break;
        case K_IDENTITY:
            e = decode_identity(v, out, err);
            break;
        case K_REPLACES:
            /* Lower-case hex, byte for byte the form results use for serials. */
            e = get_text(v, "replaces", "orders.md replaces", 2, MC_ORDER_REPLACES_MAX, 0,
                         &out->replaces, err);
            if (!e && out->replaces.len % 2)
                e = mc_err_set(err, MC_ERR_INVALID, "replaces", "orders.md replaces",
                               "must have an even number of hex digits, has %zu",
                               out->replaces.len);
            for (size_t j = 0; !e && j < out->replaces.len; j++) {
                char c = out->replaces.p[j];
                if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
                    e = mc_err_set(err, MC_ERR_INVALID, "replaces", "orders.md replaces",
                                   "must be lower-case hex, byte %zu is 0x%02x", j,
                                   (unsigned char)c);
            }
            break;
        }
        if (e)
            goto done;
    }
    for (int ki = 0; ki < K_ORDER_N; ki++)
        if ((order_required & (1u << ki)) && !(seen & (1u << ki))) {
            e = mc_err_set(err, MC_ERR_INVALID, order_keys[ki], "orders.md required",
                           "required field is missing");
            goto done;
        }
    /* The key comes either as a CSR (proof of possession) or as a public key whose source the
     * account attests; never both, never neither. */
    if (!(seen & (1u << K_CSR)) == !(seen & (1u << K_PUBLIC_KEY))) {
        e = mc_err_set(err, MC_ERR_INVALID, (seen & (1u << K_CSR)) ? "public_key" : "csr",
                       "orders.md key", "exactly one of csr and public_key is required");
        goto done;
    }
    /* ISO 17442-2: the role is the subject's role in the legal entity the LEI names */
    if ((seen & (1u << K_LEI_ROLE)) && !(seen & (1u << K_LEI))) {
        e = mc_err_set(err, MC_ERR_INVALID, "lei_role", R_LEI,
                       "a role needs the legal entity's \"lei\"");
        goto done;
    }
    if (!(seen & (1u << K_PUBLIC_KEY)) != !(seen & (1u << K_KEY_SOURCE))) {
        e = mc_err_set(err, MC_ERR_INVALID, "key_source", "orders.md key_source",
                       (seen & (1u << K_PUBLIC_KEY)) ? "required with public_key"
                                                     : "only allowed with public_key");
        goto done;
    }
done:
    if (e) {
        /* Keep only the id, so that nobody uses a half-decoded order by mistake. */
        mc_str id = id_bad ? (mc_str){NULL, 0} : out->id;
        memset(out, 0, offsetof(mc_order, idn));
        out->id = id;
    }
    return e;
}

/* ---- CSR check ---- */

typedef enum { FAM_RSA, FAM_RSA_PSS, FAM_ECDSA, FAM_ED25519, FAM_ED448 } sig_family;

/* The signature algorithms accepted on a CSR (proof of possession only; the certificate's own
 * algorithms are the issuer's business). Contents of the OID, no tag/length. */
static const struct {
    uint8_t oid[10];
    size_t len;
    sig_family fam;
    const char *digest;
    const char *name;
} csr_sigalgs[] = {
    {{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02}, 8, FAM_ECDSA, "SHA256", "ecdsa-with-SHA256"},
    {{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03}, 8, FAM_ECDSA, "SHA384", "ecdsa-with-SHA384"},
    {{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04}, 8, FAM_ECDSA, "SHA512", "ecdsa-with-SHA512"},
    {{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b},
     9,
     FAM_RSA,
     "SHA256",
     "sha256WithRSAEncryption"},
    {{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c},
     9,
     FAM_RSA,
     "SHA384",
     "sha384WithRSAEncryption"},
    {{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d},
     9,
     FAM_RSA,
     "SHA512",
     "sha512WithRSAEncryption"},
    {{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a}, 9, FAM_RSA_PSS, NULL, "RSASSA-PSS"},
    /* RFC 8410 3: id-Ed25519 and id-Ed448 (PureEdDSA), parameters absent */
    {{0x2b, 0x65, 0x70}, 3, FAM_ED25519, NULL, "Ed25519"},
    {{0x2b, 0x65, 0x71}, 3, FAM_ED448, NULL, "Ed448"},
};

/* SHA-2 digest OIDs (2.16.840.1.101.3.4.2.1-3) for RSASSA-PSS parameters. */
static const char *sha2_from_algid(const mc_der_tlv *algid)
{
    static const uint8_t base[] = {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02};
    mc_der_cur c = mc_der_cur_in(algid);
    mc_der_tlv oid, nul;
    if (algid->tag != MC_DER_SEQUENCE || mc_der_expect(&c, MC_DER_OID, &oid))
        return NULL;
    if (mc_der_optional(&c, MC_DER_NULL, &nul) && nul.len != 0)
        return NULL;
    if (!mc_der_cur_empty(&c) || oid.len != sizeof base + 1 || memcmp(oid.val, base, sizeof base))
        return NULL;
    switch (oid.val[sizeof base]) {
    case 1:
        return "SHA256";
    case 2:
        return "SHA384";
    case 3:
        return "SHA512";
    }
    return NULL;
}

typedef struct pss_params {
    const char *digest, *mgf1_digest;
    int saltlen;
} pss_params;

/* RFC 4055 3.1 RSASSA-PSS-params, read from *params (which is advanced past them). The DEFAULTs
 * (SHA-1, MGF1 with SHA-1) are refused. */
static mc_err parse_pss(mc_der_cur *params, pss_params *pp, mc_errdetail *err)
{
    static const uint8_t mgf1[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08};
    mc_der_cur c = *params;
    mc_der_tlv seq, t, inner, oid, h;
    pp->digest = pp->mgf1_digest = NULL;
    pp->saltlen = 20;
    if (mc_der_expect(&c, MC_DER_SEQUENCE, &seq))
        return mc_err_set(err, MC_ERR_CSR, "csr", "RFC 4055 3.1",
                          "RSASSA-PSS signature algorithm without a parameter SEQUENCE");
    *params = c;
    mc_der_cur s = mc_der_cur_in(&seq);
    if (mc_der_optional(&s, MC_DER_CTX_CONS(0), &t)) {
        mc_der_cur x = mc_der_cur_in(&t);
        if (mc_der_expect(&x, MC_DER_SEQUENCE, &inner) || !mc_der_cur_empty(&x) ||
            !(pp->digest = sha2_from_algid(&inner)))
            return mc_err_set(err, MC_ERR_UNSUPPORTED, "csr", "RFC 4055 3.1",
                              "RSASSA-PSS hash must be SHA-256, SHA-384 or SHA-512");
    }
    if (mc_der_optional(&s, MC_DER_CTX_CONS(1), &t)) {
        mc_der_cur x = mc_der_cur_in(&t);
        if (mc_der_expect(&x, MC_DER_SEQUENCE, &inner) || !mc_der_cur_empty(&x))
            goto bad_mgf;
        mc_der_cur y = mc_der_cur_in(&inner);
        if (mc_der_expect(&y, MC_DER_OID, &oid) || !mc_der_oid_eq(&oid, mgf1, sizeof mgf1) ||
            mc_der_expect(&y, MC_DER_SEQUENCE, &h) || !mc_der_cur_empty(&y) ||
            !(pp->mgf1_digest = sha2_from_algid(&h)))
            goto bad_mgf;
    }
    if (mc_der_optional(&s, MC_DER_CTX_CONS(2), &t)) {
        mc_der_cur x = mc_der_cur_in(&t);
        int64_t v;
        if (mc_der_expect(&x, MC_DER_INTEGER, &inner) || !mc_der_cur_empty(&x) ||
            mc_der_int_i64(&inner, &v) || v > 1024)
            return mc_err_set(err, MC_ERR_CSR, "csr", "RFC 4055 3.1",
                              "RSASSA-PSS saltLength is not an INTEGER in 0..1024");
        pp->saltlen = (int)v;
    }
    if (mc_der_optional(&s, MC_DER_CTX_CONS(3), &t)) {
        mc_der_cur x = mc_der_cur_in(&t);
        int64_t v;
        if (mc_der_expect(&x, MC_DER_INTEGER, &inner) || !mc_der_cur_empty(&x) ||
            mc_der_int_i64(&inner, &v) || v != 1)
            return mc_err_set(err, MC_ERR_CSR, "csr", "RFC 4055 3.1",
                              "RSASSA-PSS trailerField must be 1");
    }
    if (!mc_der_cur_empty(&s))
        return mc_err_set(err, MC_ERR_CSR, "csr", "RFC 4055 3.1",
                          "RSASSA-PSS parameters are malformed");
    if (!pp->digest || !pp->mgf1_digest)
        return mc_err_set(err, MC_ERR_UNSUPPORTED, "csr", "RFC 4055 3.1",
                          "RSASSA-PSS with the default SHA-1 hash or MGF1-SHA-1 is not accepted");
    return MC_OK;
bad_mgf:
    return mc_err_set(err, MC_ERR_UNSUPPORTED, "csr", "RFC 4055 3.1",
                      "RSASSA-PSS mask generation must be MGF1 with SHA-256, SHA-384 or SHA-512");
}

/* Bits in a positive big-endian INTEGER's contents. */
static unsigned int_bits(const uint8_t *v, size_t len)
{
    while (len && v[0] == 0) {
        v++;
        len--;
    }
    if (!len)
        return 0;
    unsigned b = (unsigned)(len - 1) * 8;
    for (unsigned x = v[0]; x; x >>= 1)
        b++;
    return b;
}

/* RSAPublicKey (RFC 8017 A.1.1) inside the SPKI BIT STRING: SBR 6.1.5 size, SBR 6.1.6 exponent. */
static mc_err check_rsa(const uint8_t *key, size_t len, const char *field, mc_csr_ctx *cc,
                        unsigned *bits, mc_errdetail *err)
{
    mc_der_cur c = mc_der_cur_make(key, len), in;
    mc_der_tlv seq, n, e;
    if (mc_der_expect(&c, MC_DER_SEQUENCE, &seq) || !mc_der_cur_empty(&c))
        goto bad;
    in = mc_der_cur_in(&seq);
    if (mc_der_expect(&in, MC_DER_INTEGER, &n) || mc_der_expect(&in, MC_DER_INTEGER, &e) ||
        !mc_der_cur_empty(&in) || mc_der_int_check(n.val, n.len) ||
        mc_der_int_check(e.val, e.len) || (n.val[0] & 0x80) || (e.val[0] & 0x80))
        goto bad;
    unsigned nb = int_bits(n.val, n.len);
    /* SBR 6.1.5: at least 2048 bits and a multiple of 8. */
    if (nb < 2048)
        return mc_err_set(err, MC_ERR_INVALID, field, R_KEYSIZE,
                          "RSA modulus is %u bits, at least 2048 are required", nb);
    if (nb % 8)
        return mc_err_set(err, MC_ERR_INVALID, field, R_KEYSIZE,
                          "RSA modulus is %u bits, not a multiple of 8", nb);
    /* Not a BR rule: bounds the verification cost of one order. */
    if (nb > 8192)
        return mc_err_set(err, MC_ERR_UNSUPPORTED, field, "orders.md rsa-max",
                          "RSA modulus is %u bits, mailca accepts at most 8192", nb);
    /* SBR 6.1.6: the public exponent is odd and at least 3. */
    unsigned eb = int_bits(e.val, e.len);
    if (!(e.val[e.len - 1] & 1) || eb < 2)
        return mc_err_set(err, MC_ERR_INVALID, field, R_EXPONENT,
                          "RSA public exponent must be odd and at least 3 (its last byte is "
                          "0x%02x, %u bits)",
                          e.val[e.len - 1], eb);
    /* SBR 6.1.6 SHOULDs (exponent range, modulus without small factors) and SBR 6.1.1.3
     * (ROCA), rejections by mailca policy: include/mailca/keycheck.h. */
    mc_err kr = mc_keycheck_rsa(n.val, n.len, e.val, e.len, field, err);
    if (kr != MC_OK)
        return kr;
    /* SBR 6.1.1.3 item 5: known weak keys (Debian's), when the CA configured a list */
    if ((kr = mc_weakkeys_check_rsa(cc->weak, cc->md, n.val, n.len, field, err)) != MC_OK)
        return kr;
    *bits = nb;
    return MC_OK;
bad:
    return mc_err_set(err, MC_ERR_CSR, field, "RFC 8017 A.1.1",
                      "the RSA public key is not a DER RSAPublicKey with a positive modulus and "
                      "exponent");
}

mc_err mc_csr_ctx_init(mc_csr_ctx *cc, mc_errdetail *err)
{
    memset(cc, 0, sizeof *cc);
    cc->ec = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    cc->rsa = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    cc->ed25519 = EVP_PKEY_CTX_new_from_name(NULL, "ED25519", NULL);
    cc->ed448 = EVP_PKEY_CTX_new_from_name(NULL, "ED448", NULL);
    cc->md = EVP_MD_CTX_new();
    cc->bn = BN_CTX_new();
    static const int nids[3] = {NID_X9_62_prime256v1, NID_secp384r1, NID_secp521r1};
    int groups_ok = 1;
    for (int i = 0; i < 3; i++) {
        cc->group[i] = EC_GROUP_new_by_curve_name(nids[i]);
        cc->point[i] = cc->group[i] ? EC_POINT_new(cc->group[i]) : NULL;
        groups_ok &= cc->point[i] != NULL;
    }
    if (!cc->ec || !cc->rsa || !cc->ed25519 || !cc->ed448 || !cc->md || !cc->bn || !groups_ok) {
        mc_csr_ctx_free(cc);
        return mc_crypto_err(err, NULL, "EVP_PKEY_CTX_new_from_name");
    }
    mc_err e = mc_keycheck_ed_new(&cc->ed, err);
    if (e != MC_OK)
        mc_csr_ctx_free(cc);
    return e;
}

void mc_csr_ctx_free(mc_csr_ctx *cc)
{
    EVP_PKEY_CTX_free(cc->ec);
    EVP_PKEY_CTX_free(cc->rsa);
    EVP_PKEY_CTX_free(cc->ed25519);
    EVP_PKEY_CTX_free(cc->ed448);
    EVP_MD_CTX_free(cc->md);
    for (int i = 0; i < 3; i++) {
        EC_POINT_free(cc->point[i]);
        EC_GROUP_free(cc->group[i]);
    }
    BN_CTX_free(cc->bn);
    mc_keycheck_ed_free(cc->ed);
    memset(cc, 0, sizeof *cc);
}

/* Big-endian INTEGER contents (positive, checked by check_rsa) into the native-endian buffer
 * OSSL_PARAM_construct_BN expects. */
static size_t int_to_native(const uint8_t *v, size_t len, uint8_t *out, size_t cap)
{
    while (len > 1 && v[0] == 0) {
        v++;
        len--;
    }
    if (len > cap)
        return 0;
    for (size_t i = 0; i < len; i++)
        out[i] = v[len - 1 - i];
    return len;
}

/* Builds the EVP_PKEY of an SPKI whose algorithm and sizes were already checked. For EC the
 * import decodes the point and refuses one that is not on the curve. */
static EVP_PKEY *pkey_from_key(mc_csr_ctx *cc, mc_keytype kt, const uint8_t *key, size_t keylen)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM ps[3];
    EVP_PKEY_CTX *ctx;
    uint8_t n[1024], e[64];
    if (kt == MC_KEY_RSA) {
        mc_der_cur c = mc_der_cur_make(key, keylen), in;
        mc_der_tlv seq, nt, et;
        if (mc_der_expect(&c, MC_DER_SEQUENCE, &seq))
            return NULL;
        in = mc_der_cur_in(&seq);
        if (mc_der_expect(&in, MC_DER_INTEGER, &nt) || mc_der_expect(&in, MC_DER_INTEGER, &et))
            return NULL;
        size_t nl = int_to_native(nt.val, nt.len, n, sizeof n);
        size_t el = int_to_native(et.val, et.len, e, sizeof e);
        if (!nl || !el)
            return NULL;
        ps[0] = OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_RSA_N, n, nl);
        ps[1] = OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_RSA_E, e, el);
        ctx = cc->rsa;
    } else if (kt == MC_KEY_ED25519 || kt == MC_KEY_ED448) {
        ps[0] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)key, keylen);
        ps[1] = OSSL_PARAM_construct_end();
        ctx = kt == MC_KEY_ED25519 ? cc->ed25519 : cc->ed448;
    } else {
        const char *group = kt == MC_KEY_P256 ? "P-256" : kt == MC_KEY_P384 ? "P-384" : "P-521";
        ps[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0);
        ps[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)key, keylen);
        ctx = cc->ec;
    }
    ps[2] = OSSL_PARAM_construct_end();
    if (EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, ps) != 1) {
        EVP_PKEY_free(pkey);
        ERR_clear_error();
        return NULL;
    }
    return pkey;
}

/* The subject key, from a CSR or an order's public_key: byte-exact algorithm identifier
 * (SBR 7.1.3.1), size and exponent (SBR 6.1.5, 6.1.6), a valid point, and, when pkey_out is not
 * NULL, an EVP_PKEY for it (caller frees). Errors name field. */
static mc_err check_key(const mc_der_tlv *spki_tlv, const char *field, mc_csr_ctx *cc,
                        EVP_PKEY **pkey_out, mc_keytype *kt_out, unsigned *bits_out,
                        mc_errdetail *err)
{
    mc_err e = MC_OK;
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *kctx = NULL;
    mc_der_tlv spki = *spki_tlv, algid, keybits, t;
    mc_der_cur x;
    /* SubjectPublicKeyInfo: the AlgorithmIdentifier must be byte-exact (SBR 7.1.3.1). */
    x = mc_der_cur_in(&spki);
    if (mc_der_expect(&x, MC_DER_SEQUENCE, &algid) ||
        mc_der_expect(&x, MC_DER_BITSTRING, &keybits) || !mc_der_cur_empty(&x) || keybits.len < 2 ||
        keybits.val[0] != 0) {
        e = mc_err_set(err, MC_ERR_CSR, field, R_CSR, "subjectPKInfo is malformed");
        goto fail;
    }
    mc_keytype kt = mc_keytype_from_algid(algid.raw, algid.rawlen);
    if (kt == MC_KEY_NONE) {
        char oid[64] = "?", hex[2 * 24 + 4];
        mc_der_cur a = mc_der_cur_in(&algid);
        if (mc_der_expect(&a, MC_DER_OID, &t) == MC_OK)
            mc_der_oid_str(t.val, t.len, oid, sizeof oid);
        size_t n = algid.rawlen < 24 ? algid.rawlen : 24;
        for (size_t i = 0; i < n; i++)
            snprintf(hex + 2 * i, 3, "%02x", algid.raw[i]);
        if (algid.rawlen > n)
            strcpy(hex + 2 * n, "...");
        e = mc_err_set(err, MC_ERR_INVALID, field, R_SPKI,
                       "subject key algorithm %s (AlgorithmIdentifier %s) is not one of the "
                       "allowed encodings",
                       oid, hex);
        goto fail;
    }
    const uint8_t *key = keybits.val + 1;
    size_t keylen = keybits.len - 1;
    unsigned bits = 0;
    switch (kt) {
    case MC_KEY_RSA:
        if ((e = check_rsa(key, keylen, field, cc, &bits, err)))
            goto fail;
        break;
    case MC_KEY_P256:
    case MC_KEY_P384:
    case MC_KEY_P521:
        bits = kt == MC_KEY_P256 ? 256 : kt == MC_KEY_P384 ? 384 : 521;
        /* Uncompressed points only (RFC 5480 2.2 makes compressed ones optional). */
        if (keylen != 1 + 2 * ((bits + 7) / 8) || key[0] != 0x04) {
            e = mc_err_set(err, MC_ERR_INVALID, field, "RFC 5480 2.2",
                           "the %s public key must be an uncompressed point of %u bytes, got %zu "
                           "bytes starting 0x%02x",
                           mc_keytype_name(kt), 1 + 2 * ((bits + 7) / 8), keylen, key[0]);
            goto fail;
        }
        break;
    case MC_KEY_ED25519:
        bits = 256;
        if (keylen != 32) {
            e = mc_err_set(err, MC_ERR_INVALID, field, R_KEYSIZE,
                           "an Ed25519 public key is 32 bytes, got %zu", keylen);
            goto fail;
        }
        break;
    case MC_KEY_ED448:
        /* SBR 6.1.5: curve448 keys, as id-Ed448 (SBR 7.1.3.1.3); RFC 8032 5.2.2: 57 bytes. */
        bits = 448;
        if (keylen != 57) {
            e = mc_err_set(err, MC_ERR_INVALID, field, R_KEYSIZE,
                           "an Ed448 public key is 57 bytes, got %zu", keylen);
            goto fail;
        }
        break;
    default:
        e = mc_err_set(err, MC_ERR_UNSUPPORTED, field, R_SPKI,
                       "%s subject keys are allowed by the SBR but not supported by mailca",
                       mc_keytype_name(kt));
        goto fail;
    }

    if (kt == MC_KEY_ED25519 || kt == MC_KEY_ED448) {
        /* SBR 6.1.5: a valid point on curve25519 / curve448, decoded as RFC 8032 5.1.3 / 5.2.3
         * do; small-order points refused (SBR 6.1.1.3, mailca policy). OpenSSL 3.0 checks
         * neither on import nor in EVP_PKEY_public_check, and its Ed25519 verification accepts
         * such keys, so this runs for CSR keys too (include/mailca/keycheck.h). */
        if ((e = mc_keycheck_eddsa(cc->ed, kt, key, keylen, field, err)))
            goto fail;
    }
    if (!pkey_out) {
        /* No signature to verify: no EVP_PKEY (its import costs ~17 us, measured). RSA was
         * fully checked above, an EdDSA key decoded just above; an EC point is decoded and
         * validated on its curve: coordinates below p, on the curve, not the identity
         * (SP 800-56A rev3 5.6.2.3.4, complete for these cofactor-1 curves; SBR 6.1.5, 6.1.6). */
        if (kt != MC_KEY_RSA && kt != MC_KEY_ED25519 && kt != MC_KEY_ED448) {
            int g = kt == MC_KEY_P256 ? 0 : kt == MC_KEY_P384 ? 1 : 2;
            if (EC_POINT_oct2point(cc->group[g], cc->point[g], key, keylen, cc->bn) != 1 ||
                EC_POINT_is_at_infinity(cc->group[g], cc->point[g]) ||
                EC_POINT_is_on_curve(cc->group[g], cc->point[g], cc->bn) != 1) {
                ERR_clear_error();
                e = mc_err_set(err, MC_ERR_INVALID, field, R_KEYSIZE,
                               "the public key is not a valid point on %s", mc_keytype_name(kt));
                goto fail;
            }
        }
        *kt_out = kt;
        *bits_out = bits;
        return MC_OK;
    }
    pkey = pkey_from_key(cc, kt, key, keylen);
    if (!pkey) {
        ERR_clear_error();
        if (kt == MC_KEY_RSA || kt == MC_KEY_ED25519 || kt == MC_KEY_ED448)
            e = mc_err_set(err, MC_ERR_CSR, field, R_CSR, "OpenSSL cannot parse the %s public key",
                           mc_keytype_name(kt));
        else /* decoding an EC point checks that it lies on the curve */
            e = mc_err_set(err, MC_ERR_INVALID, field, R_KEYSIZE,
                           "the public key is not a valid point on %s", mc_keytype_name(kt));
        goto fail;
    }
    if (kt == MC_KEY_P256 || kt == MC_KEY_P384 || kt == MC_KEY_P521) {
        /* SBR 6.1.5 valid point; SBR 6.1.6 public key validation. P-256/384/521 have cofactor
         * 1, so the partial validation of SP 800-56A rev3 5.6.2.3.4 (coordinates in range, point
         * on the curve, not the identity) is as strong as the full one, whose extra n*Q check
         * costs a scalar multiplication (~50 us, measured). The import already refused points
         * off the curve; this is the second guard. */
        kctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        if (!kctx) {
            e = mc_crypto_err(err, field, "EVP_PKEY_CTX_new_from_pkey");
            goto fail;
        }
        if (EVP_PKEY_public_check_quick(kctx) != 1) {
            ERR_clear_error();
            e = mc_err_set(err, MC_ERR_INVALID, field, R_KEYSIZE,
                           "the public key is not a valid point on %s", mc_keytype_name(kt));
            goto fail;
        }
    }

    if (pkey_out)
        *pkey_out = pkey;
    else
        EVP_PKEY_free(pkey);
    *kt_out = kt;
    *bits_out = bits;
    EVP_PKEY_CTX_free(kctx);
    return MC_OK;
fail:
    EVP_PKEY_CTX_free(kctx);
    EVP_PKEY_free(pkey);
    return e;
}

mc_err mc_order_check_csr(mc_order *o, const struct mc_digests *d, mc_errdetail *err)
{
    return mc_order_check_csr_ctx(o, d, NULL, err);
}

mc_err mc_order_check_csr_ctx(mc_order *o, const struct mc_digests *d, mc_csr_ctx *cc,
                              mc_errdetail *err)
{
    mc_err e = MC_OK;
    EVP_PKEY *pkey = NULL;
    EVP_MD_CTX *mctx = NULL;
    mc_csr_ctx own = {0};
    char buf[160];

    if (!cc) {
        if ((e = mc_csr_ctx_init(&own, err)) != MC_OK)
            return e;
        cc = &own;
    }

    o->spki = NULL;
    o->spki_len = 0;
    o->keytype = MC_KEY_NONE;
    o->key_bits = 0;
    if (o->public_key) {
        mc_der_cur pc = mc_der_cur_make(o->public_key, o->public_key_len);
        mc_der_tlv pk;
        mc_keytype pkt = MC_KEY_NONE;
        unsigned pbits = 0;
        if (mc_der_expect(&pc, MC_DER_SEQUENCE, &pk) || !mc_der_cur_empty(&pc)) {
            e = mc_err_set(err, MC_ERR_INVALID, "public_key", "RFC 5280 4.1.2.7",
                           "not a DER SubjectPublicKeyInfo (truncated, trailing bytes or not a "
                           "SEQUENCE)");
            goto done;
        }
        if ((e = check_key(&pk, "public_key", cc, NULL, &pkt, &pbits, err)))
            goto done;
        o->spki = pk.raw;
        o->spki_len = pk.rawlen;
        o->keytype = pkt;
        o->key_bits = pbits;
        goto done;
    }
    if (!o->csr || o->csr_len == 0) {
        e = mc_err_set(err, MC_ERR_CSR, "csr", "orders.md csr", "no CSR in the order");
        goto done;
    }

    /* RFC 2986 4: CertificationRequest ::= SEQUENCE { certificationRequestInfo, signatureAlgorithm,
     * signature BIT STRING }, CertificationRequestInfo ::= SEQUENCE { version INTEGER (0),
     * subject Name, subjectPKInfo, attributes [0] }. */
    mc_der_cur c = mc_der_cur_make(o->csr, o->csr_len), in, ci, x;
    mc_der_tlv req, cri, ver, subj, spki, attrs, sigalg, sig, t, sigoid;
    int64_t version = -1;
    if (mc_der_expect(&c, MC_DER_SEQUENCE, &req) || !mc_der_cur_empty(&c)) {
        e = mc_err_set(err, MC_ERR_CSR, "csr", R_CSR,
                       "not a DER CertificationRequest (truncated, trailing bytes or not a "
                       "SEQUENCE)");
        goto done;
    }
    in = mc_der_cur_in(&req);
    if (mc_der_expect(&in, MC_DER_SEQUENCE, &cri) || mc_der_expect(&in, MC_DER_SEQUENCE, &sigalg) ||
        mc_der_expect(&in, MC_DER_BITSTRING, &sig) || !mc_der_cur_empty(&in)) {
        e = mc_err_set(err, MC_ERR_CSR, "csr", R_CSR,
                       "CertificationRequest must hold certificationRequestInfo, "
                       "signatureAlgorithm and signature");
        goto done;
    }
    ci = mc_der_cur_in(&cri);
    if (mc_der_expect(&ci, MC_DER_INTEGER, &ver) || mc_der_int_i64(&ver, &version) ||
        version != 0) {
        e = mc_err_set(err, MC_ERR_CSR, "csr", R_CSR, "CSR version must be 0 (v1)");
        goto done;
    }
    if (mc_der_expect(&ci, MC_DER_SEQUENCE, &subj) || mc_der_expect(&ci, MC_DER_SEQUENCE, &spki) ||
        mc_der_expect(&ci, MC_DER_CTX_CONS(0), &attrs) || !mc_der_cur_empty(&ci)) {
        e = mc_err_set(err, MC_ERR_CSR, "csr", R_CSR,
                       "certificationRequestInfo must hold version, subject, subjectPKInfo and "
                       "[0] attributes");
        goto done;
    }
    /* The subject and attributes are not used (the CSR supplies the key, never the policy), but
     * they must still be well-formed: SEQUENCE OF SET and SET OF SEQUENCE. */
    for (x = mc_der_cur_in(&subj); !mc_der_cur_empty(&x);)
        if (mc_der_expect(&x, MC_DER_SET, &t)) {
            e = mc_err_set(err, MC_ERR_CSR, "csr", R_CSR, "CSR subject is not a DER Name");
            goto done;
        }
    for (x = mc_der_cur_in(&attrs); !mc_der_cur_empty(&x);)
        if (mc_der_expect(&x, MC_DER_SEQUENCE, &t)) {
            e = mc_err_set(err, MC_ERR_CSR, "csr", R_CSR, "CSR attributes are malformed");
            goto done;
        }

    mc_keytype kt = MC_KEY_NONE;
    unsigned bits = 0;
    if ((e = check_key(&spki, "csr", cc, &pkey, &kt, &bits, err)))
        goto done;

    /* Signature algorithm of the CSR. */
    x = mc_der_cur_in(&sigalg);
    if (mc_der_expect(&x, MC_DER_OID, &sigoid)) {
        e = mc_err_set(err, MC_ERR_CSR, "csr", R_CSR, "signatureAlgorithm is malformed");
        goto done;
    }
    size_t si = 0, nsig = sizeof csr_sigalgs / sizeof csr_sigalgs[0];
    while (si < nsig && !mc_der_oid_eq(&sigoid, csr_sigalgs[si].oid, csr_sigalgs[si].len))
        si++;
    if (si == nsig) {
        e = mc_err_set(err, MC_ERR_UNSUPPORTED, "csr", "orders.md csr",
                       "CSR signature algorithm %s is not accepted (ECDSA or RSA with SHA-2, "
                       "RSASSA-PSS, Ed25519, Ed448)",
                       mc_der_oid_str(sigoid.val, sigoid.len, buf, sizeof buf));
        goto done;
    }
    sig_family fam = csr_sigalgs[si].fam;
    const char *dname = csr_sigalgs[si].digest;
    pss_params pss = {0};
    mc_der_tlv nul;
    if (fam == FAM_RSA_PSS) {
        if ((e = parse_pss(&x, &pss, err)))
            goto done;
        dname = pss.digest;
    } else if (fam == FAM_RSA && mc_der_optional(&x, MC_DER_NULL, &nul) && nul.len != 0) {
        x = mc_der_cur_in(&sigalg); /* a non-empty NULL: report it below */
    }
    /* RFC 4055 5: PKCS#1 v1.5 takes NULL or absent parameters; ECDSA (RFC 5758 3.2), Ed25519 and
     * Ed448 (RFC 8410 3) take none. */
    if (!mc_der_cur_empty(&x)) {
        e = mc_err_set(err, MC_ERR_CSR, "csr", R_CSR,
                       "signatureAlgorithm %s has unexpected parameters", csr_sigalgs[si].name);
        goto done;
    }
    int fits = (fam == FAM_RSA || fam == FAM_RSA_PSS) ? kt == MC_KEY_RSA
               : fam == FAM_ECDSA   ? (kt == MC_KEY_P256 || kt == MC_KEY_P384 || kt == MC_KEY_P521)
               : fam == FAM_ED25519 ? kt == MC_KEY_ED25519
                                    : kt == MC_KEY_ED448;
    if (!fits) {
        e = mc_err_set(err, MC_ERR_CSR, "csr", R_CSR,
                       "CSR signature algorithm %s does not fit the %s subject key",
                       csr_sigalgs[si].name, mc_keytype_name(kt));
        goto done;
    }
    if (sig.len < 2 || sig.val[0] != 0) {
        e = mc_err_set(err, MC_ERR_CSR, "csr", R_CSR, "signature BIT STRING is malformed");
        goto done;
    }

    /* Proof of possession: the self-signature over the DER certificationRequestInfo. */
    const EVP_MD *md = NULL;
    if (dname && !(md = d ? mc_digests_get(d, dname) : NULL)) {
        e = mc_err_set(err, MC_ERR_INTERNAL, "csr", NULL, "digest %s was not fetched", dname);
        goto done;
    }
    EVP_PKEY_CTX *vctx = NULL; /* owned by mctx */
    mctx = cc->md;
    EVP_MD_CTX_reset(mctx);
    if (EVP_DigestVerifyInit(mctx, &vctx, md, NULL, pkey) != 1) {
        e = mc_crypto_err(err, "csr", "EVP_DigestVerifyInit");
        goto done;
    }
    if (fam == FAM_RSA_PSS &&
        (EVP_PKEY_CTX_set_rsa_padding(vctx, RSA_PKCS1_PSS_PADDING) != 1 ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(vctx, pss.saltlen) != 1 ||
         EVP_PKEY_CTX_set_rsa_mgf1_md(vctx, mc_digests_get(d, pss.mgf1_digest)) != 1)) {
        e = mc_crypto_err(err, "csr", "setting the RSASSA-PSS parameters");
        goto done;
    }
    if (EVP_DigestVerify(mctx, sig.val + 1, sig.len - 1, cri.raw, cri.rawlen) != 1) {
        ERR_clear_error();
        e = mc_err_set(err, MC_ERR_CSR, "csr", R_CSR,
                       "the CSR signature (%s) does not verify with its own public key: no "
                       "proof of possession",
                       csr_sigalgs[si].name);
        goto done;
    }

    o->spki = spki.raw;
    o->spki_len = spki.rawlen;
    o->keytype = kt;
    o->key_bits = bits;
done:
    if (mctx)
        EVP_MD_CTX_reset(mctx); /* drops its reference to pkey */
    EVP_PKEY_free(pkey);
    if (cc == &own)
        mc_csr_ctx_free(&own);
    return e;
}
