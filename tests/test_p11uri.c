/*
 * Unit tests for the RFC 7512 pkcs11: URI parser: what it accepts, exactly how it decodes, and
 * that everything it must refuse is refused with the right code and attribute named.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "mailca/p11uri.h"

static void test_simple(void **state)
{
    (void)state;
    mc_p11uri u;
    mc_errdetail e;
    assert_int_equal(mc_p11uri_parse("pkcs11:token=ca-2025;object=issuing;type=private", &u, &e),
                     MC_OK);
    assert_true(u.has_token);
    assert_string_equal(u.token, "ca-2025");
    assert_true(u.has_object);
    assert_string_equal(u.object, "issuing");
    assert_int_equal(u.type, MC_P11URI_TYPE_PRIVATE);
    assert_false(u.has_id);
    assert_false(u.has_serial);
    assert_false(u.has_manufacturer);
    assert_false(u.has_model);
    assert_string_equal(u.module_path, "");
    assert_string_equal(u.pin_source, "");
    assert_true(mc_p11uri_has_token_attr(&u));
}

static void test_all_attributes(void **state)
{
    (void)state;
    mc_p11uri u;
    mc_errdetail e;
    const char *s = "PKCS11:manufacturer=SoftHSM%20project;model=SoftHSM%20v2;"
                    "serial=a1b2c3d4e5f60718;token=My%20CA%3b%25;object=key%2F1;"
                    "id=%01%fF%00%80;type=public"
                    "?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin";
    assert_int_equal(mc_p11uri_parse(s, &u, &e), MC_OK);
    assert_string_equal(u.manufacturer, "SoftHSM project");
    assert_string_equal(u.model, "SoftHSM v2");
    assert_string_equal(u.serial, "a1b2c3d4e5f60718");
    assert_string_equal(u.token, "My CA;%");
    assert_string_equal(u.object, "key/1");
    const uint8_t id[] = {0x01, 0xff, 0x00, 0x80};
    assert_true(u.has_id);
    assert_int_equal(u.idlen, sizeof id);
    assert_memory_equal(u.id, id, sizeof id);
    assert_int_equal(u.type, MC_P11URI_TYPE_PUBLIC);
    assert_string_equal(u.module_path, "/usr/lib/softhsm/libsofthsm2.so");
    assert_string_equal(u.pin_source, "/run/pin");
}

static void test_edge_values(void **state)
{
    (void)state;
    mc_p11uri u;
    mc_errdetail e;
    /* empty token label is a value, not absence; id alone names a key */
    assert_int_equal(mc_p11uri_parse("pkcs11:token=;id=%2a", &u, &e), MC_OK);
    assert_true(u.has_token);
    assert_string_equal(u.token, "");
    assert_int_equal(u.idlen, 1);
    assert_int_equal(u.id[0], 0x2a);
    /* no attributes at all parses (the HSM layer then asks for a token) */
    assert_int_equal(mc_p11uri_parse("pkcs11:", &u, &e), MC_OK);
    assert_false(mc_p11uri_has_token_attr(&u));
    /* a 32-byte label fits exactly, path module-path, file:/// pin-source, plain path */
    assert_int_equal(
        mc_p11uri_parse("pkcs11:token=0123456789abcdef0123456789abcdef;module-path=%2Fm.so"
                        "?pin-source=file:///etc/pin",
                        &u, &e),
        MC_OK);
    assert_int_equal(strlen(u.token), 32);
    assert_string_equal(u.module_path, "/m.so");
    assert_string_equal(u.pin_source, "/etc/pin");
    assert_int_equal(mc_p11uri_parse("pkcs11:serial=1?pin-source=/p", &u, &e), MC_OK);
    assert_string_equal(u.pin_source, "/p");
    assert_true(mc_p11uri_has_token_attr(&u));
    /* every type keyword */
    const char *types[] = {"private", "public", "cert", "secret-key", "data"};
    const mc_p11uri_type want[] = {MC_P11URI_TYPE_PRIVATE, MC_P11URI_TYPE_PUBLIC,
                                   MC_P11URI_TYPE_CERT, MC_P11URI_TYPE_SECRET_KEY,
                                   MC_P11URI_TYPE_DATA};
    for (size_t i = 0; i < 5; i++) {
        char buf[64];
        snprintf(buf, sizeof buf, "pkcs11:type=%s", types[i]);
        assert_int_equal(mc_p11uri_parse(buf, &u, &e), MC_OK);
        assert_int_equal(u.type, want[i]);
    }
}

/* Parses s, expects code and the attribute named in err.field, and a zeroed output. */
static void expect_bad(const char *s, mc_err code, const char *field, const char *in_message)
{
    mc_p11uri u;
    mc_errdetail e;
    mc_err_clear(&e);
    memset(&u, 0x55, sizeof u);
    mc_err rc = mc_p11uri_parse(s, &u, &e);
    if (rc != code || strcmp(e.field, field) != 0 || !strstr(e.message, in_message))
        fail_msg("'%s': got %d field '%s' message '%s'; want %d field '%s' message with '%s'",
                 s ? s : "(null)", rc, e.field, e.message, code, field, in_message);
    assert_int_equal(e.code, code);
    assert_false(u.has_token || u.has_object || u.has_id || u.token[0]);
}

static void test_bad(void **state)
{
    (void)state;
    expect_bad("token=a;object=b", MC_ERR_INVALID, "uri", "must start with 'pkcs11:'");
    expect_bad("pkcs11", MC_ERR_INVALID, "uri", "must start with 'pkcs11:'");
    expect_bad("pkcs12:token=a", MC_ERR_INVALID, "uri", "must start with 'pkcs11:'");
    expect_bad(NULL, MC_ERR_INVALID, "uri", "must start with 'pkcs11:'");
    expect_bad("pkcs11:token=a;colour=blue", MC_ERR_INVALID, "colour",
               "unknown attribute 'colour'");
    expect_bad("pkcs11:Token=a", MC_ERR_INVALID, "Token", "unknown attribute");
    expect_bad("pkcs11:token=a?colour=blue", MC_ERR_INVALID, "colour", "unknown query attribute");
    expect_bad("pkcs11:token=a%2", MC_ERR_INVALID, "token", "bad percent escape");
    expect_bad("pkcs11:token=a%zz", MC_ERR_INVALID, "token", "bad percent escape");
    expect_bad("pkcs11:id=%0g", MC_ERR_INVALID, "id", "bad percent escape");
    expect_bad("pkcs11:object=%", MC_ERR_INVALID, "object", "bad percent escape");
    expect_bad("pkcs11:token=a b", MC_ERR_INVALID, "token", "must be percent-encoded");
    expect_bad("pkcs11:object=a/b", MC_ERR_INVALID, "object", "must be percent-encoded");
    expect_bad("pkcs11:token=a%00b", MC_ERR_INVALID, "token", "NUL byte");
    expect_bad("pkcs11:token=a;token=b", MC_ERR_INVALID, "token", "more than once");
    expect_bad("pkcs11:id=%01;id=%02", MC_ERR_INVALID, "id", "more than once");
    expect_bad("pkcs11:token", MC_ERR_INVALID, "token", "no '=value'");
    expect_bad("pkcs11:token=a;", MC_ERR_INVALID, "", "trailing ';'");
    expect_bad("pkcs11:token=a#frag", MC_ERR_INVALID, "uri", "fragment");
    expect_bad("pkcs11:type=key", MC_ERR_INVALID, "type", "type must be");
    expect_bad("pkcs11:token=0123456789abcdef0123456789abcdefX", MC_ERR_INVALID, "token",
               "longer than 32 bytes");
    expect_bad("pkcs11:serial=0123456789abcdefX", MC_ERR_INVALID, "serial", "longer than 16 bytes");
    expect_bad("pkcs11:slot-id=0", MC_ERR_UNSUPPORTED, "slot-id", "not supported");
    expect_bad("pkcs11:library-manufacturer=x", MC_ERR_UNSUPPORTED, "library-manufacturer",
               "not supported");
    expect_bad("pkcs11:token=a?module-name=softhsm2", MC_ERR_UNSUPPORTED, "module-name",
               "use module-path");
    expect_bad("pkcs11:token=a?pin-source=%7C/bin/getpin", MC_ERR_UNSUPPORTED, "pin-source",
               "must be a file");
    expect_bad("pkcs11:token=a?module-path=", MC_ERR_INVALID, "module-path", "empty");
}

static void test_pin_value_refused(void **state)
{
    (void)state;
    expect_bad("pkcs11:token=a;object=b?pin-value=s3cret-1234", MC_ERR_INVALID, "pin-value",
               "pin-value is refused");
    expect_bad("pkcs11:token=a;pin-value=s3cret-1234;object=b", MC_ERR_INVALID, "pin-value",
               "pin-value is refused");
    /* the secret must never be repeated in the error */
    mc_p11uri u;
    mc_errdetail e;
    assert_int_not_equal(mc_p11uri_parse("pkcs11:token=a?pin-value=s3cret-1234", &u, &e), MC_OK);
    assert_null(strstr(e.message, "s3cret"));
    assert_null(strstr(e.field, "s3cret"));
}

static void test_id_max(void **state)
{
    (void)state;
    char buf[3 * (MC_P11URI_ID_MAX + 1) + 16];
    size_t o = (size_t)snprintf(buf, sizeof buf, "pkcs11:id=");
    for (int i = 0; i < MC_P11URI_ID_MAX; i++)
        o += (size_t)snprintf(buf + o, sizeof buf - o, "%%%02x", i);
    mc_p11uri u;
    mc_errdetail e;
    assert_int_equal(mc_p11uri_parse(buf, &u, &e), MC_OK);
    assert_int_equal(u.idlen, MC_P11URI_ID_MAX);
    assert_int_equal(u.id[MC_P11URI_ID_MAX - 1], MC_P11URI_ID_MAX - 1);
    snprintf(buf + o, sizeof buf - o, "%%ff");
    assert_int_equal(mc_p11uri_parse(buf, &u, &e), MC_ERR_INVALID);
    assert_string_equal(e.field, "id");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple),
        cmocka_unit_test(test_all_attributes),
        cmocka_unit_test(test_edge_values),
        cmocka_unit_test(test_bad),
        cmocka_unit_test(test_pin_value_refused),
        cmocka_unit_test(test_id_max),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
