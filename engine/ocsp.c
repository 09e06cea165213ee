/*
 * mc_ocsp: the OCSP responder (include/mailca/ocsp.h). Requests are read with the DER reader (so
 * each CertID is echoed byte for byte), ResponseData is written with the DER writer, signed
 * through the HSM pool as engine/crl.c signs CRLs, and served by libmicrohttpd.
 */
#include "mailca/ocsp.h"

#include "mailca/audit.h"

#include "mailca/config.h"
#include "mailca/crypto.h"
#include "mailca/der.h"
#include "mailca/hsmpool.h"
#include "mailca/text.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static const uint8_t OID_OCSP_BASIC[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01};
static const uint8_t OID_OCSP_NONCE[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02};
static const uint8_t OID_SHA1[] = {0x2b, 0x0e, 0x03, 0x02, 0x1a};
static const uint8_t OID_SHA256[] = {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01};
#define DER_ENUMERATED 0x0a
/* A CertID with a 20-octet serial and SHA-256 hashes is about 110 bytes; the cache keys on it. */
#define CERTID_MAX 160

enum { HASH_OTHER = 0, HASH_SHA1, HASH_SHA256 };

typedef struct certid {
    const uint8_t *der; /* the whole CertID TLV as the request had it */
    size_t der_len;
    int hash;
    mc_der_tlv name_hash, key_hash, serial;
} certid;

typedef struct request {
    certid ids[MC_OCSP_CERTIDS_MAX];
    size_t n;
    const uint8_t *nonce; /* the nonce Extension TLV, echoed as given */
    size_t nonce_len;
} request;

typedef struct cache_slot {
    uint8_t key[CERTID_MAX];
    size_t key_len; /* 0: empty */
    uint8_t *resp;
    size_t resp_len;
    int64_t produced, this_update, next_update;
} cache_slot;

struct mc_ocsp_responder {
    mc_issuer iss;
    mc_store *store;
    int64_t validity_s;
    mc_ocsp_sign_fn sign;
    void *sign_arg;
    uint8_t name_sha1[20], key_sha1[20], name_sha256[32], key_sha256[32];
    cache_slot *cache;
};

mc_err mc_ocsp_validity_check(long hours, mc_errdetail *err)
{
    /* SBR 4.9.10 items 1 and 2: eight hours <= validity interval <= ten days */
    if (hours < MC_OCSP_VALIDITY_MIN_HOURS || hours > MC_OCSP_VALIDITY_MAX_HOURS)
        return mc_err_set(err, MC_ERR_INVALID, "validity-hours", "SBR 4.9.10",
                          "%ld hours is outside the OCSP validity interval of %d hours to %d "
                          "hours (ten days)",
                          hours, MC_OCSP_VALIDITY_MIN_HOURS, MC_OCSP_VALIDITY_MAX_HOURS);
    return MC_OK;
}

const uint8_t *mc_ocsp_error_response(mc_ocsp_status st, size_t *len)
{
    /* OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED } (no responseBytes) */
    static uint8_t v[4][5] = {{0x30, 0x03, DER_ENUMERATED, 0x01, MC_OCSP_MALFORMED_REQUEST},
                              {0x30, 0x03, DER_ENUMERATED, 0x01, MC_OCSP_INTERNAL_ERROR},
                              {0x30, 0x03, DER_ENUMERATED, 0x01, MC_OCSP_TRY_LATER},
                              {0x30, 0x03, DER_ENUMERATED, 0x01, MC_OCSP_UNAUTHORIZED}};
    *len = 5;
    switch (st) {
    case MC_OCSP_MALFORMED_REQUEST:
        return v[0];
    case MC_OCSP_TRY_LATER:
        return v[2];
    case MC_OCSP_UNAUTHORIZED:
        return v[3];
    default:
        return v[1];
    }
}

static mc_err digest_of(const char *name, const uint8_t *p, size_t n, uint8_t *out, size_t want,
                        mc_errdetail *err)
{
    EVP_MD *md = EVP_MD_fetch(NULL, name, NULL);
    unsigned len = 0;
    int ok = md && EVP_Digest(p, n, out, &len, md, NULL) == 1 && len == want;
    EVP_MD_free(md);
    return ok ? MC_OK : mc_crypto_err(err, "ca.certificate", name);
}

mc_err mc_ocsp_responder_new(const mc_issuer *iss, mc_store *store, long validity_hours,
                             mc_ocsp_sign_fn sign, void *arg, mc_ocsp_responder **out,
                             mc_errdetail *err)
{
    *out = NULL;
    mc_err e = mc_ocsp_validity_check(validity_hours, err);
    if (e)
        return e;
    if (!iss || !store || !sign)
        return mc_err_set(err, MC_ERR_INVALID, NULL, NULL, "OCSP responder: NULL argument");
    mc_ocsp_responder *r = calloc(1, sizeof *r);
    X509 *x = NULL;
    if (!r || !(r->cache = calloc(MC_OCSP_CACHE_SLOTS, sizeof *r->cache))) {
        e = mc_err_set(err, MC_ERR_NOMEM, "cache", NULL, "OCSP responder of %d cache slots",
                       MC_OCSP_CACHE_SLOTS);
        goto done;
    }
    r->store = store;
    r->validity_s = (int64_t)validity_hours * 3600;
    r->sign = sign;
    r->sign_arg = arg;
    if ((e = mc_issuer_from_der(iss->cert, iss->cert_len, iss->sigalg, &r->iss, err)) != MC_OK)
        goto done;
    /* RFC 6960 4.1.1: issuerNameHash over the issuer's Name DER, issuerKeyHash over the value of
     * its subjectPublicKey BIT STRING (without tag, length and unused-bits octet) */
    const unsigned char *p = r->iss.cert;
    x = d2i_X509(NULL, &p, (long)r->iss.cert_len);
    const ASN1_BIT_STRING *key = x ? X509_get0_pubkey_bitstr(x) : NULL;
    if (!key) {
        e = mc_crypto_err(err, "ca.certificate", "issuer public key");
        goto done;
    }
    const uint8_t *kp = ASN1_STRING_get0_data(key);
    size_t kn = (size_t)ASN1_STRING_length(key);
    if ((e = digest_of("SHA1", r->iss.name.p, r->iss.name.len, r->name_sha1, 20, err)) ||
        (e = digest_of("SHA1", kp, kn, r->key_sha1, 20, err)) ||
        (e = digest_of("SHA256", r->iss.name.p, r->iss.name.len, r->name_sha256, 32, err)) ||
        (e = digest_of("SHA256", kp, kn, r->key_sha256, 32, err)))
        goto done;
    *out = r;
    r = NULL;
done:
    X509_free(x);
    mc_ocsp_responder_free(r);
    return e;
}

void mc_ocsp_responder_free(mc_ocsp_responder *r)
{
    if (!r)
        return;
    if (r->cache)
        for (size_t i = 0; i < MC_OCSP_CACHE_SLOTS; i++)
            free(r->cache[i].resp);
    free(r->cache);
    mc_issuer_free(&r->iss);
    free(r);
}

/* ---- request (RFC 6960 4.1.1) ---- */

static mc_err bad(mc_errdetail *err, const char *field, const char *what)
{
    return mc_err_set(err, MC_ERR_INVALID, field, "RFC 6960 4.1.1", "malformed request: %s", what);
}

/* CertID ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier, issuerNameHash OCTET STRING,
 *                       issuerKeyHash OCTET STRING, serialNumber CertificateSerialNumber } */
static mc_err certid_parse(const mc_der_tlv *t, certid *id, mc_errdetail *err)
{
    mc_der_cur c = mc_der_cur_in(t), a;
    mc_der_tlv alg, oid, params;
    id->der = t->raw;
    id->der_len = t->rawlen;
    if (mc_der_expect(&c, MC_DER_SEQUENCE, &alg) ||
        mc_der_expect(&c, MC_DER_OCTETSTRING, &id->name_hash) ||
        mc_der_expect(&c, MC_DER_OCTETSTRING, &id->key_hash) ||
        mc_der_expect(&c, MC_DER_INTEGER, &id->serial) || !mc_der_cur_empty(&c))
        return bad(err, "certID", "not a CertID");
    a = mc_der_cur_in(&alg);
    if (mc_der_expect(&a, MC_DER_OID, &oid))
        return bad(err, "certID.hashAlgorithm", "not an AlgorithmIdentifier");
    /* parameters absent or NULL, as RFC 5754 2 allows for SHA-1 and SHA-2 */
    if (!mc_der_cur_empty(&a) &&
        (mc_der_expect(&a, MC_DER_NULL, &params) || params.len || !mc_der_cur_empty(&a)))
        return bad(err, "certID.hashAlgorithm", "parameters other than NULL");
    id->hash = mc_der_oid_eq(&oid, OID_SHA1, sizeof OID_SHA1)       ? HASH_SHA1
               : mc_der_oid_eq(&oid, OID_SHA256, sizeof OID_SHA256) ? HASH_SHA256
                                                                    : HASH_OTHER;
    if (mc_der_int_check(id->serial.val, id->serial.len))
        return bad(err, "certID.serialNumber", "not a DER INTEGER");
    return MC_OK;
}

/* Extensions ::= SEQUENCE OF Extension; keeps the nonce (RFC 6960 4.4.1), ignores the others
 * (RFC 6960 4.4: unrecognized extensions are ignored). */
static mc_err extensions_parse(const mc_der_tlv *t, request *rq, mc_errdetail *err)
{
    mc_der_cur c = mc_der_cur_in(t), x;
    mc_der_tlv exts, ext, oid, crit, val;
    if (mc_der_expect(&c, MC_DER_SEQUENCE, &exts) || !mc_der_cur_empty(&c))
        return bad(err, "requestExtensions", "not Extensions");
    c = mc_der_cur_in(&exts);
    while (!mc_der_cur_empty(&c)) {
        if (mc_der_expect(&c, MC_DER_SEQUENCE, &ext))
            return bad(err, "requestExtensions", "not an Extension");
        x = mc_der_cur_in(&ext);
        if (mc_der_expect(&x, MC_DER_OID, &oid))
            return bad(err, "requestExtensions", "Extension without extnID");
        mc_der_optional(&x, MC_DER_BOOLEAN, &crit);
        if (mc_der_expect(&x, MC_DER_OCTETSTRING, &val) || !mc_der_cur_empty(&x))
            return bad(err, "requestExtensions", "Extension without extnValue");
        if (!mc_der_oid_eq(&oid, OID_OCSP_NONCE, sizeof OID_OCSP_NONCE))
            continue;
        /* Nonce ::= OCTET STRING inside extnValue (RFC 8954 2.1); some clients put the bytes in
         * extnValue bare: either is echoed, the length bounded */
        mc_der_cur v = mc_der_cur_in(&val);
        mc_der_tlv inner;
        size_t n = val.len;
        if (mc_der_expect(&v, MC_DER_OCTETSTRING, &inner) == MC_OK && mc_der_cur_empty(&v))
            n = inner.len;
        /* RFC 8954 2.1: a nonce of less than 1 or more than 128 octets is malformedRequest */
        if (n < 1 || n > MC_OCSP_NONCE_MAX)
            return mc_err_set(err, MC_ERR_INVALID, "nonce", "RFC 8954 2.1",
                              "malformed request: a nonce of %zu octets (1..%d)", n,
                              MC_OCSP_NONCE_MAX);
        rq->nonce = ext.raw;
        rq->nonce_len = ext.rawlen;
    }
    return MC_OK;
}

/* OCSPRequest ::= SEQUENCE { tbsRequest TBSRequest, optionalSignature [0] EXPLICIT OPTIONAL }
 * TBSRequest ::= SEQUENCE { version [0] EXPLICIT DEFAULT v1, requestorName [1] EXPLICIT OPTIONAL,
 *   requestList SEQUENCE OF Request, requestExtensions [2] EXPLICIT Extensions OPTIONAL }
 * Request ::= SEQUENCE { reqCert CertID, singleRequestExtensions [0] EXPLICIT OPTIONAL }
 * A signature on the request is not checked: RFC 6960 4.1.2 leaves requiring one to the
 * responder, and this one answers anybody (SBR 4.10.2). */
static mc_err request_parse(const uint8_t *p, size_t n, request *rq, mc_errdetail *err)
{
    memset(rq, 0, sizeof *rq);
    mc_der_cur c = mc_der_cur_make(p, n), t, l, r;
    mc_der_tlv top, tbs, ver, list, one, cid, skip;
    if (mc_der_expect(&c, MC_DER_SEQUENCE, &top) || !mc_der_cur_empty(&c))
        return bad(err, "request", "not one DER OCSPRequest");
    c = mc_der_cur_in(&top);
    if (mc_der_expect(&c, MC_DER_SEQUENCE, &tbs))
        return bad(err, "tbsRequest", "missing");
    mc_der_optional(&c, MC_DER_CTX_CONS(0), &skip); /* optionalSignature */
    if (!mc_der_cur_empty(&c))
        return bad(err, "request", "trailing data after the signature");
    t = mc_der_cur_in(&tbs);
    if (mc_der_optional(&t, MC_DER_CTX_CONS(0), &ver)) {
        mc_der_cur vc = mc_der_cur_in(&ver);
        mc_der_tlv vi;
        int64_t v = -1;
        if (mc_der_expect(&vc, MC_DER_INTEGER, &vi) || mc_der_int_i64(&vi, &v) || v != 0)
            return bad(err, "tbsRequest.version", "not v1");
    }
    mc_der_optional(&t, MC_DER_CTX_CONS(1), &skip); /* requestorName */
    if (mc_der_expect(&t, MC_DER_SEQUENCE, &list))
        return bad(err, "requestList", "missing");
    l = mc_der_cur_in(&list);
    while (!mc_der_cur_empty(&l)) {
        if (rq->n == MC_OCSP_CERTIDS_MAX)
            return mc_err_set(err, MC_ERR_INVALID, "requestList", NULL,
                              "malformed request: more than %d CertIDs", MC_OCSP_CERTIDS_MAX);
        if (mc_der_expect(&l, MC_DER_SEQUENCE, &one))
            return bad(err, "requestList", "not a Request");
        r = mc_der_cur_in(&one);
        if (mc_der_expect(&r, MC_DER_SEQUENCE, &cid))
            return bad(err, "reqCert", "missing");
        mc_der_optional(&r, MC_DER_CTX_CONS(0), &skip); /* singleRequestExtensions */
        if (!mc_der_cur_empty(&r))
            return bad(err, "requestList", "trailing data in a Request");
        mc_err e = certid_parse(&cid, &rq->ids[rq->n], err);
        if (e)
            return e;
        rq->n++;
    }
    if (rq->n == 0)
        return bad(err, "requestList", "no CertID");
    mc_der_tlv exts;
    if (mc_der_optional(&t, MC_DER_CTX_CONS(2), &exts)) {
        mc_err e = extensions_parse(&exts, rq, err);
        if (e)
            return e;
    }
    if (!mc_der_cur_empty(&t))
        return bad(err, "tbsRequest", "unexpected fields");
    return MC_OK;
}

/* The CertID names this CA: both hashes under the algorithm the request used. */
static int certid_ours(const mc_ocsp_responder *r, const certid *id)
{
    const uint8_t *nh = id->hash == HASH_SHA1 ? r->name_sha1 : r->name_sha256;
    const uint8_t *kh = id->hash == HASH_SHA1 ? r->key_sha1 : r->key_sha256;
    size_t n = id->hash == HASH_SHA1 ? 20 : 32;
    return id->hash != HASH_OTHER && id->name_hash.len == n && id->key_hash.len == n &&
           memcmp(id->name_hash.val, nh, n) == 0 && memcmp(id->key_hash.val, kh, n) == 0;
}

/* ---- response (RFC 6960 4.2.1) ---- */

/* GeneralizedTime YYYYMMDDHHMMSSZ: RFC 6960 uses it for every time, whatever the year. */
static void put_gentime(mc_der_w *w, int64_t t)
{
    struct tm tm;
    time_t tt = (time_t)t;
    char buf[32];
    if (!gmtime_r(&tt, &tm) || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 1) {
        w->err = MC_ERR_INVALID;
        return;
    }
    int n = snprintf(buf, sizeof buf, "%04d%02d%02d%02d%02d%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    mc_der_put(w, MC_DER_GENERALIZEDTIME, buf, (size_t)n);
}

/* The status of one serial from the store; MC_ERR_STORE for tryLater. */
static mc_err serial_state(mc_ocsp_responder *r, const certid *id, mc_serial_status *st,
                           mc_errdetail *err)
{
    const uint8_t *v = id->serial.val;
    size_t n = id->serial.len;
    memset(st, 0, sizeof *st);
    /* RFC 5280 4.1.2.2: a serial is positive and at most 20 octets; another INTEGER is no
     * serial this CA assigned */
    if ((v[0] & 0x80) || n > MC_SERIAL_MAX) {
        st->state = MC_SERIAL_UNUSED;
        return MC_OK;
    }
    return mc_store_serial_status(r->store, v, n, st, err);
}

static void put_single(mc_der_w *w, const certid *id, const mc_serial_status *st, int64_t now,
                       int64_t next)
{
    size_t single = mc_der_begin(w, MC_DER_SEQUENCE);
    mc_der_put_raw(w, id->der, id->der_len);
    if (st->state == MC_SERIAL_ISSUED) {
        mc_der_put(w, MC_DER_CTX(0), NULL, 0); /* good [0] IMPLICIT NULL */
    } else if (st->state == MC_SERIAL_REVOKED) {
        size_t ri = mc_der_begin(w, MC_DER_CTX_CONS(1)); /* revoked [1] IMPLICIT RevokedInfo */
        put_gentime(w, st->revoked_at);
        /* SBR 7.3 / 7.2.2: the reason goes in RevokedInfo, never unspecified (0: omitted), and
         * only a reason this CA revokes subscriber certificates with (mc_crl_reason_allowed) */
        if (st->reason != MC_CRL_UNSPECIFIED && mc_crl_reason_allowed(st->reason)) {
            size_t rr = mc_der_begin(w, MC_DER_CTX_CONS(0));
            uint8_t b = (uint8_t)st->reason;
            mc_der_put(w, DER_ENUMERATED, &b, 1);
            mc_der_end(w, rr);
        }
        mc_der_end(w, ri);
    } else {
        /* SBR 4.9.10: never good for a serial not known to be issued (unused, or reserved by an
         * intent without a recorded certificate): unknown [2] IMPLICIT NULL (RFC 6960 2.2) */
        mc_der_put(w, MC_DER_CTX(2), NULL, 0);
    }
    put_gentime(w, now);
    size_t nu = mc_der_begin(w, MC_DER_CTX_CONS(0));
    put_gentime(w, next);
    mc_der_end(w, nu);
    /* SBR 7.3.2: no singleExtensions, so never a reasonCode among them */
    mc_der_end(w, single);
}

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static mc_err error_out(mc_ocsp_status st, uint8_t **out, size_t *out_len, mc_ocsp_answer *ans)
{
    size_t n;
    const uint8_t *v = mc_ocsp_error_response(st, &n);
    ans->status = st;
    if (!(*out = malloc(n)))
        return MC_ERR_NOMEM;
    memcpy(*out, v, n);
    *out_len = n;
    return MC_OK;
}

mc_err mc_ocsp_respond(mc_ocsp_responder *r, const uint8_t *req, size_t req_len, int64_t now,
                       uint8_t **out, size_t *out_len, mc_ocsp_answer *ans, mc_errdetail *err)
{
    request rq;
    mc_serial_status st[MC_OCSP_CERTIDS_MAX];
    uint8_t *tbs = NULL, *resp = NULL;
    mc_ocsp_status status = MC_OCSP_SUCCESSFUL;
    mc_err e = MC_OK;
    *out = NULL;
    *out_len = 0;
    memset(ans, 0, sizeof *ans);
    if (req_len > MC_OCSP_REQUEST_MAX) {
        mc_err_set(err, MC_ERR_INVALID, "request", NULL, "a request of %zu bytes (at most %d)",
                   req_len, MC_OCSP_REQUEST_MAX);
        return error_out(MC_OCSP_MALFORMED_REQUEST, out, out_len, ans);
    }
    if (request_parse(req, req_len, &rq, err) != MC_OK)
        return error_out(MC_OCSP_MALFORMED_REQUEST, out, out_len, ans);
    ans->certids = rq.n;
    for (size_t i = 0; i < rq.n; i++)
        if (!certid_ours(r, &rq.ids[i])) {
            /* RFC 5019 2.2.3, RFC 6960 2.3: not a certificate this responder answers for */
            char field[MC_ERR_FIELD_MAX];
            snprintf(field, sizeof field, "requestList[%zu]", i);
            mc_err_set(err, MC_ERR_INVALID, field, "RFC 6960 2.3",
                       rq.ids[i].hash == HASH_OTHER
                           ? "unauthorized: a CertID hashed with neither SHA-1 nor SHA-256"
                           : "unauthorized: the CertID names another issuer");
            return error_out(MC_OCSP_UNAUTHORIZED, out, out_len, ans);
        }
    /* nonce-less single-CertID requests share responses for MC_OCSP_CACHE_SECONDS */
    cache_slot *slot = NULL;
    if (!rq.nonce && rq.n == 1 && rq.ids[0].der_len <= CERTID_MAX) {
        slot = &r->cache[fnv1a(rq.ids[0].der, rq.ids[0].der_len) % MC_OCSP_CACHE_SLOTS];
        if (slot->key_len == rq.ids[0].der_len &&
            memcmp(slot->key, rq.ids[0].der, slot->key_len) == 0 && now >= slot->produced &&
            now - slot->produced < MC_OCSP_CACHE_SECONDS) {
            if (!(*out = malloc(slot->resp_len)))
                return error_out(MC_OCSP_INTERNAL_ERROR, out, out_len, ans);
            memcpy(*out, slot->resp, slot->resp_len);
            *out_len = slot->resp_len;
            ans->status = MC_OCSP_SUCCESSFUL;
            ans->cached = 1;
            ans->produced_at = slot->produced;
            ans->this_update = slot->this_update;
            ans->next_update = slot->next_update;
            return MC_OK;
        }
    }
    for (size_t i = 0; i < rq.n; i++)
        if (serial_state(r, &rq.ids[i], &st[i], err) != MC_OK) {
            status = MC_OCSP_TRY_LATER; /* RFC 6960 2.3: the store may answer again soon */
            goto done;
        }
    /* SBR 4.9.10: the interval counts thisUpdate and nextUpdate inclusively, so validity_s
     * seconds end one second before thisUpdate + validity_s */
    const int64_t next = now + r->validity_s - 1;
    size_t cap = 512 + rq.nonce_len;
    for (size_t i = 0; i < rq.n; i++)
        cap += rq.ids[i].der_len + 80;
    mc_der_w w;
    if (!(tbs = malloc(cap))) {
        status = MC_OCSP_INTERNAL_ERROR;
        goto done;
    }
    /* ResponseData ::= SEQUENCE { version [0] DEFAULT v1 (omitted), responderID, producedAt,
     *   responses SEQUENCE OF SingleResponse, responseExtensions [1] EXPLICIT OPTIONAL } */
    mc_der_w_init(&w, tbs, cap);
    size_t rd = mc_der_begin(&w, MC_DER_SEQUENCE);
    /* responderID byKey [2] EXPLICIT KeyHash: SHA-1 of the CA's public key (RFC 6960 4.2.1):
     * the responder is the CA itself (SBR 4.9.9 item 1) */
    size_t rid = mc_der_begin(&w, MC_DER_CTX_CONS(2));
    mc_der_put(&w, MC_DER_OCTETSTRING, r->key_sha1, sizeof r->key_sha1);
    mc_der_end(&w, rid);
    put_gentime(&w, now);
    size_t list = mc_der_begin(&w, MC_DER_SEQUENCE);
    for (size_t i = 0; i < rq.n; i++)
        put_single(&w, &rq.ids[i], &st[i], now, next);
    mc_der_end(&w, list);
    if (rq.nonce) { /* RFC 6960 4.4.1: the nonce comes back as it was sent */
        size_t ext = mc_der_begin(&w, MC_DER_CTX_CONS(1));
        size_t exts = mc_der_begin(&w, MC_DER_SEQUENCE);
        mc_der_put_raw(&w, rq.nonce, rq.nonce_len);
        mc_der_end(&w, exts);
        mc_der_end(&w, ext);
    }
    mc_der_end(&w, rd);
    if (w.err) {
        mc_err_set(err, MC_ERR_INTERNAL, "response", NULL, "ResponseData encoding failed");
        status = MC_OCSP_INTERNAL_ERROR;
        goto done;
    }
    size_t tbs_len = w.len;
    uint8_t sig[1024];
    size_t sig_len = sizeof sig;
    if (r->sign(r->sign_arg, tbs, tbs_len, sig, &sig_len, err) != MC_OK) {
        status = MC_OCSP_INTERNAL_ERROR;
        goto done;
    }
    mc_bytes algid = mc_sigalg_algid(r->iss.sigalg);
    size_t rcap = tbs_len + sig_len + algid.len + 64;
    if (!(resp = malloc(rcap))) {
        status = MC_OCSP_INTERNAL_ERROR;
        goto done;
    }
    /* OCSPResponse { successful, [0] EXPLICIT ResponseBytes { id-pkix-ocsp-basic, OCTET STRING
     * BasicOCSPResponse { tbsResponseData, signatureAlgorithm, signature } } }: no certs, the
     * CA's own certificate is what the client checks with (SBR 4.9.9 item 1). The signature
     * algorithm is the certificates' (SBR 7.1.3.2 encodings). */
    mc_der_w_init(&w, resp, rcap);
    size_t top = mc_der_begin(&w, MC_DER_SEQUENCE);
    uint8_t ok = MC_OCSP_SUCCESSFUL;
    mc_der_put(&w, DER_ENUMERATED, &ok, 1);
    size_t rb0 = mc_der_begin(&w, MC_DER_CTX_CONS(0));
    size_t rb = mc_der_begin(&w, MC_DER_SEQUENCE);
    mc_der_put(&w, MC_DER_OID, OID_OCSP_BASIC, sizeof OID_OCSP_BASIC);
    size_t os = mc_der_begin(&w, MC_DER_OCTETSTRING);
    size_t basic = mc_der_begin(&w, MC_DER_SEQUENCE);
    mc_der_put_raw(&w, tbs, tbs_len);
    mc_der_put_raw(&w, algid.p, algid.len);
    mc_der_put_bits(&w, sig, sig_len);
    mc_der_end(&w, basic);
    mc_der_end(&w, os);
    mc_der_end(&w, rb);
    mc_der_end(&w, rb0);
    mc_der_end(&w, top);
    if (w.err) {
        mc_err_set(err, MC_ERR_INTERNAL, "response", NULL, "OCSPResponse encoding failed");
        status = MC_OCSP_INTERNAL_ERROR;
        goto done;
    }
    ans->status = MC_OCSP_SUCCESSFUL;
    ans->produced_at = ans->this_update = now;
    ans->next_update = next;
    if (slot) {
        uint8_t *keep = malloc(w.len);
        if (keep) { /* a response not cached is only a missed saving */
            free(slot->resp);
            memcpy(keep, resp, w.len);
            memcpy(slot->key, rq.ids[0].der, rq.ids[0].der_len);
            slot->key_len = rq.ids[0].der_len;
            slot->resp = keep;
            slot->resp_len = w.len;
            slot->produced = slot->this_update = now;
            slot->next_update = next;
        }
    }
    *out = resp;
    *out_len = w.len;
    resp = NULL;
done:
    free(tbs);
    free(resp);
    if (status != MC_OCSP_SUCCESSFUL)
        e = error_out(status, out, out_len, ans);
    return e;
}

/* ---- mailca ocsp serve ---- */

/* Signs through the HSM pool with one session: the responder runs on one thread. */
typedef struct hsm_signer {
    mc_hsmpool *pool;
    mc_hsmpool_session ps;
    mc_sigalg alg;
    const EVP_MD *md; /* NULL for Ed25519, which signs the whole message */
    EVP_MD_CTX *ctx;
} hsm_signer;

static mc_err hsm_sign(void *arg, const uint8_t *tbs, size_t len, uint8_t *sig, size_t *siglen,
                       mc_errdetail *err)
{
    hsm_signer *h = arg;
    uint8_t dg[EVP_MAX_MD_SIZE];
    const uint8_t *in = tbs;
    size_t inlen = len;
    if (h->md) {
        unsigned dl = 0;
        if (mc_digest(h->ctx, h->md, tbs, len, dg, &dl) != MC_OK)
            return mc_crypto_err(err, "response", "digest");
        in = dg;
        inlen = dl;
    }
    return mc_hsmpool_sign(h->pool, &h->ps, h->alg, in, inlen, sig, siglen, err);
}

typedef struct server {
    mc_ocsp_responder *r;
    char prefix[MC_URL_MAX]; /* the path of ca.ocsp_url, "" for "/" */
    unsigned long long answered, unsuccessful;
} server;

/* A request being read (MHD's per-request pointer): the body of a POST. */
typedef struct body {
    size_t n;
    int too_big;
    uint8_t buf[MC_OCSP_REQUEST_MAX];
} body;

static enum MHD_Result send_plain(struct MHD_Connection *c, unsigned code, const char *text)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
    if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, POST");
    enum MHD_Result ret = MHD_queue_response(c, code, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void http_date(int64_t t, char *buf, size_t cap)
{
    struct tm tm;
    time_t tt = (time_t)t;
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    gmtime_r(&tt, &tm);
    snprintf(buf, cap, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Answers req; why (may be NULL), when set, is the reason the caller already knows the request
 * is malformed (a GET path that does not decode): then nothing is parsed. */
static enum MHD_Result answer(server *sv, struct MHD_Connection *c, const uint8_t *req, size_t n,
                              int get, const char *why)
{
    uint8_t *out = NULL;
    size_t out_len = 0;
    mc_ocsp_answer ans;
    mc_errdetail e;
    mc_err_clear(&e);
    const int64_t now = (int64_t)time(NULL);
    if (why) {
        mc_err_set(&e, MC_ERR_INVALID, "request", "RFC 5019 5", "malformed request: %s", why);
        memset(&ans, 0, sizeof ans);
        ans.status = MC_OCSP_MALFORMED_REQUEST;
        const uint8_t *v = mc_ocsp_error_response(ans.status, &out_len);
        if ((out = malloc(out_len)))
            memcpy(out, v, out_len);
    } else {
        mc_ocsp_respond(sv->r, req, n, now, &out, &out_len, &ans, &e);
    }
    struct MHD_Response *resp;
    if (out) {
        resp = MHD_create_response_from_buffer(out_len, out, MHD_RESPMEM_MUST_FREE);
        if (!resp)
            free(out);
    } else { /* out of memory: the static internalError */
        const uint8_t *v = mc_ocsp_error_response(MC_OCSP_INTERNAL_ERROR, &out_len);
        resp = MHD_create_response_from_buffer(out_len, (void *)v, MHD_RESPMEM_PERSISTENT);
        ans.status = MC_OCSP_INTERNAL_ERROR;
    }
    if (!resp)
        return MHD_NO;
    sv->answered++;
    if (ans.status != MC_OCSP_SUCCESSFUL) {
        char buf[600];
        sv->unsuccessful++;
        fprintf(stderr, "mailca ocsp: status %d: %s\n", (int)ans.status,
                mc_err_format(&e, buf, sizeof buf));
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/ocsp-response");
    if (get && ans.status == MC_OCSP_SUCCESSFUL) {
        /* RFC 5019 6.2: HTTP caches may keep a GET answer, but not longer than this responder
         * keeps it (MC_OCSP_CACHE_SECONDS), so a revocation reaches them as soon as it does */
        char v[96], d1[40], d2[40];
        int64_t age = ans.produced_at + MC_OCSP_CACHE_SECONDS - now;
        if (age < 0)
            age = 0;
        snprintf(v, sizeof v, "max-age=%lld, public, no-transform, must-revalidate",
                 (long long)age);
        http_date(ans.this_update, d1, sizeof d1);
        http_date(ans.next_update, d2, sizeof d2);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, v);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LAST_MODIFIED, d1);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_EXPIRES, d2);
    } else if (ans.status != MC_OCSP_SUCCESSFUL) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    }
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* GET {url}/{url-encoding of base-64 encoding of the DER OCSPRequest} (RFC 6960 A.1, RFC 5019
 * 5; SBR 4.9.10: GET SHALL be supported). A path that does not decode is malformedRequest. */
static enum MHD_Result answer_get(server *sv, struct MHD_Connection *c, const char *url)
{
    size_t pl = strlen(sv->prefix);
    if (pl && strncmp(url, sv->prefix, pl) == 0 && url[pl] == '/')
        url += pl;
    while (*url == '/')
        url++;
    size_t n = strlen(url);
    if (n > (MC_OCSP_REQUEST_MAX / 3 + 1) * 4 * 3) /* percent-encoded at most 3 bytes each */
        return send_plain(c, MHD_HTTP_URI_TOO_LONG, "request too large\n");
    char *b64 = malloc(n + 1);
    uint8_t *der = malloc(n + 1);
    size_t m = 0;
    int bad_b64 = 0;
    if (!b64 || !der) {
        free(b64);
        free(der);
        return MHD_NO;
    }
    /* libmicrohttpd already undid the %XX of the path; base64 has no '%', so a second pass is
     * harmless and covers a server that does not */
    for (size_t i = 0; i < n; i++) {
        if (url[i] == '%' && i + 2 < n && mc_hex_digit(url[i + 1]) >= 0 &&
            mc_hex_digit(url[i + 2]) >= 0) {
            b64[m++] = (char)(mc_hex_digit(url[i + 1]) * 16 + mc_hex_digit(url[i + 2]));
            i += 2;
        } else {
            b64[m++] = url[i];
        }
    }
    b64[m] = 0;
    int len = -1;
    if (m && m % 4 == 0 && (len = EVP_DecodeBlock(der, (const unsigned char *)b64, (int)m)) >= 0) {
        /* EVP_DecodeBlock counts the padding as zero bytes */
        len -= (b64[m - 1] == '=') + (m > 1 && b64[m - 2] == '=');
    } else {
        bad_b64 = 1;
    }
    enum MHD_Result ret;
    if (bad_b64 || len <= 0) {
        ret = answer(sv, c, NULL, 0, 1, "the GET path is not the base64 of a request");
    } else {
        ret = answer(sv, c, der, (size_t)len, 1, NULL);
    }
    free(b64);
    free(der);
    return ret;
}

/* libmicrohttpd calls this first when the headers are in (nothing is answered then: an answer
 * queued before the request is complete costs the keep-alive connection), then with each piece
 * of a body, then once more to answer. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    server *sv = cls;
    body *b = *con_cls;
    if (!b) {
        /* refused before it is read when it says it is too large */
        const char *cl =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > MC_OCSP_REQUEST_MAX)
            return send_plain(c, MHD_HTTP_CONTENT_TOO_LARGE, "request too large\n");
        if (!(b = calloc(1, sizeof *b)))
            return MHD_NO;
        *con_cls = b;
        return MHD_YES;
    }
    if (*upload_size) {
        if (b->n + *upload_size > sizeof b->buf)
            b->too_big = 1; /* read and dropped: answered 413 at the end */
        else
            memcpy(b->buf + b->n, upload_data, *upload_size);
        if (!b->too_big)
            b->n += *upload_size;
        *upload_size = 0;
        return MHD_YES;
    }
    if (b->too_big)
        return send_plain(c, MHD_HTTP_CONTENT_TOO_LARGE, "request too large\n");
    if (strcmp(method, MHD_HTTP_METHOD_GET) == 0)
        return answer_get(sv, c, url);
    if (strcmp(method, MHD_HTTP_METHOD_POST) == 0)
        return answer(sv, c, b->buf, b->n, 0, NULL);
    return send_plain(c, MHD_HTTP_METHOD_NOT_ALLOWED, "GET or POST\n");
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    free(*con_cls);
    *con_cls = NULL;
}

/* HOST:PORT with a numeric IPv4 address, or [IPv6]:PORT. */
static mc_err listen_parse(const char *s, struct sockaddr_storage *sa, socklen_t *sl, int *v6,
                           mc_errdetail *err)
{
    char host[64];
    const char *port;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':' || (size_t)(end - s - 1) >= sizeof host)
            goto bad;
        memcpy(host, s + 1, (size_t)(end - s - 1));
        host[end - s - 1] = 0;
        port = end + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon || (size_t)(colon - s) >= sizeof host)
            goto bad;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = 0;
        port = colon + 1;
    }
    char *end = NULL;
    long p = strtol(port, &end, 10);
    if (!*port || *end || p < 0 || p > 65535)
        goto bad;
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai)
        goto bad;
    memcpy(sa, ai->ai_addr, ai->ai_addrlen);
    *sl = ai->ai_addrlen;
    *v6 = ai->ai_family == AF_INET6;
    freeaddrinfo(ai);
    return MC_OK;
bad:
    return mc_err_set(err, MC_ERR_INVALID, "listen", NULL,
                      "'%s' is not ADDRESS:PORT (a numeric IPv4 address, or [IPv6]:PORT)", s);
}

/* At start, one answer through the whole path (store read, HSM signature) checked with OpenSSL
 * against ca.certificate: a key in the HSM that is not the certificate's, or a response other
 * software cannot read, stops the responder before it answers anybody (as `mailca crl` checks
 * each CRL). The request carries a nonce, so nothing of it stays in the cache. */
static mc_err self_check(mc_ocsp_responder *r, const mc_issuer *iss, mc_errdetail *err)
{
    const unsigned char *p = iss->cert;
    X509 *ca = d2i_X509(NULL, &p, (long)iss->cert_len);
    OCSP_REQUEST *req = OCSP_REQUEST_new();
    ASN1_INTEGER *serial = ASN1_INTEGER_new();
    EVP_MD *sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
    OCSP_CERTID *id = NULL;
    OCSP_RESPONSE *resp = NULL;
    OCSP_BASICRESP *bs = NULL;
    STACK_OF(X509) *certs = sk_X509_new_null();
    X509_STORE *st = X509_STORE_new();
    uint8_t *der = NULL, *out = NULL;
    size_t out_len = 0;
    mc_ocsp_answer ans;
    mc_err e = MC_OK;
    int len = -1, status = -1;
    if (ca && serial && sha1 && ASN1_INTEGER_set(serial, 1))
        id = OCSP_cert_id_new(sha1, X509_get_subject_name(ca), X509_get0_pubkey_bitstr(ca), serial);
    if (!id || !req || !OCSP_request_add0_id(req, id)) {
        OCSP_CERTID_free(id); /* not taken by the request */
        id = NULL;
    }
    if (!id || !certs || !st || OCSP_request_add1_nonce(req, NULL, -1) != 1 ||
        (len = i2d_OCSP_REQUEST(req, &der)) <= 0 || sk_X509_push(certs, ca) <= 0) {
        e = mc_crypto_err(err, "ocsp", "self-check request");
        goto done;
    }
    if ((e = mc_ocsp_respond(r, der, (size_t)len, (int64_t)time(NULL), &out, &out_len, &ans,
                             err)) != MC_OK)
        goto done;
    if (ans.status != MC_OCSP_SUCCESSFUL) { /* err says why */
        e = ans.status == MC_OCSP_TRY_LATER ? MC_ERR_STORE : MC_ERR_HSM;
        goto done;
    }
    const unsigned char *q = out;
    /* OCSP_TRUSTOTHER: the issuing certificate is the signer and is trusted as given */
    if (!(resp = d2i_OCSP_RESPONSE(NULL, &q, (long)out_len)) || q != out + out_len ||
        !(bs = OCSP_response_get1_basic(resp)) ||
        OCSP_basic_verify(bs, certs, st, OCSP_TRUSTOTHER) != 1 || OCSP_check_nonce(req, bs) != 1 ||
        !OCSP_resp_find_status(bs, id, &status, NULL, NULL, NULL, NULL) ||
        status == V_OCSP_CERTSTATUS_GOOD)
        e = mc_err_set(err, MC_ERR_HSM, "hsm.key", NULL,
                       "self-check: the response does not verify with ca.certificate's key");
done:
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    OCSP_REQUEST_free(req);
    ASN1_INTEGER_free(serial);
    EVP_MD_free(sha1);
    sk_X509_free(certs);
    X509_STORE_free(st);
    X509_free(ca);
    OPENSSL_free(der);
    free(out);
    return e;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: mailca ocsp serve [--config FILE] --listen ADDRESS:PORT [--validity-hours H]\n"
            "  an OCSP responder (RFC 6960, RFC 5019; HTTP GET and POST) for the issuing CA,\n"
            "  answering from the store and signing in the HSM with the CA key; ADDRESS numeric\n"
            "  (127.0.0.1:8080, [::1]:8080; port 0 picks one, printed at start); H: %d..%d\n"
            "  (SBR 4.9.10), default %d; stops cleanly on SIGTERM or SIGINT\n",
            MC_OCSP_VALIDITY_MIN_HOURS, MC_OCSP_VALIDITY_MAX_HOURS, MC_OCSP_VALIDITY_DEFAULT_HOURS);
    return 2;
}

int mc_ocsp_main(int argc, char **argv)
{
    static const struct option lo[] = {{"config", 1, 0, 'c'},
                                       {"listen", 1, 0, 'l'},
                                       {"validity-hours", 1, 0, 'v'},
                                       {"help", 0, 0, 'h'},
                                       {0, 0, 0, 0}};
    if (argc < 2 || strcmp(argv[1], "serve") != 0) {
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
            usage();
            return 0;
        }
        return usage();
    }
    argc--;
    argv++;
    const char *cfgp = NULL, *listen_at = NULL;
    long hours = MC_OCSP_VALIDITY_DEFAULT_HOURS;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        char *end = NULL;
        if (ch == 'c') {
            cfgp = optarg;
        } else if (ch == 'l') {
            listen_at = optarg;
        } else if (ch == 'v') {
            hours = strtol(optarg, &end, 10);
            if (!*optarg || *end)
                return usage();
        } else if (ch == 'h') {
            usage();
            return 0;
        } else {
            return usage();
        }
    }
    if (optind != argc || !listen_at)
        return usage();
    mc_errdetail e;
    mc_err_clear(&e);
    mc_config cfg;
    mc_issuer iss;
    memset(&iss, 0, sizeof iss);
    mc_store *s = NULL;
    hsm_signer h;
    memset(&h, 0, sizeof h);
    server sv;
    memset(&sv, 0, sizeof sv);
    mc_digests d;
    int have_digests = 0;
    struct MHD_Daemon *daemon = NULL;
    char pin[256] = "";
    struct sockaddr_storage sa;
    socklen_t sl = 0;
    int v6 = 0;
    mc_err rc = MC_OK;
    /* SIGTERM and SIGINT are taken by sigwait below: blocked before anything starts a thread
     * (a PKCS#11 module may, when the HSM pool opens; libmicrohttpd does), as threads inherit the
     * mask and a signal delivered to one of them would end the process unrecorded */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if ((rc = mc_ocsp_validity_check(hours, &e)) != MC_OK ||
        (rc = listen_parse(listen_at, &sa, &sl, &v6, &e)) != MC_OK ||
        (rc = mc_config_load(mc_config_path(cfgp), &cfg, &e)) != MC_OK)
        goto done;
    mc_config_apply_env(&cfg);
    mc_sigalg alg = MC_SIG_NONE;
    if (cfg.ca_signature[0] && (alg = mc_sigalg_from_name(cfg.ca_signature)) == MC_SIG_NONE) {
        rc = mc_err_set(&e, MC_ERR_CONFIG, "ca.signature", NULL, "unknown signature algorithm '%s'",
                        cfg.ca_signature);
        goto done;
    }
    if ((rc = mc_issuer_load(cfg.ca_certificate, alg, &iss, &e)) != MC_OK ||
        (rc = mc_digests_fetch(&d, &e)) != MC_OK)
        goto done;
    have_digests = 1;
    /* the path part of ca.ocsp_url: GET requests carry it before the encoded request */
    const char *u = strstr(cfg.ca_ocsp_url, "://");
    const char *path = u ? strchr(u + 3, '/') : NULL;
    if (path) {
        snprintf(sv.prefix, sizeof sv.prefix, "%s", path);
        size_t pl = strlen(sv.prefix);
        while (pl && sv.prefix[pl - 1] == '/')
            sv.prefix[--pl] = 0;
    }
    /* one store connection and one HSM session, used by libmicrohttpd's single polling thread
     * only: no locks, and an answer costs a store read and a signature (the cache spares most) */
    if ((rc = mc_store_open(cfg.store_sqlite, &s, &e)) != MC_OK ||
        (rc = mc_config_read_pin(&cfg, pin, sizeof pin, &e)) != MC_OK)
        goto done;
    rc = mc_hsmpool_open(cfg.hsm_module, cfg.hsm_key, pin, &h.pool, &e);
    OPENSSL_cleanse(pin, sizeof pin);
    if (rc != MC_OK || (rc = mc_hsmpool_session_open(h.pool, 0, &h.ps, &e)) != MC_OK)
        goto done;
    h.alg = iss.sigalg;
    h.md = mc_digests_for_sigalg(&d, iss.sigalg);
    if (!(h.ctx = EVP_MD_CTX_new())) {
        rc = mc_err_set(&e, MC_ERR_NOMEM, NULL, NULL, "digest context");
        goto done;
    }
    if ((rc = mc_ocsp_responder_new(&iss, s, hours, hsm_sign, &h, &sv.r, &e)) != MC_OK ||
        (rc = self_check(sv.r, &iss, &e)) != MC_OK)
        goto done;
    /* SBR 5.4.1 2.vi: the signing of OCSP responses, recorded per serving period (start, and
     * stop with the counts); written here, before the server thread shares the connection */
    {
        mc_audit_json j;
        mc_audit_json_begin(&j);
        mc_audit_json_int(&j, "validity_hours", hours);
        mc_audit_json_int(&j, "cache_seconds", MC_OCSP_CACHE_SECONDS);
        mc_audit_json_str(&j, "store", mc_store_backend(s));
        const char *dj = mc_audit_json_end(&j);
        rc = dj ? mc_audit_record(s, "ocsp.start", listen_at, dj, &e)
                : mc_err_set(&e, MC_ERR_NOMEM, NULL, NULL, "audit: ocsp.start");
        mc_audit_json_free(&j);
        if (rc != MC_OK)
            goto done;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | (v6 ? MHD_USE_IPv6 : 0);
    daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, &sv, MHD_OPTION_SOCK_ADDR,
                              (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
                              MHD_OPTION_CONNECTION_LIMIT, 256u, MHD_OPTION_NOTIFY_COMPLETED,
                              on_completed, NULL, MHD_OPTION_END);
    if (!daemon) {
        rc = mc_err_set(&e, MC_ERR_IO, "listen", NULL, "cannot listen on %s", listen_at);
        goto done;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
    char host[64] = "";
    if (v6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&sa)->sin6_addr, host, sizeof host);
    else
        inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, host, sizeof host);
    printf("mailca ocsp: listening on http://%s%s%s:%u/ (validity %ld hours, %s, cache %d s)\n",
           v6 ? "[" : "", host, v6 ? "]" : "", di ? (unsigned)di->port : 0u, hours,
           mc_store_backend(s), MC_OCSP_CACHE_SECONDS);
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    MHD_stop_daemon(daemon); /* waits for the polling thread: no answer is half sent */
    daemon = NULL;
    printf("mailca ocsp: stopped on signal %d, %llu request(s) answered, %llu unsuccessful\n", sig,
           sv.answered, sv.unsuccessful);
    {
        mc_audit_json j;
        mc_errdetail ae;
        mc_audit_json_begin(&j);
        mc_audit_json_int(&j, "signal", sig);
        mc_audit_json_int(&j, "answered", (int64_t)sv.answered);
        mc_audit_json_int(&j, "unsuccessful", (int64_t)sv.unsuccessful);
        const char *dj = mc_audit_json_end(&j);
        if (!dj || mc_audit_record(s, "ocsp.stop", listen_at, dj, &ae) != MC_OK)
            fprintf(stderr, "mailca ocsp: audit log: the stop could not be recorded: %s\n",
                    dj ? ae.message : "out of memory");
        mc_audit_json_free(&j);
    }
done:
    if (daemon)
        MHD_stop_daemon(daemon);
    mc_ocsp_responder_free(sv.r);
    EVP_MD_CTX_free(h.ctx);
    if (h.ps.s)
        mc_hsmpool_session_close(h.pool, &h.ps);
    mc_hsmpool_close(h.pool);
    mc_store_close(s);
    mc_issuer_free(&iss);
    if (have_digests)
        mc_digests_free(&d);
    if (rc != MC_OK) {
        char buf[600];
        fprintf(stderr, "mailca ocsp: %s\n", mc_err_format(&e, buf, sizeof buf));
        return 1;
    }
    return 0;
}
