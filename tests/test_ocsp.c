/*
 * mc_ocsp (engine/ocsp.c): requests built and responses read with OpenSSL's OCSP API, independently
 * of the responder's DER code, against a software test CA (the signer is the CA key: SBR 4.9.9
 * item 1) and a real SQLite store: validity bounds (SBR 4.9.10), good / revoked with and without
 * a reason (SBR 7.3, 7.2.2, 7.3.2) / unknown for unused and reserved serials (SBR 4.9.10),
 * another issuer or hash (RFC 6960 2.3), malformed requests, nonces (RFC 6960 4.4.1, RFC 8954),
 * several CertIDs, and the cache's bound on how long a revocation takes to show.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/ocsp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailca/ocsp.h"
#include "support/testca.h"

#define NOW 1780000000LL
#define SER_LEN 16

typedef struct fixture {
    char dir[512], db[600];
    mc_testca ca, other;
    mc_issuer iss;
    mc_store *s;
    uint8_t serial[5][SER_LEN]; /* 0 issued, 1 revoked keyCompromise, 2 revoked unspecified,
                                   3 reserved (intent only), 4 never assigned */
    int signatures;
} fixture;

static mc_err sw_sign(void *arg, const uint8_t *tbs, size_t len, uint8_t *sig, size_t *siglen,
                      mc_errdetail *err)
{
    fixture *fx = arg;
    fx->signatures++;
    if (mc_testca_sign(&fx->ca, fx->iss.sigalg, tbs, len, sig, siglen) != 0)
        return mc_err_set(err, MC_ERR_CRYPTO, "sign", NULL, "software signature failed");
    return MC_OK;
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    mc_errdetail err;
    if (!fx)
        return -1;
    const char *tmp = getenv("MAILCA_TEST_TMP");
    snprintf(fx->dir, sizeof fx->dir, "%s/ocsp-XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(fx->dir))
        return -1;
    snprintf(fx->db, sizeof fx->db, "%s/store.db", fx->dir);
    if (mc_testca_create(&fx->ca, MC_TESTCA_P256, 0) != 0 ||
        mc_testca_create(&fx->other, MC_TESTCA_P256, 0) != 0 ||
        mc_issuer_from_der(fx->ca.der, fx->ca.der_len, MC_SIG_NONE, &fx->iss, &err) != MC_OK ||
        mc_store_open(fx->db, &fx->s, &err) != MC_OK)
        return -1;
    /* four intents, three certificates; 1 and 2 revoked */
    static const uint8_t hash[32] = {1};
    static const uint8_t tbs[8] = {0x30, 0x06, 0x02, 0x01, 0x01, 0x05, 0x01, 0x00};
    mc_intent in[4];
    mc_stored_cert c[3];
    mc_intent_state st[4];
    char order[4][16];
    for (int i = 0; i < 5; i++) {
        for (int j = 0; j < SER_LEN; j++)
            fx->serial[i][j] = (uint8_t)(0x11 * (i + 1) + j);
        fx->serial[i][0] = (uint8_t)(0x40 + i); /* positive, as mailca's serials */
    }
    for (int i = 0; i < 4; i++) {
        snprintf(order[i], sizeof order[i], "o-%d", i);
        in[i] = (mc_intent){.order_id = order[i],
                            .profile_hash = hash,
                            .serial = fx->serial[i],
                            .serial_len = SER_LEN,
                            .tbs = tbs,
                            .tbs_len = sizeof tbs,
                            .tbs_hash = hash,
                            .not_before = NOW - 86400,
                            .not_after = NOW + 86400 * 300};
        if (i < 3)
            c[i] = (mc_stored_cert){.order_id = order[i],
                                    .serial = fx->serial[i],
                                    .serial_len = SER_LEN,
                                    .der = tbs,
                                    .der_len = sizeof tbs};
    }
    mc_revoke_counts rc;
    mc_store_sel one = {.serial = fx->serial[1], .serial_len = SER_LEN};
    if (mc_store_intents_commit(fx->s, in, 4, st, &err) != MC_OK ||
        mc_store_certs_commit(fx->s, c, 3, &err) != MC_OK ||
        mc_store_revoke(fx->s, &one, MC_CRL_KEY_COMPROMISE, NOW - 3600, 0, &rc, &err) != MC_OK)
        return -1;
    one.serial = fx->serial[2];
    if (mc_store_revoke(fx->s, &one, MC_CRL_UNSPECIFIED, NOW - 7200, 0, &rc, &err) != MC_OK)
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    char cmd[1200];
    mc_store_close(fx->s);
    mc_issuer_free(&fx->iss);
    mc_testca_free(&fx->ca);
    mc_testca_free(&fx->other);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    if (system(cmd) != 0)
        return -1;
    free(fx);
    return 0;
}

static mc_ocsp_responder *responder(fixture *fx, long hours)
{
    mc_ocsp_responder *r = NULL;
    mc_errdetail err;
    assert_int_equal(mc_ocsp_responder_new(&fx->iss, fx->s, hours, sw_sign, fx, &r, &err), MC_OK);
    return r;
}

/* A CertID for serial under issuer ca, hashed with md (OpenSSL computes the hashes). */
static OCSP_CERTID *certid(const mc_testca *ca, const EVP_MD *md, const uint8_t *serial, size_t n)
{
    ASN1_INTEGER *ai = ASN1_INTEGER_new();
    assert_non_null(ai);
    assert_int_equal(ASN1_STRING_set(ai, serial, (int)n), 1);
    OCSP_CERTID *id = OCSP_cert_id_new(md, X509_get_subject_name(ca->cert),
                                       X509_get0_pubkey_bitstr(ca->cert), ai);
    ASN1_INTEGER_free(ai);
    assert_non_null(id);
    return id;
}

/* DER of a request for the given CertIDs (taken), with a nonce when nonce is set. */
static size_t request_der(OCSP_CERTID **ids, size_t n, int nonce, OCSP_REQUEST **keep,
                          uint8_t **der)
{
    OCSP_REQUEST *req = OCSP_REQUEST_new();
    assert_non_null(req);
    for (size_t i = 0; i < n; i++)
        assert_non_null(OCSP_request_add0_id(req, ids[i]));
    if (nonce)
        assert_int_equal(OCSP_request_add1_nonce(req, NULL, -1), 1);
    *der = NULL;
    int len = i2d_OCSP_REQUEST(req, der);
    assert_true(len > 0);
    if (keep)
        *keep = req;
    else
        OCSP_REQUEST_free(req);
    return (size_t)len;
}

/* Answers der at now; returns the parsed response (caller frees) and the status. */
static OCSP_RESPONSE *ask(mc_ocsp_responder *r, const uint8_t *der, size_t len, int64_t now,
                          mc_ocsp_answer *ans, uint8_t **raw, size_t *raw_len)
{
    uint8_t *out = NULL;
    size_t out_len = 0;
    mc_ocsp_answer a;
    mc_errdetail err;
    mc_err_clear(&err);
    assert_int_equal(mc_ocsp_respond(r, der, len, now, &out, &out_len, &a, &err), MC_OK);
    const unsigned char *p = out;
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)out_len);
    assert_non_null(resp);
    assert_ptr_equal(p, out + out_len);
    assert_int_equal(OCSP_response_status(resp), (int)a.status);
    if (ans)
        *ans = a;
    if (raw) {
        *raw = out;
        *raw_len = out_len;
    } else {
        free(out);
    }
    return resp;
}

/* The basic response, its signature verified: signer = the issuing CA (found by the byKey
 * responderID among certs), chained to the root, and the CA of every CertID (SBR 4.9.9 item 1). */
static OCSP_BASICRESP *basic_verified(fixture *fx, OCSP_RESPONSE *resp)
{
    assert_int_equal(OCSP_response_status(resp), OCSP_RESPONSE_STATUS_SUCCESSFUL);
    OCSP_BASICRESP *bs = OCSP_response_get1_basic(resp);
    assert_non_null(bs);
    X509_STORE *st = X509_STORE_new();
    STACK_OF(X509) *certs = sk_X509_new_null();
    assert_non_null(st);
    assert_non_null(certs);
    assert_int_equal(X509_STORE_add_cert(st, fx->ca.root), 1);
    assert_true(sk_X509_push(certs, fx->ca.cert) > 0);
    int ok = OCSP_basic_verify(bs, certs, st, 0);
    sk_X509_free(certs);
    X509_STORE_free(st);
    assert_int_equal(ok, 1);
    return bs;
}

/* Status of serial i in bs, hashed with md; reason and times out. */
static int status_of(fixture *fx, OCSP_BASICRESP *bs, const EVP_MD *md, const uint8_t *serial,
                     int *reason, ASN1_GENERALIZEDTIME **rev, ASN1_GENERALIZEDTIME **thisu,
                     ASN1_GENERALIZEDTIME **nextu)
{
    OCSP_CERTID *id = certid(&fx->ca, md, serial, SER_LEN);
    int status = -1;
    int found = OCSP_resp_find_status(bs, id, &status, reason, rev, thisu, nextu);
    OCSP_CERTID_free(id);
    assert_int_equal(found, 1);
    return status;
}

/* SBR 4.9.10 items 1 and 2: 8 hours .. 10 days accepted, outside refused with the rule named;
 * the interval written, counted inclusively, is exactly the hours asked. */
static void test_validity_bounds(void **state)
{
    fixture *fx = *state;
    mc_errdetail err;
    mc_ocsp_responder *r = NULL;
    const long bad[] = {0, 7, 241, 10000, -8};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(mc_ocsp_validity_check(bad[i], &err), MC_ERR_INVALID);
        assert_string_equal(err.field, "validity-hours");
        assert_string_equal(err.rule, "SBR 4.9.10");
        assert_int_equal(mc_ocsp_responder_new(&fx->iss, fx->s, bad[i], sw_sign, fx, &r, &err),
                         MC_ERR_INVALID);
        assert_null(r);
    }
    const long good[] = {MC_OCSP_VALIDITY_MIN_HOURS, MC_OCSP_VALIDITY_DEFAULT_HOURS,
                         MC_OCSP_VALIDITY_MAX_HOURS};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_int_equal(mc_ocsp_validity_check(good[i], &err), MC_OK);
        r = responder(fx, good[i]);
        OCSP_CERTID *id = certid(&fx->ca, EVP_sha1(), fx->serial[0], SER_LEN);
        uint8_t *der;
        size_t len = request_der(&id, 1, 0, NULL, &der);
        mc_ocsp_answer ans;
        OCSP_RESPONSE *resp = ask(r, der, len, NOW, &ans, NULL, NULL);
        OCSP_BASICRESP *bs = basic_verified(fx, resp);
        ASN1_GENERALIZEDTIME *tu = NULL, *nu = NULL;
        assert_int_equal(status_of(fx, bs, EVP_sha1(), fx->serial[0], NULL, NULL, &tu, &nu),
                         V_OCSP_CERTSTATUS_GOOD);
        int days = 0, secs = 0;
        assert_int_equal(ASN1_TIME_diff(&days, &secs, tu, nu), 1);
        /* inclusive: nextUpdate - thisUpdate + 1 s == the hours asked */
        assert_int_equal((int64_t)days * 86400 + secs + 1, (int64_t)good[i] * 3600);
        assert_int_equal(ans.next_update - ans.this_update + 1, (int64_t)good[i] * 3600);
        assert_int_equal(ans.this_update, NOW);
        assert_int_equal(ASN1_TIME_cmp_time_t(tu, (time_t)NOW), 0);
        OCSP_BASICRESP_free(bs);
        OCSP_RESPONSE_free(resp);
        OPENSSL_free(der);
        mc_ocsp_responder_free(r);
    }
}

/* good / revoked with and without reason / unknown for reserved and unused serials, one request
 * each, hashed with SHA-1 (what clients send) and SHA-256. */
static void test_statuses(void **state)
{
    fixture *fx = *state;
    mc_ocsp_responder *r = responder(fx, 96);
    const EVP_MD *mds[] = {EVP_sha1(), EVP_sha256()};
    const int want[] = {V_OCSP_CERTSTATUS_GOOD, V_OCSP_CERTSTATUS_REVOKED,
                        V_OCSP_CERTSTATUS_REVOKED, V_OCSP_CERTSTATUS_UNKNOWN,
                        V_OCSP_CERTSTATUS_UNKNOWN};
    for (size_t m = 0; m < 2; m++)
        for (int i = 0; i < 5; i++) {
            OCSP_CERTID *id = certid(&fx->ca, mds[m], fx->serial[i], SER_LEN);
            uint8_t *der;
            size_t len = request_der(&id, 1, 0, NULL, &der);
            OCSP_RESPONSE *resp = ask(r, der, len, NOW, NULL, NULL, NULL);
            OCSP_BASICRESP *bs = basic_verified(fx, resp);
            int reason = -9;
            ASN1_GENERALIZEDTIME *rev = NULL;
            assert_int_equal(status_of(fx, bs, mds[m], fx->serial[i], &reason, &rev, NULL, NULL),
                             want[i]);
            if (i == 1) { /* keyCompromise in RevokedInfo (SBR 7.3) */
                assert_int_equal(reason, OCSP_REVOKED_STATUS_KEYCOMPROMISE);
                assert_int_equal(ASN1_TIME_cmp_time_t(rev, (time_t)(NOW - 3600)), 0);
            } else if (i == 2) { /* unspecified: no revocationReason at all (SBR 7.2.2) */
                assert_int_equal(reason, OCSP_REVOKED_STATUS_NOSTATUS);
                assert_int_equal(ASN1_TIME_cmp_time_t(rev, (time_t)(NOW - 7200)), 0);
            }
            /* SBR 7.3.2: no singleExtensions, so no reasonCode among them */
            OCSP_SINGLERESP *sr = OCSP_resp_get0(bs, 0);
            assert_non_null(sr);
            assert_int_equal(OCSP_SINGLERESP_get_ext_count(sr), 0);
            assert_int_equal(OCSP_resp_count(bs), 1);
            OCSP_BASICRESP_free(bs);
            OCSP_RESPONSE_free(resp);
            OPENSSL_free(der);
        }
    mc_ocsp_responder_free(r);
}

static int status_only(mc_ocsp_responder *r, const uint8_t *der, size_t len)
{
    OCSP_RESPONSE *resp = ask(r, der, len, NOW, NULL, NULL, NULL);
    int st = OCSP_response_status(resp);
    OCSP_RESPONSE_free(resp);
    return st;
}

/* RFC 6960 2.3 / RFC 5019 2.2.3: a CertID naming another CA (its name and key, or ours with
 * another key), or hashed with neither SHA-1 nor SHA-256, is unauthorized; one such CertID
 * among ours makes the whole response so. */
static void test_unauthorized(void **state)
{
    fixture *fx = *state;
    mc_ocsp_responder *r = responder(fx, 96);
    uint8_t *der;
    size_t len;
    OCSP_CERTID *id = certid(&fx->other, EVP_sha1(), fx->serial[0], SER_LEN);
    len = request_der(&id, 1, 0, NULL, &der);
    assert_int_equal(status_only(r, der, len), OCSP_RESPONSE_STATUS_UNAUTHORIZED);
    OPENSSL_free(der);
    /* our name with the other CA's key */
    ASN1_INTEGER *ai = ASN1_INTEGER_new();
    ASN1_STRING_set(ai, fx->serial[0], SER_LEN);
    id = OCSP_cert_id_new(EVP_sha256(), X509_get_subject_name(fx->ca.cert),
                          X509_get0_pubkey_bitstr(fx->other.cert), ai);
    ASN1_INTEGER_free(ai);
    len = request_der(&id, 1, 0, NULL, &der);
    assert_int_equal(status_only(r, der, len), OCSP_RESPONSE_STATUS_UNAUTHORIZED);
    OPENSSL_free(der);
    /* SHA-384: a hash this responder does not match */
    id = certid(&fx->ca, EVP_sha384(), fx->serial[0], SER_LEN);
    len = request_der(&id, 1, 0, NULL, &der);
    assert_int_equal(status_only(r, der, len), OCSP_RESPONSE_STATUS_UNAUTHORIZED);
    OPENSSL_free(der);
    /* ours and another's together */
    OCSP_CERTID *two[2] = {certid(&fx->ca, EVP_sha1(), fx->serial[0], SER_LEN),
                           certid(&fx->other, EVP_sha1(), fx->serial[1], SER_LEN)};
    len = request_der(two, 2, 0, NULL, &der);
    assert_int_equal(status_only(r, der, len), OCSP_RESPONSE_STATUS_UNAUTHORIZED);
    OPENSSL_free(der);
    /* the passing case: ours under both hashes */
    OCSP_CERTID *ours[2] = {certid(&fx->ca, EVP_sha1(), fx->serial[0], SER_LEN),
                            certid(&fx->ca, EVP_sha256(), fx->serial[0], SER_LEN)};
    len = request_der(ours, 2, 0, NULL, &der);
    assert_int_equal(status_only(r, der, len), OCSP_RESPONSE_STATUS_SUCCESSFUL);
    OPENSSL_free(der);
    assert_int_equal(fx->signatures, 1); /* nothing was signed for the refused ones */
    mc_ocsp_responder_free(r);
}

/* Undecodable requests are malformedRequest, and nothing is signed for them. */
static void test_malformed(void **state)
{
    fixture *fx = *state;
    mc_ocsp_responder *r = responder(fx, 96);
    uint8_t *der;
    OCSP_CERTID *id = certid(&fx->ca, EVP_sha1(), fx->serial[0], SER_LEN);
    size_t len = request_der(&id, 1, 0, NULL, &der);
    assert_int_equal(status_only(r, der, len), OCSP_RESPONSE_STATUS_SUCCESSFUL);
    assert_int_equal(status_only(r, der, 0), OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    assert_int_equal(status_only(r, der, len - 1), OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    uint8_t *longer = malloc(len + 2);
    assert_non_null(longer);
    memcpy(longer, der, len);
    longer[len] = 0x05;
    longer[len + 1] = 0x00;
    assert_int_equal(status_only(r, longer, len + 2), OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    free(longer);
    static const uint8_t junk[] = "GET / HTTP/1.1";
    assert_int_equal(status_only(r, junk, sizeof junk - 1), OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    /* an empty requestList: SEQUENCE { SEQUENCE { SEQUENCE {} } } */
    static const uint8_t empty[] = {0x30, 0x04, 0x30, 0x02, 0x30, 0x00};
    assert_int_equal(status_only(r, empty, sizeof empty), OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    OPENSSL_free(der);
    /* larger than MC_OCSP_REQUEST_MAX */
    uint8_t *big = calloc(1, MC_OCSP_REQUEST_MAX + 1);
    assert_non_null(big);
    assert_int_equal(status_only(r, big, MC_OCSP_REQUEST_MAX + 1),
                     OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    free(big);
    /* more than MC_OCSP_CERTIDS_MAX CertIDs */
    OCSP_CERTID *many[MC_OCSP_CERTIDS_MAX + 1];
    for (int i = 0; i <= MC_OCSP_CERTIDS_MAX; i++)
        many[i] = certid(&fx->ca, EVP_sha1(), fx->serial[i % 5], SER_LEN);
    len = request_der(many, MC_OCSP_CERTIDS_MAX + 1, 0, NULL, &der);
    assert_true(len <= MC_OCSP_REQUEST_MAX);
    assert_int_equal(status_only(r, der, len), OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
    OPENSSL_free(der);
    assert_int_equal(fx->signatures, 1);
    mc_ocsp_responder_free(r);
}

/* Several CertIDs, each answered in order in one signed response. */
static void test_several_certids(void **state)
{
    fixture *fx = *state;
    mc_ocsp_responder *r = responder(fx, 96);
    OCSP_CERTID *ids[MC_OCSP_CERTIDS_MAX];
    for (int i = 0; i < MC_OCSP_CERTIDS_MAX; i++)
        ids[i] = certid(&fx->ca, i % 2 ? EVP_sha256() : EVP_sha1(), fx->serial[i % 5], SER_LEN);
    uint8_t *der;
    size_t len = request_der(ids, MC_OCSP_CERTIDS_MAX, 1, NULL, &der);
    mc_ocsp_answer ans;
    OCSP_RESPONSE *resp = ask(r, der, len, NOW, &ans, NULL, NULL);
    OCSP_BASICRESP *bs = basic_verified(fx, resp);
    assert_int_equal(ans.certids, MC_OCSP_CERTIDS_MAX);
    assert_int_equal(OCSP_resp_count(bs), MC_OCSP_CERTIDS_MAX);
    const int want[] = {V_OCSP_CERTSTATUS_GOOD, V_OCSP_CERTSTATUS_REVOKED,
                        V_OCSP_CERTSTATUS_REVOKED, V_OCSP_CERTSTATUS_UNKNOWN,
                        V_OCSP_CERTSTATUS_UNKNOWN};
    for (int i = 0; i < MC_OCSP_CERTIDS_MAX; i++) {
        OCSP_SINGLERESP *sr = OCSP_resp_get0(bs, i);
        int reason = -9;
        assert_int_equal(OCSP_single_get0_status(sr, &reason, NULL, NULL, NULL), want[i % 5]);
    }
    assert_int_equal(fx->signatures, 1);
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    OPENSSL_free(der);
    mc_ocsp_responder_free(r);
}

/* RFC 6960 4.4.1: the nonce comes back; RFC 8954 2.1: one over 128 octets is malformedRequest. */
static void test_nonce(void **state)
{
    fixture *fx = *state;
    mc_ocsp_responder *r = responder(fx, 96);
    OCSP_REQUEST *req = NULL;
    uint8_t *der;
    OCSP_CERTID *id = certid(&fx->ca, EVP_sha1(), fx->serial[0], SER_LEN);
    size_t len = request_der(&id, 1, 1, &req, &der);
    OCSP_RESPONSE *resp = ask(r, der, len, NOW, NULL, NULL, NULL);
    OCSP_BASICRESP *bs = basic_verified(fx, resp);
    assert_int_equal(OCSP_check_nonce(req, bs), 1); /* present in both and equal */
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    OCSP_REQUEST_free(req);
    OPENSSL_free(der);
    /* without a nonce: none in the response */
    id = certid(&fx->ca, EVP_sha1(), fx->serial[0], SER_LEN);
    len = request_der(&id, 1, 0, &req, &der);
    resp = ask(r, der, len, NOW, NULL, NULL, NULL);
    bs = basic_verified(fx, resp);
    assert_int_equal(OCSP_check_nonce(req, bs), 2); /* absent from both */
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    OCSP_REQUEST_free(req);
    OPENSSL_free(der);
    /* 128 octets accepted, 129 refused */
    const int sizes[] = {MC_OCSP_NONCE_MAX, MC_OCSP_NONCE_MAX + 1};
    for (int k = 0; k < 2; k++) {
        req = OCSP_REQUEST_new();
        assert_non_null(
            OCSP_request_add0_id(req, certid(&fx->ca, EVP_sha1(), fx->serial[0], SER_LEN)));
        unsigned char nonce[MC_OCSP_NONCE_MAX + 1];
        memset(nonce, 0x5a, sizeof nonce);
        assert_int_equal(OCSP_request_add1_nonce(req, nonce, sizes[k]), 1);
        der = NULL;
        int n = i2d_OCSP_REQUEST(req, &der);
        assert_true(n > 0);
        assert_int_equal(status_only(r, der, (size_t)n),
                         k == 0 ? OCSP_RESPONSE_STATUS_SUCCESSFUL
                                : OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
        OPENSSL_free(der);
        OCSP_REQUEST_free(req);
    }
    mc_ocsp_responder_free(r);
}

/* Nonce-less answers are cached per CertID for MC_OCSP_CACHE_SECONDS: a revocation shows at the
 * latest that long after it is recorded; a nonce request is always signed afresh. */
static void test_cache_bounds_revocation_delay(void **state)
{
    fixture *fx = *state;
    mc_ocsp_responder *r = responder(fx, 96);
    uint8_t *der, *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    OCSP_CERTID *id = certid(&fx->ca, EVP_sha1(), fx->serial[0], SER_LEN);
    size_t len = request_der(&id, 1, 0, NULL, &der);
    mc_ocsp_answer ans;
    OCSP_RESPONSE *resp = ask(r, der, len, NOW, &ans, &a, &alen);
    assert_int_equal(ans.cached, 0);
    OCSP_RESPONSE_free(resp);
    resp = ask(r, der, len, NOW + 10, &ans, &b, &blen);
    assert_int_equal(ans.cached, 1);
    assert_int_equal(ans.produced_at, NOW);
    assert_int_equal(alen, blen);
    assert_memory_equal(a, b, alen);
    assert_int_equal(fx->signatures, 1);
    OCSP_RESPONSE_free(resp);
    free(a);
    free(b);
    /* revoked now: still the cached good answer inside the window, revoked once it ends */
    mc_errdetail err;
    mc_revoke_counts rc;
    mc_store_sel one = {.serial = fx->serial[0], .serial_len = SER_LEN};
    assert_int_equal(mc_store_revoke(fx->s, &one, MC_CRL_SUPERSEDED, NOW + 20, 0, &rc, &err),
                     MC_OK);
    resp = ask(r, der, len, NOW + MC_OCSP_CACHE_SECONDS - 1, &ans, NULL, NULL);
    assert_int_equal(ans.cached, 1);
    OCSP_BASICRESP *bs = basic_verified(fx, resp);
    assert_int_equal(status_of(fx, bs, EVP_sha1(), fx->serial[0], NULL, NULL, NULL, NULL),
                     V_OCSP_CERTSTATUS_GOOD);
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    resp = ask(r, der, len, NOW + MC_OCSP_CACHE_SECONDS, &ans, NULL, NULL);
    assert_int_equal(ans.cached, 0);
    bs = basic_verified(fx, resp);
    int reason = -9;
    assert_int_equal(status_of(fx, bs, EVP_sha1(), fx->serial[0], &reason, NULL, NULL, NULL),
                     V_OCSP_CERTSTATUS_REVOKED);
    assert_int_equal(reason, OCSP_REVOKED_STATUS_SUPERSEDED);
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    OPENSSL_free(der);
    /* with a nonce: never from the cache */
    id = certid(&fx->ca, EVP_sha1(), fx->serial[0], SER_LEN);
    len = request_der(&id, 1, 1, NULL, &der);
    int before = fx->signatures;
    resp = ask(r, der, len, NOW + MC_OCSP_CACHE_SECONDS, &ans, NULL, NULL);
    OCSP_RESPONSE_free(resp);
    resp = ask(r, der, len, NOW + MC_OCSP_CACHE_SECONDS, &ans, NULL, NULL);
    assert_int_equal(ans.cached, 0);
    assert_int_equal(fx->signatures, before + 2);
    OCSP_RESPONSE_free(resp);
    OPENSSL_free(der);
    mc_ocsp_responder_free(r);
}

/* A store that cannot answer: tryLater (RFC 6960 2.3), never good. */
static void test_store_failure_try_later(void **state)
{
    fixture *fx = *state;
    mc_ocsp_responder *r = responder(fx, 96);
    OCSP_CERTID *id = certid(&fx->ca, EVP_sha1(), fx->serial[0], SER_LEN);
    uint8_t *der;
    size_t len = request_der(&id, 1, 0, NULL, &der);
    assert_int_equal(status_only(r, der, len), OCSP_RESPONSE_STATUS_SUCCESSFUL);
    /* the tables dropped under the open handle: every read fails */
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "sqlite3 '%s' 'DROP TABLE certificates; DROP TABLE intents;'",
             fx->db);
    if (system(cmd) != 0) {
        mc_ocsp_responder_free(r);
        OPENSSL_free(der);
        skip();
    }
    OPENSSL_free(der);
    id = certid(&fx->ca, EVP_sha1(), fx->serial[1], SER_LEN); /* not in the cache */
    len = request_der(&id, 1, 0, NULL, &der);
    assert_int_equal(status_only(r, der, len), OCSP_RESPONSE_STATUS_TRYLATER);
    OPENSSL_free(der);
    mc_ocsp_responder_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_validity_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_statuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unauthorized, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_several_certids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nonce, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_bounds_revocation_delay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_failure_try_later, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
