/*
 * p11fault: a PKCS#11 module for tests that wraps a real one (SoftHSM2 by default) and, under
 * the test's control, makes chosen calls fail with chosen CKR_ codes, slows them down, or hangs
 * them. Everything else is forwarded unchanged, so the token, its keys and its signatures are
 * the real module's.
 *
 * Environment (read at the first C_GetFunctionList / C_Initialize):
 *   P11FAULT_MODULE   the real module to wrap (default: P11FAULT_DEFAULT_MODULE, SoftHSM2).
 *   P11FAULT_CONTROL  a text file of rules (optional; no file = no faults). It is re-read when
 *                     its mtime, size or inode changes, checked with stat() at every call.
 *                     Timestamps can be coarse (a few ms), so a test that rewrites the file
 *                     quickly should write a new file and rename() it over the old one (a new
 *                     inode is always noticed).
 *   P11FAULT_STATS    a file that receives the call counters (rewritten at C_Finalize and at
 *                     unload): one line per function called, "C_Sign calls=12 injected=3
 *                     max_concurrent=4": the most calls of the function that were inside this
 *                     module's judging at once (the added delays included), which shows how
 *                     many calls a caller keeps in flight against a slow HSM.
 *
 * Control file: one rule per line, '#' starts a comment, blank lines are ignored.
 *     FUNCTION [after=N] [count=N] [rv=CKR_NAME|0xHEX|DEC] [delay_us=N] [hang] [close_session]
 *              [logout]
 * e.g.
 *     C_Sign after=100 count=5 rv=CKR_DEVICE_ERROR   # calls 101..105 of C_Sign fail
 *     C_Sign delay_us=1000                           # every C_Sign takes >= 1 ms more
 *     C_Sign hang                                    # C_Sign blocks until this line goes away
 *     C_Sign count=1 rv=CKR_SESSION_HANDLE_INVALID close_session
 * - Each rule counts the calls of its function from the moment the file was (re)loaded; it
 *   applies to calls after+1 .. after+count (count absent or 0: every call after `after`).
 * - All rules that apply to a call take effect together: their delays add up, any hang hangs,
 *   and the first one (in file order) with an rv decides the result.
 * - rv: the call is not forwarded and returns that code. Exceptions that keep the real
 *   module's state what PKCS#11 says a failed call leaves: C_Sign and C_SignFinal with an
 *   output buffer first run the real call into a scratch buffer (a failed C_Sign ends the
 *   signing operation), and close_session then closes the real session (so the handle is
 *   really dead afterwards, as after CKR_SESSION_HANDLE_INVALID from a device); logout calls
 *   the real C_Logout (the whole application is logged out, as after a token reset: sessions
 *   opened afterwards are public until someone logs in again).
 * - hang: the call waits (polling the control file every millisecond) until no rule makes it
 *   hang any more, then is evaluated again against the new rules and forwarded.
 * A control file that does not parse is reported on stderr, and while it stays invalid every
 * call fails with CKR_GENERAL_ERROR, so a misspelt rule cannot pass for "no fault".
 *
 * Threads: the forwarding path takes no lock. Rules are immutable once loaded and published
 * through an atomic pointer; their counters are atomics. Only a reload takes a mutex. Rule sets
 * replaced by a reload are kept until the module is unloaded (a caller may still be reading
 * one), which costs a little memory per reload.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#ifndef P11FAULT_DEFAULT_MODULE
#define P11FAULT_DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#endif

#define EXPORT __attribute__((visibility("default")))

/* Every function of the v2.40 list except C_GetFunctionList: name, parameters, arguments, and
 * the session the call is about (0 when none). */
#define P11FAULT_FUNCS(X)                                                                          \
    X(C_Initialize, (void *a), (a), 0)                                                             \
    X(C_Finalize, (void *a), (a), 0)                                                               \
    X(C_GetInfo, (CK_INFO * a), (a), 0)                                                            \
    X(C_GetSlotList, (unsigned char a, CK_SLOT_ID *b, unsigned long *c), (a, b, c), 0)             \
    X(C_GetSlotInfo, (CK_SLOT_ID a, CK_SLOT_INFO * b), (a, b), 0)                                  \
    X(C_GetTokenInfo, (CK_SLOT_ID a, CK_TOKEN_INFO * b), (a, b), 0)                                \
    X(C_WaitForSlotEvent, (CK_FLAGS a, CK_SLOT_ID * b, void *c), (a, b, c), 0)                     \
    X(C_GetMechanismList, (CK_SLOT_ID a, CK_MECHANISM_TYPE * b, unsigned long *c), (a, b, c), 0)   \
    X(C_GetMechanismInfo, (CK_SLOT_ID a, CK_MECHANISM_TYPE b, CK_MECHANISM_INFO * c), (a, b, c),   \
      0)                                                                                           \
    X(C_InitToken, (CK_SLOT_ID a, unsigned char *b, unsigned long c, unsigned char *d),            \
      (a, b, c, d), 0)                                                                             \
    X(C_InitPIN, (CK_SESSION_HANDLE a, unsigned char *b, unsigned long c), (a, b, c), a)           \
    X(C_SetPIN,                                                                                    \
      (CK_SESSION_HANDLE a, unsigned char *b, unsigned long c, unsigned char *d, unsigned long e), \
      (a, b, c, d, e), a)                                                                          \
    X(C_OpenSession, (CK_SLOT_ID a, CK_FLAGS b, void *c, CK_NOTIFY d, CK_SESSION_HANDLE *e),       \
      (a, b, c, d, e), 0)                                                                          \
    X(C_CloseSession, (CK_SESSION_HANDLE a), (a), a)                                               \
    X(C_CloseAllSessions, (CK_SLOT_ID a), (a), 0)                                                  \
    X(C_GetSessionInfo, (CK_SESSION_HANDLE a, CK_SESSION_INFO * b), (a, b), a)                     \
    X(C_GetOperationState, (CK_SESSION_HANDLE a, unsigned char *b, unsigned long *c), (a, b, c),   \
      a)                                                                                           \
    X(C_SetOperationState,                                                                         \
      (CK_SESSION_HANDLE a, unsigned char *b, unsigned long c, CK_OBJECT_HANDLE d,                 \
       CK_OBJECT_HANDLE e),                                                                        \
      (a, b, c, d, e), a)                                                                          \
    X(C_Login, (CK_SESSION_HANDLE a, CK_USER_TYPE b, unsigned char *c, unsigned long d),           \
      (a, b, c, d), a)                                                                             \
    X(C_Logout, (CK_SESSION_HANDLE a), (a), a)                                                     \
    X(C_CreateObject,                                                                              \
      (CK_SESSION_HANDLE a, CK_ATTRIBUTE * b, unsigned long c, CK_OBJECT_HANDLE *d), (a, b, c, d), \
      a)                                                                                           \
    X(C_CopyObject,                                                                                \
      (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b, CK_ATTRIBUTE * c, unsigned long d,                 \
       CK_OBJECT_HANDLE *e),                                                                       \
      (a, b, c, d, e), a)                                                                          \
    X(C_DestroyObject, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b), (a, b), a)                       \
    X(C_GetObjectSize, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b, unsigned long *c), (a, b, c), a)  \
    X(C_GetAttributeValue,                                                                         \
      (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b, CK_ATTRIBUTE * c, unsigned long d), (a, b, c, d),  \
      a)                                                                                           \
    X(C_SetAttributeValue,                                                                         \
      (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b, CK_ATTRIBUTE * c, unsigned long d), (a, b, c, d),  \
      a)                                                                                           \
    X(C_FindObjectsInit, (CK_SESSION_HANDLE a, CK_ATTRIBUTE * b, unsigned long c), (a, b, c), a)   \
    X(C_FindObjects,                                                                               \
      (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE * b, unsigned long c, unsigned long *d),              \
      (a, b, c, d), a)                                                                             \
    X(C_FindObjectsFinal, (CK_SESSION_HANDLE a), (a), a)                                           \
    X(C_EncryptInit, (CK_SESSION_HANDLE a, CK_MECHANISM * b, CK_OBJECT_HANDLE c), (a, b, c), a)    \
    X(C_Encrypt,                                                                                   \
      (CK_SESSION_HANDLE a, unsigned char *b, unsigned long c, unsigned char *d,                   \
       unsigned long *e),                                                                          \
      (a, b, c, d, e), a)                                                                          \
    X(C_EncryptUpdate,                                                                             \
      (CK_SESSION_HANDLE a, unsigned char *b, unsigned long c, unsigned char *d,                   \
       unsigned long *e),                                                                          \
      (a, b, c, d, e), a)                                                                          \
    X(C_EncryptFinal, (CK_SESSION_HANDLE a, unsigned char *b, unsigned long *c), (a, b, c), a)     \
    X(C_DecryptInit, (CK_SESSION_HANDLE a, CK_MECHANISM * b, CK_OBJECT_HANDLE c), (a, b, c), a)    \
    X(C_Decrypt,                                                                                   \
      (CK_SESSION_HANDLE a, unsigned char *b, unsigned long c, unsigned char *d,                   \
       unsigned long *e),                                                                          \
      (a, b, c, d, e), a)                                                                          \
    X(C_DecryptUpdate,                                                                             \
      (CK_SESSION_HANDLE a, unsigned char *b, unsigned long c, unsigned char *d,                   \
       unsigned long *e),                                                                          \
      (a, b, c, d, e), a)                                                                          \
    X(C_DecryptFinal, (CK_SESSION_HANDLE a, unsigned char *b, unsigned long *c), (a, b, c), a)     \
    X(C_DigestInit, (CK_SESSION_HANDLE a, CK_MECHANISM * b), (a, b), a)                            \
    X(C_Digest,                                                                                    \
      (CK_SESSION_HANDLE a, unsigned char *b, unsigned long c, unsigned char *d,                   \
       unsigned long *e),                                                                          \
      (a, b, c, d, e), a)                                                                          \
    X(C_DigestUpdate, (CK_SESSION_HANDLE a, unsigned char *b, unsigned long c), (a, b, c), a)      \
    X(C_DigestKey, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b), (a, b), a)                           \
    X(C_DigestFinal, (CK_SESSION_HANDLE a, unsigned char *b, unsigned long *c), (a, b, c), a)      \
    X(C_SignInit, (CK_SESSION_HANDLE a, CK_MECHANISM * b, CK_OBJECT_HANDLE c), (a, b, c), a)       \
    X(C_Sign,                                                                                      \
      (CK_SESSION_HANDLE a, unsigned char *b, unsigned long c, unsigned char *d,                   \
       unsigned long *e),                                                                          \
      (a, b, c, d, e), a)                                                                          \
    X(C_SignUpdate, (CK_SESSION_HANDLE a, unsigned char *b, unsigned long c), (a, b, c), a)        \
    X(C_SignFinal, (CK_SESSION_HANDLE a, unsigned char *b, unsigned long *c), (a, b, c), a)        \
    X(C_SignRecoverInit, (CK_SESSION_HANDLE a, CK_MECHANISM * b, CK_OBJECT_HANDLE c), (a, b, c),   \
      a)                                                                                           \
    X(C_SignRecover,                                                                               \
      (CK_SESSION_HANDLE a, unsigned char *b, unsigned long c, unsigned char *d,                   \
       unsigned long *e),                                                                          \
      (a, b, c, d, e), a)                                                                          \
    X(C_VerifyInit, (CK_SESSION_HANDLE a, CK_MECHANISM * b, CK_OBJECT_HANDLE c), (a, b, c), a)     \
    X(C_Verify,                                                                                    \
      (CK_SESSION_HANDLE a, unsigned char *b, unsigned long c, unsigned char *d, unsigned long e), \
      (a, b, c, d, e), a)                                                                          \
    X(C_VerifyUpdate, (CK_SESSION_HANDLE a, unsigned char *b, unsigned long c), (a, b, c), a)      \
    X(C_VerifyFinal, (CK_SESSION_HANDLE a, unsigned char *b, unsigned long c), (a, b, c), a)       \
    X(C_VerifyRecoverInit, (CK_SESSION_HANDLE a, CK_MECHANISM * b, CK_OBJECT_HANDLE c), (a, b, c), \
      a)                                                                                           \
    X(C_VerifyRecover,                                                                             \
      (CK_SESSION_HANDLE a, unsigned char *b, unsigned long c, unsigned char *d,                   \
       unsigned long *e),                                                                          \
      (a, b, c, d, e), a)                                                                          \
    X(C_DigestEncryptUpdate,                                                                       \
      (CK_SESSION_HANDLE a, unsigned char *b, unsigned long c, unsigned char *d,                   \
       unsigned long *e),                                                                          \
      (a, b, c, d, e), a)                                                                          \
    X(C_DecryptDigestUpdate,                                                                       \
      (CK_SESSION_HANDLE a, unsigned char *b, unsigned long c, unsigned char *d,                   \
       unsigned long *e),                                                                          \
      (a, b, c, d, e), a)                                                                          \
    X(C_SignEncryptUpdate,                                                                         \
      (CK_SESSION_HANDLE a, unsigned char *b, unsigned long c, unsigned char *d,                   \
       unsigned long *e),                                                                          \
      (a, b, c, d, e), a)                                                                          \
    X(C_DecryptVerifyUpdate,                                                                       \
      (CK_SESSION_HANDLE a, unsigned char *b, unsigned long c, unsigned char *d,                   \
       unsigned long *e),                                                                          \
      (a, b, c, d, e), a)                                                                          \
    X(C_GenerateKey,                                                                               \
      (CK_SESSION_HANDLE a, CK_MECHANISM * b, CK_ATTRIBUTE * c, unsigned long d,                   \
       CK_OBJECT_HANDLE *e),                                                                       \
      (a, b, c, d, e), a)                                                                          \
    X(C_GenerateKeyPair,                                                                           \
      (CK_SESSION_HANDLE a, CK_MECHANISM * b, CK_ATTRIBUTE * c, unsigned long d, CK_ATTRIBUTE *e,  \
       unsigned long f, CK_OBJECT_HANDLE *g, CK_OBJECT_HANDLE *h),                                 \
      (a, b, c, d, e, f, g, h), a)                                                                 \
    X(C_WrapKey,                                                                                   \
      (CK_SESSION_HANDLE a, CK_MECHANISM * b, CK_OBJECT_HANDLE c, CK_OBJECT_HANDLE d,              \
       unsigned char *e, unsigned long *f),                                                        \
      (a, b, c, d, e, f), a)                                                                       \
    X(C_UnwrapKey,                                                                                 \
      (CK_SESSION_HANDLE a, CK_MECHANISM * b, CK_OBJECT_HANDLE c, unsigned char *d,                \
       unsigned long e, CK_ATTRIBUTE *f, unsigned long g, CK_OBJECT_HANDLE *h),                    \
      (a, b, c, d, e, f, g, h), a)                                                                 \
    X(C_DeriveKey,                                                                                 \
      (CK_SESSION_HANDLE a, CK_MECHANISM * b, CK_OBJECT_HANDLE c, CK_ATTRIBUTE * d,                \
       unsigned long e, CK_OBJECT_HANDLE *f),                                                      \
      (a, b, c, d, e, f), a)                                                                       \
    X(C_SeedRandom, (CK_SESSION_HANDLE a, unsigned char *b, unsigned long c), (a, b, c), a)        \
    X(C_GenerateRandom, (CK_SESSION_HANDLE a, unsigned char *b, unsigned long c), (a, b, c), a)    \
    X(C_GetFunctionStatus, (CK_SESSION_HANDLE a), (a), a)                                          \
    X(C_CancelFunction, (CK_SESSION_HANDLE a), (a), a)

#define X_ENUM(name, params, args, sess) FN_##name,
enum { P11FAULT_FUNCS(X_ENUM) FN_COUNT };
#undef X_ENUM

#define X_NAME(name, params, args, sess) #name,
static const char *const fn_names[FN_COUNT] = {P11FAULT_FUNCS(X_NAME)};
#undef X_NAME

/* ---- rules ---- */

typedef struct rule {
    int fn;
    unsigned long after, count; /* count 0: no end */
    int has_rv;
    CK_RV rv;
    unsigned long delay_us;
    int hang, close_session, logout;
    atomic_ulong seen; /* calls of fn since this rule set was loaded */
} rule;

typedef struct ruleset {
    /* what the control file looked like when read: a different stat means reload */
    int exists;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    int invalid; /* did not parse: every call fails */
    size_t n;
    rule *rules;
    struct ruleset *older; /* replaced sets, freed at unload */
} ruleset;

static _Atomic(ruleset *) g_rules;
static pthread_mutex_t g_reload_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_ulong g_calls[FN_COUNT], g_injected[FN_COUNT];
static atomic_ulong g_inside[FN_COUNT], g_max_inside[FN_COUNT];

static CK_FUNCTION_LIST *g_real;
static void *g_dl;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static char g_load_error[512];

#define RV(x)                                                                                      \
    {                                                                                              \
#x, x                                                                                      \
    }
static const struct {
    const char *name;
    CK_RV rv;
} rv_table[] = {
    RV(CKR_OK),
    RV(CKR_CANCEL),
    RV(CKR_HOST_MEMORY),
    RV(CKR_SLOT_ID_INVALID),
    RV(CKR_GENERAL_ERROR),
    RV(CKR_FUNCTION_FAILED),
    RV(CKR_ARGUMENTS_BAD),
    RV(CKR_CANT_LOCK),
    RV(CKR_DATA_INVALID),
    RV(CKR_DATA_LEN_RANGE),
    RV(CKR_DEVICE_ERROR),
    RV(CKR_DEVICE_MEMORY),
    RV(CKR_DEVICE_REMOVED),
    RV(CKR_FUNCTION_CANCELED),
    RV(CKR_FUNCTION_NOT_SUPPORTED),
    RV(CKR_KEY_HANDLE_INVALID),
    RV(CKR_KEY_FUNCTION_NOT_PERMITTED),
    RV(CKR_MECHANISM_INVALID),
    RV(CKR_MECHANISM_PARAM_INVALID),
    RV(CKR_OBJECT_HANDLE_INVALID),
    RV(CKR_OPERATION_ACTIVE),
    RV(CKR_OPERATION_NOT_INITIALIZED),
    RV(CKR_PIN_INCORRECT),
    RV(CKR_PIN_EXPIRED),
    RV(CKR_PIN_LOCKED),
    RV(CKR_SESSION_CLOSED),
    RV(CKR_SESSION_COUNT),
    RV(CKR_SESSION_HANDLE_INVALID),
    RV(CKR_SIGNATURE_INVALID),
    RV(CKR_SIGNATURE_LEN_RANGE),
    RV(CKR_TOKEN_NOT_PRESENT),
    RV(CKR_TOKEN_NOT_RECOGNIZED),
    RV(CKR_USER_ALREADY_LOGGED_IN),
    RV(CKR_USER_NOT_LOGGED_IN),
    RV(CKR_USER_PIN_NOT_INITIALIZED),
    RV(CKR_BUFFER_TOO_SMALL),
    RV(CKR_CRYPTOKI_NOT_INITIALIZED),
    RV(CKR_CRYPTOKI_ALREADY_INITIALIZED),
    RV(CKR_FUNCTION_REJECTED),
};
#undef RV

static int parse_ulong(const char *s, unsigned long *out)
{
    char *end;
    errno = 0;
    if (!s[0] || s[0] == '-')
        return -1;
    unsigned long v = strtoul(s, &end, 0);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

static int parse_rv(const char *s, CK_RV *out)
{
    for (size_t i = 0; i < sizeof rv_table / sizeof rv_table[0]; i++)
        if (strcmp(s, rv_table[i].name) == 0) {
            *out = rv_table[i].rv;
            return 0;
        }
    unsigned long v;
    if (parse_ulong(s, &v))
        return -1;
    *out = v;
    return 0;
}

static int fn_index(const char *s)
{
    for (int i = 0; i < FN_COUNT; i++)
        if (strcmp(s, fn_names[i]) == 0)
            return i;
    return -1;
}

/* Parses one line into r. Returns 1 for a rule, 0 for an empty line, -1 on error (why set). */
static int parse_line(char *line, rule *r, const char **why)
{
    char *hash = strchr(line, '#');
    if (hash)
        *hash = '\0';
    char *save = NULL;
    char *tok = strtok_r(line, " \t\r\n", &save);
    if (!tok)
        return 0;
    memset(r, 0, sizeof *r);
    if ((r->fn = fn_index(tok)) < 0) {
        *why = "unknown function";
        return -1;
    }
    while ((tok = strtok_r(NULL, " \t\r\n", &save))) {
        char *eq = strchr(tok, '=');
        if (eq)
            *eq++ = '\0';
        int bad = 0;
        if (strcmp(tok, "after") == 0)
            bad = !eq || parse_ulong(eq, &r->after);
        else if (strcmp(tok, "count") == 0)
            bad = !eq || parse_ulong(eq, &r->count);
        else if (strcmp(tok, "delay_us") == 0)
            bad = !eq || parse_ulong(eq, &r->delay_us) || r->delay_us > 60000000ul;
        else if (strcmp(tok, "rv") == 0)
            bad = !eq || parse_rv(eq, &r->rv) || !(r->has_rv = 1);
        else if (strcmp(tok, "hang") == 0)
            bad = eq != NULL || !(r->hang = 1);
        else if (strcmp(tok, "close_session") == 0)
            bad = eq != NULL || !(r->close_session = 1);
        else if (strcmp(tok, "logout") == 0)
            bad = eq != NULL || !(r->logout = 1);
        else
            bad = 1;
        if (bad) {
            *why = "bad or unknown keyword";
            return -1;
        }
    }
    return 1;
}

/* Reads the control file into a new rule set (never NULL unless out of memory). */
static ruleset *ruleset_read(const char *path, const struct stat *st)
{
    ruleset *rs = calloc(1, sizeof *rs);
    if (!rs)
        return NULL;
    if (!st)
        return rs;
    rs->exists = 1;
    rs->dev = st->st_dev;
    rs->ino = st->st_ino;
    rs->size = st->st_size;
    rs->mtime = st->st_mtim;
    FILE *fp = fopen(path, "re");
    if (!fp) {
        /* gone between stat and open: the next call sees a changed stat and retries */
        rs->exists = 0;
        return rs;
    }
    char line[512];
    size_t cap = 0;
    unsigned lineno = 0;
    while (fgets(line, sizeof line, fp)) {
        lineno++;
        rule r;
        const char *why = NULL;
        int got = parse_line(line, &r, &why);
        if (got < 0) {
            fprintf(stderr, "p11fault: %s line %u: %s; every call fails until it is fixed\n", path,
                    lineno, why);
            rs->invalid = 1;
            break;
        }
        if (!got)
            continue;
        if (rs->n == cap) {
            size_t ncap = cap ? 2 * cap : 8;
            rule *nr = realloc(rs->rules, ncap * sizeof *nr);
            if (!nr) {
                rs->invalid = 1;
                break;
            }
            rs->rules = nr;
            cap = ncap;
        }
        rs->rules[rs->n++] = r;
    }
    fclose(fp);
    return rs;
}

static int stat_same(const ruleset *rs, const struct stat *st)
{
    if (!st)
        return !rs->exists;
    return rs->exists && rs->dev == st->st_dev && rs->ino == st->st_ino &&
           rs->size == st->st_size && rs->mtime.tv_sec == st->st_mtim.tv_sec &&
           rs->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* The current rule set, reloaded first when the control file changed. NULL: no control file
 * configured. */
static ruleset *rules_current(void)
{
    const char *path = getenv("P11FAULT_CONTROL");
    if (!path || !path[0])
        return NULL;
    struct stat sb;
    const struct stat *st = stat(path, &sb) == 0 ? &sb : NULL;
    ruleset *rs = atomic_load_explicit(&g_rules, memory_order_acquire);
    if (rs && stat_same(rs, st))
        return rs;
    pthread_mutex_lock(&g_reload_lock);
    rs = atomic_load_explicit(&g_rules, memory_order_acquire);
    if (!rs || !stat_same(rs, st)) {
        ruleset *n = ruleset_read(path, st);
        if (n) {
            n->older = rs;
            atomic_store_explicit(&g_rules, n, memory_order_release);
            rs = n;
        }
    }
    pthread_mutex_unlock(&g_reload_lock);
    return rs;
}

/* Sleeps `us` with the calling thread's timer slack at 1 ns, restored afterwards: with the
 * default 50 us slack a delay_us=1000 rule took about 1.05 ms, so the module added more latency
 * than the rule says (a network HSM's answer wakes the caller through a socket, with no slack). */
static void sleep_us(unsigned long us)
{
    struct timespec ts = {(time_t)(us / 1000000ul), (long)(us % 1000000ul) * 1000};
    int slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
    if (slack > 1)
        prctl(PR_SET_TIMERSLACK, 1ul, 0, 0, 0);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    if (slack > 1)
        prctl(PR_SET_TIMERSLACK, (unsigned long)slack, 0, 0, 0);
}

typedef struct verdict {
    int inject;
    CK_RV rv;
    int close_session, logout;
} verdict;

/* Applies the rules to one call of fn: sleeps and hangs here, returns what to do. */
static verdict judge(int fn)
{
    verdict v = {0, CKR_OK, 0, 0};
    atomic_fetch_add_explicit(&g_calls[fn], 1, memory_order_relaxed);
    unsigned long inside = atomic_fetch_add(&g_inside[fn], 1) + 1;
    unsigned long max = atomic_load(&g_max_inside[fn]);
    while (inside > max && !atomic_compare_exchange_weak(&g_max_inside[fn], &max, inside))
        ;
    for (;;) {
        ruleset *rs = rules_current();
        if (!rs)
            return v;
        if (rs->invalid) {
            v.inject = 1;
            v.rv = CKR_GENERAL_ERROR;
            break;
        }
        unsigned long delay = 0;
        int hang = 0;
        for (size_t i = 0; i < rs->n; i++) {
            rule *r = &rs->rules[i];
            if (r->fn != fn)
                continue;
            unsigned long k = atomic_fetch_add_explicit(&r->seen, 1, memory_order_relaxed) + 1;
            if (k <= r->after || (r->count && k > r->after + r->count))
                continue;
            delay += r->delay_us;
            hang |= r->hang;
            if (r->has_rv && !v.inject) {
                v.inject = 1;
                v.rv = r->rv;
                v.close_session = r->close_session;
                v.logout = r->logout;
            }
        }
        if (!hang) {
            if (delay)
                sleep_us(delay);
            break;
        }
        /* Hang until the rules change, then judge the call again under the new rules. */
        v = (verdict){0, CKR_OK, 0, 0};
        while (rules_current() == rs)
            sleep_us(1000);
    }
    if (v.inject)
        atomic_fetch_add_explicit(&g_injected[fn], 1, memory_order_relaxed);
    atomic_fetch_sub(&g_inside[fn], 1);
    return v;
}

/* ---- statistics ---- */

static void stats_write(void)
{
    const char *path = getenv("P11FAULT_STATS");
    if (!path || !path[0])
        return;
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid()) >= sizeof tmp)
        return;
    FILE *fp = fopen(tmp, "we");
    if (!fp)
        return;
    for (int i = 0; i < FN_COUNT; i++) {
        unsigned long c = atomic_load(&g_calls[i]), j = atomic_load(&g_injected[i]);
        if (c)
            fprintf(fp, "%s calls=%lu injected=%lu max_concurrent=%lu\n", fn_names[i], c, j,
                    atomic_load(&g_max_inside[i]));
    }
    if (fclose(fp) == 0)
        rename(tmp, path);
    else
        unlink(tmp);
}

/* ---- the real module ---- */

static void list_fill(void);

static void real_load(void)
{
    const char *path = getenv("P11FAULT_MODULE");
    if (!path || !path[0])
        path = P11FAULT_DEFAULT_MODULE;
    g_dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!g_dl) {
        snprintf(g_load_error, sizeof g_load_error, "dlopen %s: %s", path, dlerror());
        return;
    }
    CK_C_GetFunctionList gfl;
    *(void **)&gfl = dlsym(g_dl, "C_GetFunctionList");
    CK_FUNCTION_LIST *f = NULL;
    if (!gfl || gfl(&f) != CKR_OK || !f) {
        snprintf(g_load_error, sizeof g_load_error, "%s is not a PKCS#11 module", path);
        dlclose(g_dl);
        g_dl = NULL;
        return;
    }
    g_real = f;
    list_fill();
}

__attribute__((destructor)) static void p11fault_unload(void)
{
    stats_write();
    /* A call still held here (a hang its caller abandoned) when the process exits must not
     * wake up to freed rules and an unloaded module: then everything is left to the exit. */
    for (int i = 0; i < FN_COUNT; i++)
        if (atomic_load(&g_inside[i]) > 0)
            return;
    ruleset *rs = atomic_exchange(&g_rules, NULL);
    while (rs) {
        ruleset *older = rs->older;
        free(rs->rules);
        free(rs);
        rs = older;
    }
    if (g_dl)
        dlclose(g_dl);
    g_dl = NULL;
    g_real = NULL;
}

/* ---- the wrappers ---- */

static CK_RV inject(const verdict *v, CK_SESSION_HANDLE sess)
{
    if (v->logout && sess)
        g_real->C_Logout(sess);
    if (v->close_session && sess)
        g_real->C_CloseSession(sess);
    return v->rv;
}

#define X_WRAP(name, params, args, sess)                                                           \
    __attribute__((unused)) static CK_RV w_##name params                                           \
    {                                                                                              \
        if (!g_real)                                                                               \
            return CKR_GENERAL_ERROR;                                                              \
        verdict v = judge(FN_##name);                                                              \
        if (v.inject)                                                                              \
            return inject(&v, sess);                                                               \
        return g_real->name args;                                                                  \
    }

/* Every function gets the generic wrapper; four are replaced in the list by the ones below
 * (C_Initialize: load errors; C_Finalize: statistics; C_Sign, C_SignFinal: end the real
 * operation before injecting), so theirs are unused. */
P11FAULT_FUNCS(X_WRAP)
#undef X_WRAP

static CK_RV w_real_C_Initialize(void *a)
{
    pthread_once(&g_once, real_load);
    if (!g_real) {
        fprintf(stderr, "p11fault: %s\n", g_load_error);
        return CKR_GENERAL_ERROR;
    }
    verdict v = judge(FN_C_Initialize);
    if (v.inject)
        return v.rv;
    return g_real->C_Initialize(a);
}

static CK_RV w_real_C_Finalize(void *a)
{
    if (!g_real)
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    verdict v = judge(FN_C_Finalize);
    CK_RV rv = v.inject ? v.rv : g_real->C_Finalize(a);
    stats_write();
    return rv;
}

static CK_RV w_real_C_Sign(CK_SESSION_HANDLE s, unsigned char *data, unsigned long len,
                           unsigned char *sig, unsigned long *siglen)
{
    if (!g_real)
        return CKR_GENERAL_ERROR;
    verdict v = judge(FN_C_Sign);
    if (!v.inject)
        return g_real->C_Sign(s, data, len, sig, siglen);
    if (sig) {
        /* a failed C_Sign ends the operation: do the real one into the void */
        unsigned char scratch[8192];
        unsigned long l = sizeof scratch;
        g_real->C_Sign(s, data, len, scratch, &l);
    }
    return inject(&v, s);
}

static CK_RV w_real_C_SignFinal(CK_SESSION_HANDLE s, unsigned char *sig, unsigned long *siglen)
{
    if (!g_real)
        return CKR_GENERAL_ERROR;
    verdict v = judge(FN_C_SignFinal);
    if (!v.inject)
        return g_real->C_SignFinal(s, sig, siglen);
    if (sig) {
        unsigned char scratch[8192];
        unsigned long l = sizeof scratch;
        g_real->C_SignFinal(s, scratch, &l);
    }
    return inject(&v, s);
}

/* Filled once, by list_fill under g_once. */
static CK_FUNCTION_LIST g_list;

static void list_fill(void)
{
#define X_SET(name, params, args, sess) g_list.name = w_##name;
    P11FAULT_FUNCS(X_SET)
#undef X_SET
    g_list.version = g_real->version;
    g_list.C_GetFunctionList = C_GetFunctionList;
    g_list.C_Initialize = w_real_C_Initialize;
    g_list.C_Finalize = w_real_C_Finalize;
    g_list.C_Sign = w_real_C_Sign;
    g_list.C_SignFinal = w_real_C_SignFinal;
}

EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST **out)
{
    if (!out)
        return CKR_ARGUMENTS_BAD;
    pthread_once(&g_once, real_load);
    if (!g_real) {
        fprintf(stderr, "p11fault: %s\n", g_load_error);
        return CKR_GENERAL_ERROR;
    }
    *out = &g_list;
    return CKR_OK;
}
