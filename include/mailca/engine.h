/*
 * mc_engine: the pipeline, the same for `mailca batch`, the bench harness and (later) the daemon.
 *
 *   intake (calling thread) --PUSH--> workers (threads pinned to cores) --PUSH--> collector
 *        |                              ^   DEALER/ROUTER: intents, before signing  |
 *        +----------- rejections -------------------------------------------------->+
 *
 * The collector owns storage (SQLite) and the results stream: it records each batch's intents
 * before the worker may sign, records the certificates after, and only then writes results.
 * Every order that enters yields exactly one result.
 */
#ifndef MAILCA_ENGINE_H
#define MAILCA_ENGINE_H

#include "mailca/config.h"
#include "mailca/err.h"

#include <stdint.h>
#include <stdio.h>

typedef struct mc_engine mc_engine;

typedef struct mc_engine_opts {
    int workers;        /* 0: from the config, else one per core */
    int batch;          /* 0: from the config */
    int no_lint;        /* bench only: measure the cost of inline lint */
    int progress;       /* 1: progress line on stderr when it is a terminal */
    int procs;          /* MC_ENGINE_PROCS_CONFIG (-1): from the config; MC_ENGINE_PROCS_AUTO (-2):
                           mc_engine_auto_procs; 0: worker threads; N: N worker processes (each loads
                           the PKCS#11 module itself: a module's process-wide locks decide the
                           ceiling, DESIGN.md) with `workers` threads each (0 = 1) */
    int sessions;       /* 0: from the config (engine.sessions): signing sessions in flight */
    int worker_process; /* 1: `mailca worker`, started by an engine that already printed its
                           start notices (lint.enforced_set): not repeated per process */
} mc_engine_opts;

#define MC_ENGINE_PROCS_CONFIG (-1)
#define MC_ENGINE_PROCS_AUTO (-2) /* engine.procs: auto in the config is -1 there */

/* engine.procs: auto. The worker processes for a PKCS#11 library (its C_GetInfo manufacturerID),
 * `cores` cores and `sessions` signing sessions in flight (0 = one per core): 0 (threads) but
 * for SoftHSM2, whose process-wide locks cap one process (DESIGN.md): there one process per
 * core when there are 4 cores or more, or more sessions in flight than cores. */
int mc_engine_auto_procs(const char *manufacturer, int cores, int sessions);

typedef struct mc_run_stats {
    uint64_t orders, issued, rejected, failed;
    double seconds;        /* first order read to last result written */
    double p50_ms, p99_ms; /* per-order latency, intake to result */
    int workers;
    int procs; /* worker processes (0: the workers were threads of the engine) */
} mc_run_stats;

/* Loads the issuer certificate, the profiles, fetches digests and opens the HSM (PIN from the
 * configured file or environment). Caller frees with mc_engine_close. */
mc_err mc_engine_open(const mc_config *cfg, const mc_engine_opts *opts, mc_engine **out,
                      mc_errdetail *err);
void mc_engine_close(mc_engine *e);

/* Runs one batch: orders is a stream of msgpack maps, results receives one msgpack map per
 * order. orders_size (bytes, 0 if unknown) feeds the ETA. */
mc_err mc_engine_run(mc_engine *e, FILE *orders, uint64_t orders_size, FILE *results,
                     mc_run_stats *st, mc_errdetail *err);

/* A worker process's part in a run, from `mailca worker`'s arguments (mc_engine_run). */
typedef struct mc_engine_proc {
    const char *ep_orders, *ep_intents, *ep_results; /* the parent's ipc:// endpoints */
    int threads;                                     /* workers in this process */
    int signers; /* signer threads per worker (<= 1: each worker signs on its own session) */
    int cpu0;    /* first core to pin to, -1 none */
    uint32_t id; /* this process's number in the run (1, 2, ...; a restart gets a new one): the
                  * collector names the owner of each intent by it, since pids can be reused */
} mc_engine_proc;

/* The body of a worker process (`mailca worker`, started by mc_engine_run with procs > 0):
 * runs p->threads workers on the engine's profiles, issuer and HSM, connected to the parent's
 * ipc:// endpoints, until SIGTERM (or the parent's death). */
mc_err mc_engine_serve_worker(mc_engine *e, const mc_engine_proc *p, mc_errdetail *err);

/* Intents recorded by an earlier run that never got a certificate (for the start-up report). */
mc_err mc_engine_pending(mc_engine *e, int64_t *pending, int64_t *certs, mc_errdetail *err);

/* The CAA counters of the engine's runs so far (mc_caa_stats_get); all zero when CAA checks are
 * off. */
struct mc_caa_stats;
void mc_engine_caa_stats(mc_engine *e, struct mc_caa_stats *out);

/* The tokens of the engine's HSM pool (hsm.key may name several holding the same key) and a
 * snapshot of token i's health (mc_hsmpool_health_get). With worker processes, each process has
 * its own pool: these are the engine process's. */
struct mc_hsmpool_health;
size_t mc_engine_tokens(mc_engine *e);
mc_err mc_engine_token_health(mc_engine *e, size_t i, struct mc_hsmpool_health *out);

/* The HSM and issuer the engine uses (bench baseline). */
struct mc_hsm *mc_engine_hsm(mc_engine *e);
int mc_engine_sigalg(const mc_engine *e);

#endif
