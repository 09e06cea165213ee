/*
 * Unit tests for the store's selection (store.h "selection"): mc_store_query and the combined
 * selector mc_store_revoke shares, run once per backend like tests/test_store.c (SQLite in a
 * temporary directory; PostgreSQL at $MAILCA_TEST_PG_URI or a private server started here,
 * one schema per test). Every criterion is checked with rows it must select and rows it must
 * not (the lists are exact and in intent order), then combinations, the counting form, a
 * revocation by a combined selector, a listing stopped by its callback, and the streaming of
 * 20,000 rows with the heap measured while they arrive.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <malloc.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef MAILCA_HAVE_LIBPQ
#include <libpq-fe.h>
#endif

#include "mailca/store.h"
#include "support/pgserver.h"
#include "support/storefix.h"

typedef struct backend {
    const char *name; /* mc_store_backend() */
} backend;

static const backend sqlite_backend = {.name = "sqlite"};
static const backend pg_backend = {.name = "postgresql"};

typedef mc_sf fixture; /* tests/support/storefix.h */

/* The backend description of fx's store. */
static const backend *backend_of(const fixture *fx)
{
    return fx->pg ? &pg_backend : &sqlite_backend;
}

/* --- the rows ------------------------------------------------------------------------------- */

#define NROWS 8
#define SER_LEN 8

/* Row 7 is an intent without a certificate (never issued): no selector may list it. Row 6 is
 * revoked before the checks. Evidence: 0 and 7 name 3.2.2.1 and 3.2.2.2 in their mailboxes, 1
 * 3.2.2.3, 6 3.2.2.4; 2 is not JSON; 3 has mailboxes as an object, 4 a string element and an
 * array-valued method, 5 the method outside mailboxes: none of those has a method. Only row 0
 * records "caa_checked": false. */
static const struct {
    const char *account, *profile, *lint_version, *lint_enforced, *warnings, *engine;
    int64_t nb, na;
    const char *mailboxes, *evidence;
    int key; /* 0 none, 1 K1, 2 K2 */
} rows[NROWS] = {
    {"acct-a", "p1", "L1", "E1", "", "1.0", 1000, 2000, "x@a.example,y@b.example",
     "{\"mailboxes\":[{\"address\":\"x@a.example\",\"method\":\"3.2.2.1\"},"
     "{\"address\":\"y@b.example\",\"method\":\"3.2.2.2\"}],\"caa_checked\":false}",
     1},
    {"acct-b", "p2", "L2", "E2", "w_a,e_x", "1.1", 1500, 2500, "z@A.Example",
     "{\"mailboxes\":[{\"address\":\"z@A.Example\",\"method\":\"3.2.2.3\"}],"
     "\"caa\":{\"a.example\":\"issue\"}}",
     2},
    {"acct-a", "p1", "L1", "E1", "e_x", "1.0", 3000, 4000, "u@sub.a.example", "garbage {", 0},
    {"acct-b", "p1", "L2", "E1", "e_xy", "1.1", 3500, 4500, "v@b.example",
     "{\"mailboxes\":{\"m\":{\"method\":\"3.2.2.1\"}}}", 0},
    {"acct-a", "p2", "L1", "E2", "w_b", "1.0", 5000, 6000, "t@b.example",
     "{\"mailboxes\":[\"3.2.2.1\",{\"method\":[\"3.2.2.1\"]}],\"caa_checked\":\"false\"}", 0},
    {"acct-b", "p1", "L1", "E1", "", "1.0", 6000, 7000, "a.example@c.example",
     "{\"method\":\"3.2.2.1\",\"mailboxes\":[],\"caa_checked\":true}", 0},
    {"acct-a", "p1", "L2", "E2", "", "1.1", 7000, 8000, "r@a.example",
     "{\"mailboxes\":[{\"method\":\"3.2.2.4\"}]}", 0},
    {"acct-a", "p1", "L1", "E1", "", "1.0", 1000, 2000, "x@a.example",
     "{\"mailboxes\":[{\"method\":\"3.2.2.1\"}]}", 1},
};

static uint8_t g_serial[NROWS][SER_LEN], g_h1[32], g_h2[32], g_h3[32], g_k1[32], g_k2[32], g_k3[32];
static char g_order[NROWS][16];

static mc_store *open_ok(const char *where)
{
    mc_store *s = NULL;
    mc_errdetail err;
    mc_err_clear(&err);
    if (mc_store_open(where, &s, &err) != MC_OK)
        fail_msg("mc_store_open: %s", err.message);
    return s;
}

/* Records the rows: intents 0..7, certificates 0..6, row 6 revoked. */
static mc_store *fill(const fixture *fx)
{
    mc_store *s = open_ok(fx->where);
    mc_intent in[NROWS];
    mc_stored_cert c[NROWS];
    mc_intent_state st[NROWS];
    static uint8_t tbs[NROWS][24], der[NROWS][40], tbs_hash[32];
    mc_errdetail err;
    memset(g_h1, 0x11, 32);
    memset(g_h2, 0x22, 32);
    memset(g_h3, 0x33, 32);
    memset(g_k1, 0xa1, 32);
    memset(g_k2, 0xa2, 32);
    memset(g_k3, 0xa3, 32);
    for (int i = 0; i < NROWS; i++) {
        snprintf(g_order[i], sizeof g_order[i], "q-%d", i);
        memset(g_serial[i], 0x40 + i, SER_LEN);
        memset(tbs[i], i + 1, sizeof tbs[i]);
        memset(der[i], i + 7, sizeof der[i]);
        in[i] = (mc_intent){
            .order_id = g_order[i],
            .account = rows[i].account,
            .profile = rows[i].profile,
            .profile_hash = strcmp(rows[i].profile, "p1") == 0 ? g_h1 : g_h2,
            .lint_version = rows[i].lint_version,
            .engine_version = rows[i].engine,
            .serial = g_serial[i],
            .serial_len = SER_LEN,
            .tbs = tbs[i],
            .tbs_len = sizeof tbs[i],
            .tbs_hash = tbs_hash,
            .not_before = rows[i].nb,
            .not_after = rows[i].na,
            .mailboxes = rows[i].mailboxes,
            .evidence = rows[i].evidence,
            .lint_warnings = rows[i].warnings,
            .spki_sha256 = rows[i].key == 1   ? g_k1
                           : rows[i].key == 2 ? g_k2
                                              : NULL,
            .lint_enforced = rows[i].lint_enforced,
        };
        c[i] = (mc_stored_cert){.order_id = g_order[i],
                                .serial = g_serial[i],
                                .serial_len = SER_LEN,
                                .der = der[i],
                                .der_len = sizeof der[i]};
    }
    assert_int_equal(mc_store_intents_commit(s, in, NROWS, st, &err), MC_OK);
    for (int i = 0; i < NROWS; i++)
        assert_int_equal(st[i], MC_INTENT_NEW);
    assert_int_equal(mc_store_certs_commit(s, c, NROWS - 1, &err), MC_OK);
    mc_store_sel six = {.serial = g_serial[6], .serial_len = SER_LEN};
    mc_revoke_counts rc;
    assert_int_equal(mc_store_revoke(s, &six, MC_CRL_SUPERSEDED, 9000, 0, &rc, &err), MC_OK);
    assert_int_equal(rc.revoked, 1);
    return s;
}

typedef struct listed {
    char ids[256]; /* the row numbers listed, "0,2,5" */
    int64_t n;
    int bad; /* a row whose columns are not the recorded ones */
} listed;

static mc_err collect(void *arg, const mc_store_row *r)
{
    listed *l = arg;
    int i = -1;
    if (r->order_id && sscanf(r->order_id, "q-%d", &i) != 1)
        i = -1;
    if (i < 0 || i >= NROWS) {
        l->bad = 1;
        return MC_OK;
    }
    /* every column as recorded */
    if (r->serial_len != SER_LEN || memcmp(r->serial, g_serial[i], SER_LEN) != 0 ||
        strcmp(r->account, rows[i].account) != 0 || strcmp(r->profile, rows[i].profile) != 0 ||
        r->profile_hash_len != 32 ||
        memcmp(r->profile_hash, strcmp(rows[i].profile, "p1") == 0 ? g_h1 : g_h2, 32) != 0 ||
        strcmp(r->lint_version, rows[i].lint_version) != 0 ||
        strcmp(r->lint_enforced, rows[i].lint_enforced) != 0 ||
        strcmp(r->lint_warnings, rows[i].warnings) != 0 ||
        strcmp(r->engine_version, rows[i].engine) != 0 || r->not_before != rows[i].nb ||
        r->not_after != rows[i].na || strcmp(r->mailboxes, rows[i].mailboxes) != 0 ||
        strcmp(r->evidence, rows[i].evidence) != 0 ||
        strcmp(r->status, i == 6 ? "revoked" : "issued") != 0 ||
        r->revoked_at != (i == 6 ? 9000 : -1) || r->reason != (i == 6 ? MC_CRL_SUPERSEDED : -1))
        l->bad = 1;
    size_t len = strlen(l->ids);
    snprintf(l->ids + len, sizeof l->ids - len, "%s%d", len ? "," : "", i);
    l->n++;
    return MC_OK;
}

/* The rows sel selects are exactly want ("" none), in intent order; counting agrees; a dry-run
 * revocation selects as many (the same selection). */
static void expect_sel_line(mc_store *s, const mc_store_sel *sel, const char *want, int line)
{
    listed l;
    memset(&l, 0, sizeof l);
    mc_errdetail err;
    mc_err_clear(&err);
    int64_t n = -1, cnt = -1;
    if (mc_store_query(s, sel, collect, &l, &n, &err) != MC_OK)
        fail_msg("line %d: query: %s", line, err.message);
    if (strcmp(l.ids, want) != 0 || l.bad || n != l.n)
        fail_msg("line %d (%s): selected [%s], want [%s]%s", line, mc_store_backend(s), l.ids, want,
                 l.bad ? ", a row's columns differ" : "");
    assert_int_equal(mc_store_query(s, sel, NULL, NULL, &cnt, &err), MC_OK);
    if (cnt != n)
        fail_msg("line %d: counted %lld, listed %lld", line, (long long)cnt, (long long)n);
    mc_revoke_counts rc;
    int crit = 0;
    assert_int_equal(mc_store_sel_check(sel, &crit, &err), MC_OK);
    if (crit > 0) {
        assert_int_equal(mc_store_revoke(s, sel, MC_CRL_SUPERSEDED, 1, 1, &rc, &err), MC_OK);
        if (rc.selected != n)
            fail_msg("line %d: revoke selects %lld, query %lld", line, (long long)rc.selected,
                     (long long)n);
    }
}
#define expect_sel(s, sel, want) expect_sel_line(s, sel, want, __LINE__)

/* Each criterion alone: rows it must select, and a value that selects none (or a near miss
 * it must not select). */
static void test_criteria(void **state)
{
    fixture *fx = *state;
    mc_store *s = fill(fx);
    mc_store_sel q;
#define SEL(...) (q = (mc_store_sel){__VA_ARGS__}, &q)
    expect_sel(s, SEL(0), "0,1,2,3,4,5,6"); /* none: every certificate, never the intent 7 */
    expect_sel(s, SEL(.serial = g_serial[1], .serial_len = SER_LEN), "1");
    expect_sel(s, SEL(.serial = g_serial[7], .serial_len = SER_LEN), ""); /* not issued */
    expect_sel(s, SEL(.serial = g_serial[1], .serial_len = SER_LEN - 1), "");
    expect_sel(s, SEL(.account = "acct-a"), "0,2,4,6");
    expect_sel(s, SEL(.account = "acct-A"), "");
    expect_sel(s, SEL(.spki_sha256 = g_k1), "0");
    expect_sel(s, SEL(.spki_sha256 = g_k3), "");
    expect_sel(s, SEL(.profile = "p1"), "0,2,3,5,6");
    expect_sel(s, SEL(.profile = "p"), "");
    expect_sel(s, SEL(.profile_hash = g_h2), "1,4");
    expect_sel(s, SEL(.profile_hash = g_h3), "");
    /* notBefore in [after, before) */
    expect_sel(s, SEL(.has = MC_SEL_ISSUED_AFTER, .issued_after = 3000), "2,3,4,5,6");
    expect_sel(s, SEL(.has = MC_SEL_ISSUED_AFTER, .issued_after = 7001), "");
    expect_sel(s, SEL(.has = MC_SEL_ISSUED_BEFORE, .issued_before = 3000), "0,1");
    expect_sel(s, SEL(.has = MC_SEL_ISSUED_BEFORE, .issued_before = 1000), "");
    expect_sel(s,
               SEL(.has = MC_SEL_ISSUED_AFTER | MC_SEL_ISSUED_BEFORE, .issued_after = 1500,
                   .issued_before = 3500),
               "1,2");
    /* expired at T: notAfter before T (the validity includes notAfter, RFC 5280 4.1.2.5) */
    expect_sel(s, SEL(.has = MC_SEL_EXPIRED, .expired_at = 4000), "0,1");
    expect_sel(s, SEL(.has = MC_SEL_EXPIRED, .expired_at = 2000), "");
    expect_sel(s, SEL(.has = MC_SEL_UNEXPIRED, .unexpired_at = 7000), "5,6");
    expect_sel(s, SEL(.has = MC_SEL_UNEXPIRED, .unexpired_at = 8001), "");
    /* expired between 4000 (still valid) and 6500 */
    expect_sel(
        s, SEL(.has = MC_SEL_EXPIRED | MC_SEL_UNEXPIRED, .expired_at = 6500, .unexpired_at = 4000),
        "2,3,4");
    expect_sel(s, SEL(.lint_version = "L2"), "1,3,6");
    expect_sel(s, SEL(.lint_version = "L3"), "");
    expect_sel(s, SEL(.lint_enforced = "E2"), "1,4,6");
    expect_sel(s, SEL(.lint_enforced = "E3"), "");
    /* a whole element of the warnings, never part of one (row 3 has e_xy) */
    expect_sel(s, SEL(.lint_id = "e_x"), "1,2");
    expect_sel(s, SEL(.lint_id = "w_b"), "4");
    expect_sel(s, SEL(.lint_id = "e"), "");
    expect_sel(s, SEL(.engine_version = "1.1"), "1,3,6");
    expect_sel(s, SEL(.engine_version = "1"), "");
    /* SBR 3.2.2 methods, only from mailboxes[] objects (rows 2-5 have none) */
    expect_sel(s, SEL(.method = "3.2.2.1"), "0");
    expect_sel(s, SEL(.method = "3.2.2.2"), "0");
    expect_sel(s, SEL(.method = "3.2.2.3"), "1");
    expect_sel(s, SEL(.method = "3.2.2.4"), "6");
    /* the exact domain, any case; not a subdomain (2), not a local part (5) */
    expect_sel(s, SEL(.domain = "a.example"), "0,1,6");
    expect_sel(s, SEL(.domain = "A.EXAMPLE"), "0,1,6");
    expect_sel(s, SEL(.domain = "b.example"), "0,3,4");
    expect_sel(s, SEL(.domain = "example"), "");
    expect_sel(s, SEL(.status = "revoked"), "6");
    expect_sel(s, SEL(.status = "issued"), "0,1,2,3,4,5");
    /* SBR 4.2.2.1: "caa_checked": false, a JSON false at the top (row 4 has the text "false",
     * row 5 true, row 1 a CAA result, row 2 no JSON) */
    expect_sel(s, SEL(.caa_unchecked = 1), "0");
    expect_sel(s, SEL(.caa_unchecked = 1, .account = "acct-b"), "");
    mc_store_close(s);
#undef SEL
}

/* Criteria combine with AND. */
static void test_combined(void **state)
{
    fixture *fx = *state;
    mc_store *s = fill(fx);
    mc_store_sel q;
#define SEL(...) (q = (mc_store_sel){__VA_ARGS__}, &q)
    expect_sel(s, SEL(.account = "acct-a", .profile = "p1", .lint_version = "L1"), "0,2");
    expect_sel(s, SEL(.account = "acct-a", .method = "3.2.2.2", .domain = "b.example"), "0");
    expect_sel(s, SEL(.account = "acct-b", .method = "3.2.2.2"), "");
    expect_sel(s, SEL(.engine_version = "1.1", .status = "issued"), "1,3");
    expect_sel(s, SEL(.engine_version = "1.1", .status = "issued", .account = "acct-a"), "");
    expect_sel(s,
               SEL(.profile = "p1", .has = MC_SEL_ISSUED_AFTER | MC_SEL_UNEXPIRED,
                   .issued_after = 3000, .unexpired_at = 4500),
               "3,5,6");
    expect_sel(s,
               SEL(.serial = g_serial[0], .serial_len = SER_LEN, .spki_sha256 = g_k1,
                   .profile_hash = g_h1, .lint_enforced = "E1", .domain = "a.example",
                   .method = "3.2.2.1", .has = MC_SEL_EXPIRED, .expired_at = 2001),
               "0");
    expect_sel(s,
               SEL(.serial = g_serial[0], .serial_len = SER_LEN, .spki_sha256 = g_k1,
                   .profile_hash = g_h1, .lint_enforced = "E1", .domain = "a.example",
                   .method = "3.2.2.1", .has = MC_SEL_EXPIRED, .expired_at = 2000),
               "");

    /* a revocation by a combined selector revokes exactly the intersection: profile p1 and
     * lint set L2 are rows 3 and 6 (6 revoked already) */
    mc_revoke_counts rc;
    mc_errdetail err;
    assert_int_equal(mc_store_revoke(s, SEL(.profile = "p1", .lint_version = "L2"),
                                     MC_CRL_CESSATION_OF_OPERATION, 9500, 0, &rc, &err),
                     MC_OK);
    assert_int_equal(rc.selected, 2);
    assert_int_equal(rc.revoked, 1);
    assert_int_equal(rc.unchanged, 1);
    assert_int_equal(
        mc_sf_raw_int(fx, "SELECT count(*) FROM certificates WHERE status = 'revoked'"), 2);
    assert_int_equal(mc_sf_raw_int(fx, "SELECT count(*) FROM certificates WHERE status = 'revoked'"
                                       " AND revocation_reason = 5 AND revoked_at = 9500"),
                     1);
    listed l;
    memset(&l, 0, sizeof l);
    assert_int_equal(mc_store_query(s, SEL(.status = "revoked"), collect, &l, NULL, &err), MC_OK);
    assert_string_equal(l.ids, "3,6");
    mc_store_close(s);
#undef SEL
}

/* Malformed criteria are refused naming the field (and the rule where there is one); an empty
 * selector is refused for a revocation and lists everything for a query (test_criteria). */
static void test_bad_selectors(void **state)
{
    fixture *fx = *state;
    mc_store *s = fill(fx);
    mc_errdetail err;
    mc_revoke_counts rc;
    int64_t n = -1;
    static const struct {
        mc_store_sel sel;
        const char *field, *rule;
    } bad[] = {
        {{.method = "3.2.2.5"}, "method", "SBR 3.2.2"},
        {{.method = "3.2.2"}, "method", "SBR 3.2.2"},
        {{.method = "3.2.2.1 "}, "method", "SBR 3.2.2"},
        {{.domain = "a@b.example"}, "domain", "RFC 5321 4.1.2"},
        {{.domain = "a.example,b.example"}, "domain", "RFC 5321 4.1.2"},
        {{.domain = ".a.example"}, "domain", "RFC 5321 4.1.2"},
        {{.domain = "a..example"}, "domain", "RFC 5321 4.1.2"},
        {{.domain = "a.example."}, "domain", "RFC 5321 4.1.2"},
        {{.domain = ""}, "domain", "RFC 5321 4.1.2"},
        {{.status = "valid"}, "status", ""},
        {{.lint_id = "E_X"}, "lint_id", ""},
        {{.lint_id = "e_x,w_a"}, "lint_id", ""},
        {{.account = ""}, "account", ""},
        {{.engine_version = ""}, "engine_version", ""},
        {{.has = MC_SEL_ISSUED_AFTER | MC_SEL_ISSUED_BEFORE, .issued_after = 5, .issued_before = 5},
         "issued_before",
         ""},
        {{.has = 16}, "has", ""},
        {{.caa_unchecked = 2}, "caa_unchecked", ""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mc_err_clear(&err);
        assert_int_equal(mc_store_query(s, &bad[i].sel, NULL, NULL, &n, &err), MC_ERR_INVALID);
        assert_string_equal(err.field, bad[i].field);
        assert_string_equal(err.rule, bad[i].rule);
        assert_int_equal(mc_store_revoke(s, &bad[i].sel, MC_CRL_SUPERSEDED, 1, 0, &rc, &err),
                         MC_ERR_INVALID);
        assert_string_equal(err.field, bad[i].field);
    }
    mc_store_sel none = {0};
    assert_int_equal(mc_store_revoke(s, &none, MC_CRL_SUPERSEDED, 1, 0, &rc, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "selector");
    assert_int_equal(
        mc_sf_raw_int(fx, "SELECT count(*) FROM certificates WHERE status = 'revoked'"), 1);
    mc_store_close(s);
}

static mc_err stop_after_two(void *arg, const mc_store_row *r)
{
    (void)r;
    int *n = arg;
    return ++*n == 2 ? MC_ERR_IO : MC_OK;
}

/* A callback that stops the listing (stdout closed) ends the query with its code; the
 * connection is usable right after (PostgreSQL: the statement was cancelled and drained). */
static void test_stopped(void **state)
{
    fixture *fx = *state;
    mc_store *s = fill(fx);
    mc_errdetail err;
    mc_store_sel all = {0}, p1 = {.profile = "p1"};
    int seen = 0;
    int64_t n = -1;
    assert_int_equal(mc_store_query(s, &all, stop_after_two, &seen, &n, &err), MC_ERR_IO);
    assert_int_equal(seen, 2);
    assert_int_equal(n, 2);
    expect_sel(s, &p1, "0,2,3,5,6");
    mc_store_close(s);
}

/* --- streaming ---------------------------------------------------------------------------- */

#define BIG_ROWS 20000
#define BIG_EVIDENCE 5000 /* bytes of evidence per row: 100 MB in all */

typedef struct stream_ctx {
    int64_t n;
    size_t base, peak; /* heap in use before the query, and the most seen during it */
    int order_ok;
    uint32_t last;
} stream_ctx;

static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static mc_err stream_row(void *arg, const mc_store_row *r)
{
    stream_ctx *c = arg;
    uint32_t k = 0;
    if (sscanf(r->order_id, "big-%u", &k) != 1 || (c->n > 0 && k != c->last + 1) ||
        strlen(r->evidence) != BIG_EVIDENCE)
        c->order_ok = 0;
    c->last = k;
    c->n++;
    size_t h = heap_in_use();
    if (h > c->peak)
        c->peak = h;
    return MC_OK;
}

/* 20,000 certificates of 5,000 bytes of evidence each (100 MB) are listed in intent order while
 * the heap in use stays far below the result's size: the rows are never all in memory. (A
 * whole result would hold at least the 100 MB; SQLite's page cache is bounded at 32 MiB.) Not
 * measured under AddressSanitizer, whose allocator mallinfo2 does not see. */
static void test_stream_many(void **state)
{
    fixture *fx = *state;
    mc_store *s = open_ok(fx->where);
    mc_errdetail err;
    const size_t chunk = 1000;
    char(*order)[24] = calloc(chunk, sizeof *order);
    uint8_t(*serial)[12] = calloc(chunk, sizeof *serial);
    mc_intent *in = calloc(chunk, sizeof *in);
    mc_stored_cert *c = calloc(chunk, sizeof *c);
    mc_intent_state *st = calloc(chunk, sizeof *st);
    char *evidence = malloc(BIG_EVIDENCE + 1);
    uint8_t hash[32] = {1}, tbs[16] = {2}, der[24] = {3};
    assert_true(order && serial && in && c && st && evidence);
    /* JSON, not too compressible for PostgreSQL's TOAST to matter either way */
    int w = snprintf(evidence, BIG_EVIDENCE + 1, "{\"mailboxes\":[],\"pad\":\"");
    for (int i = w; i < BIG_EVIDENCE - 2; i++)
        evidence[i] = (char)('a' + (i * 7919 % 26));
    memcpy(evidence + BIG_EVIDENCE - 2, "\"}", 3);
    for (uint32_t k0 = 0; k0 < BIG_ROWS; k0 += chunk) {
        for (size_t i = 0; i < chunk; i++) {
            uint32_t k = k0 + (uint32_t)i;
            snprintf(order[i], sizeof order[i], "big-%u", k);
            memset(serial[i], 0x51, sizeof serial[i]);
            serial[i][8] = (uint8_t)(k >> 24);
            serial[i][9] = (uint8_t)(k >> 16);
            serial[i][10] = (uint8_t)(k >> 8);
            serial[i][11] = (uint8_t)k;
            in[i] = (mc_intent){.order_id = order[i],
                                .account = "acct-big",
                                .profile = "p",
                                .profile_hash = hash,
                                .serial = serial[i],
                                .serial_len = sizeof serial[i],
                                .tbs = tbs,
                                .tbs_len = sizeof tbs,
                                .tbs_hash = hash,
                                .not_before = k,
                                .not_after = k + 1,
                                .mailboxes = "m@big.example",
                                .evidence = evidence,
                                .lint_warnings = ""};
            c[i] = (mc_stored_cert){.order_id = order[i],
                                    .serial = serial[i],
                                    .serial_len = sizeof serial[i],
                                    .der = der,
                                    .der_len = sizeof der};
        }
        assert_int_equal(mc_store_intents_commit(s, in, chunk, st, &err), MC_OK);
        assert_int_equal(mc_store_certs_commit(s, c, chunk, &err), MC_OK);
    }
    free(order);
    free(serial);
    free(in);
    free(c);
    free(st);
    free(evidence);
    mc_store_close(s);

    s = open_ok(fx->where);
    mc_store_sel sel = {.account = "acct-big"};
    stream_ctx ctx = {.order_ok = 1};
    int64_t n = 0;
    ctx.base = ctx.peak = heap_in_use();
    assert_int_equal(mc_store_query(s, &sel, stream_row, &ctx, &n, &err), MC_OK);
    assert_int_equal(n, BIG_ROWS);
    assert_int_equal(ctx.n, BIG_ROWS);
    assert_true(ctx.order_ok);
    size_t grew = ctx.peak - ctx.base;
    print_message("%s: %d rows (%d MB of evidence) streamed, heap grew %.1f MiB at most\n",
                  backend_of(fx)->name, BIG_ROWS, BIG_ROWS * BIG_EVIDENCE / 1000000,
                  (double)grew / (1024 * 1024));
#if !defined(__SANITIZE_ADDRESS__)
    assert_true(grew < (size_t)BIG_ROWS * BIG_EVIDENCE / 2);
    /* PostgreSQL holds one row at a time: a few of them at most */
    if (fx->pg)
        assert_true(grew < 64u * BIG_EVIDENCE + (1u << 20));
#endif
    int64_t cnt = 0;
    assert_int_equal(mc_store_query(s, &sel, NULL, NULL, &cnt, &err), MC_OK);
    assert_int_equal(cnt, BIG_ROWS);
    mc_store_close(s);
}

#define QUERY_TESTS(setup, teardown)                                                               \
    cmocka_unit_test_setup_teardown(test_criteria, setup, teardown),                               \
        cmocka_unit_test_setup_teardown(test_combined, setup, teardown),                           \
        cmocka_unit_test_setup_teardown(test_bad_selectors, setup, teardown),                      \
        cmocka_unit_test_setup_teardown(test_stopped, setup, teardown),                            \
        cmocka_unit_test_setup_teardown(test_stream_many, setup, teardown)

int main(void)
{
    const struct CMUnitTest sqlite_tests[] = {
        QUERY_TESTS(mc_sf_sqlite_setup, mc_sf_sqlite_teardown)};
    int failed = cmocka_run_group_tests_name("store_query/sqlite", sqlite_tests, NULL, NULL);
#ifdef MAILCA_HAVE_LIBPQ
    const struct CMUnitTest pg_tests[] = {QUERY_TESTS(mc_sf_pg_setup, mc_sf_pg_teardown)};
    failed += cmocka_run_group_tests_name("store_query/postgresql", pg_tests, mc_sf_pg_group_setup,
                                          mc_sf_pg_group_teardown);
#else
    printf("store_query/postgresql: not run, this build has no libpq (MAILCA_HAVE_LIBPQ)\n");
#endif
    return failed;
}
