/*
 * mc_hsmpool: the issuing key on several tokens, with failover (contract in
 * include/mailca/hsmpool.h). The shared state is per-token atomics, written on failures and read
 * when a session is (re)opened; a good signature writes a token's atomics only when it ends a
 * run of failures, so the signing path of healthy tokens touches no shared cache line but the
 * signature counter.
 */
#include "mailca/hsmpool.h"

#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct token {
    mc_hsm *h;
    atomic_uint_fast64_t signatures, failures, hangs;
    atomic_uint consecutive, times_out;
    atomic_int_fast64_t out_until_ms; /* 0: in service */
} token;

struct mc_hsmpool {
    token t[MC_HSMPOOL_TOKENS_MAX];
    size_t n;
    atomic_int hung; /* abandoned calls still inside a module (mc_hsmpool_hang_begin) */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

size_t mc_hsmpool_tokens(const mc_hsmpool *p)
{
    return p->n;
}

void mc_hsmpool_set_pin_source(mc_hsmpool *p, mc_hsm_pin_fn fn, void *arg)
{
    for (size_t i = 0; i < p->n; i++)
        mc_hsm_set_pin_source(p->t[i].h, fn, arg);
}

mc_hsm *mc_hsmpool_hsm(mc_hsmpool *p, size_t i)
{
    return i < p->n ? p->t[i].h : NULL;
}

void mc_hsmpool_close(mc_hsmpool *p)
{
    if (!p)
        return;
    /* A thread still blocked in C_Sign would come back into a finalized module and freed
     * memory: then the pool is left as it is for the process's exit (deliberately not freed). */
    int hung = mc_hsmpool_hung_wait(p, 2000);
    if (hung > 0) {
        fprintf(stderr,
                "mailca: %d HSM call(s) abandoned after their deadline have not returned; the "
                "PKCS#11 module is left loaded until the process exits\n",
                hung);
        return;
    }
    for (size_t i = 0; i < p->n; i++)
        mc_hsm_close(p->t[i].h);
    free(p);
}

mc_err mc_hsmpool_open(const char *module, const char *uris, const char *pin, mc_hsmpool **out,
                       mc_errdetail *err)
{
    mc_err rc = MC_OK;
    mc_hsmpool *p = calloc(1, sizeof *p);
    char *list = uris ? strdup(uris) : NULL;
    *out = NULL;
    if (!p || !list) {
        rc = mc_err_set(err, uris ? MC_ERR_NOMEM : MC_ERR_CONFIG, "hsm.key", NULL,
                        uris ? "out of memory" : "no pkcs11 key URI configured");
        goto done;
    }
    char *save = NULL;
    for (char *u = strtok_r(list, " \t\r\n", &save); u; u = strtok_r(NULL, " \t\r\n", &save)) {
        if (p->n == MC_HSMPOOL_TOKENS_MAX) {
            rc = mc_err_set(err, MC_ERR_CONFIG, "hsm.key", NULL, "more than %d key URIs",
                            MC_HSMPOOL_TOKENS_MAX);
            goto done;
        }
        /* a URI's own module-path names its module (tokens on different HSMs' modules) */
        mc_hsm_config hc = {
            .module = strstr(u, "module-path=") ? NULL : module, .key_uri = u, .pin = pin};
        if ((rc = mc_hsm_open(&hc, &p->t[p->n].h, err)) != MC_OK)
            goto done;
        p->n++;
        /* Any token may sign any certificate: they must hold the issuing CA's one key. */
        mc_bytes a = mc_hsm_spki(p->t[0].h), b = mc_hsm_spki(p->t[p->n - 1].h);
        if (a.len != b.len || memcmp(a.p, b.p, a.len) != 0) {
            rc = mc_err_set(err, MC_ERR_CONFIG, "hsm.key", NULL,
                            "the key on the token with%s is not the key on the token with%s: "
                            "every URI of hsm.key must name the same key",
                            mc_hsm_token_desc(p->t[p->n - 1].h), mc_hsm_token_desc(p->t[0].h));
            goto done;
        }
    }
    if (p->n == 0) {
        rc = mc_err_set(err, MC_ERR_CONFIG, "hsm.key", NULL, "no pkcs11 key URI configured");
        goto done;
    }
    *out = p;
    p = NULL;
done:
    mc_hsmpool_close(p);
    free(list);
    return rc;
}

/* A failed operation on token i: after MC_HSMPOOL_FAILS_OUT in a row (or at once when the
 * device itself is lost) the token is out for a back-off that doubles each time it is taken out
 * (bounded). */
static void token_failed(token *t, int device_lost)
{
    atomic_fetch_add_explicit(&t->failures, 1, memory_order_relaxed);
    unsigned c = atomic_fetch_add(&t->consecutive, 1) + 1;
    if ((c < MC_HSMPOOL_FAILS_OUT && !device_lost) || atomic_load(&t->out_until_ms) > now_ms())
        return;
    unsigned k = atomic_fetch_add(&t->times_out, 1);
    int64_t backoff = MC_HSMPOOL_BACKOFF_MIN_MS;
    while (k-- > 0 && backoff < MC_HSMPOOL_BACKOFF_MAX_MS)
        backoff *= 2;
    if (backoff > MC_HSMPOOL_BACKOFF_MAX_MS)
        backoff = MC_HSMPOOL_BACKOFF_MAX_MS;
    atomic_store(&t->out_until_ms, now_ms() + backoff);
}

static void token_ok(token *t)
{
    atomic_fetch_add_explicit(&t->signatures, 1, memory_order_relaxed);
    /* Written only when it ends a run of failures: the common case reads and moves on. */
    if (atomic_load_explicit(&t->consecutive, memory_order_relaxed) != 0) {
        atomic_store(&t->consecutive, 0);
        atomic_store(&t->out_until_ms, 0);
    }
}

/* The order in which to try tokens for a new session: the hint's token first, then the others
 * in service, then those backing off, soonest back first (probes). Returns how many. */
static size_t token_order(mc_hsmpool *p, int hint, size_t *order)
{
    int64_t now = now_ms();
    size_t k = 0, start = (size_t)(hint < 0 ? 0 : hint) % p->n;
    for (size_t j = 0; j < p->n; j++) {
        size_t i = (start + j) % p->n;
        if (atomic_load(&p->t[i].out_until_ms) <= now)
            order[k++] = i;
    }
    size_t in_service = k;
    for (size_t j = 0; j < p->n; j++) {
        size_t i = (start + j) % p->n;
        if (atomic_load(&p->t[i].out_until_ms) > now)
            order[k++] = i;
    }
    /* the tokens out of service, soonest back first (n is small: insertion sort) */
    for (size_t a = in_service + 1; a < k; a++)
        for (size_t b = a; b > in_service && atomic_load(&p->t[order[b]].out_until_ms) <
                                                 atomic_load(&p->t[order[b - 1]].out_until_ms);
             b--) {
            size_t x = order[b];
            order[b] = order[b - 1];
            order[b - 1] = x;
        }
    return k;
}

mc_err mc_hsmpool_session_open(mc_hsmpool *p, int hint, mc_hsmpool_session *ps, mc_errdetail *err)
{
    size_t order[MC_HSMPOOL_TOKENS_MAX];
    size_t k = token_order(p, hint, order);
    mc_err rc = MC_ERR_HSM;
    ps->s = NULL;
    ps->hint = hint;
    ps->home = (int)((size_t)(hint < 0 ? 0 : hint) % p->n);
    ps->probe_ms = 0;
    for (size_t j = 0; j < k; j++) {
        token *t = &p->t[order[j]];
        rc = mc_hsm_session_open(t->h, &ps->s, err);
        if (rc == MC_OK) {
            ps->token = (int)order[j];
            return MC_OK;
        }
        token_failed(t, 0);
        if (rc == MC_ERR_HSM_FATAL || rc == MC_ERR_NOMEM)
            return rc;
    }
    return rc;
}

void mc_hsmpool_session_close(mc_hsmpool *p, mc_hsmpool_session *ps)
{
    (void)p;
    mc_hsm_session_close(ps->s);
    ps->s = NULL;
}

mc_err mc_hsmpool_sign(mc_hsmpool *p, mc_hsmpool_session *ps, mc_sigalg alg, const uint8_t *in,
                       size_t inlen, uint8_t *sig, size_t *siglen, mc_errdetail *err)
{
    size_t cap = *siglen;
    mc_err rc = MC_ERR_HSM;
    if (ps->s && ps->token != ps->home) {
        /* failed over: go home once the home token's back-off is over (at most one try per
         * MC_HSMPOOL_BACKOFF_MIN_MS, so a dead home costs one session open now and then) */
        int64_t now = now_ms();
        if (now >= ps->probe_ms && atomic_load(&p->t[ps->home].out_until_ms) <= now) {
            mc_hsm_session *hs = NULL;
            mc_errdetail perr;
            ps->probe_ms = now + MC_HSMPOOL_BACKOFF_MIN_MS;
            if (mc_hsm_session_open(p->t[ps->home].h, &hs, &perr) == MC_OK) {
                mc_hsm_session_close(ps->s);
                ps->s = hs;
                ps->token = ps->home;
            } else {
                token_failed(&p->t[ps->home], 0);
            }
        }
    }
    for (size_t attempt = 0; attempt < p->n + 2; attempt++) {
        if (!ps->s) {
            int home = ps->home;
            int64_t probe = ps->probe_ms;
            rc = mc_hsmpool_session_open(p, ps->hint, ps, err);
            ps->home = home; /* a reopen after a failure keeps the worker's home */
            ps->probe_ms = probe;
            if (rc != MC_OK)
                return rc;
        }
        token *t = &p->t[ps->token];
        *siglen = cap;
        rc = mc_hsm_sign(ps->s, alg, in, inlen, sig, siglen, err);
        if (rc == MC_OK) {
            token_ok(t);
            return MC_OK;
        }
        if (rc != MC_ERR_HSM_SESSION && rc != MC_ERR_HSM)
            return rc; /* fatal: the same answer anywhere */
        /* Count it against the token and sign the same input again on a fresh session (the
         * next open prefers another token once this one is out). */
        token_failed(t, mc_hsm_session_device_lost(ps->s));
        mc_hsmpool_session_close(p, ps);
        ps->hint = ps->token + 1; /* after a failure, start looking at the next token */
    }
    return rc;
}

void mc_hsmpool_hang_begin(mc_hsmpool *p, int tok)
{
    atomic_fetch_add(&p->hung, 1);
    if (tok >= 0 && (size_t)tok < p->n) {
        atomic_fetch_add_explicit(&p->t[tok].hangs, 1, memory_order_relaxed);
        token_failed(&p->t[tok], 0);
    }
}

void mc_hsmpool_hang_end(mc_hsmpool *p)
{
    atomic_fetch_sub(&p->hung, 1);
}

int mc_hsmpool_hung(mc_hsmpool *p)
{
    return atomic_load(&p->hung);
}

int mc_hsmpool_hung_wait(mc_hsmpool *p, int ms)
{
    int64_t end = now_ms() + ms;
    int n;
    while ((n = atomic_load(&p->hung)) > 0 && now_ms() < end)
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    return n;
}

mc_err mc_hsmpool_health_get(mc_hsmpool *p, size_t i, mc_hsmpool_health *out)
{
    memset(out, 0, sizeof *out);
    if (i >= p->n)
        return MC_ERR_INVALID;
    token *t = &p->t[i];
    snprintf(out->name, sizeof out->name, "%s", mc_hsm_token_desc(t->h));
    int64_t until = atomic_load(&t->out_until_ms);
    out->in_service = until <= now_ms();
    out->out_until_ms = out->in_service ? 0 : until;
    out->signatures = atomic_load(&t->signatures);
    out->failures = atomic_load(&t->failures);
    out->consecutive = atomic_load(&t->consecutive);
    out->times_out = atomic_load(&t->times_out);
    out->hangs = atomic_load(&t->hangs);
    return MC_OK;
}
