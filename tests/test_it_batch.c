/*
 * Acceptance test of issue 2, through the real command line: `mailca init` makes a CA (P-256
 * issuing key in SoftHSM2), `mailca gen-orders` (or, for slow RSA key sizes, orders built here
 * with a few csrgen keys) writes orders, `mailca batch` issues them: 1000 certificates for every
 * subscriber key type mailca supports (RSA 2048/3072/4096, P-256, P-384, P-521, Ed25519, Ed448).
 * Every result is checked with code independent of the engine: OpenSSL chain verification for
 * S/MIME signing (and encryption where the key usage allows it), keyUsage bits per SBR 7.1.2.3(e),
 * the certified key and mailbox against the order's CSR and mailbox, the serial (16 octets,
 * positive, unique) and the DER stored in SQLite. Two more CAs (RSA-2048 and P-384 issuing keys)
 * issue smaller runs, and `mailca lint` judges a few issued certificates.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "support/csrgen.h"
#include "support/itutil.h"

/* Orders per run. The acceptance numbers (1000 per subscriber key type) are what the normal build
 * runs; MAILCA_TEST_SCALE (a divisor, set by scripts/test.sh for the sanitizer build, where every
 * malloc is fully unwound and runs are ~20x slower) shrinks them: memory errors do not need a
 * thousand repetitions to show. */
#define BIG mc_it_scaled(1000, 20) /* orders per subscriber key type */
#define USAGE_N mc_it_scaled(100, 20)
#define OTHER_CA_N mc_it_scaled(200, 20)
#define SERIAL_LEN 16 /* mailca draws 16 octets (include/mailca/tbs.h MC_SERIAL_LEN) */

typedef struct ca {
    char dir[640];
    X509 *root, *ica;
    int ica_sig_nid; /* the signature algorithm SBR 7.1.3.2 asks for with this issuing key */
    long long certs; /* certificate rows expected in its store */
} ca;

static struct {
    char dir[512];
    ca main, rsa_ca, p384_ca;
    uint8_t (*serials)[SERIAL_LEN]; /* every serial issued by the main CA in this test */
    size_t n_serials, cap_serials;
    time_t last_gen; /* gen-orders ids carry the second they were made in */
    int pem_count;   /* certificates written to lint.pem */
} g;

/* What one run must produce. */
typedef struct expect {
    int evp_type; /* EVP_PKEY_RSA, EVP_PKEY_EC, EVP_PKEY_ED25519 or EVP_PKEY_ED448 */
    int bits;     /* RSA modulus bits or curve bits (OpenSSL counts 256 for Ed25519, 456 for
                     Ed448) */
    const char *usage;
} expect;

static void run_ok(mc_it_run *r)
{
    if (r->status != 0)
        fail_msg("mailca exited with %d%s\nstderr: %s\nstdout: %s", r->status,
                 r->timed_out ? " (timed out)" : "", r->err, r->out);
}

static int ca_init(ca *c, const char *name, const char *key, int sig_nid)
{
    mc_it_run r;
    char p[1024];
    snprintf(c->dir, sizeof c->dir, "%s/%s", g.dir, name);
    if (key)
        mc_it_mailca(&r, "init", "--dir", c->dir, "--key", key, NULL);
    else
        mc_it_mailca(&r, "init", "--dir", c->dir, NULL);
    if (r.status != 0) {
        fprintf(stderr, "mailca init --key %s: exit %d: %s\n", key ? key : "(default)", r.status,
                r.err);
        mc_it_run_free(&r);
        return -1;
    }
    mc_it_run_free(&r);
    snprintf(p, sizeof p, "%s/root.pem", c->dir);
    c->root = mc_it_pem_first(p);
    snprintf(p, sizeof p, "%s/issuing-ca.pem", c->dir);
    c->ica = mc_it_pem_first(p);
    c->ica_sig_nid = sig_nid;
    return c->root && c->ica ? 0 : -1;
}

static int group_setup(void **state)
{
    (void)state;
    if (!mc_it_bin()) {
        fprintf(stderr, "MAILCA_BIN is not set (run through ctest)\n");
        return -1;
    }
    if (mc_it_tmpdir("it-batch-", g.dir, sizeof g.dir) != 0)
        return -1;
    /* The default issuing key of `mailca init` is P-256. */
    return ca_init(&g.main, "ca-p256", NULL, NID_ecdsa_with_SHA256);
}

static int group_teardown(void **state)
{
    (void)state;
    ca *cs[] = {&g.main, &g.rsa_ca, &g.p384_ca};
    for (size_t i = 0; i < 3; i++) {
        X509_free(cs[i]->root);
        X509_free(cs[i]->ica);
    }
    free(g.serials);
    if (g.dir[0] && !getenv("MAILCA_KEEP_TMP"))
        mc_it_rmtree(g.dir);
    return 0;
}

/* `mailca gen-orders`: its ids are demo-<Unix second>-<i>, so two files made in the same second
 * share ids (and the second would be answered as repeats of the first). Wait for a new second. */
static void gen_orders(const char *out, int count, const char *key, const char *usage)
{
    char n[32];
    mc_it_run r;
    while (time(NULL) <= g.last_gen)
        usleep(50000);
    snprintf(n, sizeof n, "%d", count);
    if (usage)
        mc_it_mailca(&r, "gen-orders", "--count", n, "--key", key, "--usage", usage, out, NULL);
    else
        mc_it_mailca(&r, "gen-orders", "--count", n, "--key", key, out, NULL);
    g.last_gen = time(NULL);
    run_ok(&r);
    mc_it_run_free(&r);
}

/* Orders built here with nkeys csrgen keys (RSA key generation is what makes gen-orders slow:
 * it draws 64 keys whatever the count). Same shape as gen-orders' orders. */
static void build_orders(const char *out, int count, mc_keytype kt, unsigned bits, int nkeys,
                         const char *usage, const char *prefix)
{
    uint8_t *csr[8] = {0};
    size_t csr_len[8] = {0};
    assert_true(nkeys > 0 && nkeys <= 8);
    for (int i = 0; i < nkeys; i++) {
        EVP_PKEY *k = mc_csrgen_key(kt, bits);
        assert_non_null(k);
        csr[i] = mc_csrgen_csr(k, NULL, 0, &csr_len[i]);
        EVP_PKEY_free(k);
        assert_non_null(csr[i]);
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    int64_t validated = (int64_t)time(NULL) - 3600;
    for (int i = 0; i < count; i++) {
        char id[160], addr[64], ref[64];
        snprintf(id, sizeof id, "%s-%d", prefix, i);
        snprintf(addr, sizeof addr, "user%d@org%d.example.com", i, i % 20);
        snprintf(ref, sizeof ref, "email-rv-%d", i);
        mc_csrgen_mailbox mb = {addr, "3.2.2.2", validated, ref};
        mc_csrgen_order o = {.id = id,
                             .account = "acct-it",
                             .profile = "mailbox-strict",
                             .usage = usage,
                             .mailboxes = &mb,
                             .n_mailboxes = 1,
                             .csr = csr[i % nkeys],
                             .csr_len = csr_len[i % nkeys]};
        assert_int_equal(mc_csrgen_order_pack(&o, &sb), 0);
    }
    assert_int_equal(mc_it_write_file(out, sb.data, sb.size), 0);
    msgpack_sbuffer_destroy(&sb);
    for (int i = 0; i < nkeys; i++)
        free(csr[i]);
}

/* SBR 7.1.2.3(e), Strict profile: the bits each usage needs and the only ones it may add. */
static void check_key_usage(X509 *x, const expect *ex, const char *id)
{
    uint32_t need, may;
    int rsa = ex->evp_type == EVP_PKEY_RSA;
    if (!(X509_get_extension_flags(x) & EXFLAG_KUSAGE))
        fail_msg("%s: no keyUsage extension (SBR 7.1.2.3(e))", id);
    uint32_t ku = X509_get_key_usage(x);
    if (strcmp(ex->usage, "signing") == 0) {
        need = KU_DIGITAL_SIGNATURE;
        may = KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION;
    } else if (strcmp(ex->usage, "key-management") == 0) {
        need = rsa ? KU_KEY_ENCIPHERMENT : KU_KEY_AGREEMENT;
        may = rsa ? KU_KEY_ENCIPHERMENT : KU_KEY_AGREEMENT | KU_ENCIPHER_ONLY | KU_DECIPHER_ONLY;
    } else {
        need = KU_DIGITAL_SIGNATURE | (rsa ? KU_KEY_ENCIPHERMENT : KU_KEY_AGREEMENT);
        may = need | KU_NON_REPUDIATION | (rsa ? 0 : KU_ENCIPHER_ONLY | KU_DECIPHER_ONLY);
    }
    if ((ku & need) != need || (ku & ~may) != 0 ||
        (ku & (KU_ENCIPHER_ONLY | KU_DECIPHER_ONLY)) == (KU_ENCIPHER_ONLY | KU_DECIPHER_ONLY))
        fail_msg("%s: keyUsage 0x%04x for a %s %s certificate, SBR 7.1.2.3(e) needs 0x%04x and "
                 "allows at most 0x%04x",
                 id, ku, OBJ_nid2sn(ex->evp_type), ex->usage, need, may);
}

static void verify(const ca *c, const mc_result *r, int purpose, int want, const char *what)
{
    const char *why = NULL;
    int v = mc_it_verify(c->root, c->ica, r->cert, r->cert_len, purpose, &why);
    if (v != want)
        fail_msg("%s: OpenSSL %s: got %d, want %d (%s)", r->order_id, what, v, want,
                 why ? why : "");
}

static int serial_cmp(const void *a, const void *b)
{
    return memcmp(a, b, SERIAL_LEN);
}

/* One certificate: chain and purposes, key usage, key and mailbox, serial, stored DER. */
static void check_cert(const ca *c, const mc_result *r, const mc_it_order *o, const expect *ex,
                       sqlite3 *db)
{
    const char *id = r->order_id;
    if (r->status != MC_STATUS_ISSUED)
        fail_msg("%s: status %s: %s: %s: %s [%s]", id, mc_status_name(r->status),
                 mc_err_name(r->error.code), r->error.field, r->error.message, r->error.rule);
    assert_non_null(r->lint_version);
    assert_true(r->lint_version[0] != '\0');
    assert_non_null(r->warnings);

    const unsigned char *p = r->cert;
    X509 *x = d2i_X509(NULL, &p, (long)r->cert_len);
    assert_non_null(x);
    assert_ptr_equal(p, r->cert + r->cert_len);
    /* SBR 7.1.3.2: the signature algorithm that goes with the issuing key. */
    if (X509_get_signature_nid(x) != c->ica_sig_nid)
        fail_msg("%s: signature %s, want %s", id, OBJ_nid2sn(X509_get_signature_nid(x)),
                 OBJ_nid2sn(c->ica_sig_nid));

    /* Chain and purposes. OpenSSL's smimeencrypt demands keyEncipherment (DESIGN.md), so only
     * RSA key-management and dual certificates can pass it; EC key-management certificates are
     * checked as a chain only. Certificates without digitalSignature must fail smimesign. */
    int rsa = ex->evp_type == EVP_PKEY_RSA;
    int signs = strcmp(ex->usage, "key-management") != 0;
    int encrypts = rsa && strcmp(ex->usage, "signing") != 0;
    verify(c, r, X509_PURPOSE_ANY, 1, "chain");
    verify(c, r, X509_PURPOSE_SMIME_SIGN, signs, "smimesign");
    verify(c, r, X509_PURPOSE_SMIME_ENCRYPT, encrypts, "smimeencrypt");
    check_key_usage(x, ex, id);

    /* The certified key is the CSR's key, of the type ordered. */
    const unsigned char *cp = o->csr;
    X509_REQ *req = d2i_X509_REQ(NULL, &cp, (long)o->csr_len);
    assert_non_null(req);
    EVP_PKEY *ck = X509_get0_pubkey(x);
    assert_non_null(ck);
    if (EVP_PKEY_eq(ck, X509_REQ_get0_pubkey(req)) != 1)
        fail_msg("%s: the certified key is not the CSR's key", id);
    assert_int_equal(EVP_PKEY_get_base_id(ck), ex->evp_type);
    assert_int_equal(EVP_PKEY_get_bits(ck), ex->bits);
    X509_REQ_free(req);

    /* The mailbox ordered is the one certified (SBR 7.1.2.3(h): rfc822Name in the SAN). */
    GENERAL_NAMES *san = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    assert_non_null(san);
    int found = 0;
    for (int i = 0; i < sk_GENERAL_NAME_num(san); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(san, i);
        if (gn->type == GEN_EMAIL &&
            (size_t)ASN1_STRING_length(gn->d.rfc822Name) == strlen(o->mailbox) &&
            memcmp(ASN1_STRING_get0_data(gn->d.rfc822Name), o->mailbox, strlen(o->mailbox)) == 0)
            found++;
    }
    GENERAL_NAMES_free(san);
    if (found != 1)
        fail_msg("%s: mailbox %s is in the SAN %d times", id, o->mailbox, found);

    /* Serial: 16 octets, positive (SBR 7.1), the certificate's own, the key of its row. */
    if (r->serial_len != SERIAL_LEN || r->serial[0] == 0 || (r->serial[0] & 0x80))
        fail_msg("%s: serial of %zu octets starting 0x%02x: want %d octets, positive, minimal", id,
                 r->serial_len, r->serial_len ? r->serial[0] : 0, SERIAL_LEN);
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    uint8_t sbuf[32];
    assert_non_null(bn);
    assert_false(BN_is_negative(bn));
    assert_int_equal(BN_num_bytes(bn), SERIAL_LEN);
    BN_bn2bin(bn, sbuf);
    BN_free(bn);
    assert_memory_equal(sbuf, r->serial, SERIAL_LEN);
    uint8_t *der = NULL;
    size_t dl = 0;
    int dbr = mc_it_db_cert(db, r->serial, r->serial_len, &der, &dl);
    if (dbr != 1)
        fail_msg("%s: serial not found in the store (%d)", id, dbr);
    if (dl != r->cert_len || memcmp(der, r->cert, dl) != 0)
        fail_msg("%s: the stored DER differs from the result's", id);
    free(der);
    X509_free(x);
}

/* Runs `mailca batch` for orders_path and checks every result; collect_serials adds the serials
 * to the main CA's list, pem_samples appends that many certificates to lint.pem. */
static void batch_and_check(ca *c, const char *orders_path, const char *tag, size_t n,
                            const expect *ex, int collect_serials, int pem_samples)
{
    char rpath[1024], db_path[1024], pem[1024];
    mc_it_run r;
    snprintf(rpath, sizeof rpath, "%s/results-%s.msgpack", c->dir, tag);
    snprintf(db_path, sizeof db_path, "%s/mailca.db", c->dir);
    snprintf(pem, sizeof pem, "%s/lint.pem", g.dir);
    char cfg[1024];
    snprintf(cfg, sizeof cfg, "%s/mailca.yaml", c->dir);
    mc_it_mailca(&r, "batch", "--config", cfg, orders_path, rpath, NULL);
    run_ok(&r);
    /* The summary line counts what the results file must hold. */
    char want[96];
    snprintf(want, sizeof want, "%zu orders: %zu issued, 0 rejected, 0 failed", n, n);
    if (!strstr(r.err, want))
        fail_msg("summary line lacks \"%s\": %s", want, r.err);
    mc_it_run_free(&r);

    mc_it_orders ords;
    assert_int_equal(mc_it_orders_load(orders_path, &ords), 0);
    assert_int_equal(ords.n, n);
    mc_it_results res;
    assert_int_equal(mc_it_results_load(rpath, &res), 0);
    assert_int_equal(res.n, n);

    sqlite3 *db = mc_it_db_open(db_path);
    assert_non_null(db);
    uint8_t *seen = calloc(n, 1);
    uint8_t(*ser)[SERIAL_LEN] = calloc(n, SERIAL_LEN);
    assert_non_null(seen);
    assert_non_null(ser);
    for (size_t i = 0; i < n; i++) {
        const mc_result *rr = &res.r[i];
        /* Exactly one result per order: seq 0..n-1 once each, carrying that order's id. */
        assert_true(rr->seq < n);
        assert_int_equal(seen[rr->seq], 0);
        seen[rr->seq] = 1;
        const mc_it_order *o = &ords.o[rr->seq];
        assert_true(o->valid);
        assert_string_equal(rr->order_id, o->id);
        assert_string_equal(o->usage, ex->usage);
        check_cert(c, rr, o, ex, db);
        memcpy(ser[i], rr->serial, SERIAL_LEN);
        if ((int)i < pem_samples) {
            assert_int_equal(mc_it_append_pem(pem, rr->cert, rr->cert_len), 0);
            g.pem_count++;
        }
    }
    qsort(ser, n, SERIAL_LEN, serial_cmp);
    for (size_t i = 1; i < n; i++)
        if (memcmp(ser[i - 1], ser[i], SERIAL_LEN) == 0)
            fail_msg("%s: a serial repeats within the run", tag);
    /* Every result is a new row: repeats of earlier ids would not add one. */
    c->certs += (long long)n;
    assert_int_equal(mc_it_db_count(db, "certificates"), c->certs);
    sqlite3_close(db);
    if (collect_serials) {
        if (g.n_serials + n > g.cap_serials) {
            g.cap_serials = (g.n_serials + n) * 2;
            g.serials = realloc(g.serials, g.cap_serials * SERIAL_LEN);
            assert_non_null(g.serials);
        }
        memcpy(g.serials[g.n_serials], ser, n * SERIAL_LEN);
        g.n_serials += n;
    }
    free(ser);
    free(seen);
    mc_it_orders_free(&ords);
    mc_it_results_free(&res);
}

static void gen_and_batch(const char *key, const char *usage, int count, const expect *ex,
                          int pem_samples)
{
    char path[1024], tag[64];
    snprintf(tag, sizeof tag, "%s-%s-%d", key, usage ? usage : "signing", count);
    snprintf(path, sizeof path, "%s/orders-%s.msgpack", g.main.dir, tag);
    gen_orders(path, count, key, usage);
    batch_and_check(&g.main, path, tag, (size_t)count, ex, 1, pem_samples);
}

static void built_and_batch(mc_keytype kt, unsigned bits, int nkeys, const char *usage, int count,
                            const expect *ex, int pem_samples)
{
    char path[1024], tag[64];
    snprintf(tag, sizeof tag, "built-%s%u-%s-%d", mc_keytype_name(kt), bits, usage, count);
    snprintf(path, sizeof path, "%s/orders-%s.msgpack", g.main.dir, tag);
    build_orders(path, count, kt, bits, nkeys, usage, tag);
    batch_and_check(&g.main, path, tag, (size_t)count, ex, 1, pem_samples);
}

static void test_p256(void **state)
{
    (void)state;
    expect ex = {EVP_PKEY_EC, 256, "signing"};
    gen_and_batch("p256", NULL, BIG, &ex, 2);
}

static void test_p384(void **state)
{
    (void)state;
    expect ex = {EVP_PKEY_EC, 384, "signing"};
    gen_and_batch("p384", NULL, BIG, &ex, 1);
}

static void test_rsa2048(void **state)
{
    (void)state;
    /* gen-orders draws 64 RSA-2048 keys: about 10 s here, acceptable for one run. */
    expect ex = {EVP_PKEY_RSA, 2048, "signing"};
    gen_and_batch("rsa2048", NULL, BIG, &ex, 1);
}

static void test_rsa3072(void **state)
{
    (void)state;
    /* gen-orders would draw 64 RSA-3072 keys (about 30 s on this machine): 4 keys do. */
    expect ex = {EVP_PKEY_RSA, 3072, "signing"};
    built_and_batch(MC_KEY_RSA, 3072, 4, "signing", BIG, &ex, 1);
}

static void test_rsa4096(void **state)
{
    (void)state;
    /* 64 RSA-4096 keys take about 90 s here: 3 keys do. */
    expect ex = {EVP_PKEY_RSA, 4096, "signing"};
    built_and_batch(MC_KEY_RSA, 4096, 3, "signing", BIG, &ex, 1);
}

static void test_p521(void **state)
{
    (void)state;
    /* SBR 6.1.5: P-521 subscriber keys; the CSR is signed with ecdsa-with-SHA512. */
    expect ex = {EVP_PKEY_EC, 521, "signing"};
    gen_and_batch("p521", NULL, BIG, &ex, 1);
}

static void test_ed25519(void **state)
{
    (void)state;
    /* SBR 6.1.5, 7.1.3.1.3: curve25519 keys as id-Ed25519; signing only (SBR 7.1.2.3(e)), so the
     * chain must pass smimesign and fail smimeencrypt, keyUsage digitalSignature alone. */
    expect ex = {EVP_PKEY_ED25519, 256, "signing"};
    gen_and_batch("ed25519", NULL, BIG, &ex, 1);
}

static void test_ed448(void **state)
{
    (void)state;
    /* SBR 6.1.5, 7.1.3.1.3: curve448 keys as id-Ed448; signing only (SBR 7.1.2.3(e)), so the
     * chain must pass smimesign and fail smimeencrypt, keyUsage digitalSignature alone. */
    expect ex = {EVP_PKEY_ED448, 456, "signing"};
    gen_and_batch("ed448", NULL, BIG, &ex, 1);
}

static void test_usages_p256(void **state)
{
    (void)state;
    expect dual = {EVP_PKEY_EC, 256, "dual"}, km = {EVP_PKEY_EC, 256, "key-management"};
    gen_and_batch("p256", "dual", USAGE_N, &dual, 1);
    gen_and_batch("p256", "key-management", USAGE_N, &km, 1);
}

static void test_usages_rsa2048(void **state)
{
    (void)state;
    /* Two more gen-orders runs would cost 64 RSA keys each; the usage is what is under test. */
    expect dual = {EVP_PKEY_RSA, 2048, "dual"}, km = {EVP_PKEY_RSA, 2048, "key-management"};
    built_and_batch(MC_KEY_RSA, 2048, 2, "dual", USAGE_N, &dual, 1);
    built_and_batch(MC_KEY_RSA, 2048, 2, "key-management", USAGE_N, &km, 1);
}

static void test_serials_unique(void **state)
{
    (void)state;
    /* Across every run of the main CA: 8 x 1000 + 4 x 100 certificates (scaled). */
    assert_int_equal(g.n_serials, (size_t)(8 * BIG + 4 * USAGE_N));
    qsort(g.serials, g.n_serials, SERIAL_LEN, serial_cmp);
    for (size_t i = 1; i < g.n_serials; i++)
        assert_memory_not_equal(g.serials[i - 1], g.serials[i], SERIAL_LEN);
}

static void other_ca(ca *c, const char *name, const char *key, int sig_nid)
{
    char path[1024];
    assert_int_equal(ca_init(c, name, key, sig_nid), 0);
    snprintf(path, sizeof path, "%s/orders.msgpack", c->dir);
    gen_orders(path, OTHER_CA_N, "p256", NULL);
    expect ex = {EVP_PKEY_EC, 256, "signing"};
    batch_and_check(c, path, "p256", OTHER_CA_N, &ex, 0, 1);
}

static void test_issuer_rsa2048(void **state)
{
    (void)state;
    other_ca(&g.rsa_ca, "ca-rsa2048", "rsa2048", NID_sha256WithRSAEncryption);
}

static void test_issuer_p384(void **state)
{
    (void)state;
    /* SBR 7.1.3.2: a P-384 issuing key signs with ecdsa-with-SHA384. */
    other_ca(&g.p384_ca, "ca-p384", "p384", NID_ecdsa_with_SHA384);
}

static void test_lint(void **state)
{
    (void)state;
    char pem[1024];
    mc_it_run r;
    snprintf(pem, sizeof pem, "%s/lint.pem", g.dir);
    /* Samples of every run above: p256 x2, p384, p521, rsa2048/3072/4096, ed25519, ed448, four
     * usage runs, two CAs. */
    assert_int_equal(g.pem_count, 15);
    mc_it_mailca(&r, "lint", pem, NULL);
    run_ok(&r);
    int reported = 0;
    for (const char *p = r.out; (p = strstr(p, ": 0 error(s)")) != NULL; p++)
        reported++;
    if (reported != g.pem_count)
        fail_msg("mailca lint reported %d clean certificates of %d:\n%s", reported, g.pem_count,
                 r.out);
    mc_it_run_free(&r);

    /* The same command does fail: something that is not a certificate must not pass. */
    char junk[1024];
    snprintf(junk, sizeof junk, "%s/junk.der", g.dir);
    assert_int_equal(mc_it_write_file(junk, "\x30\x03\x02\x01\x01", 5), 0);
    mc_it_mailca(&r, "lint", junk, NULL);
    assert_int_not_equal(r.status, 0);
    mc_it_run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_p256),           cmocka_unit_test(test_p384),
        cmocka_unit_test(test_p521),           cmocka_unit_test(test_rsa2048),
        cmocka_unit_test(test_rsa3072),        cmocka_unit_test(test_rsa4096),
        cmocka_unit_test(test_ed25519),        cmocka_unit_test(test_ed448),
        cmocka_unit_test(test_usages_p256),    cmocka_unit_test(test_usages_rsa2048),
        cmocka_unit_test(test_serials_unique), cmocka_unit_test(test_issuer_rsa2048),
        cmocka_unit_test(test_issuer_p384),    cmocka_unit_test(test_lint),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
