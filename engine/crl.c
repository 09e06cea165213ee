/*
 * mc_crl: full CRLs of the issuing CA, built in DER and signed in the HSM (include/mailca/crl.h).
 */
#include "mailca/crl.h"

#include "mailca/config.h"
#include "mailca/crypto.h"
#include "mailca/der.h"
#include "mailca/hsmpool.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sys/file.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const uint8_t OID_AKI[] = {0x55, 0x1d, 0x23};         /* 2.5.29.35 */
static const uint8_t OID_CRL_NUMBER[] = {0x55, 0x1d, 0x14};  /* 2.5.29.20 */
static const uint8_t OID_REASON_CODE[] = {0x55, 0x1d, 0x15}; /* 2.5.29.21 */
#define DER_ENUMERATED 0x0a

/* Bytes an entry takes at most: SEQUENCE { INTEGER (21), Time (17), Extensions (15) } with
 * headers. */
#define CRL_ENTRY_MAX 64

mc_err mc_crl_tbs(const mc_issuer *iss, uint64_t number, int64_t this_update, int64_t next_update,
                  const mc_crl_entry *v, size_t n, uint8_t **out, size_t *out_len,
                  mc_errdetail *err)
{
    mc_err e = MC_OK;
    uint8_t *buf = NULL;
    *out = NULL;
    *out_len = 0;
    /* SBR 4.9.7: nextUpdate no more than ten days beyond thisUpdate */
    if (next_update <= this_update ||
        next_update - this_update > (int64_t)MC_CRL_NEXT_UPDATE_MAX_DAYS * 86400)
        return mc_err_set(err, MC_ERR_INVALID, "next_update", "SBR 4.9.7",
                          "nextUpdate must be after thisUpdate and at most %d days later (%lld s "
                          "given)",
                          MC_CRL_NEXT_UPDATE_MAX_DAYS, (long long)(next_update - this_update));
    for (size_t i = 0; i < n; i++) {
        char field[MC_ERR_FIELD_MAX];
        /* SBR 7.2.2 (no certificateHold for Strict, reasonCode never unspecified) and the
         * reasons this CA revokes subscriber certificates with (store.h, mailca revoke) */
        if (!mc_crl_reason_allowed(v[i].reason)) {
            snprintf(field, sizeof field, "entries[%zu].reason", i);
            return mc_err_set(err, MC_ERR_INVALID, field, "SBR 7.2.2",
                              "CRLReason %d is not one a subscriber certificate is revoked with "
                              "here",
                              v[i].reason);
        }
        /* RFC 5280 4.1.2.2: a serial is at most 20 octets */
        if (v[i].serial_len == 0 || v[i].serial_len > MC_SERIAL_MAX) {
            snprintf(field, sizeof field, "entries[%zu].serial", i);
            return mc_err_set(err, MC_ERR_INVALID, field, "RFC 5280 4.1.2.2",
                              "serial of %zu bytes (1..%d)", v[i].serial_len, MC_SERIAL_MAX);
        }
    }
    mc_bytes alg = mc_sigalg_algid(iss->sigalg);
    if (!alg.len || !iss->name.len || !iss->ski_len)
        return mc_err_set(err, MC_ERR_INVALID, "issuer", NULL,
                          "the issuer has no signature algorithm, name or key identifier");
    size_t cap = 1024 + alg.len + iss->name.len + iss->ski_len + n * CRL_ENTRY_MAX;
    buf = malloc(cap);
    if (!buf)
        return mc_err_set(err, MC_ERR_NOMEM, "entries", NULL, "CRL of %zu entries", n);
    mc_der_w w;
    mc_der_w_init(&w, buf, cap);
    /* a CRL of more than about 300,000 entries passes 16 MiB: 4-octet lengths */
    size_t tbs = mc_der_begin_large(&w, MC_DER_SEQUENCE);
    mc_der_put_small_uint(&w, 1); /* v2: RFC 5280 5.1.2.1, the CRL has extensions */
    mc_der_put_raw(&w, alg.p, alg.len);
    mc_der_put_raw(&w, iss->name.p, iss->name.len);
    mc_der_put_time(&w, this_update);
    mc_der_put_time(&w, next_update);
    if (n) { /* RFC 5280 5.1.2.6: absent, not empty, when nothing is revoked */
        size_t list = mc_der_begin_large(&w, MC_DER_SEQUENCE);
        for (size_t i = 0; i < n; i++) {
            size_t ent = mc_der_begin(&w, MC_DER_SEQUENCE);
            mc_der_put_uint(&w, v[i].serial, v[i].serial_len);
            mc_der_put_time(&w, v[i].revoked_at);
            /* SBR 7.2.2: unspecified (0) is expressed by omitting reasonCode; when present it
             * is not critical (the criticality BOOLEAN is left out: DEFAULT FALSE) */
            if (v[i].reason != 0) {
                size_t exts = mc_der_begin(&w, MC_DER_SEQUENCE);
                size_t ext = mc_der_begin(&w, MC_DER_SEQUENCE);
                mc_der_put(&w, MC_DER_OID, OID_REASON_CODE, sizeof OID_REASON_CODE);
                size_t os = mc_der_begin(&w, MC_DER_OCTETSTRING);
                uint8_t r = (uint8_t)v[i].reason;
                mc_der_put(&w, DER_ENUMERATED, &r, 1);
                mc_der_end(&w, os);
                mc_der_end(&w, ext);
                mc_der_end(&w, exts);
            }
            mc_der_end(&w, ent);
        }
        mc_der_end_large(&w, list);
    }
    size_t ctx = mc_der_begin(&w, MC_DER_CTX_CONS(0));
    size_t exts = mc_der_begin(&w, MC_DER_SEQUENCE);
    /* RFC 5280 5.2.1: authorityKeyIdentifier, the issuing certificate's key identifier */
    size_t aki = mc_der_begin(&w, MC_DER_SEQUENCE);
    mc_der_put(&w, MC_DER_OID, OID_AKI, sizeof OID_AKI);
    size_t aki_os = mc_der_begin(&w, MC_DER_OCTETSTRING);
    size_t aki_seq = mc_der_begin(&w, MC_DER_SEQUENCE);
    mc_der_put(&w, MC_DER_CTX(0), iss->ski, iss->ski_len);
    mc_der_end(&w, aki_seq);
    mc_der_end(&w, aki_os);
    mc_der_end(&w, aki);
    /* RFC 5280 5.2.3: cRLNumber, monotonically increasing (the store hands them out) */
    size_t num = mc_der_begin(&w, MC_DER_SEQUENCE);
    mc_der_put(&w, MC_DER_OID, OID_CRL_NUMBER, sizeof OID_CRL_NUMBER);
    size_t num_os = mc_der_begin(&w, MC_DER_OCTETSTRING);
    mc_der_put_small_uint(&w, number);
    mc_der_end(&w, num_os);
    mc_der_end(&w, num);
    mc_der_end(&w, exts);
    mc_der_end(&w, ctx);
    mc_der_end_large(&w, tbs);
    if (w.err) {
        e = mc_err_set(err, w.err, "crl", NULL, "CRL encoding failed (%s)",
                       w.err == MC_ERR_NOMEM ? "buffer" : "a time out of range");
        free(buf);
        return e;
    }
    *out = buf;
    *out_len = w.len;
    return MC_OK;
}

/* ---- mailca crl ---- */

typedef struct entries {
    mc_crl_entry *v;
    size_t n, cap;
    int oom;
} entries;

static void collect(void *arg, const uint8_t *serial, size_t serial_len, int64_t revoked_at,
                    int reason)
{
    entries *es = arg;
    if (es->oom)
        return;
    if (es->n == es->cap) {
        size_t cap = es->cap ? es->cap * 2 : 1024;
        mc_crl_entry *v = realloc(es->v, cap * sizeof *v);
        if (!v) {
            es->oom = 1;
            return;
        }
        es->v = v;
        es->cap = cap;
    }
    mc_crl_entry *x = &es->v[es->n++];
    x->serial_len = serial_len <= MC_SERIAL_MAX ? serial_len : 0; /* refused by mc_crl_tbs */
    memcpy(x->serial, serial, x->serial_len);
    x->revoked_at = revoked_at;
    x->reason = reason;
}

/* The signed CRL parses and verifies with OpenSSL against the issuing certificate: the key the
 * HSM holds is that certificate's, and the bytes are a CRL other software reads. */
static mc_err check_with_openssl(const mc_issuer *iss, const uint8_t *der, size_t len,
                                 uint64_t number, size_t n, mc_errdetail *err)
{
    const unsigned char *p = iss->cert, *q = der;
    X509 *ca = d2i_X509(NULL, &p, (long)iss->cert_len);
    X509_CRL *crl = d2i_X509_CRL(NULL, &q, (long)len);
    mc_err e = MC_OK;
    if (!ca || !crl || q != der + len) {
        e = mc_err_set(err, MC_ERR_INTERNAL, "crl", NULL, "the CRL does not parse with OpenSSL");
        goto done;
    }
    EVP_PKEY *pub = X509_get0_pubkey(ca);
    ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    STACK_OF(X509_REVOKED) *rev = X509_CRL_get_REVOKED(crl);
    uint64_t got = 0;
    int num_ok = num && ASN1_INTEGER_get_uint64(&got, num) == 1 && got == number;
    ASN1_INTEGER_free(num);
    if (!pub || X509_CRL_verify(crl, pub) != 1)
        e = mc_err_set(err, MC_ERR_HSM, "hsm.key", NULL,
                       "the CRL's signature does not verify with the issuing certificate's key");
    else if (!num_ok || (size_t)(rev ? sk_X509_REVOKED_num(rev) : 0) != n ||
             X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)) != 0)
        e = mc_err_set(err, MC_ERR_INTERNAL, "crl", NULL,
                       "OpenSSL reads another CRL than the one built (number, entries, issuer)");
done:
    X509_CRL_free(crl);
    X509_free(ca);
    return e;
}

/* The cRLNumber of a DER CRL (our reader: no OpenSSL objects for a large file); 0 when the
 * bytes are not a CRL with one. */
static uint64_t crl_number_of(const uint8_t *der, size_t len)
{
    mc_der_cur c = mc_der_cur_make(der, len), l, t, x;
    mc_der_tlv cl, tbs, v, ext, oid, os;
    if (mc_der_expect(&c, MC_DER_SEQUENCE, &cl) != MC_OK)
        return 0;
    l = mc_der_cur_in(&cl);
    if (mc_der_expect(&l, MC_DER_SEQUENCE, &tbs) != MC_OK)
        return 0;
    t = mc_der_cur_in(&tbs);
    while (mc_der_next(&t, &v) == MC_OK) {
        if (v.tag != MC_DER_CTX_CONS(0))
            continue;
        mc_der_cur e = mc_der_cur_in(&v);
        mc_der_tlv exts;
        if (mc_der_expect(&e, MC_DER_SEQUENCE, &exts) != MC_OK)
            return 0;
        x = mc_der_cur_in(&exts);
        while (mc_der_expect(&x, MC_DER_SEQUENCE, &ext) == MC_OK) {
            mc_der_cur in = mc_der_cur_in(&ext);
            mc_der_tlv crit;
            if (mc_der_expect(&in, MC_DER_OID, &oid) != MC_OK ||
                !mc_der_oid_eq(&oid, OID_CRL_NUMBER, sizeof OID_CRL_NUMBER))
                continue;
            mc_der_optional(&in, MC_DER_BOOLEAN, &crit);
            int64_t n = 0;
            if (mc_der_expect(&in, MC_DER_OCTETSTRING, &os) != MC_OK)
                return 0;
            mc_der_cur o = mc_der_cur_in(&os);
            mc_der_tlv num;
            if (mc_der_expect(&o, MC_DER_INTEGER, &num) != MC_OK ||
                mc_der_int_i64(&num, &n) != MC_OK || n < 0)
                return 0;
            return (uint64_t)n;
        }
    }
    return 0;
}

/* Writes der (CRL number) to path through a new temporary file in the same folder and a rename,
 * then syncs the folder. Writers of one path take turns (a lock file beside it), and a CRL with
 * a number at or above ours already at path is never replaced: two runs finishing out of order
 * leave the newer CRL in place. */
static mc_err write_atomic(const char *path, const uint8_t *der, size_t len, uint64_t number,
                           mc_errdetail *err)
{
    char tmp[1100], lockp[1100], dir[1100];
    uint8_t rnd[8];
    mc_err e = MC_OK;
    int lockfd = -1, fd = -1, have_tmp = 0;
    snprintf(lockp, sizeof lockp, "%s.lock", path);
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    if (mc_random(rnd, sizeof rnd) != MC_OK)
        return mc_err_set(err, MC_ERR_IO, "out", NULL, "no random bytes for a temporary name");
    snprintf(tmp, sizeof tmp, "%s.tmp-%02x%02x%02x%02x%02x%02x%02x%02x", path, rnd[0], rnd[1],
             rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    lockfd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (lockfd < 0 || flock(lockfd, LOCK_EX) != 0) {
        e = mc_err_set(err, MC_ERR_IO, "out", NULL, "%s: %s", lockp, strerror(errno));
        goto done;
    }
    size_t old_len = 0;
    FILE *of = fopen(path, "rb");
    if (of) {
        uint8_t *old = NULL;
        if (fseek(of, 0, SEEK_END) == 0 && (old_len = (size_t)ftell(of)) > 0 &&
            fseek(of, 0, SEEK_SET) == 0 && (old = malloc(old_len)) &&
            fread(old, 1, old_len, of) == old_len) {
            uint64_t have = crl_number_of(old, old_len);
            if (have >= number)
                e = mc_err_set(err, MC_ERR_IO, "out", "RFC 5280 5.2.3",
                               "%s already holds CRL number %llu, not older than %llu: kept", path,
                               (unsigned long long)have, (unsigned long long)number);
        }
        free(old);
        fclose(of);
        if (e)
            goto done;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        e = mc_err_set(err, MC_ERR_IO, "out", NULL, "%s: %s", tmp, strerror(errno));
        goto done;
    }
    have_tmp = 1;
    size_t off = 0;
    while (off < len) {
        ssize_t k = write(fd, der + off, len - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        off += (size_t)k;
    }
    int ok = off == len && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    fd = -1;
    if (!ok || rename(tmp, path) != 0) {
        e = mc_err_set(err, MC_ERR_IO, "out", NULL, "%s: %s", path, strerror(errno));
        goto done;
    }
    have_tmp = 0;
    /* the rename itself survives a power loss once the folder is synced */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
done:
    if (fd >= 0)
        close(fd);
    if (have_tmp)
        unlink(tmp);
    if (lockfd >= 0)
        close(lockfd); /* releases the lock */
    return e;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: mailca crl [--config FILE] --out FILE [--next-update-days D]\n"
            "  a full CRL of the issuing CA, signed in the HSM, written as DER; D: 1..%d "
            "(SBR 4.9.7), default %d\n",
            MC_CRL_NEXT_UPDATE_MAX_DAYS, MC_CRL_NEXT_UPDATE_DEFAULT_DAYS);
    return 2;
}

int mc_crl_main(int argc, char **argv)
{
    static const struct option lo[] = {{"config", 1, 0, 'c'},
                                       {"out", 1, 0, 'o'},
                                       {"next-update-days", 1, 0, 'd'},
                                       {"help", 0, 0, 'h'},
                                       {0, 0, 0, 0}};
    const char *cfgp = NULL, *outp = NULL;
    long days = MC_CRL_NEXT_UPDATE_DEFAULT_DAYS;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        char *end = NULL;
        if (ch == 'c')
            cfgp = optarg;
        else if (ch == 'o')
            outp = optarg;
        else if (ch == 'd') {
            days = strtol(optarg, &end, 10);
            if (!*optarg || *end)
                return usage();
        } else if (ch == 'h') {
            usage();
            return 0;
        } else {
            return usage();
        }
    }
    if (optind != argc || !outp)
        return usage();
    mc_errdetail e;
    mc_err_clear(&e);
    mc_config cfg;
    mc_issuer iss;
    memset(&iss, 0, sizeof iss);
    mc_store *s = NULL;
    mc_hsmpool *pool = NULL;
    mc_hsmpool_session ps;
    memset(&ps, 0, sizeof ps);
    entries es = {0};
    uint8_t *tbs = NULL, *crl = NULL;
    size_t tbs_len = 0, crl_len = 0;
    uint64_t number = 0;
    char pin[256] = "";
    mc_digests d;
    int have_digests = 0;
    mc_err rc = MC_OK;
    const int64_t now = (int64_t)time(NULL);
    const int64_t next = now + (int64_t)days * 86400;
    if (days < 1 || days > MC_CRL_NEXT_UPDATE_MAX_DAYS) {
        rc = mc_err_set(&e, MC_ERR_INVALID, "next-update-days", "SBR 4.9.7",
                        "%ld is not 1..%d days", days, MC_CRL_NEXT_UPDATE_MAX_DAYS);
        goto done;
    }
    if ((rc = mc_config_load(mc_config_path(cfgp), &cfg, &e)) != MC_OK)
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
    /* the entries and the number in one locked transaction: a higher number never lists less;
     * a number whose CRL then fails to sign stays unused (numbers increase, not consecutively) */
    if ((rc = mc_store_open(cfg.store_sqlite, &s, &e)) != MC_OK ||
        (rc = mc_store_crl_begin(s, now, next, collect, &es, &number, &e)) != MC_OK)
        goto done;
    if (es.oom) {
        rc = mc_err_set(&e, MC_ERR_NOMEM, "entries", NULL, "%zu revoked certificates", es.n);
        goto done;
    }
    if ((rc = mc_crl_tbs(&iss, number, now, next, es.v, es.n, &tbs, &tbs_len, &e)) != MC_OK)
        goto done;
    if ((rc = mc_config_read_pin(&cfg, pin, sizeof pin, &e)) != MC_OK)
        goto done;
    rc = mc_hsmpool_open(cfg.hsm_module, cfg.hsm_key, pin, &pool, &e);
    OPENSSL_cleanse(pin, sizeof pin);
    if (rc != MC_OK || (rc = mc_hsmpool_session_open(pool, 0, &ps, &e)) != MC_OK)
        goto done;
    /* the digest the mechanism signs (none for Ed25519: the whole TBS), as for a certificate */
    uint8_t dg[EVP_MAX_MD_SIZE], sig[1024];
    const uint8_t *in = tbs;
    size_t inlen = tbs_len, sig_len = sizeof sig;
    const EVP_MD *md = mc_digests_for_sigalg(&d, iss.sigalg);
    if (md) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        unsigned dl = 0;
        rc = ctx ? mc_digest(ctx, md, tbs, tbs_len, dg, &dl) : MC_ERR_NOMEM;
        EVP_MD_CTX_free(ctx);
        if (rc != MC_OK) {
            mc_crypto_err(&e, "crl", "digest");
            goto done;
        }
        in = dg;
        inlen = dl;
    }
    if ((rc = mc_hsmpool_sign(pool, &ps, iss.sigalg, in, inlen, sig, &sig_len, &e)) != MC_OK)
        goto done;
    size_t cap = tbs_len + sig_len + 256;
    if (!(crl = malloc(cap))) {
        rc = mc_err_set(&e, MC_ERR_NOMEM, "crl", NULL, "CRL of %zu bytes", cap);
        goto done;
    }
    /* CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue } (the
     * signature in its X.509 form, as for a certificate); 4-octet lengths for large CRLs */
    mc_bytes algid = mc_sigalg_algid(iss.sigalg);
    mc_der_w w;
    mc_der_w_init(&w, crl, cap);
    size_t m = mc_der_begin_large(&w, MC_DER_SEQUENCE);
    mc_der_put_raw(&w, tbs, tbs_len);
    mc_der_put_raw(&w, algid.p, algid.len);
    mc_der_put_bits(&w, sig, sig_len);
    mc_der_end_large(&w, m);
    if (w.err != MC_OK) {
        rc = mc_err_set(&e, w.err, "crl", NULL, "CRL assembly failed");
        goto done;
    }
    crl_len = w.len;
    if ((rc = check_with_openssl(&iss, crl, crl_len, number, es.n, &e)) != MC_OK ||
        (rc = write_atomic(outp, crl, crl_len, number, &e)) != MC_OK ||
        (rc = mc_store_crl_published(s, number, (int64_t)time(NULL), &e)) != MC_OK)
        goto done;
    char t1[32], t2[32];
    struct tm tm;
    time_t tt = (time_t)now, tn = (time_t)next;
    strftime(t1, sizeof t1, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&tt, &tm));
    strftime(t2, sizeof t2, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&tn, &tm));
    printf("mailca crl: CRL number %llu, %zu revoked certificate(s), thisUpdate %s, nextUpdate %s, "
           "%zu bytes written to %s\n",
           (unsigned long long)number, es.n, t1, t2, crl_len, outp);
done:
    if (ps.s)
        mc_hsmpool_session_close(pool, &ps);
    mc_hsmpool_close(pool);
    mc_store_close(s);
    mc_issuer_free(&iss);
    if (have_digests)
        mc_digests_free(&d);
    free(es.v);
    free(tbs);
    free(crl);
    if (rc != MC_OK) {
        char buf[600];
        fprintf(stderr, "mailca crl: %s\n", mc_err_format(&e, buf, sizeof buf));
        return 1;
    }
    return 0;
}
