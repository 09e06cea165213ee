/*
 * `mailca bench`: certs/sec of the real engine against the raw C_Sign rate of the same token with
 * the same number of threads, measured in the same run (before and after the engine, to expose
 * drift on a noisy machine). Each phase runs in its own child process so that the PKCS#11 module
 * is initialised fresh (PKCS#11 forbids using it across fork) and so that the engine's peak RSS is
 * its own.
 *
 * `mailca bench --caa` (issue 6): the same orders, spread over N mailbox domains, issued with CAA
 * checks off and on in alternating runs (off, on, off, on, ...), against NSD on 127.0.0.1 serving
 * a CAA issuemail record per domain for the bench CA; prints certs/sec both ways (medians), their
 * ratio and the CAA counters of each run with CAA (lookups = cache misses). docs/bench.md.
 */
#include "ctbench.h"
#include "nsd.h"
#include "phase.h"

#include "mailca/ca.h"
#include "mailca/caa.h"
#include "mailca/cli.h"
#include "mailca/config.h"
#include "mailca/crypto.h"
#include "mailca/engine.h"
#include "mailca/hsm.h"
#include "mailca/hsmpool.h"
#include "mailca/sqlvfs.h"
#include "mailca/store.h"

#include <errno.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct bench_opts {
    uint64_t orders;
    mc_keytype ca_kt, sub_kt;
    unsigned ca_bits, sub_bits;
    int workers, batch;
    double seconds;
    int lint_compare;
    int forms; /* bit 1 << mc_key_form per key form to run */
    int procs; /* 0: worker threads; N: N worker processes of `workers` threads each */
    char dir[512];
    int keep;
    char store[512]; /* --store-only: a SQLite path or postgresql:// URI ("" = a file in dir) */
    int store_only;
    unsigned domains;         /* mailbox domains of the generated orders */
    char suffix[128];         /* ... org<k>.<suffix> */
    int caa;                  /* --caa: CAA off/on comparison */
    int rounds;               /* --caa: off/on pairs */
    char resolver[64];        /* --caa: the NSD the engine asks ("" while CAA is off) */
    int latency_us;           /* --hsm-latency-us: C_Sign slowed down by the fault module */
    char sessions_list[64];   /* --sessions-list: the sessions in flight to compare */
    int sessions;             /* engine.sessions for the run (0: the config's) */
    char module[MC_PATH_MAX]; /* PKCS#11 module for the runs ("" = the config's) */
    mc_sigalg ca_sig;         /* --key rsa2048-pss: the issuing CA's algorithm (NONE = default) */
    int tokens;               /* --tokens N: the issuing key on N tokens (1 = generated inside) */
    int use_tokens;           /* the tokens this phase uses: the first N of hsm.key (0 = all) */
    int proc_index;           /* raw processes: this one's index (spreads sessions over tokens) */
    size_t msg_len;           /* raw Ed25519 baseline: bytes signed (a TBS's size) */
} bench_opts;

typedef struct report {
    int ok;
    char err[400];
    double rate;
    mc_run_stats st;
    long maxrss_kb;
    mc_caa_stats caa; /* the run's CAA counters (zero with CAA off) */
    double cpu_s;     /* CPU seconds (user + system) of the measured part, every thread and
                         worker process: signatures or certificates per CPU-second do not
                         depend on what else the machine runs */
    uint64_t ops;     /* raw phases: signatures made */
    /* --store-only: the rate over the first and the last tenth of the orders (the store small,
     * then at its largest) and the checkpointer thread's CPU seconds (within cpu_s) */
    double rate_first, rate_last, ckpt_cpu_s;
    mc_sqlvfs_stats wal; /* --store-only, SQLite: WAL writes SQLite made and the OS writes they
                            became (engine/sqlvfs.c gathers them) */
} report;

/* Microseconds of CPU per operation (0 when nothing was counted). */
static double us_per(double cpu_s, uint64_t n)
{
    return n > 0 ? 1e6 * cpu_s / (double)n : 0;
}

/* User + system seconds of who (RUSAGE_SELF: every thread; RUSAGE_CHILDREN: reaped children). */
static double cpu_now(int who)
{
    struct rusage ru;
    if (getrusage(who, &ru) != 0)
        return 0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* A phase and its options, as a child process runs it (bench_proc_fn); index: raw processes'
 * proc_index, staggered start (-1: neither). */
typedef struct phase_call {
    void (*fn)(const bench_opts *, report *);
    const bench_opts *o;
    int index;
} phase_call;

static void phase_call_run(const void *arg, void *out)
{
    const phase_call *c = arg;
    if (c->index < 0) {
        c->fn(c->o, out);
        return;
    }
    /* staggered: SoftHSM2 processes opening one token at the same moment race on its state
     * files (as the engine's worker processes, which start one by one) */
    usleep((useconds_t)c->index * 150000);
    bench_opts mo = *c->o;
    mo.proc_index = c->index;
    c->fn(&mo, out);
}

/* Runs fn in a child process and returns its report (with the child's peak RSS). */
static int in_child(void (*fn)(const bench_opts *, report *), const bench_opts *o, report *r)
{
    phase_call c = {fn, o, -1};
    return bench_phase_in_child(phase_call_run, &c, r, sizeof *r, &r->ok, r->err, sizeof r->err,
                                &r->maxrss_kb);
}

static void fail(report *r, const mc_errdetail *e)
{
    mc_err_format(e, r->err, sizeof r->err);
    r->ok = 0;
}

static void orders_path(const bench_opts *o, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s.msgpack", o->dir, name);
}

/* Order files: one per key form, and one more per form for the run without lint. */
static const char *const form_names[] = {"csr", "public-key"};

static void phase_setup(const bench_opts *o, report *r)
{
    mc_errdetail e;
    mc_ca_init_opts ci = {.dir = o->dir,
                          .keytype = o->ca_kt,
                          .rsa_bits = o->ca_bits,
                          .sigalg = o->ca_sig,
                          .bench_tokens = o->tokens, /* > 1: imported key, bench only */
                          .org = "mailca bench",
                          /* as a CA in production: no w_smime_uri_host_reserved */
                          .base_url = "http://pki.mailca.example.com"};
    if (mc_ca_init(&ci, &e) != MC_OK)
        return fail(r, &e);
    for (int form = 0; form < 2; form++) {
        if (!(o->forms & (1 << form)))
            continue;
        for (int nolint = 0; nolint <= o->lint_compare; nolint++) {
            char name[64], path[600];
            snprintf(name, sizeof name, "orders-%s%s", form_names[form], nolint ? "-nolint" : "");
            orders_path(o, name, path, sizeof path);
            if (bench_orders_write(path, name, o->orders, o->sub_kt, o->sub_bits, (mc_key_form)form,
                                   o->domains, o->suffix, &e) != MC_OK)
                return fail(r, &e);
        }
    }
    r->ok = 1;
}

static mc_err load_cfg(const bench_opts *o, mc_config *cfg, mc_errdetail *e)
{
    mc_err rc = bench_config_load(o->dir, cfg, e);
    /* --tokens: this phase uses the first use_tokens URIs of hsm.key */
    char *p = cfg->hsm_key;
    for (int i = 0; rc == MC_OK && o->use_tokens > 0 && i <= o->use_tokens && *p; i++) {
        p += strspn(p, " \t\n");
        if (i == o->use_tokens) {
            *p = '\0';
            break;
        }
        p += strcspn(p, " \t\n");
    }
    return rc;
}

typedef struct raw_thread {
    mc_hsm *h;
    mc_sigalg alg;
    size_t msg_len; /* what C_Sign gets: the digest, or for Ed25519 the whole TBS-sized message */
    double deadline;
    atomic_int *go;
    uint64_t count;
    mc_err rc;
    mc_errdetail err;
} raw_thread;

static void *raw_main(void *arg)
{
    raw_thread *t = arg;
    mc_hsm_session *s = NULL;
    uint8_t msg[4096], sig[1024];
    memset(msg, 0x5a, sizeof msg);
    if ((t->rc = mc_hsm_session_open(t->h, &s, &t->err)) != MC_OK)
        return NULL;
    while (!atomic_load(t->go))
        ;
    while (bench_now_s() < t->deadline) {
        for (int i = 0; i < 16; i++) {
            size_t sl = sizeof sig;
            if ((t->rc = mc_hsm_sign_raw(s, t->alg, msg, t->msg_len, sig, &sl)) != MC_OK) {
                mc_err_set(&t->err, t->rc, NULL, NULL, "C_Sign failed");
                goto done;
            }
            t->count++;
        }
    }
done:
    mc_hsm_session_close(s);
    return NULL;
}

/* The size of the TBS the engine builds for a bench order (mailbox-strict profile, one mailbox,
 * the bench CA's names and URLs): measured at 650 bytes with a P-256 subject key (91-byte
 * SubjectPublicKeyInfo); other subject keys change it by their SPKI's size. */
static size_t bench_tbs_len(mc_keytype sub_kt, unsigned sub_bits)
{
    size_t spki = sub_kt == MC_KEY_RSA       ? (sub_bits ? sub_bits : 2048) / 8 + 38
                  : sub_kt == MC_KEY_P384    ? 120
                  : sub_kt == MC_KEY_P521    ? 158
                  : sub_kt == MC_KEY_ED25519 ? 44
                  : sub_kt == MC_KEY_ED448   ? 69
                                             : 91;
    return 650 + spki - 91;
}

/* What the raw baseline hands C_Sign for alg: the digest the engine's workers compute (ECDSA,
 * RSA PKCS#1 v1.5 and PSS: the mechanisms' parameters are the engine's, engine/hsm.c), or for
 * Ed25519 (CKM_EDDSA hashes the message itself) a message of the size of the engine's TBS. */
static size_t raw_msg_len(const bench_opts *o, mc_sigalg alg)
{
    const char *d = mc_sigalg_digest(alg);
    if (!d)
        return o->msg_len;
    return strcmp(d, "SHA384") == 0 ? 48 : strcmp(d, "SHA512") == 0 ? 64 : 32;
}

/* The baseline: C_Sign with the engine's mechanism, one session per thread, on the tokens the
 * engine run uses (hsm.key, or its first o->use_tokens URIs), sessions spread over them as the
 * engine's pool spreads its workers' (thread i of raw process k on token k * threads + i), same
 * thread count. */
static void phase_raw(const bench_opts *o, report *r)
{
    mc_errdetail e;
    mc_config cfg;
    mc_hsmpool *p = NULL;
    char pin[256];
    if (load_cfg(o, &cfg, &e) != MC_OK || mc_config_read_pin(&cfg, pin, sizeof pin, &e) != MC_OK)
        return fail(r, &e);
    mc_err rc = mc_hsmpool_open(cfg.hsm_module, cfg.hsm_key, pin, &p, &e);
    OPENSSL_cleanse(pin, sizeof pin);
    if (rc != MC_OK)
        return fail(r, &e);
    mc_sigalg alg = mc_sigalg_from_name(cfg.ca_signature);
    int n = o->workers;
    size_t ntok = mc_hsmpool_tokens(p);
    raw_thread *t = calloc((size_t)n, sizeof *t);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    atomic_int go = 0;
    double start = bench_now_s() + 0.2;
    for (int i = 0; t && th && i < n; i++) {
        size_t tok = (size_t)(o->proc_index * n + i) % ntok;
        t[i] = (raw_thread){.h = mc_hsmpool_hsm(p, tok),
                            .alg = alg,
                            .msg_len = raw_msg_len(o, alg),
                            .deadline = start + o->seconds,
                            .go = &go};
        pthread_create(&th[i], NULL, raw_main, &t[i]);
    }
    while (bench_now_s() < start)
        ;
    double t0 = bench_now_s(), cpu0 = cpu_now(RUSAGE_SELF);
    atomic_store(&go, 1);
    uint64_t total = 0;
    r->ok = t && th;
    for (int i = 0; t && th && i < n; i++) {
        pthread_join(th[i], NULL);
        total += t[i].count;
        if (t[i].rc != MC_OK) {
            fail(r, &t[i].err);
        }
    }
    double el = bench_now_s() - t0;
    r->rate = el > 0 ? (double)total / el : 0;
    r->cpu_s = cpu_now(RUSAGE_SELF) - cpu0;
    r->ops = total;
    free(t);
    free(th);
    mc_hsmpool_close(p);
}

/* The raw baseline across processes: o->procs processes, each running phase_raw with o->workers
 * threads at the same time; the rates add up. Each process loads the module itself, as the
 * engine's worker processes do. */
static void sum_in_procs(const bench_opts *o, report *r, void (*fn)(const bench_opts *, report *))
{
    int n = o->procs;
    bench_proc procs[256];
    r->ok = 1;
    for (int i = 0; i < n && i < 256; i++) {
        phase_call c = {fn, o, i};
        if (bench_proc_start(&procs[i], phase_call_run, &c, sizeof(report)) != 0) {
            snprintf(r->err, sizeof r->err, "cannot start raw process %d", i);
            r->ok = 0;
            n = i;
            break;
        }
    }
    for (int i = 0; i < n; i++) {
        report one;
        int status;
        int died = bench_proc_finish(&procs[i], &one, sizeof one, &status, NULL) != 0;
        if (died || !one.ok) {
            if (snprintf(r->err, sizeof r->err, "raw process %d: %.300s", i,
                         died ? "died" : one.err) < 0)
                r->err[0] = '\0';
            r->ok = 0;
        } else {
            r->rate += one.rate;
            r->cpu_s += one.cpu_s;
            r->ops += one.ops;
        }
    }
}

static void phase_raw_procs(const bench_opts *o, report *r)
{
    sum_in_procs(o, r, phase_raw);
}

/* One process with as many threads as the engine has signers in all. */
static void phase_raw_threads(const bench_opts *o, report *r)
{
    bench_opts all = *o;
    all.workers = o->workers * o->procs;
    phase_raw(&all, r);
}

/* The Issuer Domain Name of the bench CA in CAA (the zone NSD serves names it). */
#define BENCH_CAA_ISSUER "ca.mailca.test"

/* Removes a SQLite store and its WAL files (a 100,000-certificate store is ~200 MB). */
static void store_remove(const char *db)
{
    char p[1024];
    remove(db);
    snprintf(p, sizeof p, "%s-wal", db);
    remove(p);
    snprintf(p, sizeof p, "%s-shm", db);
    remove(p);
}

/* One engine run over the orders file `orders` into the fresh store <dir>/<name>.db; with CAA
 * when o->resolver is set (caa.enabled, that resolver, BENCH_CAA_ISSUER), else with CAA off. */
static void run_engine_ex(const bench_opts *o, report *r, const char *orders, const char *name,
                          int no_lint)
{
    mc_errdetail e;
    mc_config cfg;
    mc_engine *eng = NULL;
    char in[600], out[600];
    if (load_cfg(o, &cfg, &e) != MC_OK)
        return fail(r, &e);
    /* each run gets a fresh store, so no run pays for another's rows */
    if (snprintf(cfg.store_sqlite, sizeof cfg.store_sqlite, "%s/%s.db", o->dir, name) >=
        (int)sizeof cfg.store_sqlite) {
        mc_err_set(&e, MC_ERR_CONFIG, "dir", NULL, "state folder path too long");
        return fail(r, &e);
    }
    cfg.caa_enabled = o->resolver[0] != '\0';
    if (cfg.caa_enabled) {
        snprintf(cfg.caa_resolvers, sizeof cfg.caa_resolvers, "%s", o->resolver);
        snprintf(cfg.caa_issuer_domains, sizeof cfg.caa_issuer_domains, "%s", BENCH_CAA_ISSUER);
        cfg.caa_perspectives[0] = '\0';
        cfg.caa_quorum = 0;
    }
    if (o->module[0])
        snprintf(cfg.hsm_module, sizeof cfg.hsm_module, "%s", o->module);
    if (o->use_tokens > 0 || (o->module[0] && o->procs > 0)) {
        /* worker processes (--procs) re-read the config from its file, so this set-up's
         * hsm.key (--tokens: the first use_tokens URIs) and hsm.module (the fault module) go
         * into a file of its own */
        char cpath[sizeof cfg.path];
        int n = o->use_tokens > 0
                    ? snprintf(cpath, sizeof cpath, "%s/mailca-%dtok.yaml", o->dir, o->use_tokens)
                    : snprintf(cpath, sizeof cpath, "%s/mailca-module.yaml", o->dir);
        if (n < 0 || n >= (int)sizeof cpath) {
            mc_err_set(&e, MC_ERR_CONFIG, "dir", NULL, "state folder path too long");
            return fail(r, &e);
        }
        if (mc_config_write(&cfg, cpath, &e) != MC_OK)
            return fail(r, &e);
        memcpy(cfg.path, cpath, sizeof cfg.path);
    }
    mc_engine_opts eo = {.workers = o->workers,
                         .batch = o->batch,
                         .no_lint = no_lint,
                         .procs = o->procs,
                         .sessions = o->sessions};
    if (mc_engine_open(&cfg, &eo, &eng, &e) != MC_OK)
        return fail(r, &e);
    orders_path(o, orders, in, sizeof in);
    snprintf(out, sizeof out, "%s/%s-results.msgpack", o->dir, name);
    /* CPU of the run itself, and of worker processes (--procs; reaped at close) */
    double self0 = cpu_now(RUSAGE_SELF), kids0 = cpu_now(RUSAGE_CHILDREN);
    mc_err rc = bench_engine_run_file(eng, in, out, &r->st, &e);
    double self1 = cpu_now(RUSAGE_SELF);
    mc_engine_caa_stats(eng, &r->caa);
    mc_engine_close(eng);
    r->cpu_s = self1 - self0 + cpu_now(RUSAGE_CHILDREN) - kids0;
    if (o->caa && !o->keep) {
        store_remove(cfg.store_sqlite);
        remove(out);
    }
    if (rc != MC_OK)
        return fail(r, &e);
    r->rate = r->st.seconds > 0 ? (double)r->st.issued / r->st.seconds : 0;
    r->ok = 1;
}

static void run_engine(const bench_opts *o, report *r, const char *name, int no_lint)
{
    run_engine_ex(o, r, name, name, no_lint);
}

/* --caa: which key form's orders the runs use (the first form selected). */
static const char *caa_orders(const bench_opts *o)
{
    return o->forms & 1 ? "orders-csr" : "orders-public-key";
}

static void phase_caa_off(const bench_opts *o, report *r)
{
    bench_opts off = *o;
    off.resolver[0] = '\0';
    run_engine_ex(&off, r, caa_orders(o), "caa-off", 0);
}

static void phase_caa_on(const bench_opts *o, report *r)
{
    run_engine_ex(o, r, caa_orders(o), "caa-on", 0);
}

static double median(double *v, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* --caa: NSD up, then off/on runs alternating, each in its own process; NSD stopped. Returns
 * the exit status: 0 when every order of every run was issued and each run with CAA made one
 * lookup per domain, 1 otherwise. */
static int caa_main(bench_opts *o)
{
    enum { MAX_ROUNDS = 50 };
    mc_errdetail e;
    mc_bench_nsd nsd;
    char nsd_dir[600];
    report off[MAX_ROUNDS], on[MAX_ROUNDS];
    double r_off[MAX_ROUNDS], r_on[MAX_ROUNDS];
    int rc = 1, n = o->rounds;
    snprintf(nsd_dir, sizeof nsd_dir, "%s/nsd", o->dir);
    if (mkdir(nsd_dir, 0700) != 0 && errno != EEXIST) {
        perror("mailca bench: mkdir");
        return 1;
    }
    if (mc_bench_nsd_start(nsd_dir, o->suffix, o->domains, BENCH_CAA_ISSUER, &nsd, &e) != MC_OK) {
        char msg[400];
        mc_err_format(&e, msg, sizeof msg);
        fprintf(stderr, "mailca bench: %s\n", msg);
        return 1;
    }
    snprintf(o->resolver, sizeof o->resolver, "%s", nsd.resolver);
    uint64_t want_lookups = o->orders < o->domains ? o->orders : o->domains;
    printf("  NSD on %s serving %s: org0..org%u with CAA 0 issuemail \"%s\" (TTL 3600)\n",
           nsd.resolver, o->suffix, o->domains - 1, BENCH_CAA_ISSUER);
    for (int i = 0; i < n; i++) {
        if (in_child(phase_caa_off, o, &off[i]) != 0) {
            fprintf(stderr, "mailca bench: run without CAA: %s\n", off[i].err);
            goto done;
        }
        printf("  run %d, CAA off: %.0f certs/s (%llu issued, %llu rejected, %llu failed in "
               "%.2f s)\n",
               2 * i + 1, off[i].rate, (unsigned long long)off[i].st.issued,
               (unsigned long long)off[i].st.rejected, (unsigned long long)off[i].st.failed,
               off[i].st.seconds);
        fflush(stdout);
        if (in_child(phase_caa_on, o, &on[i]) != 0) {
            fprintf(stderr, "mailca bench: run with CAA: %s\n", on[i].err);
            goto done;
        }
        const mc_caa_stats *c = &on[i].caa;
        printf("  run %d, CAA on:  %.0f certs/s (%llu issued, %llu rejected, %llu failed in "
               "%.2f s)\n"
               "    CAA: %llu checks, %llu lookups (cache misses), %llu cache hits (%llu of them "
               "coalesced waits), %llu DNS queries\n",
               2 * i + 2, on[i].rate, (unsigned long long)on[i].st.issued,
               (unsigned long long)on[i].st.rejected, (unsigned long long)on[i].st.failed,
               on[i].st.seconds, (unsigned long long)c->checks, (unsigned long long)c->lookups,
               (unsigned long long)c->cache_hits, (unsigned long long)c->coalesced,
               (unsigned long long)c->queries);
        fflush(stdout);
        r_off[i] = off[i].rate;
        r_on[i] = on[i].rate;
    }
    double m_off = median(r_off, n), m_on = median(r_on, n);
    double ratio = m_off > 0 ? m_on / m_off : 0;
    printf("  median certs/sec over %d run(s) each: CAA off %.0f, CAA on %.0f; on/off %.3f "
           "(CAA costs %.1f%%; issue 6 allows 5%%)\n",
           n, m_off, m_on, ratio, 100.0 * (1.0 - ratio));
    rc = 0;
    for (int i = 0; i < n; i++) {
        if (off[i].st.issued != o->orders || on[i].st.issued != o->orders) {
            fprintf(stderr, "mailca bench: not every order was issued in round %d\n", i + 1);
            rc = 1;
        }
        if (on[i].caa.lookups != want_lookups) {
            fprintf(stderr,
                    "mailca bench: run %d made %llu CAA lookups for %llu domains (the cache "
                    "should make one per domain)\n",
                    2 * i + 2, (unsigned long long)on[i].caa.lookups,
                    (unsigned long long)want_lookups);
            rc = 1;
        }
    }
done:
    mc_bench_nsd_stop(&nsd);
    return rc;
}

/* An engine run over orders; with --tokens each token set-up issues into a store of its own. */
static void run_engine_tokens(const bench_opts *o, report *r, const char *orders, int no_lint)
{
    char name[96];
    if (o->use_tokens > 0)
        snprintf(name, sizeof name, "%s-%dtok", orders, o->use_tokens);
    else
        snprintf(name, sizeof name, "%s", orders);
    run_engine_ex(o, r, orders, name, no_lint);
}

static void phase_engine_csr(const bench_opts *o, report *r)
{
    run_engine_tokens(o, r, "orders-csr", 0);
}

static void phase_engine_pk(const bench_opts *o, report *r)
{
    run_engine_tokens(o, r, "orders-public-key", 0);
}

static void phase_engine_csr_nolint(const bench_opts *o, report *r)
{
    run_engine_tokens(o, r, "orders-csr-nolint", 1);
}

static void phase_engine_pk_nolint(const bench_opts *o, report *r)
{
    run_engine_tokens(o, r, "orders-public-key-nolint", 1);
}

/* The storage sink alone: pre-built certificates recorded the way the collector records them
 * (intents then certificates, one transaction each per batch of 256), to show the sink keeps up
 * with several times the signing rate (issue 5). Each intent carries what the engine's worker
 * gives it (workers/worker.c): a distinct order id, a random serial, a random subject key hash
 * (so subject_keys and the intents_spki index do their work), a mailbox list and validation
 * evidence JSON of a real order's size (~300 bytes), a TBS and a certificate of real mailbox
 * certificates' sizes. Only the time spent in the store is counted, not building the input. */
#define STORE_BENCH_B 256

typedef struct store_bench_batch {
    uint8_t serial[STORE_BENCH_B][16];
    uint8_t spki[STORE_BENCH_B][32];
    uint8_t tbs_hash[STORE_BENCH_B][32];
    char ids[STORE_BENCH_B][96];
    char mailboxes[STORE_BENCH_B][64];
    char evidence[STORE_BENCH_B][400];
    mc_intent in[STORE_BENCH_B];
    mc_stored_cert sc[STORE_BENCH_B];
    mc_intent_state st[STORE_BENCH_B];
} store_bench_batch;

/* Fills b with n orders numbered from first; 0 or -1 when the CSPRNG fails. */
static int store_bench_fill(store_bench_batch *b, size_t n, uint64_t first, const char *prefix,
                            const uint8_t *tbs, size_t tbs_len, const uint8_t *cert,
                            size_t cert_len, const uint8_t *ph)
{
    if (mc_random(&b->serial[0][0], sizeof b->serial) != MC_OK ||
        mc_random(&b->spki[0][0], sizeof b->spki) != MC_OK ||
        mc_random(&b->tbs_hash[0][0], sizeof b->tbs_hash) != MC_OK)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned long long k = (unsigned long long)(first + i);
        snprintf(b->ids[i], sizeof b->ids[i], "%s-%llu", prefix, k);
        snprintf(b->mailboxes[i], sizeof b->mailboxes[i], "user%llu@org%llu.example.com", k,
                 k % 1000);
        /* the shape worker.c evidence_json writes for a CSR order with one mailbox */
        snprintf(b->evidence[i], sizeof b->evidence[i],
                 "{\"mailboxes\":[{\"address\":\"%s\",\"method\":\"3.2.2.2\","
                 "\"validated_at\":1767225600,\"reference\":\"dcv-%s-mbx-0-"
                 "challenge-response-7f3a9c0e5b1d4a2f\"}],\"key\":{\"form\":\"csr\"},"
                 "\"caa\":\"checked: issuemail ca.mailca.test at org%llu.example.com\"}",
                 b->mailboxes[i], b->ids[i], k % 1000);
        b->serial[i][0] = (uint8_t)((b->serial[i][0] & 0x7f) | 0x01);
        b->in[i] = (mc_intent){.order_id = b->ids[i],
                               .account = "acct-bench-platform",
                               .profile = "mailbox-strict",
                               .profile_hash = ph,
                               .lint_version = "bench",
                               .engine_version = MAILCA_VERSION,
                               .serial = b->serial[i],
                               .serial_len = 16,
                               .tbs = tbs,
                               .tbs_len = tbs_len,
                               .tbs_hash = b->tbs_hash[i],
                               .not_before = 1767225600,
                               .not_after = 1767225600 + 86400 * 365,
                               .mailboxes = b->mailboxes[i],
                               .evidence = b->evidence[i],
                               .lint_warnings = "",
                               .spki_sha256 = b->spki[i]};
        b->sc[i] = (mc_stored_cert){.order_id = b->ids[i],
                                    .serial = b->serial[i],
                                    .serial_len = 16,
                                    .der = cert,
                                    .der_len = cert_len};
    }
    return 0;
}

/* The engine's checkpointer (engine/pipeline.c), for the sink alone: the writer's commits leave
 * the WAL to a connection of its own, which copies it when a commit finds it at the usual
 * checkpoint size, so the bench pays what the engine pays and where. */
typedef struct store_ckpt {
    mc_store *s;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int want, stop;
    double cpu_s; /* the thread's CPU time, when it ends */
    mc_err rc;
    mc_errdetail err;
} store_ckpt;

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *store_ckpt_main(void *arg)
{
    store_ckpt *k = arg;
    pthread_mutex_lock(&k->mu);
    for (;;) {
        while (!k->want && !k->stop)
            pthread_cond_wait(&k->cv, &k->mu);
        if (k->stop)
            break;
        k->want = 0;
        pthread_mutex_unlock(&k->mu);
        mc_err rc = mc_store_checkpoint(k->s, &k->err);
        pthread_mutex_lock(&k->mu);
        if (rc != MC_OK) {
            k->rc = rc;
            break; /* the writer's commits copy the WAL past its hard limit */
        }
    }
    pthread_mutex_unlock(&k->mu);
    k->cpu_s = thread_cpu_s();
    return NULL;
}

static void store_ckpt_signal(store_ckpt *k, int stop)
{
    pthread_mutex_lock(&k->mu);
    if (stop)
        k->stop = 1;
    else
        k->want = 1;
    pthread_cond_signal(&k->cv);
    pthread_mutex_unlock(&k->mu);
}

static void phase_store(const bench_opts *o, report *r)
{
    mc_errdetail e;
    mc_store *s = NULL;
    store_ckpt k = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    pthread_t kth;
    int kstarted = 0;
    char path[600];
    if (o->store[0])
        snprintf(path, sizeof path, "%s", o->store);
    else
        snprintf(path, sizeof path, "%s/store-bench.db", o->dir);
    if (mc_store_open(path, &s, &e) != MC_OK)
        return fail(r, &e);
    static uint8_t tbs[650], cert[750], ph[32];
    store_bench_batch *b = calloc(1, sizeof *b);
    char prefix[64];
    mc_orders_id_prefix(prefix, sizeof prefix, "store");
    memset(tbs, 0x5a, sizeof tbs);
    memset(cert, 0xa5, sizeof cert);
    memset(ph, 0x3c, sizeof ph);
    double spent = 0, cpu = 0, first_t = 0, last_t = 0;
    uint64_t done = 0, tenth = o->orders / 10 ? o->orders / 10 : 1, first_n = 0, last_n = 0;
    if (!b) {
        mc_err_set(&e, MC_ERR_NOMEM, NULL, NULL, "store bench: out of memory");
        goto out;
    }
    if (mc_store_has_wal(s)) {
        if (mc_store_open(path, &k.s, &e) != MC_OK ||
            mc_store_checkpoint_elsewhere(s, MC_STORE_WAL_HARD_PAGES, &e) != MC_OK)
            goto out;
        if (pthread_create(&kth, NULL, store_ckpt_main, &k) != 0) {
            mc_err_set(&e, MC_ERR_INTERNAL, NULL, NULL, "store bench: checkpointer thread");
            goto out;
        }
        kstarted = 1;
    }
    while (done < o->orders) {
        size_t n = o->orders - done < STORE_BENCH_B ? (size_t)(o->orders - done) : STORE_BENCH_B;
        if (store_bench_fill(b, n, done, prefix, tbs, sizeof tbs, cert, sizeof cert, ph) != 0) {
            mc_err_set(&e, MC_ERR_IO, NULL, NULL, "CSPRNG");
            goto out;
        }
        double t0 = bench_now_s(), c0 = thread_cpu_s();
        if (mc_store_intents_commit(s, b->in, n, b->st, &e) != MC_OK)
            goto out;
        for (size_t i = 0; i < n; i++)
            if (b->st[i] != MC_INTENT_NEW) {
                mc_err_set(&e, MC_ERR_INTERNAL, NULL, NULL,
                           "store bench: order '%s' answered state %d, not new", b->ids[i],
                           (int)b->st[i]);
                goto out;
            }
        if (mc_store_certs_commit(s, b->sc, n, &e) != MC_OK)
            goto out;
        if (kstarted && mc_store_wal_pages(s) >= MC_STORE_WAL_CHECKPOINT_PAGES)
            store_ckpt_signal(&k, 0);
        double dt = bench_now_s() - t0;
        spent += dt;
        cpu += thread_cpu_s() - c0;
        if (done < tenth) { /* the batches that begin in the first tenth: the store small */
            first_t += dt;
            first_n += n;
        }
        done += n;
        if (done > o->orders - tenth) { /* ... and end in the last: the store at its largest */
            last_t += dt;
            last_n += n;
        }
    }
    r->rate = spent > 0 ? (double)done / spent : 0;
    r->rate_first = first_t > 0 ? (double)first_n / first_t : 0;
    r->rate_last = last_t > 0 ? (double)last_n / last_t : 0;
    r->ok = 1;
out:
    if (kstarted) {
        store_ckpt_signal(&k, 1);
        pthread_join(kth, NULL);
        if (r->ok && k.rc != MC_OK) {
            e = k.err;
            r->ok = 0;
        }
    }
    r->cpu_s = cpu + k.cpu_s;
    r->ckpt_cpu_s = k.cpu_s;
    r->ops = done;
    free(b);
    mc_store_close(k.s);
    mc_store_close(s);
    mc_sqlvfs_stats_get(&r->wal); /* after the closes: they write out what was left */
    if (!r->ok)
        fail(r, &e);
}

/* ---- --hsm-latency-us: sessions in flight against a latency-bound HSM (issue 4) ----
 * The fault module (tests/p11fault, built beside mailca) wraps SoftHSM2 and adds latency_us to
 * every C_Sign, as a network HSM answers. For each count S of sessions in flight the bench runs
 * S threads signing through the HSM pool (each its own session), then the engine with
 * --sessions S; both are compared with the ideal S / latency. */

typedef struct pool_thread {
    mc_hsmpool *p;
    mc_sigalg alg;
    int hint;
    double deadline;
    atomic_int *go;
    uint64_t count;
    mc_err rc;
    mc_errdetail err;
} pool_thread;

static void *pool_main(void *arg)
{
    pool_thread *t = arg;
    mc_hsmpool_session ps;
    uint8_t digest[32], sig[1024];
    memset(digest, 0x5a, sizeof digest);
    if ((t->rc = mc_hsmpool_session_open(t->p, t->hint, &ps, &t->err)) != MC_OK)
        return NULL;
    while (!atomic_load(t->go))
        ;
    while (bench_now_s() < t->deadline) {
        size_t sl = sizeof sig;
        if ((t->rc = mc_hsmpool_sign(t->p, &ps, t->alg, digest, sizeof digest, sig, &sl,
                                     &t->err)) != MC_OK)
            break;
        t->count++;
    }
    mc_hsmpool_session_close(t->p, &ps);
    return NULL;
}

static void phase_pool(const bench_opts *o, report *r)
{
    mc_errdetail e;
    mc_config cfg;
    mc_hsmpool *p = NULL;
    char pin[256];
    if (load_cfg(o, &cfg, &e) != MC_OK || mc_config_read_pin(&cfg, pin, sizeof pin, &e) != MC_OK)
        return fail(r, &e);
    mc_err rc =
        mc_hsmpool_open(o->module[0] ? o->module : cfg.hsm_module, cfg.hsm_key, pin, &p, &e);
    OPENSSL_cleanse(pin, sizeof pin);
    if (rc != MC_OK)
        return fail(r, &e);
    int n = o->sessions > 0 ? o->sessions : 1;
    pool_thread *t = calloc((size_t)n, sizeof *t);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    atomic_int go = 0;
    double start = bench_now_s() + 0.3;
    r->ok = t && th;
    for (int i = 0; r->ok && i < n; i++) {
        t[i] = (pool_thread){.p = p,
                             .alg = mc_sigalg_from_name(cfg.ca_signature),
                             .hint = i,
                             .deadline = start + o->seconds,
                             .go = &go};
        pthread_create(&th[i], NULL, pool_main, &t[i]);
    }
    while (bench_now_s() < start)
        usleep(1000);
    double t0 = bench_now_s();
    atomic_store(&go, 1);
    uint64_t total = 0;
    for (int i = 0; t && th && i < n; i++) {
        pthread_join(th[i], NULL);
        total += t[i].count;
        if (t[i].rc != MC_OK)
            fail(r, &t[i].err);
    }
    double el = bench_now_s() - t0;
    r->rate = el > 0 ? (double)total / el : 0;
    free(t);
    free(th);
    mc_hsmpool_close(p);
}

/* The signing pool's sessions spread over o->procs processes (each loads the module: SoftHSM2
 * serialises signatures within one process). */
static void phase_pool_procs(const bench_opts *o, report *r)
{
    bench_opts each = *o;
    each.sessions = o->sessions / o->procs > 0 ? o->sessions / o->procs : 1;
    sum_in_procs(&each, r, phase_pool);
}

static void phase_latency_engine(const bench_opts *o, report *r)
{
    run_engine(o, r, "orders-public-key", 0);
}

/* The fault module beside the running mailca binary (the build puts them side by side). */
static int fault_module_path(char *out, size_t cap)
{
    char exe[512];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -1;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    if (snprintf(out, cap, "%s/libp11fault.so", exe) >= (int)cap || access(out, R_OK) != 0)
        return -1;
    return 0;
}

/* Removes the store and results of run `name`, so the next run issues afresh. */
static void store_remove_run(const bench_opts *o, const char *name)
{
    char p[700];
    snprintf(p, sizeof p, "%s/%s.db", o->dir, name);
    store_remove(p);
    snprintf(p, sizeof p, "%s/%s-results.msgpack", o->dir, name);
    remove(p);
}

/* The C_Sign calls the engine keeps in flight when asked for `sessions` over `workers` workers:
 * at least one per worker, and whole signers per worker (pipeline.c, signers_per_worker). */
static int sessions_in_flight(int sessions, int workers)
{
    return sessions <= workers ? workers : (sessions + workers - 1) / workers * workers;
}

static int latency_main(bench_opts *o)
{
    char control[700];
    if (!o->module[0] && fault_module_path(o->module, sizeof o->module) != 0) {
        fprintf(stderr, "mailca bench: --hsm-latency-us needs the fault module libp11fault.so "
                        "beside the mailca binary (built with the tests)\n");
        return 1;
    }
    snprintf(control, sizeof control, "%s/p11fault.rules", o->dir);
    FILE *f = fopen(control, "w");
    if (!f || fprintf(f, "C_Sign delay_us=%d\n", o->latency_us) < 0 || fclose(f) != 0) {
        fprintf(stderr, "mailca bench: cannot write %s\n", control);
        return 1;
    }
    setenv("P11FAULT_CONTROL", control, 1);
    printf("  HSM latency %d us per C_Sign (fault module %s), public-key orders, %d worker(s)\n",
           o->latency_us, o->module, o->workers);
    printf("  %8s %10s %22s %22s %8s %22s %22s\n", "sessions", "ideal/s", "pool signatures/s",
           "pool in 2 processes", "engine", "engine certs/s", "engine in 2 processes");
    char list[64];
    snprintf(list, sizeof list, "%s", o->sessions_list);
    int rc = 0;
    char *save = NULL;
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        bench_opts run = *o;
        run.sessions = atoi(tok);
        if (run.sessions < 1 || run.sessions > 1024) {
            fprintf(stderr, "mailca bench: --sessions-list: bad count '%s'\n", tok);
            return 2;
        }
        double ideal = run.sessions * 1e6 / o->latency_us;
        report pool, pool2, eng, eng2;
        bench_opts two = run;
        two.procs = 2;
        /* the engine's workers as 2 processes of one worker each (--procs 2 --workers 1): the
         * same count of workers and signers, but each process has its own module instance */
        bench_opts two_eng = two;
        two_eng.workers = 1;
        memset(&eng2, 0, sizeof eng2);
        int bad = in_child(phase_pool, &run, &pool) != 0 ||
                  in_child(phase_pool_procs, &two, &pool2) != 0 ||
                  in_child(phase_latency_engine, &run, &eng) != 0;
        if (!bad) {
            store_remove_run(&run, "orders-public-key"); /* the second engine run issues afresh */
            bad = in_child(phase_latency_engine, &two_eng, &eng2) != 0;
        }
        if (bad) {
            fprintf(stderr, "mailca bench: sessions %d: %s\n", run.sessions,
                    !pool.ok    ? pool.err
                    : !pool2.ok ? pool2.err
                    : !eng.ok   ? eng.err
                                : eng2.err);
            rc = 1;
            break;
        }
        /* two processes split the sessions: an odd count loses one */
        double ideal2 = (run.sessions >= 2 ? run.sessions / 2 * 2 : 2) * 1e6 / o->latency_us;
        /* the 2-process run has its own count of workers (2), so its own sessions */
        int eff = sessions_in_flight(run.sessions, o->workers);
        int eff2 = sessions_in_flight(run.sessions, two_eng.procs * two_eng.workers);
        double eideal = eff * 1e6 / o->latency_us, eideal2 = eff2 * 1e6 / o->latency_us;
        printf("  %8d %10.0f %14.0f (%5.1f%%) %14.0f (%5.1f%%) %8d %14.0f (%5.1f%%) %14.0f "
               "(%5.1f%%)\n",
               run.sessions, ideal, pool.rate, 100.0 * pool.rate / ideal, pool2.rate,
               100.0 * pool2.rate / ideal2, eff, eng.rate, 100.0 * eng.rate / eideal, eng2.rate,
               100.0 * eng2.rate / eideal2);
        store_remove_run(&run, "orders-public-key");
    }
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: mailca bench [--orders N] [--key SPEC] [--subject-key SPEC] [--workers N]\n"
               "                    [--batch N] [--seconds S] [--key-form csr|public-key|both]\n"
               "                    [--procs N] [--tokens N] [--lint-compare] [--dir DIR]\n"
               "                    [--keep]\n"
               "                    [--domains N] [--domain-suffix S]\n"
               "       mailca bench --store-only [--store PATH|postgresql://URI] [--orders N]\n"
               "       mailca bench --caa [--orders N] [--domains N] [--rounds R] [--workers N]\n"
               "                    [--key-form csr|public-key] [--dir DIR] [--keep]\n"
               "       mailca bench --hsm-latency-us N [--sessions-list 1,8,32] [--orders N]\n"
               "  --hsm-latency-us: every C_Sign slowed by N us (fault module); signing pool and\n"
               "         engine throughput per count of sessions in flight, vs sessions/latency\n"
               "  --caa: the same orders (default 100000 over 20 domains) issued with CAA off and\n"
               "         on, alternating R times (default 3), against NSD on 127.0.0.1\n"
               "  --tokens N: the issuing key imported into N tokens (bench only: a real\n"
               "         issuing key never leaves its HSM); engine and raw C_Sign measured with\n"
               "         the key on 1 token and on N in the same run\n"
               "  SPEC: p256 p384 ed25519 rsa2048 rsa3072 rsa4096 (issuing key, default p256;\n"
               "        rsa2048-pss etc.: RSASSA-PSS SHA-256); subject keys also p521, ed448\n"
               "        (default p256)\n");
    fputs(MC_BENCH_CT_USAGE, f); /* bench/ctbench.c */
}

int mc_bench_main(int argc, char **argv)
{
    if (mc_bench_ct_wanted(argc, argv)) /* --ct: bench/ctbench.c */
        return mc_bench_ct_main(argc, argv);
    bench_opts o = {.orders = 20000,
                    .ca_kt = MC_KEY_P256,
                    .sub_kt = MC_KEY_P256,
                    .seconds = 3.0,
                    .forms = 3,
                    .domains = MC_ORDERS_DOMAINS_DEFAULT,
                    .rounds = 3};
    int orders_set = 0, forms_set = 0;
    snprintf(o.suffix, sizeof o.suffix, "%s", MC_ORDERS_SUFFIX_DEFAULT);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    o.workers = (int)(ncpu > 0 ? ncpu : 1);
    static const struct option lo[] = {{"orders", 1, 0, 'n'},
                                       {"key", 1, 0, 'k'},
                                       {"subject-key", 1, 0, 's'},
                                       {"workers", 1, 0, 'w'},
                                       {"batch", 1, 0, 'b'},
                                       {"seconds", 1, 0, 't'},
                                       {"lint-compare", 0, 0, 'l'},
                                       {"dir", 1, 0, 'd'},
                                       {"keep", 0, 0, 'K'},
                                       {"help", 0, 0, 'h'},
                                       {"key-form", 1, 0, 'f'},
                                       {"procs", 1, 0, 'p'},
                                       {"store-only", 0, 0, 'S'},
                                       {"store", 1, 0, 'U'},
                                       {"caa", 0, 0, 'C'},
                                       {"rounds", 1, 0, 'R'},
                                       {"domains", 1, 0, 'D'},
                                       {"domain-suffix", 1, 0, 'X'},
                                       {"hsm-latency-us", 1, 0, 'L'},
                                       {"sessions-list", 1, 0, 'Y'},
                                       {"tokens", 1, 0, 'T'},
                                       {0, 0, 0, 0}};
    int workers_set = 0;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'n':
            o.orders = strtoull(optarg, NULL, 10);
            orders_set = 1;
            break;
        case 'C':
            o.caa = 1;
            break;
        case 'L':
            o.latency_us = atoi(optarg);
            break;
        case 'Y':
            if (snprintf(o.sessions_list, sizeof o.sessions_list, "%s", optarg) >=
                (int)sizeof o.sessions_list) {
                fprintf(stderr, "mailca bench: --sessions-list too long\n");
                return 2;
            }
            break;
        case 'R':
            o.rounds = atoi(optarg);
            break;
        case 'D':
            o.domains = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'X':
            if (snprintf(o.suffix, sizeof o.suffix, "%s", optarg) >= (int)sizeof o.suffix) {
                fprintf(stderr, "mailca bench: --domain-suffix too long\n");
                return 2;
            }
            break;
        case 'k':
            if (!mc_issuer_keyspec_parse(optarg, &o.ca_kt, &o.ca_bits, &o.ca_sig)) {
                fprintf(stderr, "mailca bench: --key: unsupported issuing key '%s'\n", optarg);
                return 2;
            }
            break;
        case 'T':
            o.tokens = atoi(optarg);
            if (o.tokens < 1 || o.tokens > MC_CA_BENCH_TOKENS_MAX) {
                fprintf(stderr, "mailca bench: --tokens is 1..%d\n", MC_CA_BENCH_TOKENS_MAX);
                return 2;
            }
            break;
        case 's':
            if (!mc_keyspec_parse(optarg, &o.sub_kt, &o.sub_bits)) {
                fprintf(stderr, "mailca bench: --subject-key: unknown key '%s'\n", optarg);
                return 2;
            }
            break;
        case 'w':
            o.workers = atoi(optarg);
            workers_set = 1;
            break;
        case 'p':
            o.procs = atoi(optarg);
            break;
        case 'S':
            o.store_only = 1;
            break;
        case 'U':
            snprintf(o.store, sizeof o.store, "%s", optarg);
            break;
        case 'b':
            o.batch = atoi(optarg);
            break;
        case 't':
            o.seconds = atof(optarg);
            break;
        case 'l':
            o.lint_compare = 1;
            break;
        case 'd':
            snprintf(o.dir, sizeof o.dir, "%s", optarg);
            break;
        case 'K':
            o.keep = 1;
            break;
        case 'f':
            o.forms = strcmp(optarg, "csr") == 0          ? 1
                      : strcmp(optarg, "public-key") == 0 ? 2
                      : strcmp(optarg, "both") == 0       ? 3
                                                          : 0;
            if (!o.forms) {
                fprintf(stderr, "mailca bench: --key-form is csr, public-key or both\n");
                return 2;
            }
            forms_set = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (o.procs > 0 && !workers_set)
        o.workers = 1; /* one signing thread per worker process */
    if (o.tokens > 1 && (o.latency_us > 0 || o.caa || o.store_only)) {
        fprintf(stderr, "mailca bench: --tokens goes with neither --hsm-latency-us, --caa nor "
                        "--store-only\n");
        return 2;
    }
    o.msg_len = bench_tbs_len(o.sub_kt, o.sub_bits);
    if (o.latency_us > 0) {
        if (o.procs > 0 || o.store_only || o.lint_compare || o.caa) {
            fprintf(stderr, "mailca bench: --hsm-latency-us goes with neither --procs, "
                            "--store-only, --lint-compare nor --caa\n");
            return 2;
        }
        o.forms = 2; /* attested public keys: the least CPU per certificate */
        if (!o.sessions_list[0])
            snprintf(o.sessions_list, sizeof o.sessions_list, "1,8,32");
    }
    if (o.caa) {
        /* CAA runs in the worker threads of the engine process, whose counters it reports */
        if (o.procs > 0 || o.store_only || o.lint_compare) {
            fprintf(stderr, "mailca bench: --caa goes with neither --procs, --store-only nor "
                            "--lint-compare\n");
            return 2;
        }
        if (!orders_set)
            o.orders = 100000;
        if (!forms_set || o.forms == 3)
            o.forms = 1; /* one key form: CSR unless --key-form public-key */
    }
    if (o.orders == 0 || o.workers < 1 || o.seconds <= 0 || o.procs < 0 || o.procs > 256 ||
        o.domains == 0 || o.rounds < 1 || o.rounds > 50) {
        usage(stderr);
        return 2;
    }
    int made_dir = bench_dir_make(o.dir, sizeof o.dir);
    if (made_dir < 0)
        return 1;
    /* token set-ups: [0] the issuing key on one token, [1] on all o.tokens (--tokens N > 1),
     * each measured raw and through the engine in the same run */
    int nset = o.tokens > 1 ? 2 : 1;
    report setup, raw1[2], raw2[2], rawt1[2], rawt2[2], eng[2][2], nolint[2][2];
    bench_opts set[2] = {o, o};
    memset(raw1, 0, sizeof raw1);
    memset(raw2, 0, sizeof raw2);
    memset(rawt1, 0, sizeof rawt1);
    memset(rawt2, 0, sizeof rawt2);
    memset(eng, 0, sizeof eng);
    memset(nolint, 0, sizeof nolint);
    if (nset > 1) {
        set[0].use_tokens = 1;
        set[1].use_tokens = o.tokens;
    }
    void (*engine_phase[2])(const bench_opts *, report *) = {phase_engine_csr, phase_engine_pk};
    void (*nolint_phase[2])(const bench_opts *, report *) = {phase_engine_csr_nolint,
                                                             phase_engine_pk_nolint};
    int rc = 1;
    char shape[64], alg[64];
    if (o.procs > 0)
        snprintf(shape, sizeof shape, "%d worker process(es) x %d thread(s)", o.procs, o.workers);
    else
        snprintf(shape, sizeof shape, "%d worker thread(s)", o.workers);
    if (o.ca_sig != MC_SIG_NONE)
        snprintf(alg, sizeof alg, "%s (%s)", mc_keytype_name(o.ca_kt), mc_sigalg_name(o.ca_sig));
    else
        snprintf(alg, sizeof alg, "%s", mc_keytype_name(o.ca_kt));
    printf("mailca bench: %llu orders per run, issuing key %s, subscriber key %s, %s, state %s\n",
           (unsigned long long)o.orders, alg, mc_keytype_name(o.sub_kt), shape, o.dir);
    FILE *la = fopen("/proc/loadavg", "r");
    double l1 = 0;
    if (la && fscanf(la, "%lf", &l1) == 1) /* a shared machine skews every rate */
        printf("  load average at start: %.2f on %ld CPU(s)\n", l1, sysconf(_SC_NPROCESSORS_ONLN));
    if (la)
        fclose(la);
    if (nset > 1)
        printf("  the issuing key imported into %d tokens of one SoftHSM2 (bench only; runs "
               "with 1 token and with %d)\n",
               o.tokens, o.tokens);
    if (o.ca_kt == MC_KEY_ED25519)
        printf("  raw Ed25519 baseline: CKM_EDDSA over %zu-byte messages (a TBS's size)\n",
               o.msg_len);
    if (in_child(phase_setup, &o, &setup) != 0) {
        fprintf(stderr, "mailca bench: setup: %s\n", setup.err);
        goto done;
    }
    if (o.latency_us > 0) {
        rc = latency_main(&o);
        goto done;
    }
    if (o.caa) {
        printf("  CAA off/on: %d round(s), orders over %u domain(s) org<k>.%s, key form %s\n",
               o.rounds, o.domains, o.suffix, o.forms & 1 ? "csr" : "public-key");
        rc = caa_main(&o);
        goto done;
    }
    /* raw, engine run(s), raw again: the baseline brackets the runs it is compared with. With
     * worker processes there are two baselines, threads in one process and one process per
     * signer; the engine is compared with the better (issue 4). */
    void (*raw_phase)(const bench_opts *, report *) = o.procs > 0 ? phase_raw_procs : phase_raw;
    for (int k = 0; k < nset; k++)
        if (in_child(raw_phase, &set[k], &raw1[k]) != 0 ||
            (o.procs > 0 && in_child(phase_raw_threads, &set[k], &rawt1[k]) != 0)) {
            fprintf(stderr, "mailca bench: raw C_Sign: %s %s\n", raw1[k].err, rawt1[k].err);
            goto done;
        }
    if (o.store_only) {
        report sto;
        if (in_child(phase_store, &o, &sto) != 0 || in_child(raw_phase, &o, &raw2[0]) != 0) {
            fprintf(stderr, "mailca bench: %s%s\n", sto.err, raw2[0].err);
            goto done;
        }
        double rr = (raw1[0].rate + raw2[0].rate) / 2;
        int pg = o.store[0] && strncmp(o.store, "postgres", 8) == 0;
        printf("  raw C_Sign, %d thread(s), same token: mean %.0f/s\n", o.workers, rr);
        printf("  storage sink (%s, batches of 256, intents then certificates): %.0f "
               "certs/s = %.1fx the raw C_Sign rate\n",
               pg ? "PostgreSQL" : "SQLite", sto.rate, rr > 0 ? sto.rate / rr : 0);
        printf("    first tenth of the orders %.0f certs/s, last tenth %.0f certs/s (%.1fx / "
               "%.1fx)\n",
               sto.rate_first, sto.rate_last, rr > 0 ? sto.rate_first / rr : 0,
               rr > 0 ? sto.rate_last / rr : 0);
        if (pg) {
            printf("    CPU per certificate in mailca: %.1f us (the server's not counted)\n",
                   us_per(sto.cpu_s, sto.ops));
        } else {
            printf("    CPU per certificate: %.1f us writing, %.1f us checkpointing\n",
                   us_per(sto.cpu_s - sto.ckpt_cpu_s, sto.ops), us_per(sto.ckpt_cpu_s, sto.ops));
            printf("    WAL: %llu writes by SQLite made in %llu system calls\n",
                   sto.wal.sqlite_writes, sto.wal.os_writes);
        }
        rc = 0;
        goto done;
    }
    for (int k = 0; k < nset; k++)
        for (int form = 0; form < 2; form++) {
            if (!(o.forms & (1 << form)))
                continue;
            if (in_child(engine_phase[form], &set[k], &eng[k][form]) != 0) {
                fprintf(stderr, "mailca bench: engine (%s): %s\n", form_names[form],
                        eng[k][form].err);
                goto done;
            }
            if (o.lint_compare && in_child(nolint_phase[form], &set[k], &nolint[k][form]) != 0) {
                fprintf(stderr, "mailca bench: engine without lint: %s\n", nolint[k][form].err);
                goto done;
            }
        }
    for (int k = 0; k < nset; k++)
        if (in_child(raw_phase, &set[k], &raw2[k]) != 0 ||
            (o.procs > 0 && in_child(phase_raw_threads, &set[k], &rawt2[k]) != 0)) {
            fprintf(stderr, "mailca bench: raw C_Sign: %s %s\n", raw2[k].err, rawt2[k].err);
            goto done;
        }
    rc = 0;
    double base[2] = {0, 0}, raw_us[2] = {0, 0};
    for (int k = 0; k < nset; k++) {
        char where[64];
        if (nset > 1)
            snprintf(where, sizeof where, "%d token%s", set[k].use_tokens,
                     set[k].use_tokens > 1 ? "s" : "");
        else
            snprintf(where, sizeof where, "same token");
        if (nset > 1)
            printf("  issuing key on %s:\n", where);
        double raw = (raw1[k].rate + raw2[k].rate) / 2;
        /* CPU per signature of each baseline (before and after together); the lowest is the
         * raw rate the same cores reach when nothing else runs on them */
        double us = us_per(raw1[k].cpu_s + raw2[k].cpu_s, raw1[k].ops + raw2[k].ops);
        if (o.procs > 0) {
            double rawt = (rawt1[k].rate + rawt2[k].rate) / 2;
            double ust = us_per(rawt1[k].cpu_s + rawt2[k].cpu_s, rawt1[k].ops + rawt2[k].ops);
            printf("  raw C_Sign, %d process(es) x %d thread(s), %s: %.0f/s before, %.0f/s "
                   "after, mean %.0f/s (%.1f us CPU per signature)\n",
                   o.procs, o.workers, where, raw1[k].rate, raw2[k].rate, raw, us);
            printf("  raw C_Sign, %d thread(s), one process, %s: %.0f/s before, %.0f/s "
                   "after, mean %.0f/s (%.1f us CPU per signature)\n",
                   o.procs * o.workers, where, rawt1[k].rate, rawt2[k].rate, rawt, ust);
            if (rawt > raw)
                raw = rawt;
            if (ust > 0 && (us <= 0 || ust < us))
                us = ust;
            printf("  baseline: the better of the two, %.0f/s\n", raw);
        } else {
            printf("  raw C_Sign, %d thread(s), one process, %s: %.0f/s before, %.0f/s "
                   "after, mean %.0f/s (%.1f us CPU per signature)\n",
                   o.workers, where, raw1[k].rate, raw2[k].rate, raw, us);
        }
        raw_us[k] = us;
        base[k] = raw;
        for (int form = 0; form < 2; form++) {
            if (!(o.forms & (1 << form)))
                continue;
            const report *r = &eng[k][form];
            printf("  engine, key form %s%s: %llu issued, %llu rejected, %llu failed in %.2f s\n",
                   form_names[form],
                   form == 0 ? " (proof of possession verified per order)" : " (attested source)",
                   (unsigned long long)r->st.issued, (unsigned long long)r->st.rejected,
                   (unsigned long long)r->st.failed, r->st.seconds);
            printf("    certs/sec: %.0f = %.1f%% of the raw C_Sign rate\n", r->rate,
                   raw > 0 ? 100.0 * r->rate / raw : 0);
            double uc = us_per(r->cpu_s, r->st.issued);
            printf("    CPU per certificate %.1f us (raw C_Sign %.1f us per signature): on cores "
                   "of its own, %.1f%% of the raw rate\n",
                   uc, us, uc > 0 ? 100.0 * us / uc : 0);
            printf("    latency per order (intake to result): p50 %.2f ms, p99 %.2f ms\n",
                   r->st.p50_ms, r->st.p99_ms);
            printf("    peak RSS of the engine process: %.1f MiB\n", (double)r->maxrss_kb / 1024.0);
            if (o.lint_compare)
                printf("    without inline lint: %.0f certs/s; lint adds %.1f%% to the time per "
                       "certificate\n",
                       nolint[k][form].rate,
                       nolint[k][form].rate > 0 ? 100.0 * (nolint[k][form].rate / r->rate - 1.0)
                                                : 0);
            if (r->st.issued != o.orders) {
                fprintf(stderr, "mailca bench: not every order was issued (%s, %s)\n",
                        form_names[form], where);
                rc = 1;
            }
        }
    }
    if (nset > 1) {
        /* the issue-4 comparison: the better raw rate of either set-up over the same cores */
        double best = base[0] > base[1] ? base[0] : base[1];
        double bus =
            raw_us[0] > 0 && (raw_us[1] <= 0 || raw_us[0] < raw_us[1]) ? raw_us[0] : raw_us[1];
        printf("  %d tokens vs 1: raw C_Sign %.0f/s vs %.0f/s (x%.2f)\n", o.tokens, base[1],
               base[0], base[0] > 0 ? base[1] / base[0] : 0);
        for (int form = 0; form < 2; form++) {
            if (!(o.forms & (1 << form)))
                continue;
            const report *a = &eng[1][form], *b = &eng[0][form];
            double ua = us_per(a->cpu_s, a->st.issued), ub = us_per(b->cpu_s, b->st.issued);
            printf("    engine, key form %s: %.0f vs %.0f certs/s (x%.2f); %.1f%% and %.1f%% "
                   "of the best raw rate of either (%.0f/s); on cores of their own %.1f%% and "
                   "%.1f%% (raw %.1f us CPU per signature)\n",
                   form_names[form], a->rate, b->rate, b->rate > 0 ? a->rate / b->rate : 0,
                   best > 0 ? 100.0 * a->rate / best : 0, best > 0 ? 100.0 * b->rate / best : 0,
                   best, ua > 0 ? 100.0 * bus / ua : 0, ub > 0 ? 100.0 * bus / ub : 0, bus);
        }
    }
done:
    if (made_dir && !o.keep)
        bench_dir_remove(o.dir);
    return rc;
}
