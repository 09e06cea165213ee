/*
 * Unit tests for mc_store, the whole suite run once per backend (the table `backends`):
 * - sqlite: a real SQLite file in a fresh temporary directory (under $MAILCA_TEST_TMP when set,
 *   else /tmp), removed after each test;
 * - postgresql (when the build has libpq): the server at $MAILCA_TEST_PG_URI, else a private
 *   server this test starts (support/pgserver.h) and stops at the end; each test gets a fresh
 *   schema (through the URI's search_path), dropped after it.
 * Some checks read the store through a separate raw connection, so they see what is really
 * stored. A benchmark test prints the per-certificate commit cost with batches of 256.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef MAILCA_HAVE_LIBPQ
#include <libpq-fe.h>
#endif

#include "mailca/revoke.h"
#include "mailca/audit.h"
#include "mailca/store.h"
#include "support/pgserver.h"
#include "support/storefix.h"

/* --- backends ----------------------------------------------------------------------------------
 */

/* What differs between the backends as seen from outside: where the store is, how to read it
 * raw, and how its catalog is asked. */
typedef struct backend {
    const char *name; /* mc_store_backend() */
    /* count of (intents, certificates, schema_version, ct_outbox, ct_scts, subject_keys,
     * compromised_keys) tables; of the two inventory indexes and the subject key index */
    const char *sql_tables, *sql_indexes;
    int tables; /* at the current version: SQLite folded subject_keys into intents (migration 7) */
    /* column counts of intents and certificates */
    const char *sql_cols_intents, *sql_cols_certs;
    int intents_columns;    /* PostgreSQL has seq, SQLite (migration 7) id */
    int intents_columns_v1; /* at version 1: PostgreSQL's seq, SQLite's implicit rowid */
    int certs_columns;      /* SQLite's are keyed by intent (migration 7) */
    const char *hex_fmt;    /* upper-case hex of a blob column */
} backend;

static const backend sqlite_backend = {
    .name = "sqlite",
    .sql_tables = "SELECT count(*) FROM sqlite_schema WHERE type = 'table'"
                  " AND name IN ('intents', 'certificates', 'schema_version', 'ct_outbox',"
                  " 'ct_scts', 'subject_keys', 'compromised_keys')",
    .sql_indexes = "SELECT count(*) FROM sqlite_schema WHERE type = 'index'"
                   " AND name IN ('intents_profile_not_before', 'intents_not_after',"
                   " 'intents_spki', 'intents_account')",
    .sql_cols_intents = "SELECT count(*) FROM pragma_table_info('intents')",
    .sql_cols_certs = "SELECT count(*) FROM pragma_table_info('certificates')",
    .tables = 6,
    .intents_columns = 20,
    .intents_columns_v1 = 16,
    .certs_columns = 9,
    .hex_fmt = "hex(%s)",
};

static const backend pg_backend = {
    .name = "postgresql",
    .sql_tables = "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
                  " AND tablename IN ('intents', 'certificates', 'schema_version', 'ct_outbox',"
                  " 'ct_scts', 'subject_keys', 'compromised_keys')",
    .sql_indexes = "SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema()"
                   " AND indexname IN ('intents_profile_not_before', 'intents_not_after',"
                   " 'intents_spki', 'intents_account')",
    .sql_cols_intents = "SELECT count(*) FROM information_schema.columns"
                        " WHERE table_schema = current_schema() AND table_name = 'intents'",
    .sql_cols_certs = "SELECT count(*) FROM information_schema.columns"
                      " WHERE table_schema = current_schema() AND table_name = 'certificates'",
    .tables = 7,
    .intents_columns = 20,
    .intents_columns_v1 = 17,
    .certs_columns = 8,
    .hex_fmt = "upper(encode(%s, 'hex'))",
};

typedef mc_sf fixture; /* tests/support/storefix.h */

/* The backend description of fx's store. */
static const backend *backend_of(const fixture *fx)
{
    return fx->pg ? &pg_backend : &sqlite_backend;
}

/* --- generated batches --------------------------------------------------------------------------
 */

#define SER_LEN 16
#define TBS_LEN 48
#define DER_LEN 80

typedef struct batch {
    size_t n;
    char (*order)[40];
    uint8_t (*serial)[SER_LEN];
    uint8_t (*tbs)[TBS_LEN];
    uint8_t (*der)[DER_LEN];
    uint8_t profile_hash[32];
    uint8_t tbs_hash[32];
    mc_intent *in;
    mc_stored_cert *cert;
    mc_intent_state *state;
} batch;

/* n intents and matching certificates; order ids "<prefix>-<k>" and serials derived from k, for
 * k = first .. first + n - 1, so two batches with the same k share order ids and serials. */
static void batch_make(batch *b, const char *prefix, uint32_t first, size_t n)
{
    memset(b, 0, sizeof *b);
    b->n = n;
    b->order = calloc(n, sizeof *b->order);
    b->serial = calloc(n, sizeof *b->serial);
    b->tbs = calloc(n, sizeof *b->tbs);
    b->der = calloc(n, sizeof *b->der);
    b->in = calloc(n, sizeof *b->in);
    b->cert = calloc(n, sizeof *b->cert);
    b->state = calloc(n, sizeof *b->state);
    assert_non_null(b->order);
    assert_non_null(b->serial);
    assert_non_null(b->tbs);
    assert_non_null(b->der);
    assert_non_null(b->in);
    assert_non_null(b->cert);
    assert_non_null(b->state);
    memset(b->profile_hash, 0xa5, sizeof b->profile_hash);
    memset(b->tbs_hash, 0x5a, sizeof b->tbs_hash);
    for (size_t i = 0; i < n; i++) {
        uint32_t k = first + (uint32_t)i;
        snprintf(b->order[i], sizeof b->order[i], "%s-%u", prefix, k);
        b->serial[i][0] = 0x4c; /* positive, non-zero first byte */
        b->serial[i][1] = (uint8_t)(k >> 24);
        b->serial[i][2] = (uint8_t)(k >> 16);
        b->serial[i][3] = (uint8_t)(k >> 8);
        b->serial[i][4] = (uint8_t)k;
        for (size_t j = 5; j < SER_LEN; j++)
            b->serial[i][j] = (uint8_t)(j * 7);
        for (size_t j = 0; j < TBS_LEN; j++)
            b->tbs[i][j] = (uint8_t)(k * 31 + j);
        for (size_t j = 0; j < DER_LEN; j++)
            b->der[i][j] = (uint8_t)(k * 17 + j * 3 + 1);
        b->in[i] = (mc_intent){
            .order_id = b->order[i],
            .account = "acct-1",
            .profile = "mailbox-strict",
            .profile_hash = b->profile_hash,
            .lint_version = "lints-3",
            .engine_version = "0.1.0",
            .serial = b->serial[i],
            .serial_len = SER_LEN,
            .tbs = b->tbs[i],
            .tbs_len = TBS_LEN,
            .tbs_hash = b->tbs_hash,
            .not_before = 1750000000 + (int64_t)k,
            .not_after = 1750000000 + (int64_t)k + 86400,
            .mailboxes = "a@example.com,b@example.com",
            .evidence = "{\"method\":\"3.2.2.1\"}",
            .lint_warnings = "",
            .replaces = NULL,
            .lint_enforced = "lints-2",
        };
        b->cert[i] = (mc_stored_cert){
            .order_id = b->order[i],
            .serial = b->serial[i],
            .serial_len = SER_LEN,
            .der = b->der[i],
            .der_len = DER_LEN,
        };
        b->state[i] = (mc_intent_state)-1;
    }
}

static void batch_free(batch *b)
{
    free(b->order);
    free(b->serial);
    free(b->tbs);
    free(b->der);
    free(b->in);
    free(b->cert);
    free(b->state);
}

static mc_store *open_ok(const char *path)
{
    mc_store *s = NULL;
    mc_errdetail err;
    mc_err_clear(&err);
    mc_err rc = mc_store_open(path, &s, &err);
    if (rc != MC_OK)
        print_error("mc_store_open: %s\n", err.message);
    assert_int_equal(rc, MC_OK);
    assert_non_null(s);
    return s;
}

static void expect_counts(mc_store *s, int64_t certs, int64_t pending)
{
    int64_t c = -1, p = -1;
    mc_errdetail err;
    assert_int_equal(mc_store_counts(s, &c, &p, &err), MC_OK);
    assert_int_equal(c, certs);
    assert_int_equal(p, pending);
}

/* Looks order_id up and compares with the expected serial / tbs / der of der_len bytes (der
 * NULL: none yet). */
static void expect_lookup_len(mc_store *s, const char *order_id, const uint8_t *serial,
                              const uint8_t *tbs, const uint8_t *der, size_t der_len)
{
    int found = -1;
    uint8_t *ser = NULL, *t = NULL, *d = NULL;
    size_t ser_len = 99, t_len = 99, d_len = 99;
    mc_errdetail err;
    assert_int_equal(
        mc_store_lookup(s, order_id, &found, &ser, &ser_len, &t, &t_len, &d, &d_len, &err), MC_OK);
    if (!serial) {
        assert_int_equal(found, 0);
        assert_null(ser);
        assert_null(t);
        assert_null(d);
        assert_int_equal(ser_len, 0);
        assert_int_equal(t_len, 0);
        assert_int_equal(d_len, 0);
        return;
    }
    assert_int_equal(found, 1);
    assert_int_equal(ser_len, SER_LEN);
    assert_memory_equal(ser, serial, SER_LEN);
    assert_int_equal(t_len, TBS_LEN);
    assert_memory_equal(t, tbs, TBS_LEN);
    if (der) {
        assert_int_equal(d_len, der_len);
        assert_memory_equal(d, der, der_len);
    } else {
        assert_null(d);
        assert_int_equal(d_len, 0);
    }
    free(ser);
    free(t);
    free(d);
}

static void expect_lookup(mc_store *s, const char *order_id, const uint8_t *serial,
                          const uint8_t *tbs, const uint8_t *der)
{
    expect_lookup_len(s, order_id, serial, tbs, der, DER_LEN);
}

/* --- tests
 * ---------------------------------------------------------------------------------------- */

static void test_open_migrate_idempotent(void **state)
{
    fixture *fx = *state;
    mc_store *s = open_ok(fx->where);
    mc_store_close(s);
    s = open_ok(fx->where); /* second open: nothing to migrate */
    expect_counts(s, 0, 0);
    mc_store_close(s);
    assert_int_equal(mc_sf_raw_int(fx, "SELECT count(*) FROM schema_version"), 11);
    assert_int_equal(mc_sf_raw_int(fx, "SELECT max(version) FROM schema_version"), 11);
    assert_int_equal(mc_store_schema_version(), 11);
    assert_int_equal(MC_STORE_SCHEMA_VERSION, 11);
    /* WAL is a property of the file, seen by any connection. */
    if (!fx->pg)
        assert_int_equal(mc_sf_raw_int(fx, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"),
                         1);
    assert_int_equal(mc_sf_raw_int(fx, backend_of(fx)->sql_tables), backend_of(fx)->tables);
    assert_int_equal(mc_sf_raw_int(fx, backend_of(fx)->sql_indexes), 4);
    /* the provenance columns of mc_intent, plus the certificate's revocation state */
    assert_int_equal(mc_sf_raw_int(fx, backend_of(fx)->sql_cols_intents),
                     backend_of(fx)->intents_columns);
    assert_int_equal(mc_sf_raw_int(fx, backend_of(fx)->sql_cols_certs),
                     backend_of(fx)->certs_columns);
    s = open_ok(fx->where);
    assert_string_equal(mc_store_backend(s), backend_of(fx)->name);
    mc_store_close(s);
}

/* mc_store_migrate (the work of `mailca store migrate`): creates the schema, is a no-op the
 * second time, refuses a newer store. */
static void test_migrate(void **state)
{
    fixture *fx = *state;
    mc_errdetail err;
    mc_err_clear(&err);
    assert_int_equal(mc_store_migrate(fx->where, &err), MC_OK);
    assert_int_equal(mc_sf_raw_int(fx, "SELECT max(version) FROM schema_version"),
                     mc_store_schema_version());
    assert_int_equal(mc_sf_raw_int(fx, backend_of(fx)->sql_tables), backend_of(fx)->tables);
    assert_int_equal(mc_store_migrate(fx->where, &err), MC_OK);
    assert_int_equal(mc_sf_raw_int(fx, "SELECT count(*) FROM schema_version"), 11);
    mc_sf_raw_exec(fx, "INSERT INTO schema_version (version, applied_at) VALUES (12, 0)");
    assert_int_equal(mc_store_migrate(fx->where, &err), MC_ERR_STORE);
    assert_string_equal(err.field, "schema_version");
    assert_non_null(strstr(err.message, "schema version 12 is newer"));
    /* the refusal wrote nothing */
    assert_int_equal(mc_sf_raw_int(fx, "SELECT count(*) FROM schema_version"), 12);
}

static void test_newer_schema_refused(void **state)
{
    fixture *fx = *state;
    mc_store_close(open_ok(fx->where));
    char sql[96], want[48];
    snprintf(sql, sizeof sql, "INSERT INTO schema_version (version, applied_at) VALUES (%d, 0)",
             MC_STORE_SCHEMA_VERSION + 1);
    snprintf(want, sizeof want, "schema version %d is newer", MC_STORE_SCHEMA_VERSION + 1);
    mc_sf_raw_exec(fx, sql);
    mc_store *s = NULL;
    mc_errdetail err;
    mc_err_clear(&err);
    assert_int_equal(mc_store_open(fx->where, &s, &err), MC_ERR_STORE);
    assert_null(s);
    assert_non_null(strstr(err.message, want));
}

static void test_open_bad_path(void **state)
{
    fixture *fx = *state;
    if (fx->pg) {
        /* nothing listens on port 1; the message names the server, never the password */
        mc_store *s = NULL;
        mc_errdetail err;
        mc_err_clear(&err);
        assert_int_equal(mc_store_open("postgresql://mailca:s3cret-pw@127.0.0.1:1/nodb", &s, &err),
                         MC_ERR_STORE);
        assert_null(s);
        assert_non_null(strstr(err.message, "host '127.0.0.1' port '1' database 'nodb'"));
        assert_non_null(strstr(err.message, "refused"));
        assert_null(strstr(err.message, "s3cret"));
        return;
    }
    char p[700];
    snprintf(p, sizeof p, "%s/no-such-dir/store.db", fx->dir);
    mc_store *s = NULL;
    mc_errdetail err;
    mc_err_clear(&err);
    assert_int_equal(mc_store_open(p, &s, &err), MC_ERR_STORE);
    assert_null(s);
    assert_non_null(strstr(err.message, "no-such-dir"));
    assert_non_null(strstr(err.message, "unable to open"));
}

static void test_batch_1000_roundtrip(void **state)
{
    fixture *fx = *state;
    mc_store *s = open_ok(fx->where);
    batch b;
    batch_make(&b, "ord", 0, 1000);
    b.in[8].lint_enforced = NULL; /* lint off: no set enforced */
    mc_errdetail err;
    assert_int_equal(mc_store_intents_commit(s, b.in, b.n, b.state, &err), MC_OK);
    for (size_t i = 0; i < b.n; i++)
        assert_int_equal(b.state[i], MC_INTENT_NEW);
    expect_counts(s, 0, 1000);
    expect_lookup(s, b.order[0], b.serial[0], b.tbs[0], NULL);
    expect_lookup(s, b.order[999], b.serial[999], b.tbs[999], NULL);

    assert_int_equal(mc_store_certs_commit(s, b.cert, b.n, &err), MC_OK);
    expect_counts(s, 1000, 0);
    for (size_t i = 0; i < b.n; i++)
        expect_lookup(s, b.order[i], b.serial[i], b.tbs[i], b.der[i]);
    expect_lookup(s, "ord-1000", NULL, NULL, NULL);

    /* provenance is on disk as given */
    char hexcol[64], sql[1024];
    snprintf(hexcol, sizeof hexcol, backend_of(fx)->hex_fmt, "profile_hash");
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM intents WHERE order_id = 'ord-7'"
             " AND account = 'acct-1' AND profile = 'mailbox-strict'"
             " AND lint_version = 'lints-3' AND engine_version = '0.1.0'"
             " AND not_before = 1750000007 AND not_after = 1750086407"
             " AND mailboxes = 'a@example.com,b@example.com'"
             " AND evidence = '{\"method\":\"3.2.2.1\"}'"
             " AND lint_warnings = '' AND replaces IS NULL AND lint_enforced = 'lints-2'"
             " AND length(profile_hash) = 32 AND length(tbs_hash) = 32"
             " AND %s = 'A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5'"
             " AND created_at > 0",
             hexcol);
    assert_int_equal(mc_sf_raw_int(fx, sql), 1);
    assert_int_equal(mc_sf_raw_int(fx, "SELECT count(*) FROM intents WHERE lint_enforced IS NULL"
                                       " AND order_id = 'ord-8'"),
                     1);
    assert_int_equal(
        mc_sf_raw_int(fx, "SELECT count(*) FROM intents WHERE lint_enforced = 'lints-2'"), 999);
    assert_int_equal(mc_sf_raw_int(fx, "SELECT count(*) FROM certificates"
                                       " WHERE status = 'issued' AND issued_at > 0"),
                     1000);
    /* the inventory query uses the index */
    assert_int_equal(mc_sf_raw_int(fx, "SELECT count(*) FROM intents WHERE profile ="
                                       " 'mailbox-strict' AND not_before BETWEEN 1750000100 AND"
                                       " 1750000199"),
                     100);
    mc_store_close(s);
    batch_free(&b);
}

static void test_duplicate_across_batches(void **state)
{
    fixture *fx = *state;
    mc_store *s = open_ok(fx->where);
    mc_errdetail err;
    batch a, b;
    batch_make(&a, "dup", 0, 4);
    assert_int_equal(mc_store_intents_commit(s, a.in, 4, a.state, &err), MC_OK);
    assert_int_equal(mc_store_certs_commit(s, a.cert, 2, &err), MC_OK);
    expect_counts(s, 2, 2);

    /* the same 4 order ids again with fresh serials and TBS (a client retry), plus one new */
    batch_make(&b, "dup", 100, 5);
    for (size_t i = 0; i < 4; i++)
        b.in[i].order_id = a.order[i];
    assert_int_equal(mc_store_intents_commit(s, b.in, 5, b.state, &err), MC_OK);
    assert_int_equal(b.state[0], MC_INTENT_ISSUED);
    assert_int_equal(b.state[1], MC_INTENT_ISSUED);
    assert_int_equal(b.state[2], MC_INTENT_PENDING);
    assert_int_equal(b.state[3], MC_INTENT_PENDING);
    assert_int_equal(b.state[4], MC_INTENT_NEW);
    expect_counts(s, 2, 3);
    /* nothing was written for the known ids: their first serial, TBS and certificate stand */
    expect_lookup(s, a.order[0], a.serial[0], a.tbs[0], a.der[0]);
    expect_lookup(s, a.order[2], a.serial[2], a.tbs[2], NULL);
    expect_lookup(s, b.order[4], b.serial[4], b.tbs[4], NULL);
    assert_int_equal(mc_sf_raw_int(fx, "SELECT count(*) FROM intents"), 5);
    mc_store_close(s);
    batch_free(&a);
    batch_free(&b);
}

static void test_duplicate_within_batch(void **state)
{
    fixture *fx = *state;
    mc_store *s = open_ok(fx->where);
    mc_errdetail err;
    batch b;
    batch_make(&b, "in", 0, 4);
    b.in[2].order_id = b.order[0]; /* same id, different serial */
    b.in[3] = b.in[1];             /* exact repeat, same serial */
    assert_int_equal(mc_store_intents_commit(s, b.in, 4, b.state, &err), MC_OK);
    assert_int_equal(b.state[0], MC_INTENT_NEW);
    assert_int_equal(b.state[1], MC_INTENT_NEW);
    assert_int_equal(b.state[2], MC_INTENT_PENDING);
    assert_int_equal(b.state[3], MC_INTENT_PENDING);
    expect_counts(s, 0, 2);
    expect_lookup(s, b.order[0], b.serial[0], b.tbs[0], NULL);
    expect_lookup(s, b.order[2], NULL, NULL, NULL);
    mc_store_close(s);
    batch_free(&b);
}

static void test_serial_collision_rolls_back(void **state)
{
    fixture *fx = *state;
    mc_store *s = open_ok(fx->where);
    mc_errdetail err;
    batch a, b, c;
    batch_make(&a, "first", 0, 3);
    assert_int_equal(mc_store_intents_commit(s, a.in, 3, a.state, &err), MC_OK);
    expect_counts(s, 0, 3);

    /* the last of 5 new orders reuses the serial of first-1 */
    batch_make(&b, "second", 10, 5);
    b.in[4].serial = a.serial[1];
    mc_err_clear(&err);
    assert_int_equal(mc_store_intents_commit(s, b.in, 5, b.state, &err), MC_ERR_STORE);
    assert_int_equal(err.code, MC_ERR_STORE);
    assert_string_equal(err.field, "intents[4].serial");
    assert_non_null(strstr(err.message, "4c00000001232a31383f464d545b6269"));
    assert_non_null(strstr(err.message, "'first-1'"));
    assert_non_null(strstr(err.message, "'second-14'"));
    expect_counts(s, 0, 3);
    for (size_t i = 0; i < 5; i++)
        expect_lookup(s, b.order[i], NULL, NULL, NULL);

    /* a collision inside the batch itself */
    batch_make(&c, "third", 20, 3);
    c.in[2].serial = c.serial[0];
    assert_int_equal(mc_store_intents_commit(s, c.in, 3, c.state, &err), MC_ERR_STORE);
    assert_non_null(strstr(err.message, "'third-20'"));
    expect_counts(s, 0, 3);
    expect_lookup(s, c.order[0], NULL, NULL, NULL);

    /* the handle is usable after the rollback: the corrected batch goes in */
    b.in[4].serial = b.serial[4];
    assert_int_equal(mc_store_intents_commit(s, b.in, 5, b.state, &err), MC_OK);
    expect_counts(s, 0, 8);

    /* a large batch (several pipeline chunks for PostgreSQL) whose row 300 reuses the serial
     * of its row 10: nothing of it stays, the message names both orders */
    batch d;
    batch_make(&d, "big", 1000, 400);
    d.in[300].serial = d.serial[10];
    mc_err_clear(&err);
    assert_int_equal(mc_store_intents_commit(s, d.in, 400, d.state, &err), MC_ERR_STORE);
    assert_string_equal(err.field, "intents[300].serial");
    assert_non_null(strstr(err.message, "'big-1300'"));
    assert_non_null(strstr(err.message, "'big-1010'"));
    expect_counts(s, 0, 8);
    expect_lookup(s, d.order[10], NULL, NULL, NULL);
    expect_lookup(s, d.order[399], NULL, NULL, NULL);
    d.in[300].serial = d.serial[300];
    assert_int_equal(mc_store_intents_commit(s, d.in, 400, d.state, &err), MC_OK);
    expect_counts(s, 0, 408);
    mc_store_close(s);
    batch_free(&a);
    batch_free(&b);
    batch_free(&c);
    batch_free(&d);
}

static void test_certs_must_match_intent(void **state)
{
    fixture *fx = *state;
    mc_store *s = open_ok(fx->where);
    mc_errdetail err;
    batch a, ghost;
    batch_make(&a, "cert", 0, 2);
    batch_make(&ghost, "ghost", 50, 1);
    assert_int_equal(mc_store_intents_commit(s, a.in, 2, a.state, &err), MC_OK);

    /* a valid certificate followed by one without an intent: neither is written */
    mc_stored_cert v[2] = {a.cert[0], ghost.cert[0]};
    mc_err_clear(&err);
    assert_int_equal(mc_store_certs_commit(s, v, 2, &err), MC_ERR_STORE);
    assert_string_equal(err.field, "certs[1]");
    assert_non_null(strstr(err.message, "no intent recorded for order 'ghost-50'"));
    expect_counts(s, 0, 2);
    expect_lookup(s, a.order[0], a.serial[0], a.tbs[0], NULL);

    /* right order id, another order's serial */
    mc_stored_cert wrong = a.cert[1];
    wrong.serial = a.serial[0];
    assert_int_equal(mc_store_certs_commit(s, &wrong, 1, &err), MC_ERR_STORE);
    assert_non_null(strstr(err.message, "order 'cert-1'"));
    assert_non_null(strstr(err.message, "does not match"));
    expect_counts(s, 0, 2);

    /* identical re-commit is idempotent, including a repeat within one batch */
    assert_int_equal(mc_store_certs_commit(s, a.cert, 2, &err), MC_OK);
    mc_stored_cert again[3] = {a.cert[0], a.cert[1], a.cert[1]};
    assert_int_equal(mc_store_certs_commit(s, again, 3, &err), MC_OK);
    expect_counts(s, 2, 0);

    /* a different DER for a serial that has one is refused, the first one stays */
    uint8_t other[DER_LEN];
    memcpy(other, a.der[0], DER_LEN);
    other[DER_LEN - 1] ^= 1;
    mc_stored_cert changed = a.cert[0];
    changed.der = other;
    assert_int_equal(mc_store_certs_commit(s, &changed, 1, &err), MC_ERR_STORE);
    assert_non_null(strstr(err.message, "already has a different certificate"));
    assert_non_null(strstr(err.message, "'cert-0'"));
    expect_lookup(s, a.order[0], a.serial[0], a.tbs[0], a.der[0]);
    expect_counts(s, 2, 0);
    mc_store_close(s);
    batch_free(&a);
    batch_free(&ghost);
}

/* A minimal Certificate: SEQUENCE { TBS SEQUENCE { INTEGER t t }, SEQUENCE {}, BIT STRING s s }. */
#define MINI_CERT_LEN 15
static void mini_cert(uint8_t out[MINI_CERT_LEN], uint8_t t, uint8_t s)
{
    const uint8_t c[MINI_CERT_LEN] = {0x30, 0x0d, 0x30, 0x04, 0x02, 0x02, t, t,
                                      0x30, 0x00, 0x03, 0x03, 0x00, s,    s};
    memcpy(out, c, sizeof c);
}

/* Two engines on one store can both take up a pending intent and re-sign its recorded TBS:
 * another signature over the same TBSCertificate is no error, the first certificate stored
 * stands and the row is flagged resigned (the order is answered with the stored one); a
 * different TBSCertificate for the serial is still refused, and nothing of that batch is
 * written. mc_store_same_tbs compares the TBSCertificate TLVs only. */
static void test_certs_resigned(void **state)
{
    fixture *fx = *state;
    mc_store *s = open_ok(fx->where);
    mc_errdetail err;
    batch b;
    batch_make(&b, "rs", 0, 4);
    assert_int_equal(mc_store_intents_commit(s, b.in, 4, b.state, &err), MC_OK);
    uint8_t a0[MINI_CERT_LEN], a0b[MINI_CERT_LEN], a0x[MINI_CERT_LEN], b1[MINI_CERT_LEN],
        c2[MINI_CERT_LEN], d3[MINI_CERT_LEN];
    mini_cert(a0, 0x10, 0x01);
    mini_cert(a0b, 0x10, 0x02); /* same TBS, another signature */
    mini_cert(a0x, 0x13, 0x01); /* another TBS under order 0's serial */
    mini_cert(b1, 0x11, 0x01);
    mini_cert(c2, 0x12, 0x01);
    mini_cert(d3, 0x14, 0x01);
    assert_int_equal(mc_store_same_tbs(a0, sizeof a0, a0b, sizeof a0b), 1);
    assert_int_equal(mc_store_same_tbs(a0, sizeof a0, a0x, sizeof a0x), 0);
    assert_int_equal(mc_store_same_tbs(a0, sizeof a0, b.der[0], DER_LEN), 0); /* not DER */
    int flag[2] = {7, 7};
    mc_stored_cert v[2] = {b.cert[0], b.cert[1]};
    for (size_t i = 0; i < 2; i++) {
        v[i].der_len = MINI_CERT_LEN;
        v[i].resigned = &flag[i];
    }
    v[0].der = a0;
    assert_int_equal(mc_store_certs_commit(s, v, 1, &err), MC_OK);
    assert_int_equal(flag[0], 0);

    v[0].der = a0b;
    v[1].der = b1;
    assert_int_equal(mc_store_certs_commit(s, v, 2, &err), MC_OK);
    assert_int_equal(flag[0], 1);
    assert_int_equal(flag[1], 0);
    expect_lookup_len(s, b.order[0], b.serial[0], b.tbs[0], a0,
                      sizeof a0); /* the first one stands */
    expect_lookup_len(s, b.order[1], b.serial[1], b.tbs[1], b1, sizeof b1);
    v[0].resigned = NULL; /* the flag is optional */
    assert_int_equal(mc_store_certs_commit(s, v, 1, &err), MC_OK);

    /* with CT submissions: the re-signed row's chain (a certificate no record holds) is not
     * queued, the new certificate's is */
    uint8_t log_id[MC_CT_LOG_ID_LEN];
    memset(log_id, 0x4c, sizeof log_id);
    mc_stored_cert u[2] = {v[0], b.cert[2]};
    u[1].der = c2;
    u[1].der_len = sizeof c2;
    mc_ct_entry ct[2] = {{.serial = b.serial[0],
                          .serial_len = SER_LEN,
                          .log_id = log_id,
                          .chain = a0b,
                          .chain_len = sizeof a0b,
                          .due_ms = 1},
                         {.serial = b.serial[2],
                          .serial_len = SER_LEN,
                          .log_id = log_id,
                          .chain = c2,
                          .chain_len = sizeof c2,
                          .due_ms = 1}};
    assert_int_equal(mc_store_certs_commit_ct(s, u, 2, ct, 2, &err), MC_OK);
    mc_ct_job *jobs = NULL;
    size_t nj = 0;
    assert_int_equal(mc_store_ct_claim(s, 10, 20, 10, &jobs, &nj, &err), MC_OK);
    assert_int_equal(nj, 1);
    assert_memory_equal(jobs[0].serial, b.serial[2], SER_LEN);
    assert_int_equal(jobs[0].chain_len, sizeof c2);
    assert_memory_equal(jobs[0].chain, c2, sizeof c2);
    mc_store_ct_jobs_free(jobs, nj);
    expect_lookup_len(s, b.order[2], b.serial[2], b.tbs[2], c2, sizeof c2);

    mc_stored_cert w[2] = {b.cert[3], v[0]};
    w[0].der = d3;
    w[0].der_len = sizeof d3;
    w[1].der = a0x;
    assert_int_equal(mc_store_certs_commit(s, w, 2, &err), MC_ERR_STORE);
    assert_non_null(strstr(err.message, "already has a different certificate"));
    expect_lookup_len(s, b.order[0], b.serial[0], b.tbs[0], a0, sizeof a0);
    expect_lookup_len(s, b.order[3], b.serial[3], b.tbs[3], NULL,
                      0); /* the batch was rolled back */
    expect_counts(s, 3, 1);
    mc_store_close(s);
    batch_free(&b);
}

static void test_invalid_input(void **state)
{
    fixture *fx = *state;
    mc_store *s = open_ok(fx->where);
    mc_errdetail err;
    batch b;
    batch_make(&b, "bad", 0, 3);

    b.in[1].serial_len = 0;
    assert_int_equal(mc_store_intents_commit(s, b.in, 3, b.state, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "intents[1].serial");
    b.in[1].serial_len = MC_SERIAL_MAX + 1;
    assert_int_equal(mc_store_intents_commit(s, b.in, 3, b.state, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "intents[1].serial");
    b.in[1].serial_len = SER_LEN;
    b.in[2].tbs = NULL;
    assert_int_equal(mc_store_intents_commit(s, b.in, 3, b.state, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "intents[2].tbs");
    b.in[2].tbs = b.tbs[2];
    b.in[0].order_id = NULL;
    assert_int_equal(mc_store_intents_commit(s, b.in, 3, b.state, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "intents[0].order_id");
    b.in[0].order_id = b.order[0];
    b.in[0].tbs_hash = NULL;
    assert_int_equal(mc_store_intents_commit(s, b.in, 3, b.state, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "intents[0].tbs_hash");
    b.in[0].tbs_hash = b.tbs_hash;
    expect_counts(s, 0, 0);

    b.cert[0].der_len = 0;
    assert_int_equal(mc_store_certs_commit(s, b.cert, 1, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "certs[0].der");
    b.cert[0].der_len = DER_LEN;

    /* a 20-byte serial (the maximum) is accepted */
    uint8_t ser20[MC_SERIAL_MAX];
    memset(ser20, 0x33, sizeof ser20);
    b.in[0].serial = ser20;
    b.in[0].serial_len = sizeof ser20;
    assert_int_equal(mc_store_intents_commit(s, b.in, 3, b.state, &err), MC_OK);
    expect_counts(s, 0, 3);
    mc_store_close(s);
    batch_free(&b);
}

typedef struct seen {
    size_t n;
    char order[16][40];
    uint8_t serial[16][SER_LEN];
    uint8_t tbs[16][TBS_LEN];
    size_t bad_len;
} seen;

static void collect(void *arg, const char *order_id, const uint8_t *serial, size_t serial_len,
                    const uint8_t *tbs, size_t tbs_len)
{
    seen *w = arg;
    if (w->n >= 16 || serial_len != SER_LEN || tbs_len != TBS_LEN) {
        w->bad_len++;
        return;
    }
    snprintf(w->order[w->n], sizeof w->order[w->n], "%s", order_id);
    memcpy(w->serial[w->n], serial, SER_LEN);
    memcpy(w->tbs[w->n], tbs, TBS_LEN);
    w->n++;
}

static void test_pending_listing(void **state)
{
    fixture *fx = *state;
    mc_store *s = open_ok(fx->where);
    mc_errdetail err;
    batch b;
    batch_make(&b, "pend", 0, 10);
    seen w = {0};
    assert_int_equal(mc_store_pending(s, collect, &w, &err), MC_OK);
    assert_int_equal(w.n, 0);

    assert_int_equal(mc_store_intents_commit(s, b.in, 10, b.state, &err), MC_OK);
    mc_stored_cert even[5];
    for (size_t i = 0; i < 5; i++)
        even[i] = b.cert[2 * i];
    assert_int_equal(mc_store_certs_commit(s, even, 5, &err), MC_OK);
    expect_counts(s, 5, 5);

    assert_int_equal(mc_store_pending(s, collect, &w, &err), MC_OK);
    assert_int_equal(w.bad_len, 0);
    assert_int_equal(w.n, 5);
    for (size_t j = 0; j < 5; j++) {
        size_t i = 2 * j + 1; /* the odd ones, in the order they were recorded */
        assert_string_equal(w.order[j], b.order[i]);
        assert_memory_equal(w.serial[j], b.serial[i], SER_LEN);
        assert_memory_equal(w.tbs[j], b.tbs[i], TBS_LEN);
    }

    /* reconciled: certificates for the rest leave nothing pending */
    mc_stored_cert odd[5];
    for (size_t i = 0; i < 5; i++)
        odd[i] = b.cert[2 * i + 1];
    assert_int_equal(mc_store_certs_commit(s, odd, 5, &err), MC_OK);
    memset(&w, 0, sizeof w);
    assert_int_equal(mc_store_pending(s, collect, &w, &err), MC_OK);
    assert_int_equal(w.n, 0);
    expect_counts(s, 10, 0);
    mc_store_close(s);
    batch_free(&b);
}

static void test_second_handle_sees_commits(void **state)
{
    fixture *fx = *state;
    mc_store *s1 = open_ok(fx->where);
    mc_store *s2 = open_ok(fx->where);
    mc_errdetail err;
    batch b;
    batch_make(&b, "two", 0, 6);

    assert_int_equal(mc_store_intents_commit(s1, b.in, 6, b.state, &err), MC_OK);
    expect_counts(s2, 0, 6);
    expect_lookup(s2, b.order[3], b.serial[3], b.tbs[3], NULL);

    /* the other connection writes the certificates of the first 3 */
    assert_int_equal(mc_store_certs_commit(s2, b.cert, 3, &err), MC_OK);
    expect_counts(s1, 3, 3);
    expect_lookup(s1, b.order[0], b.serial[0], b.tbs[0], b.der[0]);

    /* idempotency holds across connections */
    mc_intent_state st[6];
    assert_int_equal(mc_store_intents_commit(s2, b.in, 6, st, &err), MC_OK);
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(st[i], i < 3 ? MC_INTENT_ISSUED : MC_INTENT_PENDING);
    mc_store_close(s1);
    mc_store_close(s2);
    batch_free(&b);
}

static void test_reopen_keeps_data(void **state)
{
    fixture *fx = *state;
    mc_store *s = open_ok(fx->where);
    mc_errdetail err;
    batch b;
    batch_make(&b, "keep", 0, 20);
    assert_int_equal(mc_store_intents_commit(s, b.in, 20, b.state, &err), MC_OK);
    assert_int_equal(mc_store_certs_commit(s, b.cert, 12, &err), MC_OK);
    mc_store_close(s);

    s = open_ok(fx->where);
    expect_counts(s, 12, 8);
    expect_lookup(s, b.order[11], b.serial[11], b.tbs[11], b.der[11]);
    expect_lookup(s, b.order[12], b.serial[12], b.tbs[12], NULL);
    assert_int_equal(mc_sf_raw_int(fx, "SELECT count(*) FROM schema_version"),
                     MC_STORE_SCHEMA_VERSION);
    mc_store_close(s);
    batch_free(&b);
}

static void test_lookup_partial_outputs(void **state)
{
    fixture *fx = *state;
    mc_store *s = open_ok(fx->where);
    mc_errdetail err;
    batch b;
    batch_make(&b, "part", 0, 1);
    assert_int_equal(mc_store_intents_commit(s, b.in, 1, b.state, &err), MC_OK);
    assert_int_equal(mc_store_certs_commit(s, b.cert, 1, &err), MC_OK);
    int found = 0;
    uint8_t *der = NULL;
    size_t der_len = 0;
    assert_int_equal(
        mc_store_lookup(s, b.order[0], &found, NULL, NULL, NULL, NULL, &der, &der_len, &err),
        MC_OK);
    assert_int_equal(found, 1);
    assert_int_equal(der_len, DER_LEN);
    assert_memory_equal(der, b.der[0], DER_LEN);
    free(der);
    mc_store_close(s);
    batch_free(&b);
}

/* --- several writers --------------------------------------------------------------------------
 * Two engine nodes (threads with their own handles) commit the same 240 order ids, each with its
 * own serials, in batches of 40, then the certificates of what they recorded. Every order is
 * recorded by exactly one of them; the other is told ISSUED or PENDING. A batch that fails on
 * contention (SQLite busy, PostgreSQL deadlock) is retried, as the collector does.
 */

#define W_ORDERS 240
#define W_BATCH 40

typedef struct writer {
    const char *where;
    uint32_t serial_base;
    batch b;
    mc_intent_state state[W_ORDERS];
    int ok;
} writer;

static void *writer_run(void *arg)
{
    writer *w = arg;
    mc_store *s = NULL;
    mc_errdetail err;
    if (mc_store_open(w->where, &s, &err) != MC_OK)
        return NULL;
    for (size_t off = 0; off < W_ORDERS; off += W_BATCH) {
        mc_err rc = MC_ERR_STORE;
        for (int attempt = 0; attempt < 20 && rc == MC_ERR_STORE; attempt++)
            rc = mc_store_intents_commit(s, w->b.in + off, W_BATCH, w->state + off, &err);
        if (rc != MC_OK)
            goto done;
        mc_stored_cert mine[W_BATCH];
        size_t k = 0;
        for (size_t i = off; i < off + W_BATCH; i++)
            if (w->state[i] == MC_INTENT_NEW)
                mine[k++] = w->b.cert[i];
        rc = k ? MC_ERR_STORE : MC_OK;
        for (int attempt = 0; attempt < 20 && rc == MC_ERR_STORE; attempt++)
            rc = mc_store_certs_commit(s, mine, k, &err);
        if (rc != MC_OK)
            goto done;
    }
    w->ok = 1;
done:
    if (!w->ok)
        fprintf(stderr, "writer: %s\n", err.message);
    mc_store_close(s);
    return NULL;
}

static void test_two_writers(void **state)
{
    fixture *fx = *state;
    mc_store_close(open_ok(fx->where)); /* schema first: both writers then only write rows */
    writer w[2];
    pthread_t t[2];
    memset(w, 0, sizeof w);
    for (int k = 0; k < 2; k++) {
        w[k].where = fx->where;
        /* same order ids, distinct serials: a serial carries k in batch_make's numbering */
        batch_make(&w[k].b, "w", 0, W_ORDERS);
        for (size_t i = 0; i < W_ORDERS; i++) {
            w[k].b.serial[i][5] = (uint8_t)(0x10 + k);
            w[k].b.der[i][0] = (uint8_t)(0x20 + k);
        }
        assert_int_equal(pthread_create(&t[k], NULL, writer_run, &w[k]), 0);
    }
    for (int k = 0; k < 2; k++)
        assert_int_equal(pthread_join(t[k], NULL), 0);
    assert_true(w[0].ok);
    assert_true(w[1].ok);
    mc_store *s = open_ok(fx->where);
    expect_counts(s, W_ORDERS, 0);
    for (size_t i = 0; i < W_ORDERS; i++) {
        int n_new = (w[0].state[i] == MC_INTENT_NEW) + (w[1].state[i] == MC_INTENT_NEW);
        assert_int_equal(n_new, 1);
        const writer *owner = w[0].state[i] == MC_INTENT_NEW ? &w[0] : &w[1];
        expect_lookup(s, owner->b.order[i], owner->b.serial[i], owner->b.tbs[i], owner->b.der[i]);
    }
    mc_store_close(s);
    batch_free(&w[0].b);
    batch_free(&w[1].b);
}

/* --- benchmark --------------------------------------------------------------------------------
 * Per-certificate commit cost with batches of 256 and realistic sizes (TBS 1000 bytes,
 * certificate 1200 bytes): intents commit + certificates commit, as the collector does.
 */

#define BENCH_BATCH 256
#define BENCH_BATCHES 8

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void test_bench_batch_256(void **state)
{
    fixture *fx = *state;
    mc_store *s = open_ok(fx->where);
    mc_errdetail err;
    const size_t n = (size_t)BENCH_BATCH * BENCH_BATCHES;
    batch b;
    batch_make(&b, "bench", 0, n);
    uint8_t *tbs = malloc(n * 1000), *der = malloc(n * 1200);
    assert_non_null(tbs);
    assert_non_null(der);
    for (size_t i = 0; i < n; i++) {
        memset(tbs + i * 1000, (int)(i & 0xff), 1000);
        memset(der + i * 1200, (int)((i * 7) & 0xff), 1200);
        b.in[i].tbs = tbs + i * 1000;
        b.in[i].tbs_len = 1000;
        b.cert[i].der = der + i * 1200;
        b.cert[i].der_len = 1200;
    }
    double t_int = 0, t_cert = 0;
    for (size_t off = 0; off < n; off += BENCH_BATCH) {
        double t0 = now_us();
        assert_int_equal(mc_store_intents_commit(s, b.in + off, BENCH_BATCH, b.state + off, &err),
                         MC_OK);
        double t1 = now_us();
        assert_int_equal(mc_store_certs_commit(s, b.cert + off, BENCH_BATCH, &err), MC_OK);
        t_int += t1 - t0;
        t_cert += now_us() - t1;
    }
    expect_counts(s, (int64_t)n, 0);
    printf("bench store %s: %d batches of %d: intents %.1f us/cert, certificates %.1f us/cert,"
           " total %.1f us/cert (%.0f certs/s)\n",
           backend_of(fx)->name, BENCH_BATCHES, BENCH_BATCH, t_int / (double)n, t_cert / (double)n,
           (t_int + t_cert) / (double)n, (double)n * 1e6 / (t_int + t_cert));
    fflush(stdout);
    mc_store_close(s);
    free(tbs);
    free(der);
    batch_free(&b);
}

/* --- PostgreSQL only ---------------------------------------------------------------------- */

/* --- CT outbox (migration 2) ---------------------------------------------------------------- */

/* A store at schema version 1 with data (as an engine before migration 2 left it) is brought to
 * the current version at open, its data kept, and works: its old intents have no key hash. */
/* The certificate with this serial is replaced by the one with serial by (NULL: by none). */
static void expect_replaced_by(mc_store *s, const uint8_t *serial, const uint8_t *by)
{
    uint8_t out[MC_SERIAL_MAX];
    size_t n = 99;
    mc_errdetail err;
    assert_int_equal(mc_store_replaced_by(s, serial, SER_LEN, out, &n, &err), MC_OK);
    if (!by) {
        assert_int_equal(n, 0);
        return;
    }
    assert_int_equal(n, SER_LEN);
    assert_memory_equal(out, by, SER_LEN);
}

/* The certificate with this serial is revoked at `at` for `reason`. */
static void expect_revoked(mc_store *s, const uint8_t *serial, int64_t at, int reason)
{
    char status[16];
    int64_t got_at = 0;
    int got_reason = 0;
    mc_errdetail err;
    assert_int_equal(
        mc_store_cert_status(s, serial, SER_LEN, status, sizeof status, &got_at, &got_reason, &err),
        MC_OK);
    assert_string_equal(status, "revoked");
    assert_int_equal(got_at, at);
    assert_int_equal(got_reason, reason);
}

/* Puts back the version 6 schema (SQLite: intents keyed by order id with an implicit rowid,
 * certificates keyed by serial, subject_keys rebuilt from each key's first intent, the
 * version 6 trigger; PostgreSQL: only the table comment), rows and ids kept. */
/* Takes back migration 9: no CRL numbers, no index of revoked certificates. */
/* Takes back migration 10: no audit log (the rows written by the migration go with it). */
/* Takes back migration 11: CRL rows without a shard. */
static void undo_migration_11(const fixture *fx)
{
    mc_sf_raw_exec(fx, "DROP INDEX crls_shard");
    mc_sf_raw_exec(fx, "ALTER TABLE crls DROP COLUMN shard");
    mc_sf_raw_exec(fx, "DELETE FROM schema_version WHERE version = 11");
}

static void undo_migration_10(const fixture *fx)
{
    if (!fx->pg)
        mc_sf_raw_exec(fx, "DROP TABLE audit_log");
    else
        mc_sf_raw_exec(fx, "DROP TABLE audit_log; DROP FUNCTION mc_audit_log_append_only()");
    mc_sf_raw_exec(fx, "DELETE FROM schema_version WHERE version = 10");
}

static void undo_migration_9(const fixture *fx)
{
    mc_sf_raw_exec(fx, "DROP TABLE crls");
    mc_sf_raw_exec(fx, "DROP INDEX certificates_revoked");
    mc_sf_raw_exec(fx, "DELETE FROM schema_version WHERE version = 9");
}

/* Takes back migration 8: intents without lint_enforced (both backends drop a column). */
static void undo_migration_8(const fixture *fx)
{
    mc_sf_raw_exec(fx, "ALTER TABLE intents DROP COLUMN lint_enforced");
    mc_sf_raw_exec(fx, "DELETE FROM schema_version WHERE version = 8");
}

static void undo_migration_7(const fixture *fx)
{
    if (!fx->pg) {
        mc_sf_raw_exec(
            fx, "DROP TRIGGER certificates_replaced_by;"
                "CREATE TABLE intents_v6 (order_id TEXT PRIMARY KEY NOT NULL, account TEXT,"
                " profile TEXT, profile_hash BLOB, lint_version TEXT, engine_version TEXT,"
                " serial BLOB UNIQUE NOT NULL, tbs BLOB, tbs_hash BLOB, not_before INTEGER,"
                " not_after INTEGER, mailboxes TEXT, evidence TEXT, lint_warnings TEXT,"
                " replaces TEXT, created_at INTEGER, spki_sha256 BLOB, replaces_serial BLOB);"
                "INSERT INTO intents_v6 (rowid, order_id, account, profile, profile_hash,"
                " lint_version, engine_version, serial, tbs, tbs_hash, not_before, not_after,"
                " mailboxes, evidence, lint_warnings, replaces, created_at, spki_sha256,"
                " replaces_serial) SELECT id, order_id, account, profile, profile_hash,"
                " lint_version, engine_version, serial, tbs, tbs_hash, not_before, not_after,"
                " mailboxes, evidence, lint_warnings, replaces, created_at, spki_sha256,"
                " replaces_serial FROM intents;"
                "CREATE TABLE certificates_v6 (serial BLOB PRIMARY KEY REFERENCES intents(serial),"
                " order_id TEXT NOT NULL, der BLOB NOT NULL, issued_at INTEGER,"
                " status TEXT NOT NULL DEFAULT 'issued', revoked_at INTEGER,"
                " revocation_reason INTEGER, replaced_by BLOB);"
                "INSERT INTO certificates_v6 (serial, order_id, der, issued_at, status,"
                " revoked_at, revocation_reason, replaced_by) SELECT serial, order_id, der,"
                " issued_at, status, revoked_at, revocation_reason, replaced_by"
                " FROM certificates ORDER BY intent;"
                "CREATE TABLE subject_keys (spki_sha256 BLOB PRIMARY KEY NOT NULL,"
                " account TEXT NOT NULL, first_order_id TEXT NOT NULL,"
                " created_at INTEGER NOT NULL);"
                "INSERT INTO subject_keys SELECT spki_sha256, account, order_id, created_at"
                " FROM intents AS i WHERE spki_sha256 IS NOT NULL AND id ="
                " (SELECT min(id) FROM intents WHERE spki_sha256 = i.spki_sha256);"
                "DROP TABLE certificates;"
                "DROP TABLE intents;"
                "ALTER TABLE intents_v6 RENAME TO intents;"
                "ALTER TABLE certificates_v6 RENAME TO certificates;"
                "CREATE INDEX intents_profile_not_before ON intents(profile, not_before);"
                "CREATE INDEX intents_not_after ON intents(not_after);"
                "CREATE INDEX intents_spki ON intents(spki_sha256)"
                " WHERE spki_sha256 IS NOT NULL;"
                "CREATE INDEX intents_account ON intents(account);"
                "CREATE TRIGGER certificates_replaced_by AFTER INSERT ON certificates BEGIN"
                " UPDATE certificates SET replaced_by = NEW.serial"
                " WHERE serial = (SELECT replaces_serial FROM intents WHERE serial = NEW.serial)"
                " AND serial <> NEW.serial AND replaced_by IS NULL;"
                " END;");
    } else {
        mc_sf_raw_exec(fx, "COMMENT ON TABLE subject_keys IS NULL");
    }
    mc_sf_raw_exec(fx, "DELETE FROM schema_version WHERE version = 7");
}

/* Puts back what migration 6 removed: certificates.order_id UNIQUE (SQLite: the table as
 * migrations 1 and 4 left it, rows and rowids kept, and its trigger). */
static void undo_migration_6(const fixture *fx)
{
    if (!fx->pg) {
        mc_sf_raw_exec(
            fx, "CREATE TABLE certificates_v5 ("
                " serial BLOB PRIMARY KEY REFERENCES intents(serial),"
                " order_id TEXT UNIQUE NOT NULL, der BLOB NOT NULL, issued_at INTEGER,"
                " status TEXT NOT NULL DEFAULT 'issued', revoked_at INTEGER,"
                " revocation_reason INTEGER, replaced_by BLOB);"
                "INSERT INTO certificates_v5 (rowid, serial, order_id, der, issued_at, status,"
                " revoked_at, revocation_reason, replaced_by) SELECT rowid, serial, order_id,"
                " der, issued_at, status, revoked_at, revocation_reason, replaced_by"
                " FROM certificates;"
                "DROP TABLE certificates;"
                "ALTER TABLE certificates_v5 RENAME TO certificates;"
                "CREATE TRIGGER certificates_replaced_by AFTER INSERT ON certificates BEGIN"
                " UPDATE certificates SET replaced_by = NEW.serial"
                " WHERE serial = (SELECT replaces_serial FROM intents WHERE serial = NEW.serial)"
                " AND serial <> NEW.serial AND replaced_by IS NULL;"
                " END;");
    } else {
        mc_sf_raw_exec(fx, "ALTER TABLE certificates ADD CONSTRAINT certificates_order_id_key"
                           " UNIQUE (order_id)");
    }
    mc_sf_raw_exec(fx, "DELETE FROM schema_version WHERE version = 6");
}

/* Unique indexes on certificates(order_id): 1 before migration 6, 0 after. */
static int64_t certs_order_unique(const fixture *fx)
{
    return mc_sf_raw_int(fx, !fx->pg ? "SELECT count(*) FROM pragma_index_list('certificates') AS l"
                                       " JOIN pragma_index_info(l.name) AS c WHERE l.\"unique\""
                                       " AND c.name = 'order_id'"
                                     : "SELECT count(*) FROM pg_constraint WHERE conrelid ="
                                       " 'certificates'::regclass AND contype = 'u'");
}

/* A version 5 store (certificates.order_id UNIQUE) brought to 6 by mc_store_migrate (`mailca
 * store migrate`): the index is gone, every row is kept as it was (certificates, replacement
 * link, revocation), and the guarantees the index stood for still hold: an order keeps its one
 * certificate, a replacement committed after the migration links its predecessor. */
static void test_migrate_5_to_6(void **state)
{
    fixture *fx = *state;
    mc_store *s = open_ok(fx->where);
    mc_errdetail err;
    batch b;
    batch_make(&b, "m6", 0, 6);
    char rep[2 * SER_LEN + 1];
    mc_store_serial_hex(rep, b.serial[0], SER_LEN);
    b.in[1].replaces = rep; /* m6-1 replaces m6-0 */
    assert_int_equal(mc_store_intents_commit(s, b.in, 6, b.state, &err), MC_OK);
    assert_int_equal(mc_store_certs_commit(s, b.cert, 4, &err), MC_OK);
    mc_store_sel sel = {.serial = b.serial[2], .serial_len = SER_LEN};
    mc_revoke_counts rc;
    assert_int_equal(mc_store_revoke(s, &sel, MC_CRL_SUPERSEDED, 1234, 0, &rc, &err), MC_OK);
    mc_store_close(s);
    assert_int_equal(certs_order_unique(fx), 0);

    undo_migration_11(fx);

    undo_migration_10(fx);
    undo_migration_9(fx);

    undo_migration_8(fx);

    undo_migration_7(fx);
    undo_migration_6(fx);
    assert_int_equal(mc_sf_raw_int(fx, "SELECT max(version) FROM schema_version"), 5);
    assert_int_equal(certs_order_unique(fx), 1);

    mc_err_clear(&err);
    assert_int_equal(mc_store_migrate(fx->where, &err), MC_OK);
    assert_int_equal(mc_sf_raw_int(fx, "SELECT max(version) FROM schema_version"),
                     MC_STORE_SCHEMA_VERSION);
    assert_int_equal(certs_order_unique(fx), 0);
    assert_int_equal(mc_sf_raw_int(fx, backend_of(fx)->sql_cols_certs),
                     backend_of(fx)->certs_columns);

    s = open_ok(fx->where);
    expect_counts(s, 4, 2);
    for (size_t i = 0; i < 4; i++)
        expect_lookup(s, b.order[i], b.serial[i], b.tbs[i], b.der[i]);
    expect_lookup(s, b.order[4], b.serial[4], b.tbs[4], NULL);
    expect_replaced_by(s, b.serial[0], b.serial[1]);
    expect_revoked(s, b.serial[2], 1234, MC_CRL_SUPERSEDED);

    /* one certificate per order without the index: an order that has one is ISSUED, a second
     * certificate for it under another serial is refused, the first stays */
    batch c;
    batch_make(&c, "m6b", 100, 1);
    c.in[0].order_id = b.order[0];
    c.in[0].replaces = NULL;
    assert_int_equal(mc_store_intents_commit(s, c.in, 1, c.state, &err), MC_OK);
    assert_int_equal(c.state[0], MC_INTENT_ISSUED);
    c.cert[0].order_id = b.order[0];
    assert_int_equal(mc_store_certs_commit(s, c.cert, 1, &err), MC_ERR_STORE);
    assert_non_null(strstr(err.message, "does not match"));
    assert_int_equal(mc_sf_raw_int(fx, "SELECT count(*) FROM certificates"), 4);

    /* the replacement link still works after the migration (SQLite: the recreated trigger) */
    batch d;
    batch_make(&d, "m6c", 200, 1);
    char rep4[2 * SER_LEN + 1];
    mc_store_serial_hex(rep4, b.serial[3], SER_LEN);
    d.in[0].replaces = rep4;
    assert_int_equal(mc_store_intents_commit(s, d.in, 1, d.state, &err), MC_OK);
    assert_int_equal(mc_store_certs_commit(s, d.cert, 1, &err), MC_OK);
    expect_replaced_by(s, b.serial[3], d.serial[0]);
    mc_store_close(s);
    batch_free(&b);
    batch_free(&c);
    batch_free(&d);
}

/* A version 6 store with every kind of row (issued, pending, a replacement link, a revocation,
 * keys bound to accounts) brought to 7: every row kept (SQLite: intents keep their rowid as id,
 * certificates are found through it), pending intents listed oldest first as before, and what
 * the dropped structures stood for still holds afterwards: a key stays its first account's, a
 * replacement committed after the migration links its predecessor, an issued order is ISSUED. */
static void test_migrate_6_to_7(void **state)
{
    fixture *fx = *state;
    mc_store *s = open_ok(fx->where);
    mc_errdetail err;
    uint8_t k1[32], k2[32];
    memset(k1, 0x71, 32);
    memset(k2, 0x72, 32);
    batch b;
    batch_make(&b, "m7", 0, 8);
    char rep[2 * SER_LEN + 1];
    mc_store_serial_hex(rep, b.serial[0], SER_LEN);
    b.in[1].replaces = rep; /* m7-1 replaces m7-0 */
    for (size_t i = 0; i < 8; i++) {
        b.in[i].account = i < 4 ? "acct-a" : "acct-b";
        b.in[i].spki_sha256 = i == 0 || i == 2 ? k1 : i == 5 ? k2 : NULL;
    }
    assert_int_equal(mc_store_intents_commit(s, b.in, 8, b.state, &err), MC_OK);
    assert_int_equal(mc_store_certs_commit(s, b.cert, 5, &err), MC_OK); /* 5..7 pending */
    mc_store_sel sel = {.serial = b.serial[2], .serial_len = SER_LEN};
    mc_revoke_counts rc;
    assert_int_equal(mc_store_revoke(s, &sel, MC_CRL_KEY_COMPROMISE, 4321, 0, &rc, &err), MC_OK);
    mc_store_close(s);

    undo_migration_11(fx);

    undo_migration_10(fx);
    undo_migration_9(fx);

    undo_migration_8(fx);

    undo_migration_7(fx);
    assert_int_equal(mc_sf_raw_int(fx, "SELECT max(version) FROM schema_version"), 6);
    assert_int_equal(mc_sf_raw_int(fx, "SELECT count(*) FROM subject_keys"), 2);
    assert_int_equal(mc_sf_raw_int(fx, backend_of(fx)->sql_cols_certs), 8);

    mc_err_clear(&err);
    assert_int_equal(mc_store_migrate(fx->where, &err), MC_OK);
    assert_int_equal(mc_sf_raw_int(fx, "SELECT max(version) FROM schema_version"),
                     MC_STORE_SCHEMA_VERSION);
    assert_int_equal(mc_sf_raw_int(fx, backend_of(fx)->sql_tables), backend_of(fx)->tables);
    assert_int_equal(mc_sf_raw_int(fx, backend_of(fx)->sql_indexes), 4);
    assert_int_equal(mc_sf_raw_int(fx, backend_of(fx)->sql_cols_certs),
                     backend_of(fx)->certs_columns);
    if (!fx->pg) {
        /* ids are the old rowids, in recording order; each certificate points at its intent */
        assert_int_equal(mc_sf_raw_int(fx, "SELECT count(*) FROM intents AS i WHERE i.id ="
                                           " 1 + CAST(substr(i.order_id, 4) AS INTEGER)"),
                         8);
        assert_int_equal(mc_sf_raw_int(fx,
                                       "SELECT count(*) FROM certificates AS c JOIN intents AS i"
                                       " ON i.id = c.intent AND i.serial = c.serial"
                                       " AND i.order_id = c.order_id"),
                         5);
        assert_int_equal(mc_sf_raw_int(fx, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
    }

    s = open_ok(fx->where);
    expect_counts(s, 5, 3);
    for (size_t i = 0; i < 5; i++)
        expect_lookup(s, b.order[i], b.serial[i], b.tbs[i], b.der[i]);
    seen w = {0};
    assert_int_equal(mc_store_pending(s, collect, &w, &err), MC_OK);
    assert_int_equal(w.n, 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(w.order[i], b.order[5 + i]);
    expect_replaced_by(s, b.serial[0], b.serial[1]);
    expect_revoked(s, b.serial[2], 4321, MC_CRL_KEY_COMPROMISE);

    /* after the migration: k2 is still acct-b's (refused to acct-a), k1 compromised, a fresh
     * key binds to its first account, an issued order is ISSUED, a replacement links */
    batch c;
    batch_make(&c, "m7b", 100, 4);
    uint8_t k3[32];
    memset(k3, 0x73, 32);
    c.in[0].account = "acct-a";
    c.in[0].spki_sha256 = k2;
    c.in[1].account = "acct-b";
    c.in[1].spki_sha256 = k1;
    c.in[2].account = "acct-c";
    c.in[2].spki_sha256 = k3;
    char rep3[2 * SER_LEN + 1];
    mc_store_serial_hex(rep3, b.serial[3], SER_LEN);
    c.in[2].replaces = rep3;
    c.in[3] = b.in[4];
    assert_int_equal(mc_store_intents_commit(s, c.in, 4, c.state, &err), MC_OK);
    assert_int_equal(c.state[0], MC_INTENT_KEY_BOUND);
    assert_int_equal(c.state[1], MC_INTENT_KEY_COMPROMISED);
    assert_int_equal(c.state[2], MC_INTENT_NEW);
    assert_int_equal(c.state[3], MC_INTENT_ISSUED);
    assert_int_equal(mc_store_certs_commit(s, &c.cert[2], 1, &err), MC_OK);
    expect_replaced_by(s, b.serial[3], c.serial[2]);
    c.in[0].order_id = "m7b-x";
    c.in[0].account = "acct-d";
    c.in[0].spki_sha256 = k3;
    memset(c.serial[0], 0x5e, SER_LEN);
    assert_int_equal(mc_store_intents_commit(s, c.in, 1, c.state, &err), MC_OK);
    assert_int_equal(c.state[0], MC_INTENT_KEY_BOUND);
    expect_counts(s, 6, 3);
    mc_store_close(s);
    batch_free(&b);
    batch_free(&c);
}

/* SQLite: a version 6 store holding a certificate whose intent is gone (a row deleted by hand
 * with foreign keys off) is not migrated: the rebuild would leave the certificate without its
 * intent, so migration 7 fails naming the table, rolls back, and the store stays at 6 with the
 * certificate in it. Nothing signed is dropped to make a migration pass. */
static void test_migrate_7_dangling_refused(void **state)
{
    fixture *fx = *state;
    if (fx->pg)
        skip(); /* PostgreSQL enforces the foreign key: such a row cannot exist */
    mc_store *s = open_ok(fx->where);
    mc_errdetail err;
    batch b;
    batch_make(&b, "m7d", 0, 3);
    assert_int_equal(mc_store_intents_commit(s, b.in, 3, b.state, &err), MC_OK);
    assert_int_equal(mc_store_certs_commit(s, b.cert, 3, &err), MC_OK);
    mc_store_close(s);
    undo_migration_11(fx);
    undo_migration_10(fx);
    undo_migration_9(fx);
    undo_migration_8(fx);
    undo_migration_7(fx);
    mc_sf_raw_exec(fx, "DELETE FROM intents WHERE order_id = 'm7d-1'");

    mc_err_clear(&err);
    assert_int_equal(mc_store_migrate(fx->where, &err), MC_ERR_STORE);
    assert_string_equal(err.field, "certificates");
    assert_non_null(strstr(err.message, "references a missing row of 'intents'"));
    assert_int_equal(mc_sf_raw_int(fx, "SELECT max(version) FROM schema_version"), 6);
    assert_int_equal(mc_sf_raw_int(fx, "SELECT count(*) FROM certificates"), 3);
    assert_int_equal(mc_sf_raw_int(fx, "SELECT count(*) FROM subject_keys"), 0);
    batch_free(&b);
}

/* A version 7 store brought to 8: its rows are kept, and say by a NULL lint_enforced that the
 * set enforced when they were issued was not recorded; intents recorded afterwards carry it. */
static void test_migrate_7_to_8(void **state)
{
    fixture *fx = *state;
    mc_store *s = open_ok(fx->where);
    mc_errdetail err;
    batch b;
    batch_make(&b, "m8", 0, 4);
    assert_int_equal(mc_store_intents_commit(s, b.in, 4, b.state, &err), MC_OK);
    assert_int_equal(mc_store_certs_commit(s, b.cert, 3, &err), MC_OK);
    mc_store_close(s);
    undo_migration_11(fx);
    undo_migration_10(fx);
    undo_migration_9(fx);
    undo_migration_8(fx);
    assert_int_equal(mc_sf_raw_int(fx, "SELECT max(version) FROM schema_version"), 7);
    assert_int_equal(mc_sf_raw_int(fx, backend_of(fx)->sql_cols_intents),
                     backend_of(fx)->intents_columns - 1);

    mc_err_clear(&err);
    assert_int_equal(mc_store_migrate(fx->where, &err), MC_OK);
    assert_int_equal(mc_sf_raw_int(fx, "SELECT max(version) FROM schema_version"),
                     MC_STORE_SCHEMA_VERSION);
    assert_int_equal(mc_sf_raw_int(fx, backend_of(fx)->sql_cols_intents),
                     backend_of(fx)->intents_columns);
    assert_int_equal(mc_sf_raw_int(fx, "SELECT count(*) FROM intents WHERE lint_enforced IS NULL"),
                     4);
    s = open_ok(fx->where);
    expect_counts(s, 3, 1);
    for (size_t i = 0; i < 3; i++)
        expect_lookup(s, b.order[i], b.serial[i], b.tbs[i], b.der[i]);
    batch c;
    batch_make(&c, "m8b", 100, 2);
    c.in[1].lint_enforced = "mailca-lints-2026.11.2";
    assert_int_equal(mc_store_intents_commit(s, c.in, 2, c.state, &err), MC_OK);
    assert_int_equal(mc_store_certs_commit(s, c.cert, 2, &err), MC_OK);
    assert_int_equal(mc_sf_raw_int(fx, "SELECT count(*) FROM intents WHERE order_id = 'm8b-100'"
                                       " AND lint_enforced = 'lints-2'"),
                     1);
    assert_int_equal(mc_sf_raw_int(fx, "SELECT count(*) FROM intents WHERE order_id = 'm8b-101'"
                                       " AND lint_enforced = 'mailca-lints-2026.11.2'"),
                     1);
    expect_counts(s, 5, 1);
    mc_store_close(s);
    batch_free(&b);
    batch_free(&c);
}

/* Commits are durable on the store's own connection: SQLite runs synchronous=FULL, and a
 * PostgreSQL session that starts with synchronous_commit off (as a server, role or database
 * may set it) is turned back on. */
static void test_durability(void **state)
{
    fixture *fx = *state;
    char where[1200], got[96];
    mc_errdetail err;
    if (fx->pg)
        snprintf(where, sizeof where, "%s%%20-csynchronous_commit%%3Doff", fx->where);
    else
        snprintf(where, sizeof where, "%s", fx->where);
    mc_store *s = open_ok(where);
    int durable = -1;
    assert_int_equal(mc_store_durability(s, got, sizeof got, &durable, &err), MC_OK);
    assert_int_equal(durable, 1);
#ifdef MAILCA_HAVE_LIBPQ
    if (fx->pg) {
        /* the option reached the session: it is what the store turned back on */
        PGconn *c = mc_sf_pg_connect(where);
        PGresult *r = PQexec(c, "SHOW synchronous_commit");
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        assert_string_equal(PQgetvalue(r, 0, 0), "off");
        PQclear(r);
        PQfinish(c);
        assert_non_null(strstr(got, "synchronous_commit=on "));
        assert_non_null(strstr(got, " fsync="));
        mc_store_close(s);
        return;
    }
#endif
    assert_string_equal(got, "synchronous=full");
    mc_store_close(s);
}

typedef struct revoked_seen {
    size_t n;
    uint8_t serial[8][MC_SERIAL_MAX];
    int64_t at[8];
    int reason[8];
} revoked_seen;

static void revoked_collect(void *arg, const uint8_t *serial, size_t serial_len, int64_t revoked_at,
                            int reason)
{
    revoked_seen *w = arg;
    assert_true(w->n < 8);
    assert_int_equal(serial_len, SER_LEN);
    memcpy(w->serial[w->n], serial, serial_len);
    w->at[w->n] = revoked_at;
    w->reason[w->n++] = reason;
}

/* CRLs (engine/crl.c): the revoked certificates not yet expired, in serial order, with their
 * revocation time and reason (unspecified is 0); issued, pending and expired ones are not
 * listed. CRL numbers go 1, 2, 3 and never back. */
static void test_crl_store(void **state)
{
    fixture *fx = *state;
    mc_store *s = open_ok(fx->where);
    mc_errdetail err;
    batch b;
    batch_make(&b, "crl", 0, 6);
    const int64_t now = 1750000000; /* batch_make's notAfter are 1750086400 + k */
    b.in[3].not_after = now - 1;    /* expired at now */
    assert_int_equal(mc_store_intents_commit(s, b.in, 6, b.state, &err), MC_OK);
    assert_int_equal(mc_store_certs_commit(s, b.cert, 5, &err), MC_OK); /* 5 pending */
    const int reasons[4] = {MC_CRL_SUPERSEDED, MC_CRL_KEY_COMPROMISE, MC_CRL_UNSPECIFIED,
                            MC_CRL_SUPERSEDED};
    for (int i = 0; i < 4; i++) {
        mc_store_sel one = {.serial = b.serial[i], .serial_len = SER_LEN};
        mc_revoke_counts c;
        assert_int_equal(mc_store_revoke(s, &one, reasons[i], now - 100 + i, 0, &c, &err), MC_OK);
    }
    revoked_seen w;
    memset(&w, 0, sizeof w);
    uint64_t num = 0;
    int64_t tu = -1, nu = -1;
    assert_int_equal(mc_store_crl_latest(s, &num, &tu, &nu, &err), MC_OK);
    assert_int_equal(num, 0); /* none yet */
    assert_int_equal(mc_store_crl_begin(s, now, now + 86400, revoked_collect, &w, &num, &err),
                     MC_OK);
    assert_int_equal(num, 1);
    assert_int_equal(w.n, 3); /* 3 expired, 4 not revoked, 5 pending */
    for (size_t i = 0; i < 3; i++) {
        assert_memory_equal(w.serial[i], b.serial[i], SER_LEN); /* serials ascend with k */
        assert_int_equal(w.at[i], now - 100 + (int64_t)i);
        assert_int_equal(w.reason[i], reasons[i]);
    }
    assert_int_equal(mc_sf_raw_int(fx, "SELECT entries FROM crls WHERE number = 1"), 3);
    /* before it expired, the fourth is listed too */
    memset(&w, 0, sizeof w);
    assert_int_equal(mc_store_crl_begin(s, now - 2, now + 86400, revoked_collect, &w, &num, &err),
                     MC_OK);
    assert_int_equal(w.n, 4);
    assert_int_equal(num, 2);
    /* a CRL begun but never published (signing failed) is not the latest */
    assert_int_equal(mc_store_crl_latest(s, &num, &tu, &nu, &err), MC_OK);
    assert_int_equal(num, 0);
    assert_int_equal(mc_store_crl_published(s, 1, now + 1, &err), MC_OK);
    assert_int_equal(mc_store_crl_latest(s, &num, &tu, &nu, &err), MC_OK);
    assert_int_equal(num, 1);
    assert_int_equal(mc_store_crl_published(s, 99, now + 1, &err), MC_ERR_STORE);
    memset(&w, 0, sizeof w);
    assert_int_equal(mc_store_crl_begin(s, now, now, revoked_collect, &w, &num, &err),
                     MC_ERR_INVALID);
    assert_string_equal(err.field, "next_update");
    /* another handle (another engine node) continues the sequence */
    mc_store *s2 = open_ok(fx->where);
    memset(&w, 0, sizeof w);
    assert_int_equal(
        mc_store_crl_begin(s2, now + 5, now + 7 * 86400, revoked_collect, &w, &num, &err), MC_OK);
    assert_int_equal(num, 3);
    assert_int_equal(mc_store_crl_published(s2, 3, now + 6, &err), MC_OK);
    assert_int_equal(mc_store_crl_latest(s, &num, &tu, &nu, &err), MC_OK);
    assert_int_equal(num, 3);
    assert_int_equal(tu, now + 5);
    assert_int_equal(nu, now + 7 * 86400);
    mc_store_close(s2);
    mc_store_close(s);
    batch_free(&b);
}

typedef struct crl_racer {
    const char *where;
    uint64_t got[50];
    mc_err rc;
    mc_errdetail err;
} crl_racer;

static void crl_racer_row(void *arg, const uint8_t *serial, size_t serial_len, int64_t revoked_at,
                          int reason)
{
    (void)arg, (void)serial, (void)serial_len, (void)revoked_at, (void)reason;
}

static void *crl_racer_run(void *arg)
{
    crl_racer *r = arg;
    mc_store *s = NULL;
    r->rc = mc_store_open(r->where, &s, &r->err);
    for (int i = 0; i < 50 && r->rc == MC_OK; i++)
        r->rc = mc_store_crl_begin(s, 1000, 2000, crl_racer_row, NULL, &r->got[i], &r->err);
    mc_store_close(s);
    return NULL;
}

/* Two engine nodes making CRLs at the same moment, each on its own connection: every number
 * is handed out once, each node sees its own numbers increase, and together they are 1..100
 * (PostgreSQL: the primary key refuses a number taken meanwhile and the call takes the next;
 * SQLite: the writer lock orders them). */
static void test_crl_number_race(void **state)
{
    fixture *fx = *state;
    mc_store_close(open_ok(fx->where)); /* migrated before the race */
    crl_racer a = {.where = fx->where}, b = {.where = fx->where};
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, crl_racer_run, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, crl_racer_run, &b), 0);
    assert_int_equal(pthread_join(ta, NULL), 0);
    assert_int_equal(pthread_join(tb, NULL), 0);
    if (a.rc != MC_OK || b.rc != MC_OK)
        fail_msg("crl numbers: %s / %s", a.rc ? a.err.message : "ok", b.rc ? b.err.message : "ok");
    uint8_t taken[101] = {0};
    for (int i = 0; i < 50; i++) {
        if (i) {
            assert_true(a.got[i] > a.got[i - 1]);
            assert_true(b.got[i] > b.got[i - 1]);
        }
        assert_true(a.got[i] >= 1 && a.got[i] <= 100 && !taken[a.got[i]]);
        taken[a.got[i]] = 1;
        assert_true(b.got[i] >= 1 && b.got[i] <= 100 && !taken[b.got[i]]);
        taken[b.got[i]] = 1;
    }
    assert_int_equal(mc_sf_raw_int(fx, "SELECT count(*) FROM crls"), 100);
}

/* Partitioned CRLs: what mc_store_crl_shards_begin hands the engine and records. */
typedef struct shard_seen {
    size_t n;
    uint8_t serial[8][MC_SERIAL_MAX];
    uint8_t tbs[8][64]; /* the recorded TBSCertificate handed back */
    size_t tbs_len[8];
    int reason[8];
    mc_store_crl_shard plan[3];
    size_t nplan;
    int fail_plan;
    unsigned known[8];
    size_t nknown;
} shard_seen;

static void shard_collect(void *arg, const uint8_t *serial, size_t serial_len, int64_t revoked_at,
                          int reason, const uint8_t *tbs, size_t tbs_len)
{
    shard_seen *w = arg;
    (void)revoked_at;
    assert_true(w->n < 8);
    assert_int_equal(serial_len, SER_LEN);
    assert_non_null(tbs);
    assert_true(tbs_len <= sizeof w->tbs[0]);
    memcpy(w->serial[w->n], serial, serial_len);
    memcpy(w->tbs[w->n], tbs, tbs_len);
    w->tbs_len[w->n] = tbs_len;
    w->reason[w->n++] = reason;
}

static int shard_plan(void *arg, const unsigned *known, size_t nknown, mc_store_crl_shard **v,
                      size_t *n)
{
    shard_seen *w = arg;
    w->nknown = nknown < 8 ? nknown : 8;
    for (size_t i = 0; i < w->nknown; i++)
        w->known[i] = known[i];
    *v = w->plan;
    *n = w->nplan;
    return w->fail_plan;
}

/* A TBS stand-in whose CRL DP URI is http://c.test/s/<digits>.crl (DER [6] tag and length),
 * between filler bytes; digits NULL: another URL. */
static size_t shard_tbs(uint8_t *out, const char *digits)
{
    char url[64];
    snprintf(url, sizeof url, "http://%s/s/%s.crl", digits ? "c.test" : "other.test",
             digits ? digits : "0001");
    size_t n = 0;
    memset(out, 0x30, 5);
    n += 5;
    out[n++] = 0x86;
    out[n++] = (uint8_t)strlen(url);
    memcpy(out + n, url, strlen(url));
    n += strlen(url);
    if (digits && strcmp(digits, "0009") == 0)
        return n; /* the URI ends the bytes: the tail is still whole */
    memset(out + n, 0x05, 4);
    return n + 4;
}

/* mc_store_crl_shards_begin: every revoked unexpired certificate with its own recorded TBS
 * (engine/crl.c reads the shard from it: test_crl), one CRL
 * number per planned shard on the sequence full CRLs share, each shard's latest published one
 * in mc_store_crl_shards_latest (the oldest decides), never in mc_store_crl_latest; a plan that
 * fails records nothing. */
static void test_crl_shards_store(void **state)
{
    fixture *fx = *state;
    mc_store *s = open_ok(fx->where);
    mc_errdetail err;
    batch b;
    batch_make(&b, "shard", 0, 6);
    const int64_t now = 1750000000;
    uint8_t tbs[6][64];
    const char *digits[6] = {"0002", "0001", NULL, "0007", "0001", "0009"};
    for (int i = 0; i < 6; i++) {
        b.in[i].tbs = tbs[i];
        b.in[i].tbs_len = shard_tbs(tbs[i], digits[i]);
    }
    assert_int_equal(mc_store_intents_commit(s, b.in, 6, b.state, &err), MC_OK);
    assert_int_equal(mc_store_certs_commit(s, b.cert, 6, &err), MC_OK);
    for (int i = 0; i < 6; i++) {
        if (i == 4)
            continue; /* not revoked */
        mc_store_sel one = {.serial = b.serial[i], .serial_len = SER_LEN};
        mc_revoke_counts c;
        assert_int_equal(
            mc_store_revoke(s, &one, i == 1 ? MC_CRL_KEY_COMPROMISE : 0, now - 10, 0, &c, &err),
            MC_OK);
    }
    shard_seen w;
    memset(&w, 0, sizeof w);
    w.nplan = 3;
    w.plan[0] = (mc_store_crl_shard){.shard = 0, .entries = 0};
    w.plan[1] = (mc_store_crl_shard){.shard = 1, .entries = 1};
    w.plan[2] = (mc_store_crl_shard){.shard = 7, .entries = 1};
    assert_int_equal(
        mc_store_crl_shards_begin(s, now, now + 86400, shard_collect, shard_plan, &w, &err), MC_OK);
    assert_int_equal(w.nknown, 0); /* no shard recorded yet */
    assert_int_equal(w.n, 5);      /* in serial order; 4 is not revoked */
    const int want[5] = {0, 1, 2, 3, 5};
    for (int i = 0; i < 5; i++) { /* each with its own recorded TBS (crl.c reads the shard) */
        assert_memory_equal(w.serial[i], b.serial[want[i]], SER_LEN);
        assert_int_equal(w.tbs_len[i], b.in[want[i]].tbs_len);
        assert_memory_equal(w.tbs[i], tbs[want[i]], w.tbs_len[i]);
    }
    assert_int_equal(w.reason[1], MC_CRL_KEY_COMPROMISE);
    for (int i = 0; i < 3; i++)
        assert_int_equal(w.plan[i].number, (uint64_t)i + 1);
    assert_int_equal(mc_sf_raw_int(fx, "SELECT shard FROM crls WHERE number = 3"), 7);
    assert_int_equal(mc_sf_raw_int(fx, "SELECT entries FROM crls WHERE number = 2"), 1);
    int64_t k = -1, tu = -1, nu = -1;
    assert_int_equal(mc_store_crl_shards_latest(s, &k, &tu, &nu, &err), MC_OK);
    assert_int_equal(k, 0); /* none published yet */
    assert_int_equal(mc_store_crl_published_range(s, 1, 3, now + 1, &err), MC_OK);
    assert_int_equal(mc_store_crl_published_range(s, 3, 2, now + 1, &err), MC_ERR_INVALID);
    assert_int_equal(mc_store_crl_published_range(s, 3, 4, now + 1, &err), MC_ERR_STORE);
    assert_int_equal(mc_sf_raw_int(fx, "SELECT count(*) FROM crls WHERE published_at IS NOT NULL"),
                     3);
    assert_int_equal(mc_store_crl_shards_latest(s, &k, &tu, &nu, &err), MC_OK);
    assert_int_equal(k, 3);
    assert_int_equal(tu, now);
    assert_int_equal(nu, now + 86400);
    uint64_t num = 99;
    int64_t t1 = -1, t2 = -1;
    assert_int_equal(mc_store_crl_latest(s, &num, &t1, &t2, &err), MC_OK);
    assert_int_equal(num, 0); /* shards are not the full CRL */

    /* a second run: numbers go on; shard 7 not republished, so it stays the oldest */
    memset(&w, 0, sizeof w);
    w.nplan = 2;
    w.plan[0] = (mc_store_crl_shard){.shard = 0, .entries = 0};
    w.plan[1] = (mc_store_crl_shard){.shard = 1, .entries = 1};
    assert_int_equal(
        mc_store_crl_shards_begin(s, now + 100, now + 200000, shard_collect, shard_plan, &w, &err),
        MC_OK);
    assert_int_equal(w.plan[0].number, 4);
    assert_int_equal(w.plan[1].number, 5);
    assert_int_equal(w.nknown, 3); /* the shards the first run recorded */
    assert_int_equal(w.known[0], 0);
    assert_int_equal(w.known[1], 1);
    assert_int_equal(w.known[2], 7);
    assert_int_equal(mc_store_crl_published(s, 4, now + 101, &err), MC_OK);
    assert_int_equal(mc_store_crl_published(s, 5, now + 101, &err), MC_OK);
    assert_int_equal(mc_store_crl_shards_latest(s, &k, &tu, &nu, &err), MC_OK);
    assert_int_equal(k, 3);
    assert_int_equal(tu, now);
    assert_int_equal(nu, now + 86400);
    /* full and shard CRLs share one sequence */
    revoked_seen rw;
    memset(&rw, 0, sizeof rw);
    assert_int_equal(mc_store_crl_begin(s, now, now + 86400, revoked_collect, &rw, &num, &err),
                     MC_OK);
    assert_int_equal(num, 6);
    assert_int_equal(rw.n, 5);
    /* a failed plan records nothing */
    memset(&w, 0, sizeof w);
    w.nplan = 1;
    w.fail_plan = 1;
    assert_int_equal(
        mc_store_crl_shards_begin(s, now, now + 86400, shard_collect, shard_plan, &w, &err),
        MC_ERR_NOMEM);
    assert_int_equal(mc_sf_raw_int(fx, "SELECT count(*) FROM crls"), 6);
    /* checked arguments */
    assert_int_equal(mc_store_crl_shards_begin(s, now, now, shard_collect, shard_plan, &w, &err),
                     MC_ERR_INVALID);
    assert_string_equal(err.field, "next_update");
    mc_store_close(s);
    batch_free(&b);
}

/* A version 10 store brought to 11: its CRL rows are full CRLs (shard NULL), the latest still
 * found; shard rows recorded afterwards are told apart. */
static void test_migrate_10_to_11(void **state)
{
    fixture *fx = *state;
    mc_store *s = open_ok(fx->where);
    mc_errdetail err;
    revoked_seen rw;
    memset(&rw, 0, sizeof rw);
    uint64_t num = 0;
    assert_int_equal(mc_store_crl_begin(s, 1000, 2000, revoked_collect, &rw, &num, &err), MC_OK);
    assert_int_equal(mc_store_crl_published(s, num, 1001, &err), MC_OK);
    mc_store_close(s);
    undo_migration_11(fx);
    assert_int_equal(mc_sf_raw_int(fx, "SELECT max(version) FROM schema_version"), 10);
    mc_err_clear(&err);
    assert_int_equal(mc_store_migrate(fx->where, &err), MC_OK);
    assert_int_equal(mc_sf_raw_int(fx, "SELECT max(version) FROM schema_version"), 11);
    assert_int_equal(mc_sf_raw_int(fx, "SELECT count(*) FROM crls WHERE shard IS NULL"), 1);
    s = open_ok(fx->where);
    int64_t tu = 0, nu = 0, k = -1;
    assert_int_equal(mc_store_crl_latest(s, &num, &tu, &nu, &err), MC_OK);
    assert_int_equal(num, 1);
    assert_int_equal(tu, 1000);
    assert_int_equal(mc_store_crl_shards_latest(s, &k, &tu, &nu, &err), MC_OK);
    assert_int_equal(k, 0);
    mc_store_close(s);
}

static void test_migrate_1_to_current(void **state)
{
    fixture *fx = *state;
    mc_store *s = open_ok(fx->where);
    mc_errdetail err;
    batch b;
    batch_make(&b, "v1", 0, 5);
    assert_int_equal(mc_store_intents_commit(s, b.in, 5, b.state, &err), MC_OK);
    assert_int_equal(mc_store_certs_commit(s, b.cert, 5, &err), MC_OK);
    mc_store_close(s);
    /* undo migration 11, 10, 9, 8, 7, 6, 5, 4, then 3 and 2 */
    undo_migration_11(fx);
    undo_migration_10(fx);
    undo_migration_9(fx);
    undo_migration_8(fx);
    undo_migration_7(fx);
    undo_migration_6(fx);
    mc_sf_raw_exec(fx, "DROP TABLE compromised_keys");
    if (!fx->pg)
        mc_sf_raw_exec(fx, "DROP TRIGGER certificates_replaced_by");
    mc_sf_raw_exec(fx, "DROP INDEX intents_account");
    mc_sf_raw_exec(fx, "ALTER TABLE intents DROP COLUMN replaces_serial");
    mc_sf_raw_exec(fx, "ALTER TABLE certificates DROP COLUMN replaced_by");
    mc_sf_raw_exec(fx, "DROP TABLE subject_keys");
    mc_sf_raw_exec(fx, "DROP INDEX intents_spki");
    mc_sf_raw_exec(fx, "ALTER TABLE intents DROP COLUMN spki_sha256");
    mc_sf_raw_exec(fx, "DROP TABLE ct_scts");
    mc_sf_raw_exec(fx, "DROP TABLE ct_outbox");
    mc_sf_raw_exec(fx, "DELETE FROM schema_version WHERE version >= 2");
    assert_int_equal(mc_sf_raw_int(fx, backend_of(fx)->sql_tables), 3);
    assert_int_equal(mc_sf_raw_int(fx, backend_of(fx)->sql_cols_intents),
                     backend_of(fx)->intents_columns_v1);
    s = open_ok(fx->where);
    assert_int_equal(mc_sf_raw_int(fx, "SELECT max(version) FROM schema_version"),
                     MC_STORE_SCHEMA_VERSION);
    assert_int_equal(mc_sf_raw_int(fx, backend_of(fx)->sql_tables), backend_of(fx)->tables);
    assert_int_equal(mc_sf_raw_int(fx, backend_of(fx)->sql_cols_intents),
                     backend_of(fx)->intents_columns);
    assert_int_equal(mc_sf_raw_int(fx, "SELECT count(*) FROM intents WHERE spki_sha256 IS NULL"),
                     5);
    expect_counts(s, 5, 0);
    expect_lookup(s, b.order[4], b.serial[4], b.tbs[4], b.der[4]);
    mc_store_close(s);
    batch_free(&b);
}

/* --- subject keys (migration 3, issue 6) ------------------------------------------------------ */

/* Keys bound to an account: PostgreSQL's subject_keys rows, SQLite's distinct keys of intents
 * (migration 7); the same number on both. */
static int64_t bound_keys(const fixture *fx)
{
    return mc_sf_raw_int(fx, fx->pg ? "SELECT count(*) FROM subject_keys"
                                    : "SELECT count(DISTINCT spki_sha256) FROM intents");
}

/* The first account to use a key owns it: the same account may use it again, another account
 * (even one whose name is a prefix) is refused with nothing recorded, within one batch too; a
 * known order id keeps its earlier answer; the binding rolls back with its batch. */
static void test_subject_key_binding(void **state)
{
    fixture *fx = *state;
    mc_store *s = open_ok(fx->where);
    mc_errdetail err;
    uint8_t k1[32], k2[32], k3[32];
    memset(k1, 0x11, 32);
    memset(k2, 0x22, 32);
    memset(k3, 0x33, 32);
    batch b;
    batch_make(&b, "key", 0, 8);
    const char *acct[8] = {"acct-a", "acct-a", "acct-b", "acct-b",
                           "acct-c", "acct-d", "acct",   "acct-a"};
    const uint8_t *key[8] = {k1, k1, k1, k2, k3, k3, k1, NULL};
    for (size_t i = 0; i < 8; i++) {
        b.in[i].account = acct[i];
        b.in[i].spki_sha256 = key[i];
    }
    assert_int_equal(mc_store_intents_commit(s, b.in, 8, b.state, &err), MC_OK);
    const mc_intent_state want[8] = {MC_INTENT_NEW,       MC_INTENT_NEW, MC_INTENT_KEY_BOUND,
                                     MC_INTENT_NEW,       MC_INTENT_NEW, MC_INTENT_KEY_BOUND,
                                     MC_INTENT_KEY_BOUND, MC_INTENT_NEW};
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(b.state[i], want[i]);
    expect_counts(s, 0, 5); /* the refused orders left no intent */
    assert_int_equal(bound_keys(fx), 3);
    assert_int_equal(
        mc_sf_raw_int(fx, "SELECT count(*) FROM intents WHERE spki_sha256 IS NOT NULL"), 4);
    if (fx->pg)
        assert_int_equal(mc_sf_raw_int(fx,
                                       "SELECT count(*) FROM subject_keys WHERE account = 'acct-a'"
                                       " AND first_order_id = 'key-0'"),
                         1);

    /* Again: known order ids keep their answer (pending); the refused ones are refused again. */
    assert_int_equal(mc_store_intents_commit(s, b.in, 8, b.state, &err), MC_OK);
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(b.state[i], want[i] == MC_INTENT_NEW ? MC_INTENT_PENDING : want[i]);
    /* a known order id whose key now belongs to someone else keeps its earlier answer */
    b.in[0].account = "acct-b";
    assert_int_equal(mc_store_intents_commit(s, b.in, 1, b.state, &err), MC_OK);
    assert_int_equal(b.state[0], MC_INTENT_PENDING);

    /* A batch that fails rolls its bindings back with it: k4 is bound to nobody afterwards. */
    batch c;
    batch_make(&c, "key2", 100, 2);
    uint8_t k4[32];
    memset(k4, 0x44, 32);
    c.in[0].account = "acct-e";
    c.in[0].spki_sha256 = k4;
    memcpy(c.serial[1], b.serial[3], SER_LEN); /* serial collision: the batch fails */
    assert_int_equal(mc_store_intents_commit(s, c.in, 2, c.state, &err), MC_ERR_STORE);
    assert_int_equal(bound_keys(fx), 3);
    c.in[0].account = "acct-f";
    assert_int_equal(mc_store_intents_commit(s, c.in, 1, c.state, &err), MC_OK);
    assert_int_equal(c.state[0], MC_INTENT_NEW);

    /* a key hash without an account to bind it to is refused before anything is written */
    c.in[1] = c.in[0];
    c.in[1].order_id = "key2-x";
    c.in[1].account = "";
    assert_int_equal(mc_store_intents_commit(s, &c.in[1], 1, c.state, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "intents[0].account");
    mc_store_close(s);
    batch_free(&b);
    batch_free(&c);
}

typedef struct ct_seen {
    size_t n;
    mc_ct_state state[8];
    int attempts[8], http_status[8], precert[8];
    int64_t next_ms[8], sct_ts[8];
    char message[8][128];
    uint8_t sct[8][16];
    size_t sct_len[8];
    uint8_t log_id[8];
} ct_seen;

static void ct_collect(void *arg, const mc_ct_row *r)
{
    ct_seen *c = arg;
    if (c->n == 8)
        return;
    size_t i = c->n++;
    c->state[i] = r->state;
    c->attempts[i] = r->attempts;
    c->http_status[i] = r->http_status;
    c->precert[i] = r->precert;
    c->next_ms[i] = r->next_ms;
    c->sct_ts[i] = r->sct_timestamp;
    snprintf(c->message[i], sizeof c->message[i], "%s", r->message);
    c->sct_len[i] = r->sct ? r->sct_len : 0;
    if (r->sct)
        memcpy(c->sct[i], r->sct, r->sct_len < 16 ? r->sct_len : 16);
    c->log_id[i] = r->log_id[0];
}

/* Certificates and their CT outbox rows in one transaction: a failure of either side leaves
 * neither. */
static void test_certs_commit_ct(void **state)
{
    fixture *fx = *state;
    mc_store *s = open_ok(fx->where);
    mc_errdetail err;
    batch b;
    batch_make(&b, "cct", 0, 4);
    assert_int_equal(mc_store_intents_commit(s, b.in, 4, b.state, &err), MC_OK);
    uint8_t log_a[MC_CT_LOG_ID_LEN], stranger[SER_LEN];
    memset(log_a, 0xaa, sizeof log_a);
    memset(stranger, 0x77, sizeof stranger);
    static const uint8_t chain[] = {0, 0, 2, 0x30, 0x00};
    mc_ct_entry e[3] = {
        {b.serial[0], SER_LEN, log_a, 0, chain, sizeof chain, 1000},
        {b.serial[1], SER_LEN, log_a, 0, chain, sizeof chain, 1000},
        {stranger, SER_LEN, log_a, 0, chain, sizeof chain, 1000},
    };
    /* the third row has no intent: nothing at all is written */
    assert_int_equal(mc_store_certs_commit_ct(s, b.cert, 2, e, 3, &err), MC_ERR_STORE);
    expect_counts(s, 0, 4);
    int64_t p = -1;
    assert_int_equal(mc_store_ct_counts(s, &p, NULL, NULL, &err), MC_OK);
    assert_int_equal(p, 0);
    /* both sides together */
    assert_int_equal(mc_store_certs_commit_ct(s, b.cert, 2, e, 2, &err), MC_OK);
    expect_counts(s, 2, 2);
    assert_int_equal(mc_store_ct_counts(s, &p, NULL, NULL, &err), MC_OK);
    assert_int_equal(p, 2);
    /* a refused certificate (another DER for a serial) takes its CT rows down with it */
    uint8_t other[DER_LEN];
    memset(other, 0x5a, sizeof other);
    mc_stored_cert bad[2] = {b.cert[2], b.cert[0]};
    bad[1].der = other;
    mc_ct_entry e2 = {b.serial[2], SER_LEN, log_a, 0, chain, sizeof chain, 1000};
    assert_int_equal(mc_store_certs_commit_ct(s, bad, 2, &e2, 1, &err), MC_ERR_STORE);
    expect_counts(s, 2, 2);
    assert_int_equal(mc_store_ct_counts(s, &p, NULL, NULL, &err), MC_OK);
    assert_int_equal(p, 2);
    /* CT rows only, and no rows at all */
    assert_int_equal(mc_store_certs_commit_ct(s, NULL, 0, &e2, 1, &err), MC_OK);
    assert_int_equal(mc_store_certs_commit_ct(s, &b.cert[3], 1, NULL, 0, &err), MC_OK);
    expect_counts(s, 3, 1);
    assert_int_equal(mc_store_ct_counts(s, &p, NULL, NULL, &err), MC_OK);
    assert_int_equal(p, 3);
    mc_store_close(s);
    batch_free(&b);
}

/* Enqueue (idempotent, only for recorded serials), claim with a lease, record each kind of
 * outcome, list, count: the same on both backends. */
static void test_ct_outbox(void **state)
{
    fixture *fx = *state;
    mc_store *s = open_ok(fx->where);
    mc_errdetail err;
    batch b;
    batch_make(&b, "ct", 0, 3);
    assert_int_equal(mc_store_intents_commit(s, b.in, 3, b.state, &err), MC_OK);
    uint8_t log_a[MC_CT_LOG_ID_LEN], log_b[MC_CT_LOG_ID_LEN];
    memset(log_a, 0xaa, sizeof log_a);
    memset(log_b, 0xbb, sizeof log_b);
    static const uint8_t chain[] = {0, 0, 2, 0x30, 0x00};
    mc_ct_entry e[4] = {
        {b.serial[0], SER_LEN, log_a, 0, chain, sizeof chain, 1000},
        {b.serial[0], SER_LEN, log_b, 0, chain, sizeof chain, 1000},
        {b.serial[1], SER_LEN, log_a, 1, chain, sizeof chain, 2000},
        {b.serial[2], SER_LEN, log_a, 0, chain, sizeof chain, 3000},
    };
    assert_int_equal(mc_store_ct_enqueue(s, e, 4, &err), MC_OK);
    assert_int_equal(mc_store_ct_enqueue(s, e, 4, &err), MC_OK); /* again: no-op */
    int64_t p = -1, d = -1, r = -1;
    assert_int_equal(mc_store_ct_counts(s, &p, &d, &r, &err), MC_OK);
    assert_int_equal(p, 4);
    assert_int_equal(d, 0);
    assert_int_equal(r, 0);
    /* a serial without an intent: refused, nothing written */
    uint8_t stranger[SER_LEN];
    memset(stranger, 0x77, sizeof stranger);
    mc_ct_entry bad[2] = {e[3], {stranger, SER_LEN, log_a, 0, chain, sizeof chain, 0}};
    bad[0].log_id = log_b;
    assert_int_equal(mc_store_ct_enqueue(s, bad, 2, &err), MC_ERR_STORE);
    assert_int_equal(mc_store_ct_counts(s, &p, NULL, NULL, &err), MC_OK);
    assert_int_equal(p, 4);
    /* input checks */
    bad[1].serial_len = 0;
    assert_int_equal(mc_store_ct_enqueue(s, bad, 2, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "ct[1].serial");

    /* claim: due rows, oldest first, at most limit */
    mc_ct_job *jobs = NULL;
    size_t n = 0;
    assert_int_equal(mc_store_ct_claim(s, 1999, 60000, 10, &jobs, &n, &err), MC_OK);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++) {
        assert_memory_equal(jobs[i].serial, b.serial[0], SER_LEN);
        assert_int_equal(jobs[i].chain_len, sizeof chain);
        assert_memory_equal(jobs[i].chain, chain, sizeof chain);
        assert_int_equal(jobs[i].attempts, 0);
    }
    mc_store_ct_jobs_free(jobs, n);
    assert_int_equal(mc_store_ct_claim(s, 5000, 60000, 1, &jobs, &n, &err), MC_OK);
    assert_int_equal(n, 1); /* the two leased ones are not due; limit 1 of the other two */
    assert_memory_equal(jobs[0].serial, b.serial[1], SER_LEN);
    assert_int_equal(jobs[0].precert, 1);
    mc_store_ct_jobs_free(jobs, n);

    /* outcomes: done with its SCT, retry, rejected; an outcome for an unknown row is ignored */
    static const uint8_t sct[] = {0, 1, 2, 3, 4, 5, 6, 7};
    mc_ct_outcome o[4] = {
        {.serial = b.serial[0],
         .serial_len = SER_LEN,
         .log_id = log_a,
         .state = MC_CT_DONE,
         .next_ms = 1999,
         .http_status = 200,
         .sct_timestamp = 1234,
         .sct = sct,
         .sct_len = sizeof sct},
        {.serial = b.serial[0],
         .serial_len = SER_LEN,
         .log_id = log_b,
         .state = MC_CT_PENDING,
         .next_ms = 9000,
         .http_status = 503,
         .message = "HTTP 503 Retry-After 7"},
        {.serial = b.serial[1],
         .serial_len = SER_LEN,
         .log_id = log_a,
         .precert = 1,
         .state = MC_CT_REJECTED,
         .next_ms = 5000,
         .http_status = 400,
         .message = "HTTP 400: rejecting certificate without EKU in [serverAuth]"},
        {.serial = b.serial[2],
         .serial_len = SER_LEN,
         .log_id = log_b,
         .state = MC_CT_DONE,
         .sct = sct,
         .sct_len = sizeof sct},
    };
    assert_int_equal(mc_store_ct_record(s, o, 4, &err), MC_OK);
    /* recording the done row again changes nothing (another drainer finished it first) */
    o[0].state = MC_CT_REJECTED;
    assert_int_equal(mc_store_ct_record(s, o, 1, &err), MC_OK);
    assert_int_equal(mc_store_ct_counts(s, &p, &d, &r, &err), MC_OK);
    assert_int_equal(p, 2);
    assert_int_equal(d, 1);
    assert_int_equal(r, 1);
    ct_seen c;
    memset(&c, 0, sizeof c);
    assert_int_equal(mc_store_ct_list(s, b.serial[0], SER_LEN, ct_collect, &c, &err), MC_OK);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.log_id[0], 0xaa); /* ordered by log id */
    assert_int_equal(c.state[0], MC_CT_DONE);
    assert_int_equal(c.attempts[0], 1);
    assert_int_equal(c.http_status[0], 200);
    assert_int_equal(c.sct_len[0], sizeof sct);
    assert_memory_equal(c.sct[0], sct, sizeof sct);
    assert_int_equal(c.sct_ts[0], 1234);
    assert_string_equal(c.message[0], "");
    assert_int_equal(c.state[1], MC_CT_PENDING);
    assert_int_equal(c.attempts[1], 1);
    assert_int_equal(c.next_ms[1], 9000);
    assert_int_equal(c.http_status[1], 503);
    assert_int_equal(c.sct_len[1], 0);
    assert_string_equal(c.message[1], "HTTP 503 Retry-After 7");
    memset(&c, 0, sizeof c);
    assert_int_equal(mc_store_ct_list(s, NULL, 0, ct_collect, &c, &err), MC_OK);
    assert_int_equal(c.n, 4);
    memset(&c, 0, sizeof c);
    assert_int_equal(mc_store_ct_list(s, b.serial[1], SER_LEN, ct_collect, &c, &err), MC_OK);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.precert[0], 1);
    assert_int_equal(c.state[0], MC_CT_REJECTED);
    assert_string_equal(c.message[0],
                        "HTTP 400: rejecting certificate without EKU in [serverAuth]");
    /* a rejected row is never due again; the retried one is due at its time */
    assert_int_equal(mc_store_ct_claim(s, 8999, 90000, 10, &jobs, &n, &err), MC_OK);
    assert_int_equal(n, 1); /* serial 2 / log a, due since 3000 (limit 1 left it unclaimed) */
    mc_store_ct_jobs_free(jobs, n);
    assert_int_equal(mc_store_ct_claim(s, 9000, 90000, 10, &jobs, &n, &err), MC_OK);
    assert_int_equal(n, 1);
    assert_memory_equal(jobs[0].log_id, log_b, MC_CT_LOG_ID_LEN);
    assert_int_equal(jobs[0].attempts, 1);
    mc_store_ct_jobs_free(jobs, n);
    /* a done outcome needs its SCT */
    o[3].sct = NULL;
    assert_int_equal(mc_store_ct_record(s, &o[3], 1, &err), MC_ERR_INVALID);
    mc_store_close(s);
    batch_free(&b);
}

/* --- replacement (migration 4) -----------------------------------------------------------------
 * An intent's replaces links the replaced certificate to the replacing one when the latter is
 * committed, in the same transaction; an unknown or malformed replaces is recorded as given and
 * links nothing; a second replacement does not overwrite the first.
 */

static void test_replaced_by(void **state)
{
    fixture *fx = *state;
    mc_store *s = open_ok(fx->where);
    mc_errdetail err;
    batch old, rep;
    batch_make(&old, "old", 0, 2);
    batch_make(&rep, "rep", 100, 4);
    assert_int_equal(mc_store_intents_commit(s, old.in, 2, old.state, &err), MC_OK);
    assert_int_equal(mc_store_certs_commit(s, old.cert, 2, &err), MC_OK);
    char hex0[2 * MC_SERIAL_MAX + 1], hex0_upper[2 * MC_SERIAL_MAX + 1];
    mc_store_serial_hex(hex0, old.serial[0], SER_LEN);
    for (size_t i = 0; i <= strlen(hex0); i++)
        hex0_upper[i] = (char)(hex0[i] >= 'a' && hex0[i] <= 'f' ? hex0[i] - 32 : hex0[i]);
    rep.in[0].replaces = hex0;       /* ours: linked */
    rep.in[1].replaces = "4c0000ff"; /* not ours: recorded only */
    rep.in[2].replaces = hex0_upper; /* ours again, later: does not overwrite rep-100 */
    rep.in[3].replaces = "4c0";      /* not a serial: recorded only */
    assert_int_equal(mc_store_intents_commit(s, rep.in, 4, rep.state, &err), MC_OK);
    /* intents alone link nothing: the replacing certificate does not exist yet */
    expect_replaced_by(s, old.serial[0], NULL);
    assert_int_equal(mc_store_certs_commit(s, rep.cert, 1, &err), MC_OK);
    expect_replaced_by(s, old.serial[0], rep.serial[0]);
    assert_int_equal(mc_store_certs_commit(s, rep.cert + 1, 3, &err), MC_OK);
    expect_replaced_by(s, old.serial[0], rep.serial[0]);
    expect_replaced_by(s, old.serial[1], NULL);
    for (size_t i = 0; i < 4; i++)
        expect_replaced_by(s, rep.serial[i], NULL);
    assert_int_equal(
        mc_sf_raw_int(fx, "SELECT count(*) FROM certificates WHERE replaced_by IS NOT NULL"), 1);
    /* every replaces is kept as given */
    assert_int_equal(
        mc_sf_raw_int(fx, "SELECT count(*) FROM intents WHERE replaces IN ('4c0000ff', '4c0')"), 2);
    assert_int_equal(
        mc_sf_raw_int(fx, "SELECT count(*) FROM intents WHERE replaces_serial IS NOT NULL"), 3);
    /* an unknown serial is answered with nothing, a bad one refused */
    uint8_t out[MC_SERIAL_MAX];
    size_t n = 99;
    assert_int_equal(mc_store_replaced_by(s, (const uint8_t *)"\x01\x02", 2, out, &n, &err), MC_OK);
    assert_int_equal(n, 0);
    assert_int_equal(mc_store_replaced_by(s, out, 0, out, &n, &err), MC_ERR_INVALID);
    /* the parser used for replaces */
    size_t len = 0;
    assert_int_equal(mc_store_serial_parse("0aFf", out, &len), 1);
    assert_int_equal(len, 2);
    assert_int_equal(out[0], 0x0a);
    assert_int_equal(out[1], 0xff);
    assert_int_equal(mc_store_serial_parse("0a0", out, &len), 0);
    assert_int_equal(mc_store_serial_parse("0g", out, &len), 0);
    assert_int_equal(mc_store_serial_parse("", out, &len), 0);
    assert_int_equal(mc_store_serial_parse("00112233445566778899aabbccddeeff0011223344", out, &len),
                     0); /* 21 bytes */
    mc_store_close(s);
    batch_free(&old);
    batch_free(&rep);
}

/* --- revocation (SBR 4.9.1.1, 7.2.2) ----------------------------------------------------------
 * Ten orders: 0-3 account acct-a, 4-9 acct-b; 4 and 5 share subject key K; 9 was linted with an
 * older lint set; 8 has an intent but no certificate (never issued: never revoked).
 */

static void expect_status(mc_store *s, const uint8_t *serial, const char *status,
                          int64_t revoked_at, int reason)
{
    char st[16];
    int64_t at = 0;
    int r = 0;
    mc_errdetail err;
    assert_int_equal(mc_store_cert_status(s, serial, SER_LEN, st, sizeof st, &at, &r, &err), MC_OK);
    assert_string_equal(st, status);
    assert_int_equal(at, revoked_at);
    assert_int_equal(r, reason);
}

static void revoke_ok(mc_store *s, const mc_store_sel *sel, int reason, int64_t at, int dry,
                      int64_t selected, int64_t revoked, int64_t updated, int64_t unchanged)
{
    mc_revoke_counts c;
    mc_errdetail err;
    mc_err_clear(&err);
    mc_err rc = mc_store_revoke(s, sel, reason, at, dry, &c, &err);
    if (rc != MC_OK)
        print_error("mc_store_revoke: %s\n", err.message);
    assert_int_equal(rc, MC_OK);
    assert_int_equal(c.selected, selected);
    assert_int_equal(c.revoked, revoked);
    assert_int_equal(c.reason_updated, updated);
    assert_int_equal(c.unchanged, unchanged);
}

/* SBR 6.1.1.3 (4): once a certificate is revoked for keyCompromise, a new order for its key is
 * refused (any account, nothing recorded); a revocation for another reason refuses nothing. */
static void test_compromised_key_refused(void **state)
{
    fixture *fx = *state;
    mc_store *s = open_ok(fx->where);
    mc_errdetail err;
    uint8_t k1[32], k2[32];
    memset(k1, 0x61, sizeof k1);
    memset(k2, 0x62, sizeof k2);
    batch b;
    batch_make(&b, "kc", 0, 3);
    b.in[0].account = "acct-k";
    b.in[0].spki_sha256 = k1;
    b.in[1].account = "acct-k";
    b.in[1].spki_sha256 = k2;
    b.in[2].account = "acct-k"; /* recorded, never signed (a crash) */
    b.in[2].spki_sha256 = k1;
    assert_int_equal(mc_store_intents_commit(s, b.in, 3, b.state, &err), MC_OK);
    assert_int_equal(mc_store_certs_commit(s, b.cert, 2, &err), MC_OK);
    mc_store_sel by1 = {.spki_sha256 = k1};
    mc_store_sel by2 = {.spki_sha256 = k2};
    mc_revoke_counts c;
    /* a dry run counts the key and records nothing */
    assert_int_equal(mc_store_revoke(s, &by1, MC_CRL_KEY_COMPROMISE, 2000, 1, &c, &err), MC_OK);
    assert_int_equal(c.keys_compromised, 1);
    assert_int_equal(mc_sf_raw_int(fx, "SELECT count(*) FROM compromised_keys"), 0);
    assert_int_equal(mc_store_revoke(s, &by1, MC_CRL_KEY_COMPROMISE, 2000, 0, &c, &err), MC_OK);
    assert_int_equal(c.keys_compromised, 1);
    assert_int_equal(mc_store_revoke(s, &by2, MC_CRL_SUPERSEDED, 2000, 0, &c, &err), MC_OK);
    assert_int_equal(c.keys_compromised, 0);
    assert_int_equal(mc_sf_raw_int(fx, "SELECT count(*) FROM compromised_keys"), 1);

    batch n;
    batch_make(&n, "kc-new", 100, 4);
    const char *acct[4] = {"acct-k", "acct-other", "acct-k", "acct-k"};
    const uint8_t *key[4] = {k1, k1, k2, NULL};
    for (size_t i = 0; i < 4; i++) {
        n.in[i].account = acct[i];
        n.in[i].spki_sha256 = key[i];
    }
    assert_int_equal(mc_store_intents_commit(s, n.in, 4, n.state, &err), MC_OK);
    assert_int_equal(n.state[0], MC_INTENT_KEY_COMPROMISED);
    assert_int_equal(n.state[1], MC_INTENT_KEY_COMPROMISED);
    assert_int_equal(n.state[2], MC_INTENT_NEW); /* superseded is not a compromise */
    assert_int_equal(n.state[3], MC_INTENT_NEW);
    expect_counts(s, 2, 3);
    /* the intent recorded before the compromise is not signed now either */
    assert_int_equal(mc_store_intents_commit(s, b.in + 2, 1, b.state, &err), MC_OK);
    assert_int_equal(b.state[0], MC_INTENT_KEY_COMPROMISED);
    /* an order issued before the compromise keeps its answer (its certificate, now revoked) */
    assert_int_equal(mc_store_intents_commit(s, b.in, 1, b.state, &err), MC_OK);
    assert_int_equal(b.state[0], MC_INTENT_ISSUED);
    mc_store_close(s);
    batch_free(&b);
    batch_free(&n);
}

static void test_revoke(void **state)
{
    fixture *fx = *state;
    mc_store *s = open_ok(fx->where);
    mc_errdetail err;
    batch b;
    batch_make(&b, "rv", 0, 10);
    uint8_t key[32];
    memset(key, 0x4b, sizeof key);
    for (size_t i = 0; i < 10; i++)
        b.in[i].account = i < 4 ? "acct-a" : "acct-b";
    b.in[4].spki_sha256 = b.in[5].spki_sha256 = key;
    b.in[9].lint_version = "lints-2";
    /* recorded warnings: an error lint the enforced set demoted, beside other ids */
    b.in[5].lint_warnings = "e_qc_x";
    b.in[7].lint_warnings = "w_a,e_qc_x,w_b";
    b.in[6].lint_warnings = "w_a,e_qc_xy";
    b.in[8].lint_warnings = "e_qc_x"; /* pending: never selected */
    assert_int_equal(mc_store_intents_commit(s, b.in, 10, b.state, &err), MC_OK);
    assert_int_equal(mc_store_certs_commit(s, b.cert, 8, &err), MC_OK);
    assert_int_equal(mc_store_certs_commit(s, b.cert + 9, 1, &err), MC_OK);
    expect_status(s, b.serial[0], "issued", -1, -1);

    /* SBR 7.2.2 / 4.9.13: reasons a subscriber certificate is not revoked with here */
    mc_store_sel one = {.serial = b.serial[0], .serial_len = SER_LEN};
    mc_revoke_counts c;
    const int bad[] = {2, 6, 7, 8, 10, 11, -1};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        assert_int_equal(mc_store_revoke(s, &one, bad[k], 1000, 0, &c, &err), MC_ERR_INVALID);
        assert_string_equal(err.field, "reason");
        assert_string_equal(err.rule, "SBR 7.2.2");
    }
    for (int r = 0; r <= 10; r++)
        assert_int_equal(mc_crl_reason_allowed(r),
                         r == 0 || r == 1 || r == 3 || r == 4 || r == 5 || r == 9);
    mc_store_sel badsel = {.profile = "mailbox-strict",
                           .has = MC_SEL_ISSUED_AFTER | MC_SEL_ISSUED_BEFORE,
                           .issued_after = 10,
                           .issued_before = 10};
    assert_int_equal(mc_store_revoke(s, &badsel, 4, 1000, 0, &c, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "issued_before");
    badsel = (mc_store_sel){.account = ""};
    assert_int_equal(mc_store_revoke(s, &badsel, 4, 1000, 0, &c, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "account");
    /* no criterion: every certificate, never revoked by accident */
    badsel = (mc_store_sel){0};
    assert_int_equal(mc_store_revoke(s, &badsel, 4, 1000, 1, &c, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "selector");
    assert_int_equal(
        mc_sf_raw_int(fx, "SELECT count(*) FROM certificates WHERE status <> 'issued'"), 0);

    /* by a lint id among the warnings, dry runs (nothing written; every selected certificate
     * still issued): a whole element of the list, never a part of one */
    mc_store_sel lw = {.lint_id = "e_qc_x"};
    revoke_ok(s, &lw, MC_CRL_SUPERSEDED, 500, 1, 2, 2, 0, 0); /* orders 5 and 7 */
    lw.lint_id = "e_qc";
    revoke_ok(s, &lw, MC_CRL_SUPERSEDED, 500, 1, 0, 0, 0, 0);
    lw.lint_id = "w_a";
    revoke_ok(s, &lw, MC_CRL_SUPERSEDED, 500, 1, 2, 2, 0, 0); /* orders 6 and 7 */
    lw.lint_id = "w_b";
    revoke_ok(s, &lw, MC_CRL_SUPERSEDED, 500, 1, 1, 1, 0, 0); /* order 7: the last element */
    assert_int_equal(
        mc_sf_raw_int(fx, "SELECT count(*) FROM certificates WHERE status <> 'issued'"), 0);
    /* what is not one lint id is refused, naming the field */
    const char *bad_ids[] = {"", "e_qc_x,w_a", "e_qc%", "E_QC_X"};
    for (size_t k = 0; k < sizeof bad_ids / sizeof bad_ids[0]; k++) {
        lw.lint_id = bad_ids[k];
        assert_int_equal(mc_store_revoke(s, &lw, 4, 1000, 0, &c, &err), MC_ERR_INVALID);
        assert_string_equal(err.field, "lint_id");
    }

    /* by serial: superseded at 1000 */
    revoke_ok(s, &one, MC_CRL_SUPERSEDED, 1000, 0, 1, 1, 0, 0);
    expect_status(s, b.serial[0], "revoked", 1000, MC_CRL_SUPERSEDED);

    /* by account, dry run first: counts only, nothing written */
    mc_store_sel acct_a = {.account = "acct-a"};
    revoke_ok(s, &acct_a, MC_CRL_CESSATION_OF_OPERATION, 2000, 1, 4, 3, 0, 1);
    assert_int_equal(
        mc_sf_raw_int(fx, "SELECT count(*) FROM certificates WHERE status = 'revoked'"), 1);
    expect_status(s, b.serial[1], "issued", -1, -1);
    revoke_ok(s, &acct_a, MC_CRL_CESSATION_OF_OPERATION, 2000, 0, 4, 3, 0, 1);
    /* re-revoking keeps the first revocation */
    expect_status(s, b.serial[0], "revoked", 1000, MC_CRL_SUPERSEDED);
    expect_status(s, b.serial[1], "revoked", 2000, MC_CRL_CESSATION_OF_OPERATION);
    revoke_ok(s, &acct_a, MC_CRL_AFFILIATION_CHANGED, 2500, 0, 4, 0, 0, 4);
    expect_status(s, b.serial[3], "revoked", 2000, MC_CRL_CESSATION_OF_OPERATION);

    /* by subject key (SBR 4.9.1.1 item 3): keyCompromise */
    mc_store_sel by_key = {.spki_sha256 = key};
    revoke_ok(s, &by_key, MC_CRL_KEY_COMPROMISE, 3000, 0, 2, 2, 0, 0);
    expect_status(s, b.serial[4], "revoked", 3000, MC_CRL_KEY_COMPROMISE);
    expect_status(s, b.serial[6], "issued", -1, -1);

    /* keyCompromise supersedes the reason of earlier revocations, keeping their time */
    revoke_ok(s, &acct_a, MC_CRL_KEY_COMPROMISE, 4000, 1, 4, 0, 4, 0);
    expect_status(s, b.serial[0], "revoked", 1000, MC_CRL_SUPERSEDED);
    revoke_ok(s, &acct_a, MC_CRL_KEY_COMPROMISE, 4000, 0, 4, 0, 4, 0);
    expect_status(s, b.serial[0], "revoked", 1000, MC_CRL_KEY_COMPROMISE);
    expect_status(s, b.serial[2], "revoked", 2000, MC_CRL_KEY_COMPROMISE);
    revoke_ok(s, &acct_a, MC_CRL_KEY_COMPROMISE, 4500, 0, 4, 0, 0, 4);

    /* by profile and notBefore window [6, 8): orders 6 and 7 */
    mc_store_sel win = {.profile = "mailbox-strict",
                        .has = MC_SEL_ISSUED_AFTER | MC_SEL_ISSUED_BEFORE,
                        .issued_after = 1750000006,
                        .issued_before = 1750000008};
    revoke_ok(s, &win, MC_CRL_PRIVILEGE_WITHDRAWN, 5000, 0, 2, 2, 0, 0);
    expect_status(s, b.serial[6], "revoked", 5000, MC_CRL_PRIVILEGE_WITHDRAWN);
    expect_status(s, b.serial[7], "revoked", 5000, MC_CRL_PRIVILEGE_WITHDRAWN);
    win.profile = "mailbox-legacy";
    revoke_ok(s, &win, MC_CRL_PRIVILEGE_WITHDRAWN, 5000, 0, 0, 0, 0, 0);

    /* by lint set version; unspecified is recorded as 0 (a CRL then omits reasonCode) */
    mc_store_sel lint = {.lint_version = "lints-2"};
    revoke_ok(s, &lint, MC_CRL_UNSPECIFIED, 6000, 0, 1, 1, 0, 0);
    expect_status(s, b.serial[9], "revoked", 6000, MC_CRL_UNSPECIFIED);

    /* the pending intent (order 8) is never selected; everything else of acct-b is revoked */
    mc_store_sel acct_b = {.account = "acct-b"};
    revoke_ok(s, &acct_b, MC_CRL_SUPERSEDED, 7000, 0, 5, 0, 0, 5);
    /* by lint id, written this time: both were revoked before and stay as they were */
    lw.lint_id = "e_qc_x";
    revoke_ok(s, &lw, MC_CRL_SUPERSEDED, 8000, 0, 2, 0, 0, 2);
    assert_int_equal(
        mc_sf_raw_int(fx, "SELECT count(*) FROM certificates WHERE status = 'revoked'"), 9);
    assert_int_equal(
        mc_sf_raw_int(fx, "SELECT count(*) FROM certificates WHERE revocation_reason = 1"), 6);
    char st[16];
    assert_int_equal(mc_store_cert_status(s, b.serial[8], SER_LEN, st, sizeof st, NULL, NULL, &err),
                     MC_ERR_STORE);
    assert_string_equal(err.field, "serial");
    mc_store_close(s);
    batch_free(&b);
}

/* Bulk revocation rate: N certificates of one account revoked in chunks (a figure, no timing
 * assertion). 100,000 in SQLite (the figure asked for), 20,000 in PostgreSQL. */
static void test_bench_revoke(void **state)
{
    fixture *fx = *state;
    const size_t n = !fx->pg ? 100000 : 20000, step = 1000;
    mc_store *s = open_ok(fx->where);
    mc_errdetail err;
    batch b;
    batch_make(&b, "bulk", 0, n);
    for (size_t off = 0; off < n; off += step) {
        assert_int_equal(mc_store_intents_commit(s, b.in + off, step, b.state + off, &err), MC_OK);
        assert_int_equal(mc_store_certs_commit(s, b.cert + off, step, &err), MC_OK);
    }
    mc_store_sel sel = {.account = "acct-1"};
    double t0 = now_us();
    revoke_ok(s, &sel, MC_CRL_CESSATION_OF_OPERATION, 1000, 0, (int64_t)n, (int64_t)n, 0, 0);
    double dt = now_us() - t0;
    print_message("store/%s: revoked %zu certificates in %.2f s = %.0f revocations/s (chunks of "
                  "%d)\n",
                  backend_of(fx)->name, n, dt / 1e6, (double)n / (dt / 1e6), MC_REVOKE_CHUNK);
    assert_int_equal(mc_sf_raw_int(fx, "SELECT count(*) FROM certificates WHERE status = 'issued'"),
                     0);
    mc_store_close(s);
    batch_free(&b);
}

#ifdef MAILCA_HAVE_LIBPQ
/* "postgres://" is the same backend as "postgresql://". */
static void test_pg_scheme_alias(void **state)
{
    fixture *fx = *state;
    char alias[1100];
    assert_int_equal(strncmp(fx->where, "postgresql://", 13), 0);
    snprintf(alias, sizeof alias, "postgres://%s", fx->where + 13);
    mc_store *s = open_ok(alias);
    assert_string_equal(mc_store_backend(s), "postgresql");
    batch b;
    batch_make(&b, "alias", 0, 3);
    mc_errdetail err;
    assert_int_equal(mc_store_intents_commit(s, b.in, 3, b.state, &err), MC_OK);
    mc_store_close(s);
    assert_int_equal(mc_sf_raw_int(fx, "SELECT count(*) FROM intents"), 3);
    batch_free(&b);
}

/* The server ends the store's session (a restart, a failover, an idle timeout): the next call
 * fails with a retryable error at most, and the handle reconnects and prepares again. */
static void test_pg_reconnect(void **state)
{
    fixture *fx = *state;
    char where[1200], sql[256];
    /* a name of its own, so only this session is ended */
    snprintf(where, sizeof where, "%s&application_name=%s", fx->where, fx->schema);
    mc_store *s = open_ok(where);
    mc_errdetail err;
    batch b;
    batch_make(&b, "re", 0, 4);
    assert_int_equal(mc_store_intents_commit(s, b.in, 2, b.state, &err), MC_OK);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
             " WHERE application_name = '%s') AS t",
             fx->schema);
    assert_int_equal(mc_sf_raw_int(fx, sql), 1);
    int64_t c = -1, p = -1;
    mc_err rc = mc_store_counts(s, &c, &p, &err);
    if (rc != MC_OK) {
        assert_int_equal(rc, MC_ERR_STORE);
        assert_true(mc_err_retryable(rc));
    }
    assert_int_equal(mc_store_intents_commit(s, b.in + 2, 2, b.state + 2, &err), MC_OK);
    expect_counts(s, 0, 4);
    assert_int_equal(mc_store_certs_commit(s, b.cert, 4, &err), MC_OK);
    expect_lookup(s, b.order[3], b.serial[3], b.tbs[3], b.der[3]);
    mc_store_close(s);
    batch_free(&b);
}

/* The race of two engine nodes: once this node's statement (thread t, a statement starting
 * "WITH t AS") waits on a lock the other node's open transaction holds (bounded: 10 s), the
 * other node commits and leaves; then t is joined. */
static void other_node_commits(const fixture *fx, PGconn *other, pthread_t t)
{
    int waiting = 0;
    for (int i = 0; i < 1000 && !waiting; i++) {
        waiting = mc_sf_raw_int(fx, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type ="
                                    " 'Lock' AND query LIKE 'WITH t AS%'") == 1;
        if (!waiting)
            usleep(10000);
    }
    assert_true(waiting);
    PGresult *r = PQexec(other, "COMMIT");
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    PQfinish(other);
    assert_int_equal(pthread_join(t, NULL), 0);
}

/* One store call on a thread of its own, racing another node's open transaction: the intents
 * of in (2 rows) when in is set, else the certificate v. */
typedef struct race_call {
    mc_store *s;
    const mc_intent *in;
    const mc_stored_cert *v;
    mc_intent_state state[2];
    mc_err rc;
    mc_errdetail err;
} race_call;

static void *race_call_run(void *arg)
{
    race_call *r = arg;
    r->rc = r->in ? mc_store_intents_commit(r->s, r->in, 2, r->state, &r->err)
                  : mc_store_certs_commit(r->s, r->v, 1, &r->err);
    return NULL;
}

/* Another node opens a transaction with sql (which begins it) and holds it while rc runs on a
 * thread, until rc waits on its lock; then it commits and rc finishes. */
static void race(const fixture *fx, const char *sql, race_call *rc)
{
    PGconn *other = mc_sf_pg_connect(fx->where);
    PGresult *r = PQexec(other, sql);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, race_call_run, rc), 0);
    other_node_commits(fx, other, t);
}

/* Two engine nodes binding one subject key at once: another node's transaction binds key K to
 * acct-x and has not committed when this node's intents statement (K for acct-y, first row of
 * its batch) runs; the statement waits on the key, then finds it bound by a transaction its
 * snapshot does not show. The batch fails as retryable (sqlstate 40001 in the message) and
 * nothing of it stays, not even its other row; run again it sees the owner: K is refused
 * (KEY_BOUND), the other row goes in. */
static void test_pg_key_bind_race(void **state)
{
    fixture *fx = *state;
    mc_store *s = open_ok(fx->where);
    mc_errdetail err;
    batch b;
    batch_make(&b, "race", 0, 2);
    uint8_t k[32];
    memset(k, 0x5e, sizeof k);
    b.in[0].account = "acct-y";
    b.in[0].spki_sha256 = k;
    race_call rc = {.s = s, .in = b.in};
    race(fx,
         "BEGIN; INSERT INTO subject_keys (spki_sha256, account, first_order_id, created_at)"
         " VALUES (decode(repeat('5e', 32), 'hex'), 'acct-x', 'other-node-1', 0)",
         &rc);
    assert_int_equal(rc.rc, MC_ERR_STORE);
    assert_non_null(strstr(rc.err.message, "40001"));
    assert_non_null(strstr(rc.err.message, "'race-0'"));
    expect_counts(s, 0, 0);
    assert_int_equal(mc_sf_raw_int(fx, "SELECT count(*) FROM subject_keys"), 1);
    /* the retry sees acct-x's binding */
    assert_int_equal(mc_store_intents_commit(s, b.in, 2, b.state, &err), MC_OK);
    assert_int_equal(b.state[0], MC_INTENT_KEY_BOUND);
    assert_int_equal(b.state[1], MC_INTENT_NEW);
    expect_counts(s, 0, 1);
    mc_store_close(s);
    batch_free(&b);
}
/* Two engine nodes that took up one pending intent commit their signatures at once: the other
 * node's transaction holds the certificate when this node's statement runs, which waits on it
 * and, once it commits, skips the row without seeing it (its snapshot is older). The stored
 * certificate is read again by a new statement: the same TBS re-signed is flagged and kept
 * out, the batch goes in (it failed as "stored concurrently" before). */
static void test_pg_resign_race(void **state)
{
    fixture *fx = *state;
    mc_store *s = open_ok(fx->where);
    mc_errdetail err;
    batch b;
    batch_make(&b, "rsr", 0, 1);
    assert_int_equal(mc_store_intents_commit(s, b.in, 1, b.state, &err), MC_OK);
    uint8_t a0[MINI_CERT_LEN], a0b[MINI_CERT_LEN];
    mini_cert(a0, 0x10, 0x01);
    mini_cert(a0b, 0x10, 0x02);
    char sql[512], hs[2 * SER_LEN + 1], hd[2 * MINI_CERT_LEN + 1];
    for (size_t i = 0; i < SER_LEN; i++)
        snprintf(hs + 2 * i, 3, "%02x", b.serial[0][i]);
    for (size_t i = 0; i < MINI_CERT_LEN; i++)
        snprintf(hd + 2 * i, 3, "%02x", a0[i]);
    snprintf(sql, sizeof sql,
             "BEGIN; INSERT INTO certificates (serial, order_id, der, issued_at) VALUES"
             " (decode('%s', 'hex'), '%s', decode('%s', 'hex'), 0)",
             hs, b.order[0], hd);
    int flag = 7;
    mc_stored_cert v = b.cert[0];
    v.der = a0b;
    v.der_len = sizeof a0b;
    v.resigned = &flag;
    race_call rc = {.s = s, .v = &v};
    race(fx, sql, &rc);
    if (rc.rc != MC_OK)
        fail_msg("certs commit: %s", rc.err.message);
    assert_int_equal(flag, 1);
    expect_lookup_len(s, b.order[0], b.serial[0], b.tbs[0], a0, sizeof a0);
    expect_counts(s, 1, 0);
    mc_store_close(s);
    batch_free(&b);
}
#else
/* Without libpq a PostgreSQL URI is refused as unsupported (not taken for a file name). */
static void test_pg_unsupported(void **state)
{
    (void)state;
    mc_store *s = NULL;
    mc_errdetail err;
    assert_int_equal(mc_store_open("postgresql://127.0.0.1/x", &s, &err), MC_ERR_UNSUPPORTED);
    assert_null(s);
    assert_int_equal(mc_store_open("postgres://127.0.0.1/x", &s, &err), MC_ERR_UNSUPPORTED);
    assert_null(s);
}
#endif

/* A claimed CT outbox row as both backends read it (mc_store_ct_job_fill): copied when well
 * formed, refused naming the lengths otherwise (no serial, an empty or too long one, a log id
 * of the wrong length, no chain), nothing left to free. */
static void test_ct_job_fill(void **state)
{
    (void)state;
    uint8_t serial[MC_SERIAL_MAX + 1], log_id[MC_CT_LOG_ID_LEN], chain[40];
    memset(serial, 0x11, sizeof serial);
    memset(log_id, 0x22, sizeof log_id);
    memset(chain, 0x33, sizeof chain);
    mc_ct_job j;
    mc_errdetail err;
    assert_int_equal(mc_store_ct_job_fill(&j, serial, 16, log_id, sizeof log_id, 1, chain,
                                          sizeof chain, 3, &err),
                     MC_OK);
    assert_int_equal(j.serial_len, 16);
    assert_memory_equal(j.serial, serial, 16);
    assert_memory_equal(j.log_id, log_id, sizeof log_id);
    assert_int_equal(j.precert, 1);
    assert_int_equal(j.attempts, 3);
    assert_int_equal(j.chain_len, sizeof chain);
    assert_memory_equal(j.chain, chain, sizeof chain);
    assert_ptr_not_equal(j.chain, chain);
    free(j.chain);

    struct {
        const void *serial;
        size_t sl, ll;
        const void *chain;
        size_t cl;
    } bad[] = {
        {NULL, 0, sizeof log_id, chain, sizeof chain},
        {serial, 0, sizeof log_id, chain, sizeof chain},
        {serial, MC_SERIAL_MAX + 1, sizeof log_id, chain, sizeof chain},
        {serial, 16, sizeof log_id - 1, chain, sizeof chain},
        {serial, 16, sizeof log_id, NULL, 0},
        {serial, 16, sizeof log_id, chain, 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(mc_store_ct_job_fill(&j, bad[i].serial, bad[i].sl, log_id, bad[i].ll, 0,
                                              bad[i].chain, bad[i].cl, 0, &err),
                         MC_ERR_STORE);
        assert_null(j.chain);
        assert_string_equal(err.field, "ct_outbox");
        assert_non_null(strstr(err.message, "malformed outbox row"));
    }
}

/* The collector hands WAL checkpoints to a connection of its own (pipeline.c): its commits then
 * only grow the WAL, another connection copies it, and past the hard limit a commit copies it
 * itself, so the WAL stays bounded. PostgreSQL has no WAL to hand over: no-ops. */
static void test_checkpoint_elsewhere(void **state)
{
    fixture *fx = *state;
    mc_store *w = open_ok(fx->where), *k = open_ok(fx->where);
    mc_errdetail err;
    assert_int_equal(mc_store_checkpoint_elsewhere(w, 0, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "hard_pages");
    if (!mc_store_has_wal(w)) {
        assert_int_equal(mc_store_checkpoint_elsewhere(w, 10, &err), MC_OK);
        assert_int_equal(mc_store_wal_pages(w), 0);
        assert_int_equal(mc_store_checkpoint(k, &err), MC_OK);
        mc_store_close(w);
        mc_store_close(k);
        return;
    }
    struct stat st0, st1;
    assert_int_equal(stat(fx->where, &st0), 0);
    assert_int_equal(mc_store_checkpoint_elsewhere(w, 1000000, &err), MC_OK);
    batch b[8];
    long pages[8];
    for (int i = 0; i < 3; i++) {
        batch_make(&b[i], "ckp", (uint32_t)(i * 100), 100);
        assert_int_equal(mc_store_intents_commit(w, b[i].in, b[i].n, b[i].state, &err), MC_OK);
        assert_int_equal(mc_store_certs_commit(w, b[i].cert, b[i].n, &err), MC_OK);
        pages[i] = mc_store_wal_pages(w);
        /* nothing copied at commit: the WAL only grows */
        assert_true(pages[i] > (i ? pages[i - 1] : 0));
    }
    /* the other connection copies it into the database file */
    assert_int_equal(stat(fx->where, &st1), 0);
    assert_int_equal(st1.st_size, st0.st_size);
    assert_int_equal(mc_store_checkpoint(k, &err), MC_OK);
    assert_int_equal(stat(fx->where, &st1), 0);
    assert_true(st1.st_size > st0.st_size);
    /* and the writer's next commit starts the WAL over */
    batch_make(&b[3], "ckp", 300, 10);
    assert_int_equal(mc_store_intents_commit(w, b[3].in, b[3].n, b[3].state, &err), MC_OK);
    pages[3] = mc_store_wal_pages(w);
    assert_true(pages[3] < pages[0]);
    /* with nobody copying, a commit past the hard limit copies the WAL itself: bounded */
    long hard = pages[0];
    assert_int_equal(mc_store_checkpoint_elsewhere(w, hard, &err), MC_OK);
    long most = 0;
    for (int i = 4; i < 8; i++) {
        batch_make(&b[i], "ckp", (uint32_t)(310 + (i - 4) * 100), 100);
        assert_int_equal(mc_store_intents_commit(w, b[i].in, b[i].n, b[i].state, &err), MC_OK);
        assert_int_equal(mc_store_certs_commit(w, b[i].cert, b[i].n, &err), MC_OK);
        if (mc_store_wal_pages(w) > most)
            most = mc_store_wal_pages(w);
    }
    assert_true(most < 2 * hard + pages[0]);
    expect_counts(k, 700, 10);
    expect_lookup(k, b[7].order[99], b[7].serial[99], b[7].tbs[99], b[7].der[99]);
    mc_store_close(w);
    mc_store_close(k);
    for (int i = 0; i < 8; i++)
        batch_free(&b[i]);
}

typedef struct audit_seen {
    size_t n;
    int64_t id[16];
    char event[16][32], subject[16][64], detail[16][128], actor[16][MC_AUDIT_ACTOR_MAX];
    int64_t at[16];
    int subject_null[16], detail_null[16];
} audit_seen;

static void audit_collect(void *arg, const mc_audit_event *ev)
{
    audit_seen *a = arg;
    assert_true(a->n < 16);
    a->id[a->n] = ev->id;
    a->at[a->n] = ev->at;
    snprintf(a->event[a->n], sizeof a->event[0], "%s", ev->event);
    snprintf(a->actor[a->n], sizeof a->actor[0], "%s", ev->actor);
    a->subject_null[a->n] = ev->subject == NULL;
    a->detail_null[a->n] = ev->detail == NULL;
    snprintf(a->subject[a->n], sizeof a->subject[0], "%s", ev->subject ? ev->subject : "");
    snprintf(a->detail[a->n], sizeof a->detail[0], "%s", ev->detail ? ev->detail : "");
    a->n++;
}

static audit_seen audit_list(mc_store *s, int64_t after, int64_t since, const char *event)
{
    audit_seen a;
    mc_errdetail err;
    memset(&a, 0, sizeof a);
    assert_int_equal(mc_store_audit_list(s, after, since, event, audit_collect, &a, &err), MC_OK);
    return a;
}

/* The audit log (SBR 5.4.1): the store's creation is its first record (store.migrate, with who
 * and the versions); events come back in order with their exact strings, NULLs kept; event,
 * time and id filters; a record without actor or event is refused with the rule and writes
 * nothing of its group; the rows cannot be changed or deleted (SBR 5.4.4). */
static void test_audit_log(void **state)
{
    fixture *fx = *state;
    mc_store *s = open_ok(fx->where);
    mc_errdetail err;
    audit_seen a = audit_list(s, 0, 0, NULL);
    assert_int_equal(a.n, 1);
    assert_string_equal(a.event[0], "store.migrate");
    assert_string_equal(a.subject[0], "schema");
    char want_to[48];
    snprintf(want_to, sizeof want_to, "\"from\":0,\"to\":%d", MC_STORE_SCHEMA_VERSION);
    assert_non_null(strstr(a.detail[0], want_to));
    assert_int_equal(strncmp(a.actor[0], "user ", 5), 0);
    const char *tricky = "o-\"1\",\n\\x";
    mc_audit_event v[3] = {
        {.at = 1000,
         .actor = "user a (uid 1)",
         .event = "order.rejected",
         .subject = tricky,
         .detail = "{\"code\":\"invalid\"}"},
        {.at = 2000, .actor = "user a (uid 1)", .event = "run.end"},
        {.at = 3000,
         .actor = "user b (uid 2)",
         .event = "order.rejected",
         .subject = "o-2",
         .detail = "{}"},
    };
    assert_int_equal(mc_store_audit_append(s, v, 3, &err), MC_OK);
    a = audit_list(s, 0, 0, NULL);
    assert_int_equal(a.n, 4);
    for (size_t i = 1; i < 4; i++) {
        assert_true(a.id[i] > a.id[i - 1]);
        assert_string_equal(a.event[i], v[i - 1].event);
        assert_string_equal(a.actor[i], v[i - 1].actor);
        assert_int_equal(a.at[i], v[i - 1].at);
    }
    assert_string_equal(a.subject[1], tricky);
    assert_int_equal(a.subject_null[2], 1);
    assert_int_equal(a.detail_null[2], 1);
    a = audit_list(s, 0, 0, "order.rejected");
    assert_int_equal(a.n, 2);
    assert_string_equal(a.subject[1], "o-2");
    a = audit_list(s, 0, 1500, "order.rejected");
    assert_int_equal(a.n, 1);
    assert_string_equal(a.subject[0], "o-2");
    int64_t second = audit_list(s, 0, 0, NULL).id[1];
    assert_int_equal(audit_list(s, second, 0, NULL).n, 2);
    assert_int_equal(audit_list(s, 0, 0, "no.such.event").n, 0);

    /* who and what are required: the whole group is refused */
    mc_audit_event bad[2] = {{.at = 1, .actor = "user a (uid 1)", .event = "run.start"},
                             {.at = 1, .actor = "", .event = "run.end"}};
    assert_int_equal(mc_store_audit_append(s, bad, 2, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "v[1].actor");
    assert_string_equal(err.rule, "SBR 5.4.1");
    bad[1].actor = "user a (uid 1)";
    bad[1].event = NULL;
    assert_int_equal(mc_store_audit_append(s, bad, 2, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "v[1].event");
    assert_int_equal(mc_sf_raw_int(fx, "SELECT count(*) FROM audit_log"), 4);
    mc_store_close(s);

    /* append-only */
    assert_int_equal(mc_sf_raw_try(fx, "UPDATE audit_log SET actor = 'someone else'"), 0);
    assert_int_equal(mc_sf_raw_try(fx, "DELETE FROM audit_log WHERE event = 'order.rejected'"), 0);
    if (fx->pg)
        assert_int_equal(mc_sf_raw_try(fx, "TRUNCATE audit_log"), 0);
    assert_int_equal(
        mc_sf_raw_int(fx, "SELECT count(*) FROM audit_log WHERE actor = 'user b (uid 2)'"), 1);
    assert_int_equal(mc_sf_raw_int(fx, "SELECT count(*) FROM audit_log"), 4);
    /* and still appendable after the refusals */
    assert_int_equal(
        mc_sf_raw_try(fx, "INSERT INTO audit_log (at, actor, event) VALUES (5, 'x', 'y')"), 1);
}

/* OCSP (SBR 4.9.10): one read tells unused, reserved (intent only), issued and revoked apart;
 * neither an unused nor a reserved serial is an error or looks issued. */
static void test_serial_status(void **state)
{
    fixture *fx = *state;
    mc_store *s = open_ok(fx->where);
    mc_errdetail err;
    batch b;
    batch_make(&b, "ss", 0, 4);
    assert_int_equal(mc_store_intents_commit(s, b.in, 4, b.state, &err), MC_OK);
    assert_int_equal(mc_store_certs_commit(s, b.cert, 3, &err), MC_OK); /* 3: intent only */
    mc_store_sel one = {.serial = b.serial[1], .serial_len = SER_LEN};
    mc_revoke_counts c;
    assert_int_equal(mc_store_revoke(s, &one, MC_CRL_KEY_COMPROMISE, 5000, 0, &c, &err), MC_OK);
    one.serial = b.serial[2];
    assert_int_equal(mc_store_revoke(s, &one, MC_CRL_UNSPECIFIED, 6000, 0, &c, &err), MC_OK);

    mc_serial_status st;
    assert_int_equal(mc_store_serial_status(s, b.serial[0], SER_LEN, &st, &err), MC_OK);
    assert_int_equal(st.state, MC_SERIAL_ISSUED);
    assert_int_equal(st.not_after, b.in[0].not_after);
    assert_int_equal(st.revoked_at, -1);
    assert_int_equal(st.reason, -1);
    assert_int_equal(mc_store_serial_status(s, b.serial[1], SER_LEN, &st, &err), MC_OK);
    assert_int_equal(st.state, MC_SERIAL_REVOKED);
    assert_int_equal(st.revoked_at, 5000);
    assert_int_equal(st.reason, MC_CRL_KEY_COMPROMISE);
    assert_int_equal(mc_store_serial_status(s, b.serial[2], SER_LEN, &st, &err), MC_OK);
    assert_int_equal(st.state, MC_SERIAL_REVOKED);
    assert_int_equal(st.revoked_at, 6000);
    assert_int_equal(st.reason, MC_CRL_UNSPECIFIED);
    assert_int_equal(mc_store_serial_status(s, b.serial[3], SER_LEN, &st, &err), MC_OK);
    assert_int_equal(st.state, MC_SERIAL_RESERVED);
    assert_int_equal(st.not_after, b.in[3].not_after);
    assert_int_equal(st.revoked_at, -1);
    /* a serial never assigned: answered, not an error */
    uint8_t other[SER_LEN];
    memcpy(other, b.serial[0], SER_LEN);
    other[SER_LEN - 1] ^= 0xff;
    assert_int_equal(mc_store_serial_status(s, other, SER_LEN, &st, &err), MC_OK);
    assert_int_equal(st.state, MC_SERIAL_UNUSED);
    assert_int_equal(st.not_after, 0);
    /* a serial that is none (RFC 5280 4.1.2.2) is refused */
    assert_int_equal(mc_store_serial_status(s, other, 0, &st, &err), MC_ERR_INVALID);
    assert_int_equal(mc_store_serial_status(s, other, MC_SERIAL_MAX + 1, &st, &err),
                     MC_ERR_INVALID);
    mc_store_close(s);
    batch_free(&b);
}

/* The whole suite, once per backend. */
#define STORE_TESTS(setup, teardown)                                                               \
    cmocka_unit_test_setup_teardown(test_open_migrate_idempotent, setup, teardown),                \
        cmocka_unit_test_setup_teardown(test_migrate, setup, teardown),                            \
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),               \
        cmocka_unit_test_setup_teardown(test_open_bad_path, setup, teardown),                      \
        cmocka_unit_test_setup_teardown(test_batch_1000_roundtrip, setup, teardown),               \
        cmocka_unit_test_setup_teardown(test_duplicate_across_batches, setup, teardown),           \
        cmocka_unit_test_setup_teardown(test_duplicate_within_batch, setup, teardown),             \
        cmocka_unit_test_setup_teardown(test_serial_collision_rolls_back, setup, teardown),        \
        cmocka_unit_test_setup_teardown(test_certs_must_match_intent, setup, teardown),            \
        cmocka_unit_test_setup_teardown(test_invalid_input, setup, teardown),                      \
        cmocka_unit_test_setup_teardown(test_certs_resigned, setup, teardown),                     \
        cmocka_unit_test_setup_teardown(test_pending_listing, setup, teardown),                    \
        cmocka_unit_test_setup_teardown(test_second_handle_sees_commits, setup, teardown),         \
        cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup, teardown),                  \
        cmocka_unit_test_setup_teardown(test_lookup_partial_outputs, setup, teardown),             \
        cmocka_unit_test_setup_teardown(test_two_writers, setup, teardown),                        \
        cmocka_unit_test_setup_teardown(test_bench_batch_256, setup, teardown),                    \
        cmocka_unit_test_setup_teardown(test_migrate_1_to_current, setup, teardown),               \
        cmocka_unit_test_setup_teardown(test_migrate_5_to_6, setup, teardown),                     \
        cmocka_unit_test_setup_teardown(test_migrate_6_to_7, setup, teardown),                     \
        cmocka_unit_test_setup_teardown(test_migrate_7_dangling_refused, setup, teardown),         \
        cmocka_unit_test_setup_teardown(test_subject_key_binding, setup, teardown),                \
        cmocka_unit_test_setup_teardown(test_ct_outbox, setup, teardown),                          \
        cmocka_unit_test_setup_teardown(test_certs_commit_ct, setup, teardown),                    \
        cmocka_unit_test_setup_teardown(test_replaced_by, setup, teardown),                        \
        cmocka_unit_test_setup_teardown(test_revoke, setup, teardown),                             \
        cmocka_unit_test_setup_teardown(test_compromised_key_refused, setup, teardown),            \
        cmocka_unit_test_setup_teardown(test_bench_revoke, setup, teardown),                       \
        cmocka_unit_test_setup_teardown(test_checkpoint_elsewhere, setup, teardown),               \
        cmocka_unit_test_setup_teardown(test_migrate_7_to_8, setup, teardown),                     \
        cmocka_unit_test_setup_teardown(test_durability, setup, teardown),                         \
        cmocka_unit_test_setup_teardown(test_crl_store, setup, teardown),                          \
        cmocka_unit_test_setup_teardown(test_crl_number_race, setup, teardown),                    \
        cmocka_unit_test_setup_teardown(test_audit_log, setup, teardown),                          \
        cmocka_unit_test_setup_teardown(test_serial_status, setup, teardown),                      \
        cmocka_unit_test_setup_teardown(test_crl_shards_store, setup, teardown),                   \
        cmocka_unit_test_setup_teardown(test_migrate_10_to_11, setup, teardown)

/* `mailca revoke --reason NAME` (mc_revoke_reason_parse): the RFC 5280 5.3.1 names, any case;
 * the codes mc_crl_reason_allowed refuses (test_revoke) are refused by name too, certificateHold
 * as suspension (SBR 4.9.13), the others under SBR 7.2.2 (store.h "revocation"); anything else
 * is not a CRLReason name. */
static void test_revoke_reason_parse(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int code;
    } ok[] = {{"unspecified", 0},        {"keyCompromise", 1}, {"KEYCOMPROMISE", 1},
              {"affiliationChanged", 3}, {"superseded", 4},    {"cessationOfOperation", 5},
              {"privilegewithdrawn", 9}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        mc_errdetail err;
        mc_err_clear(&err);
        int r = -1;
        assert_int_equal(mc_revoke_reason_parse(ok[i].name, &r, &err), MC_OK);
        assert_int_equal(r, ok[i].code);
        assert_int_equal(mc_crl_reason_allowed(r), 1);
    }
    static const struct {
        const char *name;
        const char *rule;
    } bad[] = {{"cACompromise", "SBR 7.2.2"},
               {"removeFromCRL", "SBR 7.2.2"},
               {"aACompromise", "SBR 7.2.2"},
               {"certificateHold", "SBR 4.9.13"},
               {"CERTIFICATEHOLD", "SBR 4.9.13"},
               {"bogus", "RFC 5280 5.3.1"},
               {"", "RFC 5280 5.3.1"},
               {"keyCompromise ", "RFC 5280 5.3.1"},
               {NULL, "RFC 5280 5.3.1"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mc_errdetail err;
        mc_err_clear(&err);
        int r = 12345;
        assert_int_equal(mc_revoke_reason_parse(bad[i].name, &r, &err), MC_ERR_INVALID);
        assert_string_equal(err.field, "reason");
        assert_string_equal(err.rule, bad[i].rule);
        assert_int_equal(r, 12345);
    }
}

int main(void)
{
    const struct CMUnitTest sqlite_tests[] = {
        STORE_TESTS(mc_sf_sqlite_setup, mc_sf_sqlite_teardown),
        cmocka_unit_test(test_ct_job_fill),
#ifndef MAILCA_HAVE_LIBPQ
        cmocka_unit_test(test_pg_unsupported),
#endif
        cmocka_unit_test(test_revoke_reason_parse),
    };
    int failed = cmocka_run_group_tests_name("store/sqlite", sqlite_tests, NULL, NULL);
#ifdef MAILCA_HAVE_LIBPQ
    const struct CMUnitTest pg_tests[] = {
        STORE_TESTS(mc_sf_pg_setup, mc_sf_pg_teardown),
        cmocka_unit_test_setup_teardown(test_pg_scheme_alias, mc_sf_pg_setup, mc_sf_pg_teardown),
        cmocka_unit_test_setup_teardown(test_pg_reconnect, mc_sf_pg_setup, mc_sf_pg_teardown),
        cmocka_unit_test_setup_teardown(test_pg_key_bind_race, mc_sf_pg_setup, mc_sf_pg_teardown),
        cmocka_unit_test_setup_teardown(test_pg_resign_race, mc_sf_pg_setup, mc_sf_pg_teardown),
    };
    failed += cmocka_run_group_tests_name("store/postgresql", pg_tests, mc_sf_pg_group_setup,
                                          mc_sf_pg_group_teardown);
#else
    printf("store/postgresql: not run, this build has no libpq (MAILCA_HAVE_LIBPQ)\n");
#endif
    return failed;
}
