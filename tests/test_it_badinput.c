/*
 * Bad input through `mailca batch`: one orders stream mixing valid orders with orders that each
 * break exactly one thing (unknown field, wrong type, oversized id, invalid mailbox, missing CSR,
 * RSA-1024 key, CSR signature that does not verify, unknown profile, a value that is not a map)
 * and ending in a truncated object; a second stream with garbage bytes in the middle. The batch
 * must finish (exit 0), answer every order that entered exactly once, issue the valid ones and
 * reject each bad one with the code, field and rule docs/orders.md gives (the implementation's
 * strings where the document is silent) and a message naming the problem.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <msgpack.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "support/csrgen.h"
#include "support/itutil.h"

static struct {
    mc_it_ca it; /* scratch folder, CA, chain, one subscriber key and CSR */
} g;

static int group_setup(void **state)
{
    (void)state;
    if (mc_it_ca_setup("it-badinput-", &g.it) != 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    mc_it_ca_free(&g.it);
    return 0;
}

/* An order with at most one thing broken. */
typedef struct spec {
    const char *id;
    const char *extra_key; /* an unknown field, packed right after id */
    int usage_int;         /* usage as a msgpack integer instead of a str */
    const char *mailbox;   /* default: <id>@example.com */
    const char *profile;   /* default: mailbox-strict */
    const uint8_t *csr;    /* default: g.it.csr */
    size_t csr_len;
    int omit_csr;
} spec;

static void pk_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

static void pack_order(msgpack_sbuffer *sb, const spec *s)
{
    msgpack_packer pk;
    char mbox[256];
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    snprintf(mbox, sizeof mbox, "%.200s@example.com", s->id);
    msgpack_pack_map(&pk, 6 + !!s->extra_key - !!s->omit_csr);
    pk_str(&pk, "id");
    pk_str(&pk, s->id);
    if (s->extra_key) {
        pk_str(&pk, s->extra_key);
        pk_str(&pk, "blue");
    }
    pk_str(&pk, "account");
    pk_str(&pk, "acct-it");
    pk_str(&pk, "profile");
    pk_str(&pk, s->profile ? s->profile : "mailbox-strict");
    pk_str(&pk, "usage");
    if (s->usage_int)
        msgpack_pack_int(&pk, 1);
    else
        pk_str(&pk, "signing");
    pk_str(&pk, "mailboxes");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 4);
    pk_str(&pk, "address");
    pk_str(&pk, s->mailbox ? s->mailbox : mbox);
    pk_str(&pk, "method");
    pk_str(&pk, "3.2.2.2");
    pk_str(&pk, "validated_at");
    msgpack_pack_int64(&pk, (int64_t)time(NULL) - 3600);
    pk_str(&pk, "reference");
    pk_str(&pk, "ticket-it");
    if (!s->omit_csr) {
        const uint8_t *csr = s->csr ? s->csr : g.it.csr;
        size_t len = s->csr ? s->csr_len : g.it.csr_len;
        pk_str(&pk, "csr");
        msgpack_pack_bin(&pk, len);
        msgpack_pack_bin_body(&pk, csr, len);
    }
}

/* What one result must be. status issued: the rest is ignored. */
typedef struct want {
    const char *id;
    mc_status status;
    const char *code, *field, *rule;
    const char *msg_has; /* a substring the message must hold (the value or the limit) */
} want;

static long long cert_rows(void)
{
    char dbp[1024];
    snprintf(dbp, sizeof dbp, "%s/mailca.db", g.it.ca);
    if (access(dbp, F_OK) != 0)
        return 0; /* mailca init leaves the store to the first batch */
    sqlite3 *db = mc_it_db_open(dbp);
    long long n = db ? mc_it_db_count(db, "certificates") : -1;
    sqlite3_close(db);
    return n;
}

/* Runs `mailca batch`; returns the number of certificate rows before the run. */
static long long run_batch(const char *orders, const char *results)
{
    char cfg[1024];
    mc_it_run r;
    long long before = cert_rows();
    assert_true(before >= 0);
    snprintf(cfg, sizeof cfg, "%s/mailca.yaml", g.it.ca);
    mc_it_mailca(&r, "batch", "--config", cfg, orders, results, NULL);
    if (r.status != 0)
        fail_msg("mailca batch exited with %d%s\nstderr: %s", r.status,
                 r.timed_out ? " (timed out)" : "", r.err);
    mc_it_run_free(&r);
    return before;
}

/* Appends one mismatch to the report (all of them are shown, not just the first). */
static void note(char *rep, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void note(char *rep, size_t cap, const char *fmt, ...)
{
    size_t used = strlen(rep);
    va_list ap;
    va_start(ap, fmt);
    if (used + 1 < cap)
        vsnprintf(rep + used, cap - used, fmt, ap);
    va_end(ap);
}

/* SELECT count(*) of sql with the text parameters given (NULL: SQL NULL), -1 on error. */
static long long count_where(sqlite3 *db, const char *sql, const char *a, const char *b,
                             long long seq)
{
    sqlite3_stmt *st = NULL;
    long long v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (a)
        sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
    if (b)
        sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, seq);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* SBR 5.4.1 2.iii: each rejected order of the latest run has exactly one order.rejected record
 * in the audit log (its id, position and rule), no other order has one, and the run's end
 * record counts them. */
static void check_audit(sqlite3 *db, const mc_it_results *res, char *rep, size_t cap)
{
    static const char *const since =
        " id > (SELECT max(id) FROM audit_log WHERE event = 'run.start')";
    char sql[512];
    long long rejected = 0;
    for (size_t i = 0; i < res->n; i++) {
        const mc_result *r = &res->r[i];
        if (r->status != MC_STATUS_REJECTED)
            continue;
        rejected++;
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM audit_log WHERE event = 'order.rejected' AND subject = ?1"
                 " AND json_extract(detail, '$.rule') IS ?2 AND json_extract(detail, '$.seq') = ?3"
                 " AND%s",
                 since);
        long long c = count_where(db, sql, r->order_id, r->error.rule[0] ? r->error.rule : NULL,
                                  (long long)r->seq);
        if (c != 1)
            note(rep, cap, "seq %llu (%s): %lld audit records of its rejection, want 1\n",
                 (unsigned long long)r->seq, r->order_id, c);
    }
    snprintf(sql, sizeof sql, "SELECT count(*) FROM audit_log WHERE event = 'order.rejected' AND%s",
             since);
    long long all = count_where(db, sql, NULL, NULL, 0);
    if (all != rejected)
        note(rep, cap, "%lld order.rejected records in the run, want %lld\n", all, rejected);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM audit_log WHERE event = 'run.end' AND"
             " json_extract(detail, '$.rejected') = ?3 AND%s",
             since);
    if (count_where(db, sql, NULL, NULL, rejected) != 1)
        note(rep, cap, "no run.end record counting %lld rejections\n", rejected);
}

/* Every result once (seq 0..n-1) and as wanted; issued ones verify and are stored, and they
 * are the only new certificate rows (rows_before: the count before the run). */
static void check_results(const char *results, const want *w, size_t n, long long rows_before)
{
    char dbp[1024], rep[8192] = "";
    mc_it_results res;
    assert_int_equal(mc_it_results_load(results, &res), 0);
    if (res.n != n)
        fail_msg("%zu results, want one per order that entered: %zu", res.n, n);
    snprintf(dbp, sizeof dbp, "%s/mailca.db", g.it.ca);
    sqlite3 *db = mc_it_db_open(dbp);
    assert_non_null(db);
    int seen[64] = {0};
    size_t issued = 0;
    assert_true(n <= 64);
    for (size_t i = 0; i < res.n; i++) {
        const mc_result *r = &res.r[i];
        assert_true(r->seq < n);
        assert_int_equal(seen[r->seq], 0);
        seen[r->seq] = 1;
        const want *x = &w[r->seq];
        unsigned long long seq = (unsigned long long)r->seq;
        if (strcmp(r->order_id, x->id) != 0)
            note(rep, sizeof rep, "seq %llu: id \"%s\", want \"%s\"\n", seq, r->order_id, x->id);
        if (r->status != x->status) {
            note(rep, sizeof rep, "seq %llu (%s): status %s, want %s (error %s: %s: %s [%s])\n",
                 seq, x->id, mc_status_name(r->status), mc_status_name(x->status),
                 mc_err_name(r->error.code), r->error.field, r->error.message, r->error.rule);
            continue;
        }
        if (x->status == MC_STATUS_ISSUED) {
            const char *why = NULL;
            int v = mc_it_verify(g.it.root, g.it.ica, r->cert, r->cert_len, X509_PURPOSE_SMIME_SIGN,
                                 &why);
            if (v != 1)
                note(rep, sizeof rep, "seq %llu (%s): does not verify: %s\n", seq, x->id,
                     why ? why : "");
            uint8_t *der = NULL;
            size_t dl = 0;
            if (mc_it_db_cert(db, r->serial, r->serial_len, &der, &dl) != 1 || dl != r->cert_len ||
                memcmp(der, r->cert, dl) != 0)
                note(rep, sizeof rep, "seq %llu (%s): the store lacks this certificate\n", seq,
                     x->id);
            free(der);
            issued++;
            continue;
        }
        const char *code = mc_err_name(r->error.code);
        if (strcmp(code, x->code) != 0 || strcmp(r->error.field, x->field) != 0 ||
            strcmp(r->error.rule, x->rule) != 0)
            note(rep, sizeof rep,
                 "seq %llu (%s): rejected with code \"%s\" field \"%s\" rule \"%s\" "
                 "(message: %s); want \"%s\" \"%s\" \"%s\"\n",
                 seq, x->id, code, r->error.field, r->error.rule, r->error.message, x->code,
                 x->field, x->rule);
        if (r->error.message[0] == '\0' || (x->msg_has && !strstr(r->error.message, x->msg_has)))
            note(rep, sizeof rep, "seq %llu (%s): message \"%s\" should name \"%s\"\n", seq, x->id,
                 r->error.message, x->msg_has ? x->msg_has : "anything");
    }
    check_audit(db, &res, rep, sizeof rep);
    /* Only the issued orders left a certificate. */
    long long rows = mc_it_db_count(db, "certificates");
    if (rows != rows_before + (long long)issued)
        note(rep, sizeof rep, "%lld certificate rows, want %lld\n", rows,
             rows_before + (long long)issued);
    sqlite3_close(db);
    mc_it_results_free(&res);
    if (rep[0])
        fail_msg("%s: %s", results, rep);
}

static void test_mixed_bad_orders(void **state)
{
    (void)state;
    char orders[1024], results[1024];
    snprintf(orders, sizeof orders, "%s/mixed.msgpack", g.it.dir);
    snprintf(results, sizeof results, "%s/mixed-results.msgpack", g.it.dir);

    /* An RSA-1024 key is below SBR 6.1.5's 2048 bits. */
    EVP_PKEY *k1024 = mc_csrgen_key(MC_KEY_RSA, 1024);
    assert_non_null(k1024);
    size_t small_len = 0;
    uint8_t *small = mc_csrgen_csr(k1024, NULL, 0, &small_len);
    assert_non_null(small);
    /* The P-256 CSR with the last octet of its signature changed: still DER (the last octet of
     * the ECDSA s value), but no proof of possession. */
    uint8_t *forged = malloc(g.it.csr_len);
    assert_non_null(forged);
    memcpy(forged, g.it.csr, g.it.csr_len);
    forged[g.it.csr_len - 1] ^= 0x01;
    char long_id[130];
    memset(long_id, 'x', 129);
    long_id[129] = '\0';

    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    const spec specs[] = {
        {.id = "ok-0"},
        {.id = "bad-unknown", .extra_key = "colour"},
        {.id = "bad-usage-type", .usage_int = 1},
        {.id = long_id},
        {.id = "bad-mailbox", .mailbox = "alice.example.com"},
        {.id = "ok-1"},
        {.id = "bad-no-csr", .omit_csr = 1},
        {.id = "bad-rsa1024", .csr = small, .csr_len = small_len},
        {.id = "bad-csr-sig", .csr = forged, .csr_len = g.it.csr_len},
        {.id = "bad-profile", .profile = "mailbox-unknown"},
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
        pack_order(&sb, &specs[i]);
    /* A top-level value that is not a map. */
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_int(&pk, 2);
    msgpack_pack_int(&pk, 3);
    pack_order(&sb, &(spec){.id = "ok-2"});
    /* Finally a valid order cut short: its last 7 bytes (inside the CSR) are missing. */
    msgpack_sbuffer last;
    msgpack_sbuffer_init(&last);
    pack_order(&last, &(spec){.id = "ok-truncated"});
    msgpack_sbuffer_write(&sb, last.data, last.size - 7);
    msgpack_sbuffer_destroy(&last);
    assert_int_equal(mc_it_write_file(orders, sb.data, sb.size), 0);
    msgpack_sbuffer_destroy(&sb);

    long long rows = run_batch(orders, results);

    /* Strings from docs/orders.md; where it is silent (unknown profile, stream errors) from the
     * implementation (workers/worker.c, engine/pipeline.c). */
    const want w[] = {
        {"ok-0", MC_STATUS_ISSUED, 0, 0, 0, 0},
        {"bad-unknown", MC_STATUS_REJECTED, "invalid", "colour", "orders.md unknown-key", "colour"},
        {"bad-usage-type", MC_STATUS_REJECTED, "invalid", "usage", "orders.md usage", "str"},
        /* An invalid id is not carried: the result's id is "". */
        {"", MC_STATUS_REJECTED, "invalid", "id", "orders.md id", "128"},
        {"bad-mailbox", MC_STATUS_REJECTED, "invalid", "mailboxes[0].address", "SBR 1.6.1",
         "alice.example.com"},
        {"ok-1", MC_STATUS_ISSUED, 0, 0, 0, 0},
        {"bad-no-csr", MC_STATUS_REJECTED, "invalid", "csr", "orders.md key", NULL},
        {"bad-rsa1024", MC_STATUS_REJECTED, "invalid", "csr", "SBR 6.1.5", "1024"},
        {"bad-csr-sig", MC_STATUS_REJECTED, "csr", "csr", "RFC 2986", "does not verify"},
        {"bad-profile", MC_STATUS_REJECTED, "invalid", "profile", "orders.md profile",
         "mailbox-unknown"},
        /* docs/orders.md: rule "orders.md order" for an order that is not a map; its path is
         * the top level, "". */
        {"", MC_STATUS_REJECTED, "invalid", "", "orders.md order", "map"},
        {"ok-2", MC_STATUS_ISSUED, 0, 0, 0, 0},
        {"", MC_STATUS_REJECTED, "invalid", "stream", "orders.md stream", "truncated"},
    };
    check_results(results, w, sizeof w / sizeof w[0], rows);
    free(forged);
    free(small);
    EVP_PKEY_free(k1024);
}

static void test_garbage_in_the_middle(void **state)
{
    (void)state;
    char orders[1024], results[1024];
    snprintf(orders, sizeof orders, "%s/garbage.msgpack", g.it.dir);
    snprintf(results, sizeof results, "%s/garbage-results.msgpack", g.it.dir);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    pack_order(&sb, &(spec){.id = "g-0"});
    pack_order(&sb, &(spec){.id = "g-1"});
    pack_order(&sb, &(spec){.id = "g-2"});
    /* 0xc1 is the one type byte msgpack never uses: a parse error, not a short read. */
    msgpack_sbuffer_write(&sb, "\xc1\xc1 not msgpack \xc1\xff", 18);
    pack_order(&sb, &(spec){.id = "g-3"});
    pack_order(&sb, &(spec){.id = "g-4"});
    assert_int_equal(mc_it_write_file(orders, sb.data, sb.size), 0);
    msgpack_sbuffer_destroy(&sb);

    long long rows = run_batch(orders, results);

    /* The orders before the garbage are issued, then one "stream" rejection; what follows the
     * garbage is not read, so g-3 and g-4 get no result and no certificate. */
    const want w[] = {
        {"g-0", MC_STATUS_ISSUED, 0, 0, 0, 0},
        {"g-1", MC_STATUS_ISSUED, 0, 0, 0, 0},
        {"g-2", MC_STATUS_ISSUED, 0, 0, 0, 0},
        {"", MC_STATUS_REJECTED, "invalid", "stream", "orders.md stream", "malformed"},
    };
    check_results(results, w, sizeof w / sizeof w[0], rows);
}

/* Streams in which no order reaches a worker: the run still ends cleanly. Each runs several
 * times because the failure seen here (a worker starting after the run ended reports "Context
 * was terminated" and the batch exits 1) depends on thread timing. */
static void test_nothing_for_the_workers(void **state)
{
    (void)state;
    char empty[1024], only_bad[1024], results[1024];
    snprintf(empty, sizeof empty, "%s/empty.msgpack", g.it.dir);
    snprintf(only_bad, sizeof only_bad, "%s/only-bad.msgpack", g.it.dir);
    snprintf(results, sizeof results, "%s/nothing-results.msgpack", g.it.dir);
    assert_int_equal(mc_it_write_file(empty, "", 0), 0);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    pack_order(&sb, &(spec){.id = "only-bad-0", .extra_key = "colour"});
    msgpack_sbuffer_write(&sb, "\x2a", 1); /* the integer 42: not a map */
    assert_int_equal(mc_it_write_file(only_bad, sb.data, sb.size), 0);
    msgpack_sbuffer_destroy(&sb);
    const want w[] = {
        {"only-bad-0", MC_STATUS_REJECTED, "invalid", "colour", "orders.md unknown-key", "colour"},
        {"", MC_STATUS_REJECTED, "invalid", "", "orders.md order", "map"},
    };
    for (int i = 0; i < 5; i++) {
        long long rows = run_batch(empty, results);
        check_results(results, NULL, 0, rows);
        rows = run_batch(only_bad, results);
        check_results(results, w, 2, rows);
    }
}

/* The results cannot be written (/dev/full): the collector fails, and the run must end with that
 * error rather than hang, the intake waiting for room and the workers for their verdicts. */
static void test_results_unwritable(void **state)
{
    (void)state;
    char orders[1024], cfg[1024];
    snprintf(orders, sizeof orders, "%s/unwritable.msgpack", g.it.dir);
    snprintf(cfg, sizeof cfg, "%s/mailca.yaml", g.it.ca);
    mc_it_run r;
    /* more orders than the pipeline holds in flight, so that the intake blocks */
    if (mc_it_mailca(&r, "gen-orders", "--count", "20000", "--key-form", "public-key", orders,
                     NULL) != 0)
        fail_msg("gen-orders: %s", r.err);
    mc_it_run_free(&r);
    const char *args[] = {"batch", "--quiet", "--config", cfg, orders, "/dev/full", NULL};
    int st = mc_it_mailca_argv(&r, 120, args);
    if (r.timed_out)
        fail_msg("mailca batch hung with unwritable results (killed after 120 s)");
    if (st == 0 || !strstr(r.err, "writing results failed"))
        fail_msg("mailca batch exited %d; stderr: %s", st, r.err);
    mc_it_run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mixed_bad_orders),
        cmocka_unit_test(test_garbage_in_the_middle),
        cmocka_unit_test(test_nothing_for_the_workers),
        cmocka_unit_test(test_results_unwritable),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
