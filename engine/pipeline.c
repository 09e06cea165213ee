/*
 * The engine: intake on the calling thread, worker threads, and the collector thread that owns
 * storage and the results stream. Threads share only immutable state (profiles, issuer, digests,
 * the HSM handle) and talk through ZeroMQ inproc sockets with small high-water marks, so a slow
 * stage slows the ones before it instead of growing a queue.
 */
#include "mailca/engine.h"

#include "mailca/audit.h"
#include "mailca/caa.h"
#include "mailca/crypto.h"
#include "mailca/ct.h"
#include "mailca/hsm.h"
#include "mailca/hsmpool.h"
#include "mailca/issuer.h"
#include "mailca/lint.h"
#include "mailca/order.h"
#include "mailca/profile.h"
#include "mailca/result.h"
#include "mailca/tbs.h"
#include "mailca/store.h"
#include "mailca/weakkeys.h"
#include "mailca/wire.h"
#include "mailca/worker.h"
#include "mailca/x509.h"

#include <errno.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <math.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define EP_ORDERS "inproc://mailca-orders"
#define EP_INTENTS "inproc://mailca-intents"
#define EP_JOURNAL "inproc://mailca-journal"
#define EP_RESULTS "inproc://mailca-results"
#define EP_CHECKPOINT "inproc://mailca-checkpoint"
#define MAX_ORDER_BYTES (1024 * 1024) /* one order, encoded; larger cannot be an order */
#define HIST_BUCKETS 1024
#define INFLIGHT_SLOTS (1u << 16)

struct mc_engine {
    mc_config cfg;
    mc_engine_opts opts;
    mc_issuer issuer;
    int issuer_loaded;
    mc_profile_set profiles;
    mc_digests d;
    mc_hsmpool *pool; /* the issuing key on one or more tokens */
    mc_caa_ctx *caa;
    mc_weakkeys *weak; /* keys.weak_rsa_blocklist (SBR 6.1.1.3 item 5); NULL: none configured */
    mc_ct_config ct;   /* Certificate Transparency; ct_on when logs and profiles are configured */
    int ct_on;
    char caa_lists[3][MC_URL_MAX]; /* resolvers, issuer domains, perspectives: parsed in place
                                      and referenced by the CAA context for its lifetime */
    int workers, batch;
};

/* Splits a comma-separated list in place into at most max trimmed, non-empty items. */
static size_t split_list(char *s, const char **out, size_t max)
{
    size_t n = 0;
    for (char *tok = strtok(s, ","); tok && n < max; tok = strtok(NULL, ",")) {
        while (*tok == ' ')
            tok++;
        char *end = tok + strlen(tok);
        while (end > tok && end[-1] == ' ')
            *--end = '\0';
        if (*tok)
            out[n++] = tok;
    }
    return n;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const char *or_null(const char *s)
{
    return s && s[0] ? s : NULL;
}

static mc_err engine_pin(void *arg, char *buf, size_t cap, mc_errdetail *err)
{
    const mc_engine *e = arg;
    return mc_config_read_pin(&e->cfg, buf, cap, err);
}

mc_err mc_engine_open(const mc_config *cfg, const mc_engine_opts *opts, mc_engine **out,
                      mc_errdetail *err)
{
    mc_err rc = MC_OK;
    char pin[256] = "";
    mc_engine *e = calloc(1, sizeof *e);
    if (!e)
        return mc_err_set(err, MC_ERR_NOMEM, NULL, NULL, "engine");
    e->cfg = *cfg;
    if (opts)
        e->opts = *opts;
    mc_config_apply_env(cfg);
    if (cfg->lint_enforced_set[0] &&
        (rc = mc_lint_set_check(cfg->lint_enforced_set, "lint.enforced_set", err)) != MC_OK)
        goto done;
    if (cfg->lint_enforced_set[0] && !e->opts.worker_process) {
        /* e.g. the binary rolled back after the set was raised: this build enforces all it knows
         * (fails closed) and says so, as the newer lints it lacks cannot run */
        if (mc_lint_set_cmp(cfg->lint_enforced_set, MC_LINT_SET_VERSION) > 0)
            fprintf(stderr,
                    "mailca: lint.enforced_set %s is newer than this build's lint set %s: every "
                    "lint of this build is enforced\n",
                    cfg->lint_enforced_set, MC_LINT_SET_VERSION);
        /* demotion is never silent: the operator sees which error lints only warn */
        char ids[1024];
        size_t n = mc_lint_not_enforced(cfg->lint_enforced_set, ids, sizeof ids);
        if (n)
            fprintf(stderr,
                    "mailca: lint.enforced_set %s: %zu error lint(s) added since warn instead "
                    "of blocking: %s\n",
                    cfg->lint_enforced_set, n, ids);
    }
    if ((rc = mc_digests_fetch(&e->d, err)) != MC_OK)
        goto done;
    mc_sigalg alg = MC_SIG_NONE;
    if (cfg->ca_signature[0] && (alg = mc_sigalg_from_name(cfg->ca_signature)) == MC_SIG_NONE) {
        rc = mc_err_set(err, MC_ERR_CONFIG, "ca.signature", "SBR 7.1.3.2",
                        "unknown signature algorithm '%s'", cfg->ca_signature);
        goto done;
    }
    if ((rc = mc_issuer_load(cfg->ca_certificate, alg, &e->issuer, err)) != MC_OK)
        goto done;
    e->issuer_loaded = 1;
    mc_ca_urls urls = {.crl = or_null(cfg->ca_crl_url),
                       .ocsp = or_null(cfg->ca_ocsp_url),
                       .ca_issuers = or_null(cfg->ca_issuers_url),
                       .cps = or_null(cfg->ca_cps_url),
                       .crl_shards = (unsigned)cfg->ca_crl_shards};
    if ((rc = mc_profile_set_load(cfg->profiles, &e->issuer, &urls, &e->profiles, err)) != MC_OK)
        goto done;
    if ((rc = mc_config_read_pin(cfg, pin, sizeof pin, err)) != MC_OK)
        goto done;
    rc = mc_hsmpool_open(cfg->hsm_module, cfg->hsm_key, pin, &e->pool, err);
    OPENSSL_cleanse(pin, sizeof pin);
    if (rc != MC_OK)
        goto done;
    /* a token that loses its login (reset, HSM reboot) is logged in again by the next session,
     * with the PIN read again from where the config says (never kept in memory) */
    mc_hsmpool_set_pin_source(e->pool, engine_pin, e);
    /* The HSM key must be the issuing certificate's key, or nothing we sign would verify. */
    mc_x509 x;
    if ((rc = mc_x509_parse_cert(e->issuer.cert, e->issuer.cert_len, &x, err)) != MC_OK)
        goto done;
    mc_bytes spki = mc_hsm_spki(mc_hsmpool_hsm(e->pool, 0)); /* the same on every token */
    if (spki.len != x.spki.rawlen || memcmp(spki.p, x.spki.raw, spki.len) != 0) {
        rc = mc_err_set(err, MC_ERR_CONFIG, "hsm.key", NULL,
                        "the HSM key %s is not the key of the issuing certificate %s", cfg->hsm_key,
                        cfg->ca_certificate);
        goto done;
    }
    if (!cfg->caa_enabled && !e->opts.worker_process)
        fprintf(stderr, "mailca: CAA checking is off (caa.enabled: false): SBR 4.2.2.1 requires "
                        "CAA issuemail checks before a publicly-trusted certificate is issued "
                        "(unless a technically constrained subordinate CA's contract waives "
                        "them); each certificate's evidence records \"caa_checked\":false\n");
    if (cfg->keys_weak_rsa_blocklist[0]) {
        if ((rc = mc_weakkeys_load(cfg->keys_weak_rsa_blocklist, "keys.weak_rsa_blocklist",
                                   &e->weak, err)) != MC_OK)
            goto done;
    } else if (!e->opts.worker_process) {
        fprintf(stderr, "mailca: no weak-key list (keys.weak_rsa_blocklist): SBR 6.1.1.3 item 5 "
                        "requires refusing known weak keys such as Debian's (CVE-2008-0166); "
                        "RSA subscriber keys are checked for ROCA and small factors only\n");
    }
    if (cfg->caa_enabled) {
        /* SBR 4.2.2.1: CAA for every mailbox domain before issuing */
        mc_caa_config cc = {.timeout_ms = (unsigned)cfg->caa_timeout_ms,
                            .ta_file = or_null(cfg->caa_trust_anchor_file)};
        snprintf(e->caa_lists[0], sizeof e->caa_lists[0], "%s", cfg->caa_resolvers);
        snprintf(e->caa_lists[1], sizeof e->caa_lists[1], "%s", cfg->caa_issuer_domains);
        cc.n_resolvers = split_list(e->caa_lists[0], cc.resolvers, MC_CAA_RESOLVERS_MAX);
        cc.n_issuers = split_list(e->caa_lists[1], cc.issuers, MC_CAA_ISSUERS_MAX);
        if (!cc.n_issuers) {
            rc = mc_err_set(err, MC_ERR_CONFIG, "caa.issuer_domains", "SBR 4.2.2.1",
                            "CAA checks need the CA's Issuer Domain Names");
            goto done;
        }
        /* SBR 4.2.2.2: several perspectives and a quorum (multi-perspective corroboration) */
        snprintf(e->caa_lists[2], sizeof e->caa_lists[2], "%s", cfg->caa_perspectives);
        if (e->caa_lists[2][0] &&
            (rc = mc_caa_config_perspectives(&cc, e->caa_lists[2], err)) != MC_OK)
            goto done;
        cc.quorum = (unsigned)cfg->caa_quorum;
        if ((rc = mc_caa_ctx_new(&cc, &e->caa, err)) != MC_OK)
            goto done;
    }
    if (cfg->ct_logs[0]) {
        /* CT is opt-in per profile for S/MIME (many logs refuse non-serverAuth leaves) */
        mc_ct_config_defaults(&e->ct);
        if ((rc = mc_ct_config_add_logs(&e->ct, cfg->ct_logs, err)) != MC_OK)
            goto done;
        snprintf(e->ct.profiles, sizeof e->ct.profiles, "%s", cfg->ct_profiles);
        e->ct.max_in_flight = cfg->ct_max_in_flight;
        e->ct.timeout_ms = cfg->ct_timeout_ms;
        e->ct_on = cfg->ct_profiles[0] != '\0';
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    e->workers = e->opts.workers ? e->opts.workers
                 : cfg->workers  ? cfg->workers
                                 : (int)(ncpu > 0 ? ncpu : 1);
    e->batch = e->opts.batch ? e->opts.batch : cfg->batch;
    if (e->batch < 1 || e->batch > MC_WORKER_BATCH_MAX)
        rc = mc_err_set(err, MC_ERR_CONFIG, "engine.batch", NULL,
                        "batch %d is out of range (1..%d orders)", e->batch, MC_WORKER_BATCH_MAX);
done:
    if (rc != MC_OK) {
        mc_engine_close(e);
        e = NULL;
    }
    *out = e;
    return rc;
}

void mc_engine_close(mc_engine *e)
{
    if (!e)
        return;
    mc_hsmpool_close(e->pool);
    mc_caa_ctx_free(e->caa);
    mc_weakkeys_free(e->weak);
    mc_profile_set_free(&e->profiles);
    if (e->issuer_loaded)
        mc_issuer_free(&e->issuer);
    mc_digests_free(&e->d);
    free(e);
}

void mc_engine_caa_stats(mc_engine *e, struct mc_caa_stats *out)
{
    memset(out, 0, sizeof *out);
    if (e->caa)
        mc_caa_stats_get(e->caa, out);
}

size_t mc_engine_tokens(mc_engine *e)
{
    return mc_hsmpool_tokens(e->pool);
}

mc_err mc_engine_token_health(mc_engine *e, size_t i, struct mc_hsmpool_health *out)
{
    return mc_hsmpool_health_get(e->pool, i, out);
}

struct mc_hsm *mc_engine_hsm(mc_engine *e)
{
    return mc_hsmpool_hsm(e->pool, 0);
}

int mc_engine_sigalg(const mc_engine *e)
{
    return (int)e->issuer.sigalg;
}

mc_err mc_engine_pending(mc_engine *e, int64_t *pending, int64_t *certs, mc_errdetail *err)
{
    mc_store *s = NULL;
    mc_err rc = mc_store_open(e->cfg.store_sqlite, &s, err);
    if (rc == MC_OK)
        rc = mc_store_counts(s, certs, pending, err);
    mc_store_close(s);
    return rc;
}

/* ---------------------------------------------------------------- collector */

typedef struct waiter {
    struct waiter *next;
    uint64_t key, seq, t0;
    char *id;
} waiter;

/* journal_entry.owner of an order the collector answers itself (journal_waiter) */
#define JOURNAL_WAITER UINT32_MAX

/* A worker process: its pid (for waitpid; 0 once reaped) and its number in this run (1, 2, ...,
 * a restarted process gets a new one). Intents are owned by the number, not the pid: a pid can
 * be reused by a restarted process, which would then seem to owe the dead one's orders. */
typedef struct worker_proc {
    pid_t pid;
    uint32_t id;
} worker_proc;

typedef struct journal_entry {
    uint64_t key; /* seq + 1; 0 = empty */
    zmq_msg_t *msg;
    uint32_t owner; /* worker_proc.id of the process that owes the order's result (0: none
                     * yet; or JOURNAL_WAITER) */
    uint64_t idkey; /* its order id's in-flight key, once it has an intent */
} journal_entry;

typedef struct collector {
    mc_engine *e;
    void *router, *pull;
    void *ckpt; /* PUSH to the checkpointer (NULL: the store copies its WAL at commit) */
    void *zctx; /* the run's context, shut down when the collector fails */
    FILE *results;
    msgpack_sbuffer rbuf; /* one result, packed whole before it is written */
    msgpack_packer rpk;
    mc_store *store;
    mc_arena arena;
    msgpack_zone zone;
    msgpack_sbuffer sbuf;
    uint64_t total, written, issued, rejected, failed;
    uint64_t store_retries; /* store calls repeated after a transient failure (back-pressure) */
    int end;
    uint8_t *seen; /* one bit per order seq: answered */
    size_t seen_cap;
    uint64_t hist[HIST_BUCKETS];
    uint64_t *inflight; /* open addressing of order-id hashes, 0 = empty */
    waiter *waiters;
    atomic_int *workers_alive;
    worker_proc *procs; /* worker processes (procs mode) */
    int nprocs;
    uint32_t next_proc_id; /* the number the next restarted process gets */
    int died;              /* workers (processes) that ended during the run */
    uint64_t resigned;     /* orders answered with a certificate another engine stored first */
    /* Worker processes only: a copy of every order until it is answered (the journal), so the
     * orders a dead worker process held can be dispatched again; how to restart one. */
    void *journal_pull;     /* intake -> collector: [seq (8 bytes), order message] */
    void *push_orders;      /* the intake's socket, used here only once intake is over */
    journal_entry *journal; /* open addressing by seq */
    size_t journal_cap, journal_n;
    uint64_t *redo; /* seqs to dispatch again, sent from redo_next on */
    size_t redo_n, redo_next;
    int redo_rounds, quiet_rounds, restarts;
    const char *const *eps; /* the ipc endpoints the worker processes join, and the run's
                             * config snapshot they load (spawn_worker) */
    int threads, signers;   /* per worker process */
    uint64_t t_last_input;  /* when the last message arrived */
    atomic_uint_fast64_t *bytes_read;
    uint64_t orders_size;
    /* SBR 5.4.1 2.iii: rejected (and failed) orders go to the audit log in groups (one
     * transaction per AUDIT_GROUP events or AUDIT_WAIT_NS), their strings malloc'd until then */
    mc_audit_event *aud;
    size_t aud_n, aud_cap;
    uint64_t aud_t0; /* when the oldest waiting event was made */
    char actor[MC_AUDIT_ACTOR_MAX];
    uint64_t t_start, t_last_print;
    int progress;
    mc_err rc;
    mc_errdetail err;
} collector;

/* Asks the checkpointer to copy the WAL once a commit found it at the usual checkpoint size
 * (a request already queued makes this one a no-op: the queue holds one). */
static void checkpoint_request(collector *c)
{
    if (c->ckpt && mc_store_wal_pages(c->store) >= MC_STORE_WAL_CHECKPOINT_PAGES)
        zmq_send(c->ckpt, "", 0, ZMQ_DONTWAIT);
}

static uint64_t id_key(const char *id, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)id[i]) * 1099511628211ull;
    return h | 1; /* 0 marks an empty slot */
}

static void inflight_add(collector *c, uint64_t key)
{
    for (uint32_t i = (uint32_t)key & (INFLIGHT_SLOTS - 1);; i = (i + 1) & (INFLIGHT_SLOTS - 1))
        if (!c->inflight[i] || c->inflight[i] == key) {
            c->inflight[i] = key;
            return;
        }
}

static int inflight_has(const collector *c, uint64_t key)
{
    for (uint32_t i = (uint32_t)key & (INFLIGHT_SLOTS - 1); c->inflight[i];
         i = (i + 1) & (INFLIGHT_SLOTS - 1))
        if (c->inflight[i] == key)
            return 1;
    return 0;
}

/* Linear probing with backward-shift deletion keeps lookups exact without tombstones. */
static void inflight_del(collector *c, uint64_t key)
{
    const uint32_t m = INFLIGHT_SLOTS - 1;
    uint32_t i = (uint32_t)key & m;
    while (c->inflight[i] && c->inflight[i] != key)
        i = (i + 1) & m;
    if (!c->inflight[i])
        return;
    for (uint32_t j = (i + 1) & m; c->inflight[j]; j = (j + 1) & m) {
        uint32_t home = (uint32_t)c->inflight[j] & m;
        if (((j - home) & m) >= ((j - i) & m)) {
            c->inflight[i] = c->inflight[j];
            i = j;
        }
    }
    c->inflight[i] = 0;
}

/* ---- the journal (worker processes): seq -> the order message, until answered ---- */

static size_t journal_slot(const collector *c, uint64_t key)
{
    size_t m = c->journal_cap - 1, i = (size_t)(key * 0x9e3779b97f4a7c15ull) & m;
    while (c->journal[i].key && c->journal[i].key != key)
        i = (i + 1) & m;
    return i;
}

static int journal_put(collector *c, uint64_t seq, zmq_msg_t *msg)
{
    if ((c->journal_n + 1) * 2 > c->journal_cap) {
        size_t old_cap = c->journal_cap, cap = old_cap ? old_cap * 2 : 4096;
        journal_entry *old = c->journal, *t = calloc(cap, sizeof *t);
        if (!t)
            return -1;
        c->journal = t;
        c->journal_cap = cap;
        for (size_t i = 0; i < old_cap; i++)
            if (old[i].key)
                c->journal[journal_slot(c, old[i].key)] = old[i];
        free(old);
    }
    size_t i = journal_slot(c, seq + 1);
    if (c->journal[i].key) { /* the same seq twice: keep the first */
        zmq_msg_close(msg);
        free(msg);
        return 0;
    }
    c->journal[i] = (journal_entry){seq + 1, msg, 0, 0};
    c->journal_n++;
    return 0;
}

/* Removes seq's entry (backward-shift deletion, as inflight_del) and frees its message. */
static void journal_drop(collector *c, uint64_t seq)
{
    if (!c->journal_n)
        return;
    size_t m = c->journal_cap - 1, i = journal_slot(c, seq + 1);
    if (!c->journal[i].key)
        return;
    zmq_msg_close(c->journal[i].msg);
    free(c->journal[i].msg);
    for (size_t j = (i + 1) & m; c->journal[j].key; j = (j + 1) & m) {
        size_t home = (size_t)(c->journal[j].key * 0x9e3779b97f4a7c15ull) & m;
        if (((j - home) & m) >= ((j - i) & m)) {
            c->journal[i] = c->journal[j];
            i = j;
        }
    }
    c->journal[i] = (journal_entry){0, NULL, 0, 0};
    c->journal_n--;
}

static void journal_free(collector *c)
{
    for (size_t i = 0; i < c->journal_cap; i++)
        if (c->journal[i].key) {
            zmq_msg_close(c->journal[i].msg);
            free(c->journal[i].msg);
        }
    free(c->journal);
    free(c->redo);
}

/* The worker process whose DEALER sent an intents message: its worker_proc.id, from the routing
 * id "<id>-<worker>" (worker.c open_routed_socket); 0 when the name is not of that form. */
static uint32_t ident_proc(zmq_msg_t *ident)
{
    char buf[32];
    size_t n = zmq_msg_size(ident);
    if (n == 0 || n >= sizeof buf)
        return 0;
    memcpy(buf, zmq_msg_data(ident), n);
    buf[n] = '\0';
    unsigned long v = strtoul(buf, NULL, 10);
    return v < JOURNAL_WAITER ? (uint32_t)v : 0;
}

/* The order seq's intent was recorded for worker process owner (journal: worker processes). */
static void journal_owner(collector *c, uint64_t seq, uint32_t owner, uint64_t idkey)
{
    if (!c->journal_n || !owner)
        return;
    size_t i = journal_slot(c, seq + 1);
    if (c->journal[i].key) {
        c->journal[i].owner = owner;
        c->journal[i].idkey = idkey;
    }
}

/* The order seq waits for the first copy of its order id (a waiter: the collector answers it
 * when that copy's result comes). Unless a process owes its result already (the same seq sent
 * twice), it is not dispatched again: its answer does not depend on any worker process. */
static void journal_waiter(collector *c, uint64_t seq)
{
    if (!c->journal_n)
        return;
    size_t i = journal_slot(c, seq + 1);
    if (c->journal[i].key && c->journal[i].owner == 0)
        c->journal[i].owner = JOURNAL_WAITER;
}

static int proc_alive(const collector *c, uint32_t id)
{
    for (int i = 0; i < c->nprocs; i++)
        if (c->procs[i].pid > 0 && c->procs[i].id == id)
            return 1;
    return 0;
}

static void hist_add(collector *c, uint64_t t0)
{
    uint64_t ns = now_ns() - t0;
    double us = (double)ns / 1000.0;
    int b = us <= 1.0 ? 0 : (int)(log(us) / log(1.02));
    c->hist[b < HIST_BUCKETS ? b : HIST_BUCKETS - 1]++;
}

static double hist_quantile(const collector *c, double q)
{
    uint64_t n = 0, acc = 0;
    for (int i = 0; i < HIST_BUCKETS; i++)
        n += c->hist[i];
    if (!n)
        return 0;
    for (int i = 0; i < HIST_BUCKETS; i++) {
        acc += c->hist[i];
        if ((double)acc >= q * (double)n)
            return pow(1.02, i + 0.5) / 1000.0; /* ms */
    }
    return 0;
}

static int mark_seen(collector *c, uint64_t seq)
{
    size_t byte = (size_t)(seq / 8);
    if (byte >= c->seen_cap) {
        size_t cap = c->seen_cap ? c->seen_cap : 4096;
        while (cap <= byte)
            cap *= 2;
        uint8_t *p = realloc(c->seen, cap);
        if (!p)
            return -1;
        memset(p + c->seen_cap, 0, cap - c->seen_cap);
        c->seen = p;
        c->seen_cap = cap;
    }
    int was = (c->seen[byte] >> (seq % 8)) & 1;
    c->seen[byte] |= (uint8_t)(1u << (seq % 8));
    return was;
}

static void fail_result(mc_result *r, uint64_t seq, const char *id, const char *msg)
{
    memset(r, 0, sizeof *r);
    r->seq = seq;
    r->order_id = id;
    r->order_id_len = strlen(id);
    r->status = MC_STATUS_FAILED;
    mc_err_set(&r->error, MC_ERR_STORE, NULL, NULL, "%s", msg);
}

/* Writes one result to the results stream: the only place results leave the engine. */
#define AUDIT_GROUP 512
#define AUDIT_WAIT_NS 200000000ull

/* Queues the audit record of a rejected or failed order r (subject: its order id). */
static void audit_add(collector *c, const mc_result *r)
{
    mc_audit_json j;
    if (c->aud_n == c->aud_cap) {
        size_t cap = c->aud_cap ? 2 * c->aud_cap : 64;
        mc_audit_event *v = realloc(c->aud, cap * sizeof *v);
        if (!v)
            goto oom;
        c->aud = v;
        c->aud_cap = cap;
    }
    mc_audit_json_begin(&j);
    mc_audit_json_int(&j, "seq", (int64_t)r->seq);
    mc_audit_json_str(&j, "code", mc_err_name(r->error.code));
    mc_audit_json_str(&j, "field", r->error.field[0] ? r->error.field : NULL);
    mc_audit_json_str(&j, "rule", r->error.rule[0] ? r->error.rule : NULL);
    mc_audit_json_str(&j, "message", r->error.message);
    char *subject = strndup(r->order_id ? r->order_id : "", r->order_id ? r->order_id_len : 0);
    if (!mc_audit_json_end(&j) || !subject) {
        mc_audit_json_free(&j);
        free(subject);
        goto oom;
    }
    if (!c->aud_n)
        c->aud_t0 = now_ns();
    c->aud[c->aud_n++] = (mc_audit_event){
        .at = (int64_t)time(NULL),
        .actor = c->actor,
        .event = r->status == MC_STATUS_REJECTED ? "order.rejected" : "order.failed",
        .subject = subject,
        .detail = j.p}; /* owned by the queue now */
    return;
oom:
    if (c->rc == MC_OK)
        c->rc = mc_err_set(&c->err, MC_ERR_NOMEM, NULL, NULL, "audit log: out of memory");
}

static void emit(collector *c, const mc_result *r, uint64_t t0)
{
    if (mark_seen(c, r->seq) == 1)
        return; /* already answered: exactly one result per order */
    journal_drop(c, r->seq);
    mc_result f;
    msgpack_sbuffer_clear(&c->rbuf);
    if (mc_result_pack(&c->rpk, r) != MC_OK) {
        /* a result the format cannot carry (a bug): the order still gets its one result */
        fail_result(&f, r->seq, r->order_id ? r->order_id : "", "internal: unencodable result");
        f.order_id_len = r->order_id ? r->order_id_len : 0;
        f.error.code = MC_ERR_INTERNAL;
        msgpack_sbuffer_clear(&c->rbuf);
        mc_result_pack(&c->rpk, &f);
        r = &f;
    }
    if (fwrite(c->rbuf.data, 1, c->rbuf.size, c->results) != c->rbuf.size && c->rc == MC_OK)
        c->rc = mc_err_set(&c->err, MC_ERR_IO, "results", NULL, "writing results failed");
    c->written++;
    if (r->status != MC_STATUS_ISSUED)
        audit_add(c, r);
    if (r->status == MC_STATUS_ISSUED)
        c->issued++;
    else if (r->status == MC_STATUS_REJECTED)
        c->rejected++;
    else
        c->failed++;
    hist_add(c, t0);
}

/* The original of duplicate order ids finished: answer the orders that waited for it. */
static void resolve_waiters(collector *c, uint64_t key, const mc_result *orig)
{
    waiter **pp = &c->waiters;
    while (*pp) {
        waiter *w = *pp;
        if (w->key != key) {
            pp = &w->next;
            continue;
        }
        mc_result r = *orig;
        r.seq = w->seq;
        r.order_id = w->id;
        r.order_id_len = strlen(w->id);
        emit(c, &r, w->t0);
        *pp = w->next;
        free(w->id);
        free(w);
    }
}

/* --- back-pressure from the store -------------------------------------------------------
 * A store that is slow or unavailable must slow the pipeline down, not drop results or grow
 * memory: the collector retries a transient store failure with back-off for up to store.retry_s
 * seconds. Meanwhile it reads nothing, so the workers wait for their verdicts (or block sending
 * results on the high-water mark) and the intake blocks sending orders: at most the orders in
 * the sockets' high-water marks and the workers' batches are in flight. A batch is always retried
 * whole (a failed commit rolls back the whole transaction; the PostgreSQL store re-establishes a
 * dropped connection before its next statement). A permanent failure (a constraint violation, a
 * bug) fails at once, as does a transient one once the wait is used up. */

#define STORE_BACKOFF_FIRST_MS 20
#define STORE_BACKOFF_MAX_MS 1000

typedef struct store_retry {
    uint64_t t_first_fail; /* 0: no failure yet */
    unsigned attempts;
} store_retry;

/* 1 when a store failure may succeed if the same call is made again later: the database is
 * unreachable, restarting, busy or locked, or the transaction lost a serialization race. Judged
 * from what the backends put in mc_errdetail (engine/store.c "(sqlite N)", engine/store_pg.c
 * "(sqlstate XXXXX)" and "store reconnect:"), since the store API has no flag of its own. */
static int store_err_transient(mc_err rc, const mc_errdetail *err)
{
    if (rc != MC_ERR_STORE)
        return 0; /* invalid input, out of memory, internal: not the database's state */
    const char *m = err->message, *p;
    if (strncmp(m, "store reconnect:", 16) == 0)
        return 1;
    if ((p = strstr(m, "(sqlite ")) != NULL) {
        int code = atoi(p + 8) & 0xff; /* primary result code */
        /* SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_PROTOCOL:
         * another writer, the disk or the file system; SQLITE_CONSTRAINT and the rest are not */
        return code == 5 || code == 6 || code == 10 || code == 13 || code == 14 || code == 15;
    }
    if ((p = strstr(m, "(sqlstate ")) != NULL) {
        p += 10;
        if (strncmp(p, "none", 4) == 0)
            return 1; /* no answer from the server: the connection is gone */
        /* 08 connection exception, 40001 serialization failure, 40P01 deadlock, 53 insufficient
         * resources, 57P01-57P05 shutdown, crash, cannot connect now, idle timeouts, 58 system
         * error (I/O); 23 integrity constraint violations and the rest are permanent */
        return strncmp(p, "08", 2) == 0 || strncmp(p, "40001", 5) == 0 ||
               strncmp(p, "40P01", 5) == 0 || strncmp(p, "53", 2) == 0 ||
               strncmp(p, "57P", 3) == 0 || strncmp(p, "58", 2) == 0;
    }
    return 0;
}

/* After a store call failed with rc/err: 1 when the caller should make the same call again
 * (the failure is transient and store.retry_s is not used up; the back-off was slept), else 0.
 * what names the operation and n its size for the operator's log. */
static int store_retry_wait(collector *c, store_retry *r, mc_err rc, const mc_errdetail *err,
                            const char *what, size_t n)
{
    uint64_t t = now_ns(), limit = (uint64_t)c->e->cfg.store_retry_s * 1000000000ull;
    if (!store_err_transient(rc, err))
        return 0;
    if (!r->t_first_fail) {
        r->t_first_fail = t;
        fprintf(stderr,
                "mailca: store: %s of %zu failed (%s); retrying for up to %d s, the pipeline "
                "waits meanwhile\n",
                what, n, err->message, c->e->cfg.store_retry_s);
    }
    if (t - r->t_first_fail >= limit)
        return 0;
    uint64_t ms = STORE_BACKOFF_FIRST_MS << (r->attempts < 6 ? r->attempts : 6);
    if (ms > STORE_BACKOFF_MAX_MS)
        ms = STORE_BACKOFF_MAX_MS;
    uint64_t left_ms = (limit - (t - r->t_first_fail)) / 1000000u;
    if (ms > left_ms)
        ms = left_ms ? left_ms : 1;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    r->attempts++;
    c->store_retries++;
    return 1;
}

/* Reports the end of a retried store call (success after retries, or giving up). */
static void store_retry_done(collector *c, const store_retry *r, mc_err rc, const mc_errdetail *err,
                             const char *what, size_t n)
{
    double s = r->t_first_fail ? (double)(now_ns() - r->t_first_fail) / 1e9 : 0;
    if (rc == MC_OK && r->t_first_fail)
        fprintf(stderr, "mailca: store: %s of %zu succeeded after %u retries (%.1f s)\n", what, n,
                r->attempts, s);
    else if (rc != MC_OK)
        fprintf(stderr, "mailca: store: %s of %zu failed%s%.1f s: %s\n", what, n,
                r->t_first_fail ? " after retrying for " : " (not retryable) ",
                r->t_first_fail ? s : 0.0, err->message);
}

/* Writes the queued audit records when force, or when a group is full or waited long enough.
 * A store that stays down past store.retry_s fails the run: a rejection is never dropped from
 * the log without saying so. */
static void audit_flush(collector *c, int force)
{
    if (!c->aud_n || (!force && c->aud_n < AUDIT_GROUP && now_ns() - c->aud_t0 < AUDIT_WAIT_NS))
        return;
    mc_errdetail err;
    mc_err rc;
    store_retry sr = {0};
    while ((rc = mc_store_audit_append(c->store, c->aud, c->aud_n, &err)) != MC_OK &&
           store_retry_wait(c, &sr, rc, &err, "audit log", c->aud_n))
        ;
    store_retry_done(c, &sr, rc, &err, "audit log", c->aud_n);
    if (rc != MC_OK && c->rc == MC_OK)
        c->rc = mc_err_set(&c->err, rc, NULL, "SBR 5.4.1",
                           "%zu rejected or failed orders could not be recorded in the audit "
                           "log: %s",
                           c->aud_n, err.message);
    for (size_t i = 0; i < c->aud_n; i++) {
        free((char *)c->aud[i].subject);
        free((char *)c->aud[i].detail);
    }
    c->aud_n = 0;
}

/* Intents messages committed in one transaction when several wait (group commit): the
 * serial and key-hash indexes take random keys, so a commit dirties about one index page per
 * intent until the batch nears the index's size; fewer, larger commits write fewer pages. The
 * arena holds 4 batches (collector set-up): 3 messages and their verdicts fit. */
#define INTENTS_GROUP_MAX 3

/* mc_store_lookup of order_id, retried as every store call of the collector is (store_retry). */
static mc_err stored_lookup(collector *c, const char *order_id, int *found, uint8_t **serial,
                            size_t *sl, uint8_t **tbs, size_t *tl, uint8_t **der, size_t *dl,
                            mc_errdetail *err)
{
    mc_err rc;
    store_retry r = {0};
    while ((rc = mc_store_lookup(c->store, order_id, found, serial, sl, tbs, tl, der, dl, err)) !=
               MC_OK &&
           store_retry_wait(c, &r, rc, err, "lookup", 1))
        ;
    store_retry_done(c, &r, rc, err, "lookup", 1);
    return rc;
}

/* The lint set and warnings recorded with order_id's certificate, into lv and warn (of
 * MC_RESULT_LINT_VERSION_MAX and MC_RESULT_WARNINGS_MAX bytes), retried like stored_lookup. */
static mc_err stored_lint_meta(collector *c, const char *order_id, char *lv, char *warn,
                               mc_errdetail *err)
{
    mc_err rc;
    store_retry r = {0};
    while ((rc = mc_store_lint_meta(c->store, order_id, lv, MC_RESULT_LINT_VERSION_MAX, warn,
                                    MC_RESULT_WARNINGS_MAX, err)) != MC_OK &&
           store_retry_wait(c, &r, rc, err, "lint meta", 1))
        ;
    store_retry_done(c, &r, rc, err, "lint meta", 1);
    return rc;
}

/* What the worker does with intent i once the intents are committed (rc: the commit's result):
 * sign, skip (answered here), resume a recorded TBS, or refuse for the key. */
static void intent_verdict(collector *c, mc_err rc, const mc_wire_intent *wi, const mc_intent *in,
                           mc_intent_state st, mc_wire_verdict *vd)
{
    mc_errdetail err;
    memset(vd, 0, sizeof *vd);
    uint64_t key = id_key(in->order_id, strlen(in->order_id));
    if (rc != MC_OK) {
        vd->action = MC_WIRE_FAIL;
        return;
    }
    if (st == MC_INTENT_NEW) {
        vd->action = MC_WIRE_SIGN;
        inflight_add(c, key);
    } else if (st == MC_INTENT_KEY_BOUND) {
        vd->action = MC_WIRE_KEY_BOUND; /* the worker knows the order's key field */
    } else if (st == MC_INTENT_KEY_COMPROMISED) {
        vd->action = MC_WIRE_KEY_COMPROMISED;
    } else if (st == MC_INTENT_PENDING && inflight_has(c, key)) {
        /* The same order id is being signed right now: answer with its result. */
        waiter *w = calloc(1, sizeof *w);
        char *id = strdup(in->order_id);
        vd->action = MC_WIRE_SKIP;
        if (!w || !id) {
            free(w);
            free(id);
            mc_result r;
            fail_result(&r, wi->seq, in->order_id, "out of memory");
            emit(c, &r, wi->t0);
            return;
        }
        *w = (waiter){c->waiters, key, wi->seq, wi->t0, id};
        c->waiters = w;
    } else {
        /* Known from an earlier run: return its certificate, or finish its intent. */
        int found = 0;
        uint8_t *serial = NULL, *tbs = NULL, *der = NULL;
        size_t sl = 0, tl = 0, dl = 0;
        mc_result r;
        mc_err lrc =
            stored_lookup(c, in->order_id, &found, &serial, &sl, &tbs, &tl, &der, &dl, &err);
        if (lrc != MC_OK || !found) {
            vd->action = MC_WIRE_SKIP;
            fail_result(&r, wi->seq, in->order_id, "lookup of an earlier order failed");
            emit(c, &r, wi->t0);
        } else if (der) {
            vd->action = MC_WIRE_SKIP;
            memset(&r, 0, sizeof r);
            r.seq = wi->seq;
            r.order_id = in->order_id;
            r.order_id_len = strlen(in->order_id);
            r.status = MC_STATUS_ISSUED;
            r.serial = serial;
            r.serial_len = sl;
            r.cert = der;
            r.cert_len = dl;
            /* the lint set and warnings recorded when it was issued */
            char lv[MC_RESULT_LINT_VERSION_MAX] = "", warn[MC_RESULT_WARNINGS_MAX] = "";
            if (stored_lint_meta(c, in->order_id, lv, warn, &err) != MC_OK)
                fail_result(&r, wi->seq, in->order_id, err.message);
            r.lint_version = lv;
            r.warnings = warn;
            emit(c, &r, wi->t0);
        } else {
            vd->action = MC_WIRE_RESUME;
            vd->serial = mc_arena_dup(&c->arena, serial, sl);
            vd->serial_len = sl;
            vd->tbs = mc_arena_dup(&c->arena, tbs, tl);
            vd->tbs_len = tl;
            inflight_add(c, key);
        }
        free(serial);
        free(tbs);
        free(der);
    }
}

/* Commits the intents of k messages (k <= INTENTS_GROUP_MAX, each a worker's batch) in one
 * transaction and answers each worker with its verdicts. */
static void handle_intents(collector *c, zmq_msg_t *idents, zmq_msg_t *bodies, size_t k)
{
    size_t n = 0, first[INTENTS_GROUP_MAX + 1];
    msgpack_object o[INTENTS_GROUP_MAX];
    mc_errdetail err;
    mc_err rc = MC_OK;
    for (size_t m = 0; m < k; m++) {
        size_t off = 0;
        if (msgpack_unpack(zmq_msg_data(&bodies[m]), zmq_msg_size(&bodies[m]), &off, &c->zone,
                           &o[m]) != MSGPACK_UNPACK_SUCCESS ||
            o[m].type != MSGPACK_OBJECT_ARRAY) {
            c->rc = mc_err_set(&c->err, MC_ERR_INTERNAL, NULL, NULL, "malformed intents message");
            return;
        }
        first[m] = n;
        n += o[m].via.array.size;
    }
    first[k] = n;
    mc_wire_intent *wi = mc_arena_alloc(&c->arena, n * sizeof *wi);
    mc_intent *in = mc_arena_alloc(&c->arena, n * sizeof *in);
    mc_intent_state *st = mc_arena_alloc(&c->arena, n * sizeof *st);
    mc_wire_verdict *vd = mc_arena_alloc(&c->arena, n * sizeof *vd);
    if (!wi || !in || !st || !vd) {
        c->rc = mc_err_set(&c->err, MC_ERR_NOMEM, NULL, NULL, "collector arena full");
        return;
    }
    for (size_t m = 0; m < k; m++)
        for (size_t i = first[m]; i < first[m + 1]; i++) {
            if (mc_wire_unpack_intent(&o[m].via.array.ptr[i - first[m]], &c->arena, &wi[i]) !=
                MC_OK) {
                c->rc = mc_err_set(&c->err, MC_ERR_INTERNAL, NULL, NULL, "malformed intent");
                return;
            }
            in[i] = wi[i].in;
        }
    store_retry sr = {0};
    do
        rc = mc_store_intents_commit(c->store, in, n, st, &err);
    while (rc != MC_OK && store_retry_wait(c, &sr, rc, &err, "intents commit", n));
    store_retry_done(c, &sr, rc, &err, "intents commit", n);
    checkpoint_request(c);
    for (size_t m = 0; m < k; m++) {
        for (size_t i = first[m]; i < first[m + 1]; i++)
            intent_verdict(c, rc, &wi[i], &in[i], st[i], &vd[i]);
        /* The journal names the process that owes each order's result: only a verdict the
         * worker answers itself. A skipped order is answered here (now, or as a waiter when the
         * order id's first copy is done): its owner stays what it was, or a waiter whose
         * process died would, once dispatched again, drop the in-flight mark of the live copy
         * it waits for and have the same TBS signed twice. */
        if (c->journal_n && rc == MC_OK) {
            uint32_t owner = ident_proc(&idents[m]);
            for (size_t i = first[m]; i < first[m + 1]; i++)
                if (vd[i].action != MC_WIRE_SKIP)
                    journal_owner(c, wi[i].seq, owner,
                                  id_key(in[i].order_id, strlen(in[i].order_id)));
                else
                    journal_waiter(c, wi[i].seq);
        }
        msgpack_packer pk;
        msgpack_sbuffer_clear(&c->sbuf);
        msgpack_packer_init(&pk, &c->sbuf, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, first[m + 1] - first[m]);
        for (size_t i = first[m]; i < first[m + 1]; i++)
            mc_wire_pack_verdict(&pk, &vd[i]);
        if (zmq_msg_send(&idents[m], c->router, ZMQ_SNDMORE) < 0 ||
            zmq_send(c->router, c->sbuf.data, c->sbuf.size, 0) < 0)
            c->rc = mc_err_set(&c->err, MC_ERR_ZMQ, NULL, NULL, "reply to worker: %s",
                               zmq_strerror(zmq_errno()));
    }
}

/* r's TBS was signed elsewhere too (another engine on the same store took up its pending
 * intent) and that certificate was recorded first: r is answered with the recorded one, never
 * with this signature, which no record holds. */
static void answer_stored(collector *c, mc_result *r)
{
    mc_errdetail err;
    int found = 0;
    uint8_t *der = NULL;
    size_t dl = 0;
    mc_err lrc = stored_lookup(c, r->order_id, &found, NULL, NULL, NULL, NULL, &der, &dl, &err);
    /* and the lint set and warnings recorded with it, as for an order issued earlier */
    char *lv = mc_arena_alloc(&c->arena, MC_RESULT_LINT_VERSION_MAX);
    char *warn = mc_arena_alloc(&c->arena, MC_RESULT_WARNINGS_MAX);
    uint8_t *copy = lrc == MC_OK && found && der ? mc_arena_dup(&c->arena, der, dl) : NULL;
    if (copy && lv && warn) {
        lv[0] = warn[0] = '\0';
        lrc = stored_lint_meta(c, r->order_id, lv, warn, &err);
    }
    if (copy && lv && warn && lrc == MC_OK) {
        c->resigned++;
        r->cert = copy;
        r->cert_len = dl;
        r->lint_version = lv;
        r->warnings = warn;
    } else {
        fail_result(r, r->seq, r->order_id,
                    "signed twice (another engine on this store); the recorded certificate could "
                    "not be read back: resubmit the order to get it");
    }
    free(der);
}

static void handle_results(collector *c, zmq_msg_t *body)
{
    msgpack_object o;
    size_t off = 0;
    if (msgpack_unpack(zmq_msg_data(body), zmq_msg_size(body), &off, &c->zone, &o) !=
        MSGPACK_UNPACK_SUCCESS) {
        c->rc = mc_err_set(&c->err, MC_ERR_INTERNAL, NULL, NULL, "malformed results message");
        return;
    }
    if (o.type == MSGPACK_OBJECT_POSITIVE_INTEGER) { /* end of intake */
        c->total = o.via.u64;
        c->end = 1;
        return;
    }
    if (o.type != MSGPACK_OBJECT_ARRAY) {
        c->rc = mc_err_set(&c->err, MC_ERR_INTERNAL, NULL, NULL, "malformed results message");
        return;
    }
    size_t n = o.via.array.size, k = 0;
    mc_wire_result *wr = mc_arena_alloc(&c->arena, n * sizeof *wr);
    mc_stored_cert *sc = mc_arena_alloc(&c->arena, n * sizeof *sc);
    const char **prof = mc_arena_alloc(&c->arena, n * sizeof *prof);
    int *resigned = mc_arena_alloc(&c->arena, n * sizeof *resigned);
    if (!wr || !sc || !prof || !resigned) {
        c->rc = mc_err_set(&c->err, MC_ERR_NOMEM, NULL, NULL, "collector arena full");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (mc_wire_unpack_result(&o.via.array.ptr[i], &c->arena, &wr[i]) != MC_OK) {
            c->rc = mc_err_set(&c->err, MC_ERR_INTERNAL, NULL, NULL, "malformed result");
            return;
        }
        mc_result *r = &wr[i].r;
        if (r->status == MC_STATUS_ISSUED) {
            prof[k] = wr[i].profile;
            resigned[i] = 0;
            sc[k++] = (mc_stored_cert){r->order_id, r->serial,   r->serial_len,
                                       r->cert,     r->cert_len, &resigned[i]};
        }
    }
    mc_errdetail err;
    /* the certificates, and (CT on) their submissions in the same transaction: a certificate
     * is never stored without its outbox rows */
    mc_err rc = MC_OK;
    store_retry sr = {0};
    /* Signed certificates are never dropped: their commit is retried like the intents' (the
     * whole batch, with its CT outbox rows, in one transaction each time). */
    while (k &&
           (rc = c->e->ct_on
                     ? mc_ct_certs_commit(c->store, &c->e->ct, sc, prof, k, c->e->issuer.cert,
                                          c->e->issuer.cert_len, mc_ct_now_ms(), &err)
                     : mc_store_certs_commit(c->store, sc, k, &err)) != MC_OK &&
           store_retry_wait(c, &sr, rc, &err, "certificates commit", k))
        ;
    store_retry_done(c, &sr, rc, &err, "certificates commit", k);
    checkpoint_request(c);
    if (rc != MC_OK)
        fprintf(stderr,
                "mailca: store: %zu SIGNED certificates could NOT be recorded; their orders are "
                "answered failed and their intents stay pending: the next run reports them, and "
                "resubmitting those orders re-signs the recorded TBS with the same serial\n",
                k);
    for (size_t i = 0; i < n; i++) {
        mc_result *r = &wr[i].r;
        if (r->status == MC_STATUS_ISSUED) {
            if (rc != MC_OK) {
                /* Signed but not recorded: the certificate never leaves the engine. The intent
                 * stays pending and a resubmission re-signs the same TBS. */
                fail_result(r, r->seq, r->order_id, err.message);
            } else if (resigned[i]) {
                answer_stored(c, r);
            } else {
                r->lint_version = c->e->opts.no_lint ? "lint-disabled" : MC_LINT_SET_VERSION;
            }
        }
        emit(c, r, wr[i].t0);
        uint64_t key = id_key(r->order_id, r->order_id_len);
        if (inflight_has(c, key)) {
            inflight_del(c, key);
            resolve_waiters(c, key, r);
        }
    }
}

static void print_progress(collector *c, int final)
{
    uint64_t t = now_ns();
    if (!c->progress || (!final && t - c->t_last_print < 500000000ull))
        return;
    c->t_last_print = t;
    double el = (double)(t - c->t_start) / 1e9;
    double rate = el > 0 ? (double)c->issued / el : 0;
    uint64_t br = atomic_load(c->bytes_read);
    char eta[32] = "";
    if (c->orders_size && br > 0 && !final) {
        double frac = (double)br / (double)c->orders_size;
        if (frac > 0.01)
            snprintf(eta, sizeof eta, "  ETA %.0fs", el / frac - el);
    }
    fprintf(stderr, "\r%llu done: %llu issued, %llu rejected, %llu failed  %.0f certs/s%s   %s",
            (unsigned long long)c->written, (unsigned long long)c->issued,
            (unsigned long long)c->rejected, (unsigned long long)c->failed, rate, eta,
            final ? "\n" : "");
}

/* When every worker has stopped, orders still unanswered can no longer be processed: each gets a
 * failed result so that none is lost silently. */
static void fail_unanswered(collector *c)
{
    mc_result r;
    while (c->waiters) {
        waiter *w = c->waiters;
        c->waiters = w->next;
        fail_result(&r, w->seq, w->id, "the worker processing this order id stopped");
        emit(c, &r, w->t0);
        free(w->id);
        free(w);
    }
    for (uint64_t s = 0; s < c->total; s++)
        if (s / 8 >= c->seen_cap || !((c->seen[s / 8] >> (s % 8)) & 1)) {
            fail_result(&r, s, "", "the worker processing this order stopped; resubmit");
            emit(c, &r, now_ns());
        }
}

static pid_t spawn_worker(const mc_engine *e, int i, uint32_t id, int threads, int signers, int cpu,
                          const char *const eps[4], mc_errdetail *err);

/* Rounds of 2 s in which live worker processes answered nothing and no order was left to
 * dispatch again, before the orders still unanswered are answered failed (a minute). */
#define QUIET_ROUNDS_MAX 30

/* At most this many worker processes are restarted in one run (a crash loop ends the run's
 * supervision: the orders left are then answered as failed). */
#define MAX_RESTARTS 16

/* A worker process that exits is reaped and started again (issue 4: the orders it held are
 * dispatched again once the intake is over, see redispatch). */
static void reap_procs(collector *c)
{
    for (int i = 0; i < c->nprocs; i++) {
        int status;
        worker_proc *wp = &c->procs[i];
        if (wp->pid > 0 && waitpid(wp->pid, &status, WNOHANG) == wp->pid) {
            fprintf(stderr, "mailca: worker process %d (pid %d) exited (%s %d)\n", i, (int)wp->pid,
                    WIFSIGNALED(status) ? "signal" : "status",
                    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
            wp->pid = 0;
            c->died++;
            /* The worker counts as alive while it is being restarted: the intake, which gives
             * up when no worker is left, must wait for the new one (even with one process). */
            pid_t pid = -1;
            mc_errdetail err;
            mc_err_set(&err, MC_ERR_HSM, NULL, NULL, "%d restarts already", MAX_RESTARTS);
            if (c->restarts < MAX_RESTARTS && c->eps) {
                long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
                int cpu = c->e->cfg.pin_cores && ncpu > 0 ? (int)((i * c->threads) % ncpu) : -1;
                pid = spawn_worker(c->e, i, c->next_proc_id, c->threads, c->signers, cpu, c->eps,
                                   &err);
            }
            if (pid > 0) {
                *wp = (worker_proc){.pid = pid, .id = c->next_proc_id++};
                c->restarts++;
                /* a restart can take seconds (module load, login): the quiet time that
                 * starts re-dispatching begins after it, not before */
                c->t_last_input = now_ns();
                fprintf(stderr, "mailca: worker process %d restarted (pid %d)\n", i, (int)pid);
            } else {
                atomic_fetch_sub(c->workers_alive, 1);
                fprintf(stderr, "mailca: worker process %d could not be restarted: %s\n", i,
                        err.message);
            }
        }
    }
}

/* Keeps the copy of an order the intake sent (worker processes only). Reads until the pipe is
 * empty: a signal does not end the drain early (an intent read before it would lose its owner,
 * see collector_main). */
static void journal_receive(collector *c)
{
    for (;;) {
        uint64_t seq = 0;
        int n = zmq_recv(c->journal_pull, &seq, sizeof seq, ZMQ_DONTWAIT);
        if (n < 0) {
            if (zmq_errno() == EINTR)
                continue;
            if (zmq_errno() != EAGAIN && zmq_errno() != ETERM)
                c->rc = mc_err_set(&c->err, MC_ERR_ZMQ, NULL, NULL, "order journal: %s",
                                   zmq_strerror(zmq_errno()));
            return;
        }
        zmq_msg_t *m = malloc(sizeof *m);
        if (!m) {
            c->rc = mc_err_set(&c->err, MC_ERR_NOMEM, NULL, NULL, "order journal");
            return;
        }
        zmq_msg_init(m);
        int r;
        while ((r = zmq_msg_recv(m, c->journal_pull, 0)) < 0 && zmq_errno() == EINTR)
            ; /* the second frame came with the first: this never waits */
        if (r < 0) {
            c->rc = mc_err_set(&c->err, MC_ERR_ZMQ, NULL, NULL, "order journal: %s",
                               zmq_strerror(zmq_errno()));
            zmq_msg_close(m);
            free(m);
            return;
        }
        int answered = seq / 8 < c->seen_cap && ((c->seen[seq / 8] >> (seq % 8)) & 1);
        if (n != (int)sizeof seq || answered) {
            zmq_msg_close(m);
            free(m);
        } else if (journal_put(c, seq, m) != 0) {
            zmq_msg_close(m);
            free(m);
            c->rc = mc_err_set(&c->err, MC_ERR_NOMEM, NULL, NULL, "order journal");
            return;
        }
    }
}

/* The orders a dead worker process held never come back: once the intake is over and nothing
 * has moved for a while, the unanswered orders are dispatched again from the journal: those
 * whose intent a dead process recorded (resumed: same TBS, same serial; their in-flight mark
 * is dropped, or the resubmission would wait for the dead worker) and those without an intent
 * yet (a live worker that still holds one of those cannot sign it twice: the second intent of
 * an order id finds the first). An order whose intent a live process recorded is left to it:
 * dispatching it again could sign its TBS twice. */
static void redispatch_start(collector *c)
{
    free(c->redo);
    c->redo = malloc((c->journal_n ? c->journal_n : 1) * sizeof *c->redo);
    c->redo_n = c->redo_next = 0;
    if (!c->redo)
        return;
    for (size_t i = 0; i < c->journal_cap; i++) {
        journal_entry *j = &c->journal[i];
        if (!j->key || j->owner == JOURNAL_WAITER || (j->owner && proc_alive(c, j->owner)))
            continue;
        if (j->owner && j->idkey)
            inflight_del(c, j->idkey);
        c->redo[c->redo_n++] = j->key - 1;
    }
    /* A round with nothing to send means every unanswered order is owed by a live process (a
     * slow one: CAA lookups, a C_Sign near its deadline): waiting for it is not a failed round.
     * Only a long silence (QUIET_ROUNDS_MAX rounds) ends the wait. */
    if (c->redo_n) {
        c->redo_rounds++;
        fprintf(stderr, "mailca: dispatching %zu order(s) held by a dead worker process again\n",
                c->redo_n);
    } else {
        c->quiet_rounds++;
    }
}

/* Sends what it can of the redo list without blocking (the collector must keep reading
 * results, or workers and collector would wait on each other). */
static void redispatch_some(collector *c)
{
    while (c->redo_next < c->redo_n) {
        uint64_t seq = c->redo[c->redo_next];
        size_t i = journal_slot(c, seq + 1);
        if (!c->journal[i].key) { /* answered meanwhile */
            c->redo_next++;
            continue;
        }
        zmq_msg_t copy;
        zmq_msg_init(&copy);
        zmq_msg_copy(&copy, c->journal[i].msg);
        if (zmq_msg_send(&copy, c->push_orders, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&copy);
            return; /* the workers are busy: the rest on a later turn */
        }
        c->redo_next++;
    }
}

/* Copies the SQLite WAL into the database on a connection of its own when the collector asks.
 * A checkpoint at commit stalled the collector for the whole copy (64 MiB), the workers waited
 * for their intents' verdicts meanwhile and the signers ran dry: the same run without
 * checkpoints was 8% faster (60,000 orders, 3 alternating runs). A passive checkpoint never
 * blocks the collector's commits. */
typedef struct checkpointer {
    void *zctx;
    mc_store *s; /* its own connection, opened before the thread starts; the thread closes it */
    mc_err rc;
    mc_errdetail err;
} checkpointer;

static void *checkpointer_main(void *arg)
{
    checkpointer *k = arg;
    int zero = 0, one = 1;
    pthread_setname_np(pthread_self(), "mc-checkpoint");
    void *pull = zmq_socket(k->zctx, ZMQ_PULL);
    if (!pull || zmq_setsockopt(pull, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_setsockopt(pull, ZMQ_RCVHWM, &one, sizeof one) != 0 ||
        zmq_connect(pull, EP_CHECKPOINT) != 0) {
        k->rc = mc_err_set(&k->err, MC_ERR_ZMQ, NULL, NULL, "checkpointer: %s",
                           zmq_strerror(zmq_errno()));
        goto done;
    }
    for (;;) {
        char b[1];
        if (zmq_recv(pull, b, sizeof b, 0) < 0) {
            if (zmq_errno() == EINTR)
                continue;
            break; /* ETERM: the run is over (the last connection to close copies the rest) */
        }
        if ((k->rc = mc_store_checkpoint(k->s, &k->err)) != MC_OK)
            break; /* the collector's commits copy the WAL past its hard limit */
    }
done:
    if (pull)
        zmq_close(pull);
    mc_store_close(k->s);
    k->s = NULL;
    return NULL;
}

/* Submits the CT outbox while the run lasts (the outbox is durable: what is left is submitted
 * by the next run or `mailca ct drain`). */
typedef struct ct_drainer {
    mc_engine *e;
    atomic_int stop;
    mc_err rc;
    mc_errdetail err;
} ct_drainer;

static void *ct_drain_main(void *arg)
{
    ct_drainer *d = arg;
    mc_store *s = NULL;
    mc_ct *ct = NULL;
    pthread_setname_np(pthread_self(), "mc-ct-drain");
    if ((d->rc = mc_store_open(d->e->cfg.store_sqlite, &s, &d->err)) == MC_OK &&
        (d->rc = mc_ct_new(&d->e->ct, &ct, &d->err)) == MC_OK)
        d->rc = mc_ct_drain(ct, s, &d->stop, NULL, &d->err);
    mc_ct_free(ct);
    mc_store_close(s);
    return NULL;
}

static void *collector_main(void *arg)
{
    collector *c = arg;
    pthread_setname_np(pthread_self(), "mc-collector"); /* for top -H, perf and gdb */
    zmq_pollitem_t items[3] = {{c->pull, 0, ZMQ_POLLIN, 0},
                               {c->router, 0, ZMQ_POLLIN, 0},
                               {c->journal_pull, 0, ZMQ_POLLIN, 0}};
    int nitems = c->journal_pull ? 3 : 2;
    while (c->rc == MC_OK && !(c->end && c->written >= c->total)) {
        if (zmq_poll(items, nitems, c->redo_next < c->redo_n ? 20 : 200) < 0) {
            if (errno == EINTR)
                continue;
            c->rc = mc_err_set(&c->err, MC_ERR_ZMQ, NULL, NULL, "poll: %s", zmq_strerror(errno));
            break;
        }
        /* Results first: finishing work keeps the number of orders in flight small. */
        if (items[0].revents & ZMQ_POLLIN) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            while (zmq_msg_recv(&m, c->pull, ZMQ_DONTWAIT) >= 0) {
                handle_results(c, &m);
                mc_arena_reset(&c->arena);
                msgpack_zone_clear(&c->zone);
            }
            zmq_msg_close(&m);
        }
        if (items[1].revents & ZMQ_POLLIN) {
            /* the batches of intents waiting now, up to INTENTS_GROUP_MAX, in one commit */
            zmq_msg_t id[INTENTS_GROUP_MAX], body[INTENTS_GROUP_MAX];
            size_t k = 0;
            for (; k < INTENTS_GROUP_MAX; k++) {
                zmq_msg_init(&id[k]);
                zmq_msg_init(&body[k]);
                /* a message's frames arrive together: the body never waits once its identity is
                 * in */
                if (zmq_msg_recv(&id[k], c->router, k ? ZMQ_DONTWAIT : 0) < 0 ||
                    zmq_msg_recv(&body[k], c->router, 0) < 0) {
                    zmq_msg_close(&id[k]);
                    zmq_msg_close(&body[k]);
                    break;
                }
            }
            /* The journal copies before the intents: an intent's owner is written into its
             * order's journal entry, and a copy read later would have none (its order, held by
             * a process that then died, would wait for that process's answer instead of being
             * dispatched again). The intake sends the copy (inproc: in the pipe on return)
             * before the order, so the copy of every intent read above is in by now. */
            if (nitems == 3)
                journal_receive(c);
            if (k)
                handle_intents(c, id, body, k);
            for (size_t m = 0; m < k; m++) {
                zmq_msg_close(&id[m]);
                zmq_msg_close(&body[m]);
            }
            mc_arena_reset(&c->arena);
            msgpack_zone_clear(&c->zone);
        }
        if (nitems == 3 && (items[2].revents & ZMQ_POLLIN))
            journal_receive(c);
        reap_procs(c);
        if (items[0].revents || items[1].revents)
            c->t_last_input = now_ns();
        if (c->end)
            redispatch_some(c); /* push_orders is the collector's once the intake is over */
        /* The orders a dead worker held never come back: once intake is done and nothing has
         * moved for 2 s, they are dispatched again from the journal (3 rounds at most; rounds
         * that find only orders live processes owe wait for them, up to QUIET_ROUNDS_MAX);
         * what is still unanswered after that is answered as failed (retryable: a
         * resubmission re-signs any recorded TBS with its serial). */
        if (c->end && c->written < c->total &&
            (atomic_load(c->workers_alive) == 0 ||
             (c->died && now_ns() - c->t_last_input > 2000000000ull))) {
            if (atomic_load(c->workers_alive) > 0 && c->journal_n && c->redo_rounds < 3 &&
                c->quiet_rounds < QUIET_ROUNDS_MAX && c->redo_next >= c->redo_n) {
                redispatch_start(c);
                c->t_last_input = now_ns();
            } else if (c->redo_next >= c->redo_n || atomic_load(c->workers_alive) == 0) {
                /* no worker left: a redo list can no longer be sent (PUSH without peers) */
                c->redo_next = c->redo_n;
                fail_unanswered(c);
            }
        }
        audit_flush(c, 0);
        print_progress(c, 0);
    }
    audit_flush(c, 1);
    print_progress(c, 1);
    if (c->resigned)
        fprintf(stderr,
                "mailca: %llu order(s) were signed by another engine on this store at the same "
                "time: answered with the certificate it stored first\n",
                (unsigned long long)c->resigned);
    /* A collector that fails (results cannot be written, the store is gone for good) answers
     * nothing more: the intake would wait for room forever and the workers for their verdicts.
     * Ending the context makes their blocked calls return, and the run ends with this error. */
    if (c->rc != MC_OK)
        zmq_ctx_shutdown(c->zctx);
    return NULL;
}

/* ---------------------------------------------------------------- intake */

typedef struct intake {
    void *push_orders, *push_results;
    void *push_journal; /* worker processes: a copy of each order to the collector's journal */
    atomic_int *workers_alive;
    msgpack_sbuffer sbuf;
    uint64_t seq;
} intake;

static mc_err send_sbuf(void *sock, msgpack_sbuffer *b)
{
    while (zmq_send(sock, b->data, b->size, 0) < 0)
        if (errno != EINTR)
            return MC_ERR_ZMQ;
    return MC_OK;
}

static mc_err intake_reject(intake *in, const mc_order *o, const mc_errdetail *err)
{
    msgpack_packer pk;
    mc_wire_result wr = {.t0 = now_ns()};
    wr.r.seq = in->seq++;
    wr.r.order_id = o && o->id.p ? o->id.p : "";
    wr.r.order_id_len = o && o->id.p ? o->id.len : 0;
    wr.r.status = MC_STATUS_REJECTED;
    wr.r.error = *err;
    msgpack_sbuffer_clear(&in->sbuf);
    msgpack_packer_init(&pk, &in->sbuf, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 1);
    mc_wire_pack_result(&pk, &wr);
    return send_sbuf(in->push_results, &in->sbuf);
}

static mc_err intake_order(intake *in, const msgpack_object *obj)
{
    mc_order o;
    mc_errdetail err;
    memset(&o, 0, sizeof o);
    if (mc_order_decode(obj, &o, &err) != MC_OK)
        return intake_reject(in, &o, &err);
    msgpack_packer pk;
    msgpack_sbuffer_clear(&in->sbuf);
    msgpack_packer_init(&pk, &in->sbuf, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint64(&pk, in->seq++);
    msgpack_pack_uint64(&pk, now_ns());
    msgpack_pack_object(&pk, *obj);
    /* The journal's copy first: it may then arrive after the order's result, never without
     * having been sent (the collector drops a copy of an answered order). */
    uint64_t seq = in->seq - 1;
    if (in->push_journal && (zmq_send(in->push_journal, &seq, sizeof seq, ZMQ_SNDMORE) < 0 ||
                             zmq_send(in->push_journal, in->sbuf.data, in->sbuf.size, 0) < 0))
        return MC_ERR_ZMQ;
    /* Blocks while the workers are busy (back-pressure), but not forever when none is left. */
    while (zmq_send(in->push_orders, in->sbuf.data, in->sbuf.size, 0) < 0) {
        if (errno == EAGAIN && atomic_load(in->workers_alive) > 0)
            continue;
        if (errno != EINTR && errno != EAGAIN)
            return MC_ERR_ZMQ;
        if (errno == EAGAIN)
            return MC_ERR_HSM; /* no worker left to sign */
    }
    return MC_OK;
}

/* Reads the stream and feeds the workers; returns the number of orders that entered. */
static mc_err intake_run(intake *in, FILE *f, atomic_uint_fast64_t *bytes_read, mc_errdetail *err)
{
    mc_err rc = MC_OK;
    msgpack_unpacker up;
    msgpack_unpacked res;
    uint64_t offset = 0; /* bytes of the stream consumed by complete objects */
    if (!msgpack_unpacker_init(&up, 65536))
        return mc_err_set(err, MC_ERR_NOMEM, NULL, NULL, "msgpack unpacker");
    msgpack_unpacked_init(&res);
    for (;;) {
        if (!msgpack_unpacker_reserve_buffer(&up, 65536)) {
            rc = mc_err_set(err, MC_ERR_NOMEM, NULL, NULL, "msgpack buffer");
            goto done;
        }
        size_t got = fread(msgpack_unpacker_buffer(&up), 1, 65536, f);
        msgpack_unpacker_buffer_consumed(&up, got);
        atomic_fetch_add(bytes_read, got);
        msgpack_unpack_return ret;
        size_t before = msgpack_unpacker_parsed_size(&up);
        while ((ret = msgpack_unpacker_next(&up, &res)) == MSGPACK_UNPACK_SUCCESS) {
            size_t after = msgpack_unpacker_parsed_size(&up);
            offset += after - before;
            before = after;
            if ((rc = intake_order(in, &res.data)) != MC_OK) {
                rc = mc_err_set(err, rc, "workers", NULL,
                                rc == MC_ERR_HSM ? "no worker is running: the rest of the "
                                                   "orders were not read"
                                                 : "cannot pass orders to the workers");
                goto done;
            }
        }
        mc_errdetail e;
        if (ret == MSGPACK_UNPACK_PARSE_ERROR || ret == MSGPACK_UNPACK_NOMEM_ERROR) {
            mc_err_set(&e, MC_ERR_INVALID, "stream", "orders.md stream",
                       "malformed msgpack at byte %llu; the rest of the stream was not read",
                       (unsigned long long)offset);
            rc = intake_reject(in, NULL, &e);
            goto done;
        }
        if (msgpack_unpacker_message_size(&up) - msgpack_unpacker_parsed_size(&up) >
            MAX_ORDER_BYTES) {
            mc_err_set(&e, MC_ERR_INVALID, "stream", "orders.md stream",
                       "the order at byte %llu exceeds %d bytes; the rest of the stream was not "
                       "read",
                       (unsigned long long)offset, MAX_ORDER_BYTES);
            rc = intake_reject(in, NULL, &e);
            goto done;
        }
        if (got == 0) {
            if (ferror(f)) {
                rc = mc_err_set(err, MC_ERR_IO, "orders", NULL, "read error");
                goto done;
            }
            size_t left = msgpack_unpacker_message_size(&up) - msgpack_unpacker_parsed_size(&up);
            if (left) {
                mc_err_set(&e, MC_ERR_INVALID, "stream", "orders.md stream",
                           "truncated: the last %zu bytes (from byte %llu) are not a complete "
                           "msgpack object",
                           left, (unsigned long long)offset);
                rc = intake_reject(in, NULL, &e);
            }
            goto done;
        }
    }
done:
    msgpack_unpacked_destroy(&res);
    msgpack_unpacker_destroy(&up);
    return rc;
}

/* ---------------------------------------------------------------- run */

typedef struct worker_slot {
    mc_worker w;
    pthread_t th;
    int started;
    atomic_int *alive;
} worker_slot;

static void *worker_thread(void *arg)
{
    worker_slot *s = arg;
    mc_worker_main(&s->w);
    atomic_fetch_sub(s->alive, 1);
    return NULL;
}

int mc_engine_auto_procs(const char *manufacturer, int cores, int sessions)
{
    /* SoftHSM2 signs under process-wide locks: measured on 16 cores, one process saturates near
     * 22k P-256 signatures/s at any thread count (1 thread 10.8k, 4 threads 21.6k) while 16
     * one-thread processes reach 173k/s (DESIGN.md), so from 4 cores on, processes win. On 2
     * cores the raw rates are close (one process 44k/s, two 47k/s) and so is the engine
     * (24,500 certs/s as threads, 24,800-25,800 as 2 processes, README), so threads stay: one
     * CAA cache, one process to supervise. Unless many sessions are in flight: 32 sessions
     * with 1 ms per C_Sign, 57% of the ideal as 2 processes against 40-46% as threads (bench
     * --hsm-latency-us). An HSM's client library keeps threads: one process drives its
     * sessions concurrently. */
    if (!manufacturer || strncmp(manufacturer, "SoftHSM", 7) != 0 || cores < 2)
        return 0;
    if (sessions <= 0)
        sessions = cores;
    return cores >= 4 || sessions > cores ? cores : 0;
}

/* Signing sessions in flight the run asks for: --sessions, else engine.sessions (0 = one per
 * worker). */
static int engine_sessions(const mc_engine *e)
{
    return e->opts.sessions > 0 ? e->opts.sessions : e->cfg.sessions;
}

/* Signer threads per worker for the configured sessions in flight over total_workers workers.
 * 0: the workers sign themselves (no deadline configured, no more sessions than workers). With
 * a C_Sign deadline (hsm.sign_timeout_ms) at least one: a hung call then blocks a signer thread
 * the worker can abandon, not the worker. */
static int signers_per_worker(const mc_engine *e, int total_workers)
{
    int sessions = engine_sessions(e);
    if (total_workers < 1)
        total_workers = 1;
    if (sessions <= total_workers)
        return e->cfg.hsm_sign_timeout_ms > 0 ? 1 : 0;
    return (sessions + total_workers - 1) / total_workers;
}

/* What every worker reads of the engine (immutable during a run). */
static mc_worker_shared worker_shared(const mc_engine *e, void *zctx, const char *ep_orders,
                                      const char *ep_intents, const char *ep_results, int signers)
{
    return (mc_worker_shared){
        .profiles = &e->profiles,
        .issuer = &e->issuer,
        .digests = &e->d,
        .pool = e->pool,
        .caa = e->caa,
        .weak_keys = e->weak,
        .account_uri_prefix = e->cfg.caa_account_uri_prefix,
        .zctx = zctx,
        .ep_orders = ep_orders,
        .ep_intents = ep_intents,
        .ep_results = ep_results,
        .batch = e->batch,
        .lint = !e->opts.no_lint,
        .lint_enforced_set = e->cfg.lint_enforced_set,
        .lint_enforced = e->opts.no_lint ? NULL : mc_lint_set_effective(e->cfg.lint_enforced_set),
        .signers = signers,
        .sign_timeout_ms = e->cfg.hsm_sign_timeout_ms};
}

/* Starts n worker threads; worker i is pinned to core (cpu0 + i) mod cores, or not pinned when
 * cpu0 < 0. A thread that starts counts in *alive until it ends. */
static mc_err workers_start(worker_slot *ws, int n, const mc_worker_shared *sh, atomic_int *alive,
                            int cpu0, mc_errdetail *err)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    for (int i = 0; i < n; i++) {
        ws[i].w = (mc_worker){
            .sh = sh, .index = i, .cpu = cpu0 >= 0 && ncpu > 0 ? (int)((cpu0 + i) % ncpu) : -1};
        ws[i].alive = alive;
        atomic_fetch_add(alive, 1);
        if (pthread_create(&ws[i].th, NULL, worker_thread, &ws[i]) != 0) {
            atomic_fetch_sub(alive, 1);
            return mc_err_set(err, MC_ERR_INTERNAL, NULL, NULL, "cannot start worker %d", i);
        }
        ws[i].started = 1;
    }
    return MC_OK;
}

/* Joins the started workers of ws; the first worker error becomes the result when rc is MC_OK. */
static mc_err workers_join(worker_slot *ws, int n, mc_err rc, mc_errdetail *err)
{
    for (int i = 0; ws && i < n; i++)
        if (ws[i].started) {
            pthread_join(ws[i].th, NULL);
            if (ws[i].w.rc != MC_OK && rc == MC_OK) {
                rc = ws[i].w.rc;
                *err = ws[i].w.err;
            }
        }
    return rc;
}

static void *bind_socket(void *ctx, int type, const char *ep, int hwm)
{
    void *s = zmq_socket(ctx, type);
    int zero = 0;
    if (!s)
        return NULL;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (zmq_bind(s, ep) != 0) {
        zmq_close(s);
        return NULL;
    }
    return s;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Starts worker process i: this very binary (`mailca worker`), so the child loads the PKCS#11
 * module fresh (PKCS#11 state must not cross fork). eps: the orders, intents and results ipc
 * endpoints, then the run's config snapshot (mc_config_snapshot), which the child loads: a
 * process restarted late in a run gets the config the run started with even if the file was
 * edited meanwhile (a changed lint.enforced_set, HSM URI or store would otherwise apply to
 * some workers of the run and not others). The PIN travels by
 * the config's pin file or the inherited environment, never argv. The child says "R" on fd 3 once
 * its HSM session is open; workers start one after another because SoftHSM2 processes logging in
 * to one token at the same moment race on its state files (seen here: "no initialised token").
 * Returns the pid, or -1 with err filled. */
static pid_t spawn_worker(const mc_engine *e, int i, uint32_t id, int threads, int signers, int cpu,
                          const char *const eps[4], mc_errdetail *err)
{
    char th[16], cp[16], bt[16], sg[16], idb[16];
    snprintf(idb, sizeof idb, "%lu", (unsigned long)id);
    snprintf(th, sizeof th, "%d", threads);
    snprintf(sg, sizeof sg, "%d", signers);
    snprintf(cp, sizeof cp, "%d", cpu);
    snprintf(bt, sizeof bt, "%d", e->batch);
    char *argv[] = {"mailca",
                    "worker",
                    "--config",
                    (char *)eps[3],
                    "--orders",
                    (char *)eps[0],
                    "--intents",
                    (char *)eps[1],
                    "--results",
                    (char *)eps[2],
                    "--threads",
                    th,
                    "--cpu",
                    cp,
                    "--batch",
                    bt,
                    "--signers",
                    sg,
                    "--id",
                    idb,
                    e->opts.no_lint ? "--no-lint" : NULL,
                    NULL};
    extern char **environ;
    pid_t pid = -1;
    int p[2];
    posix_spawn_file_actions_t fa;
    if (pipe(p) != 0) {
        mc_err_set(err, MC_ERR_IO, "procs", NULL, "pipe: %s", strerror(errno));
        return -1;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 3);
    posix_spawn_file_actions_addclose(&fa, p[0]);
    int se = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    if (se != 0) {
        close(p[0]);
        mc_err_set(err, MC_ERR_INTERNAL, "procs", NULL, "cannot start worker process %d: %s", i,
                   strerror(se));
        return -1;
    }
    struct pollfd pf = {.fd = p[0], .events = POLLIN};
    char ready = 0;
    int ok = poll(&pf, 1, 60000) == 1 && read(p[0], &ready, 1) == 1 && ready == 'R';
    close(p[0]);
    if (!ok) {
        int status = 0;
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        mc_err_set(err, MC_ERR_HSM, "procs", NULL,
                   "worker process %d did not start (its error is above)", i);
        return -1;
    }
    return pid;
}

/* Ends the run's ZeroMQ context. A signer abandoned in a hung C_Sign (worker.c) keeps its
 * sockets open until the call returns, and zmq_ctx_term would wait for it forever: it gets a
 * short grace, then the context is left to the process's exit. */
static void context_end(mc_engine *e, void *zctx)
{
    if (!zctx)
        return;
    int hung = mc_hsmpool_hung_wait(e->pool, 2000);
    if (hung > 0) {
        fprintf(stderr,
                "mailca: %d signer thread(s) still blocked in a C_Sign abandoned after "
                "its deadline: left behind\n",
                hung);
        return;
    }
    zmq_ctx_term(zctx);
}

/* SBR 5.4.1: the run's start in the audit log, with what decides its certificates: the
 * engine, the lint sets, and each profile's hash (1.vii: a hash not seen before is a profile
 * introduced). */
static mc_err audit_run_start(const mc_engine *e, collector *c, int procs, mc_errdetail *err)
{
    mc_audit_json j, prof;
    char hex[65];
    c->t_start = now_ns(); /* run.end's duration, should the run stop before it starts */
    mc_audit_json_begin(&prof);
    for (size_t i = 0; i < e->profiles.n; i++) {
        for (int k = 0; k < 32; k++)
            snprintf(hex + 2 * k, 3, "%02x", e->profiles.v[i]->hash[k]);
        mc_audit_json_str(&prof, e->profiles.v[i]->name, hex);
    }
    mc_audit_json_begin(&j);
    mc_audit_json_str(&j, "engine_version", MAILCA_VERSION);
    mc_audit_json_str(&j, "lint_set", e->opts.no_lint ? "lint-disabled" : MC_LINT_SET_VERSION);
    mc_audit_json_str(&j, "lint_enforced",
                      e->opts.no_lint ? NULL : mc_lint_set_effective(e->cfg.lint_enforced_set));
    mc_audit_json_int(&j, "workers", procs > 0 ? 0 : e->workers);
    mc_audit_json_int(&j, "procs", procs);
    mc_audit_json_str(&j, "caa", e->caa ? "on" : "off");
    mc_audit_json_str(&j, "weak_key_list",
                      e->cfg.keys_weak_rsa_blocklist[0] ? e->cfg.keys_weak_rsa_blocklist : NULL);
    const char *pj = mc_audit_json_end(&prof);
    if (pj)
        mc_audit_json_raw(&j, "profiles", pj);
    const char *detail = mc_audit_json_end(&j);
    mc_audit_event ev = {.at = (int64_t)time(NULL),
                         .actor = c->actor,
                         .event = "run.start",
                         .subject = e->cfg.path[0] ? e->cfg.path : NULL,
                         .detail = detail};
    mc_err rc = pj && detail ? mc_store_audit_append(c->store, &ev, 1, err)
                             : mc_err_set(err, MC_ERR_NOMEM, NULL, NULL, "audit: run.start");
    mc_audit_json_free(&prof);
    mc_audit_json_free(&j);
    return rc;
}

/* The run's end and its counts. A failure here is reported, not made the run's: every order
 * was answered and recorded by now. */
static void audit_run_end(collector *c, mc_err rc, const mc_errdetail *err)
{
    mc_audit_json j;
    mc_errdetail e2;
    mc_audit_json_begin(&j);
    mc_audit_json_int(&j, "orders", (int64_t)c->written);
    mc_audit_json_int(&j, "issued", (int64_t)c->issued);
    mc_audit_json_int(&j, "rejected", (int64_t)c->rejected);
    mc_audit_json_int(&j, "failed", (int64_t)c->failed);
    mc_audit_json_int(&j, "seconds", (int64_t)((now_ns() - c->t_start) / 1000000000ull));
    mc_audit_json_str(&j, "error", rc == MC_OK ? NULL : err->message);
    const char *detail = mc_audit_json_end(&j);
    mc_audit_event ev = {.at = (int64_t)time(NULL),
                         .actor = c->actor,
                         .event = "run.end",
                         .subject = c->e->cfg.path[0] ? c->e->cfg.path : NULL,
                         .detail = detail};
    if (!detail || mc_store_audit_append(c->store, &ev, 1, &e2) != MC_OK)
        fprintf(stderr, "mailca: audit log: the end of this run could not be recorded: %s\n",
                detail ? e2.message : "out of memory");
    mc_audit_json_free(&j);
}

mc_err mc_engine_run(mc_engine *e, FILE *orders, uint64_t orders_size, FILE *results,
                     mc_run_stats *st, mc_errdetail *err)
{
    mc_err rc = MC_OK;
    void *zctx = zmq_ctx_new();
    collector c;
    intake in;
    worker_slot *ws = NULL;
    pthread_t cth;
    int c_started = 0, run_recorded = 0;
    atomic_int alive = 0;
    atomic_uint_fast64_t bytes_read = 0;
    int procs = e->opts.procs == MC_ENGINE_PROCS_CONFIG ? e->cfg.procs : e->opts.procs;
    int pthreads = e->opts.workers > 0 ? e->opts.workers : 1; /* threads per worker process */
    if (procs < 0) { /* auto: the engine's workers (one per core by default) spread over them */
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        procs = mc_engine_auto_procs(mc_hsm_library_manufacturer(mc_hsmpool_hsm(e->pool, 0)),
                                     (int)(ncpu > 0 ? ncpu : 1), engine_sessions(e));
        pthreads = procs > 0 ? (e->workers + procs - 1) / procs : pthreads;
    }
    int signers = signers_per_worker(e, procs > 0 ? procs * pthreads : e->workers);
    mc_worker_shared sh = worker_shared(e, zctx, EP_ORDERS, EP_INTENTS, EP_RESULTS, signers);
    ct_drainer drainer;
    pthread_t dth;
    int d_started = 0;
    checkpointer ckp = {.zctx = zctx};
    pthread_t kth;
    int k_started = 0;
    memset(&drainer, 0, sizeof drainer);
    char ipc_dir[64] = "", ep_ipc[4][128];
    const char *eps[4] = {ep_ipc[0], ep_ipc[1], ep_ipc[2], ep_ipc[3]};
    worker_proc *pids = NULL;
    memset(&c, 0, sizeof c);
    memset(&in, 0, sizeof in);
    msgpack_sbuffer_init(&in.sbuf);
    msgpack_sbuffer_init(&c.sbuf);
    if (!zctx) {
        rc = mc_err_set(err, MC_ERR_ZMQ, NULL, NULL, "zmq_ctx_new");
        goto done;
    }
    c.e = e;
    c.results = results;
    msgpack_sbuffer_init(&c.rbuf);
    msgpack_packer_init(&c.rpk, &c.rbuf, msgpack_sbuffer_write);
    c.workers_alive = &alive;
    c.bytes_read = &bytes_read;
    c.orders_size = orders_size;
    c.progress = e->opts.progress && isatty(2);
    c.inflight = calloc(INFLIGHT_SLOTS, sizeof *c.inflight);
    if (!c.inflight || !msgpack_zone_init(&c.zone, 65536) ||
        mc_arena_init(&c.arena, (size_t)e->batch * 4 * (MC_CERT_MAX + MC_TBS_MAX + 4096) +
                                    (1u << 20)) != MC_OK) {
        rc = mc_err_set(err, MC_ERR_NOMEM, NULL, NULL, "collector");
        goto done;
    }
    if ((rc = mc_store_open(e->cfg.store_sqlite, &c.store, err)) != MC_OK)
        goto done;
    mc_audit_actor(c.actor, sizeof c.actor);
    if ((rc = audit_run_start(e, &c, procs, err)) != MC_OK)
        goto done;
    run_recorded = 1;
    if (procs > 0) {
        /* Worker processes join over ipc:// in a private folder (mode 0700). */
        snprintf(ipc_dir, sizeof ipc_dir, "/tmp/mailca-ipc-XXXXXX");
        if (!mkdtemp(ipc_dir)) {
            ipc_dir[0] = '\0';
            rc = mc_err_set(err, MC_ERR_IO, "procs", NULL, "mkdtemp: %s", strerror(errno));
            goto done;
        }
        snprintf(ep_ipc[0], sizeof ep_ipc[0], "ipc://%s/orders", ipc_dir);
        snprintf(ep_ipc[1], sizeof ep_ipc[1], "ipc://%s/intents", ipc_dir);
        snprintf(ep_ipc[2], sizeof ep_ipc[2], "ipc://%s/results", ipc_dir);
        snprintf(ep_ipc[3], sizeof ep_ipc[3], "%s/config.yaml", ipc_dir);
        if ((rc = mc_config_snapshot(&e->cfg, ep_ipc[3], err)) != MC_OK)
            goto done;
    }
    /* Small high-water marks: back-pressure instead of queues (DESIGN.md). */
    c.router = bind_socket(zctx, ZMQ_ROUTER, procs > 0 ? eps[1] : EP_INTENTS, 64);
    c.pull = bind_socket(zctx, ZMQ_PULL, EP_RESULTS, 8);
    in.push_orders = bind_socket(zctx, ZMQ_PUSH, procs > 0 ? eps[0] : EP_ORDERS, e->batch * 2);
    in.push_results = zmq_socket(zctx, ZMQ_PUSH);
    if (procs > 0) {
        /* the journal: no high-water mark of its own (it holds what is in flight, which the
         * orders socket bounds); a restarted worker process joins the same endpoints */
        c.journal_pull = bind_socket(zctx, ZMQ_PULL, EP_JOURNAL, 0);
        in.push_journal = zmq_socket(zctx, ZMQ_PUSH);
        int zero = 0;
        if (in.push_journal)
            zmq_setsockopt(in.push_journal, ZMQ_SNDHWM, &zero, sizeof zero);
        if (!c.journal_pull || !in.push_journal || zmq_connect(in.push_journal, EP_JOURNAL) != 0) {
            rc = mc_err_set(err, MC_ERR_ZMQ, NULL, NULL, "journal: %s", zmq_strerror(zmq_errno()));
            goto done;
        }
        c.push_orders = in.push_orders;
        c.eps = eps;
        c.threads = pthreads;
        c.signers = signers;
    }
    if (!c.router || !c.pull || !in.push_orders || !in.push_results ||
        (procs > 0 && zmq_bind(c.pull, eps[2]) != 0) ||
        zmq_connect(in.push_results, EP_RESULTS) != 0) {
        rc = mc_err_set(err, MC_ERR_ZMQ, NULL, NULL, "sockets: %s", zmq_strerror(zmq_errno()));
        goto done;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    ws = calloc((size_t)e->workers, sizeof *ws);
    if (!ws) {
        rc = mc_err_set(err, MC_ERR_NOMEM, NULL, NULL, "workers");
        goto done;
    }
    /* The checkpointer's connection is opened here, so that the collector hands over its
     * checkpoints only to a connection that exists; without one, the commits copy the WAL
     * themselves as SQLite does by default. */
    if (mc_store_has_wal(c.store) &&
        mc_store_open(e->cfg.store_sqlite, &ckp.s, &ckp.err) == MC_OK &&
        (c.ckpt = bind_socket(zctx, ZMQ_PUSH, EP_CHECKPOINT, 1)) &&
        pthread_create(&kth, NULL, checkpointer_main, &ckp) == 0) {
        k_started = 1;   /* from here the thread owns ckp.s */
        mc_errdetail ce; /* ckp.err is the thread's now */
        if (mc_store_checkpoint_elsewhere(c.store, MC_STORE_WAL_HARD_PAGES, &ce) != MC_OK) {
            zmq_close(c.ckpt); /* never asked: it waits for the end of the run */
            c.ckpt = NULL;
        }
    } else {
        if (c.ckpt)
            zmq_close(c.ckpt);
        c.ckpt = NULL;
        mc_store_close(ckp.s);
        ckp.s = NULL;
    }
    c.t_start = c.t_last_print = now_ns();
    c.zctx = zctx;
    if (procs > 0) {
        int threads = pthreads;
        pids = calloc((size_t)procs, sizeof *pids);
        if (!pids) {
            rc = mc_err_set(err, MC_ERR_NOMEM, NULL, NULL, "procs");
            goto done;
        }
        for (int i = 0; i < procs; i++) {
            int cpu = e->cfg.pin_cores && ncpu > 0 ? (int)((i * threads) % ncpu) : -1;
            pid_t pid = spawn_worker(e, i, (uint32_t)i + 1, threads, signers, cpu, eps, err);
            if (pid < 0) {
                rc = err->code;
                goto done;
            }
            pids[i] = (worker_proc){.pid = pid, .id = (uint32_t)i + 1};
            atomic_fetch_add(&alive, 1);
        }
        /* the collector reaps and restarts them from here on: it starts after this (a
         * worker process needs no collector to get ready) */
        c.nprocs = procs;
        c.procs = pids;
        c.next_proc_id = (uint32_t)procs + 1;
    }
    if (pthread_create(&cth, NULL, collector_main, &c) != 0) {
        rc = mc_err_set(err, MC_ERR_INTERNAL, NULL, NULL, "cannot start the collector");
        goto done;
    }
    c_started = 1;
    if (procs == 0 &&
        (rc = workers_start(ws, e->workers, &sh, &alive, e->cfg.pin_cores ? 0 : -1, err)) != MC_OK)
        goto done;
    in.workers_alive = &alive;
    {
        int timeout_ms = 200;
        zmq_setsockopt(in.push_orders, ZMQ_SNDTIMEO, &timeout_ms, sizeof timeout_ms);
    }
    if (e->ct_on) {
        drainer.e = e;
        if (pthread_create(&dth, NULL, ct_drain_main, &drainer) == 0)
            d_started = 1;
    }
    rc = intake_run(&in, orders, &bytes_read, err);
    {
        /* Tell the collector how many orders entered, even after an intake error. */
        msgpack_packer pk;
        msgpack_sbuffer_clear(&in.sbuf);
        msgpack_packer_init(&pk, &in.sbuf, msgpack_sbuffer_write);
        msgpack_pack_uint64(&pk, in.seq);
        if (send_sbuf(in.push_results, &in.sbuf) != MC_OK && rc == MC_OK)
            rc = mc_err_set(err, MC_ERR_ZMQ, NULL, NULL, "end of intake");
    }
    pthread_join(cth, NULL);
    c_started = 0;
    /* the collector's own error first: the intake's may only be the context it ended */
    if (c.rc != MC_OK && (rc == MC_OK || rc == MC_ERR_ZMQ)) {
        rc = c.rc;
        *err = c.err;
    }
done:
    if (c_started) {
        /* intake failed before the end marker: stop the collector via the context */
        zmq_ctx_shutdown(zctx);
        pthread_join(cth, NULL);
    }
    if (d_started) {
        atomic_store(&drainer.stop, 1);
        pthread_join(dth, NULL);
        if (drainer.rc != MC_OK) /* submissions stay in the outbox; issuance is not affected */
            fprintf(stderr, "mailca: CT submission: %s\n", drainer.err.message);
    }
    if (zctx)
        zmq_ctx_shutdown(zctx); /* wakes the idle workers with ETERM */
    if (k_started) {
        pthread_join(kth, NULL);
        if (ckp.rc != MC_OK) /* the collector's commits copied the WAL instead */
            fprintf(stderr, "mailca: store checkpoint: %s\n", ckp.err.message);
    }
    for (int i = 0; pids && i < procs; i++)
        if (pids[i].pid > 0) {
            int status;
            kill(pids[i].pid, SIGTERM);
            waitpid(pids[i].pid, &status, 0);
            /* Every order was answered by now (failed ones included): a worker that ended
             * badly is reported, not turned into a failure of the run. */
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                fprintf(stderr, "mailca: worker process %d ended with %s %d\n", i,
                        WIFSIGNALED(status) ? "signal" : "status",
                        WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        }
    free(pids);
    if (ipc_dir[0])
        nftw(ipc_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    rc = workers_join(ws, e->workers, rc, err);
    if (st) {
        memset(st, 0, sizeof *st);
        st->orders = c.written;
        st->issued = c.issued;
        st->rejected = c.rejected;
        st->failed = c.failed;
        st->seconds = (double)(now_ns() - c.t_start) / 1e9;
        st->p50_ms = hist_quantile(&c, 0.50);
        st->p99_ms = hist_quantile(&c, 0.99);
        st->workers = procs > 0 ? procs * pthreads : e->workers;
        st->procs = procs;
    }
    fflush(results);
    if (run_recorded)
        audit_run_end(&c, rc, err);
    if (c.router)
        zmq_close(c.router);
    if (c.pull)
        zmq_close(c.pull);
    if (c.ckpt)
        zmq_close(c.ckpt);
    if (in.push_orders)
        zmq_close(in.push_orders);
    if (in.push_results)
        zmq_close(in.push_results);
    if (in.push_journal)
        zmq_close(in.push_journal);
    if (c.journal_pull)
        zmq_close(c.journal_pull);
    context_end(e, zctx);
    journal_free(&c);
    mc_store_close(c.store);
    while (c.waiters) {
        waiter *w = c.waiters;
        c.waiters = w->next;
        free(w->id);
        free(w);
    }
    free(c.inflight);
    free(c.aud); /* its strings went with the last flush */
    free(c.seen);
    free(ws);
    msgpack_zone_destroy(&c.zone);
    mc_arena_free(&c.arena);
    msgpack_sbuffer_destroy(&c.sbuf);
    msgpack_sbuffer_destroy(&c.rbuf);
    msgpack_sbuffer_destroy(&in.sbuf);
    return rc;
}

mc_err mc_engine_serve_worker(mc_engine *e, const mc_engine_proc *p, mc_errdetail *err)
{
    int threads = p->threads, cpu0 = p->cpu0;
    mc_err rc = MC_OK;
    sigset_t set;
    int sig = 0;
    worker_slot *ws = NULL;
    atomic_int alive = 0;
    /* SIGTERM ends the process in order; blocked here so every worker thread inherits the mask
     * and only sigwait below receives it. Die with the parent. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() == 1)
        return mc_err_set(err, MC_ERR_INTERNAL, NULL, NULL, "the engine already exited");
    void *zctx = zmq_ctx_new();
    mc_worker_shared sh =
        worker_shared(e, zctx, p->ep_orders, p->ep_intents, p->ep_results, p->signers);
    sh.proc_id = p->id;
    /* Worker processes spread their sessions over the tokens too: the first core this process
     * was given differs per process (its pid otherwise). */
    sh.hint_base = cpu0 >= 0 ? cpu0 : (int)(getpid() % 1024) * threads;
    ws = calloc((size_t)(threads > 0 ? threads : 1), sizeof *ws);
    if (!zctx || !ws) {
        rc = mc_err_set(err, MC_ERR_NOMEM, NULL, NULL, "worker process");
        goto done;
    }
    if ((rc = workers_start(ws, threads, &sh, &alive, cpu0, err)) != MC_OK)
        goto done;
    sigwait(&set, &sig);
done:
    if (zctx)
        zmq_ctx_shutdown(zctx);
    rc = workers_join(ws, threads, rc, err);
    free(ws);
    context_end(e, zctx);
    return rc;
}
