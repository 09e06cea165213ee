/*
 * mc_worker: what runs on a worker thread. It pulls orders, builds and lints each TBS from the
 * compiled profile, has the collector record the intents of the batch, signs through its own
 * PKCS#11 session and pushes the results. It shares nothing mutable with other threads: all it
 * reads of the engine is immutable after start, and it talks only through its three sockets, so
 * the same code can run in a separate process over ipc://.
 */
#ifndef MAILCA_WORKER_H
#define MAILCA_WORKER_H

#include "mailca/crypto.h"
#include "mailca/err.h"
#include "mailca/hsmpool.h"
#include "mailca/issuer.h"
#include "mailca/profile.h"

typedef struct mc_worker_shared {
    const mc_profile_set *profiles;
    const mc_issuer *issuer;
    const mc_digests *digests;
    mc_hsmpool *pool; /* sessions come from here (failover over the tokens) */
    int hint_base;    /* spreads the workers' sessions over the tokens (worker processes differ) */
    struct mc_caa_ctx *caa;         /* NULL: CAA checks off (config caa.enabled) */
    const struct mc_weakkeys *weak_keys; /* NULL: no known-weak key list (SBR 6.1.1.3 item 5) */
    const char *account_uri_prefix; /* accounturi = prefix + account (RFC 8657) */
    void *zctx;                     /* ZeroMQ context */
    const char *ep_orders;          /* PULL from here */
    const char *ep_intents;         /* DEALER to here */
    const char *ep_results;         /* PUSH to here */
    int batch;                      /* orders per batch (one intent transaction) */
    int lint;                       /* 0 only in the bench's lint-cost comparison */
    const char *lint_enforced_set;  /* mc_lint_ctx.enforced_set (config lint.enforced_set) */
    const char *lint_enforced;      /* recorded with each intent: mc_lint_set_effective of
                                       lint_enforced_set, NULL when lint is off (resolved once) */
    int signers;         /* 0: the worker signs on its own session; N: N signer threads per worker,
                            each with its own session, keep N C_Sign calls in flight */
    int sign_timeout_ms; /* deadline of one C_Sign with signer threads (0: none) */
    uint32_t proc_id;    /* worker processes: this process's number in the run (routing id) */
} mc_worker_shared;

/* Most orders in one worker batch (engine.batch; job ids keep the index in 16 bits). */
#define MC_WORKER_BATCH_MAX 4096
/* Abandoned (hung) C_Sign calls after which a retired signer is no longer replaced: a token
 * that hangs every call would otherwise cost a thread per deadline. */
#define MC_WORKER_HUNG_MAX 64

typedef struct mc_worker {
    const mc_worker_shared *sh;
    int index;
    int cpu;   /* core to pin to, -1 for none */
    mc_err rc; /* why the worker stopped, MC_OK on a normal shutdown */
    mc_errdetail err;
} mc_worker;

/* Thread entry (arg: mc_worker*). Returns when the ZeroMQ context is shut down. */
void *mc_worker_main(void *arg);

#endif
