/*
 * `mailca bench --ct` (issue 5: "CT sink submissions/sec against the local log"). Phases:
 * 1. a child process creates a bench CA (SoftHSM2, P-256) and N orders (attested public keys);
 * 2. a child process runs the engine on them into a fresh SQLite store: its certs/s is the
 *    signing rate the sink is compared with (each phase touching PKCS#11 runs in its own
 *    process, as in bench.c);
 * 3. this process starts K RFC 6962 logs on 127.0.0.1 (bench/ctlog.c, one server thread each),
 *    puts every stored certificate in the CT outbox for every log (mc_ct_enqueue, the code the
 *    collector's mc_ct_certs_commit uses), then drains the outbox with the real sink
 *    (mc_ct_drain: libcurl multi, keep-alive connections, many requests in flight, each SCT
 *    verified against the log key before it is stored) and times it;
 * 4. it checks the result: every row done, every stored SCT verifies again (RFC 6962 3.2, our
 *    code) and a sample also with OpenSSL's CT code, every log's tree holds N leaves.
 * CPU time of the drain thread and of the rest of the process (the log servers) is printed, to
 * show which side bounds the rate.
 */
#include "ctbench.h"
#include "ctlog.h"
#include "phase.h"

#include "mailca/ca.h"
#include "mailca/cli.h"
#include "mailca/config.h"
#include "mailca/ct.h"
#include "mailca/engine.h"
#include "mailca/store.h"

#include <getopt.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct ctb_opts {
    uint64_t orders;
    int logs;
    int workers;
    int per_log;
    char dir[512];
    int keep;
} ctb_opts;

typedef struct ctb_report {
    int ok;
    char err[400];
    mc_run_stats st;
} ctb_report;

static double cpu_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void ctb_fail(ctb_report *r, const mc_errdetail *e)
{
    mc_err_format(e, r->err, sizeof r->err);
    r->ok = 0;
}

/* A phase and its options, as the child process runs it (bench_proc_fn). */
typedef struct ctb_call {
    void (*fn)(const ctb_opts *, ctb_report *);
    const ctb_opts *o;
} ctb_call;

static void ctb_call_run(const void *arg, void *out)
{
    const ctb_call *c = arg;
    c->fn(c->o, out);
}

/* Runs fn in a child process (PKCS#11 initialised fresh there) and returns its report. */
static int ctb_in_child(void (*fn)(const ctb_opts *, ctb_report *), const ctb_opts *o,
                        ctb_report *r)
{
    ctb_call c = {fn, o};
    return bench_phase_in_child(ctb_call_run, &c, r, sizeof *r, &r->ok, r->err, sizeof r->err,
                                NULL);
}

static void orders_file(const ctb_opts *o, char *buf, size_t len)
{
    snprintf(buf, len, "%s/ct-orders.msgpack", o->dir);
}

static void store_file(const ctb_opts *o, char *buf, size_t len)
{
    if (snprintf(buf, len, "%s/ct.db", o->dir) >= (int)len)
        buf[0] = '\0'; /* too long: opening "" fails and says so */
}

static void phase_setup(const ctb_opts *o, ctb_report *r)
{
    mc_errdetail e;
    mc_ca_init_opts ci = {.dir = o->dir,
                          .keytype = MC_KEY_P256,
                          .org = "mailca bench",
                          .base_url = "http://pki.mailca.test"};
    if (mc_ca_init(&ci, &e) != MC_OK)
        return ctb_fail(r, &e);
    char path[600];
    orders_file(o, path, sizeof path);
    if (bench_orders_write(path, "ct", o->orders, MC_KEY_P256, 0, MC_KEY_FORM_PUBLIC_KEY,
                           MC_ORDERS_DOMAINS_DEFAULT, MC_ORDERS_SUFFIX_DEFAULT, &e) != MC_OK)
        return ctb_fail(r, &e);
    r->ok = 1;
}

/* The engine on the orders, CT off (the sink is measured on its own afterwards). */
static void phase_engine(const ctb_opts *o, ctb_report *r)
{
    mc_errdetail e;
    mc_config cfg;
    mc_engine *eng = NULL;
    char in[600], out[600];
    if (bench_config_load(o->dir, &cfg, &e) != MC_OK)
        return ctb_fail(r, &e);
    store_file(o, cfg.store_sqlite, sizeof cfg.store_sqlite);
    cfg.ct_logs[0] = '\0';
    mc_engine_opts eo = {.workers = o->workers};
    if (mc_engine_open(&cfg, &eo, &eng, &e) != MC_OK)
        return ctb_fail(r, &e);
    orders_file(o, in, sizeof in);
    snprintf(out, sizeof out, "%s/ct-results.msgpack", o->dir);
    mc_err rc = bench_engine_run_file(eng, in, out, &r->st, &e);
    mc_engine_close(eng);
    if (rc != MC_OK)
        return ctb_fail(r, &e);
    r->ok = 1;
}

/* The certificates the engine stored, sorted by serial (for lookups by serial). */
typedef struct ctb_cert {
    uint8_t serial[MC_SERIAL_MAX];
    size_t serial_len;
    uint8_t *der;
    size_t der_len;
} ctb_cert;

typedef struct ctb_certs {
    ctb_cert *v;
    size_t n;
    uint8_t *issuer;
    size_t issuer_len;
} ctb_certs;

static void certs_free(ctb_certs *c)
{
    for (size_t i = 0; c->v && i < c->n; i++)
        free(c->v[i].der);
    free(c->v);
    OPENSSL_free(c->issuer);
    memset(c, 0, sizeof *c);
}

static int cert_cmp(const void *a, const void *b)
{
    const ctb_cert *x = a, *y = b;
    if (x->serial_len != y->serial_len)
        return x->serial_len < y->serial_len ? -1 : 1;
    return memcmp(x->serial, y->serial, x->serial_len);
}

/* Reads the certificates of the store (its certificates table, read only) and the issuing CA
 * certificate of cfg. *c is freed with certs_free. */
static mc_err certs_load(const char *db, const mc_config *cfg, ctb_certs *c, mc_errdetail *e)
{
    mc_err rc = MC_OK;
    sqlite3 *s = NULL;
    sqlite3_stmt *q = NULL;
    X509 *x = NULL;
    memset(c, 0, sizeof *c);
    FILE *f = fopen(cfg->ca_certificate, "r");
    if (f) {
        x = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
    }
    int il = x ? i2d_X509(x, &c->issuer) : -1;
    if (il <= 0) {
        rc = mc_err_set(e, MC_ERR_IO, "ca.certificate", NULL, "cannot read the CA certificate '%s'",
                        cfg->ca_certificate);
        goto done;
    }
    c->issuer_len = (size_t)il;
    if (sqlite3_open_v2(db, &s, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s, "SELECT count(*) FROM certificates", -1, &q, NULL) != SQLITE_OK ||
        sqlite3_step(q) != SQLITE_ROW) {
        rc = mc_err_set(e, MC_ERR_STORE, "store", NULL, "'%s': %s", db, sqlite3_errmsg(s));
        goto done;
    }
    size_t cap = (size_t)sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    q = NULL;
    c->v = calloc(cap ? cap : 1, sizeof *c->v);
    if (!c->v ||
        sqlite3_prepare_v2(s, "SELECT serial, der FROM certificates", -1, &q, NULL) != SQLITE_OK) {
        rc = mc_err_set(e, MC_ERR_STORE, "store", NULL, "'%s': %s", db, sqlite3_errmsg(s));
        goto done;
    }
    while (c->n < cap && sqlite3_step(q) == SQLITE_ROW) {
        ctb_cert *k = &c->v[c->n];
        size_t sl = (size_t)sqlite3_column_bytes(q, 0), dl = (size_t)sqlite3_column_bytes(q, 1);
        if (sl == 0 || sl > MC_SERIAL_MAX || dl == 0 || !(k->der = malloc(dl))) {
            rc = mc_err_set(e, MC_ERR_STORE, "store", NULL, "'%s': certificate row %zu malformed",
                            db, c->n);
            goto done;
        }
        memcpy(k->serial, sqlite3_column_blob(q, 0), sl);
        k->serial_len = sl;
        memcpy(k->der, sqlite3_column_blob(q, 1), dl);
        k->der_len = dl;
        c->n++;
    }
    qsort(c->v, c->n, sizeof *c->v, cert_cmp);
done:
    sqlite3_finalize(q);
    sqlite3_close(s);
    X509_free(x);
    if (rc)
        certs_free(c);
    return rc;
}

/* Every certificate into the outbox for every log of cfg, in transactions of 1000. */
static mc_err enqueue_all(mc_store *s, const mc_ct_config *cfg, const ctb_certs *c, mc_errdetail *e)
{
    enum { CHUNK = 1000 };
    mc_ct_submission v[CHUNK];
    const uint8_t *chain[CHUNK][2];
    size_t len[CHUNK][2];
    int64_t now = mc_ct_now_ms();
    for (size_t at = 0; at < c->n; at += CHUNK) {
        size_t m = c->n - at < CHUNK ? c->n - at : CHUNK;
        for (size_t i = 0; i < m; i++) {
            const ctb_cert *k = &c->v[at + i];
            chain[i][0] = k->der;
            chain[i][1] = c->issuer;
            len[i][0] = k->der_len;
            len[i][1] = c->issuer_len;
            v[i] = (mc_ct_submission){.serial = k->serial,
                                      .serial_len = k->serial_len,
                                      .chain = chain[i],
                                      .chain_len = len[i],
                                      .chain_n = 2};
        }
        mc_err rc = mc_ct_enqueue(s, cfg, v, m, now, e);
        if (rc)
            return rc;
    }
    return MC_OK;
}

/* Checks every outbox row again after the drain. */
typedef struct ctb_check {
    const ctb_certs *certs;
    const mc_ct_config *cfg;
    mc_ctlog *const *logs;
    size_t rows, done, verified, openssl_ok, openssl_tried;
    size_t per_log_sampled[MC_CT_LOGS_MAX];
    char first_error[MC_ERR_MSG_MAX];
} ctb_check;

static void check_row(void *arg, const mc_ct_row *r)
{
    ctb_check *k = arg;
    k->rows++;
    if (r->state != MC_CT_DONE || !r->sct)
        return;
    k->done++;
    ctb_cert key;
    memcpy(key.serial, r->serial, r->serial_len);
    key.serial_len = r->serial_len;
    const ctb_cert *c = bsearch(&key, k->certs->v, k->certs->n, sizeof key, cert_cmp);
    size_t l = 0;
    while (l < k->cfg->nlogs && memcmp(k->cfg->logs[l].id, r->log_id, MC_CT_LOG_ID_LEN) != 0)
        l++;
    mc_ct_sct sct;
    mc_errdetail e;
    mc_err rc = !c || l == k->cfg->nlogs
                    ? mc_err_set(&e, MC_ERR_INVALID, "sct", NULL, "row of an unknown cert/log")
                    : mc_ct_sct_parse(r->sct, r->sct_len, &sct, &e);
    if (!rc)
        rc = mc_ct_sct_verify(&sct, k->cfg->logs[l].spki, k->cfg->logs[l].spki_len, 0, c->der,
                              c->der_len, k->certs->issuer, k->certs->issuer_len, mc_ct_now_ms(),
                              k->cfg->max_future_ms, &e);
    if (rc) {
        if (!k->first_error[0])
            snprintf(k->first_error, sizeof k->first_error, "%s", e.message);
        return;
    }
    k->verified++;
    /* OpenSSL's own CT code (o2i_SCT, SCT_validate) on a sample of each log's SCTs. */
    if (k->per_log_sampled[l] < 5) {
        k->per_log_sampled[l]++;
        k->openssl_tried++;
        k->openssl_ok +=
            mc_ctlog_openssl_validate(mc_ctlog_key_b64(k->logs[l]), r->sct, r->sct_len, 0, c->der,
                                      c->der_len, k->certs->issuer, k->certs->issuer_len) == 1;
    }
}

/* Phase 3 and 4, in this process. 0 when every check passed. */
static int sink_run(const ctb_opts *o, const ctb_report *eng)
{
    mc_errdetail e;
    mc_config cfg;
    ctb_certs certs;
    mc_ctlog *logs[MC_CT_LOGS_MAX] = {0};
    mc_store *s = NULL;
    mc_ct *ct = NULL;
    mc_ct_config cc;
    int rc = 1;
    char db[600];
    memset(&certs, 0, sizeof certs);
    store_file(o, db, sizeof db);
    if (bench_config_load(o->dir, &cfg, &e) != MC_OK || certs_load(db, &cfg, &certs, &e) != MC_OK)
        goto fail;
    mc_ct_config_defaults(&cc);
    if (o->per_log > 0)
        cc.per_log_in_flight = o->per_log;
    if (cc.max_in_flight < cc.per_log_in_flight * o->logs)
        cc.max_in_flight = cc.per_log_in_flight * o->logs;
    for (int i = 0; i < o->logs; i++)
        if (mc_ctlog_start(&logs[i], &e) != MC_OK ||
            mc_ct_config_add_log(&cc, mc_ctlog_url(logs[i]), mc_ctlog_key_b64(logs[i]), &e) !=
                MC_OK)
            goto fail;
    if (mc_store_open(db, &s, &e) != MC_OK)
        goto fail;
    double t0 = bench_now_s();
    if (enqueue_all(s, &cc, &certs, &e) != MC_OK)
        goto fail;
    double t_enq = bench_now_s() - t0;
    if (mc_ct_new(&cc, &ct, &e) != MC_OK)
        goto fail;
    mc_ct_stats st;
    memset(&st, 0, sizeof st);
    double c0 = cpu_s(CLOCK_THREAD_CPUTIME_ID), p0 = cpu_s(CLOCK_PROCESS_CPUTIME_ID);
    t0 = bench_now_s();
    if (mc_ct_drain(ct, s, NULL, &st, &e) != MC_OK)
        goto fail;
    double t_drain = bench_now_s() - t0;
    double c_drain = cpu_s(CLOCK_THREAD_CPUTIME_ID) - c0;
    double c_rest = cpu_s(CLOCK_PROCESS_CPUTIME_ID) - p0 - c_drain;
    size_t want = certs.n * (size_t)o->logs;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 1)
        ncpu = 1;
    double sub_rate = t_drain > 0 ? (double)st.done / t_drain : 0;
    double sign_rate = eng->st.seconds > 0 ? (double)eng->st.issued / eng->st.seconds : 0;
    printf("  engine: %llu certificates issued in %.2f s: %.0f certs/s (signing rate)\n",
           (unsigned long long)eng->st.issued, eng->st.seconds, sign_rate);
    printf("  outbox: %zu submissions (%zu certificates x %d log(s)) enqueued in %.2f s "
           "(%.0f rows/s)\n",
           want, certs.n, o->logs, t_enq, t_enq > 0 ? (double)want / t_enq : 0);
    printf("  CT sink: %zu SCTs received and verified in %.2f s: %.0f submissions/s "
           "(%.0f certificates/s logged to all %d log(s))\n",
           st.done, t_drain, sub_rate, t_drain > 0 ? (double)certs.n / t_drain : 0, o->logs);
    printf("    = %.2fx the engine's signing rate (certificates logged to every log: %.2fx)\n",
           sign_rate > 0 ? sub_rate / sign_rate : 0,
           sign_rate > 0 && t_drain > 0 ? (double)certs.n / t_drain / sign_rate : 0);
    printf("    %zu claimed, %zu retried, %zu rejected, %zu invalid; %zu TCP connection(s) "
           "opened, up to %zu requests in flight (%d per log)\n",
           st.claimed, st.retried, st.rejected, st.invalid, st.connections, st.max_active,
           cc.per_log_in_flight);
    printf("    CPU while draining: sink thread %.2f s (%.0f%% of the wall time, %.0f us per "
           "submission), log server(s) %.2f s (%.0f%%, %.0f us per submission)\n",
           c_drain, t_drain > 0 ? 100 * c_drain / t_drain : 0,
           st.done ? 1e6 * c_drain / (double)st.done : 0, c_rest,
           t_drain > 0 ? 100 * c_rest / t_drain : 0, st.done ? 1e6 * c_rest / (double)st.done : 0);
    printf("    (sink + logs use %.0f%% of the %ld CPU(s) the wall time offers: the rest went to "
           "waiting or to other processes)\n",
           t_drain > 0 ? 100 * (c_drain + c_rest) / (t_drain * (double)ncpu) : 0, ncpu);
    /* checks */
    ctb_check k;
    memset(&k, 0, sizeof k);
    k.certs = &certs;
    k.cfg = &cc;
    k.logs = logs;
    if (mc_store_ct_list(s, NULL, 0, check_row, &k, &e) != MC_OK)
        goto fail;
    uint64_t leaves = 0;
    for (int i = 0; i < o->logs; i++) {
        mc_ctlog_stats ls;
        mc_ctlog_get_stats(logs[i], &ls);
        leaves += ls.accepted;
    }
    printf("  checks: %zu of %zu outbox rows done, %zu SCTs verify again (RFC 6962 3.2), "
           "%zu of %zu sampled also with OpenSSL's SCT_validate, %llu leaves in the logs' "
           "trees\n",
           k.done, k.rows, k.verified, k.openssl_ok, k.openssl_tried, (unsigned long long)leaves);
    rc = 0;
    if (eng->st.issued != o->orders || certs.n != o->orders)
        rc = fprintf(stderr, "mailca bench: %llu of %llu orders issued\n",
                     (unsigned long long)certs.n, (unsigned long long)o->orders) > 0;
    if (k.rows != want || k.done != want || k.verified != want || st.done != want ||
        k.openssl_ok != k.openssl_tried || leaves != want)
        rc = fprintf(stderr, "mailca bench: not every submission ended with a verified SCT%s%s\n",
                     k.first_error[0] ? ": " : "", k.first_error) > 0;
    goto done;
fail:;
    char msg[400];
    mc_err_format(&e, msg, sizeof msg);
    fprintf(stderr, "mailca bench: CT sink: %s\n", msg);
    rc = 1;
done:
    mc_ct_free(ct);
    mc_store_close(s);
    for (int i = 0; i < o->logs && i < MC_CT_LOGS_MAX; i++)
        mc_ctlog_stop(logs[i]);
    certs_free(&certs);
    return rc;
}

int mc_bench_ct_wanted(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--ct") == 0)
            return 1;
    return 0;
}

int mc_bench_ct_main(int argc, char **argv)
{
    ctb_opts o = {.orders = 20000, .logs = 1};
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    o.workers = (int)(ncpu > 0 ? ncpu : 1);
    static const struct option lo[] = {{"ct", 0, 0, 'c'},
                                       {"orders", 1, 0, 'n'},
                                       {"logs", 1, 0, 'L'},
                                       {"workers", 1, 0, 'w'},
                                       {"per-log-in-flight", 1, 0, 'm'},
                                       {"dir", 1, 0, 'd'},
                                       {"keep", 0, 0, 'K'},
                                       {0, 0, 0, 0}};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'c':
            break;
        case 'n':
            o.orders = strtoull(optarg, NULL, 10);
            break;
        case 'L':
            o.logs = atoi(optarg);
            break;
        case 'w':
            o.workers = atoi(optarg);
            break;
        case 'm':
            o.per_log = atoi(optarg);
            break;
        case 'd':
            if (snprintf(o.dir, sizeof o.dir, "%s", optarg) >= (int)sizeof o.dir) {
                fprintf(stderr, "mailca bench: --dir too long\n");
                return 2;
            }
            break;
        case 'K':
            o.keep = 1;
            break;
        default:
            fprintf(stderr, "usage:\n" MC_BENCH_CT_USAGE);
            return 2;
        }
    }
    if (o.orders == 0 || o.logs < 1 || o.logs > MC_CT_LOGS_MAX || o.workers < 1 || o.per_log < 0 ||
        optind != argc) {
        fprintf(stderr, "usage:\n" MC_BENCH_CT_USAGE "  (--logs: 1..%d)\n", MC_CT_LOGS_MAX);
        return 2;
    }
    int made_dir = bench_dir_make(o.dir, sizeof o.dir);
    if (made_dir < 0)
        return 1;
    printf("mailca bench --ct: %llu orders, %d local log(s), %d worker thread(s), state %s\n",
           (unsigned long long)o.orders, o.logs, o.workers, o.dir);
    fflush(stdout);
    ctb_report setup, eng;
    int rc = 1;
    if (ctb_in_child(phase_setup, &o, &setup) != 0) {
        fprintf(stderr, "mailca bench: setup: %s\n", setup.err);
        goto done;
    }
    if (ctb_in_child(phase_engine, &o, &eng) != 0) {
        fprintf(stderr, "mailca bench: engine: %s\n", eng.err);
        goto done;
    }
    rc = sink_run(&o, &eng);
done:
    if (made_dir && !o.keep)
        bench_dir_remove(o.dir);
    return rc;
}
