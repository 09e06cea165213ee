/*
 * Integration test of the CT submission sink (issue 5) with certificates the real CLI issued:
 * `mailca init` + `mailca batch` fill the SQLite store, every certificate goes into the outbox
 * (chain: leaf, issuing CA) for four test logs (bench/ctlog.c, real HTTP servers on
 * 127.0.0.1) at once, and the drainer runs on an injected clock (no sleeping):
 * - a healthy log: every SCT is stored, verifies with the engine (RFC 6962 3.2) and with
 *   OpenSSL's SCT_validate, and every certificate is in the log's Merkle tree: an inclusion proof
 *   (get-proof-by-hash) against a signed tree head (get-sth, signature checked, RFC 6962 3.5);
 * - a log down for 30 s (503 on every submission): rows back off exponentially, nothing is
 *   lost, all get SCTs once it is back, and are in its tree;
 * - a rate-limited log (429, Retry-After: 20): nothing is retried before 20 s, all done after;
 * - a log that refuses leaves without serverAuth (as Sunlight does): 400, recorded for good
 *   with the log's message, never retried;
 * and the healthy log's work is not held up by the sick ones. Then a drain thread on the real
 * clock with its own store handle picks up new entries until told to stop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mailca/ct.h"
#include "mailca/store.h"
#include "ctlog.h" /* bench/ctlog.h: the RFC 6962 log server */
#include "support/itutil.h"

typedef struct cert {
    uint8_t serial[MC_SERIAL_MAX];
    size_t serial_len;
    uint8_t *der;
    size_t der_len;
} cert;

static struct {
    mc_it_ca ca;
    char db[700];
    uint8_t *ica;
    size_t ica_len;
    cert *c;
    size_t n;
} g;

static int group_setup(void **state)
{
    (void)state;
    if (mc_it_ca_setup("it-ct-", &g.ca) != 0)
        return -1;
    char orders[700], results[700], cfg[700], count[16];
    snprintf(orders, sizeof orders, "%s/orders", g.ca.dir);
    snprintf(results, sizeof results, "%s/results", g.ca.dir);
    snprintf(cfg, sizeof cfg, "%s/mailca.yaml", g.ca.ca);
    snprintf(g.db, sizeof g.db, "%s/mailca.db", g.ca.ca);
    snprintf(count, sizeof count, "%d", mc_it_scaled(60, 10));
    mc_it_run r;
    mc_it_mailca(&r, "gen-orders", "--count", count, orders, NULL);
    int st = r.status;
    mc_it_run_free(&r);
    if (st != 0)
        return -1;
    mc_it_mailca(&r, "batch", "--config", cfg, orders, results, NULL);
    st = r.status;
    if (st != 0)
        fprintf(stderr, "mailca batch: %d: %s\n", st, r.err);
    mc_it_run_free(&r);
    if (st != 0)
        return -1;
    uint8_t *d = NULL;
    int n = i2d_X509(g.ca.ica, &d);
    g.ica = malloc((size_t)n);
    memcpy(g.ica, d, (size_t)n);
    g.ica_len = (size_t)n;
    OPENSSL_free(d);
    /* every certificate the batch stored */
    sqlite3 *db = mc_it_db_open(g.db);
    sqlite3_stmt *q = NULL;
    if (!db || sqlite3_prepare_v2(db, "SELECT serial, der FROM certificates ORDER BY serial", -1,
                                  &q, NULL) != SQLITE_OK)
        return -1;
    g.c = calloc((size_t)mc_it_scaled(60, 10), sizeof *g.c);
    while (sqlite3_step(q) == SQLITE_ROW && g.n < (size_t)mc_it_scaled(60, 10)) {
        cert *c = &g.c[g.n++];
        c->serial_len = (size_t)sqlite3_column_bytes(q, 0);
        memcpy(c->serial, sqlite3_column_blob(q, 0), c->serial_len);
        c->der_len = (size_t)sqlite3_column_bytes(q, 1);
        c->der = malloc(c->der_len);
        memcpy(c->der, sqlite3_column_blob(q, 1), c->der_len);
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    return g.n == (size_t)mc_it_scaled(60, 10) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < g.n; i++)
        free(g.c[i].der);
    free(g.c);
    free(g.ica);
    mc_it_ca_free(&g.ca);
    return 0;
}

static mc_store *store_open(void)
{
    mc_store *s = NULL;
    mc_errdetail err;
    if (mc_store_open(g.db, &s, &err) != MC_OK)
        fail_msg("store open: %s", err.message);
    return s;
}

/* Every certificate into the outbox for every log of cfg. */
static void enqueue_all(mc_store *s, const mc_ct_config *cfg, int64_t now)
{
    mc_ct_submission *v = calloc(g.n, sizeof *v);
    const uint8_t *(*chain)[2] = calloc(g.n, sizeof *chain);
    size_t(*len)[2] = calloc(g.n, sizeof *len);
    for (size_t i = 0; i < g.n; i++) {
        chain[i][0] = g.c[i].der;
        chain[i][1] = g.ica;
        len[i][0] = g.c[i].der_len;
        len[i][1] = g.ica_len;
        v[i] = (mc_ct_submission){.serial = g.c[i].serial,
                                  .serial_len = g.c[i].serial_len,
                                  .chain = chain[i],
                                  .chain_len = len[i],
                                  .chain_n = 2};
    }
    mc_errdetail err;
    if (mc_ct_enqueue(s, cfg, v, g.n, now, &err) != MC_OK)
        fail_msg("enqueue: %s", err.message);
    free(v);
    free(chain);
    free(len);
}

/* What the outbox holds for one log. */
typedef struct tally {
    const uint8_t *log_id;
    size_t pending, done, rejected;
    int min_attempts, max_attempts;
    int64_t min_next, max_next;
    int bad_msg; /* rows whose message is not what the test expects */
    const char *want_msg;
    size_t verified; /* SCTs that verify against the certificate and the log key */
    const uint8_t *spki;
    size_t spki_len;
} tally;

static const cert *cert_of(const uint8_t *serial, size_t len)
{
    for (size_t i = 0; i < g.n; i++)
        if (g.c[i].serial_len == len && memcmp(g.c[i].serial, serial, len) == 0)
            return &g.c[i];
    return NULL;
}

static void tally_row(void *arg, const mc_ct_row *r)
{
    tally *t = arg;
    if (memcmp(r->log_id, t->log_id, MC_CT_LOG_ID_LEN) != 0)
        return;
    if (r->state == MC_CT_PENDING)
        t->pending++;
    else if (r->state == MC_CT_DONE)
        t->done++;
    else
        t->rejected++;
    if (t->pending + t->done + t->rejected == 1) {
        t->min_attempts = t->max_attempts = r->attempts;
        t->min_next = t->max_next = r->next_ms;
    }
    if (r->attempts < t->min_attempts)
        t->min_attempts = r->attempts;
    if (r->attempts > t->max_attempts)
        t->max_attempts = r->attempts;
    if (r->next_ms < t->min_next)
        t->min_next = r->next_ms;
    if (r->next_ms > t->max_next)
        t->max_next = r->next_ms;
    if (t->want_msg && !strstr(r->message, t->want_msg))
        t->bad_msg++;
    if (r->state == MC_CT_DONE && r->sct) {
        const cert *c = cert_of(r->serial, r->serial_len);
        mc_ct_sct sct;
        mc_errdetail err;
        if (c && mc_ct_sct_parse(r->sct, r->sct_len, &sct, &err) == MC_OK &&
            mc_ct_sct_verify(&sct, t->spki, t->spki_len, 0, c->der, c->der_len, g.ica, g.ica_len,
                             mc_ct_now_ms(), 60000, &err) == MC_OK &&
            (int64_t)sct.timestamp == r->sct_timestamp)
            t->verified++;
    }
}

static tally count_log(mc_store *s, const mc_ct_log *log, const char *want_msg)
{
    tally t;
    memset(&t, 0, sizeof t);
    t.log_id = log->id;
    t.spki = log->spki;
    t.spki_len = log->spki_len;
    t.want_msg = want_msg;
    mc_errdetail err;
    assert_int_equal(mc_store_ct_list(s, NULL, 0, tally_row, &t, &err), MC_OK);
    return t;
}

typedef struct proof_ctx {
    const mc_ct_log *log;
    const char *url;
    uint64_t size;
    uint8_t root[32];
    size_t proved, checked_openssl;
    const char *key_b64;
} proof_ctx;

static void prove_row(void *arg, const mc_ct_row *r)
{
    proof_ctx *p = arg;
    if (memcmp(r->log_id, p->log->id, MC_CT_LOG_ID_LEN) != 0 || r->state != MC_CT_DONE)
        return;
    const cert *c = cert_of(r->serial, r->serial_len);
    mc_ct_sct sct;
    mc_errdetail err;
    uint8_t leaf[32], path[64][32];
    uint64_t index;
    size_t pn;
    if (!c || mc_ct_sct_parse(r->sct, r->sct_len, &sct, &err) != MC_OK ||
        mc_ct_leaf_hash(&sct, 0, c->der, c->der_len, NULL, 0, leaf, &err) != MC_OK ||
        mc_ctlog_client_proof(p->url, leaf, p->size, &index, path, 64, &pn) != 0)
        return;
    if (mc_ct_merkle_verify_inclusion(leaf, index, p->size, (const uint8_t(*)[32])path, pn,
                                      p->root))
        p->proved++;
    /* OpenSSL's CT code on a sample: independent parsing and signature input */
    if (p->checked_openssl < 5 &&
        mc_ctlog_openssl_validate(p->key_b64, r->sct, r->sct_len, 0, c->der, c->der_len, g.ica,
                                  g.ica_len) == 1)
        p->checked_openssl++;
}

/* The log's signed tree head verifies, holds exactly the certificates, and each one's proof
 * leads to its root. */
static void expect_in_tree(mc_store *s, mc_ctlog *log, const mc_ct_log *cl)
{
    proof_ctx p;
    memset(&p, 0, sizeof p);
    p.log = cl;
    p.url = mc_ctlog_url(log);
    p.key_b64 = mc_ctlog_key_b64(log);
    uint64_t ts;
    uint8_t sig[256];
    size_t sl;
    mc_errdetail err;
    assert_int_equal(mc_ctlog_client_sth(p.url, &p.size, &ts, p.root, sig, sizeof sig, &sl), 0);
    assert_int_equal(mc_ct_sth_verify(cl->spki, cl->spki_len, ts, p.size, p.root, sig, sl, &err),
                     MC_OK);
    p.root[0] ^= 1; /* and a changed root does not */
    assert_int_equal(mc_ct_sth_verify(cl->spki, cl->spki_len, ts, p.size, p.root, sig, sl, &err),
                     MC_ERR_CRYPTO);
    p.root[0] ^= 1;
    assert_int_equal(p.size, g.n);
    assert_int_equal(mc_store_ct_list(s, NULL, 0, prove_row, &p, &err), MC_OK);
    assert_int_equal(p.proved, g.n);
    assert_int_equal(p.checked_openssl, 5);
}

static void test_four_logs(void **state)
{
    (void)state;
    const size_t N = g.n;
    mc_ctlog *good = NULL, *down = NULL, *limited = NULL, *eku = NULL;
    mc_ct_config cfg;
    mc_errdetail err;
    assert_int_equal(mc_ctlog_start(&good, &err), MC_OK);
    assert_int_equal(mc_ctlog_start(&down, &err), MC_OK);
    assert_int_equal(mc_ctlog_start(&limited, &err), MC_OK);
    assert_int_equal(mc_ctlog_start(&eku, &err), MC_OK);
    mc_ct_config_defaults(&cfg);
    cfg.timeout_ms = 5000;
    cfg.lease_ms = 300000; /* 60 timeouts: up to 960 rows per run */
    mc_ctlog *logs[4] = {good, down, limited, eku};
    for (int i = 0; i < 4; i++)
        assert_int_equal(
            mc_ct_config_add_log(&cfg, mc_ctlog_url(logs[i]), mc_ctlog_key_b64(logs[i]), &err),
            MC_OK);
    mc_ctlog_fault(down, MC_CTLOG_503, -1, -1);        /* down until told otherwise */
    mc_ctlog_fault(limited, MC_CTLOG_429, (int)N, 20); /* the first N: 429, Retry-After: 20 */
    mc_ctlog_require_server_auth(eku, 1);              /* S/MIME leaves: 400 */
    mc_store *s = store_open();
    mc_ct *ct = NULL;
    assert_int_equal(mc_ct_new(&cfg, &ct, &err), MC_OK);
    const int64_t t0 = mc_ct_now_ms();
    enqueue_all(s, &cfg, t0);

    mc_ct_stats st;
    assert_int_equal(mc_ct_run_once(ct, s, t0, &st, &err), MC_OK);
    assert_int_equal(st.claimed, 4 * N);
    assert_int_equal(st.done, N);
    assert_int_equal(st.rejected, N);
    assert_int_equal(st.retried, 2 * N);
    tally t = count_log(s, &cfg.logs[0], NULL);
    assert_int_equal(t.done, N); /* the healthy log was not held up */
    assert_int_equal(t.verified, N);
    t = count_log(s, &cfg.logs[1], "HTTP 503");
    assert_int_equal(t.pending, N);
    assert_int_equal(t.bad_msg, 0);
    assert_true(t.min_next >= t0 + 500 && t.max_next <= t0 + 1000); /* first back-off step */
    t = count_log(s, &cfg.logs[2], "HTTP 429 Retry-After 20");
    assert_int_equal(t.pending, N);
    assert_int_equal(t.bad_msg, 0);
    assert_true(t.min_next == t0 + 20000 && t.max_next == t0 + 20000); /* honoured exactly */
    t = count_log(s, &cfg.logs[3], "HTTP 400: rejecting certificate without EKU in [serverAuth]");
    assert_int_equal(t.rejected, N);
    assert_int_equal(t.bad_msg, 0);

    /* 30 simulated seconds of outage, one drain per simulated second */
    mc_ctlog_stats ls;
    int64_t now;
    for (now = t0 + 1000; now < t0 + 30000; now += 1000) {
        assert_int_equal(mc_ct_run_once(ct, s, now, &st, &err), MC_OK);
        assert_int_equal(st.rejected, 0);
        mc_ctlog_get_stats(limited, &ls);
        if (now < t0 + 20000)
            assert_int_equal(ls.submissions, N); /* nothing before Retry-After ran out */
    }
    mc_ctlog_get_stats(limited, &ls);
    assert_int_equal(ls.submissions, 2 * N);
    tally tl = count_log(s, &cfg.logs[2], NULL);
    assert_int_equal(tl.done, N);
    assert_int_equal(tl.verified, N);
    tally td = count_log(s, &cfg.logs[1], "HTTP 503");
    assert_int_equal(td.pending, N);   /* delayed, not lost */
    assert_true(td.min_attempts >= 4); /* 1 + ~0.75 + ~1.5 + ~3 + ~6 + ~12 s: 5 or 6 tries */
    assert_true(td.max_attempts <= 7);
    mc_ctlog_get_stats(down, &ls);
    assert_true(ls.submissions < 8 * N); /* backed off: far fewer than one try per second */

    /* the log is back */
    mc_ctlog_fault(down, MC_CTLOG_OK, 0, -1);
    for (; now < t0 + 180000; now += 1000) {
        assert_int_equal(mc_ct_run_once(ct, s, now, &st, &err), MC_OK);
        int64_t pending;
        assert_int_equal(mc_store_ct_counts(s, &pending, NULL, NULL, &err), MC_OK);
        if (pending == 0)
            break;
    }
    assert_true(now <= t0 + 30000 + 32000); /* at most one more back-off step after the outage */
    int64_t pending, done, rejected;
    assert_int_equal(mc_store_ct_counts(s, &pending, &done, &rejected, &err), MC_OK);
    assert_int_equal(pending, 0);
    assert_int_equal(done, 3 * N);
    assert_int_equal(rejected, N);
    td = count_log(s, &cfg.logs[1], NULL);
    assert_int_equal(td.verified, N);

    /* every certificate is in each accepting log's tree */
    expect_in_tree(s, good, &cfg.logs[0]);
    expect_in_tree(s, down, &cfg.logs[1]);
    expect_in_tree(s, limited, &cfg.logs[2]);
    mc_ctlog_get_stats(eku, &ls);
    assert_int_equal(ls.accepted, 0);
    assert_int_equal(ls.submissions, N); /* refused once, never retried */

    mc_ct_free(ct);
    mc_store_close(s);
    for (int i = 0; i < 4; i++)
        mc_ctlog_stop(logs[i]);
}

typedef struct drainer {
    mc_ct *ct;
    atomic_int stop;
    mc_err rc;
    mc_ct_stats st;
} drainer;

static void *drain_main(void *arg)
{
    drainer *d = arg;
    mc_store *s = NULL;
    mc_errdetail err;
    d->rc = mc_store_open(g.db, &s, &err);
    if (!d->rc)
        d->rc = mc_ct_drain(d->ct, s, &d->stop, &d->st, &err);
    mc_store_close(s);
    return NULL;
}

/* A drain thread on the real clock with its own store handle (what the engine runs), fed by
 * another thread's enqueues, stops when asked. */
static void test_drain_thread(void **state)
{
    (void)state;
    mc_ctlog *log = NULL;
    mc_ct_config cfg;
    mc_errdetail err;
    assert_int_equal(mc_ctlog_start(&log, &err), MC_OK);
    mc_ct_config_defaults(&cfg);
    cfg.poll_ms = 50;
    assert_int_equal(mc_ct_config_add_log(&cfg, mc_ctlog_url(log), mc_ctlog_key_b64(log), &err),
                     MC_OK);
    drainer d;
    memset(&d, 0, sizeof d);
    assert_int_equal(mc_ct_new(&cfg, &d.ct, &err), MC_OK);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, drain_main, &d), 0);
    mc_store *s = store_open();
    enqueue_all(s, &cfg, mc_ct_now_ms());
    tally t;
    for (int i = 0; i < 200; i++) {
        t = count_log(s, &cfg.logs[0], NULL);
        if (t.done == g.n)
            break;
        usleep(50000);
    }
    atomic_store(&d.stop, 1);
    pthread_join(th, NULL);
    assert_int_equal(d.rc, MC_OK);
    assert_int_equal(t.done, g.n);
    assert_int_equal(t.verified, g.n);
    assert_true(d.st.done >= g.n);
    mc_ct_free(d.ct);
    mc_store_close(s);
    mc_ctlog_stop(log);
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A log that accepts connections and requests but never answers: a drain thread told to stop
 * returns within stop_grace_ms (+ a poll step and one transaction), not after timeout_ms (30 s
 * here, the default), and every submission stays in the outbox, pending and due at once; a
 * drain once the log answers again delivers them all. With stop_grace_ms as long as the
 * timeout (the old behaviour) the same stop waits for the timeout: the bound is what ends it. */
static void test_drain_stop_with_hung_log(void **state)
{
    (void)state;
    mc_ctlog *log = NULL;
    mc_ct_config cfg;
    mc_errdetail err;
    assert_int_equal(mc_ctlog_start(&log, &err), MC_OK);
    mc_ct_config_defaults(&cfg);
    cfg.poll_ms = 50;
    assert_int_equal(cfg.timeout_ms, 30000);
    assert_int_equal(cfg.stop_grace_ms, 1000);
    assert_int_equal(mc_ct_config_add_log(&cfg, mc_ctlog_url(log), mc_ctlog_key_b64(log), &err),
                     MC_OK);
    mc_ctlog_fault(log, MC_CTLOG_HANG, -1, -1);
    drainer d;
    memset(&d, 0, sizeof d);
    assert_int_equal(mc_ct_new(&cfg, &d.ct, &err), MC_OK);
    mc_store *s = store_open();
    enqueue_all(s, &cfg, mc_ct_now_ms());
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, drain_main, &d), 0);
    /* wait until the log holds a full window of requests it will never answer */
    const size_t window = g.n < (size_t)cfg.per_log_in_flight ? g.n : (size_t)cfg.per_log_in_flight;
    mc_ctlog_stats ls;
    for (int i = 0; i < 500; i++) {
        mc_ctlog_get_stats(log, &ls);
        if (ls.submissions >= window)
            break;
        usleep(20000);
    }
    assert_int_equal(ls.submissions, window); /* no more: the window is full */
    double t0 = mono_s();
    atomic_store(&d.stop, 1);
    pthread_join(th, NULL);
    double waited = mono_s() - t0;
    assert_int_equal(d.rc, MC_OK);
    assert_true(waited >= 0.9); /* the requests in flight got their grace */
    /* grace 1 s + a 50 ms poll step + one store transaction; 30 s without the bound */
    assert_true(waited < (mc_it_scaled(100, 10) < 100 ? 6.0 : 3.0));
    assert_int_equal(d.st.done, 0);
    assert_int_equal(d.st.left, g.n); /* every claimed row left in the outbox */
    tally t = count_log(s, &cfg.logs[0], NULL);
    assert_int_equal(t.pending, g.n);
    assert_int_equal(t.done + t.rejected, 0);
    assert_true(t.max_next <= mc_ct_now_ms()); /* due at once, for `mailca ct drain` */
    t = count_log(s, &cfg.logs[0], "no answer within 1000 ms of the drainer's stop");
    assert_int_equal(t.bad_msg, g.n - window); /* the others: never sent */
    t = count_log(s, &cfg.logs[0], "not submitted: the drainer was stopped");
    assert_int_equal(t.bad_msg, window);

    /* the log answers again: a drain (as `mailca ct drain` runs it) delivers every row */
    mc_ctlog_fault(log, MC_CTLOG_OK, 0, -1);
    mc_ct_stats st;
    memset(&st, 0, sizeof st);
    assert_int_equal(mc_ct_drain(d.ct, s, NULL, &st, &err), MC_OK);
    assert_int_equal(st.done, g.n);
    t = count_log(s, &cfg.logs[0], NULL);
    assert_int_equal(t.done, g.n);
    assert_int_equal(t.verified, g.n);
    mc_ct_free(d.ct);
    mc_store_close(s);
    mc_ctlog_stop(log);
}

int main(void)
{
#ifdef MAILCA_HAVE_LIBCURL
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_four_logs),
        cmocka_unit_test(test_drain_thread),
        cmocka_unit_test(test_drain_stop_with_hung_log),
    };
    return cmocka_run_group_tests_name("it_ct", tests, group_setup, group_teardown);
#else
    (void)group_setup, (void)group_teardown, (void)test_four_logs, (void)test_drain_thread,
        (void)test_drain_stop_with_hung_log;
    printf("it_ct: not run, this build has no libcurl (MAILCA_HAVE_LIBCURL)\n");
    return 0;
#endif
}
