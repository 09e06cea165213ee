/*
 * Known-weak RSA key lists (SBR 6.1.1.3 item 5, include/mailca/weakkeys.h): the fingerprint is
 * the one `openssl rsa -noout -modulus | sha1sum` gives (computed here independently, through
 * BN_print as that command does), lists load from files and folders, bad lines are refused with
 * file:line, and an order whose RSA key is listed is refused with the rule while an unlisted one
 * passes.
 */
#include "mailca/crypto.h"
#include "mailca/order.h"
#include "mailca/weakkeys.h"
#include "support/csrgen.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

typedef struct fx {
    char dir[512];
    EVP_PKEY *listed, *other; /* RSA-2048 keys: one goes on the list */
    char listed_fp[41];       /* the whole SHA-1, lower-case hex, as sha1sum prints it */
    EVP_MD_CTX *md;
} fx;

/* sha1sum of "Modulus=" BN_print(n) "\n": what openssl-blacklist's instructions compute. */
static void reference_fp(const BIGNUM *n, char out[41])
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_non_null(b);
    assert_true(BIO_puts(b, "Modulus=") > 0);
    assert_true(BN_print(b, n) == 1);
    assert_true(BIO_puts(b, "\n") > 0);
    char *p = NULL;
    long len = BIO_get_mem_data(b, &p);
    uint8_t h[20];
    unsigned hl = 0;
    assert_true(EVP_Digest(p, (size_t)len, h, &hl, EVP_sha1(), NULL) == 1);
    for (int i = 0; i < 20; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
    BIO_free(b);
}

static BIGNUM *modulus(EVP_PKEY *k)
{
    BIGNUM *n = NULL;
    assert_true(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n) == 1);
    return n;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    const char *tmp = getenv("MAILCA_TEST_TMP");
    snprintf(f->dir, sizeof f->dir, "%s/mc-weakkeys-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(f->dir))
        return -1;
    f->listed = mc_csrgen_key(MC_KEY_RSA, 2048);
    f->other = mc_csrgen_key(MC_KEY_RSA, 2048);
    f->md = EVP_MD_CTX_new();
    if (!f->listed || !f->other || !f->md)
        return -1;
    BIGNUM *n = modulus(f->listed);
    reference_fp(n, f->listed_fp);
    BN_free(n);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        return -1;
    EVP_PKEY_free(f->listed);
    EVP_PKEY_free(f->other);
    EVP_MD_CTX_free(f->md);
    free(f);
    return 0;
}

/* The list of f's tests: the listed key (low 80 bits, the openssl-blacklist form), comments,
 * blank lines, and two unrelated fingerprints (one written as a whole SHA-1). */
static void write_list(const fx *f, const char *path)
{
    char text[512];
    snprintf(text, sizeof text,
             "# known-compromised 2048-bit keys\n"
             "\n"
             "00005890bc78bcbee3ca\n"
             "  %s  \n"
             "da39a3ee5e6b4b0d3255bfef95601890afd80709\n",
             f->listed_fp + 20);
    write_file(path, text);
}

static void n_bytes(EVP_PKEY *k, uint8_t *buf, size_t cap, size_t *len)
{
    BIGNUM *n = modulus(k);
    int l = BN_bn2bin(n, buf);
    assert_true(l > 0 && (size_t)l <= cap);
    *len = (size_t)l;
    BN_free(n);
}

/* Our fingerprint is sha1sum's, also for a modulus with leading zero bytes in its DER INTEGER
 * and one whose first hex digit is 0 (BN_print drops it). */
static void test_fingerprint_matches_openssl(void **state)
{
    fx *f = *state;
    char path[600];
    snprintf(path, sizeof path, "%s/list", f->dir);
    write_list(f, path);
    mc_weakkeys *w = NULL;
    mc_errdetail err;
    assert_int_equal(mc_weakkeys_load(path, "keys.weak_rsa_blocklist", &w, &err), MC_OK);
    uint8_t n[600], fp[MC_WEAKKEYS_FP_LEN], ref[20];
    size_t len;
    n[0] = 0; /* a DER INTEGER's sign byte */
    n_bytes(f->listed, n + 1, sizeof n - 1, &len);
    assert_int_equal(mc_weakkeys_fingerprint(w, f->md, n, len + 1, fp), 0);
    for (int i = 0; i < 20; i++)
        assert_int_equal(sscanf(f->listed_fp + 2 * i, "%2hhx", &ref[i]), 1);
    assert_memory_equal(fp, ref + 10, MC_WEAKKEYS_FP_LEN);

    static const uint8_t small[] = {0x0a, 0xbc, 0x01};
    BIGNUM *bn = BN_bin2bn(small, sizeof small, NULL);
    char sfp[41];
    reference_fp(bn, sfp);
    BN_free(bn);
    assert_int_equal(mc_weakkeys_fingerprint(w, f->md, small, sizeof small, fp), 0);
    for (int i = 0; i < 20; i++)
        assert_int_equal(sscanf(sfp + 2 * i, "%2hhx", &ref[i]), 1);
    assert_memory_equal(fp, ref + 10, MC_WEAKKEYS_FP_LEN);
    mc_weakkeys_free(w);
}

/* SBR 6.1.1.3 item 5: the listed key is refused with the rule, the other passes. */
static void test_check_listed_and_not(void **state)
{
    fx *f = *state;
    char path[600];
    snprintf(path, sizeof path, "%s/list", f->dir);
    write_list(f, path);
    mc_weakkeys *w = NULL;
    mc_errdetail err;
    assert_int_equal(mc_weakkeys_load(path, "keys.weak_rsa_blocklist", &w, &err), MC_OK);
    assert_int_equal(mc_weakkeys_count(w), 3);
    uint8_t n[600];
    size_t len;
    n_bytes(f->other, n, sizeof n, &len);
    assert_int_equal(mc_weakkeys_check_rsa(w, f->md, n, len, "csr", &err), MC_OK);
    n_bytes(f->listed, n, sizeof n, &len);
    assert_int_equal(mc_weakkeys_check_rsa(w, f->md, n, len, "csr", &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "csr");
    assert_string_equal(err.rule, "SBR 6.1.1.3");
    assert_non_null(strstr(err.message, "weak key"));
    /* no list configured: nothing to refuse */
    assert_int_equal(mc_weakkeys_check_rsa(NULL, f->md, n, len, "csr", &err), MC_OK);
    mc_weakkeys_free(w);
}

/* A folder: every file read, the overlap counted once; a bad line names file:line; an empty
 * list and a missing path are refused. */
static void test_load_folder_and_errors(void **state)
{
    fx *f = *state;
    char sub[600], path[700];
    mc_weakkeys *w = NULL;
    mc_errdetail err;
    snprintf(sub, sizeof sub, "%s/lists", f->dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(path, sizeof path, "%s/blacklist.RSA-2048", sub);
    write_list(f, path);
    snprintf(path, sizeof path, "%s/blacklist.RSA-4096", sub);
    write_file(path, "00005890bc78bcbee3ca\n0000d80c186767f2473a\n");
    assert_int_equal(mc_weakkeys_load(sub, "keys.weak_rsa_blocklist", &w, &err), MC_OK);
    assert_int_equal(mc_weakkeys_count(w), 4);
    uint8_t n[600];
    size_t len;
    n_bytes(f->listed, n, sizeof n, &len);
    assert_int_equal(mc_weakkeys_check_rsa(w, f->md, n, len, "csr", &err), MC_ERR_INVALID);
    mc_weakkeys_free(w);

    snprintf(path, sizeof path, "%s/bad", f->dir);
    write_file(path, "# ok\n00005890bc78bcbee3ca\n00005890bc78bcbee3c\n");
    assert_int_equal(mc_weakkeys_load(path, "keys.weak_rsa_blocklist", &w, &err), MC_ERR_CONFIG);
    assert_null(w);
    assert_string_equal(err.field, "keys.weak_rsa_blocklist");
    assert_non_null(strstr(err.message, "bad:3:"));
    write_file(path, "00005890bc78bcbee3cg\n");
    assert_int_equal(mc_weakkeys_load(path, "keys.weak_rsa_blocklist", &w, &err), MC_ERR_CONFIG);
    assert_non_null(strstr(err.message, "bad:1:"));
    write_file(path, "# nothing but comments\n\n");
    assert_int_equal(mc_weakkeys_load(path, "keys.weak_rsa_blocklist", &w, &err), MC_ERR_CONFIG);
    assert_non_null(strstr(err.message, "no fingerprint"));
    snprintf(path, sizeof path, "%s/missing", f->dir);
    assert_int_equal(mc_weakkeys_load(path, "keys.weak_rsa_blocklist", &w, &err), MC_ERR_CONFIG);
}

/* Decodes one packed csrgen order for key and runs the order's key checks with list w. */
static mc_err check_order(EVP_PKEY *key, const mc_weakkeys *w, mc_errdetail *err)
{
    size_t csr_len = 0, off = 0;
    uint8_t *csr = mc_csrgen_csr(key, NULL, 0, &csr_len);
    assert_non_null(csr);
    mc_csrgen_mailbox mb = {"alice@example.com", "3.2.2.2", 1700000000, "ticket-1"};
    mc_csrgen_order o = {.id = "o-1",
                         .account = "acct",
                         .profile = "mailbox-strict",
                         .usage = "signing",
                         .mailboxes = &mb,
                         .n_mailboxes = 1,
                         .csr = csr,
                         .csr_len = csr_len};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(mc_csrgen_order_pack(&o, &sb), 0);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    assert_int_equal(msgpack_unpack_next(&up, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
    mc_order ord;
    assert_int_equal(mc_order_decode(&up.data, &ord, err), MC_OK);
    mc_digests d;
    assert_int_equal(mc_digests_fetch(&d, err), MC_OK);
    mc_csr_ctx cc;
    assert_int_equal(mc_csr_ctx_init(&cc, err), MC_OK);
    cc.weak = w;
    mc_err rc = mc_order_check_csr_ctx(&ord, &d, &cc, err);
    mc_csr_ctx_free(&cc);
    mc_digests_free(&d);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
    free(csr);
    return rc;
}

/* Through the order check the workers run: the listed key's CSR is refused (field csr, rule
 * SBR 6.1.1.3), the unlisted key's accepted, and without a list both pass. */
static void test_order_check(void **state)
{
    fx *f = *state;
    char path[600];
    snprintf(path, sizeof path, "%s/list", f->dir);
    write_list(f, path);
    mc_weakkeys *w = NULL;
    mc_errdetail err;
    assert_int_equal(mc_weakkeys_load(path, "keys.weak_rsa_blocklist", &w, &err), MC_OK);
    assert_int_equal(check_order(f->listed, w, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "csr");
    assert_string_equal(err.rule, "SBR 6.1.1.3");
    assert_int_equal(check_order(f->other, w, &err), MC_OK);
    assert_int_equal(check_order(f->listed, NULL, &err), MC_OK);
    mc_weakkeys_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fingerprint_matches_openssl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_listed_and_not, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_folder_and_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order_check, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
