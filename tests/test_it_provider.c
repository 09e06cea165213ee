/*
 * Integration tests of the "mailca" OpenSSL provider (engine/provider.c) against a private
 * SoftHSM2:
 * - in-process (mc_provider_load_builtin): keys from the pkcs11: store loader as EVP_PKEYs,
 *   EVP_DigestSign with ECDSA P-256/P-384, RSA PKCS#1 v1.5 and PSS, Ed25519, each signature
 *   verified with the public key through OpenSSL's default provider; SBR 7.1.3.2 refusals; a
 *   wrong PIN;
 * - the loadable module ($MAILCA_PROVIDER, set by the build; the test fails without it) with
 *   the openssl command: `openssl req -x509` makes the CA certificate with the HSM key,
 *   `openssl req -new` a subscriber CSR, `openssl x509 -req -CAkey pkcs11:...` signs it, and
 *   `openssl verify` accepts the result (and rejects it against a look-alike CA).
 * The PIN goes through MAILCA_PIN in the environment, never argv.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/store.h>
#include <openssl/x509.h>

#include "mailca/hsm.h"
#include "mailca/provider.h"
#include "support/softhsm.h"

#define TOKEN "prov-it"
#define SO_PIN "so-1122-pin"
#define USER_PIN "user-3344-pin"
#define KEY_URI(obj) "pkcs11:token=" TOKEN ";object=" obj

static char g_dir[1024];
static const char *g_provider;
static OSSL_LIB_CTX *g_libctx;
static OSSL_PROVIDER *g_mailca, *g_default;

__attribute__((used)) const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libsofthsm2.so\n";
}
__attribute__((used)) const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "fast_unwind_on_malloc=0";
}

static int group_setup(void **state)
{
    (void)state;
    mc_errdetail e;
    g_provider = getenv("MAILCA_PROVIDER");
    if (!g_provider || !g_provider[0]) {
        fprintf(stderr, "MAILCA_PROVIDER (path of the provider module) is not set\n");
        return -1;
    }
    if (!dlopen(mc_softhsm_module(), RTLD_NOW | RTLD_LOCAL) ||
        mc_softhsm_tmpdir("it_provider", g_dir, sizeof g_dir) != 0)
        return -1;
    static const struct {
        mc_keytype kt;
        unsigned bits;
        const char *label;
        uint8_t id;
    } keys[] = {{MC_KEY_P256, 0, "p256", 1},
                {MC_KEY_P384, 0, "p384", 2},
                {MC_KEY_RSA, 2048, "rsa", 3},
                {MC_KEY_ED25519, 0, "ed25519", 4}};
    if (mc_softhsm_setup(g_dir, TOKEN, SO_PIN, USER_PIN, &e))
        goto bad;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (mc_hsm_keygen(mc_softhsm_module(), TOKEN, USER_PIN, keys[i].kt, keys[i].bits,
                          keys[i].label, &keys[i].id, 1, &e))
            goto bad;
    setenv("MAILCA_PIN", USER_PIN, 1);
    setenv("MAILCA_PKCS11_MODULE", mc_softhsm_module(), 1);
    /* in-process: our own library context with the default provider and this one */
    g_libctx = OSSL_LIB_CTX_new();
    if (!g_libctx || !(g_default = OSSL_PROVIDER_load(g_libctx, "default")) ||
        mc_provider_load_builtin(g_libctx, &g_mailca, &e))
        goto bad;
    return 0;
bad:;
    char buf[512];
    fprintf(stderr, "setup: %s\n", mc_err_format(&e, buf, sizeof buf));
    return -1;
}

static int group_teardown(void **state)
{
    (void)state;
    OSSL_PROVIDER_unload(g_mailca);
    OSSL_PROVIDER_unload(g_default);
    OSSL_LIB_CTX_free(g_libctx);
    return mc_softhsm_rmtree(g_dir);
}

/* ---- in-process ---- */

/* The key behind uri through the store loader, or NULL (OpenSSL's error queue says why). */
static EVP_PKEY *store_key(const char *uri)
{
    OSSL_STORE_CTX *st = OSSL_STORE_open_ex(uri, g_libctx, NULL, NULL, NULL, NULL, NULL, NULL);
    EVP_PKEY *pk = NULL;
    while (st && !pk && !OSSL_STORE_eof(st)) {
        OSSL_STORE_INFO *info = OSSL_STORE_load(st);
        if (!info)
            break;
        if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
            pk = OSSL_STORE_INFO_get1_PKEY(info);
        OSSL_STORE_INFO_free(info);
    }
    OSSL_STORE_close(st);
    return pk;
}

/* The public half as a default-provider key, through its DER encoding. */
static EVP_PKEY *public_copy(EVP_PKEY *pk)
{
    uint8_t *der = NULL;
    int n = i2d_PUBKEY(pk, &der);
    assert_true(n > 0);
    const uint8_t *p = der;
    EVP_PKEY *pub = d2i_PUBKEY_ex(NULL, &p, n, g_libctx, "provider=default");
    OPENSSL_free(der);
    assert_non_null(pub);
    return pub;
}

/* pss: 0 no, 1 salt = digest length (SBR), 2 salt of 20 bytes (refused). */
static int sign_with(EVP_PKEY *pk, const char *md, int pss, const uint8_t *msg, size_t n,
                     uint8_t *sig, size_t *siglen)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    int ok = c && EVP_DigestSignInit_ex(c, &pc, md, g_libctx, NULL, pk, NULL) == 1;
    if (ok && pss)
        ok = EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, pss == 1 ? RSA_PSS_SALTLEN_DIGEST : 20) == 1;
    ok = ok && EVP_DigestSign(c, sig, siglen, msg, n) == 1;
    EVP_MD_CTX_free(c);
    return ok;
}

static int verify_with(EVP_PKEY *pub, const char *md, int pss, const uint8_t *msg, size_t n,
                       const uint8_t *sig, size_t siglen)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    int ok = c && EVP_DigestVerifyInit_ex(c, &pc, md, g_libctx, "provider=default", pub, NULL) == 1;
    if (ok && pss)
        ok = EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST) == 1;
    ok = ok && EVP_DigestVerify(c, sig, siglen, msg, n) == 1;
    EVP_MD_CTX_free(c);
    return ok;
}

static void sign_verify(const char *uri, const char *keytype, const char *md, int pss)
{
    EVP_PKEY *pk = store_key(uri);
    if (!pk) {
        ERR_print_errors_fp(stderr);
        fail_msg("store: no key for %s", uri);
    }
    assert_true(EVP_PKEY_is_a(pk, keytype));
    assert_string_equal(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(pk)), MC_PROVIDER_NAME);
    EVP_PKEY *pub = public_copy(pk);
    /* the HSM key and its public half compare equal across the two providers */
    assert_int_equal(EVP_PKEY_eq(pk, pub), 1);
    for (int i = 0; i < 3; i++) {
        uint8_t msg[200], sig[600];
        size_t siglen = sizeof sig;
        RAND_bytes(msg, sizeof msg);
        if (!sign_with(pk, md, pss, msg, sizeof msg, sig, &siglen)) {
            ERR_print_errors_fp(stderr);
            fail_msg("%s: signing failed", uri);
        }
        assert_int_equal(verify_with(pub, md, pss, msg, sizeof msg, sig, siglen), 1);
        msg[7] ^= 1; /* the verification is not vacuous */
        assert_int_not_equal(verify_with(pub, md, pss, msg, sizeof msg, sig, siglen), 1);
    }
    ERR_clear_error();
    EVP_PKEY_free(pub);
    EVP_PKEY_free(pk);
}

static void test_ecdsa_p256(void **state)
{
    (void)state;
    sign_verify(KEY_URI("p256"), "EC", "SHA256", 0);
}

static void test_ecdsa_p384(void **state)
{
    (void)state;
    sign_verify(KEY_URI("p384") ";id=%02", "EC", "SHA384", 0);
}

static void test_rsa_pkcs1_and_pss(void **state)
{
    (void)state;
    sign_verify(KEY_URI("rsa"), "RSA", "SHA256", 0);
    sign_verify(KEY_URI("rsa"), "RSA", "SHA384", 1);
}

static void test_ed25519(void **state)
{
    (void)state;
    sign_verify(KEY_URI("ed25519"), "ED25519", NULL, 0);
}

static void test_sbr_refusals(void **state)
{
    (void)state;
    uint8_t msg[32] = {1}, sig[600];
    size_t siglen = sizeof sig;
    /* SBR 7.1.3.2: a P-256 key signs with SHA-256 only */
    EVP_PKEY *pk = store_key(KEY_URI("p256"));
    assert_non_null(pk);
    assert_int_equal(sign_with(pk, "SHA256", 0, msg, sizeof msg, sig, &siglen), 1);
    siglen = sizeof sig;
    assert_int_equal(sign_with(pk, "SHA384", 0, msg, sizeof msg, sig, &siglen), 0);
    siglen = sizeof sig;
    assert_int_equal(sign_with(pk, "SHA1", 0, msg, sizeof msg, sig, &siglen), 0);
    EVP_PKEY_free(pk);
    /* SBR 7.1.3.2.1: PSS salt = digest length; 20 bytes with SHA-256 is refused */
    pk = store_key(KEY_URI("rsa"));
    assert_non_null(pk);
    siglen = sizeof sig;
    assert_int_equal(sign_with(pk, "SHA256", 1, msg, sizeof msg, sig, &siglen), 1);
    siglen = sizeof sig;
    assert_int_equal(sign_with(pk, "SHA256", 2, msg, sizeof msg, sig, &siglen), 0);
    EVP_PKEY_free(pk);
    ERR_clear_error();
}

static void test_wrong_pin(void **state)
{
    (void)state;
    setenv("MAILCA_PIN", "not-the-pin", 1);
    ERR_clear_error();
    EVP_PKEY *pk = store_key(KEY_URI("p256"));
    setenv("MAILCA_PIN", USER_PIN, 1);
    assert_null(pk);
    char buf[1024] = "";
    unsigned long e;
    const char *data;
    int flags;
    int seen = 0;
    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)))
        if ((flags & ERR_TXT_STRING) && strstr(data, "C_Login: CKR_PIN_INCORRECT")) {
            seen = 1;
            snprintf(buf, sizeof buf, "%s", data);
        }
    assert_true(seen);
    assert_null(strstr(buf, "not-the-pin"));
}

/* ---- the openssl command with the loadable module ---- */

static char g_provdir[1200];

#if defined(__SANITIZE_ADDRESS__)
/* In a sanitizer build the provider module is instrumented too, and the openssl command is
 * not: the child preloads the ASan runtime this test runs with (found through one of its
 * symbols), and skips leak checks of the openssl command itself. */
extern void __asan_init(void);
static void child_sanitizer_env(void)
{
    Dl_info di;
    if (dladdr((void *)__asan_init, &di) && di.dli_fname && strstr(di.dli_fname, "libasan"))
        setenv("LD_PRELOAD", di.dli_fname, 1);
    setenv("ASAN_OPTIONS", "detect_leaks=0:verify_asan_link_order=0", 1);
}
#else
static void child_sanitizer_env(void) {}
#endif

/* Runs argv (PATH lookup) with stdout/stderr into <g_dir>/cmd.log; returns the exit status or
 * -1. Kills it after 60 s. */
static int run(const char *const *argv)
{
    char log[1200];
    snprintf(log, sizeof log, "%s/cmd.log", g_dir);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int nul = open("/dev/null", O_RDONLY);
        if (fd < 0 || nul < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0 || dup2(nul, 0) < 0)
            _exit(126);
        child_sanitizer_env();
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    for (int i = 0; i < 6000; i++) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (r < 0 && errno != EINTR)
            return -1;
        usleep(10 * 1000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

static char *read_log(void)
{
    static char buf[8192];
    char log[1200];
    snprintf(log, sizeof log, "%s/cmd.log", g_dir);
    FILE *fp = fopen(log, "r");
    size_t n = fp ? fread(buf, 1, sizeof buf - 1, fp) : 0;
    if (fp)
        fclose(fp);
    buf[n] = '\0';
    return buf;
}

static void run_ok(const char *what, const char *const *argv)
{
    int rc = run(argv);
    if (rc != 0)
        fail_msg("%s: exit %d\n%s", what, rc, read_log());
}

/* -provider-path wants a folder with mailca.so: the module itself, or a link to it. */
static void provider_dir(void)
{
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", g_provider);
    if (strcmp(basename(copy), "mailca.so") == 0) {
        snprintf(copy, sizeof copy, "%s", g_provider);
        snprintf(g_provdir, sizeof g_provdir, "%s", dirname(copy));
        return;
    }
    char link[1300];
    snprintf(g_provdir, sizeof g_provdir, "%s/provider", g_dir);
    snprintf(link, sizeof link, "%s/mailca.so", g_provdir);
    assert_true(mkdir(g_provdir, 0700) == 0 || errno == EEXIST);
    unlink(link);
    assert_int_equal(symlink(g_provider, link), 0);
}

static X509 *pem_cert(const char *path)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    X509 *x = PEM_read_X509(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(x);
    return x;
}

static void test_openssl_cli_signs_csr(void **state)
{
    (void)state;
    provider_dir();
    char ca[1200], csr[1200], leafkey[1200], leaf[1200], fake[1200], fakekey[1200];
    snprintf(ca, sizeof ca, "%s/ca.pem", g_dir);
    snprintf(csr, sizeof csr, "%s/leaf.csr", g_dir);
    snprintf(leafkey, sizeof leafkey, "%s/leaf.key", g_dir);
    snprintf(leaf, sizeof leaf, "%s/leaf.pem", g_dir);
    snprintf(fake, sizeof fake, "%s/fake-ca.pem", g_dir);
    snprintf(fakekey, sizeof fakekey, "%s/fake-ca.key", g_dir);
    const char *uri = KEY_URI("p256");

    /* the CA certificate, self-signed by the HSM key through the provider */
    const char *mkca[] = {"openssl",
                          "req",
                          "-new",
                          "-x509",
                          "-provider-path",
                          g_provdir,
                          "-provider",
                          "mailca",
                          "-provider",
                          "default",
                          "-key",
                          uri,
                          "-subj",
                          "/CN=mailca HSM test CA",
                          "-days",
                          "30",
                          "-addext",
                          "basicConstraints=critical,CA:TRUE",
                          "-addext",
                          "keyUsage=critical,keyCertSign,cRLSign",
                          "-out",
                          ca,
                          NULL};
    run_ok("openssl req -x509 (HSM key)", mkca);
    /* a subscriber CSR with a software key (default provider only) */
    const char *mkcsr[] = {
        "openssl", "req",     "-new",  "-newkey", "ec",       "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes",  "-keyout", leafkey, "-subj",   "/CN=leaf", "-out",     csr,
        NULL};
    run_ok("openssl req -new", mkcsr);
    /* the CA signs it with the HSM key */
    const char *sign[] = {"openssl",     "x509",      "-req",   "-in",       csr,
                          "-CA",         ca,          "-CAkey", uri,         "-provider-path",
                          g_provdir,     "-provider", "mailca", "-provider", "default",
                          "-set_serial", "0x5eed",    "-days",  "1",         "-out",
                          leaf,          NULL};
    run_ok("openssl x509 -req -CAkey pkcs11:", sign);
    const char *verify[] = {"openssl", "verify", "-CAfile", ca, leaf, NULL};
    run_ok("openssl verify", verify);
    assert_non_null(strstr(read_log(), ": OK"));

    /* the same checks in-process: the leaf's signature is the HSM key's */
    X509 *xca = pem_cert(ca), *xleaf = pem_cert(leaf);
    EVP_PKEY *pk = store_key(uri);
    assert_non_null(pk);
    EVP_PKEY *pub = public_copy(pk);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(xca), pub), 1);
    assert_int_equal(X509_verify(xleaf, pub), 1);
    assert_int_equal(X509_get_signature_nid(xleaf), NID_ecdsa_with_SHA256);
    X509_free(xca);
    X509_free(xleaf);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(pk);

    /* a look-alike CA (same name, software key) does not verify it: the check can fail */
    const char *mkfake[] = {"openssl",
                            "req",
                            "-new",
                            "-x509",
                            "-newkey",
                            "ec",
                            "-pkeyopt",
                            "ec_paramgen_curve:P-256",
                            "-nodes",
                            "-keyout",
                            fakekey,
                            "-subj",
                            "/CN=mailca HSM test CA",
                            "-days",
                            "30",
                            "-addext",
                            "basicConstraints=critical,CA:TRUE",
                            "-out",
                            fake,
                            NULL};
    run_ok("openssl req -x509 (look-alike)", mkfake);
    const char *verify_fake[] = {"openssl", "verify", "-CAfile", fake, leaf, NULL};
    assert_int_not_equal(run(verify_fake), 0);

    /* a wrong PIN: the command fails, says why, and does not print the PIN */
    setenv("MAILCA_PIN", "wrong-pin-77", 1);
    int rc = run(sign);
    setenv("MAILCA_PIN", USER_PIN, 1);
    assert_int_not_equal(rc, 0);
    const char *log = read_log();
    assert_non_null(strstr(log, "CKR_PIN_INCORRECT"));
    assert_null(strstr(log, "wrong-pin-77"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ecdsa_p256),
        cmocka_unit_test(test_ecdsa_p384),
        cmocka_unit_test(test_rsa_pkcs1_and_pss),
        cmocka_unit_test(test_ed25519),
        cmocka_unit_test(test_sbr_refusals),
        cmocka_unit_test(test_wrong_pin),
        cmocka_unit_test(test_openssl_cli_signs_csr),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
