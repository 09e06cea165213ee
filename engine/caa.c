/*
 * CAA for Mailbox Addresses (SBR 4.2.2.1): RFC 9495 issuemail processing on the RFC 8659 Relevant
 * RRset, with RFC 8657 account and method binding, looked up through libunbound with a per-domain
 * cache that coalesces concurrent lookups. Contract and policy: include/mailca/caa.h.
 *
 * Layout: libunbound binding (dlopen or direct), domain names, CAA wire and issuemail value
 * parsing, the decision (mc_caa_evaluate), one DNS query with a deadline, the tree climb, the
 * cache, the public entry points, JSON.
 */
#include "mailca/caa.h"

#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unbound.h>

#define R_SBR "SBR 4.2.2.1"
#define R_MPIC "SBR 4.2.2.2"
#define R_9495 "RFC 9495 4"
#define R_8659_CRIT "RFC 8659 4.1"
#define R_8659_TREE "RFC 8659 3"
#define R_8657_ACCOUNT "RFC 8657 3"
#define R_8657_METHODS "RFC 8657 4"
#define CAA_RRTYPE 257
#define CLASS_IN 1

/* ---- libunbound binding ----
 * mailca's CMake links only what pkg-config lists, and Debian 12's libunbound.pc requires
 * libevent's .pc (not installed with libunbound-dev), so by default the library is loaded at
 * run time. Build with -DMAILCA_UNBOUND_LINKED and -lunbound to link it directly instead. */
typedef struct ub_api {
    struct ub_ctx *(*ctx_create)(void);
    void (*ctx_delete)(struct ub_ctx *);
    int (*ctx_set_option)(struct ub_ctx *, const char *, const char *);
    int (*ctx_set_fwd)(struct ub_ctx *, const char *);
    int (*ctx_add_ta)(struct ub_ctx *, const char *);
    int (*ctx_add_ta_file)(struct ub_ctx *, const char *);
    int (*ctx_async)(struct ub_ctx *, int);
    int (*fd)(struct ub_ctx *);
    int (*process)(struct ub_ctx *);
    int (*resolve_async)(struct ub_ctx *, const char *, int, int, void *, ub_callback_type, int *);
    int (*cancel)(struct ub_ctx *, int);
    void (*resolve_free)(struct ub_result *);
    const char *(*strerror)(int);
} ub_api;

static ub_api ub;
static int ub_loaded; /* 1 ok, -1 failed; written once under ub_once */
static char ub_load_error[160];
static pthread_once_t ub_once = PTHREAD_ONCE_INIT;

#ifdef MAILCA_UNBOUND_LINKED
static void ub_load(void)
{
    ub = (ub_api){ub_ctx_create, ub_ctx_delete,      ub_ctx_set_option, ub_ctx_set_fwd,
                  ub_ctx_add_ta, ub_ctx_add_ta_file, ub_ctx_async,      ub_fd,
                  ub_process,    ub_resolve_async,   ub_cancel,         ub_resolve_free,
                  ub_strerror};
    ub_loaded = 1;
}
#else
static void ub_load(void)
{
    void *h = dlopen("libunbound.so.8", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(ub_load_error, sizeof ub_load_error, "%s", dlerror());
        ub_loaded = -1;
        return;
    }
    struct {
        const char *name;
        void **slot;
    } syms[] = {
        {"ub_ctx_create", (void **)&ub.ctx_create},
        {"ub_ctx_delete", (void **)&ub.ctx_delete},
        {"ub_ctx_set_option", (void **)&ub.ctx_set_option},
        {"ub_ctx_set_fwd", (void **)&ub.ctx_set_fwd},
        {"ub_ctx_add_ta", (void **)&ub.ctx_add_ta},
        {"ub_ctx_add_ta_file", (void **)&ub.ctx_add_ta_file},
        {"ub_ctx_async", (void **)&ub.ctx_async},
        {"ub_fd", (void **)&ub.fd},
        {"ub_process", (void **)&ub.process},
        {"ub_resolve_async", (void **)&ub.resolve_async},
        {"ub_cancel", (void **)&ub.cancel},
        {"ub_resolve_free", (void **)&ub.resolve_free},
        {"ub_strerror", (void **)&ub.strerror},
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        void *f = dlsym(h, syms[i].name);
        if (!f) {
            snprintf(ub_load_error, sizeof ub_load_error, "libunbound.so.8 lacks %s", syms[i].name);
            ub_loaded = -1;
            return; /* h stays loaded: harmless, and it may be in use by another user */
        }
        memcpy(syms[i].slot, &f, sizeof f);
    }
    ub_loaded = 1;
}
#endif

/* ---- the context and its cache ---- */

typedef enum { OUT_OK = 1, OUT_FAIL, OUT_BOGUS, OUT_MALFORMED } outcome_kind;

/* What one tree-climbing lookup found: the Relevant RRset or why there is none. */
typedef struct outcome {
    outcome_kind kind;
    mc_caa_record *recs; /* heap, n of them (every record of the Relevant RRset) */
    size_t n;
    char relevant[MC_CAA_DOMAIN_MAX];
    char canonical[MC_CAA_DOMAIN_MAX];
    char why[MC_CAA_REASON_MAX]; /* OUT_FAIL / OUT_BOGUS */
    mc_caa_dnssec dnssec;
    int rcode;
    unsigned ttl;
    int64_t checked_at;
} outcome;

typedef struct entry {
    struct entry *next;
    char domain[MC_CAA_DOMAIN_MAX];
    int pending; /* a thread is looking it up; waiters sleep on ctx->cond */
    int have;    /* out is valid */
    int waiters; /* threads waiting for the pending lookup: the entry may not be swept */
    int64_t expires_at;
    outcome out;
} entry;

#define BUCKETS 1024
#define SWEEP_AT 100000 /* entries before expired ones are swept on insert */

struct mc_caa_ctx {
    struct ub_ctx *ub;
    pthread_mutex_t ubmu; /* serialises libunbound calls */
    char **issuers;
    size_t n_issuers;
    char resolver[MC_CAA_RESOLVER_MAX];
    unsigned timeout_ms, min_ttl, max_ttl, fail_ttl;
    pthread_mutex_t mu; /* the cache */
    pthread_cond_t cond;
    entry *bucket[BUCKETS];
    size_t n_entries;
    atomic_uint_fast64_t checks, hits, lookups, queries, coalesced;
    /* Multi-perspective: the perspectives (each a full single-perspective context with its own
     * libunbound context and cache); this context then has no ub and no cache of its own. */
    struct mc_caa_ctx *sub[MC_CAA_PERSPECTIVES_MAX];
    size_t n_sub;
    unsigned quorum;
    char name[MC_CAA_NAME_MAX];
};

/* Counts one event in context c (relaxed: the counters are statistics, read as a snapshot). */
#define STAT_ADD(c, field) atomic_fetch_add_explicit(&(c)->field, 1, memory_order_relaxed)

/* ---- domain names ---- */

/* Lower-cases and checks an LDH domain (labels 1..63, total <= 253, a trailing dot dropped)
 * into out. Returns 0 or -1. */
static int domain_norm(const char *in, size_t len, char *out)
{
    if (len && in[len - 1] == '.')
        len--;
    if (len == 0 || len > 253)
        return -1;
    size_t lab = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '.') {
            if (lab == 0 || in[i - 1] == '-')
                return -1;
            lab = 0;
        } else if (isalnum(c) || c == '-') {
            if ((lab == 0 && c == '-') || ++lab > 63)
                return -1;
        } else {
            return -1;
        }
        out[i] = (char)tolower(c);
    }
    if (in[len - 1] == '-')
        return -1;
    out[len] = '\0';
    return 0;
}

static void strip_dot(char *s)
{
    size_t n = strlen(s);
    if (n > 1 && s[n - 1] == '.')
        s[n - 1] = '\0';
}

/* ---- issuemail value (RFC 9495 3, the RFC 8659 4.2 issue-value syntax) ---- */

static int is_wsp(uint8_t c)
{
    return c == ' ' || c == '\t';
}

static int is_alnum(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* label = (ALPHA / DIGIT) *( *("-") (ALPHA / DIGIT)); returns its length at p (0: none). */
static size_t scan_label(const uint8_t *p, size_t n)
{
    if (n == 0 || !is_alnum(p[0]))
        return 0;
    size_t i = 1, last = 1;
    while (i < n && (is_alnum(p[i]) || p[i] == '-')) {
        i++;
        if (is_alnum(p[i - 1]))
            last = i;
    }
    return last; /* a trailing run of '-' is not part of the label */
}

void mc_caa_issuemail_parse(const uint8_t *v, size_t n, mc_caa_issuemail *out)
{
    memset(out, 0, sizeof *out);
    size_t i = 0;
    while (i < n && is_wsp(v[i]))
        i++;
    /* [issuer-domain-name *WSP] */
    size_t start = i, l;
    if ((l = scan_label(v + i, n - i)) > 0) {
        i += l;
        while (i + 1 < n && v[i] == '.' && (l = scan_label(v + i + 1, n - i - 1)) > 0)
            i += 1 + l;
        out->issuer = (const char *)v + start;
        out->issuer_len = i - start;
        while (i < n && is_wsp(v[i]))
            i++;
    }
    if (i < n) {
        /* ";" *WSP [parameters *WSP] */
        if (v[i] != ';')
            goto bad;
        i++;
        while (i < n && is_wsp(v[i]))
            i++;
        while (i < n) {
            /* parameter = tag *WSP "=" *WSP value */
            if ((l = scan_label(v + i, n - i)) == 0 || out->n_params == MC_CAA_PARAMS_MAX)
                goto bad;
            mc_caa_param *pm = &out->params[out->n_params++];
            pm->tag = (const char *)v + i;
            pm->tag_len = l;
            i += l;
            while (i < n && is_wsp(v[i]))
                i++;
            if (i == n || v[i] != '=')
                goto bad;
            i++;
            while (i < n && is_wsp(v[i]))
                i++;
            pm->value = (const char *)v + i;
            while (i < n && v[i] >= 0x21 && v[i] <= 0x7e && v[i] != ';')
                i++;
            pm->value_len = (size_t)((const char *)v + i - pm->value);
            while (i < n && is_wsp(v[i]))
                i++;
            if (i < n) {
                /* another parameter must follow a ";" (the ABNF has no trailing ";") */
                if (v[i] != ';')
                    goto bad;
                i++;
                while (i < n && is_wsp(v[i]))
                    i++;
                if (i == n)
                    goto bad;
            }
        }
    }
    out->valid = 1;
    return;
bad:
    /* RFC 9495 4: a value that does not match the ABNF counts as an empty issuer-domain-name. */
    memset(out, 0, sizeof *out);
}

const char *mc_caa_method_label(mc_vmethod m)
{
    switch (m) {
    case MC_VM_DOMAIN:
        return "ca-smime-domain";
    case MC_VM_EMAIL:
        return "ca-smime-email";
    case MC_VM_SMTP:
        return "ca-smime-mailserver";
    case MC_VM_ACME:
        return "email-reply-00";
    }
    return "";
}

/* validationmethods = label *("," label) (RFC 8657 4). 1 when label m is listed, 0 when not,
 * -1 when the value is malformed. */
static int methods_list_has(const char *v, size_t n, const char *m)
{
    size_t ml = strlen(m), i = 0;
    int found = 0;
    for (;;) {
        size_t j = i;
        while (j < n && v[j] != ',')
            j++;
        size_t l = scan_label((const uint8_t *)v + i, j - i);
        if (l == 0 || l != j - i)
            return -1;
        if (l == ml && memcmp(v + i, m, l) == 0)
            found = 1;
        if (j == n)
            return found;
        i = j + 1;
    }
}

/* ---- the decision ---- */

static void res_set(mc_caa_result *res, mc_caa_decision d, const char *rule, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void res_set(mc_caa_result *res, mc_caa_decision d, const char *rule, const char *fmt, ...)
{
    res->decision = d;
    res->retryable = d == MC_CAA_TEMPFAIL;
    snprintf(res->rule, sizeof res->rule, "%s", rule);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->reason, sizeof res->reason, fmt, ap);
    va_end(ap);
}

/* Printable rendering of a value for messages: non-printable bytes as \xNN, cut with "...". */
static const char *show(const uint8_t *p, size_t len, char *buf, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (o + 8 >= cap) {
            memcpy(buf + o, "...", 4);
            return buf;
        }
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\' && p[i] != '"')
            buf[o++] = (char)p[i];
        else
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", p[i]);
    }
    buf[o] = '\0';
    return buf;
}

/* Tags mailca understands (RFC 8659 4.1: unknown critical tags forbid issuance). */
static int tag_known(const char *t)
{
    return !strcasecmp(t, "issuemail") || !strcasecmp(t, "issue") || !strcasecmp(t, "issuewild") ||
           !strcasecmp(t, "iodef");
}

static int issuer_ours(const char *p, size_t n, const char *const *issuers, size_t n_issuers)
{
    for (size_t i = 0; i < n_issuers; i++)
        if (strlen(issuers[i]) == n && strncasecmp(issuers[i], p, n) == 0)
            return 1;
    return 0;
}

void mc_caa_evaluate(const mc_caa_record *recs, size_t n, const char *const *issuers,
                     size_t n_issuers, const char *account_uri, mc_vmethod method,
                     mc_caa_result *res)
{
    char v[96];
    res->matched = -1;
    /* RFC 8659 4.1: a critical property with a tag the CA does not process forbids issuance. */
    for (size_t i = 0; i < n; i++) {
        if ((recs[i].flags & 0x80) && !tag_known(recs[i].tag)) {
            res_set(res, MC_CAA_DENY, R_8659_CRIT,
                    "CAA record %u %s \"%s\" is critical and its tag is not understood",
                    recs[i].flags, show((const uint8_t *)recs[i].tag, strlen(recs[i].tag), v, 40),
                    show(recs[i].value, recs[i].value_len, v + 40, sizeof v - 40));
            return;
        }
    }
    size_t n_mail = 0;
    /* The most specific reason a record naming us did not authorise (RFC 8657). */
    const char *param_rule = NULL;
    char param_why[160] = "";
    char seen[160] = "";
    size_t seen_len = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(recs[i].tag, "issuemail") != 0)
            continue;
        n_mail++;
        if (seen_len + 4 < sizeof seen)
            seen_len += (size_t)snprintf(seen + seen_len, sizeof seen - seen_len, "%s\"%s\"",
                                         seen_len ? ", " : "",
                                         show(recs[i].value, recs[i].value_len, v, 48));
        if (seen_len >= sizeof seen)
            seen_len = sizeof seen - 1;
        mc_caa_issuemail im;
        if (recs[i].cut)
            continue; /* a value too long to keep is treated as malformed: never authorises */
        mc_caa_issuemail_parse(recs[i].value, recs[i].value_len, &im);
        if (!im.valid || im.issuer_len == 0 ||
            !issuer_ours(im.issuer, im.issuer_len, issuers, n_issuers))
            continue;
        /* RFC 8657 parameters, applied to issuemail (caa.h). */
        const mc_caa_param *acct = NULL, *vm = NULL;
        int dup = 0;
        for (size_t k = 0; k < im.n_params; k++) {
            const mc_caa_param *p = &im.params[k];
            if (p->tag_len == 10 && !strncasecmp(p->tag, "accounturi", 10)) {
                dup |= acct != NULL;
                acct = p;
            } else if (p->tag_len == 17 && !strncasecmp(p->tag, "validationmethods", 17)) {
                dup |= (vm != NULL) << 1;
                vm = p;
            }
        }
        if (dup & 1) {
            param_rule = R_8657_ACCOUNT;
            snprintf(param_why, sizeof param_why, "issuemail record %zu has accounturi twice", i);
            continue;
        }
        if (acct && (!account_uri || strlen(account_uri) != acct->value_len ||
                     memcmp(account_uri, acct->value, acct->value_len) != 0)) {
            param_rule = R_8657_ACCOUNT;
            snprintf(param_why, sizeof param_why,
                     "issuemail record binds account \"%s\", the order's account is \"%s\"",
                     show((const uint8_t *)acct->value, acct->value_len, v, 64),
                     account_uri ? account_uri : "(none)");
            continue;
        }
        if (dup & 2) {
            param_rule = R_8657_METHODS;
            snprintf(param_why, sizeof param_why,
                     "issuemail record %zu has validationmethods twice", i);
            continue;
        }
        if (vm) {
            int has = methods_list_has(vm->value, vm->value_len, mc_caa_method_label(method));
            if (has != 1) {
                param_rule = R_8657_METHODS;
                snprintf(param_why, sizeof param_why,
                         "issuemail record allows validationmethods=%s%s, the mailbox was "
                         "validated with %s",
                         show((const uint8_t *)vm->value, vm->value_len, v, 64),
                         has < 0 ? " (malformed)" : "", mc_caa_method_label(method));
                continue;
            }
        }
        res->matched = (int)i;
        res_set(res, MC_CAA_PERMIT, R_9495, "issuemail \"%s\" authorises %.*s",
                show(recs[i].value, recs[i].value_len, v, sizeof v), (int)im.issuer_len, im.issuer);
        return;
    }
    if (n_mail == 0) {
        if (n)
            res_set(res, MC_CAA_PERMIT, R_9495,
                    "the Relevant RRset (%zu records) has no issuemail property", n);
        else
            res_set(res, MC_CAA_PERMIT, R_9495, "no CAA records: the Relevant RRset is empty");
        return;
    }
    if (param_rule) {
        res_set(res, MC_CAA_DENY, param_rule, "%s", param_why);
        return;
    }
    res_set(res, MC_CAA_DENY, R_9495, "no issuemail property names %s (issuemail: %s)",
            n_issuers ? issuers[0] : "", seen);
}

/* ---- one DNS query, bounded by a deadline ---- */

typedef struct qslot {
    int done;
    int err;
    struct ub_result *r;
} qslot;

static void q_cb(void *arg, int err, struct ub_result *r)
{
    qslot *s = arg;
    s->err = err;
    s->r = r;
    s->done = 1;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sends a CAA query for name and waits for it at most timeout_ms. Returns the result (free with
 * ub.resolve_free), or NULL with why filled (timeout or libunbound error). */
static struct ub_result *q_run(mc_caa_ctx *c, const char *name, char *why, size_t why_cap)
{
    qslot s = {0};
    int id = 0;
    STAT_ADD(c, queries);
    pthread_mutex_lock(&c->ubmu);
    int rc = ub.resolve_async(c->ub, name, CAA_RRTYPE, CLASS_IN, &s, q_cb, &id);
    pthread_mutex_unlock(&c->ubmu);
    if (rc != 0) {
        snprintf(why, why_cap, "resolver error: %s", ub.strerror(rc));
        return NULL;
    }
    int64_t deadline = mono_ms() + c->timeout_ms;
    for (;;) {
        pthread_mutex_lock(&c->ubmu);
        ub.process(c->ub); /* runs the callbacks of every finished query, ours or not */
        int done = s.done;
        if (!done && mono_ms() >= deadline) {
            ub.cancel(c->ub, id); /* under ubmu: the callback cannot run after this */
            pthread_mutex_unlock(&c->ubmu);
            snprintf(why, why_cap, "timeout after %u ms", c->timeout_ms);
            return NULL;
        }
        pthread_mutex_unlock(&c->ubmu);
        if (done)
            break;
        /* Short polls: another thread's ub_process may consume the wake-up for our answer. */
        int64_t left = deadline - mono_ms();
        struct pollfd pfd = {.fd = ub.fd(c->ub), .events = POLLIN};
        poll(&pfd, 1, left < 0 ? 0 : left > 10 ? 10 : (int)left);
    }
    if (s.err) {
        snprintf(why, why_cap, "resolver error: %s", ub.strerror(s.err));
        if (s.r)
            ub.resolve_free(s.r);
        return NULL;
    }
    return s.r;
}

/* Parses one CAA RDATA (RFC 8659 4.1: flags, tag length, tag, value). 0 or -1. */
static int rdata_parse(const uint8_t *p, size_t n, mc_caa_record *r)
{
    memset(r, 0, sizeof *r);
    if (n < 2 || p[1] == 0 || p[1] >= MC_CAA_TAG_MAX || (size_t)p[1] + 2 > n)
        return -1;
    r->flags = p[0];
    for (size_t i = 0; i < p[1]; i++) {
        if (!is_alnum(p[2 + i]))
            return -1;
        r->tag[i] = (char)p[2 + i];
    }
    size_t vl = n - 2 - p[1];
    r->cut = vl > MC_CAA_VALUE_MAX;
    r->value_len = r->cut ? MC_CAA_VALUE_MAX : vl;
    memcpy(r->value, p + 2 + p[1], r->value_len);
    return 0;
}

static const char *rcode_name(int rc)
{
    switch (rc) {
    case 0:
        return "NOERROR";
    case 1:
        return "FORMERR";
    case 2:
        return "SERVFAIL";
    case 3:
        return "NXDOMAIN";
    case 4:
        return "NOTIMP";
    case 5:
        return "REFUSED";
    }
    return "rcode";
}

/* RFC 8659 3: the Relevant RRset of domain: the CAA RRset of the domain or, when empty, of its
 * closest ancestor with a non-empty one (up to the TLD). CNAMEs are followed by the resolver. */
static mc_err climb(mc_caa_ctx *c, const char *domain, int64_t now, outcome *o)
{
    mc_err rc = MC_OK;
    struct ub_result *r = NULL;
    const char *name = domain;
    int all_secure = 1;
    memset(o, 0, sizeof *o);
    o->ttl = UINT32_MAX;
    o->checked_at = now;
    STAT_ADD(c, lookups);
    for (;;) {
        char why[160];
        r = q_run(c, name, why, sizeof why);
        if (!r) {
            o->kind = OUT_FAIL;
            o->rcode = -1;
            snprintf(o->why, sizeof o->why, "CAA lookup of %.100s failed: %.60s (resolver %.40s)",
                     name, why, c->resolver);
            goto done;
        }
        o->rcode = r->rcode;
        if (r->bogus) {
            o->kind = OUT_BOGUS;
            o->dnssec = MC_CAA_DNSSEC_BOGUS;
            snprintf(o->why, sizeof o->why, "DNSSEC validation of CAA at %.100s failed: %.100s",
                     name, r->why_bogus ? r->why_bogus : "bogus");
            goto done;
        }
        if (r->rcode != 0 && r->rcode != 3) {
            o->kind = OUT_FAIL;
            snprintf(o->why, sizeof o->why, "CAA lookup of %.100s: %s (resolver %.40s)", name,
                     rcode_name(r->rcode), c->resolver);
            goto done;
        }
        all_secure &= r->secure != 0;
        if (r->ttl >= 0 && (unsigned)r->ttl < o->ttl)
            o->ttl = (unsigned)r->ttl;
        if (r->havedata) {
            size_t n = 0;
            while (r->data[n])
                n++;
            if (!(o->recs = calloc(n ? n : 1, sizeof *o->recs))) {
                rc = MC_ERR_NOMEM;
                goto done;
            }
            for (size_t i = 0; i < n; i++) {
                if (rdata_parse((const uint8_t *)r->data[i], (size_t)r->len[i], &o->recs[i])) {
                    /* Not a CAA RDATA we can read: refuse rather than guess (fail closed). */
                    o->kind = OUT_MALFORMED;
                    snprintf(o->why, sizeof o->why, "malformed CAA record %zu at %.100s", i, name);
                    goto done;
                }
            }
            o->n = n;
            snprintf(o->relevant, sizeof o->relevant, "%s", name);
            if (r->canonname && strcasecmp(r->canonname, r->qname) != 0) {
                snprintf(o->canonical, sizeof o->canonical, "%s", r->canonname);
                strip_dot(o->canonical);
            }
            break;
        }
        const char *dot = strchr(name, '.');
        if (!dot)
            break; /* the TLD had none either: the Relevant RRset is empty */
        name = dot + 1;
        ub.resolve_free(r);
        r = NULL;
    }
    o->kind = OUT_OK;
    o->dnssec = all_secure ? MC_CAA_DNSSEC_SECURE : MC_CAA_DNSSEC_INSECURE;
done:
    if (r)
        ub.resolve_free(r);
    if (o->ttl == UINT32_MAX)
        o->ttl = 0;
    return rc;
}

static void outcome_clear(outcome *o)
{
    free(o->recs);
    memset(o, 0, sizeof *o);
}

/* Fills res from an outcome and decides. */
static void outcome_to_result(const mc_caa_ctx *c, const outcome *o, const char *account_uri,
                              mc_vmethod method, mc_caa_result *res)
{
    snprintf(res->relevant, sizeof res->relevant, "%s", o->relevant);
    snprintf(res->canonical, sizeof res->canonical, "%s", o->canonical);
    snprintf(res->resolver, sizeof res->resolver, "%s", c->resolver);
    res->dnssec = o->dnssec;
    res->rcode = o->rcode;
    res->ttl = o->ttl;
    res->checked_at = o->checked_at;
    res->n_records = o->n;
    res->matched = -1;
    size_t k = o->n < MC_CAA_RECORDS_MAX ? o->n : MC_CAA_RECORDS_MAX;
    if (k)
        memcpy(res->records, o->recs, k * sizeof *o->recs);
    switch (o->kind) {
    case OUT_OK:
        mc_caa_evaluate(o->recs, o->n, (const char *const *)c->issuers, c->n_issuers, account_uri,
                        method, res);
        if (res->matched >= MC_CAA_RECORDS_MAX)
            res->matched = -1; /* authorised by a record beyond those copied */
        break;
    case OUT_BOGUS:
        res_set(res, MC_CAA_DENY, R_SBR, "%s", o->why);
        break;
    case OUT_MALFORMED:
        res_set(res, MC_CAA_DENY, R_8659_CRIT, "%s", o->why);
        break;
    default:
        res_set(res, MC_CAA_TEMPFAIL, R_SBR, "%.200s; issuance refused until a lookup succeeds",
                o->why);
        break;
    }
}

/* ---- cache ---- */

static size_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return (size_t)(h % BUCKETS);
}

static entry *cache_find(mc_caa_ctx *c, const char *d)
{
    for (entry *e = c->bucket[hash(d)]; e; e = e->next)
        if (!strcmp(e->domain, d))
            return e;
    return NULL;
}

/* Removes expired, idle entries (under mu). */
static void cache_sweep(mc_caa_ctx *c, int64_t now)
{
    for (size_t b = 0; b < BUCKETS; b++) {
        for (entry **pp = &c->bucket[b]; *pp;) {
            entry *e = *pp;
            if (!e->pending && !e->waiters && e->expires_at <= now) {
                *pp = e->next;
                outcome_clear(&e->out);
                free(e);
                c->n_entries--;
            } else {
                pp = &e->next;
            }
        }
    }
}

static int64_t lifetime(const mc_caa_ctx *c, const outcome *o)
{
    if (o->kind == OUT_FAIL)
        return c->fail_ttl;
    unsigned t = o->ttl;
    if (t < c->min_ttl)
        t = c->min_ttl;
    if (t > c->max_ttl)
        t = c->max_ttl;
    return t;
}

/* Answers domain from the cache, or looks it up (one thread per domain at a time). */
static mc_err cache_get(mc_caa_ctx *c, const char *d, const char *account_uri, mc_vmethod method,
                        int64_t now, mc_caa_result *res)
{
    mc_err rc = MC_OK;
    pthread_mutex_lock(&c->mu);
    entry *e = cache_find(c, d);
    if (!e) {
        if (c->n_entries >= SWEEP_AT)
            cache_sweep(c, now);
        if (!(e = calloc(1, sizeof *e))) {
            rc = MC_ERR_NOMEM;
            goto done;
        }
        snprintf(e->domain, sizeof e->domain, "%s", d);
        size_t b = hash(d);
        e->next = c->bucket[b];
        c->bucket[b] = e;
        c->n_entries++;
    }
    if (e->pending) {
        STAT_ADD(c, coalesced);
        e->waiters++;
        while (e->pending)
            pthread_cond_wait(&c->cond, &c->mu);
        e->waiters--;
        if (e->have) {
            STAT_ADD(c, hits);
            outcome_to_result(c, &e->out, account_uri, method, res);
            res->cached = 1;
            goto done;
        }
        /* the lookup ran out of memory: try ourselves */
    } else if (e->have && now < e->expires_at) {
        STAT_ADD(c, hits);
        outcome_to_result(c, &e->out, account_uri, method, res);
        res->cached = 1;
        goto done;
    }
    e->pending = 1;
    pthread_mutex_unlock(&c->mu);
    outcome o;
    rc = climb(c, d, now, &o);
    pthread_mutex_lock(&c->mu);
    e->pending = 0;
    if (rc == MC_OK) {
        outcome_clear(&e->out);
        e->out = o;
        e->have = 1;
        e->expires_at = now + lifetime(c, &o);
        outcome_to_result(c, &e->out, account_uri, method, res);
        res->cached = 0;
    } else {
        outcome_clear(&o);
    }
    pthread_cond_broadcast(&c->cond);
done:
    pthread_mutex_unlock(&c->mu);
    return rc;
}

void mc_caa_cache_clear(mc_caa_ctx *c)
{
    for (size_t i = 0; i < c->n_sub; i++)
        mc_caa_cache_clear(c->sub[i]);
    pthread_mutex_lock(&c->mu);
    cache_sweep(c, INT64_MAX);
    pthread_mutex_unlock(&c->mu);
}

/* ---- public ---- */

static void ctx_destroy(mc_caa_ctx *c)
{
    if (!c)
        return;
    if (c->ub)
        ub.ctx_delete(c->ub);
    for (size_t i = 0; i < c->n_sub; i++)
        ctx_destroy(c->sub[i]);
    for (size_t i = 0; i < c->n_issuers; i++)
        free(c->issuers[i]);
    free(c->issuers);
    cache_sweep(c, INT64_MAX);
    pthread_mutex_destroy(&c->ubmu);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cond);
    free(c);
}

void mc_caa_ctx_free(mc_caa_ctx *c)
{
    ctx_destroy(c);
}

static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= MC_CAA_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum((uint8_t)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return 0;
    return 1;
}

/* TLS BR 3.2.2.9: with 2..5 remote perspectives 1 may fail to corroborate, with 6+ 2. */
static unsigned default_quorum(size_t n)
{
    size_t remote = n - 1;
    size_t allowed = remote < 2 ? 0 : remote <= 5 ? 1 : 2;
    return (unsigned)(1 + remote - allowed);
}

/* One single-perspective context per configured perspective (caa.h). */
static mc_err perspectives_new(mc_caa_ctx *c, const mc_caa_config *cfg, mc_errdetail *err)
{
    mc_err rc = MC_OK;
    c->quorum = cfg->quorum ? cfg->quorum : default_quorum(cfg->n_perspectives);
    size_t rl = (size_t)snprintf(c->resolver, sizeof c->resolver, "mpic:");
    for (size_t i = 0; i < cfg->n_perspectives; i++) {
        const mc_caa_perspective *pv = &cfg->perspectives[i];
        char name[MC_CAA_NAME_MAX];
        if (pv->name && !name_ok(pv->name))
            return mc_err_set(err, MC_ERR_CONFIG, "caa.perspectives", R_MPIC,
                              "perspective %zu's name \"%.40s\" is not 1..%d characters of "
                              "[A-Za-z0-9._-]",
                              i, pv->name, MC_CAA_NAME_MAX - 1);
        snprintf(name, sizeof name, "%s", pv->name ? pv->name : "");
        if (!pv->name)
            snprintf(name, sizeof name, "p%zu", i);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(c->sub[j]->name, name))
                return mc_err_set(err, MC_ERR_CONFIG, "caa.perspectives", R_MPIC,
                                  "two perspectives are named \"%s\"", name);
        mc_caa_config one = *cfg;
        one.n_perspectives = 0;
        one.quorum = 0;
        one.n_resolvers = pv->n_resolvers;
        memset(one.resolvers, 0, sizeof one.resolvers);
        for (size_t k = 0; k < pv->n_resolvers && k < MC_CAA_RESOLVERS_MAX; k++)
            one.resolvers[k] = pv->resolvers[k];
        if ((rc = mc_caa_ctx_new(&one, &c->sub[i], err)) != MC_OK) {
            if (err && !strcmp(err->field, "caa.resolvers"))
                snprintf(err->field, sizeof err->field, "caa.perspectives[%zu]", i);
            return rc;
        }
        c->n_sub++;
        snprintf(c->sub[i]->name, sizeof c->sub[i]->name, "%s", name);
        if (rl < sizeof c->resolver)
            rl += (size_t)snprintf(c->resolver + rl, sizeof c->resolver - rl, "%s%s", i ? "," : "",
                                   name);
    }
    return MC_OK;
}

mc_err mc_caa_ctx_new(const mc_caa_config *cfg, mc_caa_ctx **out, mc_errdetail *err)
{
    mc_err rc = MC_OK;
    mc_caa_ctx *c = NULL;
    *out = NULL;
    pthread_once(&ub_once, ub_load);
    if (ub_loaded != 1)
        return mc_err_set(err, MC_ERR_UNSUPPORTED, "caa", NULL,
                          "libunbound is not available (%s): install libunbound8", ub_load_error);
    if (cfg->n_issuers == 0 || cfg->n_issuers > MC_CAA_ISSUERS_MAX)
        return mc_err_set(err, MC_ERR_CONFIG, "caa.issuer_domains", R_SBR,
                          "%zu Issuer Domain Names: 1..%d needed", cfg->n_issuers,
                          MC_CAA_ISSUERS_MAX);
    if (cfg->n_resolvers > MC_CAA_RESOLVERS_MAX)
        return mc_err_set(err, MC_ERR_CONFIG, "caa.resolvers", NULL, "%zu resolvers: at most %d",
                          cfg->n_resolvers, MC_CAA_RESOLVERS_MAX);
    if (cfg->n_perspectives > MC_CAA_PERSPECTIVES_MAX)
        return mc_err_set(err, MC_ERR_CONFIG, "caa.perspectives", R_MPIC,
                          "%zu perspectives: at most %d", cfg->n_perspectives,
                          MC_CAA_PERSPECTIVES_MAX);
    if (cfg->n_perspectives && cfg->n_resolvers)
        return mc_err_set(err, MC_ERR_CONFIG, "caa.resolvers", R_MPIC,
                          "resolvers and perspectives are both set: with perspectives, the "
                          "primary's resolvers are perspectives[0]");
    if (cfg->quorum > (cfg->n_perspectives ? cfg->n_perspectives : 1))
        return mc_err_set(err, MC_ERR_CONFIG, "caa.quorum", R_MPIC,
                          "quorum %u exceeds the %zu perspectives", cfg->quorum,
                          cfg->n_perspectives ? cfg->n_perspectives : 1);
    unsigned max_ttl = cfg->max_ttl ? cfg->max_ttl : MC_CAA_MAX_TTL_LIMIT;
    if (max_ttl > MC_CAA_MAX_TTL_LIMIT || cfg->min_ttl > max_ttl ||
        cfg->fail_ttl > MC_CAA_MAX_TTL_LIMIT)
        return mc_err_set(err, MC_ERR_CONFIG, "caa.max_ttl", R_SBR,
                          "cache times min %u, max %u, fail %u s: need min <= max <= %d and "
                          "fail <= %d",
                          cfg->min_ttl, max_ttl, cfg->fail_ttl, MC_CAA_MAX_TTL_LIMIT,
                          MC_CAA_MAX_TTL_LIMIT);
    if (!(c = calloc(1, sizeof *c)) || !(c->issuers = calloc(cfg->n_issuers, sizeof(char *)))) {
        free(c);
        return mc_err_set(err, MC_ERR_NOMEM, "caa", NULL, "CAA context");
    }
    pthread_mutex_init(&c->ubmu, NULL);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cond, NULL);
    c->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 5000;
    c->min_ttl = cfg->min_ttl;
    c->max_ttl = max_ttl;
    c->fail_ttl = cfg->fail_ttl;
    for (size_t i = 0; i < cfg->n_issuers; i++) {
        char norm[MC_CAA_DOMAIN_MAX];
        const char *s = cfg->issuers[i] ? cfg->issuers[i] : "";
        if (domain_norm(s, strlen(s), norm) != 0) {
            rc = mc_err_set(err, MC_ERR_CONFIG, "caa.issuer_domains", R_SBR,
                            "Issuer Domain Name \"%.80s\" is not a domain name", s);
            goto done;
        }
        if (!(c->issuers[i] = strdup(norm))) {
            rc = mc_err_set(err, MC_ERR_NOMEM, "caa", NULL, "CAA context");
            goto done;
        }
        c->n_issuers++;
    }
    if (cfg->n_perspectives) {
        if ((rc = perspectives_new(c, cfg, err)) != MC_OK)
            goto done;
        *out = c;
        c = NULL;
        goto done;
    }
    if (!(c->ub = ub.ctx_create())) {
        rc = mc_err_set(err, MC_ERR_NOMEM, "caa", NULL, "ub_ctx_create failed");
        goto done;
    }
    int ur = ub.ctx_async(c->ub, 1);
    /* A CA may run its resolver on the same host: allow loopback upstreams. */
    if (!ur && cfg->n_resolvers)
        ur = ub.ctx_set_option(c->ub, "do-not-query-localhost:", "no");
    if (ur) {
        rc = mc_err_set(err, MC_ERR_CONFIG, "caa", NULL, "libunbound setup: %s", ub.strerror(ur));
        goto done;
    }
    size_t rl = 0;
    for (size_t i = 0; i < cfg->n_resolvers; i++) {
        const char *a = cfg->resolvers[i] ? cfg->resolvers[i] : "";
        if ((ur = ub.ctx_set_fwd(c->ub, a)) != 0) {
            rc = mc_err_set(err, MC_ERR_CONFIG, "caa.resolvers", NULL,
                            "resolver \"%.80s\": %s (expected ip or ip@port)", a, ub.strerror(ur));
            goto done;
        }
        if (rl < sizeof c->resolver)
            rl += (size_t)snprintf(c->resolver + rl, sizeof c->resolver - rl, "%s%s", i ? "," : "",
                                   a);
    }
    if (!cfg->n_resolvers)
        snprintf(c->resolver, sizeof c->resolver, "recursive");
    if (cfg->ta_file && (ur = ub.ctx_add_ta_file(c->ub, cfg->ta_file)) != 0) {
        rc = mc_err_set(err, MC_ERR_CONFIG, "caa.trust_anchor_file", NULL, "\"%.80s\": %s",
                        cfg->ta_file, ub.strerror(ur));
        goto done;
    }
    if (cfg->ta && (ur = ub.ctx_add_ta(c->ub, cfg->ta)) != 0) {
        rc = mc_err_set(err, MC_ERR_CONFIG, "caa.trust_anchor", NULL, "\"%.80s\": %s", cfg->ta,
                        ub.strerror(ur));
        goto done;
    }
    *out = c;
    c = NULL;
done:
    ctx_destroy(c);
    return rc;
}

/* ---- multi-perspective corroboration (caa.h) ---- */

/* Answers from perspective p's cache without waiting: 1 when it could (res filled). */
static int cache_peek(mc_caa_ctx *p, const char *d, const char *account_uri, mc_vmethod method,
                      int64_t now, mc_caa_result *res)
{
    int hit = 0;
    pthread_mutex_lock(&p->mu);
    entry *e = cache_find(p, d);
    if (e && !e->pending && e->have && now < e->expires_at) {
        STAT_ADD(p, hits);
        outcome_to_result(p, &e->out, account_uri, method, res);
        res->cached = 1;
        hit = 1;
    }
    pthread_mutex_unlock(&p->mu);
    return hit;
}

typedef struct pjob {
    mc_caa_ctx *p;
    const char *domain, *account_uri;
    mc_vmethod method;
    int64_t now;
    mc_caa_result *res;
    mc_err rc;
} pjob;

static void *pjob_run(void *arg)
{
    pjob *j = arg;
    j->rc = cache_get(j->p, j->domain, j->account_uri, j->method, j->now, j->res);
    if (j->rc != MC_OK)
        res_set(j->res, MC_CAA_TEMPFAIL, R_SBR, "out of memory during the CAA lookup");
    return NULL;
}

static void view_from(mc_caa_view *v, const mc_caa_ctx *p, const mc_caa_result *r)
{
    snprintf(v->name, sizeof v->name, "%s", p->name);
    v->decision = r->decision;
    snprintf(v->rule, sizeof v->rule, "%s", r->rule);
    snprintf(v->reason, sizeof v->reason, "%s", r->reason);
    snprintf(v->resolver, sizeof v->resolver, "%s", p->resolver);
    snprintf(v->relevant, sizeof v->relevant, "%s", r->relevant);
    v->dnssec = r->dnssec;
    v->rcode = r->rcode;
    v->ttl = r->ttl;
    v->checked_at = r->checked_at;
    v->cached = r->cached;
    v->matched = r->matched;
    v->n_records = r->n_records;
}

/* Asks every perspective (the uncached ones in parallel) and decides (caa.h, rules 1-4). res has
 * been zeroed and holds the normalised domain. */
static mc_err mpic_check(mc_caa_ctx *c, const char *d, const char *account_uri, mc_vmethod method,
                         int64_t now, mc_caa_result *res)
{
    size_t n = c->n_sub, n_miss = 0;
    pjob jobs[MC_CAA_PERSPECTIVES_MAX];
    pthread_t tid[MC_CAA_PERSPECTIVES_MAX];
    int started[MC_CAA_PERSPECTIVES_MAX] = {0};
    mc_err rc = MC_OK;
    /* The perspectives' own results: only the fields before views are used. */
    mc_caa_result *r = malloc(n * sizeof *r);
    if (!r)
        return MC_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        memset(&r[i], 0, offsetof(mc_caa_result, views));
        r[i].matched = -1;
        atomic_fetch_add(&c->sub[i]->checks, 1);
        if (!cache_peek(c->sub[i], d, account_uri, method, now, &r[i]))
            jobs[n_miss++] = (pjob){c->sub[i], d, account_uri, method, now, &r[i], MC_OK};
    }
    /* One thread per perspective that has to query, the last one on this thread. */
    for (size_t k = 0; k + 1 < n_miss; k++)
        started[k] = pthread_create(&tid[k], NULL, pjob_run, &jobs[k]) == 0;
    for (size_t k = 0; k < n_miss; k++)
        if (!started[k])
            pjob_run(&jobs[k]);
    for (size_t k = 0; k < n_miss; k++) {
        if (started[k])
            pthread_join(tid[k], NULL);
        if (jobs[k].rc != MC_OK)
            rc = jobs[k].rc;
    }

    /* The primary's RRset is the one recorded; the TTL and age are the most conservative. */
    const mc_caa_result *pr = &r[0];
    snprintf(res->relevant, sizeof res->relevant, "%s", pr->relevant);
    snprintf(res->canonical, sizeof res->canonical, "%s", pr->canonical);
    snprintf(res->resolver, sizeof res->resolver, "%s", c->resolver);
    res->dnssec = pr->dnssec;
    res->rcode = pr->rcode;
    res->matched = pr->matched;
    res->n_records = pr->n_records;
    size_t kr = pr->n_records < MC_CAA_RECORDS_MAX ? pr->n_records : MC_CAA_RECORDS_MAX;
    memcpy(res->records, pr->records, kr * sizeof *pr->records);
    res->ttl = pr->ttl;
    res->checked_at = pr->checked_at;
    res->cached = 1;
    res->quorum = c->quorum;
    res->n_perspectives = n;
    size_t deny = n;
    for (size_t i = 0; i < n; i++) {
        view_from(&res->views[i], c->sub[i], &r[i]);
        res->cached &= r[i].cached;
        if (r[i].decision == MC_CAA_PERMIT) {
            res->permits++;
            if (r[i].ttl < res->ttl)
                res->ttl = r[i].ttl;
            if (r[i].checked_at < res->checked_at)
                res->checked_at = r[i].checked_at;
        } else if (r[i].decision == MC_CAA_DENY && deny == n) {
            deny = i;
        }
    }
    if (deny < n) {
        /* 1: a prohibition seen by any perspective refuses issuance. */
        res_set(res, MC_CAA_DENY, r[deny].rule, "perspective %s: %.200s", c->sub[deny]->name,
                r[deny].reason);
    } else if (pr->decision != MC_CAA_PERMIT) {
        /* 2: nothing to corroborate. */
        res_set(res, MC_CAA_TEMPFAIL, pr->rule, "primary perspective %s: %.200s", c->sub[0]->name,
                pr->reason);
    } else if (res->permits < c->quorum) {
        /* 3: not enough corroboration: fail closed, retryable. */
        size_t f = 1;
        while (f < n && r[f].decision == MC_CAA_PERMIT)
            f++;
        res_set(res, MC_CAA_TEMPFAIL, R_MPIC,
                "%u of %zu perspectives permit, quorum %u; %s: %.160s", res->permits, n, c->quorum,
                f < n ? c->sub[f]->name : "?", f < n ? r[f].reason : "");
    } else {
        res_set(res, MC_CAA_PERMIT, pr->rule, "%.190s (%u of %zu perspectives permit, quorum %u)",
                pr->reason, res->permits, n, c->quorum);
    }
    free(r);
    return rc;
}

mc_err mc_caa_check(mc_caa_ctx *c, const char *domain, const char *account_uri, mc_vmethod method,
                    int64_t now, mc_caa_result *res, mc_errdetail *err)
{
    mc_err rc = MC_OK;
    memset(res, 0, sizeof *res);
    res->matched = -1;
    STAT_ADD(c, checks);
    size_t dl = domain ? strlen(domain) : 0;
    if (dl >= MC_CAA_DOMAIN_MAX || domain_norm(domain ? domain : "", dl, res->domain) != 0) {
        snprintf(res->domain, sizeof res->domain, "%.*s", (int)(dl < 200 ? dl : 200),
                 domain ? domain : "");
        res_set(res, MC_CAA_DENY, "SBR 1.6.1", "\"%s\" is not a domain name", res->domain);
        rc = mc_err_set(err, MC_ERR_INVALID, "domain", res->rule, "%s", res->reason);
        goto done;
    }
    if (c->n_sub)
        rc = mpic_check(c, res->domain, account_uri, method, now, res);
    else
        rc = cache_get(c, res->domain, account_uri, method, now, res);
    if (rc != MC_OK) {
        res_set(res, MC_CAA_TEMPFAIL, R_SBR, "out of memory during the CAA lookup");
        mc_err_set(err, rc, "domain", res->rule, "%s", res->reason);
        goto done;
    }
    if (res->decision == MC_CAA_DENY)
        rc = mc_err_set(err, MC_CAA_ERR_DENIED, "domain", res->rule, "CAA for %s: %s", res->domain,
                        res->reason);
    else if (res->decision == MC_CAA_TEMPFAIL)
        rc = mc_err_set(err, MC_CAA_ERR_TEMPFAIL, "domain", res->rule, "%s", res->reason);
done:
    return rc;
}

mc_err mc_caa_check_mailbox(mc_caa_ctx *c, const mc_order *o, size_t i, const char *account_uri,
                            int64_t now, mc_caa_result *res, mc_errdetail *err)
{
    char field[MC_ERR_FIELD_MAX], dom[MC_CAA_DOMAIN_MAX];
    snprintf(field, sizeof field, "mailboxes[%zu].address", i);
    if (i >= o->n_mailboxes) {
        memset(res, 0, sizeof *res);
        return mc_err_set(err, MC_ERR_INTERNAL, field, NULL, "no mailbox %zu", i);
    }
    const mc_str *a = &o->mailboxes[i].address;
    const char *at = a->len ? memrchr(a->p, '@', a->len) : NULL;
    size_t dl = at ? a->len - (size_t)(at + 1 - a->p) : 0;
    if (!at || dl == 0 || dl >= sizeof dom) {
        memset(res, 0, sizeof *res);
        return mc_err_set(err, MC_ERR_INVALID, field, "SBR 1.6.1", "mailbox has no domain");
    }
    memcpy(dom, at + 1, dl);
    dom[dl] = '\0';
    mc_err rc = mc_caa_check(c, dom, account_uri, o->mailboxes[i].method, now, res, err);
    if (rc != MC_OK && err)
        snprintf(err->field, sizeof err->field, "%s", field);
    return rc;
}

int mc_caa_result_fresh(const mc_caa_result *res, int64_t now)
{
    /* SBR 4.2.2.1: issue within the TTL of the CAA record or 8 hours, whichever is greater. */
    int64_t window = res->ttl > MC_CAA_MAX_TTL_LIMIT ? res->ttl : MC_CAA_MAX_TTL_LIMIT;
    return res->decision == MC_CAA_PERMIT && now >= res->checked_at &&
           now - res->checked_at <= window;
}

void mc_caa_stats_get(mc_caa_ctx *c, mc_caa_stats *s)
{
    s->checks = atomic_load(&c->checks);
    s->cache_hits = atomic_load(&c->hits);
    s->lookups = atomic_load(&c->lookups);
    s->queries = atomic_load(&c->queries);
    s->coalesced = atomic_load(&c->coalesced);
    for (size_t i = 0; i < c->n_sub; i++) {
        mc_caa_stats p;
        mc_caa_stats_get(c->sub[i], &p);
        s->cache_hits += p.cache_hits;
        s->lookups += p.lookups;
        s->queries += p.queries;
        s->coalesced += p.coalesced;
    }
}

mc_err mc_caa_stats_perspective(mc_caa_ctx *c, size_t i, mc_caa_stats *s)
{
    memset(s, 0, sizeof *s);
    if (c->n_sub == 0 && i == 0) {
        mc_caa_stats_get(c, s);
        return MC_OK;
    }
    if (i >= c->n_sub)
        return MC_ERR_INVALID;
    mc_caa_stats_get(c->sub[i], s);
    return MC_OK;
}

/* ---- configuration text ---- */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

mc_err mc_caa_config_perspectives(mc_caa_config *cfg, char *spec, mc_errdetail *err)
{
    cfg->n_perspectives = 0;
    memset(cfg->perspectives, 0, sizeof cfg->perspectives);
    if (!spec || !*trim(spec))
        return MC_OK;
    char *save = NULL;
    for (char *grp = strtok_r(spec, ";", &save); grp; grp = strtok_r(NULL, ";", &save)) {
        if (cfg->n_perspectives == MC_CAA_PERSPECTIVES_MAX)
            return mc_err_set(err, MC_ERR_CONFIG, "caa.perspectives", R_MPIC,
                              "more than %d perspectives", MC_CAA_PERSPECTIVES_MAX);
        size_t i = cfg->n_perspectives;
        mc_caa_perspective *pv = &cfg->perspectives[i];
        char *eq = strchr(grp, '=');
        if (eq) {
            *eq = '\0';
            pv->name = trim(grp);
            if (!name_ok(pv->name))
                return mc_err_set(err, MC_ERR_CONFIG, "caa.perspectives", R_MPIC,
                                  "perspective %zu's name \"%.40s\" is not 1..%d characters of "
                                  "[A-Za-z0-9._-]",
                                  i, pv->name, MC_CAA_NAME_MAX - 1);
            grp = eq + 1;
        }
        char *save2 = NULL;
        for (char *a = strtok_r(grp, ",", &save2); a; a = strtok_r(NULL, ",", &save2)) {
            a = trim(a);
            if (!*a)
                continue;
            if (pv->n_resolvers == MC_CAA_RESOLVERS_MAX)
                return mc_err_set(err, MC_ERR_CONFIG, "caa.perspectives", R_MPIC,
                                  "perspective %zu has more than %d resolvers", i,
                                  MC_CAA_RESOLVERS_MAX);
            pv->resolvers[pv->n_resolvers++] = a;
        }
        if (pv->n_resolvers == 0)
            return mc_err_set(err, MC_ERR_CONFIG, "caa.perspectives", R_MPIC,
                              "perspective %zu has no resolver", i);
        cfg->n_perspectives++;
    }
    return MC_OK;
}

/* ---- JSON ---- */

/* JSON writer for provenance. A result is rendered once per mailbox of every order issued with
 * CAA on, so it appends bytes directly: no printf per field or character (that cost the engine
 * about 8% of its throughput in `mailca bench --caa`, docs/bench.md). The buffer keeps room for
 * the terminating NUL. */
typedef struct jbuf {
    char *p;
    size_t n, cap;
    int over;
} jbuf;

static void jraw(jbuf *j, const char *s, size_t len)
{
    if (j->over || len >= j->cap - j->n) {
        j->over = 1;
        return;
    }
    memcpy(j->p + j->n, s, len);
    j->n += len;
}

#define JLIT(j, lit) jraw((j), (lit), sizeof(lit) - 1)

static void jcstr(jbuf *j, const char *s)
{
    jraw(j, s, strlen(s));
}

/* A signed decimal. */
static void jint(jbuf *j, int64_t v)
{
    char t[24];
    size_t i = sizeof t;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        t[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        t[--i] = '-';
    jraw(j, t + i, sizeof t - i);
}

static void jbool(jbuf *j, int b)
{
    if (b)
        JLIT(j, "true");
    else
        JLIT(j, "false");
}

/* A JSON string of len bytes: '"' and '\\' escaped, every byte outside printable ASCII as
 * \u00XX on its own (bytes, not text). Runs of plain bytes are copied at once. */
static void jstr(jbuf *j, const void *vp, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const uint8_t *s = vp;
    JLIT(j, "\"");
    size_t run = 0;
    for (size_t i = 0; i < len && !j->over; i++) {
        uint8_t ch = s[i];
        if (ch != '"' && ch != '\\' && ch >= 0x20 && ch < 0x7f)
            continue;
        jraw(j, (const char *)s + run, i - run);
        run = i + 1;
        if (ch == '"' || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            jraw(j, e, 2);
        } else {
            char e[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
            jraw(j, e, 6);
        }
    }
    if (run < len)
        jraw(j, (const char *)s + run, len - run);
    JLIT(j, "\"");
}

/* ,"k":"v" */
static void jkey(jbuf *j, const char *k, const char *v)
{
    JLIT(j, ",\"");
    jcstr(j, k);
    JLIT(j, "\":");
    jstr(j, v, strlen(v));
}

/* ,"k":N */
static void jkint(jbuf *j, const char *k, int64_t v)
{
    JLIT(j, ",\"");
    jcstr(j, k);
    JLIT(j, "\":");
    jint(j, v);
}

mc_err mc_caa_result_json(const mc_caa_result *r, char *buf, size_t cap, size_t *len)
{
    static const char *const dec[] = {"?", "permit", "deny", "tempfail"};
    static const char *const sec[] = {"insecure", "secure", "bogus"};
    jbuf j = {buf, 0, cap, cap == 0};
    JLIT(&j, "{\"domain\":");
    jstr(&j, r->domain, strlen(r->domain));
    jkey(&j, "decision", dec[r->decision <= MC_CAA_TEMPFAIL ? r->decision : 0]);
    jkey(&j, "rule", r->rule);
    jkey(&j, "reason", r->reason);
    jkey(&j, "relevant", r->relevant);
    jkey(&j, "canonical", r->canonical);
    jkey(&j, "dnssec", sec[r->dnssec <= MC_CAA_DNSSEC_BOGUS ? r->dnssec : 0]);
    jkint(&j, "rcode", r->rcode);
    jkint(&j, "ttl", r->ttl);
    jkint(&j, "checked_at", r->checked_at);
    JLIT(&j, ",\"cached\":");
    jbool(&j, r->cached);
    jkey(&j, "resolver", r->resolver);
    jkint(&j, "matched", r->matched);
    JLIT(&j, ",\"records\":[");
    size_t k = r->n_records < MC_CAA_RECORDS_MAX ? r->n_records : MC_CAA_RECORDS_MAX;
    for (size_t i = 0; i < k; i++) {
        if (i)
            JLIT(&j, ",");
        JLIT(&j, "{\"flags\":");
        jint(&j, r->records[i].flags);
        JLIT(&j, ",\"tag\":");
        jstr(&j, r->records[i].tag, strlen(r->records[i].tag));
        JLIT(&j, ",\"value\":");
        jstr(&j, r->records[i].value, r->records[i].value_len);
        if (r->records[i].cut)
            JLIT(&j, ",\"cut\":true");
        JLIT(&j, "}");
    }
    JLIT(&j, "]");
    jkint(&j, "n_records", (int64_t)r->n_records);
    if (r->n_perspectives) {
        jkint(&j, "quorum", r->quorum);
        jkint(&j, "permits", r->permits);
        JLIT(&j, ",\"perspectives\":[");
        for (size_t i = 0; i < r->n_perspectives && i < MC_CAA_PERSPECTIVES_MAX; i++) {
            const mc_caa_view *v = &r->views[i];
            if (i)
                JLIT(&j, ",");
            JLIT(&j, "{\"name\":");
            jstr(&j, v->name, strlen(v->name));
            jkey(&j, "decision", dec[v->decision <= MC_CAA_TEMPFAIL ? v->decision : 0]);
            jkey(&j, "rule", v->rule);
            jkey(&j, "reason", v->reason);
            jkey(&j, "resolver", v->resolver);
            jkey(&j, "relevant", v->relevant);
            jkey(&j, "dnssec", sec[v->dnssec <= MC_CAA_DNSSEC_BOGUS ? v->dnssec : 0]);
            jkint(&j, "rcode", v->rcode);
            jkint(&j, "ttl", v->ttl);
            jkint(&j, "checked_at", v->checked_at);
            JLIT(&j, ",\"cached\":");
            jbool(&j, v->cached);
            jkint(&j, "matched", v->matched);
            jkint(&j, "n_records", (int64_t)v->n_records);
            JLIT(&j, "}");
        }
        JLIT(&j, "]");
    }
    JLIT(&j, "}");
    if (j.over) {
        if (cap)
            buf[0] = '\0';
        if (len)
            *len = 0;
        return MC_ERR_NOMEM;
    }
    buf[j.n] = '\0';
    if (len)
        *len = j.n;
    return MC_OK;
}
