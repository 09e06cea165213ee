/*
 * mc_crl: full and sharded CRLs of the issuing CA, built in DER and signed in the HSM
 * (include/mailca/crl.h); the shard helpers the profile compiler and the TBS builder use.
 */
#include "mailca/crl.h"

#include "mailca/audit.h"

#include "mailca/config.h"
#include "mailca/crypto.h"
#include "mailca/x509.h"
#include "mailca/der.h"
#include "mailca/hsmpool.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sys/stat.h>
#include <sys/file.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const uint8_t OID_AKI[] = {0x55, 0x1d, 0x23};         /* 2.5.29.35 */
static const uint8_t OID_CRL_NUMBER[] = {0x55, 0x1d, 0x14};  /* 2.5.29.20 */
static const uint8_t OID_REASON_CODE[] = {0x55, 0x1d, 0x15}; /* 2.5.29.21 */
static const uint8_t OID_IDP[] = {0x55, 0x1d, 0x1c};         /* 2.5.29.28 */
#define IDP_URL_MAX 1024
#define DER_ENUMERATED 0x0a

/* Bytes an entry takes at most: SEQUENCE { INTEGER (21), Time (17), Extensions (15) } with
 * headers. */
#define CRL_ENTRY_MAX 64

unsigned mc_crl_shard_of(const uint8_t *serial, size_t serial_len, unsigned shards)
{
    if (shards <= 1 || !serial)
        return 0;
    uint32_t x = 0;
    size_t from = serial_len > 4 ? serial_len - 4 : 0;
    for (size_t i = from; i < serial_len; i++)
        x = (x << 8) | serial[i];
    return x % shards;
}

void mc_crl_shard_digits(uint8_t *p, unsigned shard)
{
    for (int i = MC_CRL_SHARD_DIGITS - 1; i >= 0; i--) {
        p[i] = (uint8_t)('0' + shard % 10);
        shard /= 10;
    }
}

static int file_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

mc_err mc_crl_url_check(const char *url, unsigned shards, mc_errdetail *err)
{
    if (shards < 1 || shards > MC_CRL_SHARDS_MAX)
        return mc_err_set(err, MC_ERR_CONFIG, "ca.crl_shards", NULL, "%u is not 1..%d", shards,
                          MC_CRL_SHARDS_MAX);
    const char *ph = url ? strstr(url, MC_CRL_SHARD_PLACEHOLDER) : NULL;
    if (shards == 1) {
        if (ph)
            return mc_err_set(err, MC_ERR_CONFIG, "ca.crl_url", "ca.crl_shards",
                              "'%s' holds " MC_CRL_SHARD_PLACEHOLDER
                              " but ca.crl_shards is 1 (one CRL, one URL)",
                              url);
        return MC_OK;
    }
    if (!ph)
        return mc_err_set(err, MC_ERR_CONFIG, "ca.crl_url", "ca.crl_shards",
                          "ca.crl_shards is %u: the URL '%s' must hold " MC_CRL_SHARD_PLACEHOLDER
                          " (replaced by each certificate's shard number)",
                          shards, url ? url : "");
    const char *after = ph + strlen(MC_CRL_SHARD_PLACEHOLDER);
    if (strstr(after, MC_CRL_SHARD_PLACEHOLDER))
        return mc_err_set(err, MC_ERR_CONFIG, "ca.crl_url", "ca.crl_shards",
                          "'%s' holds " MC_CRL_SHARD_PLACEHOLDER " more than once", url);
    /* the last path segment names the shard's file: the placeholder in it, nothing a file name
     * or a URL would read otherwise (no '/', query, fragment, "..") */
    const char *seg = strrchr(url, '/');
    const char *scheme = strstr(url, "://");
    if (!seg || !scheme || seg < scheme + 3 || seg > ph || strchr(seg + 1, '{') != ph)
        return mc_err_set(err, MC_ERR_CONFIG, "ca.crl_url", "ca.crl_shards",
                          "'%s': " MC_CRL_SHARD_PLACEHOLDER
                          " must be in the URL's last path segment (the shard's file name)",
                          url);
    for (const char *c = seg + 1; *c; c++) {
        if (c == ph) {
            c = after - 1;
            continue;
        }
        if (!file_char(*c))
            return mc_err_set(err, MC_ERR_CONFIG, "ca.crl_url", "ca.crl_shards",
                              "'%s': the last path segment may hold only A-Z a-z 0-9 . _ - "
                              "beside " MC_CRL_SHARD_PLACEHOLDER,
                              url);
    }
    return MC_OK;
}

mc_err mc_crl_shard_url(const char *tmpl, unsigned shard, char *out, size_t cap, char *file,
                        size_t fcap, mc_errdetail *err)
{
    const char *ph = tmpl ? strstr(tmpl, MC_CRL_SHARD_PLACEHOLDER) : NULL;
    if (!ph)
        return mc_err_set(err, MC_ERR_INVALID, "ca.crl_url", "ca.crl_shards",
                          "no " MC_CRL_SHARD_PLACEHOLDER " in the CRL URL");
    size_t pre = (size_t)(ph - tmpl);
    const char *post = ph + strlen(MC_CRL_SHARD_PLACEHOLDER);
    size_t need = pre + MC_CRL_SHARD_DIGITS + strlen(post) + 1;
    if (need > cap)
        return mc_err_set(err, MC_ERR_INVALID, "ca.crl_url", NULL, "shard URL of %zu bytes", need);
    memcpy(out, tmpl, pre);
    mc_crl_shard_digits((uint8_t *)out + pre, shard);
    strcpy(out + pre + MC_CRL_SHARD_DIGITS, post);
    if (file) {
        const char *seg = strrchr(out, '/');
        seg = seg ? seg + 1 : out;
        if (strlen(seg) + 1 > fcap)
            return mc_err_set(err, MC_ERR_INVALID, "ca.crl_url", NULL, "file name too long");
        strcpy(file, seg);
    }
    return MC_OK;
}

mc_err mc_crl_tbs(const mc_issuer *iss, uint64_t number, int64_t this_update, int64_t next_update,
                  const char *idp_url, const mc_crl_entry *v, size_t n, uint8_t **out,
                  size_t *out_len, mc_errdetail *err)
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
    size_t idp_len = idp_url ? strlen(idp_url) : 0;
    if (idp_url && (idp_len == 0 || idp_len > IDP_URL_MAX))
        return mc_err_set(err, MC_ERR_INVALID, "idp_url", "RFC 5280 5.2.5",
                          "issuingDistributionPoint URI of %zu bytes (1..%d)", idp_len,
                          IDP_URL_MAX);
    mc_bytes alg = mc_sigalg_algid(iss->sigalg);
    if (!alg.len || !iss->name.len || !iss->ski_len)
        return mc_err_set(err, MC_ERR_INVALID, "issuer", NULL,
                          "the issuer has no signature algorithm, name or key identifier");
    size_t cap = 1024 + idp_len + alg.len + iss->name.len + iss->ski_len + n * CRL_ENTRY_MAX;
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
    if (idp_url) {
        /* RFC 5280 5.2.5: issuingDistributionPoint, critical; a shard lists only the
         * certificates whose cRLDistributionPoints name this URI, so a relying party must not
         * take it for a complete CRL. distributionPoint [0] holds a CHOICE (explicit),
         * fullName [0] GeneralNames with one uniformResourceIdentifier [6];
         * onlyContainsUserCerts [1] TRUE: subscriber certificates only (SBR 7.1.2.3) */
        size_t idp = mc_der_begin(&w, MC_DER_SEQUENCE);
        mc_der_put(&w, MC_DER_OID, OID_IDP, sizeof OID_IDP);
        mc_der_put_bool(&w, 1);
        size_t idp_os = mc_der_begin(&w, MC_DER_OCTETSTRING);
        size_t idp_seq = mc_der_begin(&w, MC_DER_SEQUENCE);
        size_t dp = mc_der_begin(&w, MC_DER_CTX_CONS(0));
        size_t full = mc_der_begin(&w, MC_DER_CTX_CONS(0));
        mc_der_put(&w, MC_DER_CTX(6), idp_url, idp_len);
        mc_der_end(&w, full);
        mc_der_end(&w, dp);
        uint8_t t = 0xff;
        mc_der_put(&w, MC_DER_CTX(1), &t, 1);
        mc_der_end(&w, idp_seq);
        mc_der_end(&w, idp_os);
        mc_der_end(&w, idp);
    }
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
/* A shard's issuingDistributionPoint as OpenSSL reads it: critical, one fullName URI equal to
 * url, onlyContainsUserCerts. */
static int idp_matches(X509_CRL *crl, const char *url)
{
    int i = X509_CRL_get_ext_by_NID(crl, NID_issuing_distribution_point, -1);
    X509_EXTENSION *x = i >= 0 ? X509_CRL_get_ext(crl, i) : NULL;
    if (!x || !X509_EXTENSION_get_critical(x))
        return 0;
    ISSUING_DIST_POINT *idp = X509_CRL_get_ext_d2i(crl, NID_issuing_distribution_point, NULL, NULL);
    int ok = 0;
    if (idp && idp->distpoint && idp->distpoint->type == 0 && idp->onlyuser > 0 &&
        sk_GENERAL_NAME_num(idp->distpoint->name.fullname) == 1) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(idp->distpoint->name.fullname, 0);
        ok = g->type == GEN_URI &&
             (size_t)ASN1_STRING_length(g->d.uniformResourceIdentifier) == strlen(url) &&
             memcmp(ASN1_STRING_get0_data(g->d.uniformResourceIdentifier), url, strlen(url)) == 0;
    }
    ISSUING_DIST_POINT_free(idp);
    return ok;
}

static mc_err check_with_openssl(const mc_issuer *iss, const uint8_t *der, size_t len,
                                 uint64_t number, size_t n, const char *idp_url, mc_errdetail *err)
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
    else if (idp_url ? !idp_matches(crl, idp_url)
                     : X509_CRL_get_ext_by_NID(crl, NID_issuing_distribution_point, -1) >= 0)
        e = mc_err_set(err, MC_ERR_INTERNAL, "crl", "RFC 5280 5.2.5",
                       "OpenSSL reads another issuingDistributionPoint than the one built");
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
                           int locked, mc_errdetail *err)
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
    /* locked: the caller holds a lock over every file it writes (the shards of one run) */
    if (!locked && ((lockfd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644)) < 0 ||
                    flock(lockfd, LOCK_EX) != 0)) {
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
    /* the rename itself survives a power loss once the folder is synced (a caller holding the
     * lock over many files syncs the folder once, after the last) */
    int dfd = locked ? -1 : open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
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
    fprintf(
        stderr,
        "usage: mailca crl [--config FILE] (--out FILE | --out-dir DIR) "
        "[--next-update-days D]\n"
        "  --out FILE     the full CRL of the issuing CA (every revoked certificate), signed in\n"
        "                 the HSM, written as DER: the CRL of ca.crl_url when ca.crl_shards\n"
        "                 is 1, or of the URL certificates issued before sharding carry\n"
        "  --out-dir DIR  ca.crl_shards > 1: one CRL per shard, DIR/<the URL's last path\n"
        "                 segment>, each listing the certificates whose CRL distribution\n"
        "                 point names it, with a critical issuingDistributionPoint\n"
        "                 (RFC 5280 5.2.5); empty shards are written too\n"
        "  D: 1..%d days (SBR 4.9.7), default %d\n",
        MC_CRL_NEXT_UPDATE_MAX_DAYS, MC_CRL_NEXT_UPDATE_DEFAULT_DAYS);
    return 2;
}

/* Everything a run signs with: the issuer, the digests, an HSM session. */
typedef struct signer {
    mc_issuer iss;
    mc_digests d;
    int have_digests;
    mc_hsmpool *pool;
    mc_hsmpool_session ps;
} signer;

static mc_err signer_open(const mc_config *cfg, signer *sg, mc_errdetail *e)
{
    char pin[256] = "";
    mc_sigalg alg = MC_SIG_NONE;
    mc_err rc;
    if (cfg->ca_signature[0] && (alg = mc_sigalg_from_name(cfg->ca_signature)) == MC_SIG_NONE)
        return mc_err_set(e, MC_ERR_CONFIG, "ca.signature", NULL,
                          "unknown signature algorithm '%s'", cfg->ca_signature);
    if ((rc = mc_issuer_load(cfg->ca_certificate, alg, &sg->iss, e)) != MC_OK ||
        (rc = mc_digests_fetch(&sg->d, e)) != MC_OK)
        return rc;
    sg->have_digests = 1;
    if ((rc = mc_config_read_pin(cfg, pin, sizeof pin, e)) != MC_OK)
        return rc;
    rc = mc_hsmpool_open(cfg->hsm_module, cfg->hsm_key, pin, &sg->pool, e);
    OPENSSL_cleanse(pin, sizeof pin);
    if (rc != MC_OK)
        return rc;
    return mc_hsmpool_session_open(sg->pool, 0, &sg->ps, e);
}

static void signer_close(signer *sg)
{
    if (sg->ps.s)
        mc_hsmpool_session_close(sg->pool, &sg->ps);
    mc_hsmpool_close(sg->pool);
    mc_issuer_free(&sg->iss);
    if (sg->have_digests)
        mc_digests_free(&sg->d);
}

/* Signs tbs in the HSM into a CertificateList (*crl malloc'd; the caller frees it). */
static mc_err sign_crl(signer *sg, const uint8_t *tbs, size_t tbs_len, uint8_t **crl,
                       size_t *crl_len, mc_errdetail *e)
{
    mc_err rc;
    /* the digest the mechanism signs (none for Ed25519: the whole TBS), as for a certificate */
    uint8_t dg[EVP_MAX_MD_SIZE], sig[1024];
    const uint8_t *in = tbs;
    size_t inlen = tbs_len, sig_len = sizeof sig;
    *crl = NULL;
    const EVP_MD *md = mc_digests_for_sigalg(&sg->d, sg->iss.sigalg);
    if (md) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        unsigned dl = 0;
        rc = ctx ? mc_digest(ctx, md, tbs, tbs_len, dg, &dl) : MC_ERR_NOMEM;
        EVP_MD_CTX_free(ctx);
        if (rc != MC_OK)
            return mc_crypto_err(e, "crl", "digest");
        in = dg;
        inlen = dl;
    }
    if ((rc = mc_hsmpool_sign(sg->pool, &sg->ps, sg->iss.sigalg, in, inlen, sig, &sig_len, e)) !=
        MC_OK)
        return rc;
    size_t cap = tbs_len + sig_len + 256;
    uint8_t *buf = malloc(cap);
    if (!buf)
        return mc_err_set(e, MC_ERR_NOMEM, "crl", NULL, "CRL of %zu bytes", cap);
    /* CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue } (the
     * signature in its X.509 form, as for a certificate); 4-octet lengths for large CRLs */
    mc_bytes algid = mc_sigalg_algid(sg->iss.sigalg);
    mc_der_w w;
    mc_der_w_init(&w, buf, cap);
    size_t m = mc_der_begin_large(&w, MC_DER_SEQUENCE);
    mc_der_put_raw(&w, tbs, tbs_len);
    mc_der_put_raw(&w, algid.p, algid.len);
    mc_der_put_bits(&w, sig, sig_len);
    mc_der_end_large(&w, m);
    if (w.err != MC_OK) {
        free(buf);
        return mc_err_set(e, w.err, "crl", NULL, "CRL assembly failed");
    }
    *crl = buf;
    *crl_len = w.len;
    return MC_OK;
}

static void fmt_time(int64_t t, char *buf, size_t cap)
{
    struct tm tm;
    time_t tt = (time_t)t;
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&tt, &tm));
}

/* --out FILE: the full CRL (today's behaviour, and the CRL of certificates issued before the
 * CA went to shards). */

/* SBR 5.4.1 2.v: the CRLs generated, in the audit log once published (numbers first..last,
 * shards of them, 0 for a full CRL; the revoked certificates they list). */
static mc_err audit_crl(mc_store *s, const char *where, uint64_t first, uint64_t last,
                        size_t shards, size_t listed, int64_t this_update, int64_t next_update,
                        mc_errdetail *e)
{
    mc_audit_json j;
    mc_audit_json_begin(&j);
    mc_audit_json_int(&j, "first_number", (int64_t)first);
    mc_audit_json_int(&j, "last_number", (int64_t)last);
    mc_audit_json_int(&j, "shards", (int64_t)shards);
    mc_audit_json_int(&j, "entries", (int64_t)listed);
    mc_audit_json_int(&j, "this_update", this_update);
    mc_audit_json_int(&j, "next_update", next_update);
    const char *detail = mc_audit_json_end(&j);
    mc_err rc = detail ? mc_audit_record(s, "crl.published", where, detail, e)
                       : mc_err_set(e, MC_ERR_NOMEM, NULL, NULL, "audit: crl.published");
    mc_audit_json_free(&j);
    return rc;
}

static mc_err run_full(const mc_config *cfg, const char *outp, int64_t now, int64_t next,
                       mc_errdetail *e)
{
    signer sg;
    memset(&sg, 0, sizeof sg);
    mc_store *s = NULL;
    entries es = {0};
    uint8_t *tbs = NULL, *crl = NULL;
    size_t tbs_len = 0, crl_len = 0;
    uint64_t number = 0;
    mc_err rc;
    if ((rc = signer_open(cfg, &sg, e)) != MC_OK)
        goto done;
    /* the entries and the number in one locked transaction: a higher number never lists less;
     * a number whose CRL then fails to sign stays unused (numbers increase, not consecutively) */
    if ((rc = mc_store_open(cfg->store_sqlite, &s, e)) != MC_OK ||
        (rc = mc_store_crl_begin(s, now, next, collect, &es, &number, e)) != MC_OK)
        goto done;
    if (es.oom) {
        rc = mc_err_set(e, MC_ERR_NOMEM, "entries", NULL, "%zu revoked certificates", es.n);
        goto done;
    }
    if ((rc = mc_crl_tbs(&sg.iss, number, now, next, NULL, es.v, es.n, &tbs, &tbs_len, e)) !=
            MC_OK ||
        (rc = sign_crl(&sg, tbs, tbs_len, &crl, &crl_len, e)) != MC_OK ||
        (rc = check_with_openssl(&sg.iss, crl, crl_len, number, es.n, NULL, e)) != MC_OK ||
        (rc = write_atomic(outp, crl, crl_len, number, 0, e)) != MC_OK ||
        (rc = mc_store_crl_published(s, number, (int64_t)time(NULL), e)) != MC_OK ||
        (rc = audit_crl(s, outp, number, number, 0, es.n, now, next, e)) != MC_OK)
        goto done;
    char t1[32], t2[32];
    fmt_time(now, t1, sizeof t1);
    fmt_time(next, t2, sizeof t2);
    printf("mailca crl: CRL number %llu, %zu revoked certificate(s), thisUpdate %s, nextUpdate %s, "
           "%zu bytes written to %s\n",
           (unsigned long long)number, es.n, t1, t2, crl_len, outp);
done:
    signer_close(&sg);
    mc_store_close(s);
    free(es.v);
    free(tbs);
    free(crl);
    return rc;
}

/* Shard numbers a certificate's URL can carry: MC_CRL_SHARD_DIGITS decimal digits. */
#define SHARD_SPACE 10000

/* The revoked certificates of a sharded run, each with the shard its own URL names. */
typedef struct shard_run {
    entries es;
    uint16_t *shard; /* parallel to es.v */
    size_t shard_cap;
    int64_t count[SHARD_SPACE];
    uint8_t served[SHARD_SPACE]; /* published by this run */
    int64_t unsharded;           /* revoked certificates whose TBS names no shard of this URL */
    const char *tmpl;            /* ca.crl_url, with its "{shard}" */
    unsigned shards;             /* ca.crl_shards */
    mc_store_crl_shard *plan;
    size_t nplan;
} shard_run;

/* Is the URI uri (n bytes) tmpl with its placeholder replaced by digits? 1 and *k when so. */
static int uri_shard(const uint8_t *uri, size_t n, const char *tmpl, unsigned *k)
{
    const char *ph = strstr(tmpl, MC_CRL_SHARD_PLACEHOLDER);
    if (!ph)
        return 0;
    size_t pre = (size_t)(ph - tmpl);
    const char *suf = ph + strlen(MC_CRL_SHARD_PLACEHOLDER);
    size_t sl = strlen(suf);
    if (n != pre + MC_CRL_SHARD_DIGITS + sl || memcmp(uri, tmpl, pre) != 0 ||
        memcmp(uri + pre + MC_CRL_SHARD_DIGITS, suf, sl) != 0)
        return 0;
    unsigned v = 0;
    for (int i = 0; i < MC_CRL_SHARD_DIGITS; i++) {
        uint8_t c = uri[pre + (size_t)i];
        if (c < '0' || c > '9')
            return 0;
        v = v * 10 + (unsigned)(c - '0');
    }
    *k = v;
    return 1;
}

int mc_crl_shard_of_tbs(const uint8_t *tbs, size_t len, const char *tmpl, unsigned *shard)
{
    static const uint8_t oid_crldp[] = {0x55, 0x1d, 0x1f};
    mc_x509 x;
    mc_errdetail e;
    if (mc_x509_parse_tbs(tbs, len, &x, &e) != MC_OK)
        return 0;
    const mc_x509_ext *ext = mc_x509_find_ext(&x, oid_crldp, sizeof oid_crldp);
    if (!ext || ext->value.tag != MC_DER_SEQUENCE)
        return 0;
    /* CRLDistributionPoints: DistributionPoint { [0] distributionPoint { [0] fullName
     * GeneralNames } }, the first URI that is a shard URL of tmpl */
    mc_der_cur c = mc_der_cur_in(&ext->value);
    mc_der_tlv dp, dpn, full, gn;
    while (!mc_der_cur_empty(&c)) {
        if (mc_der_next(&c, &dp) != MC_OK || dp.tag != MC_DER_SEQUENCE)
            return 0;
        mc_der_cur d = mc_der_cur_in(&dp);
        if (!mc_der_optional(&d, MC_DER_CTX_CONS(0), &dpn))
            continue;
        mc_der_cur nm = mc_der_cur_in(&dpn);
        if (!mc_der_optional(&nm, MC_DER_CTX_CONS(0), &full))
            continue;
        mc_der_cur f = mc_der_cur_in(&full);
        while (!mc_der_cur_empty(&f)) {
            if (mc_der_next(&f, &gn) != MC_OK)
                return 0;
            if (gn.tag == MC_DER_CTX(6) && uri_shard(gn.val, gn.len, tmpl, shard))
                return 1;
        }
    }
    return 0;
}

/* tbs: the certificate's recorded TBSCertificate; its CRL DP names its shard. */
static void collect_shard(void *arg, const uint8_t *serial, size_t serial_len, int64_t revoked_at,
                          int reason, const uint8_t *tbs, size_t tbs_len)
{
    shard_run *r = arg;
    unsigned k = 0;
    if (!tbs || !mc_crl_shard_of_tbs(tbs, tbs_len, r->tmpl, &k) || k >= SHARD_SPACE) {
        r->unsharded++;
        return;
    }
    size_t before = r->es.n;
    collect(&r->es, serial, serial_len, revoked_at, reason);
    if (r->es.n == before)
        return; /* out of memory: es.oom says so */
    if (r->shard_cap < r->es.cap) {
        uint16_t *v = realloc(r->shard, r->es.cap * sizeof *v);
        if (!v) {
            r->es.oom = 1;
            return;
        }
        r->shard = v;
        r->shard_cap = r->es.cap;
    }
    r->shard[r->es.n - 1] = (uint16_t)k;
    r->count[k]++;
}

/* The shards of this run: every shard of ca.crl_shards (empty ones too: a relying party
 * fetching a shard URL must find a current CRL), any other shard a revoked certificate names,
 * and every shard published before (certificates issued when ca.crl_shards was larger name
 * them: their URLs still have to be served). */
static int plan_shards(void *arg, const unsigned *known, size_t nknown, mc_store_crl_shard **v,
                       size_t *n)
{
    shard_run *r = arg;
    for (size_t i = 0; i < nknown; i++)
        if (known[i] < SHARD_SPACE)
            r->served[known[i]] = 1;
    size_t k = 0;
    for (unsigned i = 0; i < SHARD_SPACE; i++) {
        r->served[i] |= i < r->shards || r->count[i] > 0;
        k += r->served[i];
    }
    r->plan = calloc(k, sizeof *r->plan);
    if (!r->plan)
        return -1;
    r->nplan = 0;
    for (unsigned i = 0; i < SHARD_SPACE; i++)
        if (r->served[i]) {
            r->plan[r->nplan].shard = i;
            r->plan[r->nplan++].entries = r->count[i];
        }
    *v = r->plan;
    *n = r->nplan;
    return 0;
}

/* The lock of a run over DIR: one at a time writes its shards (a later run never leaves an
 * older shard behind a newer one). */
static mc_err lock_dir(const char *dir, int *fd, mc_errdetail *e)
{
    char p[1100];
    snprintf(p, sizeof p, "%s/.mailca-crl.lock", dir);
    *fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (*fd < 0 || flock(*fd, LOCK_EX) != 0)
        return mc_err_set(e, MC_ERR_IO, "out-dir", NULL, "%s: %s", p, strerror(errno));
    return MC_OK;
}

/* The first n shards of plan are in dir: one folder sync makes their renames durable, then one
 * statement records them published (their numbers are consecutive: one locked transaction
 * took them). */
static mc_err publish_written(mc_store *s, const char *dir, const mc_store_crl_shard *plan,
                              size_t n, mc_errdetail *e)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) {
        mc_err rc = mc_err_set(e, MC_ERR_IO, "out-dir", NULL, "%s: %s", dir, strerror(errno));
        if (dfd >= 0)
            close(dfd);
        return rc;
    }
    close(dfd);
    return mc_store_crl_published_range(s, plan[0].number, plan[n - 1].number, (int64_t)time(NULL),
                                        e);
}

/* --out-dir DIR: every shard, in one store transaction (numbers) and under one folder lock. */
static mc_err run_shards(const mc_config *cfg, const char *dir, int64_t now, int64_t next,
                         mc_errdetail *e)
{
    signer sg;
    memset(&sg, 0, sizeof sg);
    mc_store *s = NULL;
    shard_run *r = calloc(1, sizeof *r);
    mc_crl_entry *sorted = NULL;
    size_t *start = NULL;
    uint8_t *tbs = NULL, *crl = NULL;
    size_t tbs_len = 0, crl_len = 0, bytes = 0;
    int lockfd = -1;
    size_t written = 0; /* shard files renamed into place, not yet recorded as published */
    mc_err rc = MC_OK;
    struct stat st;
    if (!r)
        return mc_err_set(e, MC_ERR_NOMEM, "entries", NULL, "shard table");
    r->shards = (unsigned)cfg->ca_crl_shards;
    r->tmpl = cfg->ca_crl_url;
    if ((rc = mc_crl_url_check(cfg->ca_crl_url, r->shards, e)) != MC_OK)
        goto done;
    if (!strstr(r->tmpl, MC_CRL_SHARD_PLACEHOLDER)) {
        rc = mc_err_set(e, MC_ERR_CONFIG, "ca.crl_url", "ca.crl_shards",
                        "no " MC_CRL_SHARD_PLACEHOLDER " in '%s'", r->tmpl);
        goto done;
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        rc = mc_err_set(e, MC_ERR_IO, "out-dir", NULL, "%s: not a folder", dir);
        goto done;
    }
    if ((rc = lock_dir(dir, &lockfd, e)) != MC_OK || (rc = signer_open(cfg, &sg, e)) != MC_OK ||
        (rc = mc_store_open(cfg->store_sqlite, &s, e)) != MC_OK ||
        (rc = mc_store_crl_shards_begin(s, now, next, collect_shard, plan_shards, r, e)) != MC_OK)
        goto done;
    if (r->es.oom) {
        rc = mc_err_set(e, MC_ERR_NOMEM, "entries", NULL, "%zu revoked certificates", r->es.n);
        goto done;
    }
    /* each shard's entries together, still in serial order (a stable counting sort) */
    sorted = malloc((r->es.n ? r->es.n : 1) * sizeof *sorted);
    start = calloc(SHARD_SPACE + 1, sizeof *start);
    if (!sorted || !start) {
        rc = mc_err_set(e, MC_ERR_NOMEM, "entries", NULL, "%zu revoked certificates", r->es.n);
        goto done;
    }
    for (unsigned k = 0; k < SHARD_SPACE; k++)
        start[k + 1] = start[k] + (size_t)r->count[k];
    for (size_t i = 0; i < r->es.n; i++)
        sorted[start[r->shard[i]]++] = r->es.v[i];
    for (unsigned k = SHARD_SPACE; k > 0; k--) /* back to each shard's first entry */
        start[k] = start[k - 1];
    start[0] = 0;
    for (size_t i = 0; i < r->nplan; i++) {
        const mc_store_crl_shard *sh = &r->plan[i];
        char url[1100], file[256], path[1400];
        if ((rc = mc_crl_shard_url(cfg->ca_crl_url, sh->shard, url, sizeof url, file, sizeof file,
                                   e)) != MC_OK)
            goto done;
        snprintf(path, sizeof path, "%s/%s", dir, file);
        const mc_crl_entry *v = sorted + start[sh->shard];
        size_t n = (size_t)sh->entries;
        free(tbs);
        free(crl);
        tbs = crl = NULL;
        if ((rc = mc_crl_tbs(&sg.iss, sh->number, now, next, url, v, n, &tbs, &tbs_len, e)) !=
                MC_OK ||
            (rc = sign_crl(&sg, tbs, tbs_len, &crl, &crl_len, e)) != MC_OK ||
            (rc = check_with_openssl(&sg.iss, crl, crl_len, sh->number, n, url, e)) != MC_OK ||
            (rc = write_atomic(path, crl, crl_len, sh->number, 1, e)) != MC_OK)
            goto done;
        written++;
        bytes += crl_len;
    }
    if ((rc = publish_written(s, dir, r->plan, written, e)) != MC_OK)
        goto done;
    written = 0;
    if (r->nplan && (rc = audit_crl(s, dir, r->plan[0].number, r->plan[r->nplan - 1].number,
                                    r->nplan, r->es.n, now, next, e)) != MC_OK)
        goto done;
    char t1[32], t2[32];
    fmt_time(now, t1, sizeof t1);
    fmt_time(next, t2, sizeof t2);
    printf("mailca crl: %zu shard CRL(s), numbers %llu..%llu, %zu revoked certificate(s), "
           "thisUpdate %s, nextUpdate %s, %zu bytes written to %s\n",
           r->nplan, (unsigned long long)(r->nplan ? r->plan[0].number : 0),
           (unsigned long long)(r->nplan ? r->plan[r->nplan - 1].number : 0), r->es.n, t1, t2,
           bytes, dir);
    if (r->unsharded)
        printf("mailca crl: %lld revoked certificate(s) name no shard of ca.crl_url (issued "
               "before sharding, or under another URL): they are in no shard; keep publishing "
               "the full CRL (mailca crl --out) at the URL they carry\n",
               (long long)r->unsharded);
done:
    if (written) { /* a shard failed: those before it are served, and recorded so */
        mc_errdetail e2;
        publish_written(s, dir, r->plan, written, &e2);
    }
    signer_close(&sg);
    mc_store_close(s);
    if (lockfd >= 0)
        close(lockfd);
    free(tbs);
    free(crl);
    free(sorted);
    free(start);
    if (r) {
        free(r->es.v);
        free(r->shard);
        free(r->plan);
        free(r);
    }
    return rc;
}

int mc_crl_main(int argc, char **argv)
{
    static const struct option lo[] = {{"config", 1, 0, 'c'},  {"out", 1, 0, 'o'},
                                       {"out-dir", 1, 0, 'D'}, {"next-update-days", 1, 0, 'd'},
                                       {"help", 0, 0, 'h'},    {0, 0, 0, 0}};
    const char *cfgp = NULL, *outp = NULL, *dirp = NULL;
    long days = MC_CRL_NEXT_UPDATE_DEFAULT_DAYS;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        char *end = NULL;
        if (ch == 'c')
            cfgp = optarg;
        else if (ch == 'o')
            outp = optarg;
        else if (ch == 'D')
            dirp = optarg;
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
    if (optind != argc || !outp == !dirp) /* exactly one of --out and --out-dir */
        return usage();
    mc_errdetail e;
    mc_err_clear(&e);
    mc_config cfg;
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
    if (dirp && cfg.ca_crl_shards <= 1) {
        rc = mc_err_set(&e, MC_ERR_CONFIG, "out-dir", "ca.crl_shards",
                        "ca.crl_shards is 1: certificates name one CRL URL (ca.crl_url); write "
                        "its CRL with --out FILE");
        goto done;
    }
    rc = dirp ? run_shards(&cfg, dirp, now, next, &e) : run_full(&cfg, outp, now, next, &e);
done:
    if (rc != MC_OK) {
        char buf[600];
        fprintf(stderr, "mailca crl: %s\n", mc_err_format(&e, buf, sizeof buf));
        return 1;
    }
    return 0;
}
