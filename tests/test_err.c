/* Unit tests of the error details: mc_err_set, mc_err_format and the field-path builders. */
#include "mailca/err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

static void test_field_join(void **state)
{
    (void)state;
    char buf[MC_ERR_FIELD_MAX];
    assert_string_equal(mc_err_field(buf, sizeof buf, "subject", "given_name"),
                        "subject.given_name");
    assert_string_equal(mc_err_field(buf, sizeof buf, "lei", NULL), "lei");
    assert_string_equal(mc_err_field(buf, sizeof buf, "", "x"), ".x");
    /* truncated to the buffer, always terminated */
    char small[8];
    assert_string_equal(mc_err_field(small, sizeof small, "mailboxes", "address"), "mailbox");
    assert_string_equal(mc_err_field(small, sizeof small, "abc", "defghij"), "abc.def");
    char one[1] = {'x'};
    assert_string_equal(mc_err_field(one, sizeof one, "abc", "d"), "");
}

static void test_field_index(void **state)
{
    (void)state;
    char buf[MC_ERR_FIELD_MAX], idx[24];
    assert_string_equal(mc_err_field_index(buf, sizeof buf, "mailboxes", 0), "mailboxes[0]");
    assert_string_equal(mc_err_field_index(buf, sizeof buf, "mailboxes", 17), "mailboxes[17]");
    assert_string_equal(mc_err_field_index(buf, sizeof buf, "a", (size_t)-1),
                        "a[18446744073709551615]");
    assert_string_equal(mc_err_field(buf, sizeof buf,
                                     mc_err_field_index(idx, sizeof idx, "mailboxes", 3),
                                     "address"),
                        "mailboxes[3].address");
    char small[6];
    assert_string_equal(mc_err_field_index(small, sizeof small, "mail", 12), "mail[");
}

static void test_set_and_format(void **state)
{
    (void)state;
    mc_errdetail d;
    assert_int_equal(mc_err_set(&d, MC_ERR_INVALID, "csr", "SBR 6.1.5", "key of %d bits", 1024),
                     MC_ERR_INVALID);
    assert_string_equal(d.field, "csr");
    assert_string_equal(d.rule, "SBR 6.1.5");
    assert_string_equal(d.message, "key of 1024 bits");
    char out[512];
    const char *f = mc_err_format(&d, out, sizeof out);
    assert_non_null(strstr(f, "csr"));
    assert_non_null(strstr(f, "key of 1024 bits"));
    assert_non_null(strstr(f, "SBR 6.1.5"));
    mc_err_clear(&d);
    assert_int_equal(d.code, MC_OK);
    assert_string_equal(d.field, "");
    /* over-long values are cut to their buffers, never overflow them */
    char longf[200];
    memset(longf, 'f', sizeof longf - 1);
    longf[sizeof longf - 1] = '\0';
    mc_err_set(&d, MC_ERR_INVALID, longf, NULL, "%s", longf);
    assert_int_equal(strlen(d.field), MC_ERR_FIELD_MAX - 1);
    assert_string_equal(d.rule, "");
    assert_int_equal(strlen(d.message), 199);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_field_join),
        cmocka_unit_test(test_field_index),
        cmocka_unit_test(test_set_and_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
