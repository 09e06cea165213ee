/*
 * Unit tests for mc_query (include/mailca/query.h): the selector options `mailca query` and
 * `mailca revoke` share (each value checked, errors naming the option and the rule) and the
 * output. JSON Lines are read back with SQLite's JSON functions (an independent parser) and
 * CSV with an RFC 4180 reader written here, both over hostile values: quotes, commas, line
 * breaks, control characters, bytes that are not UTF-8.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailca/lint.h"
#include "mailca/query.h"

/* --- selector options ------------------------------------------------------------------------ */

static int code_of(const char *name)
{
    for (const struct option *o = mc_query_sel_options; o->name; o++)
        if (strcmp(o->name, name) == 0)
            return o->val;
    fail_msg("no option --%s", name);
    return -1;
}

/* Takes --name value into o; the answer of mc_query_sel_option. */
static int opt(mc_query_selopts *o, const char *name, const char *value, mc_errdetail *err)
{
    mc_err_clear(err);
    return mc_query_sel_option(o, code_of(name), value, 1700000000, err);
}

static void test_sel_options_good(void **state)
{
    (void)state;
    mc_query_selopts o;
    mc_errdetail err;
    int n = -1;
    mc_query_selopts_init(&o);
    assert_int_equal(mc_query_sel_option(&o, 'c', "x", 0, &err), 0); /* not a selector */
    assert_int_equal(opt(&o, "serial", "4C0a", &err), 1);
    assert_int_equal(o.sel.serial_len, 2);
    assert_int_equal(o.sel.serial[0], 0x4c);
    assert_int_equal(opt(&o, "account", "acct-1", &err), 1);
    assert_int_equal(opt(&o, "key-sha256",
                         "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF", &err),
                     1);
    assert_int_equal(o.sel.spki_sha256[31], 0xff);
    assert_int_equal(opt(&o, "profile", "mailbox-strict", &err), 1);
    assert_int_equal(opt(&o, "profile-hash",
                         "a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5", &err),
                     1);
    assert_int_equal(opt(&o, "issued-after", "2026-01-01", &err), 1);
    assert_int_equal(opt(&o, "issued-before", "2026-02-01T00:00:00Z", &err), 1);
    assert_int_equal(opt(&o, "expired-at", "now", &err), 1);
    assert_int_equal(o.sel.expired_at, 1700000000);
    assert_int_equal(opt(&o, "unexpired-at", "1600000000", &err), 1);
    assert_int_equal(opt(&o, "lint-version", MC_LINT_SET_VERSION, &err), 1);
    assert_int_equal(opt(&o, "lint-enforced", "mailca-lints-2026.5.1", &err), 1);
    assert_int_equal(opt(&o, "lint-warning", "e_cert_version_not_v3", &err), 1);
    assert_int_equal(opt(&o, "engine-version", "0.1.0", &err), 1);
    assert_int_equal(opt(&o, "method", "3.2.2.3", &err), 1);
    assert_int_equal(opt(&o, "domain", "Example.COM", &err), 1);
    assert_int_equal(opt(&o, "status", "revoked", &err), 1);
    assert_int_equal(opt(&o, "caa-unchecked", "", &err), 1);
    assert_int_equal(o.sel.caa_unchecked, 1);
    assert_int_equal(mc_query_sel_finish(&o, &n, &err), MC_OK);
    assert_int_equal(n, 17);
    assert_int_equal(o.sel.has, MC_SEL_ISSUED_AFTER | MC_SEL_ISSUED_BEFORE | MC_SEL_EXPIRED |
                                    MC_SEL_UNEXPIRED);
    assert_int_equal(o.sel.issued_after, 1767225600);
    assert_int_equal(o.sel.issued_before, 1769904000);
    /* what lint-disabled runs record is a lint set value too */
    mc_query_selopts_init(&o);
    assert_int_equal(opt(&o, "lint-version", "lint-disabled", &err), 1);
    assert_int_equal(mc_query_sel_finish(&o, &n, &err), MC_OK);
    assert_int_equal(n, 1);
    mc_query_selopts_init(&o);
    assert_int_equal(mc_query_sel_finish(&o, &n, &err), MC_OK);
    assert_int_equal(n, 0);
}

/* Every bad value is refused naming the option (and the rule where one applies). */
static void test_sel_options_bad(void **state)
{
    (void)state;
    static const struct {
        const char *name, *value, *field, *rule;
    } bad[] = {
        {"serial", "4c0", "--serial", "RFC 5280 4.1.2.2"},
        {"serial", "zz", "--serial", "RFC 5280 4.1.2.2"},
        {"serial", "000102030405060708090a0b0c0d0e0f1011121314", "--serial", "RFC 5280 4.1.2.2"},
        {"key-sha256", "0011", "--key-sha256", ""},
        {"profile-hash", "a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5ag",
         "--profile-hash", ""},
        {"issued-after", "yesterday", "--issued-after", ""},
        {"expired-at", "2026-13-01", "--expired-at", ""},
        {"lint-version", "mailca-lints-2026.11.02", "--lint-version", ""},
        {"lint-version", "lints-3", "--lint-version", ""},
        {"lint-enforced", "lint-disabled", "--lint-enforced", ""},
        {"lint-warning", "e_qc_natural_serial_numbr_format", "--lint-warning", ""},
        {"method", "3.2.2.5", "--method", "SBR 3.2.2"},
        {"method", "3.2.3", "--method", "SBR 3.2.2"},
        {"method", "email", "--method", "SBR 3.2.2"},
        {"domain", "user@example.com", "--domain", "RFC 5321 4.1.2"},
        {"domain", "a.example,b.example", "--domain", "RFC 5321 4.1.2"},
        {"domain", "exa mple.com", "--domain", "RFC 5321 4.1.2"},
        {"status", "expired", "--status", ""},
        {"account", "", "--account", ""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mc_query_selopts o;
        mc_errdetail err;
        mc_query_selopts_init(&o);
        if (opt(&o, bad[i].name, bad[i].value, &err) != -1)
            fail_msg("--%s '%s' was taken", bad[i].name, bad[i].value);
        assert_int_equal(err.code, MC_ERR_INVALID);
        assert_string_equal(err.field, bad[i].field);
        assert_string_equal(err.rule, bad[i].rule);
    }
    /* an option twice: ANDed values would select nothing, so it is refused */
    mc_query_selopts o;
    mc_errdetail err;
    mc_query_selopts_init(&o);
    assert_int_equal(opt(&o, "profile", "a", &err), 1);
    assert_int_equal(opt(&o, "profile", "b", &err), -1);
    assert_string_equal(err.field, "--profile");
    assert_non_null(strstr(err.message, "given twice"));
    /* an empty notBefore window */
    mc_query_selopts_init(&o);
    assert_int_equal(opt(&o, "issued-after", "2026-02-01", &err), 1);
    assert_int_equal(opt(&o, "issued-before", "2026-02-01", &err), 1);
    assert_int_equal(mc_query_sel_finish(&o, NULL, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "--issued-before");
    mc_query_selopts_init(&o);
    assert_int_equal(opt(&o, "issued-after", "2026-02-02", &err), 1);
    assert_int_equal(opt(&o, "issued-before", "2026-02-01", &err), 1);
    assert_int_equal(mc_query_sel_finish(&o, NULL, &err), MC_ERR_INVALID);
}

/* --- output -------------------------------------------------------------------------------- */

/* Hostile values in every text column, as an attacker-chosen order reference or account would
 * put them in the evidence. */
static const char hostile_account[] = "acct \"one\", two\r\nthree\x01\x1f\x7f\\end\t";
static const char hostile_evidence[] =
    "{\"mailboxes\":[{\"address\":\"a@b.example\",\"method\":\"3.2.2.2\",\"reference\":\"r,\\\"x"
    "\\u0000\\n\"}],\"note\":\"é😀\"}\x02";

static mc_store_row sample_row(void)
{
    static const uint8_t serial[] = {0x4c, 0x00, 0xab};
    static uint8_t hash[32];
    memset(hash, 0xa5, sizeof hash);
    return (mc_store_row){.serial = serial,
                          .serial_len = sizeof serial,
                          .order_id = "ord-1",
                          .account = hostile_account,
                          .profile = NULL,
                          .profile_hash = hash,
                          .profile_hash_len = 32,
                          .lint_version = "mailca-lints-2026.11.24.6",
                          .lint_enforced = NULL,
                          .lint_warnings = "w_a,e_b",
                          .engine_version = "0.1.0",
                          .not_before = 1767225600,
                          .not_after = 1769904000,
                          .status = "revoked",
                          .revoked_at = 1768000000,
                          .reason = 1,
                          .mailboxes = "a@b.example,c\"d@e.example",
                          .evidence = hostile_evidence};
}

static char *write_rows(mc_query_format fmt, const char *fields, const mc_store_row *r, size_t n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    mc_query_fields fl;
    mc_errdetail err;
    assert_non_null(f);
    assert_int_equal(mc_query_fields_parse(fields, &fl, &err), MC_OK);
    mc_query_write_header(f, fmt, &fl);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(mc_query_write_row(f, fmt, &fl, &r[i], &err), MC_OK);
    fclose(f);
    return buf;
}

/* json_extract(line, path) as text ("<null>" for SQL NULL), and json_valid(line). */
static char *json_get(sqlite3 *db, const char *line, const char *path, int *valid)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT json_valid(?1), json_extract(?1, ?2)", -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_text(st, 1, line, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    *valid = sqlite3_column_int(st, 0);
    const unsigned char *t = sqlite3_column_text(st, 1);
    char *out = strdup(t ? (const char *)t : "<null>");
    sqlite3_finalize(st);
    return out;
}

static void expect_json(sqlite3 *db, const char *line, const char *path, const char *want)
{
    int valid = 0;
    char *got = json_get(db, line, path, &valid);
    assert_int_equal(valid, 1);
    if (strcmp(got, want) != 0)
        fail_msg("%s: got '%s', want '%s'", path, got, want);
    free(got);
}

/* RFC 8259: one valid JSON object per line, every value read back as it was (strings through
 * their escapes), control characters escaped (no raw byte below 0x20 in the line). */
static void test_jsonl(void **state)
{
    (void)state;
    mc_store_row r[2] = {sample_row(), sample_row()};
    r[1].revoked_at = -1;
    r[1].reason = -1;
    r[1].status = "issued";
    r[1].lint_warnings = "";
    char *out = write_rows(MC_QUERY_JSONL, NULL, r, 2);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    char *nl = strchr(out, '\n');
    assert_non_null(nl);
    *nl = '\0';
    char *second = nl + 1;
    assert_non_null(strchr(second, '\n'));
    *strchr(second, '\n') = '\0';
    for (const char *p = out; *p; p++)
        assert_true((unsigned char)*p >= 0x20);
    expect_json(db, out, "$.serial", "4c00ab");
    expect_json(db, out, "$.order_id", "ord-1");
    expect_json(db, out, "$.account", hostile_account);
    expect_json(db, out, "$.profile", "<null>");
    expect_json(db, out, "$.profile_hash",
                "a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5");
    expect_json(db, out, "$.lint_enforced", "<null>");
    expect_json(db, out, "$.lint_warnings", "[\"w_a\",\"e_b\"]");
    expect_json(db, out, "$.not_before", "2026-01-01T00:00:00Z");
    expect_json(db, out, "$.not_after", "2026-02-01T00:00:00Z");
    expect_json(db, out, "$.status", "revoked");
    expect_json(db, out, "$.revoked_at", "2026-01-09T23:06:40Z");
    expect_json(db, out, "$.reason", "keyCompromise");
    expect_json(db, out, "$.mailboxes[1]", "c\"d@e.example");
    expect_json(db, out, "$.evidence", hostile_evidence);
    /* the escapes themselves: RFC 8259 7 */
    assert_non_null(strstr(out, "\"account\":\"acct \\\"one\\\", two\\r\\nthree\\u0001\\u001f"
                                "\\u007f\\\\end\\t\""));
    expect_json(db, second, "$.revoked_at", "<null>");
    expect_json(db, second, "$.reason", "<null>");
    expect_json(db, second, "$.lint_warnings", "[]");
    free(out);

    /* --fields picks and orders the keys */
    out = write_rows(MC_QUERY_JSONL, "status,serial", r, 1);
    assert_string_equal(out, "{\"status\":\"revoked\",\"serial\":\"4c00ab\"}\n");
    free(out);

    /* RFC 8259 8.1: JSON text is UTF-8; bytes that are not (a lone continuation byte, an
     * overlong '/', a surrogate, a truncated sequence, 0xff) become U+FFFD one by one, and
     * well-formed sequences pass */
    r[0].order_id = "\x80|\xc0\xaf|\xed\xa0\x80|\xe2\x82|\xff|\xc3\xa9\xf0\x9f\x98\x80";
    out = write_rows(MC_QUERY_JSONL, "order_id", r, 1);
    assert_string_equal(out, "{\"order_id\":\"\\ufffd|\\ufffd\\ufffd|\\ufffd\\ufffd\\ufffd|"
                             "\\ufffd\\ufffd|\\ufffd|\xc3\xa9\xf0\x9f\x98\x80\"}\n");
    int valid = 0;
    *strchr(out, '\n') = '\0';
    free(json_get(db, out, "$.order_id", &valid));
    assert_int_equal(valid, 1);
    free(out);
    sqlite3_close(db);
}

/* An RFC 4180 reader: the fields of the record at *p (advanced past its CRLF) into f[], each
 * malloc'd. Returns how many, -1 at the end, -2 on malformed input. */
static int csv_record(const char **p, char **f, int max)
{
    const char *s = *p;
    int n = 0;
    if (!*s)
        return -1;
    for (;;) {
        char *buf = malloc(strlen(s) + 1);
        size_t len = 0;
        assert_non_null(buf);
        if (*s == '"') {
            s++;
            for (;;) {
                if (!*s) {
                    free(buf);
                    return -2;
                }
                if (*s == '"' && s[1] == '"') {
                    buf[len++] = '"';
                    s += 2;
                } else if (*s == '"') {
                    s++;
                    break;
                } else {
                    buf[len++] = *s++;
                }
            }
        } else {
            while (*s && *s != ',' && *s != '\r' && *s != '\n') {
                if (*s == '"') {
                    free(buf);
                    return -2; /* a quote in an unquoted field */
                }
                buf[len++] = *s++;
            }
        }
        buf[len] = '\0';
        if (n >= max) {
            free(buf);
            return -2;
        }
        f[n++] = buf;
        if (*s == ',') {
            s++;
            continue;
        }
        if (s[0] == '\r' && s[1] == '\n') {
            *p = s + 2;
            return n;
        }
        return -2; /* records end in CRLF (RFC 4180 2.1) */
    }
}

static void test_csv(void **state)
{
    (void)state;
    mc_store_row r[2] = {sample_row(), sample_row()};
    r[1].revoked_at = -1;
    r[1].reason = -1;
    r[1].account = "plain";
    char *out = write_rows(MC_QUERY_CSV, NULL, r, 2);
    const char *p = out;
    char *f[MC_QF_COUNT_ + 1];
    int n = csv_record(&p, f, MC_QF_COUNT_ + 1);
    assert_int_equal(n, MC_QF_COUNT_);
    for (int i = 0; i < n; i++) {
        assert_string_equal(f[i], mc_query_field_name((mc_query_field)i));
        free(f[i]);
    }
    n = csv_record(&p, f, MC_QF_COUNT_ + 1);
    assert_int_equal(n, MC_QF_COUNT_);
    assert_string_equal(f[MC_QF_SERIAL], "4c00ab");
    assert_string_equal(f[MC_QF_ACCOUNT], hostile_account);
    assert_string_equal(f[MC_QF_PROFILE], "");
    assert_string_equal(f[MC_QF_LINT_WARNINGS], "w_a,e_b");
    assert_string_equal(f[MC_QF_NOT_BEFORE], "2026-01-01T00:00:00Z");
    assert_string_equal(f[MC_QF_REASON], "keyCompromise");
    assert_string_equal(f[MC_QF_MAILBOXES], "a@b.example,c\"d@e.example");
    assert_string_equal(f[MC_QF_EVIDENCE], hostile_evidence);
    for (int i = 0; i < n; i++)
        free(f[i]);
    n = csv_record(&p, f, MC_QF_COUNT_ + 1);
    assert_int_equal(n, MC_QF_COUNT_);
    assert_string_equal(f[MC_QF_ACCOUNT], "plain");
    assert_string_equal(f[MC_QF_REVOKED_AT], "");
    for (int i = 0; i < n; i++)
        free(f[i]);
    assert_int_equal(csv_record(&p, f, MC_QF_COUNT_ + 1), -1);
    free(out);
    /* quoting only where needed: a plain field stays bare */
    out = write_rows(MC_QUERY_CSV, "order_id,account,status", r + 1, 1);
    assert_string_equal(out, "order_id,account,status\r\nord-1,plain,revoked\r\n");
    free(out);
}

static void test_fields_parse(void **state)
{
    (void)state;
    mc_query_fields fl;
    mc_errdetail err;
    assert_int_equal(mc_query_fields_parse(NULL, &fl, &err), MC_OK);
    assert_int_equal(fl.n, MC_QF_COUNT_);
    assert_int_equal(mc_query_fields_parse("evidence,serial", &fl, &err), MC_OK);
    assert_int_equal(fl.n, 2);
    assert_int_equal(fl.f[0], MC_QF_EVIDENCE);
    assert_int_equal(fl.f[1], MC_QF_SERIAL);
    const char *bad[] = {"", "serial,", "serial,,status", "serials", "serial,serial", "SERIAL"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mc_err_clear(&err);
        assert_int_equal(mc_query_fields_parse(bad[i], &fl, &err), MC_ERR_INVALID);
        assert_string_equal(err.field, "--fields");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sel_options_good),
        cmocka_unit_test(test_sel_options_bad),
        cmocka_unit_test(test_jsonl),
        cmocka_unit_test(test_csv),
        cmocka_unit_test(test_fields_parse),
    };
    return cmocka_run_group_tests_name("query", tests, NULL, NULL);
}
