/*
 * The RFC 6962 log server on 127.0.0.1 (ctlog.h), for the CT tests and `mailca bench --ct`. Written
 * independently of engine/ct.c: its own JSON handling, base64 through OpenSSL, the Merkle tree by
 * RFC 6962 2.1's recursive definitions (the engine verifies paths with RFC 9162's iterative
 * algorithm), so the tests compare two implementations.
 */
#include "ctlog.h"

#include "mailca/der.h"

#include <arpa/inet.h>
#include <openssl/ct.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define CTLOG_MAX_CONNS 512
#define CTLOG_MAX_REQ (256 * 1024)

typedef struct conn {
    int fd;
    char *in;
    size_t in_len, in_cap;
    char *out;
    size_t out_len, out_off;
    char *held; /* a response waiting for its time (delay) */
    size_t held_len;
    int64_t release_at;
    int hung;      /* a request is never answered: the connection only waits to be closed */
    int continued; /* "100 Continue" sent for the request being read */
    int close_after;
} conn;

struct mc_ctlog {
    pthread_t thread;
    int started;
    int lfd;
    int wake[2];
    atomic_int stop;
    char url[64];
    char key_b64[2048];
    char id_b64[48]; /* base64 of the LogID */
    EVP_PKEY *key;
    pthread_mutex_t mu; /* what follows: the tree, the knobs, the stats */
    uint8_t (*leaves)[32];
    size_t n, cap;
    mc_ctlog_fault_kind fault;
    int fault_count;
    int fault_retry_after;
    char fault_msg[256];
    int delay_ms;
    int require_sa;
    mc_ctlog_stats st;
    conn *conns[CTLOG_MAX_CONNS];
    int nconns;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- Merkle tree (RFC 6962 2.1) ------------------------------------------------------------- */

/* SHA-256(b | d1 | d2) */
static void sha256_b(uint8_t b, const uint8_t *d1, size_t n1, const uint8_t *d2, size_t n2,
                     uint8_t out[32])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    EVP_DigestUpdate(c, &b, 1);
    EVP_DigestUpdate(c, d1, n1);
    if (n2)
        EVP_DigestUpdate(c, d2, n2);
    EVP_DigestFinal_ex(c, out, NULL);
    EVP_MD_CTX_free(c);
}

static void node_hash(const uint8_t l[32], const uint8_t r[32], uint8_t out[32])
{
    sha256_b(1, l, 32, r, 32, out);
}

/* The largest power of two smaller than n (n > 1). */
static size_t split(size_t n)
{
    size_t k = 1;
    while (k << 1 < n)
        k <<= 1;
    return k;
}

void mc_ctlog_mth(const uint8_t (*leaves)[32], size_t n, uint8_t out[32])
{
    if (n == 0) {
        SHA256((const uint8_t *)"", 0, out);
        return;
    }
    if (n == 1) {
        memcpy(out, leaves[0], 32);
        return;
    }
    size_t k = split(n);
    uint8_t l[32], r[32];
    mc_ctlog_mth(leaves, k, l);
    mc_ctlog_mth(leaves + k, n - k, r);
    node_hash(l, r, out);
}

size_t mc_ctlog_path(const uint8_t (*leaves)[32], size_t n, size_t m, uint8_t (*path)[32])
{
    /* PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n]) for m < k, else PATH(m - k, D[k:n]) :
     * MTH(D[0:k]). */
    if (n <= 1)
        return 0;
    size_t k = split(n);
    size_t len;
    if (m < k) {
        len = mc_ctlog_path(leaves, k, m, path);
        mc_ctlog_mth(leaves + k, n - k, path[len]);
    } else {
        len = mc_ctlog_path(leaves + k, n - k, m - k, path);
        mc_ctlog_mth(leaves, k, path[len]);
    }
    return len + 1;
}

/* --- helpers -------------------------------------------------------------------------------- */

static char *b64(const uint8_t *in, size_t n)
{
    char *o = malloc(4 * ((n + 2) / 3) + 1);
    if (o)
        EVP_EncodeBlock((unsigned char *)o, in, (int)n);
    return o;
}

/* Decodes padded base64; -1 when malformed. */
static long unb64(const char *in, size_t n, uint8_t **out)
{
    if (n % 4 || n == 0)
        return -1;
    *out = malloc(n / 4 * 3 + 1);
    if (!*out)
        return -1;
    int r = EVP_DecodeBlock(*out, (const unsigned char *)in, (int)n);
    if (r < 0) {
        free(*out);
        *out = NULL;
        return -1;
    }
    if (in[n - 1] == '=')
        r--;
    if (in[n - 2] == '=')
        r--;
    return r;
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

/* DigitallySigned (sha256, ecdsa) over data, malloc'd. */
static uint8_t *sign_ds(EVP_PKEY *key, const uint8_t *data, size_t len, size_t *out_len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t sl = 0;
    uint8_t *o = NULL;
    if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, NULL, &sl, data, len) != 1)
        goto done;
    o = malloc(4 + sl);
    if (!o || EVP_DigestSign(md, o + 4, &sl, data, len) != 1) {
        free(o);
        o = NULL;
        goto done;
    }
    o[0] = 4;                                 /* sha256 */
    o[1] = EVP_PKEY_is_a(key, "RSA") ? 1 : 3; /* rsa (PKCS#1 v1.5) or ecdsa */
    o[2] = (uint8_t)(sl >> 8);
    o[3] = (uint8_t)sl;
    *out_len = 4 + sl;
done:
    EVP_MD_CTX_free(md);
    return o;
}

typedef struct resp {
    int status;
    const char *reason;
    char extra[128];
    char *body;
    const char *type;
    int hang;
    int delay_ms;
} resp;

static void resp_text(resp *r, int status, const char *reason, const char *text)
{
    r->status = status;
    r->reason = reason;
    r->body = strdup(text);
    r->type = "text/plain";
}

/* --- submissions ---------------------------------------------------------------------------- */

/* What a log checks in a leaf before it logs it. */
typedef struct cert_facts {
    int poison;      /* the CT poison extension (a precertificate, RFC 6962 3.1) */
    int server_auth; /* no EKU extension, or one with id-kp-serverAuth (as OpenSSL's
                        X509_get_extended_key_usage & XKU_SSL_SERVER) */
} cert_facts;

/* Walks a certificate's DER (mc_der, no allocation) to its extensions: 0, or -1 when it is not
 * a DER Certificate with a v3 TBSCertificate shape. */
static int cert_scan(const uint8_t *der, size_t len, cert_facts *out)
{
    static const uint8_t poison_oid[] = {0x2b, 0x06, 0x01, 0x04, 0x01,
                                         0xd6, 0x79, 0x02, 0x04, 0x03};
    static const uint8_t eku_oid[] = {0x55, 0x1d, 0x25};
    static const uint8_t server_auth[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01};
    mc_der_cur c = mc_der_cur_make(der, len), tc, ec;
    mc_der_tlv cert, tbs, t, exts;
    memset(out, 0, sizeof *out);
    out->server_auth = 1;
    if (mc_der_expect(&c, MC_DER_SEQUENCE, &cert) || !mc_der_cur_empty(&c))
        return -1;
    c = mc_der_cur_in(&cert);
    if (mc_der_expect(&c, MC_DER_SEQUENCE, &tbs) || mc_der_expect(&c, MC_DER_SEQUENCE, &t) ||
        mc_der_expect(&c, MC_DER_BITSTRING, &t) || !mc_der_cur_empty(&c))
        return -1;
    tc = mc_der_cur_in(&tbs);
    mc_der_optional(&tc, MC_DER_CTX_CONS(0), &t);  /* version */
    if (mc_der_expect(&tc, MC_DER_INTEGER, &t) ||  /* serialNumber */
        mc_der_expect(&tc, MC_DER_SEQUENCE, &t) || /* signature */
        mc_der_expect(&tc, MC_DER_SEQUENCE, &t) || /* issuer */
        mc_der_expect(&tc, MC_DER_SEQUENCE, &t) || /* validity */
        mc_der_expect(&tc, MC_DER_SEQUENCE, &t) || /* subject */
        mc_der_expect(&tc, MC_DER_SEQUENCE, &t))   /* subjectPublicKeyInfo */
        return -1;
    mc_der_optional(&tc, MC_DER_CTX(1), &t); /* issuerUniqueID */
    mc_der_optional(&tc, MC_DER_CTX(2), &t); /* subjectUniqueID */
    if (!mc_der_optional(&tc, MC_DER_CTX_CONS(3), &t))
        return mc_der_cur_empty(&tc) ? 0 : -1;
    ec = mc_der_cur_in(&t);
    if (mc_der_expect(&ec, MC_DER_SEQUENCE, &exts) || !mc_der_cur_empty(&ec))
        return -1;
    ec = mc_der_cur_in(&exts);
    while (!mc_der_cur_empty(&ec)) {
        mc_der_tlv ext, oid, v;
        if (mc_der_expect(&ec, MC_DER_SEQUENCE, &ext))
            return -1;
        mc_der_cur x = mc_der_cur_in(&ext);
        if (mc_der_expect(&x, MC_DER_OID, &oid))
            return -1;
        mc_der_optional(&x, MC_DER_BOOLEAN, &v); /* critical */
        if (mc_der_expect(&x, MC_DER_OCTETSTRING, &v) || !mc_der_cur_empty(&x))
            return -1;
        if (mc_der_oid_eq(&oid, poison_oid, sizeof poison_oid)) {
            out->poison = 1;
        } else if (mc_der_oid_eq(&oid, eku_oid, sizeof eku_oid)) {
            mc_der_cur vc = mc_der_cur_in(&v), kc;
            mc_der_tlv seq, k;
            out->server_auth = 0;
            if (mc_der_expect(&vc, MC_DER_SEQUENCE, &seq))
                return -1;
            kc = mc_der_cur_in(&seq);
            while (!mc_der_cur_empty(&kc)) {
                if (mc_der_expect(&kc, MC_DER_OID, &k))
                    return -1;
                if (mc_der_oid_eq(&k, server_auth, sizeof server_auth))
                    out->server_auth = 1;
            }
        }
    }
    return mc_der_cur_empty(&tc) ? 0 : -1;
}

/* The "chain" array of an add-chain body: base64 strings, decoded. -1 when malformed. */
static int parse_chain(const char *body, size_t len, uint8_t **der, size_t *der_len, int max)
{
    const char *end = body + len;
    const char *p = memmem(body, len, "\"chain\"", 7);
    if (!p)
        return -1;
    p += 7;
    while (p < end && (*p == ' ' || *p == ':' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    if (p >= end || *p++ != '[')
        return -1;
    int n = 0;
    for (;;) {
        while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t' || *p == ','))
            p++;
        if (p >= end)
            return -1;
        if (*p == ']')
            return n;
        if (*p++ != '"' || n == max)
            return -1;
        const char *s = p;
        while (p < end && *p != '"')
            p++;
        if (p >= end)
            return -1;
        /* "\/" is a legal JSON escape of '/' */
        char *tmp = malloc((size_t)(p - s) + 1);
        size_t tl = 0;
        for (const char *q = s; q < p; q++)
            if (!(q[0] == '\\' && q + 1 < p && q[1] == '/'))
                tmp[tl++] = *q;
        long dl = unb64(tmp, tl, &der[n]);
        free(tmp);
        p++;
        if (dl <= 0)
            return -1;
        der_len[n++] = (size_t)dl;
    }
}

static void submission(mc_ctlog *log, int precert, const char *body, size_t len, resp *r)
{
    uint8_t *der[8] = {0};
    size_t dl[8] = {0};
    X509 *leaf = NULL, *issuer = NULL;
    uint8_t *entry = NULL, *sig = NULL, *tbs = NULL, *spki = NULL;
    char *ext64 = NULL, *sig64 = NULL;
    int n = parse_chain(body, len, der, dl, 8);
    if (n <= 0) {
        resp_text(r, 400, "Bad Request", "malformed chain");
        goto done;
    }
    cert_facts cf;
    if (cert_scan(der[0], dl[0], &cf) != 0) {
        resp_text(r, 400, "Bad Request", "chain[0] is not a certificate");
        goto done;
    }
    if (cf.poison != (precert != 0)) {
        resp_text(r, 400, "Bad Request",
                  precert ? "add-pre-chain: chain[0] is not a precertificate"
                          : "add-chain: chain[0] is a precertificate");
        goto done;
    }
    /* Only a precert_entry needs the certificates parsed (TBS without the poison, issuer key
     * hash): OpenSSL's d2i_X509 costs ~100 us (its public key decoders), the whole budget. */
    if (precert) {
        const unsigned char *p = der[0];
        leaf = d2i_X509(NULL, &p, (long)dl[0]);
        if (n > 1) {
            p = der[1];
            issuer = d2i_X509(NULL, &p, (long)dl[1]);
        }
        if (!leaf || !issuer) {
            resp_text(r, 400, "Bad Request",
                      leaf ? "add-pre-chain: issuer missing" : "chain[0] is not a certificate");
            goto done;
        }
    }
    pthread_mutex_lock(&log->mu);
    int require_sa = log->require_sa;
    pthread_mutex_unlock(&log->mu);
    if (require_sa && !cf.server_auth) {
        resp_text(r, 400, "Bad Request", "rejecting certificate without EKU in [serverAuth]");
        goto done;
    }
    /* The entry: u64 timestamp | u16 entry_type | entry | u16 extensions, after 2 bytes that are
     * v1 | certificate_timestamp in the signature input and v1 | timestamped_entry in the
     * leaf: both 00 00. */
    size_t elen;
    if (precert) {
        X509_EXTENSION_free(
            X509_delete_ext(leaf, X509_get_ext_by_NID(leaf, NID_ct_precert_poison, -1)));
        int tl = i2d_re_X509_tbs(leaf, &tbs);
        int kl = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(issuer), &spki);
        if (tl <= 0 || kl <= 0) {
            resp_text(r, 500, "Internal Server Error", "encoding");
            goto done;
        }
        elen = 32 + 3 + (size_t)tl;
        entry = malloc(2 + 8 + 2 + elen + 2 + 8);
        SHA256(spki, (size_t)kl, entry + 12);
        entry[44] = (uint8_t)(tl >> 16);
        entry[45] = (uint8_t)(tl >> 8);
        entry[46] = (uint8_t)tl;
        memcpy(entry + 47, tbs, (size_t)tl);
    } else {
        elen = 3 + dl[0];
        entry = malloc(2 + 8 + 2 + elen + 2 + 8);
        entry[12] = (uint8_t)(dl[0] >> 16);
        entry[13] = (uint8_t)(dl[0] >> 8);
        entry[14] = (uint8_t)dl[0];
        memcpy(entry + 15, der[0], dl[0]);
    }
    uint64_t ts = (uint64_t)now_ms();
    entry[0] = 0;
    entry[1] = 0;
    put64(entry + 2, ts);
    entry[10] = 0;
    entry[11] = precert ? 1 : 0;
    size_t o = 12 + elen;
    /* static-ct-api's leaf_index extension (type 0, uint40): covered by the signature, so a
     * client that drops or mangles extensions stores SCTs that do not verify. */
    pthread_mutex_lock(&log->mu);
    uint64_t index = log->n;
    uint8_t *ext = entry + o + 2;
    entry[o] = 0;
    entry[o + 1] = 8;
    ext[0] = 0;
    ext[1] = 0;
    ext[2] = 5;
    for (int i = 0; i < 5; i++)
        ext[3 + i] = (uint8_t)(index >> (8 * (4 - i)));
    o += 2 + 8;
    size_t sl = 0;
    sig = sign_ds(log->key, entry, o, &sl);
    if (!sig) {
        pthread_mutex_unlock(&log->mu);
        resp_text(r, 500, "Internal Server Error", "signing failed");
        goto done;
    }
    if (log->fault == MC_CTLOG_BADSIG && log->fault_count != 0) {
        if (log->fault_count > 0)
            log->fault_count--;
        log->st.faults++;
        sig[sl - 1] ^= 1;
    } else {
        /* leaf hash: SHA-256(0x00 | MerkleTreeLeaf), MerkleTreeLeaf = the same bytes */
        if (log->n == log->cap) {
            size_t nc = log->cap ? 2 * log->cap : 1024;
            log->leaves = realloc(log->leaves, nc * sizeof *log->leaves);
            log->cap = nc;
        }
        sha256_b(0, entry, o, NULL, 0, log->leaves[log->n++]);
        log->st.accepted++;
    }
    r->delay_ms = log->delay_ms;
    pthread_mutex_unlock(&log->mu);
    ext64 = b64(ext, 8);
    sig64 = b64(sig, sl);
    size_t bl = strlen(log->id_b64) + strlen(ext64) + strlen(sig64) + 128;
    r->body = malloc(bl);
    snprintf(r->body, bl,
             "{\"sct_version\":0,\"id\":\"%s\",\"timestamp\":%llu,\"extensions\":\"%s\","
             "\"signature\":\"%s\"}",
             log->id_b64, (unsigned long long)ts, ext64, sig64);
    r->status = 200;
    r->reason = "OK";
    r->type = "application/json";
done:
    for (int i = 0; i < 8; i++)
        free(der[i]);
    X509_free(leaf);
    X509_free(issuer);
    free(entry);
    free(sig);
    OPENSSL_free(tbs);
    OPENSSL_free(spki);
    free(ext64);
    free(sig64);
}

/* An injected fault for this submission, or 0. */
static int fault(mc_ctlog *log, resp *r)
{
    pthread_mutex_lock(&log->mu);
    mc_ctlog_fault_kind k = log->fault_count ? log->fault : MC_CTLOG_OK;
    int ra = log->fault_retry_after;
    char msg[256];
    snprintf(msg, sizeof msg, "%s", log->fault_msg);
    if (k != MC_CTLOG_OK && k != MC_CTLOG_BADSIG) {
        if (log->fault_count > 0)
            log->fault_count--;
        log->st.faults++;
    }
    pthread_mutex_unlock(&log->mu);
    switch (k) {
    case MC_CTLOG_OK:
    case MC_CTLOG_BADSIG:
        return 0;
    case MC_CTLOG_429:
        resp_text(r, 429, "Too Many Requests", "rate limited");
        break;
    case MC_CTLOG_503:
        resp_text(r, 503, "Service Unavailable", "pool full");
        break;
    case MC_CTLOG_500:
        resp_text(r, 500, "Internal Server Error", "backend failure");
        return 1;
    case MC_CTLOG_400:
        resp_text(r, 400, "Bad Request", msg);
        return 1;
    case MC_CTLOG_HANG:
        r->hang = 1;
        return 1;
    }
    if (ra >= 0)
        snprintf(r->extra, sizeof r->extra, "Retry-After: %d\r\n", ra);
    return 1;
}

/* --- reads ---------------------------------------------------------------------------------- */

static void get_sth(mc_ctlog *log, resp *r)
{
    pthread_mutex_lock(&log->mu);
    size_t n = log->n;
    uint8_t root[32];
    mc_ctlog_mth((const uint8_t(*)[32])log->leaves, n, root);
    pthread_mutex_unlock(&log->mu);
    uint8_t d[2 + 8 + 8 + 32];
    uint64_t ts = (uint64_t)now_ms();
    d[0] = 0;
    d[1] = 1; /* tree_hash */
    put64(d + 2, ts);
    put64(d + 10, n);
    memcpy(d + 18, root, 32);
    size_t sl = 0;
    uint8_t *sig = sign_ds(log->key, d, sizeof d, &sl);
    char *root64 = b64(root, 32), *sig64 = sig ? b64(sig, sl) : NULL;
    r->body = malloc(512);
    snprintf(r->body, 512,
             "{\"tree_size\":%zu,\"timestamp\":%llu,\"sha256_root_hash\":\"%s\","
             "\"tree_head_signature\":\"%s\"}",
             n, (unsigned long long)ts, root64, sig64 ? sig64 : "");
    r->status = 200;
    r->reason = "OK";
    r->type = "application/json";
    free(sig);
    free(root64);
    free(sig64);
}

static int hexv(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Value of a query parameter, %-decoded into out. 0 or -1. */
static int query_param(const char *q, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    while (q && *q) {
        if (strncmp(q, name, nl) == 0 && q[nl] == '=') {
            const char *v = q + nl + 1;
            size_t o = 0;
            while (*v && *v != '&' && o + 1 < cap) {
                if (*v == '%' && hexv(v[1]) >= 0 && hexv(v[2]) >= 0) {
                    out[o++] = (char)(hexv(v[1]) << 4 | hexv(v[2]));
                    v += 3;
                } else {
                    out[o++] = *v == '+' ? ' ' : *v;
                    v++;
                }
            }
            out[o] = '\0';
            return 0;
        }
        q = strchr(q, '&');
        if (q)
            q++;
    }
    return -1;
}

static void get_proof(mc_ctlog *log, const char *query, resp *r)
{
    char h64[128], ts[32];
    uint8_t *h = NULL;
    if (query_param(query, "hash", h64, sizeof h64) != 0 ||
        query_param(query, "tree_size", ts, sizeof ts) != 0 || unb64(h64, strlen(h64), &h) != 32) {
        free(h);
        resp_text(r, 400, "Bad Request", "hash and tree_size required");
        return;
    }
    size_t size = strtoull(ts, NULL, 10);
    pthread_mutex_lock(&log->mu);
    if (size > log->n || size == 0) {
        pthread_mutex_unlock(&log->mu);
        free(h);
        resp_text(r, 400, "Bad Request", "tree_size out of range");
        return;
    }
    size_t idx = size;
    for (size_t i = 0; i < size; i++)
        if (memcmp(log->leaves[i], h, 32) == 0) {
            idx = i;
            break;
        }
    free(h);
    if (idx == size) {
        pthread_mutex_unlock(&log->mu);
        resp_text(r, 404, "Not Found", "hash not found");
        return;
    }
    uint8_t path[64][32];
    size_t pn = mc_ctlog_path((const uint8_t(*)[32])log->leaves, size, idx, path);
    pthread_mutex_unlock(&log->mu);
    size_t cap = 64 + pn * 50;
    r->body = malloc(cap);
    size_t o = (size_t)snprintf(r->body, cap, "{\"leaf_index\":%zu,\"audit_path\":[", idx);
    for (size_t i = 0; i < pn; i++) {
        char *e = b64(path[i], 32);
        o += (size_t)snprintf(r->body + o, cap - o, "%s\"%s\"", i ? "," : "", e);
        free(e);
    }
    snprintf(r->body + o, cap - o, "]}");
    r->status = 200;
    r->reason = "OK";
    r->type = "application/json";
}

/* --- HTTP ----------------------------------------------------------------------------------- */

static void out_append(conn *c, const char *d, size_t n)
{
    char *o = realloc(c->out, c->out_len + n);
    if (!o)
        return;
    c->out = o;
    memcpy(c->out + c->out_len, d, n);
    c->out_len += n;
}

static char *resp_render(const resp *r, int close_conn, size_t *len)
{
    size_t bl = r->body ? strlen(r->body) : 0;
    size_t cap = 256 + bl;
    char *b = malloc(cap);
    int h =
        snprintf(b, cap, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n",
                 r->status, r->reason, r->type ? r->type : "text/plain", bl, r->extra,
                 close_conn ? "Connection: close\r\n" : "");
    memcpy(b + h, r->body ? r->body : "", bl);
    *len = (size_t)h + bl;
    return b;
}

/* Handles every complete request in c->in. */
static void conn_process(mc_ctlog *log, conn *c)
{
    while (!c->hung && !c->held && c->in_len) {
        char *hend = memmem(c->in, c->in_len, "\r\n\r\n", 4);
        if (!hend) {
            if (c->in_len > 16384)
                c->close_after = 2;
            return;
        }
        size_t hlen = (size_t)(hend - c->in) + 4;
        char method[8] = "", target[512] = "", version[16] = "";
        if (sscanf(c->in, "%7s %511s %15s", method, target, version) != 3) {
            c->close_after = 2;
            return;
        }
        size_t clen = 0;
        int expect = 0, close_conn = strcmp(version, "HTTP/1.0") == 0;
        for (char *l = strstr(c->in, "\r\n") + 2; l < hend; l = strstr(l, "\r\n") + 2) {
            if (strncasecmp(l, "Content-Length:", 15) == 0)
                clen = strtoull(l + 15, NULL, 10);
            else if (strncasecmp(l, "Expect:", 7) == 0 && strstr(l, "100"))
                expect = 1;
            else if (strncasecmp(l, "Connection:", 11) == 0 && strcasestr(l, "close") &&
                     strcasestr(l, "close") < strstr(l, "\r\n"))
                close_conn = 1;
        }
        if (clen > CTLOG_MAX_REQ) {
            c->close_after = 2;
            return;
        }
        if (c->in_len < hlen + clen) {
            if (expect && !c->continued) {
                static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                out_append(c, cont, sizeof cont - 1);
                c->continued = 1;
            }
            return;
        }
        c->continued = 0;
        const char *body = c->in + hlen;
        resp r;
        memset(&r, 0, sizeof r);
        pthread_mutex_lock(&log->mu);
        log->st.requests++;
        pthread_mutex_unlock(&log->mu);
        char *query = strchr(target, '?');
        if (query)
            *query++ = '\0';
        int sub = strcmp(target, "/ct/v1/add-chain") == 0       ? 1
                  : strcmp(target, "/ct/v1/add-pre-chain") == 0 ? 2
                                                                : 0;
        if (sub && strcmp(method, "POST") == 0) {
            pthread_mutex_lock(&log->mu);
            log->st.submissions++;
            pthread_mutex_unlock(&log->mu);
            if (!fault(log, &r))
                submission(log, sub == 2, body, clen, &r);
        } else if (strcmp(target, "/ct/v1/get-sth") == 0 && strcmp(method, "GET") == 0) {
            get_sth(log, &r);
        } else if (strcmp(target, "/ct/v1/get-proof-by-hash") == 0 && strcmp(method, "GET") == 0) {
            get_proof(log, query, &r);
        } else {
            resp_text(&r, 404, "Not Found", "no such endpoint");
        }
        memmove(c->in, c->in + hlen + clen, c->in_len - hlen - clen);
        c->in_len -= hlen + clen;
        if (r.hang) {
            c->hung = 1;
            return;
        }
        size_t len;
        char *out = resp_render(&r, close_conn, &len);
        free(r.body);
        if (close_conn)
            c->close_after = 1;
        if (r.delay_ms > 0) {
            c->held = out;
            c->held_len = len;
            c->release_at = now_ms() + r.delay_ms;
            int held = 0;
            for (int i = 0; i < log->nconns; i++)
                held += log->conns[i]->held != NULL;
            pthread_mutex_lock(&log->mu);
            if (held > log->st.max_pending)
                log->st.max_pending = held;
            pthread_mutex_unlock(&log->mu);
            return;
        }
        out_append(c, out, len);
        free(out);
    }
}

static void conn_free(conn *c)
{
    close(c->fd);
    free(c->in);
    free(c->out);
    free(c->held);
    free(c);
}

static void *serve(void *arg)
{
    mc_ctlog *log = arg;
    struct pollfd pf[CTLOG_MAX_CONNS + 2];
    pthread_setname_np(pthread_self(), "mailca-ctlog"); /* for perf and top */
    while (!atomic_load(&log->stop)) {
        int64_t now = now_ms();
        int timeout = -1;
        for (int i = 0; i < log->nconns; i++) {
            conn *c = log->conns[i];
            if (c->held && c->release_at <= now) {
                out_append(c, c->held, c->held_len);
                free(c->held);
                c->held = NULL;
                conn_process(log, c); /* requests that waited behind it */
            }
            if (c->held) {
                int64_t w = c->release_at - now;
                if (timeout < 0 || w < timeout)
                    timeout = (int)w;
            }
        }
        pf[0] = (struct pollfd){.fd = log->wake[0], .events = POLLIN};
        pf[1] =
            (struct pollfd){.fd = log->lfd, .events = log->nconns < CTLOG_MAX_CONNS ? POLLIN : 0};
        for (int i = 0; i < log->nconns; i++) {
            conn *c = log->conns[i];
            pf[2 + i] = (struct pollfd){
                .fd = c->fd, .events = (short)(POLLIN | (c->out_len > c->out_off ? POLLOUT : 0))};
        }
        if (poll(pf, (nfds_t)(2 + log->nconns), timeout) < 0 && errno != EINTR)
            break;
        for (int i = 0; i < log->nconns; i++) {
            conn *c = log->conns[i];
            short re = pf[2 + i].revents;
            int dead = 0;
            if (re & (POLLIN | POLLHUP | POLLERR)) {
                char buf[16384];
                ssize_t n = recv(c->fd, buf, sizeof buf, 0);
                if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                    dead = 1;
                } else if (n > 0 && !c->hung) {
                    if (c->in_len + (size_t)n > c->in_cap) {
                        size_t cap = c->in_cap ? c->in_cap : 8192;
                        while (cap < c->in_len + (size_t)n)
                            cap *= 2;
                        c->in = realloc(c->in, cap);
                        c->in_cap = cap;
                    }
                    memcpy(c->in + c->in_len, buf, (size_t)n);
                    c->in_len += (size_t)n;
                    conn_process(log, c);
                }
            }
            if (!dead && c->out_len > c->out_off) {
                ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
                if (w > 0)
                    c->out_off += (size_t)w;
                else if (w < 0 && errno != EAGAIN && errno != EINTR)
                    dead = 1;
                if (c->out_off == c->out_len) {
                    c->out_off = c->out_len = 0;
                    if (c->close_after)
                        dead = 1;
                }
            } else if (!dead && c->close_after == 2) {
                dead = 1;
            }
            if (dead) {
                conn_free(c);
                log->conns[i] = log->conns[--log->nconns];
                pf[2 + i] = pf[2 + log->nconns];
                i--;
            }
        }
        /* Accepted after the loop: the poll entries above match the connections. */
        while (pf[1].revents & POLLIN && log->nconns < CTLOG_MAX_CONNS) {
            int fd = accept4(log->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0)
                break;
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            conn *c = calloc(1, sizeof *c);
            c->fd = fd;
            log->conns[log->nconns++] = c;
            pthread_mutex_lock(&log->mu);
            log->st.connections++;
            if (log->nconns > log->st.max_open)
                log->st.max_open = log->nconns;
            pthread_mutex_unlock(&log->mu);
        }
    }
    return NULL;
}

static mc_err ctlog_start(mc_ctlog **out, int rsa, mc_errdetail *err)
{
    mc_err e = MC_OK;
    uint8_t *der = NULL;
    *out = NULL;
    mc_ctlog *log = calloc(1, sizeof *log);
    if (!log)
        return mc_err_set(err, MC_ERR_NOMEM, "ctlog", NULL, "ctlog: out of memory");
    log->lfd = -1;
    log->wake[0] = log->wake[1] = -1;
    log->fault_retry_after = -1;
    pthread_mutex_init(&log->mu, NULL);
    log->key = rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
    int dl = log->key ? i2d_PUBKEY(log->key, &der) : -1;
    if (dl <= 0) {
        e = mc_err_set(err, MC_ERR_CRYPTO, "ctlog.key", NULL, "ctlog: %s key generation failed",
                       rsa ? "RSA-2048" : "P-256");
        goto done;
    }
    EVP_EncodeBlock((unsigned char *)log->key_b64, der, dl);
    /* RFC 6962 3.2: LogID = SHA-256 of the DER SubjectPublicKeyInfo; the same in every SCT. */
    uint8_t id[32];
    SHA256(der, (size_t)dl, id);
    EVP_EncodeBlock((unsigned char *)log->id_b64, id, 32);
    log->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (log->lfd < 0 || bind(log->lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(log->lfd, 256) != 0 || getsockname(log->lfd, (struct sockaddr *)&a, &al) != 0 ||
        pipe2(log->wake, O_CLOEXEC) != 0) {
        e = mc_err_set(err, MC_ERR_IO, "ctlog", NULL, "ctlog: listen on 127.0.0.1: %s",
                       strerror(errno));
        goto done;
    }
    snprintf(log->url, sizeof log->url, "http://127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
    if (pthread_create(&log->thread, NULL, serve, log) != 0) {
        e = mc_err_set(err, MC_ERR_IO, "ctlog", NULL, "ctlog: cannot start the server thread");
        goto done;
    }
    log->started = 1;
done:
    OPENSSL_free(der);
    if (e) {
        mc_ctlog_stop(log);
        return e;
    }
    *out = log;
    return MC_OK;
}

mc_err mc_ctlog_start(mc_ctlog **out, mc_errdetail *err)
{
    return ctlog_start(out, 0, err);
}

mc_err mc_ctlog_start_rsa(mc_ctlog **out, mc_errdetail *err)
{
    return ctlog_start(out, 1, err);
}

void mc_ctlog_stop(mc_ctlog *log)
{
    if (!log)
        return;
    if (log->started) {
        atomic_store(&log->stop, 1);
        (void)!write(log->wake[1], "x", 1);
        pthread_join(log->thread, NULL);
    }
    for (int i = 0; i < log->nconns; i++)
        conn_free(log->conns[i]);
    if (log->lfd >= 0)
        close(log->lfd);
    if (log->wake[0] >= 0) {
        close(log->wake[0]);
        close(log->wake[1]);
    }
    EVP_PKEY_free(log->key);
    free(log->leaves);
    pthread_mutex_destroy(&log->mu);
    free(log);
}

const char *mc_ctlog_url(const mc_ctlog *log)
{
    return log->url;
}

const char *mc_ctlog_key_b64(const mc_ctlog *log)
{
    return log->key_b64;
}

void mc_ctlog_fault(mc_ctlog *log, mc_ctlog_fault_kind kind, int count, int retry_after_s)
{
    pthread_mutex_lock(&log->mu);
    log->fault = kind;
    log->fault_count = kind == MC_CTLOG_OK ? 0 : count;
    log->fault_retry_after = retry_after_s;
    pthread_mutex_unlock(&log->mu);
}

void mc_ctlog_fault_message(mc_ctlog *log, const char *message)
{
    pthread_mutex_lock(&log->mu);
    snprintf(log->fault_msg, sizeof log->fault_msg, "%s", message);
    pthread_mutex_unlock(&log->mu);
}

void mc_ctlog_delay(mc_ctlog *log, int delay_ms)
{
    pthread_mutex_lock(&log->mu);
    log->delay_ms = delay_ms;
    pthread_mutex_unlock(&log->mu);
}

void mc_ctlog_require_server_auth(mc_ctlog *log, int on)
{
    pthread_mutex_lock(&log->mu);
    log->require_sa = on;
    pthread_mutex_unlock(&log->mu);
}

void mc_ctlog_get_stats(mc_ctlog *log, mc_ctlog_stats *out)
{
    pthread_mutex_lock(&log->mu);
    *out = log->st;
    pthread_mutex_unlock(&log->mu);
}

/* --- client side checks ----------------------------------------------------------------------- */

int mc_ctlog_openssl_validate(const char *key_b64, const uint8_t *sct, size_t sct_len, int precert,
                              const uint8_t *leaf, size_t leaf_len, const uint8_t *issuer,
                              size_t issuer_len)
{
    int rc = -1;
    char path[] = "/tmp/mc-ctlog-store-XXXXXX";
    CTLOG_STORE *store = CTLOG_STORE_new();
    CT_POLICY_EVAL_CTX *ctx = CT_POLICY_EVAL_CTX_new();
    X509 *l = NULL, *i = NULL;
    SCT *s = NULL;
    int fd = mkstemp(path);
    if (fd < 0 || !store || !ctx)
        goto done;
    char conf[512];
    int n = snprintf(conf, sizeof conf, "enabled_logs = L\n[L]\ndescription = test log\nkey = %s\n",
                     key_b64);
    if (write(fd, conf, (size_t)n) != n)
        goto done;
    close(fd);
    fd = -1;
    if (CTLOG_STORE_load_file(store, path) != 1)
        goto done;
    const unsigned char *p = leaf;
    l = d2i_X509(NULL, &p, (long)leaf_len);
    p = issuer;
    i = d2i_X509(NULL, &p, (long)issuer_len);
    p = sct;
    s = o2i_SCT(NULL, &p, sct_len);
    if (!l || !i || !s)
        goto done;
    SCT_set_log_entry_type(s, precert ? CT_LOG_ENTRY_TYPE_PRECERT : CT_LOG_ENTRY_TYPE_X509);
    CT_POLICY_EVAL_CTX_set1_cert(ctx, l);
    CT_POLICY_EVAL_CTX_set1_issuer(ctx, i);
    CT_POLICY_EVAL_CTX_set_shared_CTLOG_STORE(ctx, store);
    CT_POLICY_EVAL_CTX_set_time(ctx, (uint64_t)now_ms() + 120000);
    int v = SCT_validate(s, ctx);
    rc = v == 1 ? 1 : v == 0 ? 0 : -1;
    if (v < 0)
        fprintf(stderr, "ctlog: SCT_validate could not check (status %d)\n",
                (int)SCT_get_validation_status(s));
done:
    if (fd >= 0)
        close(fd);
    unlink(path);
    SCT_free(s);
    X509_free(l);
    X509_free(i);
    CT_POLICY_EVAL_CTX_free(ctx);
    CTLOG_STORE_free(store);
    return rc;
}

/* GET url ("http://127.0.0.1:<port>/...") over a plain socket (HTTP/1.0, so the server closes
 * the connection after the answer); the body (malloc'd) when the answer is 200, else NULL. */
static char *http_get(const char *url)
{
    unsigned port;
    char path[1024];
    if (sscanf(url, "http://127.0.0.1:%u%1023s", &port, path) != 2)
        return NULL;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {10, 0};
    char *buf = NULL;
    size_t n = 0, cap = 0;
    if (fd < 0)
        return NULL;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        goto fail;
    char req[1200];
    int rl = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    if (send(fd, req, (size_t)rl, MSG_NOSIGNAL) != rl)
        goto fail;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? 2 * cap : 8192;
            char *b = realloc(buf, cap);
            if (!b)
                goto fail;
            buf = b;
        }
        ssize_t r = recv(fd, buf + n, cap - n - 1, 0);
        if (r < 0)
            goto fail;
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    fd = -1;
    buf[n] = '\0';
    char *body = strstr(buf, "\r\n\r\n");
    int status = 0;
    if (!body || sscanf(buf, "HTTP/1.%*d %d", &status) != 1 || status != 200) {
        fprintf(stderr, "ctlog client: GET %s: HTTP %d\n", url, status);
        goto fail;
    }
    body += 4;
    memmove(buf, body, strlen(body) + 1);
    return buf;
fail:
    if (fd >= 0)
        close(fd);
    free(buf);
    return NULL;
}

/* The text after "key": in a flat JSON object, or NULL. */
static const char *json_at(const char *j, const char *key)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = strstr(j, k);
    return p ? p + strlen(k) : NULL;
}

/* A "string" value base64-decoded into out (cap); its length or -1. */
static long json_b64(const char *at, uint8_t *out, size_t cap)
{
    if (!at || *at != '"')
        return -1;
    const char *e = strchr(at + 1, '"');
    uint8_t *d = NULL;
    long n = e ? unb64(at + 1, (size_t)(e - at - 1), &d) : -1;
    if (n < 0 || (size_t)n > cap) {
        free(d);
        return -1;
    }
    memcpy(out, d, (size_t)n);
    free(d);
    return n;
}

int mc_ctlog_client_sth(const char *url, uint64_t *tree_size, uint64_t *timestamp, uint8_t root[32],
                        uint8_t *sig, size_t sig_cap, size_t *sig_len)
{
    char u[512];
    snprintf(u, sizeof u, "%s/ct/v1/get-sth", url);
    char *j = http_get(u);
    if (!j)
        return -1;
    const char *ts = json_at(j, "tree_size"), *tm = json_at(j, "timestamp");
    long rl = json_b64(json_at(j, "sha256_root_hash"), root, 32);
    long sl = json_b64(json_at(j, "tree_head_signature"), sig, sig_cap);
    int rc = -1;
    if (ts && tm && rl == 32 && sl > 0) {
        *tree_size = strtoull(ts, NULL, 10);
        *timestamp = strtoull(tm, NULL, 10);
        *sig_len = (size_t)sl;
        rc = 0;
    }
    free(j);
    return rc;
}

int mc_ctlog_client_proof(const char *url, const uint8_t hash[32], uint64_t tree_size,
                          uint64_t *index, uint8_t (*path)[32], size_t path_cap, size_t *path_n)
{
    char *h64 = b64(hash, 32), esc[160];
    size_t o = 0;
    for (const char *p = h64; p && *p && o + 4 < sizeof esc; p++) {
        if (*p == '+' || *p == '/' || *p == '=')
            o += (size_t)snprintf(esc + o, sizeof esc - o, "%%%02X", (unsigned char)*p);
        else
            esc[o++] = *p;
    }
    esc[o] = '\0';
    char u[512];
    snprintf(u, sizeof u, "%s/ct/v1/get-proof-by-hash?hash=%s&tree_size=%llu", url, esc,
             (unsigned long long)tree_size);
    free(h64);
    char *j = http_get(u);
    if (!j)
        return -1;
    int rc = -1;
    const char *li = json_at(j, "leaf_index"), *ap = json_at(j, "audit_path");
    if (li && ap && *ap == '[') {
        *index = strtoull(li, NULL, 10);
        size_t n = 0;
        const char *p = ap + 1;
        rc = 0;
        while (*p == '"') {
            if (n == path_cap || json_b64(p, path[n], 32) != 32) {
                rc = -1;
                break;
            }
            n++;
            p = strchr(p + 1, '"') + 1;
            if (*p == ',')
                p++;
        }
        *path_n = n;
    }
    free(j);
    return rc;
}
