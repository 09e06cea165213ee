/*
 * mc_hsmpool: the issuing key on one or more tokens (HSMs, partitions or slots holding the same
 * key), with failover. Workers open their sessions through the pool, which spreads them over the
 * tokens; a signature that fails for a session or device reason is retried on a healthy session
 * (the SAME input, so a retry re-signs the same TBS under the same serial), and a token that
 * keeps failing is taken out for a back-off period, then probed again by the next session that
 * needs one, and put back by its first good signature.
 *
 * Health lives in per-token atomics: the signing path takes no lock (a session belongs to one
 * thread; the pool's shared state is counters and times). The tokens are checked at open to hold
 * the same key (same SubjectPublicKeyInfo), so any of them signs for the issuing certificate.
 */
#ifndef MAILCA_HSMPOOL_H
#define MAILCA_HSMPOOL_H

#include "mailca/alg.h"
#include "mailca/err.h"
#include "mailca/hsm.h"

#include <stddef.h>
#include <stdint.h>

typedef struct mc_hsmpool mc_hsmpool;

#define MC_HSMPOOL_TOKENS_MAX 16
/* Consecutive failed operations that take a token out, and its back-off bounds. */
#define MC_HSMPOOL_FAILS_OUT 3
#define MC_HSMPOOL_BACKOFF_MIN_MS 500
#define MC_HSMPOOL_BACKOFF_MAX_MS 30000

/* A worker's session: on one token of the pool at a time. */
typedef struct mc_hsmpool_session {
    mc_hsm_session *s; /* NULL after a failure until the next sign reopens one */
    int token;         /* index of the token s is on */
    int hint;          /* where to look first for the next session */
    int home;          /* the worker's own token (hint at open): after a failover the session
                          goes back to it once its back-off is over (a probe) */
    int64_t probe_ms;  /* earliest time of the next probe of home */
} mc_hsmpool_session;

/* Opens every key URI (one mc_hsm each; cfg's module and PIN apply to all, a URI's module-path
 * overrides the module) and checks they hold the same key. uris: whitespace-separated pkcs11:
 * URIs (at most MC_HSMPOOL_TOKENS_MAX). MC_ERR_CONFIG when a token holds another key (naming
 * it). Caller frees with mc_hsmpool_close. */
mc_err mc_hsmpool_open(const char *module, const char *uris, const char *pin, mc_hsmpool **out,
                       mc_errdetail *err);
void mc_hsmpool_close(mc_hsmpool *p);

size_t mc_hsmpool_tokens(const mc_hsmpool *p);

/* mc_hsm_set_pin_source on every token: sessions opened after a token lost its login (a reset,
 * an HSM reboot) log in again instead of failing. */
void mc_hsmpool_set_pin_source(mc_hsmpool *p, mc_hsm_pin_fn fn, void *arg);
/* Token i's mc_hsm (owned by the pool): the key's type and SPKI are the same on every token. */
mc_hsm *mc_hsmpool_hsm(mc_hsmpool *p, size_t i);

/* Opens a session for a worker: on token (hint mod tokens) when it is in service, else on the
 * next one that is, else on the token whose back-off ends first (a probe). ps->s stays NULL on
 * failure (every token refused a session). Thread-safe. */
mc_err mc_hsmpool_session_open(mc_hsmpool *p, int hint, mc_hsmpool_session *ps, mc_errdetail *err);
void mc_hsmpool_session_close(mc_hsmpool *p, mc_hsmpool_session *ps);

/* mc_hsm_sign on the worker's session, with failover: MC_ERR_HSM_SESSION or MC_ERR_HSM counts
 * against the token (a device-level code, mc_hsm_session_device_lost, takes it out at once), the
 * session is replaced by one on a healthy token (the same one if it is still in service) and the
 * same input signed again, up to tokens + 2 attempts. MC_ERR_HSM_FATAL is returned at once.
 * A session that failed over moves back to its home token when that token's back-off is over
 * (the signature then is the probe: good puts the token back in service, bad takes it out for
 * twice as long). Not thread-safe per session. */
mc_err mc_hsmpool_sign(mc_hsmpool *p, mc_hsmpool_session *ps, mc_sigalg alg, const uint8_t *in,
                       size_t inlen, uint8_t *sig, size_t *siglen, mc_errdetail *err);

/* A C_Sign that did not answer within its deadline (hsm.sign_timeout_ms). PKCS#11 has no way to
 * cancel a call, so the caller abandons the thread blocked in it and signs the same input on
 * another session: mc_hsmpool_hang_begin counts the hang as a failure of the token (the session
 * was on token, -1 when unknown) and the call as abandoned; the abandoned thread calls
 * mc_hsmpool_hang_end as the last thing it does once the call returns (it must not touch the
 * pool afterwards). mc_hsmpool_hung says how many abandoned calls have not returned yet: while
 * any has not, the module must not be finalized (mc_hsmpool_close waits a little, then leaves
 * the pool and its modules to the process's exit). Thread-safe. */
void mc_hsmpool_hang_begin(mc_hsmpool *p, int token);
void mc_hsmpool_hang_end(mc_hsmpool *p);
int mc_hsmpool_hung(mc_hsmpool *p);
/* Waits up to ms milliseconds for every abandoned call to return; returns how many still hang. */
int mc_hsmpool_hung_wait(mc_hsmpool *p, int ms);

/* One token's health, for `mailca status` and the run summary. */
typedef struct mc_hsmpool_health {
    char name[160];       /* " token=.. serial=.." as the URI named it */
    int in_service;       /* 0 while backing off after MC_HSMPOOL_FAILS_OUT failures */
    uint64_t signatures;  /* good signatures */
    uint64_t failures;    /* failed operations (sign or session open) */
    uint32_t consecutive; /* failures since the last good signature */
    int64_t out_until_ms; /* end of the back-off (CLOCK_MONOTONIC ms), 0 when in service */
    uint32_t times_out;   /* how often it was taken out */
    uint64_t hangs;       /* C_Sign calls abandoned after their deadline */
} mc_hsmpool_health;

/* A snapshot of token i's health. MC_ERR_INVALID for a bad index. */
mc_err mc_hsmpool_health_get(mc_hsmpool *p, size_t i, mc_hsmpool_health *out);

#endif
