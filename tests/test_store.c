/*
 * Unit tests for mc_store against a real SQLite file in a fresh temporary directory (under
 * $MAILCA_TEST_TMP when set, else /tmp), removed after each test. Some checks read the file
 * through a separate raw sqlite3 connection, so they see what is really on disk.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mailca/store.h"

/* --- temporary directory ---------------------------------------------------------------------- */

typedef struct fixture {
    char dir[512];
    char db[600];
} fixture;

static int fx_setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    const char *base = getenv("MAILCA_TEST_TMP");
    if (!base || !base[0])
        base = "/tmp";
    if (mkdir(base, 0700) != 0 && errno != EEXIST)
        goto fail;
    snprintf(fx->dir, sizeof fx->dir, "%s/mc-store-XXXXXX", base);
    if (!mkdtemp(fx->dir))
        goto fail;
    snprintf(fx->db, sizeof fx->db, "%s/store.db", fx->dir);
    *state = fx;
    return 0;
fail:
    free(fx);
    return -1;
}

static int fx_teardown(void **state)
{
    fixture *fx = *state;
    DIR *d = opendir(fx->dir);
    if (d) {
        struct dirent *e;
        char p[1024];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof p, "%s/%s", fx->dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    int rc = rmdir(fx->dir);
    free(fx);
    return rc;
}

/* One integer answer from a separate raw connection (another reader of the same file). */
static int64_t raw_int(const char *db, const char *sql)
{
    sqlite3 *c = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    assert_int_equal(sqlite3_open_v2(db, &c, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(c, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(c);
    return v;
}

static void raw_exec(const char *db, const char *sql)
{
    sqlite3 *c = NULL;
    assert_int_equal(sqlite3_open(db, &c), SQLITE_OK);
    assert_int_equal(sqlite3_exec(c, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(c);
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

/* Looks order_id up and compares with the expected serial / tbs / der (der NULL: none yet). */
static void expect_lookup(mc_store *s, const char *order_id, const uint8_t *serial,
                          const uint8_t *tbs, const uint8_t *der)
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
        assert_int_equal(d_len, DER_LEN);
        assert_memory_equal(d, der, DER_LEN);
    } else {
        assert_null(d);
        assert_int_equal(d_len, 0);
    }
    free(ser);
    free(t);
    free(d);
}

/* --- tests
 * ---------------------------------------------------------------------------------------- */

static void test_open_migrate_idempotent(void **state)
{
    fixture *fx = *state;
    mc_store *s = open_ok(fx->db);
    mc_store_close(s);
    s = open_ok(fx->db); /* second open: nothing to migrate */
    expect_counts(s, 0, 0);
    mc_store_close(s);
    assert_int_equal(raw_int(fx->db, "SELECT count(*) FROM schema_version"), 1);
    assert_int_equal(raw_int(fx->db, "SELECT max(version) FROM schema_version"), 1);
    /* WAL is a property of the file, seen by any connection. */
    assert_int_equal(raw_int(fx->db, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);
    assert_int_equal(raw_int(fx->db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table'"
                                     " AND name IN ('intents', 'certificates', 'schema_version')"),
                     3);
    assert_int_equal(raw_int(fx->db, "SELECT count(*) FROM sqlite_schema WHERE type = 'index'"
                                     " AND name IN ('intents_profile_not_before',"
                                     " 'intents_not_after')"),
                     2);
    /* the provenance columns of mc_intent, plus the certificate's revocation state */
    assert_int_equal(raw_int(fx->db, "SELECT count(*) FROM pragma_table_info('intents')"), 16);
    assert_int_equal(raw_int(fx->db, "SELECT count(*) FROM pragma_table_info('certificates')"), 7);
}

static void test_newer_schema_refused(void **state)
{
    fixture *fx = *state;
    mc_store_close(open_ok(fx->db));
    raw_exec(fx->db, "INSERT INTO schema_version (version, applied_at) VALUES (2, 0)");
    mc_store *s = NULL;
    mc_errdetail err;
    mc_err_clear(&err);
    assert_int_equal(mc_store_open(fx->db, &s, &err), MC_ERR_STORE);
    assert_null(s);
    assert_non_null(strstr(err.message, "schema version 2 is newer"));
}

static void test_open_bad_path(void **state)
{
    fixture *fx = *state;
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
    mc_store *s = open_ok(fx->db);
    batch b;
    batch_make(&b, "ord", 0, 1000);
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
    assert_int_equal(raw_int(fx->db, "SELECT count(*) FROM intents WHERE order_id = 'ord-7'"
                                     " AND account = 'acct-1' AND profile = 'mailbox-strict'"
                                     " AND lint_version = 'lints-3' AND engine_version = '0.1.0'"
                                     " AND not_before = 1750000007 AND not_after = 1750086407"
                                     " AND mailboxes = 'a@example.com,b@example.com'"
                                     " AND evidence = '{\"method\":\"3.2.2.1\"}'"
                                     " AND lint_warnings = '' AND replaces IS NULL"
                                     " AND length(profile_hash) = 32 AND length(tbs_hash) = 32"
                                     " AND hex(profile_hash) = '"
                                     "A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5"
                                     "A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5'"
                                     " AND created_at > 0"),
                     1);
    assert_int_equal(raw_int(fx->db, "SELECT count(*) FROM certificates"
                                     " WHERE status = 'issued' AND issued_at > 0"),
                     1000);
    /* the inventory query uses the index */
    assert_int_equal(raw_int(fx->db, "SELECT count(*) FROM intents WHERE profile ="
                                     " 'mailbox-strict' AND not_before BETWEEN 1750000100 AND"
                                     " 1750000199"),
                     100);
    mc_store_close(s);
    batch_free(&b);
}

static void test_duplicate_across_batches(void **state)
{
    fixture *fx = *state;
    mc_store *s = open_ok(fx->db);
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
    assert_int_equal(raw_int(fx->db, "SELECT count(*) FROM intents"), 5);
    mc_store_close(s);
    batch_free(&a);
    batch_free(&b);
}

static void test_duplicate_within_batch(void **state)
{
    fixture *fx = *state;
    mc_store *s = open_ok(fx->db);
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
    mc_store *s = open_ok(fx->db);
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
    mc_store_close(s);
    batch_free(&a);
    batch_free(&b);
    batch_free(&c);
}

static void test_certs_must_match_intent(void **state)
{
    fixture *fx = *state;
    mc_store *s = open_ok(fx->db);
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

static void test_invalid_input(void **state)
{
    fixture *fx = *state;
    mc_store *s = open_ok(fx->db);
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
    mc_store *s = open_ok(fx->db);
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
    mc_store *s1 = open_ok(fx->db);
    mc_store *s2 = open_ok(fx->db);
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
    mc_store *s = open_ok(fx->db);
    mc_errdetail err;
    batch b;
    batch_make(&b, "keep", 0, 20);
    assert_int_equal(mc_store_intents_commit(s, b.in, 20, b.state, &err), MC_OK);
    assert_int_equal(mc_store_certs_commit(s, b.cert, 12, &err), MC_OK);
    mc_store_close(s);

    s = open_ok(fx->db);
    expect_counts(s, 12, 8);
    expect_lookup(s, b.order[11], b.serial[11], b.tbs[11], b.der[11]);
    expect_lookup(s, b.order[12], b.serial[12], b.tbs[12], NULL);
    assert_int_equal(raw_int(fx->db, "SELECT count(*) FROM schema_version"), 1);
    mc_store_close(s);
    batch_free(&b);
}

static void test_lookup_partial_outputs(void **state)
{
    fixture *fx = *state;
    mc_store *s = open_ok(fx->db);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_migrate_idempotent, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_open_bad_path, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_batch_1000_roundtrip, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_across_batches, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_within_batch, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_serial_collision_rolls_back, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_certs_must_match_intent, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_invalid_input, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_pending_listing, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_second_handle_sees_commits, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_data, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_lookup_partial_outputs, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
