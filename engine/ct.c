/*
 * mc_ct: the CT submission sink (include/mailca/ct.h). Three parts:
 * - the outbox: mc_ct_enqueue turns certificates into outbox rows (store.h "CT outbox"), one per
 *   configured log;
 * - the drainer: mc_ct_run_once claims due rows, posts them to the logs with a libcurl multi
 *   handle kept for the life of the mc_ct (its connection cache keeps HTTP/1.1 connections
 *   alive between runs), at most max_in_flight at once and per_log_in_flight per log, then
 *   records every outcome in one transaction;
 * - RFC 6962 itself: SCT parsing (JSON answer, serialized form), the signed data of an SCT
 *   (3.2), its verification with the log key, Merkle leaf and node hashes (2.1), audit path
 *   verification, tree head signatures (3.5). Our own code, with OpenSSL for hashing and
 *   signatures only, so the tests can check it against OpenSSL's CT implementation.
 *
 * The drainer needs libcurl: without MAILCA_HAVE_LIBCURL (the build defines it when it links
 * libcurl) mc_ct_new answers MC_ERR_UNSUPPORTED and the rest works.
 *
 * Answer handling follows ct-reference.md 1.5: 200 with a verified SCT is done; 408 is retried
 * at once; 429, 503, other 5xx and no answer (timeout, refused, reset) are retried after
 * Retry-After when the log sent one, else exponential back-off with jitter; other 4xx are
 * refused for good and the log's message kept. An SCT that does not verify is retried (the log
 * or our key configuration is wrong; an operator has to look) and counted as invalid.
 */
#include "mailca/ct.h"

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define CT_RESP_MAX (64 * 1024) /* longest answer read from a log */
#define CT_LOG_MSG_MAX 200      /* characters of a log's refusal kept in the outbox */

/* --- base64 ----------------------------------------------------------------------------------- */

static int b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

long mc_ct_b64_decode(const char *in, size_t in_len, uint8_t *out, size_t cap)
{
    if (in_len % 4)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < in_len; i += 4) {
        int v[4], pad = 0;
        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)in[i + k];
            if (c == '=' && i + 4 == in_len && k >= 2) {
                v[k] = 0;
                pad++;
                continue;
            }
            if (pad) /* data after padding */
                return -1;
            v[k] = b64_val(c);
            if (v[k] < 0)
                return -1;
        }
        uint32_t w =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        size_t nb = 3 - (size_t)pad;
        if (o + nb > cap)
            return -1;
        out[o++] = (uint8_t)(w >> 16);
        if (nb > 1)
            out[o++] = (uint8_t)(w >> 8);
        if (nb > 2)
            out[o++] = (uint8_t)w;
    }
    return (long)o;
}

/* --- configuration ---------------------------------------------------------------------------- */

void mc_ct_config_defaults(mc_ct_config *c)
{
    memset(c, 0, sizeof *c);
    c->max_in_flight = 64;
    c->per_log_in_flight = 16;
    c->timeout_ms = 30000;
    c->connect_timeout_ms = 5000;
    c->backoff_base_ms = 1000;
    c->backoff_max_ms = 3600 * 1000;
    c->retry_after_max_ms = 6 * 3600 * 1000;
    c->lease_ms = 600000;
    c->claim_max = 1024;
    c->max_future_ms = 60000;
    c->poll_ms = 1000;
    c->stop_grace_ms = 1000;
}

/* The log key as an EVP_PKEY, checked to be a kind RFC 6962 2.1.4 allows: ECDSA on NIST P-256
 * or RSA of at least 2048 bits. NULL and err otherwise. */
static EVP_PKEY *log_key(const uint8_t *spki, size_t len, mc_errdetail *err)
{
    const unsigned char *p = spki;
    EVP_PKEY *k = d2i_PUBKEY(NULL, &p, (long)len);
    if (!k || p != spki + len) {
        EVP_PKEY_free(k);
        mc_err_set(err, MC_ERR_CONFIG, "ct.key", "RFC 6962 2.1.4",
                   "log key: %zu bytes are not a "
                   "DER SubjectPublicKeyInfo",
                   len);
        return NULL;
    }
    if (EVP_PKEY_is_a(k, "EC")) {
        char curve[32] = "";
        size_t cl = 0;
        if (EVP_PKEY_get_utf8_string_param(k, "group", curve, sizeof curve, &cl) == 1 &&
            (strcmp(curve, "prime256v1") == 0 || strcmp(curve, "P-256") == 0))
            return k;
        mc_err_set(err, MC_ERR_CONFIG, "ct.key", "RFC 6962 2.1.4",
                   "log key: EC curve '%s' is not P-256", curve);
    } else if (EVP_PKEY_is_a(k, "RSA")) {
        if (EVP_PKEY_get_bits(k) >= 2048)
            return k;
        mc_err_set(err, MC_ERR_CONFIG, "ct.key", "RFC 6962 2.1.4",
                   "log key: RSA modulus of %d bits is shorter than 2048", EVP_PKEY_get_bits(k));
    } else {
        mc_err_set(err, MC_ERR_CONFIG, "ct.key", "RFC 6962 2.1.4",
                   "log key: type %s is neither ECDSA P-256 nor RSA", EVP_PKEY_get0_type_name(k));
    }
    EVP_PKEY_free(k);
    return NULL;
}

mc_err mc_ct_config_add_log(mc_ct_config *c, const char *url, const char *key_b64,
                            mc_errdetail *err)
{
    if (!c || !url || !key_b64)
        return mc_err_set(err, MC_ERR_INVALID, "ct", NULL, "ct log: NULL argument");
    if (c->nlogs >= MC_CT_LOGS_MAX)
        return mc_err_set(err, MC_ERR_CONFIG, "ct.logs", NULL, "ct log '%s': more than %d logs",
                          url, MC_CT_LOGS_MAX);
    size_t ul = strlen(url);
    while (ul && url[ul - 1] == '/')
        ul--;
    if ((strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) || ul <= 8 ||
        ul >= MC_CT_URL_MAX)
        return mc_err_set(err, MC_ERR_CONFIG, "ct.url", NULL,
                          "ct log url '%.100s': not an http(s) URL shorter than %d", url,
                          MC_CT_URL_MAX);
    mc_ct_log *l = &c->logs[c->nlogs];
    memset(l, 0, sizeof *l);
    long n = mc_ct_b64_decode(key_b64, strlen(key_b64), l->spki, sizeof l->spki);
    if (n <= 0)
        return mc_err_set(err, MC_ERR_CONFIG, "ct.key", NULL,
                          "ct log '%s': key is not base64 of at most %d bytes", url,
                          MC_CT_SPKI_MAX);
    l->spki_len = (size_t)n;
    EVP_PKEY *k = log_key(l->spki, l->spki_len, err);
    if (!k)
        return MC_ERR_CONFIG;
    EVP_PKEY_free(k);
    /* RFC 6962 3.2: LogID is the SHA-256 hash of the log's public key (DER SPKI). */
    SHA256(l->spki, l->spki_len, l->id);
    for (size_t i = 0; i < c->nlogs; i++)
        if (memcmp(c->logs[i].id, l->id, MC_CT_LOG_ID_LEN) == 0)
            return mc_err_set(err, MC_ERR_CONFIG, "ct.key", NULL,
                              "ct log '%s': same key as log '%s'", url, c->logs[i].url);
    memcpy(l->url, url, ul);
    l->url[ul] = '\0';
    c->nlogs++;
    return MC_OK;
}

mc_err mc_ct_config_add_logs(mc_ct_config *c, const char *spec, mc_errdetail *err)
{
    if (!c || !spec)
        return mc_err_set(err, MC_ERR_INVALID, "ct", NULL, "ct logs: NULL argument");
    const char *p = spec;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',' || *p == '\n')
            p++;
        if (!*p)
            return MC_OK;
        char url[MC_CT_URL_MAX], key[2 * MC_CT_SPKI_MAX];
        size_t ul = strcspn(p, " \t,\n");
        if (ul >= sizeof url)
            return mc_err_set(err, MC_ERR_CONFIG, "ct.logs", NULL,
                              "ct logs: url '%.60s...' longer than %d", p, MC_CT_URL_MAX - 1);
        memcpy(url, p, ul);
        url[ul] = '\0';
        p += ul;
        while (*p == ' ' || *p == '\t')
            p++;
        size_t kl = strcspn(p, " \t,\n");
        if (kl == 0 || kl >= sizeof key)
            return mc_err_set(err, MC_ERR_CONFIG, "ct.logs", NULL,
                              "ct logs: '%s' needs a key: \"<url> <base64 key>\"", url);
        memcpy(key, p, kl);
        key[kl] = '\0';
        p += kl;
        mc_err e = mc_ct_config_add_log(c, url, key, err);
        if (e)
            return e;
    }
}

int mc_ct_profile_enabled(const mc_ct_config *c, const char *profile)
{
    if (!c || !profile || !profile[0])
        return 0;
    size_t pl = strlen(profile);
    const char *p = c->profiles;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && t[-1] == ' ')
            t--;
        size_t n = (size_t)(t - p);
        if ((n == 1 && *p == '*') || (n == pl && memcmp(p, profile, n) == 0))
            return 1;
        p = e;
    }
    return 0;
}

/* --- chains and the outbox ------------------------------------------------------------------- */

mc_err mc_ct_chain_encode(const uint8_t *const *der, const size_t *len, size_t n, uint8_t **out,
                          size_t *out_len, mc_errdetail *err)
{
    *out = NULL;
    *out_len = 0;
    if (n == 0 || !der || !len)
        return mc_err_set(err, MC_ERR_INVALID, "chain", NULL, "ct chain: empty");
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (!der[i] || len[i] == 0 || len[i] > 0xffffff)
            return mc_err_set(err, MC_ERR_INVALID, "chain", NULL,
                              "ct chain: certificate %zu has %zu bytes (1..16777215)", i,
                              der[i] ? len[i] : 0);
        total += 3 + len[i];
    }
    uint8_t *b = malloc(total);
    if (!b)
        return mc_err_set(err, MC_ERR_NOMEM, "chain", NULL, "ct chain: out of memory");
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        b[o++] = (uint8_t)(len[i] >> 16);
        b[o++] = (uint8_t)(len[i] >> 8);
        b[o++] = (uint8_t)len[i];
        memcpy(b + o, der[i], len[i]);
        o += len[i];
    }
    *out = b;
    *out_len = total;
    return MC_OK;
}

int mc_ct_chain_next(const uint8_t *chain, size_t chain_len, size_t *i, const uint8_t **der,
                     size_t *der_len)
{
    if (*i == chain_len)
        return 0;
    if (*i > chain_len || chain_len - *i < 3)
        return -1;
    const uint8_t *p = chain + *i;
    size_t n = (size_t)p[0] << 16 | (size_t)p[1] << 8 | p[2];
    if (n == 0 || n > chain_len - *i - 3)
        return -1;
    *der = p + 3;
    *der_len = n;
    *i += 3 + n;
    return 1;
}

/* The outbox rows of n submissions: one per (submission, log). chains[i] (malloc'd, free each
 * and the arrays) back the rows. */
static mc_err entries_build(const mc_ct_config *cfg, const mc_ct_submission *v, size_t n,
                            int64_t now_ms, mc_ct_entry **rows_out, size_t *k_out,
                            uint8_t ***chains_out, mc_errdetail *err)
{
    mc_err e = MC_OK;
    uint8_t **chains = calloc(n ? n : 1, sizeof *chains);
    size_t *lens = calloc(n ? n : 1, sizeof *lens);
    mc_ct_entry *rows = calloc(n * cfg->nlogs + 1, sizeof *rows);
    size_t k = 0;
    if (!chains || !lens || !rows) {
        e = mc_err_set(err, MC_ERR_NOMEM, "ct", NULL, "ct enqueue: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (v[i].precert && v[i].chain_n < 2) {
            char hex[2 * MC_SERIAL_MAX + 1];
            e = mc_err_set(err, MC_ERR_INVALID, "chain", "RFC 6962 3.1",
                           "ct enqueue: precertificate %s without its issuer",
                           mc_store_serial_hex(hex, v[i].serial ? v[i].serial : (const uint8_t *)"",
                                               v[i].serial ? v[i].serial_len : 0));
            goto done;
        }
        e = mc_ct_chain_encode(v[i].chain, v[i].chain_len, v[i].chain_n, &chains[i], &lens[i], err);
        if (e)
            goto done;
        for (size_t l = 0; l < cfg->nlogs; l++)
            rows[k++] = (mc_ct_entry){.serial = v[i].serial,
                                      .serial_len = v[i].serial_len,
                                      .log_id = cfg->logs[l].id,
                                      .precert = v[i].precert,
                                      .chain = chains[i],
                                      .chain_len = lens[i],
                                      .due_ms = now_ms};
    }
done:
    free(lens);
    if (e) {
        if (chains)
            for (size_t i = 0; i < n; i++)
                free(chains[i]);
        free(chains);
        free(rows);
        return e;
    }
    *rows_out = rows;
    *k_out = k;
    *chains_out = chains;
    return MC_OK;
}

static void chains_free(uint8_t **chains, size_t n)
{
    if (chains)
        for (size_t i = 0; i < n; i++)
            free(chains[i]);
    free(chains);
}

mc_err mc_ct_enqueue(mc_store *s, const mc_ct_config *cfg, const mc_ct_submission *v, size_t n,
                     int64_t now_ms, mc_errdetail *err)
{
    if (!s || !cfg || (n && !v))
        return mc_err_set(err, MC_ERR_INVALID, "ct", NULL, "ct enqueue: NULL argument");
    if (n == 0 || cfg->nlogs == 0)
        return MC_OK;
    mc_ct_entry *rows = NULL;
    uint8_t **chains = NULL;
    size_t k = 0;
    mc_err e = entries_build(cfg, v, n, now_ms, &rows, &k, &chains, err);
    if (e)
        return e;
    e = mc_store_ct_enqueue(s, rows, k, err);
    chains_free(chains, n);
    free(rows);
    return e;
}

mc_err mc_ct_certs_commit(mc_store *s, const mc_ct_config *cfg, const mc_stored_cert *v,
                          const char *const *profiles, size_t n, const uint8_t *issuer,
                          size_t issuer_len, int64_t now_ms, mc_errdetail *err)
{
    if (!s || !cfg || (n && !v) || (cfg->nlogs && (!issuer || !issuer_len)))
        return mc_err_set(err, MC_ERR_INVALID, "ct", NULL, "ct certs commit: NULL argument");
    mc_ct_submission *subs = calloc(n ? n : 1, sizeof *subs);
    const uint8_t *(*chain)[2] = calloc(n ? n : 1, sizeof *chain);
    size_t(*clen)[2] = calloc(n ? n : 1, sizeof *clen);
    mc_ct_entry *rows = NULL;
    uint8_t **chains = NULL;
    size_t m = 0, k = 0;
    mc_err e = MC_OK;
    if (!subs || !chain || !clen) {
        e = mc_err_set(err, MC_ERR_NOMEM, "ct", NULL, "ct certs commit: out of memory");
        goto done;
    }
    for (size_t i = 0; cfg->nlogs && i < n; i++) {
        if (profiles && !mc_ct_profile_enabled(cfg, profiles[i]))
            continue;
        chain[m][0] = v[i].der;
        chain[m][1] = issuer;
        clen[m][0] = v[i].der_len;
        clen[m][1] = issuer_len;
        subs[m] = (mc_ct_submission){.serial = v[i].serial,
                                     .serial_len = v[i].serial_len,
                                     .chain = chain[m],
                                     .chain_len = clen[m],
                                     .chain_n = 2};
        m++;
    }
    if (m && (e = entries_build(cfg, subs, m, now_ms, &rows, &k, &chains, err)) != MC_OK)
        goto done;
    e = mc_store_certs_commit_ct(s, v, n, rows, k, err);
done:
    chains_free(chains, m);
    free(rows);
    free(subs);
    free(chain);
    free(clen);
    return e;
}

/* --- policy ----------------------------------------------------------------------------------- */

mc_ct_verdict mc_ct_classify(int http_status)
{
    if (http_status == 200)
        return MC_CT_V_DONE;
    if (http_status == 408)
        return MC_CT_V_RETRY_NOW;
    if (http_status == 429 || http_status >= 500 || http_status <= 0)
        return MC_CT_V_RETRY;
    if (http_status >= 400)
        return MC_CT_V_REJECT;
    /* 1xx leftovers, other 2xx, 3xx (we follow no redirects): not an answer we understand. */
    return MC_CT_V_RETRY;
}

int64_t mc_ct_backoff_ms(const mc_ct_config *c, int attempts, int64_t retry_after_ms, uint32_t rnd)
{
    if (retry_after_ms >= 0)
        return retry_after_ms < c->retry_after_max_ms ? retry_after_ms : c->retry_after_max_ms;
    int64_t d = c->backoff_base_ms > 0 ? c->backoff_base_ms : 1;
    for (int i = 0; i < attempts && d < c->backoff_max_ms; i++)
        d *= 2;
    if (d > c->backoff_max_ms)
        d = c->backoff_max_ms;
    /* Jitter spreads the retries of a batch that failed together over [d/2, d]. */
    int64_t half = d / 2;
    return half + (int64_t)(rnd % (uint64_t)(d - half + 1));
}

int64_t mc_ct_retry_after_ms(const char *value, int64_t now_ms)
{
    if (!value)
        return -1;
    while (*value == ' ' || *value == '\t')
        value++;
    if (!*value)
        return -1;
    if (*value >= '0' && *value <= '9') {
        char *end;
        unsigned long long secs = strtoull(value, &end, 10);
        while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
            end++;
        if (*end || secs > 10ull * 365 * 86400)
            return -1;
        return (int64_t)secs * 1000;
    }
    /* IMF-fixdate, the form RFC 9110 5.6.7 has senders use: "Sun, 06 Nov 1994 08:49:37 GMT" */
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(value, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end)
        return -1;
    while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
        end++;
    if (*end)
        return -1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    int64_t d = (int64_t)t * 1000 - now_ms;
    return d > 0 ? d : 0;
}

/* --- JSON (the flat objects RFC 6962 logs answer) --------------------------------------------- */

typedef struct jcur {
    const char *p, *end;
} jcur;

static void j_ws(jcur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n'))
        c->p++;
}

static int j_hex4(const char *p, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char ch = p[i];
        int d = ch >= '0' && ch <= '9'   ? ch - '0'
                : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                         : -1;
        if (d < 0)
            return -1;
        *v = *v << 4 | (unsigned)d;
    }
    return 0;
}

/* A string at c->p into out (NUL-terminated; cap includes the NUL). Escapes are decoded;
 * \u escapes only for ASCII (nothing else belongs in the fields we read). -1 when malformed or
 * too long. */
static int j_string(jcur *c, char *out, size_t cap, size_t *len)
{
    size_t o = 0;
    if (c->p >= c->end || *c->p != '"')
        return -1;
    c->p++;
    while (c->p < c->end && *c->p != '"') {
        char ch = *c->p++;
        if ((unsigned char)ch < 0x20)
            return -1;
        if (ch == '\\') {
            if (c->p >= c->end)
                return -1;
            char esc = *c->p++;
            switch (esc) {
            case '"':
            case '\\':
            case '/':
                ch = esc;
                break;
            case 'b':
                ch = '\b';
                break;
            case 'f':
                ch = '\f';
                break;
            case 'n':
                ch = '\n';
                break;
            case 'r':
                ch = '\r';
                break;
            case 't':
                ch = '\t';
                break;
            case 'u': {
                unsigned u;
                if (c->end - c->p < 4 || j_hex4(c->p, &u) != 0 || u == 0 || u > 0x7f)
                    return -1;
                c->p += 4;
                ch = (char)u;
                break;
            }
            default:
                return -1;
            }
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = ch;
    }
    if (c->p >= c->end)
        return -1;
    c->p++;
    out[o] = '\0';
    if (len)
        *len = o;
    return 0;
}

/* A non-negative integer. */
static int j_uint(jcur *c, uint64_t *v)
{
    if (c->p >= c->end || *c->p < '0' || *c->p > '9')
        return -1;
    uint64_t x = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        unsigned d = (unsigned)(*c->p++ - '0');
        if (x > (UINT64_MAX - d) / 10)
            return -1;
        x = x * 10 + d;
    }
    if (c->p < c->end && (*c->p == '.' || *c->p == 'e' || *c->p == 'E'))
        return -1;
    *v = x;
    return 0;
}

/* Skips any value (nesting bounded). */
static int j_skip(jcur *c, int depth)
{
    j_ws(c);
    if (c->p >= c->end || depth > 16)
        return -1;
    char ch = *c->p;
    if (ch == '"') {
        char tmp[4096];
        return j_string(c, tmp, sizeof tmp, NULL);
    }
    if (ch == '{' || ch == '[') {
        char close = ch == '{' ? '}' : ']';
        c->p++;
        j_ws(c);
        if (c->p < c->end && *c->p == close) {
            c->p++;
            return 0;
        }
        for (;;) {
            if (ch == '{') {
                char key[256];
                j_ws(c);
                if (j_string(c, key, sizeof key, NULL) != 0)
                    return -1;
                j_ws(c);
                if (c->p >= c->end || *c->p++ != ':')
                    return -1;
            }
            if (j_skip(c, depth + 1) != 0)
                return -1;
            j_ws(c);
            if (c->p >= c->end)
                return -1;
            if (*c->p == ',') {
                c->p++;
                continue;
            }
            if (*c->p++ == close)
                return 0;
            return -1;
        }
    }
    /* number, true, false, null */
    const char *s = c->p;
    while (c->p < c->end &&
           ((*c->p >= '0' && *c->p <= '9') || *c->p == '-' || *c->p == '+' || *c->p == '.' ||
            *c->p == 'e' || *c->p == 'E' || (*c->p >= 'a' && *c->p <= 'z')))
        c->p++;
    return c->p > s ? 0 : -1;
}

/* A base64 string value decoded into out. */
static int j_b64(jcur *c, uint8_t *out, size_t cap, size_t *len)
{
    char tmp[4 * ((MC_CT_SIG_MAX + 2) / 3) + 8];
    size_t n;
    if (j_string(c, tmp, sizeof tmp, &n) != 0)
        return -1;
    long d = mc_ct_b64_decode(tmp, n, out, cap);
    if (d < 0)
        return -1;
    *len = (size_t)d;
    return 0;
}

mc_err mc_ct_sct_from_json(const char *body, size_t len, mc_ct_sct *out, mc_errdetail *err)
{
    jcur c = {body, body + len};
    enum { F_VERSION = 1, F_ID = 2, F_TS = 4, F_SIG = 8 };
    unsigned seen = 0;
    memset(out, 0, sizeof *out);
    j_ws(&c);
    if (c.p >= c.end || *c.p++ != '{')
        return mc_err_set(err, MC_ERR_INVALID, "sct", NULL, "SCT answer: not a JSON object");
    j_ws(&c);
    if (c.p < c.end && *c.p == '}')
        c.p++;
    else
        for (;;) {
            char key[64];
            j_ws(&c);
            if (j_string(&c, key, sizeof key, NULL) != 0)
                return mc_err_set(err, MC_ERR_INVALID, "sct", NULL, "SCT answer: bad key");
            j_ws(&c);
            if (c.p >= c.end || *c.p++ != ':')
                return mc_err_set(err, MC_ERR_INVALID, key, NULL, "SCT answer: ':' expected");
            j_ws(&c);
            int bad;
            size_t n = 0;
            uint64_t u = 0;
            if (strcmp(key, "sct_version") == 0) {
                bad = j_uint(&c, &u) != 0 || u > 255;
                out->version = (uint8_t)u;
                seen |= F_VERSION;
            } else if (strcmp(key, "id") == 0) {
                bad = j_b64(&c, out->log_id, sizeof out->log_id, &n) != 0 || n != MC_CT_LOG_ID_LEN;
                seen |= F_ID;
            } else if (strcmp(key, "timestamp") == 0) {
                bad = j_uint(&c, &out->timestamp) != 0;
                seen |= F_TS;
            } else if (strcmp(key, "extensions") == 0) {
                bad = j_b64(&c, out->ext, sizeof out->ext, &out->ext_len) != 0;
            } else if (strcmp(key, "signature") == 0) {
                bad = j_b64(&c, out->sig, sizeof out->sig, &out->sig_len) != 0 || out->sig_len < 4;
                seen |= F_SIG;
            } else {
                bad = j_skip(&c, 0) != 0;
            }
            if (bad)
                return mc_err_set(err, MC_ERR_INVALID, key, "RFC 6962 4.1",
                                  "SCT answer: field '%s' malformed", key);
            j_ws(&c);
            if (c.p < c.end && *c.p == ',') {
                c.p++;
                continue;
            }
            if (c.p < c.end && *c.p == '}') {
                c.p++;
                break;
            }
            return mc_err_set(err, MC_ERR_INVALID, "sct", NULL,
                              "SCT answer: ',' or '}' expected after '%s'", key);
        }
    j_ws(&c);
    if (c.p != c.end)
        return mc_err_set(err, MC_ERR_INVALID, "sct", NULL, "SCT answer: bytes after the object");
    static const char *const names[] = {"sct_version", "id", "timestamp", "signature"};
    for (int i = 0; i < 4; i++)
        if (!(seen & (1u << i)))
            return mc_err_set(err, MC_ERR_INVALID, names[i], "RFC 6962 4.1",
                              "SCT answer: field '%s' missing", names[i]);
    /* DigitallySigned: the signature length must match what is there. */
    size_t sl = (size_t)out->sig[2] << 8 | out->sig[3];
    if (sl + 4 != out->sig_len)
        return mc_err_set(err, MC_ERR_INVALID, "signature", "RFC 5246 4.7",
                          "SCT answer: signature length %zu, %zu bytes follow", sl,
                          out->sig_len - 4);
    return MC_OK;
}

/* --- SCT serialization ------------------------------------------------------------------------ */

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

mc_err mc_ct_sct_serialize(const mc_ct_sct *sct, uint8_t *out, size_t cap, size_t *len,
                           mc_errdetail *err)
{
    size_t need = 1 + MC_CT_LOG_ID_LEN + 8 + 2 + sct->ext_len + sct->sig_len;
    if (need > cap || sct->ext_len > 0xffff)
        return mc_err_set(err, MC_ERR_NOMEM, "sct", NULL, "SCT serialize: %zu bytes do not fit %zu",
                          need, cap);
    size_t o = 0;
    out[o++] = sct->version;
    memcpy(out + o, sct->log_id, MC_CT_LOG_ID_LEN);
    o += MC_CT_LOG_ID_LEN;
    put_u64(out + o, sct->timestamp);
    o += 8;
    out[o++] = (uint8_t)(sct->ext_len >> 8);
    out[o++] = (uint8_t)sct->ext_len;
    memcpy(out + o, sct->ext, sct->ext_len);
    o += sct->ext_len;
    memcpy(out + o, sct->sig, sct->sig_len);
    o += sct->sig_len;
    *len = o;
    return MC_OK;
}

mc_err mc_ct_sct_parse(const uint8_t *in, size_t len, mc_ct_sct *out, mc_errdetail *err)
{
    memset(out, 0, sizeof *out);
    size_t head = 1 + MC_CT_LOG_ID_LEN + 8 + 2;
    if (!in || len < head + 4)
        return mc_err_set(err, MC_ERR_INVALID, "sct", "RFC 6962 3.3",
                          "serialized SCT: %zu bytes are too short", in ? len : 0);
    out->version = in[0];
    memcpy(out->log_id, in + 1, MC_CT_LOG_ID_LEN);
    out->timestamp = get_u64(in + 1 + MC_CT_LOG_ID_LEN);
    size_t el = (size_t)in[head - 2] << 8 | in[head - 1];
    if (el > sizeof out->ext || head + el + 4 > len)
        return mc_err_set(err, MC_ERR_INVALID, "sct", "RFC 6962 3.3",
                          "serialized SCT: extensions of %zu bytes overrun", el);
    memcpy(out->ext, in + head, el);
    out->ext_len = el;
    const uint8_t *sig = in + head + el;
    size_t rest = len - head - el;
    size_t sl = (size_t)sig[2] << 8 | sig[3];
    if (sl + 4 != rest || rest > sizeof out->sig)
        return mc_err_set(err, MC_ERR_INVALID, "sct", "RFC 6962 3.3",
                          "serialized SCT: signature of %zu bytes, %zu follow", sl, rest - 4);
    memcpy(out->sig, sig, rest);
    out->sig_len = rest;
    return MC_OK;
}

/* --- RFC 6962 3.2: the signed entry ----------------------------------------------------------- */

/* The precert_entry body: issuer_key_hash | u24 len | TBS of the precertificate without the
 * poison extension (RFC 6962 3.2; the precertificate is issued by the CA itself, no
 * Precertificate Signing Certificate). *out malloc'd. */
static mc_err precert_entry(const uint8_t *leaf, size_t leaf_len, const uint8_t *issuer,
                            size_t issuer_len, uint8_t **out, size_t *out_len, mc_errdetail *err)
{
    X509 *pc = NULL, *is = NULL;
    uint8_t *tbs = NULL, *spki = NULL;
    mc_err e = MC_OK;
    const unsigned char *p = leaf;
    pc = d2i_X509(NULL, &p, (long)leaf_len);
    p = issuer;
    is = issuer ? d2i_X509(NULL, &p, (long)issuer_len) : NULL;
    if (!pc || !is) {
        e = mc_err_set(err, MC_ERR_INVALID, pc ? "issuer" : "precert", "RFC 6962 3.1",
                       "precert entry: %s does not parse", pc ? "issuer" : "precertificate");
        goto done;
    }
    int at = X509_get_ext_by_NID(pc, NID_ct_precert_poison, -1);
    if (at < 0) {
        e = mc_err_set(err, MC_ERR_INVALID, "precert", "RFC 6962 3.1",
                       "precert entry: no poison extension");
        goto done;
    }
    X509_EXTENSION_free(X509_delete_ext(pc, at));
    int tl = i2d_re_X509_tbs(pc, &tbs);
    int kl = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(is), &spki);
    if (tl <= 0 || kl <= 0) {
        e = mc_err_set(err, MC_ERR_CRYPTO, "precert", NULL, "precert entry: encoding failed");
        goto done;
    }
    *out_len = 32 + 3 + (size_t)tl;
    *out = malloc(*out_len);
    if (!*out) {
        e = mc_err_set(err, MC_ERR_NOMEM, "precert", NULL, "precert entry: out of memory");
        goto done;
    }
    SHA256(spki, (size_t)kl, *out);
    (*out)[32] = (uint8_t)(tl >> 16);
    (*out)[33] = (uint8_t)(tl >> 8);
    (*out)[34] = (uint8_t)tl;
    memcpy(*out + 35, tbs, (size_t)tl);
done:
    OPENSSL_free(tbs);
    OPENSSL_free(spki);
    X509_free(pc);
    X509_free(is);
    return e;
}

/* prefix (0, 1 or 2 bytes) | signed entry, malloc'd. */
static mc_err entry_build(const uint8_t *prefix, size_t prefix_len, const mc_ct_sct *sct,
                          int precert, const uint8_t *leaf, size_t leaf_len, const uint8_t *issuer,
                          size_t issuer_len, uint8_t **out, size_t *out_len, mc_errdetail *err)
{
    uint8_t *body = NULL;
    size_t body_len = 0;
    *out = NULL;
    *out_len = 0;
    if (!leaf || leaf_len == 0 || leaf_len > 0xffffff)
        return mc_err_set(err, MC_ERR_INVALID, "leaf", NULL, "ct entry: certificate of %zu bytes",
                          leaf ? leaf_len : 0);
    if (precert) {
        mc_err e = precert_entry(leaf, leaf_len, issuer, issuer_len, &body, &body_len, err);
        if (e)
            return e;
    }
    size_t n = prefix_len + 8 + 2 + (precert ? body_len : 3 + leaf_len) + 2 + sct->ext_len;
    uint8_t *b = malloc(n);
    if (!b) {
        free(body);
        return mc_err_set(err, MC_ERR_NOMEM, "leaf", NULL, "ct entry: out of memory");
    }
    size_t o = 0;
    memcpy(b, prefix, prefix_len);
    o += prefix_len;
    put_u64(b + o, sct->timestamp);
    o += 8;
    b[o++] = 0;
    b[o++] = precert ? 1 : 0; /* LogEntryType: x509_entry(0), precert_entry(1) */
    if (precert) {
        memcpy(b + o, body, body_len);
        o += body_len;
    } else {
        b[o++] = (uint8_t)(leaf_len >> 16);
        b[o++] = (uint8_t)(leaf_len >> 8);
        b[o++] = (uint8_t)leaf_len;
        memcpy(b + o, leaf, leaf_len);
        o += leaf_len;
    }
    b[o++] = (uint8_t)(sct->ext_len >> 8);
    b[o++] = (uint8_t)sct->ext_len;
    memcpy(b + o, sct->ext, sct->ext_len);
    o += sct->ext_len;
    free(body);
    *out = b;
    *out_len = o;
    return MC_OK;
}

mc_err mc_ct_signed_entry(const mc_ct_sct *sct, int precert, const uint8_t *leaf, size_t leaf_len,
                          const uint8_t *issuer, size_t issuer_len, uint8_t **out, size_t *out_len,
                          mc_errdetail *err)
{
    return entry_build(NULL, 0, sct, precert, leaf, leaf_len, issuer, issuer_len, out, out_len,
                       err);
}

/* Verifies a DigitallySigned (hash u8 | sig u8 | u16 len | sig) over data: SHA-256 only, and
 * the signature algorithm must be the key's (RFC 6962 2.1.4). vctx, when not NULL, is a verify
 * context of key set up by verify_ctx_new and reused (the drainer's, one per log): it saves the
 * algorithm fetches of EVP_DigestVerifyInit, about a third of the cost of a verification. */
static mc_err ds_verify(EVP_PKEY *key, EVP_PKEY_CTX *vctx, const uint8_t *ds, size_t ds_len,
                        const uint8_t *data, size_t len, const char *what, mc_errdetail *err)
{
    if (ds_len < 4 || ((size_t)ds[2] << 8 | ds[3]) + 4 != ds_len)
        return mc_err_set(err, MC_ERR_CRYPTO, what, "RFC 5246 4.7",
                          "%s: DigitallySigned of %zu bytes malformed", what, ds_len);
    int want = EVP_PKEY_is_a(key, "EC") ? 3 : 1; /* SignatureAlgorithm ecdsa(3), rsa(1) */
    if (ds[0] != 4 || ds[1] != want)
        return mc_err_set(err, MC_ERR_CRYPTO, what, "RFC 6962 2.1.4",
                          "%s: hash %u / signature %u, expected sha256(4) / %s(%d)", what, ds[0],
                          ds[1], want == 3 ? "ecdsa" : "rsa", want);
    int ok;
    if (vctx) {
        uint8_t digest[SHA256_DIGEST_LENGTH];
        SHA256(data, len, digest);
        ok = EVP_PKEY_verify(vctx, ds + 4, ds_len - 4, digest, sizeof digest) == 1;
    } else {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        ok = md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
             EVP_DigestVerify(md, ds + 4, ds_len - 4, data, len) == 1;
        EVP_MD_CTX_free(md);
    }
    return ok ? MC_OK
              : mc_err_set(err, MC_ERR_CRYPTO, what, "RFC 6962 3.2",
                           "%s: signature does not verify with the log key", what);
}

/* A reusable verify context for SHA-256 signatures by key (ECDSA or RSA PKCS#1 v1.5, the
 * DigitallySigned kinds RFC 6962 2.1.4 allows), or NULL. Caller frees with EVP_PKEY_CTX_free. */
static EVP_PKEY_CTX *verify_ctx_new(EVP_PKEY *key)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    if (!c || EVP_PKEY_verify_init(c) != 1 || EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()) != 1 ||
        (EVP_PKEY_is_a(key, "RSA") && EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) != 1)) {
        EVP_PKEY_CTX_free(c);
        return NULL;
    }
    return c;
}

/* mc_ct_sct_verify with the key already parsed (and vctx: see ds_verify). */
static mc_err sct_verify_key(const mc_ct_sct *sct, EVP_PKEY *key, EVP_PKEY_CTX *vctx,
                             const uint8_t id[32], int precert, const uint8_t *leaf,
                             size_t leaf_len, const uint8_t *issuer, size_t issuer_len,
                             int64_t now_ms, int64_t max_future_ms, mc_errdetail *err)
{
    if (sct->version != 0)
        return mc_err_set(err, MC_ERR_CRYPTO, "sct_version", "RFC 6962 3.2",
                          "SCT: version %u is not v1 (0)", sct->version);
    if (memcmp(sct->log_id, id, MC_CT_LOG_ID_LEN) != 0)
        return mc_err_set(err, MC_ERR_CRYPTO, "id", "RFC 6962 3.2",
                          "SCT: LogID is not SHA-256 of the configured log key");
    if ((int64_t)sct->timestamp > now_ms + max_future_ms || sct->timestamp > INT64_MAX)
        return mc_err_set(err, MC_ERR_CRYPTO, "timestamp", NULL,
                          "SCT: timestamp %llu is more than %lld ms after now (%lld)",
                          (unsigned long long)sct->timestamp, (long long)max_future_ms,
                          (long long)now_ms);
    /* RFC 6962 3.2: digitally-signed struct { Version sct_version; SignatureType
     * signature_type = certificate_timestamp(0); timestamp; entry_type; entry; extensions }. */
    static const uint8_t prefix[2] = {0, 0};
    uint8_t *data = NULL;
    size_t len = 0;
    mc_err e =
        entry_build(prefix, 2, sct, precert, leaf, leaf_len, issuer, issuer_len, &data, &len, err);
    if (!e)
        e = ds_verify(key, vctx, sct->sig, sct->sig_len, data, len, "SCT", err);
    free(data);
    return e;
}

mc_err mc_ct_sct_verify(const mc_ct_sct *sct, const uint8_t *spki, size_t spki_len, int precert,
                        const uint8_t *leaf, size_t leaf_len, const uint8_t *issuer,
                        size_t issuer_len, int64_t now_ms, int64_t max_future_ms, mc_errdetail *err)
{
    EVP_PKEY *key = log_key(spki, spki_len, err);
    if (!key)
        return MC_ERR_CRYPTO;
    uint8_t id[32];
    SHA256(spki, spki_len, id);
    mc_err e = sct_verify_key(sct, key, NULL, id, precert, leaf, leaf_len, issuer, issuer_len,
                              now_ms, max_future_ms, err);
    EVP_PKEY_free(key);
    return e;
}

/* --- Merkle tree ------------------------------------------------------------------------------ */

void mc_ct_merkle_leaf(const uint8_t *data, size_t len, uint8_t out[32])
{
    static const uint8_t zero = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int n = 32;
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(md, &zero, 1) != 1 || EVP_DigestUpdate(md, data, len) != 1 ||
        EVP_DigestFinal_ex(md, out, &n) != 1)
        memset(out, 0, 32);
    EVP_MD_CTX_free(md);
}

void mc_ct_merkle_node(const uint8_t l[32], const uint8_t r[32], uint8_t out[32])
{
    uint8_t b[65];
    b[0] = 1;
    memcpy(b + 1, l, 32);
    memcpy(b + 33, r, 32);
    SHA256(b, sizeof b, out);
}

mc_err mc_ct_leaf_hash(const mc_ct_sct *sct, int precert, const uint8_t *leaf, size_t leaf_len,
                       const uint8_t *issuer, size_t issuer_len, uint8_t out[32], mc_errdetail *err)
{
    /* MerkleTreeLeaf: Version v1(0) | MerkleLeafType timestamped_entry(0) | TimestampedEntry. */
    static const uint8_t prefix[2] = {0, 0};
    uint8_t *data = NULL;
    size_t len = 0;
    mc_err e =
        entry_build(prefix, 2, sct, precert, leaf, leaf_len, issuer, issuer_len, &data, &len, err);
    if (!e)
        mc_ct_merkle_leaf(data, len, out);
    free(data);
    return e;
}

int mc_ct_merkle_verify_inclusion(const uint8_t leaf_hash[32], uint64_t index, uint64_t tree_size,
                                  const uint8_t (*path)[32], size_t path_n, const uint8_t root[32])
{
    if (index >= tree_size)
        return 0;
    uint64_t fn = index, sn = tree_size - 1;
    uint8_t r[32];
    memcpy(r, leaf_hash, 32);
    for (size_t i = 0; i < path_n; i++) {
        if (sn == 0)
            return 0;
        if ((fn & 1) || fn == sn) {
            mc_ct_merkle_node(path[i], r, r);
            if (!(fn & 1))
                while (!(fn & 1) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
        } else {
            mc_ct_merkle_node(r, path[i], r);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && memcmp(r, root, 32) == 0;
}

mc_err mc_ct_sth_verify(const uint8_t *spki, size_t spki_len, uint64_t timestamp,
                        uint64_t tree_size, const uint8_t root[32], const uint8_t *sig,
                        size_t sig_len, mc_errdetail *err)
{
    EVP_PKEY *key = log_key(spki, spki_len, err);
    if (!key)
        return MC_ERR_CRYPTO;
    /* RFC 6962 3.5: Version v1 | SignatureType tree_hash(1) | timestamp | tree_size | root. */
    uint8_t data[2 + 8 + 8 + 32];
    data[0] = 0;
    data[1] = 1;
    put_u64(data + 2, timestamp);
    put_u64(data + 10, tree_size);
    memcpy(data + 18, root, 32);
    mc_err e = ds_verify(key, NULL, sig, sig_len, data, sizeof data, "STH", err);
    EVP_PKEY_free(key);
    return e;
}

/* --- the drainer ------------------------------------------------------------------------------ */

int64_t mc_ct_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#ifndef MAILCA_HAVE_LIBCURL

/* Built without libcurl: the outbox, SCT and Merkle functions work, submitting does not. */
mc_err mc_ct_new(const mc_ct_config *cfg, mc_ct **out, mc_errdetail *err)
{
    (void)cfg;
    if (out)
        *out = NULL;
    return mc_err_set(err, MC_ERR_UNSUPPORTED, "ct", NULL,
                      "ct: this build has no HTTP client (libcurl) to submit to logs");
}

void mc_ct_free(mc_ct *ct)
{
    (void)ct;
}

mc_err mc_ct_run_once(mc_ct *ct, mc_store *s, int64_t now_ms, mc_ct_stats *st, mc_errdetail *err)
{
    (void)ct, (void)s, (void)now_ms;
    if (st)
        memset(st, 0, sizeof *st);
    return mc_err_set(err, MC_ERR_UNSUPPORTED, "ct", NULL, "ct: this build has no libcurl");
}

mc_err mc_ct_drain(mc_ct *ct, mc_store *s, const atomic_int *stop, mc_ct_stats *st,
                   mc_errdetail *err)
{
    (void)stop;
    return mc_ct_run_once(ct, s, 0, st, err);
}

#else

#include <curl/curl.h>

/* NUL-terminated base64 of in appended at out (4 * ceil(n / 3) + 1 bytes available). */
static size_t b64_encode(const uint8_t *in, size_t n, char *out)
{
    return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

struct mc_ct {
    mc_ct_config cfg;
    EVP_PKEY *keys[MC_CT_LOGS_MAX];
    EVP_PKEY_CTX *vctx[MC_CT_LOGS_MAX]; /* SCT verification with keys[i], reused */
    CURLM *multi;
    CURL **pool; /* idle easy handles */
    size_t pool_n;
    struct curl_slist *headers;
    uint64_t rng;
    const atomic_int *stop; /* mc_ct_drain's, while it runs: ends a run early (stop_grace_ms) */
};

enum { XFER_QUEUED, XFER_ACTIVE, XFER_FINISHED };

/* One submission in flight. */
typedef struct ct_xfer {
    mc_ct_job *job;
    int log; /* index in cfg.logs, -1: the log is no longer configured */
    CURL *easy;
    char *body;
    size_t body_len;
    char *resp;
    size_t resp_len, resp_cap;
    char retry_after[64];
    int has_retry_after;
    char curl_err[CURL_ERROR_SIZE];
    int phase; /* XFER_QUEUED, XFER_ACTIVE, XFER_FINISHED */
    char msg[MC_ERR_MSG_MAX + 64];
    uint8_t sct[1 + MC_CT_LOG_ID_LEN + 8 + 2 + MC_CT_EXT_MAX + MC_CT_SIG_MAX];
    mc_ct_outcome out;
} ct_xfer;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t ct_rand(mc_ct *ct)
{
    /* xorshift64*: jitter only, not security. */
    ct->rng ^= ct->rng >> 12;
    ct->rng ^= ct->rng << 25;
    ct->rng ^= ct->rng >> 27;
    return (uint32_t)((ct->rng * 2685821657736338717ull) >> 32);
}

mc_err mc_ct_new(const mc_ct_config *cfg, mc_ct **out, mc_errdetail *err)
{
    if (!cfg || !out)
        return mc_err_set(err, MC_ERR_INVALID, "ct", NULL, "ct: NULL argument");
    *out = NULL;
    if (cfg->max_in_flight < 1 || cfg->per_log_in_flight < 1 || cfg->timeout_ms < 1 ||
        cfg->connect_timeout_ms < 1 || cfg->lease_ms <= cfg->timeout_ms || cfg->claim_max < 1 ||
        cfg->stop_grace_ms < 0)
        return mc_err_set(err, MC_ERR_CONFIG, "ct", NULL,
                          "ct: in-flight limits %d/%d, timeouts %d/%d ms, lease %lld ms, claim "
                          "%zu, stop grace %d ms: each must be positive (the grace may be 0) and "
                          "the lease longer than the timeout",
                          cfg->max_in_flight, cfg->per_log_in_flight, cfg->timeout_ms,
                          cfg->connect_timeout_ms, (long long)cfg->lease_ms, cfg->claim_max,
                          cfg->stop_grace_ms);
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return mc_err_set(err, MC_ERR_IO, "ct", NULL, "ct: curl_global_init: %s",
                          curl_easy_strerror(curl_init_rc));
    mc_ct *ct = calloc(1, sizeof *ct);
    mc_err e = MC_OK;
    if (!ct)
        return mc_err_set(err, MC_ERR_NOMEM, "ct", NULL, "ct: out of memory");
    ct->cfg = *cfg;
    for (size_t i = 0; i < cfg->nlogs; i++) {
        ct->keys[i] = log_key(cfg->logs[i].spki, cfg->logs[i].spki_len, err);
        if (!ct->keys[i]) {
            e = MC_ERR_CONFIG;
            goto done;
        }
        if (!(ct->vctx[i] = verify_ctx_new(ct->keys[i]))) {
            e = mc_err_set(err, MC_ERR_CRYPTO, "ct.key", NULL,
                           "ct log '%s': cannot set up SHA-256 verification with its key",
                           cfg->logs[i].url);
            goto done;
        }
    }
    ct->pool = calloc((size_t)cfg->max_in_flight, sizeof *ct->pool);
    ct->multi = curl_multi_init();
    ct->headers = curl_slist_append(NULL, "Content-Type: application/json");
    /* No "Expect: 100-continue" round trip before each body. */
    struct curl_slist *h2 = ct->headers ? curl_slist_append(ct->headers, "Expect:") : NULL;
    if (!ct->pool || !ct->multi || !h2) {
        e = mc_err_set(err, MC_ERR_NOMEM, "ct", NULL, "ct: out of memory");
        goto done;
    }
    ct->headers = h2;
    /* Per host (a log): at most per_log_in_flight connections, kept open between runs. */
    curl_multi_setopt(ct->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)cfg->per_log_in_flight);
    curl_multi_setopt(ct->multi, CURLMOPT_MAXCONNECTS,
                      (long)cfg->per_log_in_flight * (long)(cfg->nlogs ? cfg->nlogs : 1));
    ct->rng = (uint64_t)mc_ct_now_ms() ^ (uint64_t)(uintptr_t)ct ^ 0x9e3779b97f4a7c15ull;
    if (!ct->rng)
        ct->rng = 1;
done:
    if (e) {
        mc_ct_free(ct);
        return e;
    }
    *out = ct;
    return MC_OK;
}

void mc_ct_free(mc_ct *ct)
{
    if (!ct)
        return;
    for (size_t i = 0; i < ct->pool_n; i++)
        curl_easy_cleanup(ct->pool[i]);
    free(ct->pool);
    if (ct->multi)
        curl_multi_cleanup(ct->multi);
    curl_slist_free_all(ct->headers);
    for (size_t i = 0; i < MC_CT_LOGS_MAX; i++) {
        EVP_PKEY_CTX_free(ct->vctx[i]);
        EVP_PKEY_free(ct->keys[i]);
    }
    free(ct);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    ct_xfer *x = arg;
    size_t n = size * nmemb;
    if (x->resp_len + n > CT_RESP_MAX)
        return 0; /* CURLE_WRITE_ERROR: no log answers this much */
    if (x->resp_len + n + 1 > x->resp_cap) {
        size_t cap = x->resp_cap ? x->resp_cap : 1024;
        while (cap < x->resp_len + n + 1)
            cap *= 2;
        char *r = realloc(x->resp, cap);
        if (!r)
            return 0;
        x->resp = r;
        x->resp_cap = cap;
    }
    memcpy(x->resp + x->resp_len, data, n);
    x->resp_len += n;
    x->resp[x->resp_len] = '\0';
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    ct_xfer *x = arg;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";
    if (n > sizeof name - 1 && strncasecmp(data, name, sizeof name - 1) == 0) {
        const char *v = data + sizeof name - 1;
        size_t vl = n - (sizeof name - 1);
        while (vl && (*v == ' ' || *v == '\t')) {
            v++;
            vl--;
        }
        if (vl >= sizeof x->retry_after)
            vl = sizeof x->retry_after - 1;
        memcpy(x->retry_after, v, vl);
        x->retry_after[vl] = '\0';
        char *e = x->retry_after + strlen(x->retry_after);
        while (e > x->retry_after && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' '))
            *--e = '\0';
        x->has_retry_after = 1;
    } else if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        x->has_retry_after = 0; /* a new response (after a 100 Continue) */
    }
    return n;
}

/* The add-chain body: {"chain":["<b64>",...]}. */
static mc_err body_build(ct_xfer *x, mc_errdetail *err)
{
    size_t i = 0, cap = 16, n = 0;
    const uint8_t *der;
    size_t dl;
    int r;
    while ((r = mc_ct_chain_next(x->job->chain, x->job->chain_len, &i, &der, &dl)) == 1) {
        cap += 4 * ((dl + 2) / 3) + 4;
        n++;
    }
    if (r < 0 || n == 0)
        return mc_err_set(err, MC_ERR_INVALID, "chain", NULL, "malformed chain in the outbox");
    x->body = malloc(cap);
    if (!x->body)
        return mc_err_set(err, MC_ERR_NOMEM, "chain", NULL, "out of memory");
    size_t o = 0;
    memcpy(x->body, "{\"chain\":[", 10);
    o = 10;
    i = 0;
    for (size_t k = 0; mc_ct_chain_next(x->job->chain, x->job->chain_len, &i, &der, &dl) == 1;
         k++) {
        if (k)
            x->body[o++] = ',';
        x->body[o++] = '"';
        o += b64_encode(der, dl, x->body + o);
        x->body[o++] = '"';
    }
    x->body[o++] = ']';
    x->body[o++] = '}';
    x->body_len = o;
    return MC_OK;
}

static CURL *easy_get(mc_ct *ct)
{
    if (ct->pool_n)
        return ct->pool[--ct->pool_n];
    return curl_easy_init();
}

static void easy_put(mc_ct *ct, CURL *e)
{
    if (ct->pool_n < (size_t)ct->cfg.max_in_flight) {
        curl_easy_reset(e); /* the connection stays in the multi handle's cache */
        ct->pool[ct->pool_n++] = e;
    } else {
        curl_easy_cleanup(e);
    }
}

static int xfer_start(mc_ct *ct, ct_xfer *x)
{
    const mc_ct_log *l = &ct->cfg.logs[x->log];
    char url[MC_CT_URL_MAX + 32];
    snprintf(url, sizeof url, "%s/ct/v1/%s", l->url,
             x->job->precert ? "add-pre-chain" : "add-chain");
    CURL *e = easy_get(ct);
    if (!e)
        return -1;
    x->easy = e;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)x->body_len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, ct->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)ct->cfg.timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)ct->cfg.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->curl_err);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "mailca-ct/" MAILCA_VERSION);
    if (curl_multi_add_handle(ct->multi, e) != CURLM_OK) {
        easy_put(ct, e);
        x->easy = NULL;
        return -1;
    }
    return 0;
}

/* Printable excerpt of a log's answer for the outbox message. */
static void excerpt(const char *in, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap && o < CT_LOG_MSG_MAX; i++) {
        unsigned char c = (unsigned char)in[i];
        out[o++] = c >= 0x20 && c < 0x7f ? (char)c : ' ';
    }
    while (o && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
}

static void retry(mc_ct *ct, ct_xfer *x, int64_t now_ms, int64_t retry_after_ms)
{
    x->out.state = MC_CT_PENDING;
    x->out.next_ms =
        now_ms + mc_ct_backoff_ms(&ct->cfg, x->job->attempts, retry_after_ms, ct_rand(ct));
}

/* Turns a finished transfer into its outcome. */
static void xfer_finish(mc_ct *ct, ct_xfer *x, CURLcode rc, int64_t now_ms, mc_ct_stats *st)
{
    long status = 0, conns = 0;
    curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &conns);
    st->connections += (size_t)conns;
    if (rc == CURLE_OK)
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    x->out.http_status = (int)status;
    x->out.message = x->msg;
    if (rc != CURLE_OK) {
        snprintf(x->msg, sizeof x->msg, "no answer: %.200s",
                 x->curl_err[0] ? x->curl_err : curl_easy_strerror(rc));
        retry(ct, x, now_ms, -1);
        st->retried++;
        return;
    }
    char ex[CT_LOG_MSG_MAX + 1];
    excerpt(x->resp ? x->resp : "", x->resp_len, ex, sizeof ex);
    switch (mc_ct_classify((int)status)) {
    case MC_CT_V_DONE: {
        mc_ct_sct sct;
        mc_errdetail e2;
        const uint8_t *leaf = NULL, *issuer = NULL;
        size_t ll = 0, il = 0, i = 0;
        mc_err e = mc_ct_sct_from_json(x->resp ? x->resp : "", x->resp_len, &sct, &e2);
        if (!e && mc_ct_chain_next(x->job->chain, x->job->chain_len, &i, &leaf, &ll) != 1)
            e = mc_err_set(&e2, MC_ERR_INVALID, "chain", NULL, "malformed chain in the outbox");
        if (!e) {
            if (mc_ct_chain_next(x->job->chain, x->job->chain_len, &i, &issuer, &il) != 1)
                issuer = NULL;
            e = sct_verify_key(&sct, ct->keys[x->log], ct->vctx[x->log], ct->cfg.logs[x->log].id,
                               x->job->precert, leaf, ll, issuer, il, now_ms, ct->cfg.max_future_ms,
                               &e2);
        }
        size_t sl = 0;
        if (!e)
            e = mc_ct_sct_serialize(&sct, x->sct, sizeof x->sct, &sl, &e2);
        if (e) {
            snprintf(x->msg, sizeof x->msg, "invalid SCT: %.200s", e2.message);
            retry(ct, x, now_ms, -1);
            st->invalid++;
            st->retried++;
            return;
        }
        x->out.state = MC_CT_DONE;
        x->out.next_ms = now_ms;
        x->out.message = NULL;
        x->out.sct = x->sct;
        x->out.sct_len = sl;
        x->out.sct_timestamp = (int64_t)sct.timestamp;
        st->done++;
        return;
    }
    case MC_CT_V_RETRY_NOW:
        snprintf(x->msg, sizeof x->msg, "HTTP %ld: %s", status, ex);
        x->out.state = MC_CT_PENDING;
        x->out.next_ms = now_ms;
        st->retried++;
        return;
    case MC_CT_V_RETRY: {
        int64_t ra = x->has_retry_after ? mc_ct_retry_after_ms(x->retry_after, now_ms) : -1;
        snprintf(x->msg, sizeof x->msg, "HTTP %ld%s%.40s%s%.160s", status,
                 ra >= 0 ? " Retry-After " : "", ra >= 0 ? x->retry_after : "", ex[0] ? ": " : "",
                 ex);
        retry(ct, x, now_ms, ra);
        st->retried++;
        return;
    }
    case MC_CT_V_REJECT:
        snprintf(x->msg, sizeof x->msg, "HTTP %ld: %s", status, ex[0] ? ex : "(no message)");
        x->out.state = MC_CT_REJECTED;
        x->out.next_ms = now_ms;
        st->rejected++;
        return;
    }
}

mc_err mc_ct_run_once(mc_ct *ct, mc_store *s, int64_t now_ms, mc_ct_stats *st, mc_errdetail *err)
{
    mc_ct_stats local;
    if (!st)
        st = &local;
    memset(st, 0, sizeof *st);
    if (!ct || !s)
        return mc_err_set(err, MC_ERR_INVALID, "ct", NULL, "ct run: NULL argument");
    mc_ct_job *jobs = NULL;
    size_t n = 0;
    ct_xfer *xs = NULL;
    size_t *queue = NULL;
    mc_ct_outcome *outs = NULL;
    /* A run must end before its lease does, or another drainer could claim the same rows: even
     * if every request of a log times out, its rows take ceil(rows / per_log_in_flight) *
     * timeout_ms. Claim no more than that allows. */
    size_t limit =
        (size_t)(ct->cfg.lease_ms / ct->cfg.timeout_ms) * (size_t)ct->cfg.per_log_in_flight;
    if (limit > ct->cfg.claim_max)
        limit = ct->cfg.claim_max;
    mc_err e = mc_store_ct_claim(s, now_ms, now_ms + ct->cfg.lease_ms, limit, &jobs, &n, err);
    if (e || n == 0)
        return e;
    st->claimed = n;
    xs = calloc(n, sizeof *xs);
    queue = calloc(n, sizeof *queue);
    outs = calloc(n, sizeof *outs);
    if (!xs || !queue || !outs) {
        e = mc_err_set(err, MC_ERR_NOMEM, "ct", NULL, "ct run: out of memory");
        goto done;
    }
    /* Per-log queues laid out in one array: log l's jobs are queue[qs[l] .. qs[l] + qn[l]). */
    size_t qs[MC_CT_LOGS_MAX] = {0}, qn[MC_CT_LOGS_MAX] = {0}, qh[MC_CT_LOGS_MAX] = {0};
    int active_log[MC_CT_LOGS_MAX] = {0};
    for (size_t i = 0; i < n; i++) {
        ct_xfer *x = &xs[i];
        x->job = &jobs[i];
        x->log = -1;
        x->out = (mc_ct_outcome){.serial = jobs[i].serial,
                                 .serial_len = jobs[i].serial_len,
                                 .log_id = jobs[i].log_id,
                                 .precert = jobs[i].precert,
                                 .message = x->msg};
        for (size_t l = 0; l < ct->cfg.nlogs; l++)
            if (memcmp(jobs[i].log_id, ct->cfg.logs[l].id, MC_CT_LOG_ID_LEN) == 0)
                x->log = (int)l;
        mc_errdetail e2;
        if (x->log < 0) {
            /* A log taken out of the configuration: keep the row, look again much later. */
            snprintf(x->msg, sizeof x->msg, "log is not configured");
            x->out.state = MC_CT_PENDING;
            x->out.next_ms = now_ms + ct->cfg.backoff_max_ms;
            st->retried++;
        } else if (body_build(x, &e2) != MC_OK) {
            snprintf(x->msg, sizeof x->msg, "%s", e2.message);
            x->out.state = MC_CT_REJECTED;
            x->out.next_ms = now_ms;
            st->rejected++;
        } else {
            qn[x->log]++;
        }
    }
    for (size_t l = 1; l < ct->cfg.nlogs; l++)
        qs[l] = qs[l - 1] + qn[l - 1];
    {
        size_t fill[MC_CT_LOGS_MAX] = {0};
        for (size_t i = 0; i < n; i++)
            if (xs[i].body)
                queue[qs[xs[i].log] + fill[xs[i].log]++] = i;
    }
    size_t active = 0;
    int64_t stop_seen = -1; /* monotonic ms when the drainer was told to stop */
    for (;;) {
        if (stop_seen < 0 && ct->stop && atomic_load(ct->stop))
            stop_seen = mono_ms();
        /* Start what the limits allow, round robin over the logs (nothing new once stopping). */
        int started = stop_seen < 0;
        while (started && active < (size_t)ct->cfg.max_in_flight) {
            started = 0;
            for (size_t l = 0; l < ct->cfg.nlogs && active < (size_t)ct->cfg.max_in_flight; l++) {
                if (qh[l] == qn[l] || active_log[l] >= ct->cfg.per_log_in_flight)
                    continue;
                ct_xfer *x = &xs[queue[qs[l] + qh[l]++]];
                if (xfer_start(ct, x) != 0) {
                    x->phase = XFER_FINISHED;
                    snprintf(x->msg, sizeof x->msg, "could not start the request");
                    x->out.message = x->msg;
                    retry(ct, x, now_ms, -1);
                    st->retried++;
                    continue;
                }
                x->phase = XFER_ACTIVE;
                active++;
                active_log[l]++;
                started = 1;
            }
        }
        if (active > st->max_active)
            st->max_active = active;
        if (active == 0)
            break;
        if (stop_seen >= 0 && mono_ms() - stop_seen >= ct->cfg.stop_grace_ms) {
            /* A log that does not answer must not hold up the end of an engine run for
             * timeout_ms: what is still in flight is abandoned and left due in the outbox (for
             * the next run or `mailca ct drain`), below. */
            for (size_t i = 0; i < n; i++)
                if (xs[i].phase == XFER_ACTIVE) {
                    curl_multi_remove_handle(ct->multi, xs[i].easy);
                    easy_put(ct, xs[i].easy);
                    xs[i].easy = NULL;
                }
            break;
        }
        int running = 0;
        CURLMcode mc = curl_multi_perform(ct->multi, &running);
        if (mc != CURLM_OK) {
            e = mc_err_set(err, MC_ERR_IO, "ct", NULL, "ct run: curl_multi_perform: %s",
                           curl_multi_strerror(mc));
            goto done;
        }
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(ct->multi, &left)) != NULL) {
            if (m->msg != CURLMSG_DONE)
                continue;
            ct_xfer *x = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            CURLcode rc = m->data.result;
            xfer_finish(ct, x, rc, now_ms, st);
            curl_multi_remove_handle(ct->multi, x->easy);
            easy_put(ct, x->easy);
            x->easy = NULL;
            x->phase = XFER_FINISHED;
            active--;
            active_log[x->log]--;
        }
        /* With a drainer that may be stopped, look at the flag every 50 ms. */
        if (active && running)
            curl_multi_poll(ct->multi, NULL, 0, ct->stop ? 50 : 1000, NULL);
    }
    for (size_t i = 0; i < n; i++) {
        ct_xfer *x = &xs[i];
        if (x->body && x->phase != XFER_FINISHED) {
            /* Stopped: not submitted, or no answer within stop_grace_ms. Due again at once. */
            if (x->phase == XFER_ACTIVE)
                snprintf(x->msg, sizeof x->msg,
                         "no answer within %d ms of the drainer's stop; left in the outbox",
                         ct->cfg.stop_grace_ms);
            else
                snprintf(x->msg, sizeof x->msg, "not submitted: the drainer was stopped");
            x->out.state = MC_CT_PENDING;
            x->out.next_ms = now_ms;
            x->out.message = x->msg;
            x->out.http_status = 0;
            st->left++;
        }
        outs[i] = x->out;
    }
    /* Should this fail, the rows stay leased and are submitted again when the lease ends (the
     * log then issues another SCT): delayed, not lost. */
    e = mc_store_ct_record(s, outs, n, err);
done:
    if (xs)
        for (size_t i = 0; i < n; i++) {
            if (xs[i].easy) {
                curl_multi_remove_handle(ct->multi, xs[i].easy);
                easy_put(ct, xs[i].easy);
            }
            free(xs[i].body);
            free(xs[i].resp);
        }
    free(xs);
    free(queue);
    free(outs);
    mc_store_ct_jobs_free(jobs, n);
    return e;
}

static void stats_add(mc_ct_stats *t, const mc_ct_stats *a)
{
    t->claimed += a->claimed;
    t->left += a->left;
    t->done += a->done;
    t->retried += a->retried;
    t->rejected += a->rejected;
    t->invalid += a->invalid;
    t->connections += a->connections;
    if (a->max_active > t->max_active)
        t->max_active = a->max_active;
}

mc_err mc_ct_drain(mc_ct *ct, mc_store *s, const atomic_int *stop, mc_ct_stats *st,
                   mc_errdetail *err)
{
    if (!ct || !s)
        return mc_err_set(err, MC_ERR_INVALID, "ct", NULL, "ct drain: NULL argument");
    for (;;) {
        if (stop && atomic_load(stop))
            return MC_OK;
        mc_ct_stats one;
        ct->stop = stop;
        mc_err e = mc_ct_run_once(ct, s, mc_ct_now_ms(), &one, err);
        ct->stop = NULL;
        if (e)
            return e;
        if (st)
            stats_add(st, &one);
        if (one.claimed)
            continue;
        if (!stop)
            return MC_OK;
        for (int waited = 0; waited < ct->cfg.poll_ms && !atomic_load(stop); waited += 50) {
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
}

#endif /* MAILCA_HAVE_LIBCURL */
