/*
 * The known-weak RSA key blocklist (SBR 6.1.1.3 item 5). Contract and format:
 * include/mailca/weakkeys.h. The fingerprints are kept sorted in one array and searched by
 * bisection: about 600,000 entries for every openssl-blacklist size and architecture, 6 MB,
 * 20 comparisons a look-up, and no allocation after loading.
 */
#include "mailca/weakkeys.h"

#include "mailca/crypto.h"
#include "mailca/text.h"

#include <dirent.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct mc_weakkeys {
    uint8_t (*fp)[MC_WEAKKEYS_FP_LEN];
    size_t n, cap;
    EVP_MD *sha1;
};

static int fp_cmp(const void *a, const void *b)
{
    return memcmp(a, b, MC_WEAKKEYS_FP_LEN);
}

/* One line: 1 a fingerprint (into fp), 0 nothing (blank, comment), -1 malformed. */
static int parse_line(char *s, uint8_t fp[MC_WEAKKEYS_FP_LEN])
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t len = strlen(s);
    while (len &&
           (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' ' || s[len - 1] == '\t'))
        s[--len] = '\0';
    if (len == 0 || s[0] == '#')
        return 0;
    if (len != 2 * MC_WEAKKEYS_FP_LEN && len != 40)
        return -1;
    for (size_t i = 0; i < len; i++)
        if (mc_hex_digit((unsigned char)s[i]) < 0)
            return -1;
    const char *low = s + len - 2 * MC_WEAKKEYS_FP_LEN; /* a whole SHA-1: its last 20 digits */
    for (size_t i = 0; i < MC_WEAKKEYS_FP_LEN; i++)
        fp[i] = (uint8_t)(mc_hex_digit((unsigned char)low[2 * i]) << 4 |
                          mc_hex_digit((unsigned char)low[2 * i + 1]));
    return 1;
}

static mc_err load_file(mc_weakkeys *w, const char *path, const char *field, mc_errdetail *err)
{
    mc_err e = MC_OK;
    char line[256];
    unsigned long ln = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return mc_err_set(err, MC_ERR_CONFIG, field, MC_WEAKKEYS_RULE, "weak-key list '%s': %s",
                          path, strerror(errno));
    while (fgets(line, sizeof line, f)) {
        ln++;
        if (!strchr(line, '\n') && !feof(f)) {
            e = mc_err_set(err, MC_ERR_CONFIG, field, MC_WEAKKEYS_RULE,
                           "weak-key list %s:%lu: line longer than %zu bytes", path, ln,
                           sizeof line - 2);
            goto done;
        }
        uint8_t fp[MC_WEAKKEYS_FP_LEN];
        int r = parse_line(line, fp);
        if (r < 0) {
            e = mc_err_set(err, MC_ERR_CONFIG, field, MC_WEAKKEYS_RULE,
                           "weak-key list %s:%lu: not a fingerprint (20 or 40 hex digits: the "
                           "SHA-1 of `openssl rsa -noout -modulus`, openssl-blacklist format)",
                           path, ln);
            goto done;
        }
        if (r == 0)
            continue;
        if (w->n == w->cap) {
            size_t cap = w->cap ? 2 * w->cap : 4096;
            void *p = realloc(w->fp, cap * sizeof *w->fp);
            if (!p) {
                e = mc_err_set(err, MC_ERR_NOMEM, field, NULL, "weak-key list '%s'", path);
                goto done;
            }
            w->fp = p;
            w->cap = cap;
        }
        memcpy(w->fp[w->n++], fp, MC_WEAKKEYS_FP_LEN);
    }
    if (ferror(f))
        e = mc_err_set(err, MC_ERR_CONFIG, field, MC_WEAKKEYS_RULE,
                       "weak-key list '%s': read error", path);
done:
    fclose(f);
    return e;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file of dir, in name order (the same list on every node and run). */
static mc_err load_dir(mc_weakkeys *w, const char *dir, const char *field, mc_errdetail *err)
{
    mc_err e = MC_OK;
    char **names = NULL, path[4096];
    size_t n = 0, cap = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    if (!d)
        return mc_err_set(err, MC_ERR_CONFIG, field, MC_WEAKKEYS_RULE, "weak-key list '%s': %s",
                          dir, strerror(errno));
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            size_t nc = cap ? 2 * cap : 16;
            char **p = realloc(names, nc * sizeof *names);
            if (!p) {
                e = mc_err_set(err, MC_ERR_NOMEM, field, NULL, "weak-key list '%s'", dir);
                goto done;
            }
            names = p;
            cap = nc;
        }
        if (!(names[n] = strdup(de->d_name))) {
            e = mc_err_set(err, MC_ERR_NOMEM, field, NULL, "weak-key list '%s'", dir);
            goto done;
        }
        n++;
    }
    if (n)
        qsort(names, n, sizeof *names, name_cmp);
    for (size_t i = 0; i < n && e == MC_OK; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        e = load_file(w, path, field, err);
    }
done:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return e;
}

mc_err mc_weakkeys_load(const char *path, const char *field, mc_weakkeys **out, mc_errdetail *err)
{
    mc_err e = MC_OK;
    struct stat st;
    *out = NULL;
    mc_weakkeys *w = calloc(1, sizeof *w);
    if (!w)
        return mc_err_set(err, MC_ERR_NOMEM, field, NULL, "weak-key list");
    if (stat(path, &st) != 0) {
        e = mc_err_set(err, MC_ERR_CONFIG, field, MC_WEAKKEYS_RULE, "weak-key list '%s': %s", path,
                       strerror(errno));
        goto done;
    }
    e = S_ISDIR(st.st_mode) ? load_dir(w, path, field, err) : load_file(w, path, field, err);
    if (e)
        goto done;
    if (w->n == 0) {
        e = mc_err_set(err, MC_ERR_CONFIG, field, MC_WEAKKEYS_RULE,
                       "weak-key list '%s' holds no fingerprint", path);
        goto done;
    }
    qsort(w->fp, w->n, sizeof *w->fp, fp_cmp);
    size_t k = 1; /* the lists of several architectures overlap: keep each fingerprint once */
    for (size_t i = 1; i < w->n; i++)
        if (memcmp(w->fp[i], w->fp[k - 1], MC_WEAKKEYS_FP_LEN) != 0)
            memmove(w->fp[k++], w->fp[i], MC_WEAKKEYS_FP_LEN);
    w->n = k;
    /* fetched once: the check runs for every RSA order (no implicit fetch per call) */
    if (!(w->sha1 = EVP_MD_fetch(NULL, "SHA1", NULL)))
        e = mc_crypto_err(err, field, "EVP_MD_fetch SHA1");
done:
    if (e) {
        mc_weakkeys_free(w);
        return e;
    }
    *out = w;
    return MC_OK;
}

void mc_weakkeys_free(mc_weakkeys *w)
{
    if (!w)
        return;
    EVP_MD_free(w->sha1);
    free(w->fp);
    free(w);
}

size_t mc_weakkeys_count(const mc_weakkeys *w)
{
    return w ? w->n : 0;
}

int mc_weakkeys_fingerprint(const mc_weakkeys *w, EVP_MD_CTX *md, const uint8_t *n, size_t n_len,
                            uint8_t fp[MC_WEAKKEYS_FP_LEN])
{
    static const char hex[] = "0123456789ABCDEF";
    char line[sizeof "Modulus=\n" + 2 * MC_WEAKKEYS_MODULUS_MAX];
    uint8_t h[EVP_MAX_MD_SIZE];
    unsigned hl = 0;
    size_t k = 0;
    while (n_len && n[0] == 0) {
        n++;
        n_len--;
    }
    if (n_len > MC_WEAKKEYS_MODULUS_MAX)
        return -1;
    memcpy(line, "Modulus=", 8);
    k = 8;
    for (size_t i = 0; i < n_len; i++) {
        /* BN_print, which `openssl rsa -modulus` uses, drops a leading zero digit too */
        if (i > 0 || n[i] >> 4)
            line[k++] = hex[n[i] >> 4];
        line[k++] = hex[n[i] & 15];
    }
    if (n_len == 0)
        line[k++] = '0';
    line[k++] = '\n';
    if (EVP_DigestInit_ex(md, w->sha1, NULL) != 1 || EVP_DigestUpdate(md, line, k) != 1 ||
        EVP_DigestFinal_ex(md, h, &hl) != 1 || hl != 20)
        return -1;
    memcpy(fp, h + 20 - MC_WEAKKEYS_FP_LEN, MC_WEAKKEYS_FP_LEN);
    return 0;
}

mc_err mc_weakkeys_check_rsa(const mc_weakkeys *w, EVP_MD_CTX *md, const uint8_t *n, size_t n_len,
                             const char *field, mc_errdetail *err)
{
    uint8_t fp[MC_WEAKKEYS_FP_LEN];
    if (!w)
        return MC_OK;
    if (mc_weakkeys_fingerprint(w, md, n, n_len, fp) != 0)
        return mc_crypto_err(err, field, "weak-key fingerprint (SHA-1)");
    if (!bsearch(fp, w->fp, w->n, sizeof *w->fp, fp_cmp))
        return MC_OK;
    /* SBR 6.1.1.3 item 5: a key whose private key can be computed from the public key (such as
     * a Debian weak key) is refused. */
    return mc_err_set(err, MC_ERR_INVALID, field, MC_WEAKKEYS_RULE,
                      "the RSA key is a known weak key (its modulus is in the CA's list of keys "
                      "whose private key can be computed, such as Debian's CVE-2008-0166 keys): "
                      "use a newly generated key");
}
