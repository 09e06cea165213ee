/*
 * The worker thread: pull a batch of orders, build + lint each TBS, have the collector record the
 * batch's intents (one transaction) before anything is signed, sign each TBS on this worker's own
 * PKCS#11 session, push the results. Per-order memory comes from the worker's arena and
 * msgpack zone, both reset after each batch: no malloc per certificate.
 */
#include "mailca/worker.h"

#include "mailca/caa.h"
#include "mailca/config.h"
#include "mailca/evidence.h"
#include "mailca/keycheck.h"
#include "mailca/lint.h"
#include "mailca/order.h"
#include "mailca/result.h"
#include "mailca/tbs.h"
#include "mailca/wire.h"
#include "mailca/x509.h"

#include <errno.h>
#include <stdatomic.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

/* Room for a signature: RSA up to 8192 bits; ECDSA and EdDSA are far smaller. */
#define MC_SIG_MAX 1024

typedef struct item {
    zmq_msg_t msg;
    int have_msg;
    uint64_t seq, t0;
    mc_order order;
    const mc_profile *prof;
    int ok;     /* passed every check: has an intent */
    int action; /* collector verdict */
    mc_errdetail err;
    mc_status status;
    uint8_t serial[MC_SERIAL_LEN];
    uint8_t *tbs;
    size_t tbs_len;
    uint8_t tbs_hash[32];
    uint8_t
        spki_hash[32]; /* SHA-256 of the subject key's SPKI: the store binds it to the account */
    int64_t nb, na;
    const char *warnings;
    const char *caa; /* CAA results of the mailbox domains, a JSON array (NULL: not checked) */
    mc_wire_intent wi;
    /* signing: the TBS to sign (built now, or an earlier run's), and its signature */
    const uint8_t *stbs;
    size_t stbs_len;
    uint8_t *sig; /* MC_SIG_MAX bytes from the batch arena */
    size_t sig_len;
    /* with signer threads: the input handed to them (digest or TBS), the job carrying it now
     * (0: none), the signer it is with, and the attempts that exceeded the deadline */
    const uint8_t *sin;
    size_t sin_len;
    uint8_t din[EVP_MAX_MD_SIZE];
    uint64_t job;
    struct signer *signer;
    int attempts;
    /* result */
    const uint8_t *res_serial;
    size_t res_serial_len;
    uint8_t *cert;
    size_t cert_len;
} item;

/* One batch of orders and the memory its orders use. A worker has three (mc_worker_main): one
 * being prepared, one whose intents the collector is recording, one being signed. */
typedef struct wbatch {
    item *items;
    size_t n;          /* orders in the batch */
    size_t k;          /* of which have an intent awaiting a verdict */
    size_t sent;       /* items handed to the signers, awaited by sign_collect */
    size_t taken;      /* answers received for it */
    uint64_t start_us; /* when its jobs were handed out */
    mc_arena arena;
    msgpack_zone zone;
    int zone_ok;
} wbatch;

/* A signer thread of a worker: its own PKCS#11 session (opened by the thread); jobs arrive by
 * value on its own PULL socket and answers leave by value on the worker's `done` socket, so the
 * thread touches nothing of the worker's batches. The fields below `state` are the worker's. */
/* A job's key names its item: the batch's slot in wctx.b (2 bits) and the item's index in it
 * (16 bits). Two batches can be with the signers at once (mc_worker_main), so an answer must say
 * which one it belongs to. */
#define JOB_KEY(slot, idx) ((size_t)(slot) << 16 | (size_t)(idx))
#define JOB_SLOT(key) ((size_t)(key) >> 16)
#define JOB_IDX(key) ((size_t)(key)&0xffff)
#define JOB_KEY_BITS 18
/* A signer's queue holds at most the items of the two batches with the signers. */
#define FIFO_CAP(batch) (2 * (size_t)(batch))

enum { SG_RUNNING, SG_RETIRED, SG_EXITED };
typedef struct signer {
    const mc_worker_shared *sh;
    int hint, replacement;
    char ep_jobs[64], ep_done[64];
    atomic_int state; /* SG_*: retired = abandoned after a deadline; exchanged at thread exit */
    atomic_int token; /* the token its session is on (-1: none), for the hang's accounting */
    /* worker side */
    void *jobs; /* PUSH end of ep_jobs */
    pthread_t th;
    int started;
    size_t *fifo; /* the jobs it holds, in order, as job keys (JOB_KEY); FIFO_CAP(batch) */
    size_t fhead, fcount;
    uint64_t head_ms; /* when the job at the head of fifo started (the deadline's origin) */
} signer;

typedef struct wctx {
    mc_worker *w;
    const mc_worker_shared *sh;
    void *pull, *dealer, *push;
    mc_hsmpool_session sess; /* inline signing (no signer threads) */
    signer **signers;        /* nsigners slots; NULL: retired, no replacement */
    int nsigners;
    unsigned rr, spawned; /* round robin over the slots; signers started so far */
    uint64_t jobseq;
    int hung;   /* signers this worker abandoned */
    void *done; /* PULL: answers from the signers */
    char ep_done[64];
    EVP_MD_CTX *md;
    mc_csr_ctx csr;
    int csr_ok;
    msgpack_sbuffer sbuf;
    wbatch b[3];
    mc_caa_result caa_res;         /* scratch for one CAA check */
    char caa_buf[MC_CAA_JSON_MAX]; /* scratch for its JSON */
} wctx;

static const char *arena_strdup(mc_arena *a, const char *p, size_t n)
{
    char *s = mc_arena_alloc(a, n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

/* Appends s as a JSON string body (escaped) to buf; returns the new length or cap on overflow. */
static size_t json_str(char *buf, size_t o, size_t cap, const char *s, size_t n)
{
    for (size_t i = 0; i < n && o + 7 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c < 0x20) {
            o += (size_t)snprintf(buf + o, cap - o, "\\u%04x", c);
        } else {
            buf[o++] = (char)c;
        }
    }
    return o;
}

static const char *method_name(mc_vmethod m)
{
    switch (m) {
    case MC_VM_DOMAIN:
        return "3.2.2.1";
    case MC_VM_EMAIL:
        return "3.2.2.2";
    case MC_VM_SMTP:
        return "3.2.2.3";
    case MC_VM_ACME:
        return "3.2.2.4";
    }
    return "?";
}

/* The validation evidence and the key's origin, recorded with the intent (provenance for
 * incident response): {"mailboxes":[{address, method, validated_at, reference}...],
 * "key":{"form":"csr"} or {"form":"public_key","source":...}}. */
/* Appends formatted text at buf[n], never past cap; returns the new length (cap - 1 at most). */
static size_t put(char *buf, size_t n, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static size_t put(char *buf, size_t n, size_t cap, const char *fmt, ...)
{
    if (n + 1 >= cap)
        return n;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf + n, cap - n, fmt, ap);
    va_end(ap);
    if (w < 0)
        return n;
    return n + (size_t)w < cap ? n + (size_t)w : cap - 1;
}

static const char *evidence_json(mc_arena *a, const mc_order *o, const char *caa)
{
    size_t cap = 320 + 2 * o->key_source.len + (caa ? strlen(caa) + 16 : 24) +
                 o->n_mailboxes * (MC_MAILBOX_MAX * 2 + MC_ORDER_REFERENCE_MAX * 2 + 96) +
                 (o->lei.value.len ? MC_ORDER_REFERENCE_MAX * 2 + 192 : 0) +
                 (o->lei_role.value.len ? (MC_LEI_ROLE_MAX + MC_ORDER_REFERENCE_MAX) * 2 + 96 : 0) +
                 2 * (MC_ORDER_REFERENCE_MAX * 2 + 96);
    char *buf = mc_arena_alloc(a, cap);
    if (!buf)
        return NULL;
    size_t n = put(buf, 0, cap, "{\"mailboxes\":[");
    for (size_t i = 0; i < o->n_mailboxes; i++) {
        const mc_mailbox *m = &o->mailboxes[i];
        n = put(buf, n, cap, "%s{\"address\":\"", i ? "," : "");
        n = json_str(buf, n, cap, m->address.p, m->address.len);
        n = put(buf, n, cap, "\",\"method\":\"%s\",\"validated_at\":%lld,\"reference\":\"",
                method_name(m->method), (long long)m->validated_at);
        n = json_str(buf, n, cap, m->reference.p, m->reference.len);
        n = put(buf, n, cap, "\"}");
    }
    if (o->public_key) {
        n = put(buf, n, cap, "],\"key\":{\"form\":\"public_key\",\"source\":\"");
        n = json_str(buf, n, cap, o->key_source.p, o->key_source.len);
        n = put(buf, n, cap, "\"}");
    } else {
        n = put(buf, n, cap, "],\"key\":{\"form\":\"csr\"}");
    }
    /* SBR 7.1.2.3(l), 3.2.3.2.1: the GLEIF record the CA verified (mc_order_decode accepts only
     * these three states, so they are written as constants); the role's assignment evidence */
    if (o->lei.value.len) {
        n = put(buf, n, cap,
                ",\"lei\":{\"value\":\"%.*s\",\"registration_status\":\"ISSUED\","
                "\"entity_status\":\"ACTIVE\",\"validation_sources\":\"FULLY_CORROBORATED\","
                "\"verified_at\":%lld,\"reference\":\"",
                (int)o->lei.value.len, o->lei.value.p, (long long)o->lei.verified_at);
        n = json_str(buf, n, cap, o->lei.reference.p, o->lei.reference.len);
        n = put(buf, n, cap, "\"}");
    }
    if (o->lei_role.value.len) {
        n = put(buf, n, cap, ",\"lei_role\":{\"value\":\"");
        n = json_str(buf, n, cap, o->lei_role.value.p, o->lei_role.value.len);
        n = put(buf, n, cap, "\",\"verified_at\":%lld,\"reference\":\"",
                (long long)o->lei_role.verified_at);
        n = json_str(buf, n, cap, o->lei_role.reference.p, o->lei_role.reference.len);
        n = put(buf, n, cap, "\"}");
    }
    /* SBR 3.2.3, 3.2.4, 4.2.1: the identity validations relied on */
    const mc_identity_evidence *idv[2] = {&o->id_org, &o->id_individual};
    static const char *const idk[2] = {"organization", "individual"};
    int first = 1;
    for (int k = 0; k < 2; k++) {
        if (!idv[k]->validated_at)
            continue;
        n = put(buf, n, cap, "%s\"%s\":{\"validated_at\":%lld,\"reference\":\"",
                first ? ",\"identity\":{" : ",", idk[k], (long long)idv[k]->validated_at);
        n = json_str(buf, n, cap, idv[k]->reference.p, idv[k]->reference.len);
        n = put(buf, n, cap, "\"}");
        first = 0;
    }
    if (!first)
        n = put(buf, n, cap, "}");
    /* SBR 4.2.2.1: the CAA result per mailbox domain (records seen, decision, time, resolver);
     * with CAA off (caa.enabled false) the record says so, so that an incident query finds every
     * certificate issued without a CAA check */
    if (caa)
        n = put(buf, n, cap, ",\"caa\":%s", caa);
    else
        n = put(buf, n, cap, ",\"caa_checked\":false");
    put(buf, n, cap, "}");
    return buf;
}

static const char *mailbox_list(mc_arena *a, const mc_order *o)
{
    size_t cap = o->n_mailboxes * (MC_MAILBOX_MAX + 1) + 1;
    char *buf = mc_arena_alloc(a, cap), *p = buf;
    if (!buf)
        return NULL;
    for (size_t i = 0; i < o->n_mailboxes; i++) {
        if (i)
            *p++ = ',';
        memcpy(p, o->mailboxes[i].address.p, o->mailboxes[i].address.len);
        p += o->mailboxes[i].address.len;
    }
    *p = '\0';
    return buf;
}

/* SBR 4.2.2.1: CAA for the domain of every mailbox, with the account binding and the validation
 * method of RFC 8657. A refusal rejects the order; a lookup failure fails it (retryable: fail
 * closed). The results are kept as it->caa for the certificate's provenance. */
static mc_err check_caa(wctx *c, wbatch *b, item *it, int64_t now)
{
    const mc_order *o = &it->order;
    char acct[MC_URL_MAX + MC_ORDER_ACCOUNT_MAX + 1];
    const char *pieces[MC_ORDER_MAILBOXES_MAX];
    size_t lens[MC_ORDER_MAILBOXES_MAX], total = 3;
    snprintf(acct, sizeof acct, "%s%.*s", c->sh->account_uri_prefix, (int)o->account.len,
             o->account.p);
    for (size_t i = 0; i < o->n_mailboxes; i++) {
        mc_err rc = mc_caa_check_mailbox(c->sh->caa, o, i, acct, now, &c->caa_res, &it->err);
        if (rc != MC_OK) {
            if (c->caa_res.retryable || rc == MC_ERR_DNS)
                it->status = MC_STATUS_FAILED;
            return rc;
        }
        if (mc_caa_result_json(&c->caa_res, c->caa_buf, sizeof c->caa_buf, &lens[i]) != MC_OK ||
            !(pieces[i] = mc_arena_dup(&b->arena, c->caa_buf, lens[i]))) {
            it->status = MC_STATUS_FAILED;
            return mc_err_set(&it->err, MC_ERR_NOMEM, NULL, NULL, "worker arena full");
        }
        total += lens[i] + 1;
    }
    char *json = mc_arena_alloc(&b->arena, total);
    if (!json) {
        it->status = MC_STATUS_FAILED;
        return mc_err_set(&it->err, MC_ERR_NOMEM, NULL, NULL, "worker arena full");
    }
    size_t n = 0;
    json[n++] = '[';
    for (size_t i = 0; i < o->n_mailboxes; i++) {
        if (i)
            json[n++] = ',';
        memcpy(json + n, pieces[i], lens[i]);
        n += lens[i];
    }
    json[n++] = ']';
    json[n] = '\0';
    it->caa = json;
    return MC_OK;
}

/* Decode, check, build and lint one order. On failure it->err says why. */
static void prepare(wctx *c, wbatch *b, item *it, int64_t now)
{
    const mc_worker_shared *sh = c->sh;
    mc_errdetail *err = &it->err;
    msgpack_object top;
    size_t off = 0;
    it->status = MC_STATUS_REJECTED;
    if (msgpack_unpack(zmq_msg_data(&it->msg), zmq_msg_size(&it->msg), &off, &b->zone, &top) !=
            MSGPACK_UNPACK_SUCCESS ||
        top.type != MSGPACK_OBJECT_ARRAY || top.via.array.size != 3 ||
        top.via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        top.via.array.ptr[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        it->status = MC_STATUS_FAILED;
        mc_err_set(err, MC_ERR_INTERNAL, NULL, NULL, "malformed work item from intake");
        return;
    }
    it->seq = top.via.array.ptr[0].via.u64;
    it->t0 = top.via.array.ptr[1].via.u64;
    if (mc_order_decode(&top.via.array.ptr[2], &it->order, err) != MC_OK)
        return;
    /* SBR 4.2.1: each mailbox's validation evidence within its reuse window at issuance */
    if (mc_evidence_check(&it->order, now, err) != MC_OK)
        return;
    if (sh->caa && check_caa(c, b, it, now) != MC_OK)
        return;
    if (mc_order_check_csr_ctx(&it->order, sh->digests, &c->csr, err) != MC_OK)
        return;
    it->prof = mc_profile_set_find(sh->profiles, it->order.profile.p, it->order.profile.len);
    if (!it->prof) {
        mc_err_set(err, MC_ERR_INVALID, "profile", "orders.md profile", "unknown profile '%.*s'",
                   (int)it->order.profile.len, it->order.profile.p);
        return;
    }
    if (mc_profile_check_order(it->prof, &it->order, now, err) != MC_OK)
        return;
    /* SBR 4.2.1 items 2, 3: the identity validations the certificate type rests on */
    if (mc_evidence_check_identity(&it->order, it->prof->type, now, err) != MC_OK)
        return;
    if (mc_serial_generate(it->serial) != MC_OK) {
        it->status = MC_STATUS_FAILED;
        mc_err_set(err, MC_ERR_IO, "serial", NULL, "the OS CSPRNG failed");
        return;
    }
    it->tbs = mc_arena_alloc(&b->arena, MC_TBS_MAX);
    if (!it->tbs || mc_tbs_build(it->prof, &it->order, it->serial, MC_SERIAL_LEN, now, sh->digests,
                                 c->md, it->tbs, MC_TBS_MAX, &it->tbs_len, err) != MC_OK) {
        if (!it->tbs)
            mc_err_set(err, MC_ERR_NOMEM, NULL, NULL, "worker arena full");
        return;
    }
    mc_arena_shrink(&b->arena, it->tbs, it->tbs_len);
    /* Lint exactly the bytes that will be signed (DESIGN.md, lessons). */
    mc_x509 x;
    if (mc_x509_parse_tbs(it->tbs, it->tbs_len, &x, err) != MC_OK) {
        it->status = MC_STATUS_FAILED; /* we built something we cannot parse: a bug */
        return;
    }
    it->nb = x.nb;
    it->na = x.na;
    it->warnings = "";
    if (sh->lint) {
        mc_lint_result lr;
        mc_lint_ctx lc = {.profile = it->prof,
                          .issuer = sh->issuer,
                          .now = now,
                          .enforced_set = sh->lint_enforced_set};
        mc_lint_run(&x, &lc, &lr);
        if (lr.errors) {
            for (size_t i = 0; i < lr.n; i++)
                if (lr.f[i].severity == MC_LINT_ERROR) {
                    mc_err_set(err, MC_ERR_LINT, "certificate", lr.f[i].lint->id, "%s: %s",
                               lr.f[i].lint->section, lr.f[i].detail);
                    break;
                }
            return;
        }
        if (lr.warnings) {
            /* sized to the list: recorded whole (incident queries select by it) */
            size_t wl = mc_lint_warning_ids_len(&lr);
            char *wbuf = mc_arena_alloc(&b->arena, wl);
            if (!wbuf) {
                it->status = MC_STATUS_FAILED;
                mc_err_set(err, MC_ERR_NOMEM, NULL, NULL, "worker arena full (lint warnings)");
                return;
            }
            it->warnings = mc_lint_warning_ids(&lr, wbuf, wl);
        }
    }
    unsigned hl = 0, kl = 0;
    if (mc_digest(c->md, sh->digests->sha256, it->tbs, it->tbs_len, it->tbs_hash, &hl) != MC_OK ||
        mc_digest(c->md, sh->digests->sha256, it->order.spki, it->order.spki_len, it->spki_hash,
                  &kl) != MC_OK) {
        it->status = MC_STATUS_FAILED;
        mc_crypto_err(err, hl ? "spki" : "tbs", "SHA-256");
        return;
    }
    mc_intent *in = &it->wi.in;
    memset(&it->wi, 0, sizeof it->wi);
    it->wi.seq = it->seq;
    it->wi.t0 = it->t0;
    in->order_id = arena_strdup(&b->arena, it->order.id.p, it->order.id.len);
    in->account = arena_strdup(&b->arena, it->order.account.p, it->order.account.len);
    in->profile = it->prof->name;
    in->profile_hash = it->prof->hash;
    /* provenance: which lint set judged these bytes, which engine built them */
    in->lint_version = sh->lint ? MC_LINT_SET_VERSION : "lint-disabled";
    in->lint_enforced = sh->lint_enforced;
    in->engine_version = MAILCA_VERSION;
    in->serial = it->serial;
    in->serial_len = MC_SERIAL_LEN;
    in->tbs = it->tbs;
    in->tbs_len = it->tbs_len;
    in->tbs_hash = it->tbs_hash;
    in->not_before = it->nb;
    in->not_after = it->na;
    in->mailboxes = mailbox_list(&b->arena, &it->order);
    in->evidence = evidence_json(&b->arena, &it->order, it->caa);
    in->lint_warnings = it->warnings;
    in->spki_sha256 = it->spki_hash;
    in->replaces = it->order.replaces.len
                       ? arena_strdup(&b->arena, it->order.replaces.p, it->order.replaces.len)
                       : NULL;
    if (!in->order_id || !in->account || !in->mailboxes || !in->evidence) {
        it->status = MC_STATUS_FAILED;
        mc_err_set(err, MC_ERR_NOMEM, NULL, NULL, "worker arena full");
        return;
    }
    it->ok = 1;
}

/* ---- signing ----------------------------------------------------------------------------
 * Inline (no deadline, no sessions setting): the worker signs on its own session. Otherwise
 * signer threads do, each on its own session, and the worker keeps a deadline on every call
 * (hsm.sign_timeout_ms). PKCS#11 cannot cancel a call, so a signer whose C_Sign exceeds the
 * deadline is abandoned: it is retired (it exits as soon as the call returns, touching nothing
 * of the worker), replaced by a new signer with a new session, and its orders are signed again
 * elsewhere: the same input (the digest of the same TBS), so the same serial, and a late answer
 * of the abandoned call is dropped (jobs carry ids; an id answered or re-dispatched is dead).
 * Jobs and answers travel by value, so an abandoned thread holds no pointer into a batch the
 * worker reuses. */

/* Input of one signature: the digest of the TBS, or the TBS itself (EdDSA signs the message). */
static const uint8_t *sign_input(const mc_worker_shared *sh, EVP_MD_CTX *md, item *it, size_t *len)
{
    const EVP_MD *dg = mc_digests_for_sigalg(sh->digests, sh->issuer->sigalg);
    if (!dg) {
        *len = it->stbs_len;
        return it->stbs;
    }
    /* SHA-256 of the TBS built in this run is it->tbs_hash already */
    if (dg == sh->digests->sha256 && it->stbs == it->tbs) {
        *len = sizeof it->tbs_hash;
        return it->tbs_hash;
    }
    unsigned n = 0;
    if (mc_digest(md, dg, it->stbs, it->stbs_len, it->din, &n) != MC_OK)
        return NULL;
    *len = n;
    return it->din;
}

/* C_Sign of in on the session into it->sig; a session or device failure is retried by the
 * pool on a healthy session (same input). Inline signing only. */
static void sign_item(wctx *c, item *it)
{
    size_t inlen = 0;
    const uint8_t *in = sign_input(c->sh, c->md, it, &inlen);
    it->status = MC_STATUS_FAILED;
    if (!in) {
        mc_crypto_err(&it->err, "tbs", "digest");
        return;
    }
    it->sig_len = MC_SIG_MAX;
    if (mc_hsmpool_sign(c->sh->pool, &c->sess, c->sh->issuer->sigalg, in, inlen, it->sig,
                        &it->sig_len, &it->err) == MC_OK)
        it->status = MC_STATUS_ISSUED;
}

/* The certificate from the item's TBS and signature (worker thread: allocates from the batch
 * arena). */
static void assemble_item(const mc_worker_shared *sh, wbatch *b, item *it)
{
    if (it->status != MC_STATUS_ISSUED)
        return;
    it->status = MC_STATUS_FAILED;
    it->cert = mc_arena_alloc(&b->arena, MC_CERT_MAX);
    if (!it->cert || mc_cert_assemble(it->stbs, it->stbs_len, sh->issuer->sigalg, it->sig,
                                      it->sig_len, it->cert, MC_CERT_MAX, &it->cert_len)) {
        mc_err_set(&it->err, MC_ERR_INTERNAL, "certificate", NULL, "assembly failed");
        return;
    }
    mc_arena_shrink(&b->arena, it->cert, it->cert_len);
    it->status = MC_STATUS_ISSUED;
}

/* Wire format between a worker and its signers (inproc, same process: host layout). A job is
 * its header then len input bytes; an answer its header then the signature (rc MC_OK) or an
 * mc_errdetail. Id 0 is a signer's "ready" message, whose rc says whether its session opened. */
typedef struct sign_job {
    uint64_t id;
    uint32_t len;
} sign_job;
typedef struct sign_answer {
    uint64_t id;
    int32_t rc;
    uint32_t len;
} sign_answer;

static int send_answer(void *out, uint64_t id, mc_err rc, const uint8_t *sig, size_t siglen,
                       const mc_errdetail *err)
{
    uint8_t buf[sizeof(sign_answer) + sizeof(mc_errdetail) + MC_SIG_MAX];
    sign_answer a = {id, rc, rc == MC_OK ? (uint32_t)siglen : (uint32_t)sizeof *err};
    memcpy(buf, &a, sizeof a);
    if (a.len) /* the ready message of a signer whose session opened carries nothing */
        memcpy(buf + sizeof a, rc == MC_OK ? (const void *)sig : (const void *)err, a.len);
    while (zmq_send(out, buf, sizeof a + a.len, 0) < 0)
        if (errno != EINTR)
            return -1;
    return 0;
}

static void *signer_main(void *arg)
{
    signer *sg = arg;
    const mc_worker_shared *sh = sg->sh;
    mc_hsmpool *pool = sh->pool;
    pthread_setname_np(pthread_self(), "mc-signer"); /* for top -H, perf and gdb */
    void *in = zmq_socket(sh->zctx, ZMQ_PULL), *out = zmq_socket(sh->zctx, ZMQ_PUSH);
    mc_hsmpool_session sess = {0};
    mc_errdetail err;
    uint8_t sig[MC_SIG_MAX];
    zmq_msg_t m;
    int zero = 0;
    zmq_msg_init(&m);
    mc_err_clear(&err);
    if (!in || !out)
        goto done;
    zmq_setsockopt(in, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(out, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_connect(in, sg->ep_jobs) != 0 || zmq_connect(out, sg->ep_done) != 0)
        goto done;
    /* The session is opened here, not by the worker: a token that hangs in C_OpenSession
     * blocks this thread only (the worker's deadline covers it like a hung C_Sign). */
    mc_err orc = mc_hsmpool_session_open(pool, sg->hint, &sess, &err);
    atomic_store(&sg->token, sess.s ? sess.token : -1);
    if (send_answer(out, 0, orc, NULL, 0, &err) != 0 || (orc != MC_OK && !sg->replacement))
        goto done;
    for (;;) {
        if (zmq_msg_recv(&m, in, 0) < 0) {
            if (errno == EINTR)
                continue;
            break; /* the context is shutting down */
        }
        sign_job j;
        if (zmq_msg_size(&m) < sizeof j)
            break; /* the worker's stop message */
        memcpy(&j, zmq_msg_data(&m), sizeof j);
        if (atomic_load(&sg->state) == SG_RETIRED || zmq_msg_size(&m) != sizeof j + j.len)
            break;
        size_t siglen = sizeof sig;
        mc_err_clear(&err);
        mc_err rc = mc_hsmpool_sign(pool, &sess, sh->issuer->sigalg,
                                    (const uint8_t *)zmq_msg_data(&m) + sizeof j, j.len, sig,
                                    &siglen, &err);
        atomic_store(&sg->token, sess.s ? sess.token : -1);
        /* abandoned meanwhile: the worker signed this elsewhere and forgot this thread */
        if (atomic_load(&sg->state) == SG_RETIRED || send_answer(out, j.id, rc, sig, siglen, &err))
            break;
    }
done:
    zmq_msg_close(&m);
    if (in)
        zmq_close(in);
    if (out)
        zmq_close(out);
    mc_hsmpool_session_close(pool, &sess);
    /* Who frees sg: the worker joins a signer it stopped; a retired one frees itself. */
    if (atomic_exchange(&sg->state, SG_EXITED) == SG_RETIRED) {
        free(sg);
        mc_hsmpool_hang_end(pool); /* the last touch of anything shared */
    }
    return NULL;
}

/* Creates signer slot i's thread (a new one for a retired signer: replacement). */
static mc_err signer_spawn(wctx *c, int i, int replacement)
{
    const mc_worker_shared *sh = c->sh;
    int zero = 0, hwm = 4 * sh->batch + 16;
    signer *sg = calloc(1, sizeof *sg);
    if (!sg)
        return MC_ERR_NOMEM;
    sg->sh = sh;
    sg->replacement = replacement;
    /* sessions spread over the tokens; a replacement starts at the next token along */
    sg->hint = sh->hint_base + c->w->index * c->nsigners + i + (replacement ? (int)c->spawned : 0);
    atomic_init(&sg->state, SG_RUNNING);
    atomic_init(&sg->token, -1);
    snprintf(sg->ep_done, sizeof sg->ep_done, "%s", c->ep_done);
    snprintf(sg->ep_jobs, sizeof sg->ep_jobs, "inproc://mailca-sign-%p-%u", (void *)c,
             c->spawned++);
    sg->fifo = calloc(FIFO_CAP(sh->batch), sizeof *sg->fifo);
    sg->jobs = sg->fifo ? zmq_socket(sh->zctx, ZMQ_PUSH) : NULL;
    if (!sg->jobs) {
        int e = zmq_errno(); /* ETERM: the run is ending (the caller looks) */
        free(sg->fifo);
        free(sg);
        errno = e;
        return e == ETERM ? MC_ERR_ZMQ : MC_ERR_NOMEM;
    }
    zmq_setsockopt(sg->jobs, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(sg->jobs, ZMQ_SNDHWM, &hwm, sizeof hwm);
    c->signers[i] = sg;
    if (zmq_bind(sg->jobs, sg->ep_jobs) != 0)
        return MC_ERR_ZMQ;
    if (pthread_create(&sg->th, NULL, signer_main, sg) != 0)
        return MC_ERR_INTERNAL;
    sg->started = 1;
    return MC_OK;
}

/* Worker-side resources of signer i (the thread is gone, or retired and on its own). */
static void signer_release(wctx *c, int i)
{
    signer *sg = c->signers[i];
    if (!sg)
        return;
    if (sg->jobs)
        zmq_close(sg->jobs);
    free(sg->fifo);
    sg->jobs = NULL;
    sg->fifo = NULL;
    c->signers[i] = NULL;
}

/* Starts the worker's signer threads and waits for each to say its session is open (a token
 * that refuses sessions is reported by the worker at start, as inline signing would). */
static mc_err signers_start(wctx *c)
{
    const mc_worker_shared *sh = c->sh;
    int n = sh->signers, zero = 0, hwm = 4 * sh->batch + 16;
    if (n < 1)
        return MC_OK;
    snprintf(c->ep_done, sizeof c->ep_done, "inproc://mailca-signed-%p", (void *)c);
    c->signers = calloc((size_t)n, sizeof *c->signers);
    if (!c->signers)
        return MC_ERR_NOMEM;
    if (!(c->done = zmq_socket(sh->zctx, ZMQ_PULL)))
        return MC_ERR_ZMQ;
    zmq_setsockopt(c->done, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(c->done, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (zmq_bind(c->done, c->ep_done) != 0)
        return MC_ERR_ZMQ;
    c->nsigners = n;
    for (int i = 0; i < n; i++) {
        mc_err rc = signer_spawn(c, i, 0);
        if (rc != MC_OK)
            return rc;
    }
    /* a signer that failed to start would leave sign_collect waiting for its answers */
    int wait_ms = 10000 + sh->sign_timeout_ms;
    for (int i = 0; i < n; i++) {
        zmq_pollitem_t pi = {c->done, 0, ZMQ_POLLIN, 0};
        uint8_t buf[sizeof(sign_answer) + sizeof(mc_errdetail)];
        sign_answer a;
        int got;
        int pr = zmq_poll(&pi, 1, wait_ms);
        if (pr < 0 && zmq_errno() == ETERM)
            return MC_ERR_ZMQ; /* the run ended before this worker started */
        if (pr != 1 || (got = zmq_recv(c->done, buf, sizeof buf, 0)) < (int)sizeof a)
            return mc_err_set(&c->w->err, MC_ERR_HSM, "hsm", NULL,
                              "worker %d: a signer did not open its session within %d ms",
                              c->w->index, wait_ms);
        memcpy(&a, buf, sizeof a);
        if (a.id != 0)
            return MC_ERR_INTERNAL;
        if (a.rc != MC_OK) {
            memcpy(&c->w->err, buf + sizeof a, sizeof c->w->err);
            return a.rc;
        }
    }
    return MC_OK;
}

/* Stops and joins the live signers (each gets a stop message; a context being shut down also
 * ends their wait). Retired signers are on their own already. */
static void signers_stop(wctx *c)
{
    for (int i = 0; i < c->nsigners; i++) {
        signer *sg = c->signers[i];
        if (!sg)
            continue;
        if (sg->started) {
            if (sg->jobs)
                zmq_send(sg->jobs, "", 0, ZMQ_DONTWAIT);
            pthread_join(sg->th, NULL);
        }
        signer_release(c, i);
        free(sg);
    }
    if (c->done)
        zmq_close(c->done);
    free(c->signers);
    c->signers = NULL;
    c->nsigners = 0;
    c->done = NULL;
}

/* sign_collect's sleeps while answers are due: shorter ones are not worth a timer, longer ones
 * would leave the next batch waiting after a stall. */
#define SLEEP_MIN_US 200
#define SLEEP_MAX_US 20000

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t mono_ms(void)
{
    return mono_us() / 1000;
}

/* Hands item idx of b to a live signer (round robin) as a new job. -1 when no signer is left. */
static int job_send(wctx *c, wbatch *b, size_t idx)
{
    item *it = &b->items[idx];
    signer *sg = NULL;
    for (int k = 0; k < c->nsigners && !sg; k++) {
        sg = c->signers[c->rr++ % (unsigned)c->nsigners];
        if (sg && (!sg->started || !sg->jobs))
            sg = NULL;
    }
    if (!sg)
        return -1;
    /* ids grow and never repeat; the low bits are the job's key */
    size_t key = JOB_KEY(b - c->b, idx);
    it->job = (++c->jobseq << JOB_KEY_BITS) | key;
    it->signer = sg;
    uint8_t buf[sizeof(sign_job) + MC_TBS_MAX];
    sign_job j = {it->job, (uint32_t)it->sin_len};
    memcpy(buf, &j, sizeof j);
    memcpy(buf + sizeof j, it->sin, it->sin_len);
    while (zmq_send(sg->jobs, buf, sizeof j + it->sin_len, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (sg->fcount == 0)
        sg->head_ms = mono_ms();
    sg->fifo[(sg->fhead + sg->fcount++) % FIFO_CAP(c->sh->batch)] = key;
    return 0;
}

static void item_fail_unsigned(item *it, const char *why)
{
    it->status = MC_STATUS_FAILED;
    mc_err_set(&it->err, MC_ERR_HSM, "hsm", NULL,
               "%s; nothing was issued, the intent stays recorded and is signed again (same TBS "
               "and serial) when the order is resubmitted or at the next start",
               why);
}

/* Starts signing the batch's items that were given a TBS (it->stbs): inline on the worker's
 * session (done on return), or as jobs for the signers, which keep nsigners C_Sign calls in
 * flight while the worker prepares the next batch; sign_collect waits for their answers. */
static mc_err sign_dispatch(wctx *c, wbatch *b)
{
    b->sent = 0;
    b->taken = 0;
    b->start_us = mono_us();
    for (size_t i = 0; i < b->n; i++) {
        item *it = &b->items[i];
        if (!it->stbs)
            continue;
        it->sig = mc_arena_alloc(&b->arena, MC_SIG_MAX);
        if (!it->sig) {
            it->status = MC_STATUS_FAILED;
            mc_err_set(&it->err, MC_ERR_NOMEM, NULL, NULL, "worker arena full");
            it->stbs = NULL;
            continue;
        }
        if (!c->nsigners) {
            sign_item(c, it);
            continue;
        }
        if (!(it->sin = sign_input(c->sh, c->md, it, &it->sin_len))) {
            it->status = MC_STATUS_FAILED;
            mc_crypto_err(&it->err, "tbs", "digest");
            continue;
        }
        if (job_send(c, b, i) != 0) {
            item_fail_unsigned(it, "no HSM session is left to sign on");
            continue;
        }
        b->sent++;
    }
    return MC_OK;
}

/* Signer slot i's call exceeded the deadline: retire it, start a replacement (unless too many
 * calls hang already), and sign its orders again elsewhere. */
static void signer_retire(wctx *c, int i)
{
    signer *sg = c->signers[i];
    const mc_worker_shared *sh = c->sh;
    size_t redo[FIFO_CAP(MC_WORKER_BATCH_MAX)], nredo = 0;
    int limit = (int)mc_hsmpool_tokens(sh->pool) + 2;
    mc_hsmpool_hang_begin(sh->pool, atomic_load(&sg->token));
    for (size_t k = 0; k < sg->fcount; k++)
        redo[nredo++] = sg->fifo[(sg->fhead + k) % FIFO_CAP(sh->batch)];
    signer_release(c, i);
    /* From here the thread owns sg: it frees it when its call returns. */
    if (atomic_exchange(&sg->state, SG_RETIRED) == SG_EXITED) {
        pthread_join(sg->th, NULL); /* it had just ended on its own */
        free(sg);
        mc_hsmpool_hang_end(sh->pool);
    } else {
        pthread_detach(sg->th);
    }
    c->hung++;
    if (mc_hsmpool_hung(sh->pool) < MC_WORKER_HUNG_MAX && signer_spawn(c, i, 1) != MC_OK &&
        c->signers[i]) {
        /* no replacement: the slot stays empty (the half-made signer never ran) */
        signer *half = c->signers[i];
        signer_release(c, i);
        free(half);
    }
    for (size_t k = 0; k < nredo; k++) {
        wbatch *b = &c->b[JOB_SLOT(redo[k])];
        size_t idx = JOB_IDX(redo[k]);
        item *it = &b->items[idx];
        it->job = 0;
        if (++it->attempts >= limit) {
            char why[160];
            snprintf(why, sizeof why, "the HSM did not answer C_Sign within %d ms (%d attempts)",
                     sh->sign_timeout_ms, it->attempts);
            item_fail_unsigned(it, why);
            b->sent--;
        } else if (job_send(c, b, idx) != 0) {
            item_fail_unsigned(it, "the HSM did not answer C_Sign in time and no session is left");
            b->sent--;
        }
    }
}

/* One answer from a signer: the job's signature or error goes to its item (a stale answer, of a
 * job re-dispatched or of an earlier batch, is dropped). */
static void answer_take(wctx *c, const uint8_t *p, size_t n)
{
    sign_answer a;
    if (n < sizeof a)
        return;
    memcpy(&a, p, sizeof a);
    size_t key = (size_t)(a.id & ((1u << JOB_KEY_BITS) - 1)), idx = JOB_IDX(key);
    if (a.id == 0 || JOB_SLOT(key) >= sizeof c->b / sizeof c->b[0])
        return;
    wbatch *b = &c->b[JOB_SLOT(key)];
    if (idx >= b->n || b->items[idx].job != a.id || n != sizeof a + a.len)
        return;
    item *it = &b->items[idx];
    signer *sg = it->signer;
    /* a signer answers its jobs in order: this one is its head */
    if (sg && sg->fcount > 0 && sg->fifo[sg->fhead] == key) {
        sg->fhead = (sg->fhead + 1) % FIFO_CAP(c->sh->batch);
        sg->fcount--;
        sg->head_ms = mono_ms();
    }
    it->job = 0;
    it->signer = NULL;
    b->sent--;
    b->taken++;
    if (a.rc == MC_OK && a.len <= MC_SIG_MAX) {
        memcpy(it->sig, p + sizeof a, a.len);
        it->sig_len = a.len;
        it->status = MC_STATUS_ISSUED;
    } else {
        it->status = MC_STATUS_FAILED;
        if (a.rc != MC_OK && a.len == sizeof it->err)
            memcpy(&it->err, p + sizeof a, sizeof it->err);
        else
            mc_err_set(&it->err, MC_ERR_INTERNAL, "hsm", NULL, "malformed signer answer");
    }
}

/* Waits for the batch's jobs still with the signers, enforcing the deadline on the call at the
 * head of each signer's queue, and assembles the certificates. Answers for the batch queued
 * behind it (mc_worker_main) are taken into that batch meanwhile. */
static mc_err sign_collect(wctx *c, wbatch *b)
{
    const int dl = c->sh->sign_timeout_ms;
    zmq_msg_t m;
    zmq_msg_init(&m);
    while (b->sent > 0) {
        /* answers already here first: a worker that was busy preparing must not take the
         * time their jobs waited in this queue for a hang */
        while (b->sent > 0) {
            if (zmq_msg_recv(&m, c->done, ZMQ_DONTWAIT) < 0) {
                if (zmq_errno() == EINTR)
                    continue;
                if (zmq_errno() == EAGAIN)
                    break;
                /* ETERM: the run is being shut down and no answer will come; the sleep below
                 * would otherwise wait for them for good */
                zmq_msg_close(&m);
                return MC_ERR_ZMQ;
            }
            answer_take(c, zmq_msg_data(&m), zmq_msg_size(&m));
        }
        if (!b->sent)
            break;
        long timeout = -1;
        if (dl > 0) {
            uint64_t now = mono_ms();
            for (int i = 0; i < c->nsigners; i++) {
                signer *sg = c->signers[i];
                if (!sg || !sg->fcount)
                    continue;
                if (now >= sg->head_ms + (uint64_t)dl) {
                    signer_retire(c, i);
                    timeout = 0;
                    break;
                }
                long left = (long)(sg->head_ms + (uint64_t)dl - now);
                if (timeout < 0 || left < timeout)
                    timeout = left;
            }
            if (timeout == 0)
                continue;
        }
        /* Sleep through the answers that cannot all be here yet rather than wake for each:
         * at the rate this batch has been answered so far, the rest takes about
         * sent * per_answer. Waking per answer cost a context switch and a dozen system calls
         * per certificate. A bit less than the estimate, so the last answers are waited for
         * with zmq_poll; never past the deadline's next check. */
        if (b->taken > 0) {
            uint64_t now = mono_us();
            uint64_t rest = (now - b->start_us) / b->taken * (b->sent - 1) / 2;
            if (rest > SLEEP_MAX_US)
                rest = SLEEP_MAX_US;
            if (timeout >= 0 && rest > (uint64_t)timeout * 1000)
                rest = (uint64_t)timeout * 1000;
            if (rest >= SLEEP_MIN_US) {
                struct timespec ts = {(time_t)(rest / 1000000), (long)(rest % 1000000) * 1000};
                nanosleep(&ts, NULL);
                continue;
            }
        }
        zmq_pollitem_t pi = {c->done, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&pi, 1, timeout) < 0 && errno != EINTR) {
            zmq_msg_close(&m);
            return MC_ERR_ZMQ;
        }
    }
    zmq_msg_close(&m);
    for (size_t i = 0; i < b->n; i++)
        if (b->items[i].stbs)
            assemble_item(c->sh, b, &b->items[i]);
    return MC_OK;
}

static mc_err send_buf(void *sock, const msgpack_sbuffer *b)
{
    while (zmq_send(sock, b->data, b->size, 0) < 0) {
        if (errno != EINTR)
            return MC_ERR_ZMQ;
    }
    return MC_OK;
}

/* Sends the batch's intents to the collector, which records them (one transaction) before
 * anything of the batch is signed. */
static mc_err send_intents(wctx *c, wbatch *b)
{
    b->k = 0;
    for (size_t i = 0; i < b->n; i++)
        b->k += b->items[i].ok;
    if (!b->k)
        return MC_OK;
    msgpack_packer pk;
    msgpack_sbuffer_clear(&c->sbuf);
    msgpack_packer_init(&pk, &c->sbuf, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, b->k);
    for (size_t i = 0; i < b->n; i++)
        if (b->items[i].ok)
            mc_wire_pack_intent(&pk, &b->items[i].wi);
    return send_buf(c->dealer, &c->sbuf);
}

/* Reads the collector's verdicts for the batch (replies come in request order) and starts
 * signing what may be signed. */
static mc_err await_verdicts(wctx *c, wbatch *b)
{
    if (!b->k)
        return MC_OK;
    zmq_msg_t reply;
    zmq_msg_init(&reply);
    mc_err rc = MC_OK;
    while (zmq_msg_recv(&reply, c->dealer, 0) < 0) {
        if (errno != EINTR) {
            rc = MC_ERR_ZMQ;
            goto done;
        }
    }
    msgpack_object v;
    size_t off = 0;
    if (msgpack_unpack(zmq_msg_data(&reply), zmq_msg_size(&reply), &off, &b->zone, &v) !=
            MSGPACK_UNPACK_SUCCESS ||
        v.type != MSGPACK_OBJECT_ARRAY || v.via.array.size != b->k) {
        rc = MC_ERR_INTERNAL;
        goto done;
    }
    size_t j = 0;
    for (size_t i = 0; i < b->n; i++) {
        item *it = &b->items[i];
        if (!it->ok)
            continue;
        mc_wire_verdict vd;
        if (mc_wire_unpack_verdict(&v.via.array.ptr[j++], &vd) != MC_OK) {
            rc = MC_ERR_INTERNAL;
            goto done;
        }
        it->action = vd.action;
        it->res_serial = it->serial;
        it->res_serial_len = MC_SERIAL_LEN;
        if (vd.action == MC_WIRE_SIGN) {
            it->stbs = it->tbs;
            it->stbs_len = it->tbs_len;
        } else if (vd.action == MC_WIRE_RESUME) {
            /* an intent from an earlier run: its recorded TBS and serial. The serial is copied:
             * the reply's memory is gone when the results are packed. */
            it->res_serial = mc_arena_dup(&b->arena, vd.serial, vd.serial_len);
            it->res_serial_len = vd.serial_len;
            if (!it->res_serial) {
                it->status = MC_STATUS_FAILED;
                mc_err_set(&it->err, MC_ERR_NOMEM, NULL, NULL, "worker arena full");
                continue;
            }
            /* the TBS is copied too: the reply's memory is gone when the batch is signed */
            it->stbs = mc_arena_dup(&b->arena, vd.tbs, vd.tbs_len);
            it->stbs_len = vd.tbs_len;
            if (!it->stbs) {
                it->status = MC_STATUS_FAILED;
                mc_err_set(&it->err, MC_ERR_NOMEM, NULL, NULL, "worker arena full");
            }
        } else if (vd.action == MC_WIRE_KEY_BOUND || vd.action == MC_WIRE_KEY_COMPROMISED) {
            /* another account owns this key, or it is compromised: refused, nothing recorded
             * or signed */
            const char *field = it->order.public_key ? "public_key" : "csr";
            it->status = MC_STATUS_REJECTED;
            it->res_serial = NULL;
            it->res_serial_len = 0;
            if (vd.action == MC_WIRE_KEY_BOUND)
                mc_keycheck_reuse_refusal(it->spki_hash, field, &it->err);
            else
                mc_keycheck_compromised_refusal(it->spki_hash, field, &it->err);
        } else if (vd.action == MC_WIRE_FAIL) {
            it->status = MC_STATUS_FAILED;
            mc_err_set(&it->err, MC_ERR_STORE, NULL, NULL,
                       "the intent could not be recorded; nothing was signed");
        }
    }
    rc = sign_dispatch(c, b);
done:
    zmq_msg_close(&reply);
    return rc;
}

static mc_err push_results(wctx *c, wbatch *b)
{
    size_t k = 0;
    for (size_t i = 0; i < b->n; i++)
        k += !(b->items[i].ok && b->items[i].action == MC_WIRE_SKIP);
    if (!k)
        return MC_OK;
    msgpack_packer pk;
    msgpack_sbuffer_clear(&c->sbuf);
    msgpack_packer_init(&pk, &c->sbuf, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, k);
    for (size_t i = 0; i < b->n; i++) {
        item *it = &b->items[i];
        if (it->ok && it->action == MC_WIRE_SKIP)
            continue;
        mc_wire_result wr = {.t0 = it->t0};
        wr.r.seq = it->seq;
        wr.r.order_id = it->order.id.p;
        wr.r.order_id_len = it->order.id.len;
        wr.r.status = it->status;
        if (it->status == MC_STATUS_ISSUED) {
            wr.r.serial = it->res_serial;
            wr.r.serial_len = it->res_serial_len;
            wr.r.cert = it->cert;
            wr.r.cert_len = it->cert_len;
            wr.r.warnings = it->warnings;
            wr.profile = it->prof ? it->prof->name : "";
        } else {
            wr.r.error = it->err;
        }
        mc_wire_pack_result(&pk, &wr);
    }
    return send_buf(c->push, &c->sbuf);
}

static void *open_socket(wctx *c, int type, const char *ep)
{
    void *s = zmq_socket(c->sh->zctx, type);
    int zero = 0, hwm = c->sh->batch * 4;
    if (!s)
        return NULL;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    if (type == ZMQ_PULL)
        zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (zmq_connect(s, ep) != 0) {
        zmq_close(s);
        return NULL;
    }
    return s;
}

/* The DEALER to the collector, named "<process number>-<worker>": with worker processes the
 * collector knows which process recorded which intent (pipeline.c, redispatch_start). */
static void *open_routed_socket(wctx *c, const char *ep)
{
    void *s = zmq_socket(c->sh->zctx, ZMQ_DEALER);
    int zero = 0;
    char id[32];
    if (!s)
        return NULL;
    snprintf(id, sizeof id, "%lu-%d", (unsigned long)c->sh->proc_id, c->w->index);
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_ROUTING_ID, id, strlen(id));
    if (zmq_connect(s, ep) != 0) {
        zmq_close(s);
        return NULL;
    }
    return s;
}

/* Receives up to batch orders into b: blocks for the first one only when block is set.
 * Returns 0 when nothing arrived, -1 when the context is shutting down. */
static int receive_batch(wctx *c, wbatch *b, int block)
{
    size_t batch = (size_t)c->sh->batch;
    b->n = 0;
    while (b->n < batch) {
        zmq_msg_t *m = &b->items[b->n].msg;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, c->pull, b->n == 0 && block ? 0 : ZMQ_DONTWAIT) < 0) {
            int e = zmq_errno();
            zmq_msg_close(m);
            if (e == EINTR && b->n == 0 && block)
                continue;
            if (e == ETERM)
                return -1;
            break;
        }
        b->n++;
    }
    return b->n > 0;
}

static void release_batch(wbatch *b)
{
    for (size_t i = 0; i < b->n; i++)
        zmq_msg_close(&b->items[i].msg);
    b->n = b->k = 0;
    mc_arena_reset(&b->arena);
    msgpack_zone_clear(&b->zone);
}

static mc_err batch_init(wbatch *b, size_t batch)
{
    memset(b, 0, sizeof *b);
    b->items = calloc(batch, sizeof *b->items);
    b->zone_ok = msgpack_zone_init(&b->zone, 64 * 1024);
    if (!b->items || !b->zone_ok ||
        mc_arena_init(&b->arena, batch * (MC_TBS_MAX + MC_CERT_MAX + 16384) + 65536) != MC_OK)
        return MC_ERR_NOMEM;
    return MC_OK;
}

static void batch_free(wbatch *b)
{
    if (b->zone_ok)
        msgpack_zone_destroy(&b->zone);
    mc_arena_free(&b->arena);
    free(b->items);
    memset(b, 0, sizeof *b);
}

void *mc_worker_main(void *arg)
{
    mc_worker *w = arg;
    wctx c = {.w = w, .sh = w->sh};
    const mc_worker_shared *sh = w->sh;
    size_t batch = (size_t)sh->batch;
    w->rc = MC_OK;
    mc_err_clear(&w->err);
    char name[16];
    snprintf(name, sizeof name, "mc-worker-%d", w->index % 1000);
    pthread_setname_np(pthread_self(), name); /* for top -H, perf and gdb */
    if (w->cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(w->cpu, &set);
        pthread_setaffinity_np(pthread_self(), sizeof set, &set); /* best effort */
    }
    msgpack_sbuffer_init(&c.sbuf);
    c.md = EVP_MD_CTX_new();
    if (!c.md || batch_init(&c.b[0], batch) != MC_OK || batch_init(&c.b[1], batch) != MC_OK ||
        batch_init(&c.b[2], batch) != MC_OK) {
        w->rc = mc_err_set(&w->err, MC_ERR_NOMEM, NULL, NULL, "worker %d: out of memory", w->index);
        goto done;
    }
    if ((w->rc = mc_csr_ctx_init(&c.csr, &w->err)) != MC_OK)
        goto done;
    c.csr_ok = 1;
    c.csr.weak = sh->weak_keys;
    c.pull = open_socket(&c, ZMQ_PULL, sh->ep_orders);
    c.dealer = open_routed_socket(&c, sh->ep_intents);
    c.push = open_socket(&c, ZMQ_PUSH, sh->ep_results);
    if (!c.pull || !c.dealer || !c.push) {
        if (zmq_errno() == ETERM)
            goto done; /* the run ended before this worker started: nothing was lost */
        w->rc = mc_err_set(&w->err, MC_ERR_ZMQ, NULL, NULL, "worker %d: socket: %s", w->index,
                           zmq_strerror(zmq_errno()));
        goto done;
    }
    if (sh->signers > 0) {
        if ((w->rc = signers_start(&c)) != MC_OK) {
            if (w->rc == MC_ERR_ZMQ && zmq_errno() == ETERM) {
                w->rc = MC_OK; /* the run ended before this worker started: nothing was lost */
                goto done;
            }
            if (!w->err.message[0])
                mc_err_set(&w->err, w->rc, NULL, NULL, "worker %d: signer threads: %s", w->index,
                           zmq_strerror(zmq_errno()));
            goto done;
        }
    } else if ((w->rc = mc_hsmpool_session_open(sh->pool, sh->hint_base + w->index, &c.sess,
                                                &w->err)) != MC_OK) {
        goto done;
    }

    /* Three batches in flight: `cur` is prepared and its intents sent while `sig` (verdicts
     * received earlier) is being signed, by the signer threads when there are some; `ver`
     * (intents sent earlier) waits for its verdicts meanwhile. So the worker never idles
     * waiting for the storage commit, nor for a latency-bound HSM. `ver` goes to the signers
     * as soon as its verdicts are in, queued behind `sig`, before the worker waits for `sig`:
     * a signer then never waits for the worker between two batches. */
    wbatch *ver = NULL, *sig = NULL;
    for (;;) {
        wbatch *cur = &c.b[0];
        while (cur == ver || cur == sig)
            cur++;
        int got = receive_batch(&c, cur, ver == NULL && sig == NULL);
        if (got < 0)
            break; /* ETERM: the engine is shutting down */
        mc_err rc = MC_OK;
        if (got) {
            int64_t now = (int64_t)time(NULL);
            for (size_t i = 0; i < cur->n; i++) {
                item *it = &cur->items[i];
                zmq_msg_t keep = it->msg;
                memset(it, 0, sizeof *it);
                it->msg = keep;
                prepare(&c, cur, it, now);
            }
            rc = send_intents(&c, cur);
        }
        wbatch *next = NULL;
        mc_err vrc = MC_OK;
        /* Signer threads: `ver` is queued behind `sig` first. Inline signing (none) would sign
         * all of `ver` before `sig`'s results left, so there `sig` goes first. */
        if (rc == MC_OK && ver && c.nsigners > 0) {
            vrc = await_verdicts(&c, ver);
            next = ver;
            ver = NULL;
        }
        /* `sig` is with the signers already: its certificates are collected and sent even when
         * `ver`'s verdicts could not be read (the worker stops after this), so nothing signed
         * stays behind; `ver`'s orders, never dispatched, are answered by the collector. */
        if (rc == MC_OK && sig) {
            rc = sign_collect(&c, sig);
            if (rc == MC_OK)
                rc = push_results(&c, sig);
            release_batch(sig);
        }
        if (rc == MC_OK)
            rc = vrc;
        if (rc == MC_OK && ver) {
            rc = await_verdicts(&c, ver);
            next = ver;
            ver = NULL;
        }
        sig = next;
        if (rc != MC_OK) {
            if (zmq_errno() != ETERM)
                w->rc = mc_err_set(&w->err, rc, NULL, NULL, "worker %d: %s", w->index,
                                   zmq_strerror(zmq_errno()));
            break;
        }
        if (got)
            ver = cur;
    }
done:
    signers_stop(&c);
    mc_hsmpool_session_close(sh->pool, &c.sess);
    if (c.pull)
        zmq_close(c.pull);
    if (c.dealer)
        zmq_close(c.dealer);
    if (c.push)
        zmq_close(c.push);
    for (int i = 0; i < 3; i++) {
        release_batch(&c.b[i]);
        batch_free(&c.b[i]);
    }
    msgpack_sbuffer_destroy(&c.sbuf);
    if (c.csr_ok)
        mc_csr_ctx_free(&c.csr);
    EVP_MD_CTX_free(c.md);
    return NULL;
}
