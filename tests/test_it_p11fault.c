/*
 * Integration tests of mc_hsm's failure handling through tests/p11fault (a PKCS#11 module that
 * wraps SoftHSM2 and injects faults as its control file says): a device error on C_Sign is
 * transient (MC_ERR_HSM) and the session stays usable; a dead session is MC_ERR_HSM_SESSION and
 * mc_hsm_session_reopen recovers it; a wrong PIN is MC_ERR_HSM_FATAL; delays and hangs reach the
 * caller; the module counts calls. The fault module's path comes from $MAILCA_P11FAULT (set by
 * the build); without it the tests fail.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "mailca/hsm.h"
#include "support/itutil.h"
#include "support/softhsm.h"

#define TOKEN "fault-it"
#define SO_PIN "so-2468-pin"
#define USER_PIN "user-9753-pin"
#define URI "pkcs11:token=" TOKEN ";object=p256"

static char g_dir[1024], g_control[1100], g_stats[1100];
static const char *g_fault;

/* SoftHSM2 2.6.1 leaks inside its ECDSA C_Sign; see test_it_hsm.c. */
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

/* Replaces the control file (a new inode, so the module always notices). */
static void control(const char *text)
{
    assert_int_equal(mc_it_replace_file(g_control, text), 0);
}

static int group_setup(void **state)
{
    (void)state;
    mc_errdetail e;
    g_fault = getenv("MAILCA_P11FAULT");
    if (!g_fault || !g_fault[0]) {
        fprintf(stderr, "MAILCA_P11FAULT (path of the p11fault module) is not set\n");
        return -1;
    }
    if (!dlopen(mc_softhsm_module(), RTLD_NOW | RTLD_LOCAL) ||
        mc_softhsm_tmpdir("it_p11fault", g_dir, sizeof g_dir) != 0)
        return -1;
    snprintf(g_control, sizeof g_control, "%s/control", g_dir);
    snprintf(g_stats, sizeof g_stats, "%s/stats", g_dir);
    uint8_t id = 1;
    if (mc_softhsm_setup(g_dir, TOKEN, SO_PIN, USER_PIN, &e) ||
        mc_hsm_keygen(mc_softhsm_module(), TOKEN, USER_PIN, MC_KEY_P256, 0, "p256", &id, 1, &e)) {
        char buf[512];
        fprintf(stderr, "setup: %s\n", mc_err_format(&e, buf, sizeof buf));
        return -1;
    }
    setenv("P11FAULT_MODULE", mc_softhsm_module(), 1);
    setenv("P11FAULT_CONTROL", g_control, 1);
    setenv("P11FAULT_STATS", g_stats, 1);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    return mc_softhsm_rmtree(g_dir);
}

static int reset(void **state)
{
    (void)state;
    control("");
    return 0;
}

static mc_hsm *open_fault(void)
{
    mc_hsm_config cfg = {g_fault, URI, USER_PIN};
    mc_hsm *h = NULL;
    mc_errdetail e;
    if (mc_hsm_open(&cfg, &h, &e)) {
        char buf[512];
        fail_msg("open through p11fault: %s", mc_err_format(&e, buf, sizeof buf));
    }
    return h;
}

/* Signs a fresh digest; on success checks the signature with the token's public key. */
static mc_err sign_once(mc_hsm *h, mc_hsm_session *s, mc_errdetail *e)
{
    uint8_t msg[64], dg[32], sig[80];
    unsigned dlen = 0;
    RAND_bytes(msg, sizeof msg);
    assert_int_equal(EVP_Digest(msg, sizeof msg, dg, &dlen, EVP_sha256(), NULL), 1);
    size_t siglen = sizeof sig;
    mc_err rc = mc_hsm_sign(s, MC_SIG_ECDSA_SHA256, dg, dlen, sig, &siglen, e);
    if (rc)
        return rc;
    mc_bytes spki = mc_hsm_spki(h);
    const uint8_t *p = spki.p;
    EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)spki.len);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    assert_non_null(pk);
    assert_int_equal(EVP_DigestVerifyInit(c, NULL, EVP_sha256(), NULL, pk), 1);
    assert_int_equal(EVP_DigestVerify(c, sig, siglen, msg, sizeof msg), 1);
    EVP_MD_CTX_free(c);
    EVP_PKEY_free(pk);
    return MC_OK;
}

static void test_device_error_is_transient(void **state)
{
    (void)state;
    mc_hsm *h = open_fault();
    mc_hsm_session *s;
    mc_errdetail e;
    assert_int_equal(mc_hsm_session_open(h, &s, &e), MC_OK);
    assert_int_equal(sign_once(h, s, &e), MC_OK);
    control("C_Sign count=1 rv=CKR_DEVICE_ERROR\n");
    assert_int_equal(sign_once(h, s, &e), MC_ERR_HSM);
    assert_non_null(strstr(e.message, "C_Sign: CKR_DEVICE_ERROR"));
    /* transient: the same session signs again, no reopen needed */
    assert_int_equal(sign_once(h, s, &e), MC_OK);
    mc_hsm_session_close(s);
    mc_hsm_close(h);
}

static void test_after_and_count(void **state)
{
    (void)state;
    mc_hsm *h = open_fault();
    mc_hsm_session *s;
    mc_errdetail e;
    assert_int_equal(mc_hsm_session_open(h, &s, &e), MC_OK);
    control("# calls 4 and 5 fail\nC_Sign after=3 count=2 rv=CKR_DEVICE_ERROR\n");
    static const mc_err want[] = {MC_OK, MC_OK, MC_OK, MC_ERR_HSM, MC_ERR_HSM, MC_OK, MC_OK};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (sign_once(h, s, &e) != want[i])
            fail_msg("call %zu: want %s, got %s (%s)", i + 1, mc_err_name(want[i]),
                     mc_err_name(e.code), e.message);
    mc_hsm_session_close(s);
    mc_hsm_close(h);
}

static void test_session_invalid_then_reopen(void **state)
{
    (void)state;
    mc_hsm *h = open_fault();
    mc_hsm_session *s;
    mc_errdetail e;
    assert_int_equal(mc_hsm_session_open(h, &s, &e), MC_OK);
    assert_int_equal(sign_once(h, s, &e), MC_OK);
    /* the device drops the session: the module closes the real one too */
    control("C_Sign count=1 rv=CKR_SESSION_HANDLE_INVALID close_session\n");
    assert_int_equal(sign_once(h, s, &e), MC_ERR_HSM_SESSION);
    assert_non_null(strstr(e.message, "CKR_SESSION_HANDLE_INVALID"));
    control("");
    /* without a reopen the session stays dead (now SoftHSM itself says so) */
    assert_int_equal(sign_once(h, s, &e), MC_ERR_HSM_SESSION);
    assert_int_equal(mc_hsm_session_reopen(s, &e), MC_OK);
    assert_int_equal(sign_once(h, s, &e), MC_OK);

    /* a reopen that fails leaves a closed session that says so, and a later reopen works */
    control("C_OpenSession count=1 rv=CKR_DEVICE_ERROR\n");
    assert_int_equal(mc_hsm_session_reopen(s, &e), MC_ERR_HSM);
    assert_non_null(strstr(e.message, "C_OpenSession: CKR_DEVICE_ERROR"));
    assert_int_equal(sign_once(h, s, &e), MC_ERR_HSM_SESSION);
    assert_int_equal(mc_hsm_session_reopen(s, &e), MC_OK);
    assert_int_equal(sign_once(h, s, &e), MC_OK);
    mc_hsm_session_close(s);
    mc_hsm_close(h);
}

static void test_stuck_operation_is_session_class(void **state)
{
    (void)state;
    mc_hsm *h = open_fault();
    mc_hsm_session *s;
    mc_errdetail e;
    assert_int_equal(mc_hsm_session_open(h, &s, &e), MC_OK);
    /* a module that kept an operation running: C_SignInit says CKR_OPERATION_ACTIVE */
    control("C_SignInit count=1 rv=CKR_OPERATION_ACTIVE\n");
    assert_int_equal(sign_once(h, s, &e), MC_ERR_HSM_SESSION);
    assert_non_null(strstr(e.message, "C_SignInit: CKR_OPERATION_ACTIVE"));
    assert_int_equal(mc_hsm_session_reopen(s, &e), MC_OK);
    assert_int_equal(sign_once(h, s, &e), MC_OK);
    mc_hsm_session_close(s);
    mc_hsm_close(h);
}

static void test_pin_incorrect_is_fatal(void **state)
{
    (void)state;
    control("C_Login rv=CKR_PIN_INCORRECT\n");
    mc_hsm_config cfg = {g_fault, URI, USER_PIN};
    mc_hsm *h = (mc_hsm *)1;
    mc_errdetail e;
    assert_int_equal(mc_hsm_open(&cfg, &h, &e), MC_ERR_HSM_FATAL);
    assert_null(h);
    assert_non_null(strstr(e.message, "C_Login: CKR_PIN_INCORRECT"));
    assert_null(strstr(e.message, USER_PIN));
    control("");
    h = open_fault();
    mc_hsm_close(h);
}

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static void test_delay(void **state)
{
    (void)state;
    mc_hsm *h = open_fault();
    mc_hsm_session *s;
    mc_errdetail e;
    assert_int_equal(mc_hsm_session_open(h, &s, &e), MC_OK);
    control("C_Sign delay_us=1000\n");
    for (int i = 0; i < 5; i++) {
        long long t0 = now_ns();
        assert_int_equal(sign_once(h, s, &e), MC_OK);
        long long dt = now_ns() - t0;
        if (dt < 1000000)
            fail_msg("C_Sign took %lld ns with delay_us=1000", dt);
    }
    mc_hsm_session_close(s);
    mc_hsm_close(h);
}

typedef struct hanger {
    mc_hsm *h;
    mc_hsm_session *s;
    atomic_int done;
    mc_err rc;
} hanger;

static void *hang_sign(void *arg)
{
    hanger *g = arg;
    mc_errdetail e;
    g->rc = sign_once(g->h, g->s, &e);
    atomic_store(&g->done, 1);
    return NULL;
}

static void test_hang_until_released(void **state)
{
    (void)state;
    hanger g = {.h = open_fault()};
    mc_errdetail e;
    assert_int_equal(mc_hsm_session_open(g.h, &g.s, &e), MC_OK);
    control("C_Sign hang\n");
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, hang_sign, &g), 0);
    usleep(100 * 1000);
    assert_int_equal(atomic_load(&g.done), 0); /* still inside C_Sign */
    control("");
    pthread_join(t, NULL);
    assert_int_equal(atomic_load(&g.done), 1);
    assert_int_equal(g.rc, MC_OK);
    mc_hsm_session_close(g.s);
    mc_hsm_close(g.h);
}

static void test_bad_control_fails_every_call(void **state)
{
    (void)state;
    control("C_Sgin rv=CKR_DEVICE_ERROR\n"); /* misspelt: must not pass for "no fault" */
    mc_hsm_config cfg = {g_fault, URI, USER_PIN};
    mc_hsm *h = (mc_hsm *)1;
    mc_errdetail e;
    assert_int_not_equal(mc_hsm_open(&cfg, &h, &e), MC_OK);
    assert_null(h);
    assert_non_null(strstr(e.message, "CKR_GENERAL_ERROR"));
}

/* "C_Sign calls=N injected=M" from the statistics file. */
static int stats_of(const char *fn, unsigned long *calls, unsigned long *injected)
{
    FILE *fp = fopen(g_stats, "r");
    if (!fp)
        return -1;
    char line[256], name[64];
    int found = -1;
    while (fgets(line, sizeof line, fp))
        if (sscanf(line, "%63s calls=%lu injected=%lu", name, calls, injected) == 3 &&
            strcmp(name, fn) == 0)
            found = 0;
    fclose(fp);
    return found;
}

static void test_stats(void **state)
{
    (void)state;
    unlink(g_stats);
    mc_hsm *h = open_fault();
    mc_hsm_session *s;
    mc_errdetail e;
    assert_int_equal(mc_hsm_session_open(h, &s, &e), MC_OK);
    control("C_Sign after=1 count=1 rv=CKR_DEVICE_ERROR\n");
    assert_int_equal(sign_once(h, s, &e), MC_OK);
    assert_int_equal(sign_once(h, s, &e), MC_ERR_HSM);
    assert_int_equal(sign_once(h, s, &e), MC_OK);
    mc_hsm_session_close(s);
    mc_hsm_close(h); /* last user: C_Finalize writes the statistics */
    unsigned long calls = 0, injected = 0;
    assert_int_equal(stats_of("C_Sign", &calls, &injected), 0);
    /* the counters live as long as the module stays loaded (sanitizer builds keep it) */
    assert_true(calls >= 4); /* 3 here + mc_hsm_open's self-test */
    assert_true(injected >= 1);
    assert_int_equal(stats_of("C_Login", &calls, &injected), 0);
    assert_true(calls >= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_device_error_is_transient, reset),
        cmocka_unit_test_setup(test_after_and_count, reset),
        cmocka_unit_test_setup(test_session_invalid_then_reopen, reset),
        cmocka_unit_test_setup(test_stuck_operation_is_session_class, reset),
        cmocka_unit_test_setup(test_pin_incorrect_is_fatal, reset),
        cmocka_unit_test_setup(test_delay, reset),
        cmocka_unit_test_setup(test_hang_until_released, reset),
        cmocka_unit_test_setup_teardown(test_bad_control_fails_every_call, reset, reset),
        cmocka_unit_test_setup(test_stats, reset),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
