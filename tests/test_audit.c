/*
 * The audit log's writers (include/mailca/audit.h): event details are valid JSON whatever the
 * bytes (quotes, control characters, bytes that are not UTF-8 -- which PostgreSQL would refuse
 * for the whole group of records), the actor names the user, and mc_audit_record writes one
 * event into a real SQLite store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mailca/audit.h"
#include "mailca/store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* 1 when SQLite's JSON1 takes text as a valid JSON object. */
static int json_valid(const char *text)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int ok = 0;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT json_valid(?1) AND json_type(?1) = 'object'", -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        ok = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return ok;
}

static void test_json_escaping(void **state)
{
    (void)state;
    mc_audit_json j;
    mc_audit_json_begin(&j);
    mc_audit_json_str(&j, "quote", "a\"b\\c");
    mc_audit_json_str(&j, "ctl", "line\nnext\x01\x7f");
    mc_audit_json_str(&j, "utf8", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92");
    /* not UTF-8: a lone continuation byte, a cut sequence, an overlong '/', a surrogate */
    mc_audit_json_str(&j, "bad", "x\x80y\xc3z\xc0\xafw\xed\xa0\x80v");
    mc_audit_json_str(&j, "none", NULL);
    mc_audit_json_int(&j, "n", -42);
    mc_audit_json_raw(&j, "obj", "{\"k\":1}");
    const char *t = mc_audit_json_end(&j);
    assert_non_null(t);
    assert_true(json_valid(t));
    assert_non_null(strstr(t, "\"quote\":\"a\\\"b\\\\c\""));
    assert_non_null(strstr(t, "\"ctl\":\"line\\u000anext\\u0001\\u007f\""));
    assert_non_null(strstr(t, "\"utf8\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92\""));
    assert_non_null(
        strstr(t, "\"bad\":\"x\\ufffdy\\ufffdz\\ufffd\\ufffdw\\ufffd\\ufffd\\ufffdv\""));
    assert_non_null(strstr(t, "\"none\":null"));
    assert_non_null(strstr(t, "\"n\":-42"));
    assert_non_null(strstr(t, "\"obj\":{\"k\":1}"));
    mc_audit_json_free(&j);
}

static void test_actor(void **state)
{
    (void)state;
    char buf[MC_AUDIT_ACTOR_MAX], want[64];
    snprintf(want, sizeof want, "(uid %u)", (unsigned)geteuid());
    unsetenv("SUDO_USER");
    mc_audit_actor(buf, sizeof buf);
    assert_int_equal(strncmp(buf, "user ", 5), 0);
    assert_non_null(strstr(buf, want));
    assert_null(strstr(buf, "sudo"));
    setenv("SUDO_USER", "alice", 1);
    mc_audit_actor(buf, sizeof buf);
    if (geteuid() == 0) /* sudo's user is named only for root, as sudo leaves it */
        assert_non_null(strstr(buf, "via sudo from alice"));
    else
        assert_null(strstr(buf, "sudo"));
    unsetenv("SUDO_USER");
}

static void test_record(void **state)
{
    (void)state;
    const char *tmp = getenv("MAILCA_TEST_TMP");
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/mc-audit-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/a.db", dir);
    mc_store *s = NULL;
    mc_errdetail err;
    assert_int_equal(mc_store_open(path, &s, &err), MC_OK);
    assert_int_equal(mc_audit_record(s, "revoke", "--account a", "{\"revoked\":1}", &err), MC_OK);
    assert_int_equal(mc_audit_record(s, "", NULL, NULL, &err), MC_ERR_INVALID);
    assert_string_equal(err.rule, "SBR 5.4.1");
    mc_store_close(s);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT count(*) FROM audit_log WHERE event = 'revoke'"
                                        " AND subject = '--account a' AND actor LIKE 'user %'"
                                        " AND json_extract(detail, '$.revoked') = 1",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 1);
    sqlite3_finalize(st);
    sqlite3_close(db);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_escaping),
        cmocka_unit_test(test_actor),
        cmocka_unit_test(test_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
