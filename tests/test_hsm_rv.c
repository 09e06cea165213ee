/*
 * Unit tests for the CKR_ classification that decides whether a signing failure is retried
 * elsewhere (transient), repaired by reopening the session, or never retried (fatal).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

#include "mailca/hsm.h"

static void test_classes(void **state)
{
    (void)state;
    assert_int_equal(mc_hsm_rv_class(CKR_OK), MC_OK);
    const unsigned long fatal[] = {CKR_PIN_INCORRECT,
                                   CKR_PIN_LOCKED,
                                   CKR_PIN_EXPIRED,
                                   CKR_KEY_HANDLE_INVALID,
                                   CKR_MECHANISM_INVALID,
                                   CKR_ARGUMENTS_BAD,
                                   CKR_FUNCTION_NOT_SUPPORTED,
                                   CKR_MECHANISM_PARAM_INVALID,
                                   CKR_KEY_FUNCTION_NOT_PERMITTED,
                                   CKR_DATA_LEN_RANGE};
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++)
        assert_int_equal(mc_hsm_rv_class(fatal[i]), MC_ERR_HSM_FATAL);
    const unsigned long session[] = {CKR_SESSION_HANDLE_INVALID, CKR_SESSION_CLOSED,
                                     CKR_USER_NOT_LOGGED_IN,     CKR_DEVICE_REMOVED,
                                     CKR_TOKEN_NOT_PRESENT,      CKR_CRYPTOKI_NOT_INITIALIZED};
    for (size_t i = 0; i < sizeof session / sizeof session[0]; i++)
        assert_int_equal(mc_hsm_rv_class(session[i]), MC_ERR_HSM_SESSION);
    const unsigned long transient[] = {
        CKR_DEVICE_ERROR,  CKR_DEVICE_MEMORY,    CKR_HOST_MEMORY,   CKR_FUNCTION_FAILED,
        CKR_GENERAL_ERROR, CKR_OPERATION_ACTIVE, CKR_SESSION_COUNT, CKR_VENDOR_DEFINED | 5};
    for (size_t i = 0; i < sizeof transient / sizeof transient[0]; i++)
        assert_int_equal(mc_hsm_rv_class(transient[i]), MC_ERR_HSM);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(mc_hsm_rv_name(CKR_OK), "CKR_OK");
    assert_string_equal(mc_hsm_rv_name(CKR_PIN_INCORRECT), "CKR_PIN_INCORRECT");
    assert_string_equal(mc_hsm_rv_name(CKR_SESSION_HANDLE_INVALID), "CKR_SESSION_HANDLE_INVALID");
    assert_string_equal(mc_hsm_rv_name(CKR_DEVICE_ERROR), "CKR_DEVICE_ERROR");
    assert_string_equal(mc_hsm_rv_name(CKR_CRYPTOKI_ALREADY_INITIALIZED),
                        "CKR_CRYPTOKI_ALREADY_INITIALIZED");
    assert_string_equal(mc_hsm_rv_name(CKR_VENDOR_DEFINED | 7), "CKR_VENDOR_DEFINED");
    assert_string_equal(mc_hsm_rv_name(0x7777), "CKR_UNKNOWN");
}

/* Calls that fail before touching a module say why. */
static void test_open_config_errors(void **state)
{
    (void)state;
    mc_hsm *h = (mc_hsm *)1;
    mc_errdetail e;
    mc_hsm_config cfg = {NULL, "pkcs11:token=a;object=b", "1234"};
    assert_int_equal(mc_hsm_open(&cfg, &h, &e), MC_ERR_CONFIG);
    assert_null(h);
    assert_non_null(strstr(e.message, "no PKCS#11 module"));
    cfg.module = "/nonexistent/libnothing.so";
    assert_int_equal(mc_hsm_open(&cfg, &h, &e), MC_ERR_HSM_FATAL);
    assert_non_null(strstr(e.message, "dlopen"));
    cfg.key_uri = "token=a";
    assert_int_equal(mc_hsm_open(&cfg, &h, &e), MC_ERR_INVALID);
    assert_string_equal(e.field, "uri");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classes),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_open_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
