/*
 * The PKCS#11 layer: loads a module, finds token and key by `pkcs11:` URI, keeps one logged-in
 * session per mc_hsm, and signs on per-worker sessions without locks or allocation.
 *
 * Modules are shared per path in a small table: a process may C_Initialize a module only once,
 * and other code in the process (an OpenSSL provider, libp11) may have done it already, which is
 * why CKR_CRYPTOKI_ALREADY_INITIALIZED is accepted (and such a module is never finalised by us).
 * The table mutex is held at open/close only; signing takes no lock of ours.
 */
#include "mailca/hsm.h"

#include "mailca/der.h"
#include "mailca/p11uri.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>

/* OpenSSL's own implementations for the public-key work done here: a provider that also offers
 * "EC" or "RSA" (our engine/provider.c in the same library context) must not be picked for it. */
#define HSM_PROPQ "?provider=default"

/* Largest raw C_Sign output we accept: RSA up to 8192 bits (P-521 r||s is 132). */
#define SIG_MAX 1024
#define MODULES_MAX 8

/* ---- CKR_ names and classes ---- */

#define RV(x)                                                                                      \
    {                                                                                              \
        x, #x                                                                                      \
    }
static const struct {
    CK_RV rv;
    const char *name;
} rv_names[] = {
    RV(CKR_OK),
    RV(CKR_CANCEL),
    RV(CKR_HOST_MEMORY),
    RV(CKR_SLOT_ID_INVALID),
    RV(CKR_GENERAL_ERROR),
    RV(CKR_FUNCTION_FAILED),
    RV(CKR_ARGUMENTS_BAD),
    RV(CKR_NO_EVENT),
    RV(CKR_NEED_TO_CREATE_THREADS),
    RV(CKR_CANT_LOCK),
    RV(CKR_ATTRIBUTE_READ_ONLY),
    RV(CKR_ATTRIBUTE_SENSITIVE),
    RV(CKR_ATTRIBUTE_TYPE_INVALID),
    RV(CKR_ATTRIBUTE_VALUE_INVALID),
    RV(CKR_ACTION_PROHIBITED),
    RV(CKR_DATA_INVALID),
    RV(CKR_DATA_LEN_RANGE),
    RV(CKR_DEVICE_ERROR),
    RV(CKR_DEVICE_MEMORY),
    RV(CKR_DEVICE_REMOVED),
    RV(CKR_ENCRYPTED_DATA_INVALID),
    RV(CKR_ENCRYPTED_DATA_LEN_RANGE),
    RV(CKR_FUNCTION_CANCELED),
    RV(CKR_FUNCTION_NOT_PARALLEL),
    RV(CKR_FUNCTION_NOT_SUPPORTED),
    RV(CKR_KEY_HANDLE_INVALID),
    RV(CKR_KEY_SIZE_RANGE),
    RV(CKR_KEY_TYPE_INCONSISTENT),
    RV(CKR_KEY_NOT_NEEDED),
    RV(CKR_KEY_CHANGED),
    RV(CKR_KEY_NEEDED),
    RV(CKR_KEY_INDIGESTIBLE),
    RV(CKR_KEY_FUNCTION_NOT_PERMITTED),
    RV(CKR_KEY_NOT_WRAPPABLE),
    RV(CKR_KEY_UNEXTRACTABLE),
    RV(CKR_MECHANISM_INVALID),
    RV(CKR_MECHANISM_PARAM_INVALID),
    RV(CKR_OBJECT_HANDLE_INVALID),
    RV(CKR_OPERATION_ACTIVE),
    RV(CKR_OPERATION_NOT_INITIALIZED),
    RV(CKR_PIN_INCORRECT),
    RV(CKR_PIN_INVALID),
    RV(CKR_PIN_LEN_RANGE),
    RV(CKR_PIN_EXPIRED),
    RV(CKR_PIN_LOCKED),
    RV(CKR_SESSION_CLOSED),
    RV(CKR_SESSION_COUNT),
    RV(CKR_SESSION_HANDLE_INVALID),
    RV(CKR_SESSION_PARALLEL_NOT_SUPPORTED),
    RV(CKR_SESSION_READ_ONLY),
    RV(CKR_SESSION_EXISTS),
    RV(CKR_SESSION_READ_ONLY_EXISTS),
    RV(CKR_SESSION_READ_WRITE_SO_EXISTS),
    RV(CKR_SIGNATURE_INVALID),
    RV(CKR_SIGNATURE_LEN_RANGE),
    RV(CKR_TEMPLATE_INCOMPLETE),
    RV(CKR_TEMPLATE_INCONSISTENT),
    RV(CKR_TOKEN_NOT_PRESENT),
    RV(CKR_TOKEN_NOT_RECOGNIZED),
    RV(CKR_TOKEN_WRITE_PROTECTED),
    RV(CKR_UNWRAPPING_KEY_HANDLE_INVALID),
    RV(CKR_UNWRAPPING_KEY_SIZE_RANGE),
    RV(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT),
    RV(CKR_USER_ALREADY_LOGGED_IN),
    RV(CKR_USER_NOT_LOGGED_IN),
    RV(CKR_USER_PIN_NOT_INITIALIZED),
    RV(CKR_USER_TYPE_INVALID),
    RV(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
    RV(CKR_USER_TOO_MANY_TYPES),
    RV(CKR_WRAPPED_KEY_INVALID),
    RV(CKR_WRAPPED_KEY_LEN_RANGE),
    RV(CKR_WRAPPING_KEY_HANDLE_INVALID),
    RV(CKR_WRAPPING_KEY_SIZE_RANGE),
    RV(CKR_WRAPPING_KEY_TYPE_INCONSISTENT),
    RV(CKR_RANDOM_SEED_NOT_SUPPORTED),
    RV(CKR_RANDOM_NO_RNG),
    RV(CKR_DOMAIN_PARAMS_INVALID),
    RV(CKR_CURVE_NOT_SUPPORTED),
    RV(CKR_BUFFER_TOO_SMALL),
    RV(CKR_SAVED_STATE_INVALID),
    RV(CKR_INFORMATION_SENSITIVE),
    RV(CKR_STATE_UNSAVEABLE),
    RV(CKR_CRYPTOKI_NOT_INITIALIZED),
    RV(CKR_CRYPTOKI_ALREADY_INITIALIZED),
    RV(CKR_MUTEX_BAD),
    RV(CKR_MUTEX_NOT_LOCKED),
    RV(CKR_NEW_PIN_MODE),
    RV(CKR_NEXT_OTP),
    RV(CKR_EXCEEDED_MAX_ITERATIONS),
    RV(CKR_FIPS_SELF_TEST_FAILED),
    RV(CKR_LIBRARY_LOAD_FAILED),
    RV(CKR_PIN_TOO_WEAK),
    RV(CKR_PUBLIC_KEY_INVALID),
    RV(CKR_FUNCTION_REJECTED),
};
#undef RV

const char *mc_hsm_rv_name(unsigned long rv)
{
    for (size_t i = 0; i < sizeof rv_names / sizeof rv_names[0]; i++)
        if (rv_names[i].rv == rv)
            return rv_names[i].name;
    return rv >= CKR_VENDOR_DEFINED ? "CKR_VENDOR_DEFINED" : "CKR_UNKNOWN";
}

mc_err mc_hsm_rv_class(unsigned long rv)
{
    switch (rv) {
    case CKR_OK:
        return MC_OK;
    /* Fatal: retrying anywhere gives the same answer (bad PIN, wrong key or mechanism, a bug). */
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
    case CKR_PIN_EXPIRED:
    case CKR_PIN_LOCKED:
    case CKR_USER_PIN_NOT_INITIALIZED:
    case CKR_USER_TYPE_INVALID:
    case CKR_USER_ANOTHER_ALREADY_LOGGED_IN:
    case CKR_USER_TOO_MANY_TYPES:
    case CKR_KEY_HANDLE_INVALID:
    case CKR_OBJECT_HANDLE_INVALID:
    case CKR_KEY_SIZE_RANGE:
    case CKR_KEY_TYPE_INCONSISTENT:
    case CKR_KEY_FUNCTION_NOT_PERMITTED:
    case CKR_KEY_UNEXTRACTABLE:
    case CKR_MECHANISM_INVALID:
    case CKR_MECHANISM_PARAM_INVALID:
    case CKR_ARGUMENTS_BAD:
    case CKR_FUNCTION_NOT_SUPPORTED:
    case CKR_DATA_INVALID:
    case CKR_DATA_LEN_RANGE:
    case CKR_ATTRIBUTE_READ_ONLY:
    case CKR_ATTRIBUTE_SENSITIVE:
    case CKR_ATTRIBUTE_TYPE_INVALID:
    case CKR_ATTRIBUTE_VALUE_INVALID:
    case CKR_TEMPLATE_INCOMPLETE:
    case CKR_TEMPLATE_INCONSISTENT:
    case CKR_TOKEN_NOT_RECOGNIZED:
    case CKR_TOKEN_WRITE_PROTECTED:
    case CKR_SLOT_ID_INVALID:
    case CKR_CURVE_NOT_SUPPORTED:
    case CKR_DOMAIN_PARAMS_INVALID:
    case CKR_BUFFER_TOO_SMALL:
    case CKR_ACTION_PROHIBITED:
    case CKR_INFORMATION_SENSITIVE:
    case CKR_LIBRARY_LOAD_FAILED:
    case CKR_FIPS_SELF_TEST_FAILED:
    case CKR_PIN_TOO_WEAK:
    case CKR_NEED_TO_CREATE_THREADS:
        return MC_ERR_HSM_FATAL;
    /* The session (or the login, or the module state behind it) is gone: reopen. */
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_SESSION_CLOSED:
    case CKR_USER_NOT_LOGGED_IN:
    case CKR_DEVICE_REMOVED:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_OPERATION_NOT_INITIALIZED:
    case CKR_CRYPTOKI_NOT_INITIALIZED:
        return MC_ERR_HSM_SESSION;
    /* Everything else (CKR_DEVICE_ERROR, CKR_DEVICE_MEMORY, CKR_HOST_MEMORY,
     * CKR_FUNCTION_FAILED, CKR_GENERAL_ERROR, CKR_OPERATION_ACTIVE, CKR_SESSION_COUNT,
     * CKR_CANT_LOCK, vendor codes...) is transient: retry elsewhere. */
    default:
        return MC_ERR_HSM;
    }
}

/* "C_Foo: CKR_BAR" with the class of rv as the code. */
static mc_err rv_err(mc_errdetail *err, const char *call, CK_RV rv, const char *context)
{
    return mc_err_set(err, mc_hsm_rv_class(rv), "hsm", NULL, "%s: %s%s%s", call, mc_hsm_rv_name(rv),
                      context && context[0] ? " " : "", context ? context : "");
}

/* ---- module table ---- */

typedef struct p11mod {
    char path[PATH_MAX];
    void *dl;
    CK_FUNCTION_LIST_PTR f;
    unsigned refs;
    int owns_init;         /* our C_Initialize succeeded, so C_Finalize is ours at the last close */
    char manufacturer[33]; /* C_GetInfo manufacturerID, trailing blanks cut ("" if it failed) */
} p11mod;

static pthread_mutex_t mod_lock = PTHREAD_MUTEX_INITIALIZER;
static p11mod mods[MODULES_MAX];

static mc_err module_get(const char *path, p11mod **out, mc_errdetail *err)
{
    mc_err rc = MC_OK;
    void *dl = NULL;
    if (!path || !path[0])
        return mc_err_set(err, MC_ERR_CONFIG, "module", NULL,
                          "no PKCS#11 module given (config module or URI module-path)");
    if (strlen(path) >= PATH_MAX)
        return mc_err_set(err, MC_ERR_CONFIG, "module", NULL, "PKCS#11 module path too long");
    pthread_mutex_lock(&mod_lock);
    p11mod *free_slot = NULL;
    for (size_t i = 0; i < MODULES_MAX; i++) {
        if (mods[i].refs && strcmp(mods[i].path, path) == 0) {
            mods[i].refs++;
            *out = &mods[i];
            goto done;
        }
        if (!mods[i].refs && !free_slot)
            free_slot = &mods[i];
    }
    if (!free_slot) {
        rc = mc_err_set(err, MC_ERR_CONFIG, "module", NULL, "more than %d PKCS#11 modules loaded",
                        MODULES_MAX);
        goto done;
    }
    dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        rc = mc_err_set(err, MC_ERR_HSM_FATAL, "module", NULL, "dlopen %s: %s", path, dlerror());
        goto done;
    }
    CK_C_GetFunctionList gfl;
    *(void **)&gfl = dlsym(dl, "C_GetFunctionList");
    if (!gfl) {
        rc = mc_err_set(err, MC_ERR_HSM_FATAL, "module", NULL,
                        "%s has no C_GetFunctionList: not a PKCS#11 module", path);
        goto done;
    }
    CK_FUNCTION_LIST_PTR f = NULL;
    CK_RV rv = gfl(&f);
    if (rv != CKR_OK || !f) {
        rc = rv_err(err, "C_GetFunctionList", rv, path);
        goto done;
    }
    CK_C_INITIALIZE_ARGS args = {0};
    args.flags = CKF_OS_LOCKING_OK;
    rv = f->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        rc = rv_err(err, "C_Initialize", rv, path);
        goto done;
    }
    snprintf(free_slot->path, sizeof free_slot->path, "%s", path);
    free_slot->manufacturer[0] = '\0';
    CK_INFO info;
    if (f->C_GetInfo && f->C_GetInfo(&info) == CKR_OK) {
        size_t n = sizeof info.manufacturerID; /* blank-padded, not NUL-terminated */
        while (n > 0 && info.manufacturerID[n - 1] == ' ')
            n--;
        memcpy(free_slot->manufacturer, info.manufacturerID, n);
        free_slot->manufacturer[n] = '\0';
    }
    free_slot->dl = dl;
    free_slot->f = f;
    free_slot->refs = 1;
    free_slot->owns_init = rv == CKR_OK;
    dl = NULL;
    *out = free_slot;
done:
    if (dl)
        dlclose(dl);
    pthread_mutex_unlock(&mod_lock);
    return rc;
}

static void module_put(p11mod *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&mod_lock);
    if (m->refs && --m->refs == 0) {
        if (m->owns_init)
            m->f->C_Finalize(NULL);
#if !defined(__SANITIZE_ADDRESS__)
        /* Sanitizer builds keep the module mapped so LeakSanitizer can attribute the module's
         * own leaks (SoftHSM2 2.6.1 leaks per ECDSA C_Sign) to it and tests/lsan.supp can
         * suppress exactly those. */
        dlclose(m->dl);
#endif
        memset(m, 0, sizeof *m);
    }
    pthread_mutex_unlock(&mod_lock);
}

/* ---- tokens ---- */

/* Length of a space-padded PKCS#11 text field without its padding. */
static size_t padded_len(const unsigned char *p, size_t n)
{
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\0'))
        n--;
    return n;
}

static int field_eq(const unsigned char *field, size_t n, const char *want)
{
    size_t l = padded_len(field, n);
    return strlen(want) == l && memcmp(field, want, l) == 0;
}

/* "token=x serial=y" for messages (values are labels, not secrets). */
static void describe_token(const mc_p11uri *u, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s%s%s%s%s%s%s%s", u->has_token ? " token=" : "", u->token,
             u->has_serial ? " serial=" : "", u->serial,
             u->has_manufacturer ? " manufacturer=" : "", u->manufacturer,
             u->has_model ? " model=" : "", u->model);
}

/* The slots of present tokens (caller frees). */
static mc_err slot_list(CK_FUNCTION_LIST_PTR f, CK_SLOT_ID **out, CK_ULONG *n, mc_errdetail *err)
{
    CK_SLOT_ID *slots = NULL;
    for (int tries = 0; tries < 4; tries++) {
        CK_ULONG cnt = 0;
        CK_RV rv = f->C_GetSlotList(CK_TRUE, NULL, &cnt);
        if (rv != CKR_OK)
            return rv_err(err, "C_GetSlotList", rv, NULL);
        free(slots);
        slots = calloc(cnt ? cnt : 1, sizeof *slots);
        if (!slots)
            return mc_err_set(err, MC_ERR_NOMEM, "hsm", NULL, "out of memory (slot list)");
        rv = f->C_GetSlotList(CK_TRUE, slots, &cnt);
        if (rv == CKR_BUFFER_TOO_SMALL)
            continue; /* a token appeared between the two calls */
        if (rv != CKR_OK) {
            free(slots);
            return rv_err(err, "C_GetSlotList", rv, NULL);
        }
        *out = slots;
        *n = cnt;
        return MC_OK;
    }
    free(slots);
    return mc_err_set(err, MC_ERR_HSM, "hsm", NULL, "C_GetSlotList: slot list keeps changing");
}

/* Finds the one initialised token matching the URI's token attributes. */
static mc_err find_token(CK_FUNCTION_LIST_PTR f, const mc_p11uri *u, CK_SLOT_ID *slot,
                         mc_errdetail *err)
{
    char want[160];
    describe_token(u, want, sizeof want);
    if (!mc_p11uri_has_token_attr(u))
        return mc_err_set(err, MC_ERR_CONFIG, "uri", NULL,
                          "pkcs11 URI names no token (give token= or serial=)");
    CK_SLOT_ID *slots = NULL;
    CK_ULONG n = 0;
    mc_err rc = slot_list(f, &slots, &n, err);
    if (rc)
        return rc;
    unsigned found = 0;
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        CK_RV rv = f->C_GetTokenInfo(slots[i], &ti);
        if (rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_TOKEN_NOT_RECOGNIZED)
            continue;
        if (rv != CKR_OK) {
            rc = rv_err(err, "C_GetTokenInfo", rv, NULL);
            goto done;
        }
        if (!(ti.flags & CKF_TOKEN_INITIALIZED))
            continue;
        if ((u->has_token && !field_eq(ti.label, sizeof ti.label, u->token)) ||
            (u->has_serial && !field_eq(ti.serialNumber, sizeof ti.serialNumber, u->serial)) ||
            (u->has_manufacturer &&
             !field_eq(ti.manufacturerID, sizeof ti.manufacturerID, u->manufacturer)) ||
            (u->has_model && !field_eq(ti.model, sizeof ti.model, u->model)))
            continue;
        if (found++ == 0)
            *slot = slots[i];
    }
    if (found == 0)
        rc = mc_err_set(err, MC_ERR_HSM_FATAL, "uri", NULL,
                        "no initialised token matches%s (%lu tokens present)", want,
                        (unsigned long)n);
    else if (found > 1)
        rc = mc_err_set(err, MC_ERR_HSM_FATAL, "uri", NULL,
                        "%u tokens match%s; name one by serial=", found, want);
done:
    free(slots);
    return rc;
}

/* ---- mc_hsm ---- */

struct mc_hsm {
    p11mod *mod;
    CK_FUNCTION_LIST_PTR f;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE login; /* kept open: the token stays logged in while it lives */
    int has_login;
    mc_keytype kt;
    size_t sigmax; /* raw C_Sign output length */
    /* how to find the private key in each worker session */
    char label[MC_P11URI_OBJECT_MAX + 1];
    int by_label;
    uint8_t id[MC_P11URI_ID_MAX];
    size_t idlen;
    int by_id;
    char what[MC_P11URI_OBJECT_MAX + 3 * MC_P11URI_ID_MAX + 80]; /* " object=.. id=.." */
    char tokdesc[160];                                           /* " token=.. serial=.." */
    uint8_t *spki; /* OPENSSL_malloc'd by i2d_PUBKEY */
    size_t spkilen;
    mc_hsm_pin_fn pin_fn; /* to log in again (mc_hsm_set_pin_source); NULL: never */
    void *pin_arg;
};

struct mc_hsm_session {
    CK_FUNCTION_LIST_PTR f;
    CK_SESSION_HANDLE sh;
    CK_OBJECT_HANDLE key;
    mc_keytype kt;
    size_t sigmax;
    mc_hsm *h;     /* for mc_hsm_session_reopen; NULL in the self-test's stack session */
    int closed;    /* a failed reopen left no PKCS#11 session behind sh */
    CK_RV last_rv; /* of the last signing call (mc_hsm_session_device_lost) */
};

/* Finds the one private key the URI names, in session sh. */
static mc_err find_key(const mc_hsm *h, CK_SESSION_HANDLE sh, CK_OBJECT_HANDLE *key,
                       mc_errdetail *err)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE tmpl[3] = {{CKA_CLASS, &cls, sizeof cls}};
    CK_ULONG nt = 1;
    if (h->by_label)
        tmpl[nt++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)h->label, strlen(h->label)};
    if (h->by_id)
        tmpl[nt++] = (CK_ATTRIBUTE){CKA_ID, (void *)h->id, h->idlen};
    CK_RV rv = h->f->C_FindObjectsInit(sh, tmpl, nt);
    if (rv != CKR_OK)
        return rv_err(err, "C_FindObjectsInit", rv, NULL);
    CK_OBJECT_HANDLE objs[2];
    CK_ULONG cnt = 0;
    rv = h->f->C_FindObjects(sh, objs, 2, &cnt);
    CK_RV rv2 = h->f->C_FindObjectsFinal(sh);
    if (rv != CKR_OK)
        return rv_err(err, "C_FindObjects", rv, NULL);
    if (rv2 != CKR_OK)
        return rv_err(err, "C_FindObjectsFinal", rv2, NULL);
    if (cnt == 0)
        return mc_err_set(err, MC_ERR_HSM_FATAL, "uri", NULL,
                          "no private key with%s on the token with%s", h->what, h->tokdesc);
    if (cnt > 1)
        return mc_err_set(err, MC_ERR_HSM_FATAL, "uri", NULL,
                          "several private keys match%s; the URI must name exactly one", h->what);
    *key = objs[0];
    return MC_OK;
}

/* Reads one attribute into buf (cap bytes). */
static mc_err get_attr(const mc_hsm *h, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type,
                       const char *name, void *buf, size_t cap, size_t *len, mc_errdetail *err)
{
    CK_ATTRIBUTE a = {type, buf, cap};
    CK_RV rv = h->f->C_GetAttributeValue(h->login, obj, &a, 1);
    if (rv != CKR_OK)
        return rv_err(err, "C_GetAttributeValue", rv, name);
    if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > cap)
        return mc_err_set(err, MC_ERR_HSM_FATAL, "hsm", NULL, "key attribute %s unavailable", name);
    *len = a.ulValueLen;
    return MC_OK;
}

/* DER of the named curves' OIDs and of the Edwards curve name, as CKA_EC_PARAMS holds them. */
static const uint8_t oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t oid_p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
static const uint8_t oid_p521[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23};
static const uint8_t oid_ed25519[] = {0x06, 0x03, 0x2b, 0x65, 0x70};
static const uint8_t str_ed25519[] = {0x13, 0x0c, 'e', 'd', 'w', 'a', 'r',
                                      'd',  's',  '2', '5', '5', '1', '9'};

#define EQ(buf, len, c) ((len) == sizeof(c) && memcmp((buf), (c), sizeof(c)) == 0)

/* Field size in bytes of an EC key type (r and s each take this many bytes). */
static size_t ec_field_len(mc_keytype kt)
{
    return kt == MC_KEY_P256 ? 32 : kt == MC_KEY_P384 ? 48 : kt == MC_KEY_P521 ? 66 : 0;
}

/* CKA_EC_POINT is a DER OCTET STRING by the standard; some modules give the raw point.
 * rawlen is the length of the point itself. */
static mc_err ec_point_unwrap(const uint8_t *p, size_t len, size_t rawlen, int need04,
                              const uint8_t **pt, mc_errdetail *err)
{
    if (len == rawlen && (!need04 || p[0] == 0x04)) {
        *pt = p;
        return MC_OK;
    }
    mc_der_cur c = mc_der_cur_make(p, len);
    mc_der_tlv t;
    if (mc_der_expect(&c, MC_DER_OCTETSTRING, &t) == MC_OK && mc_der_cur_empty(&c) &&
        t.len == rawlen && (!need04 || t.val[0] == 0x04)) {
        *pt = t.val;
        return MC_OK;
    }
    return mc_err_set(err, MC_ERR_HSM_FATAL, "hsm", NULL,
                      "CKA_EC_POINT is not an uncompressed point of %zu bytes", rawlen);
}

/* Reads the public key (from the matching CKO_PUBLIC_KEY, else from the private key object)
 * and builds the EVP_PKEY. Sets h->kt and h->sigmax. */
static mc_err read_public(mc_hsm *h, CK_OBJECT_HANDLE priv, EVP_PKEY **out, mc_errdetail *err)
{
    mc_err rc = MC_OK;
    EVP_PKEY_CTX *pctx = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    BIGNUM *n = NULL, *e = NULL;
    CK_KEY_TYPE ckk;
    CK_BBOOL can_sign = CK_FALSE;
    size_t len;

    if ((rc = get_attr(h, priv, CKA_KEY_TYPE, "CKA_KEY_TYPE", &ckk, sizeof ckk, &len, err)))
        goto done;
    if ((rc = get_attr(h, priv, CKA_SIGN, "CKA_SIGN", &can_sign, sizeof can_sign, &len, err)))
        goto done;
    if (!can_sign) {
        rc = mc_err_set(err, MC_ERR_HSM_FATAL, "uri", NULL, "private key with%s has CKA_SIGN false",
                        h->what);
        goto done;
    }

    /* The public key object with the same CKA_ID (or label when the key has no id). */
    uint8_t kid[MC_P11URI_ID_MAX];
    size_t kidlen = 0;
    if ((rc = get_attr(h, priv, CKA_ID, "CKA_ID", kid, sizeof kid, &kidlen, err)))
        goto done;
    CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
    CK_ATTRIBUTE tmpl[2] = {{CKA_CLASS, &cls, sizeof cls}};
    if (kidlen)
        tmpl[1] = (CK_ATTRIBUTE){CKA_ID, kid, kidlen};
    else
        tmpl[1] = (CK_ATTRIBUTE){CKA_LABEL, h->label, strlen(h->label)};
    CK_OBJECT_HANDLE pubs[2], pub = priv;
    CK_ULONG cnt = 0;
    CK_RV rv = CKR_OK;
    if (kidlen || h->by_label) {
        rv = h->f->C_FindObjectsInit(h->login, tmpl, 2);
        if (rv == CKR_OK) {
            rv = h->f->C_FindObjects(h->login, pubs, 2, &cnt);
            CK_RV rv2 = h->f->C_FindObjectsFinal(h->login);
            if (rv == CKR_OK)
                rv = rv2;
        }
        if (rv != CKR_OK) {
            rc = rv_err(err, "C_FindObjects", rv, "(public key)");
            goto done;
        }
        if (cnt > 1) {
            rc = mc_err_set(err, MC_ERR_HSM_FATAL, "uri", NULL,
                            "several public keys share the id/label of the private key with%s",
                            h->what);
            goto done;
        }
        if (cnt == 1)
            pub = pubs[0];
    }

    if (ckk == CKK_RSA) {
        uint8_t mod[SIG_MAX + 1], exp[16];
        size_t modlen, explen;
        if ((rc = get_attr(h, pub, CKA_MODULUS, "CKA_MODULUS", mod, sizeof mod, &modlen, err)) ||
            (rc = get_attr(h, pub, CKA_PUBLIC_EXPONENT, "CKA_PUBLIC_EXPONENT", exp, sizeof exp,
                           &explen, err)))
            goto done;
        n = BN_bin2bn(mod, (int)modlen, NULL);
        e = BN_bin2bn(exp, (int)explen, NULL);
        if (!n || !e) {
            rc = mc_err_set(err, MC_ERR_NOMEM, "hsm", NULL, "out of memory (RSA key)");
            goto done;
        }
        h->kt = MC_KEY_RSA;
        h->sigmax = (size_t)BN_num_bytes(n);
        if (h->sigmax > SIG_MAX || BN_num_bits(n) < 1024) {
            rc = mc_err_set(err, MC_ERR_UNSUPPORTED, "hsm", NULL,
                            "RSA modulus of %d bits is outside 1024..%d", BN_num_bits(n),
                            SIG_MAX * 8);
            goto done;
        }
        bld = OSSL_PARAM_BLD_new();
        if (!bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
            !(params = OSSL_PARAM_BLD_to_param(bld)) ||
            !(pctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", HSM_PROPQ)) ||
            EVP_PKEY_fromdata_init(pctx) <= 0 ||
            EVP_PKEY_fromdata(pctx, out, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
            rc = mc_err_set(err, MC_ERR_CRYPTO, "hsm", NULL,
                            "OpenSSL refused the token's RSA public key");
            goto done;
        }
    } else if (ckk == CKK_EC || ckk == CKK_EC_EDWARDS) {
        uint8_t ecp[64], pt[160];
        size_t ecplen, ptlen;
        if ((rc = get_attr(h, pub, CKA_EC_PARAMS, "CKA_EC_PARAMS", ecp, sizeof ecp, &ecplen, err)))
            goto done;
        if (pub == priv) {
            /* Private EC objects often lack the point; without a public object we cannot
             * publish the key. */
            rc = mc_err_set(err, MC_ERR_HSM_FATAL, "uri", NULL,
                            "no public key object for the private key with%s", h->what);
            goto done;
        }
        if ((rc = get_attr(h, pub, CKA_EC_POINT, "CKA_EC_POINT", pt, sizeof pt, &ptlen, err)))
            goto done;
        const uint8_t *point;
        if (ckk == CKK_EC_EDWARDS) {
            if (!EQ(ecp, ecplen, oid_ed25519) && !EQ(ecp, ecplen, str_ed25519)) {
                rc = mc_err_set(err, MC_ERR_UNSUPPORTED, "hsm", NULL,
                                "Edwards curve other than Ed25519 (CKA_EC_PARAMS)");
                goto done;
            }
            if ((rc = ec_point_unwrap(pt, ptlen, 32, 0, &point, err)))
                goto done;
            h->kt = MC_KEY_ED25519;
            h->sigmax = 64;
            *out = EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", HSM_PROPQ, point, 32);
            if (!*out) {
                rc = mc_err_set(err, MC_ERR_CRYPTO, "hsm", NULL,
                                "OpenSSL refused the token's Ed25519 public key");
                goto done;
            }
        } else {
            const char *group;
            if (EQ(ecp, ecplen, oid_p256)) {
                h->kt = MC_KEY_P256;
                group = "prime256v1";
            } else if (EQ(ecp, ecplen, oid_p384)) {
                h->kt = MC_KEY_P384;
                group = "secp384r1";
            } else if (EQ(ecp, ecplen, oid_p521)) {
                h->kt = MC_KEY_P521;
                group = "secp521r1";
            } else {
                rc = mc_err_set(err, MC_ERR_UNSUPPORTED, "hsm", NULL,
                                "EC key on a curve other than P-256, P-384, P-521");
                goto done;
            }
            size_t fl = ec_field_len(h->kt);
            h->sigmax = 2 * fl;
            if ((rc = ec_point_unwrap(pt, ptlen, 1 + 2 * fl, 1, &point, err)))
                goto done;
            bld = OSSL_PARAM_BLD_new();
            if (!bld ||
                !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
                !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point,
                                                  1 + 2 * fl) ||
                !(params = OSSL_PARAM_BLD_to_param(bld)) ||
                !(pctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", HSM_PROPQ)) ||
                EVP_PKEY_fromdata_init(pctx) <= 0 ||
                EVP_PKEY_fromdata(pctx, out, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
                rc = mc_err_set(err, MC_ERR_CRYPTO, "hsm", NULL,
                                "OpenSSL refused the token's EC public key");
                goto done;
            }
            /* The point must lie on the curve. */
            EVP_PKEY_CTX *chk = EVP_PKEY_CTX_new_from_pkey(NULL, *out, HSM_PROPQ);
            int ok = chk && EVP_PKEY_public_check(chk) == 1;
            EVP_PKEY_CTX_free(chk);
            if (!ok) {
                rc = mc_err_set(err, MC_ERR_HSM_FATAL, "hsm", NULL,
                                "the token's EC public key is not a valid point");
                goto done;
            }
        }
    } else {
        rc = mc_err_set(err, MC_ERR_UNSUPPORTED, "hsm", NULL,
                        "private key type CKK 0x%lx is not RSA, EC or EC_EDWARDS",
                        (unsigned long)ckk);
    }
done:
    if (rc && *out) {
        EVP_PKEY_free(*out);
        *out = NULL;
    }
    BN_free(n);
    BN_free(e);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(pctx);
    return rc;
}

/* ---- signing ---- */

typedef struct sigspec {
    CK_MECHANISM_TYPE mech;
    size_t dlen;           /* digest length expected as input; 0 for EdDSA */
    const uint8_t *prefix; /* DigestInfo prefix (PKCS#1 v1.5) */
    size_t prefixlen;
    CK_MECHANISM_TYPE hash; /* PSS */
    CK_RSA_PKCS_MGF_TYPE mgf;
} sigspec;

/* DigestInfo DER up to the digest bytes (RFC 8017 9.2 note 1). */
static const uint8_t di_sha256[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                    0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
static const uint8_t di_sha384[] = {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                    0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30};
static const uint8_t di_sha512[] = {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                    0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40};

static int sigspec_for(mc_sigalg alg, sigspec *s)
{
    memset(s, 0, sizeof *s);
    switch (alg) {
    case MC_SIG_RSA_PKCS1_SHA256:
        *s = (sigspec){CKM_RSA_PKCS, 32, di_sha256, sizeof di_sha256, 0, 0};
        return 1;
    case MC_SIG_RSA_PKCS1_SHA384:
        *s = (sigspec){CKM_RSA_PKCS, 48, di_sha384, sizeof di_sha384, 0, 0};
        return 1;
    case MC_SIG_RSA_PKCS1_SHA512:
        *s = (sigspec){CKM_RSA_PKCS, 64, di_sha512, sizeof di_sha512, 0, 0};
        return 1;
    /* SBR 7.1.3.2.1: PSS with MGF1 over the same hash and salt length = hash length */
    case MC_SIG_RSA_PSS_SHA256:
        *s = (sigspec){CKM_RSA_PKCS_PSS, 32, NULL, 0, CKM_SHA256, CKG_MGF1_SHA256};
        return 1;
    case MC_SIG_RSA_PSS_SHA384:
        *s = (sigspec){CKM_RSA_PKCS_PSS, 48, NULL, 0, CKM_SHA384, CKG_MGF1_SHA384};
        return 1;
    case MC_SIG_RSA_PSS_SHA512:
        *s = (sigspec){CKM_RSA_PKCS_PSS, 64, NULL, 0, CKM_SHA512, CKG_MGF1_SHA512};
        return 1;
    case MC_SIG_ECDSA_SHA256:
        *s = (sigspec){CKM_ECDSA, 32, NULL, 0, 0, 0};
        return 1;
    case MC_SIG_ECDSA_SHA384:
        *s = (sigspec){CKM_ECDSA, 48, NULL, 0, 0, 0};
        return 1;
    case MC_SIG_ECDSA_SHA512:
        *s = (sigspec){CKM_ECDSA, 64, NULL, 0, 0, 0};
        return 1;
    case MC_SIG_ED25519:
        *s = (sigspec){CKM_EDDSA, 0, NULL, 0, 0, 0};
        return 1;
    default:
        return 0;
    }
}

/* One C_SignInit + single-part C_Sign. *outlen: capacity in, length out. */
static CK_RV p11_sign(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE sh, CK_OBJECT_HANDLE key,
                      const sigspec *sp, const uint8_t *in, size_t inlen, uint8_t *out,
                      size_t *outlen, const char **call)
{
    CK_RSA_PKCS_PSS_PARAMS pss = {sp->hash, sp->mgf, sp->dlen};
    CK_MECHANISM m = {sp->mech, NULL, 0};
    if (sp->mech == CKM_RSA_PKCS_PSS) {
        m.pParameter = &pss;
        m.ulParameterLen = sizeof pss;
    }
    *call = "C_SignInit";
    CK_RV rv = f->C_SignInit(sh, &m, key);
    if (rv != CKR_OK)
        return rv;
    *call = "C_Sign";
    CK_ULONG l = *outlen;
    rv = f->C_Sign(sh, (CK_BYTE_PTR)in, inlen, out, &l);
    *outlen = l;
    return rv;
}

/* Checks the algorithm fits the key and the input length fits the algorithm. */
static mc_err sign_check(const mc_hsm_session *s, mc_sigalg alg, size_t inlen, sigspec *sp,
                         mc_errdetail *err)
{
    if (!sigspec_for(alg, sp) || mc_sigalg_keytype(alg) != s->kt)
        /* SBR 7.1.3.2: ECDSA P-256/SHA-256, P-384/SHA-384, P-521/SHA-512 only */
        return mc_err_set(err, MC_ERR_INVALID, "sigalg", "SBR 7.1.3.2",
                          "signature algorithm %s does not fit the %s key", mc_sigalg_name(alg),
                          mc_keytype_name(s->kt));
    if (sp->dlen && inlen != sp->dlen)
        return mc_err_set(err, MC_ERR_INVALID, "digest", NULL,
                          "%s needs a %zu-byte digest, got %zu bytes", mc_sigalg_name(alg),
                          sp->dlen, inlen);
    return MC_OK;
}

static mc_err sign_core(mc_hsm_session *s, mc_sigalg alg, const uint8_t *in, size_t inlen,
                        uint8_t *sig, size_t *siglen, mc_errdetail *err)
{
    sigspec sp;
    mc_err rc = sign_check(s, alg, inlen, &sp, err);
    if (rc)
        return rc;
    uint8_t di[sizeof di_sha512 + 64];
    if (sp.prefixlen) {
        memcpy(di, sp.prefix, sp.prefixlen);
        memcpy(di + sp.prefixlen, in, inlen);
        in = di;
        inlen += sp.prefixlen;
    }
    if (s->closed)
        return mc_err_set(err, MC_ERR_HSM_SESSION, "hsm", NULL,
                          "the session was lost in a failed reopen; reopen it again");
    uint8_t raw[SIG_MAX];
    size_t rawlen = sizeof raw;
    const char *call;
    CK_RV rv = p11_sign(s->f, s->sh, s->key, &sp, in, inlen, raw, &rawlen, &call);
    s->last_rv = rv;
    if (rv == CKR_OPERATION_ACTIVE)
        /* An operation left running on this session (a module that kept it after a failed
         * C_Sign) blocks every later C_SignInit here: only a new session cures that. */
        return mc_err_set(err, MC_ERR_HSM_SESSION, "hsm", NULL,
                          "%s: CKR_OPERATION_ACTIVE (an earlier operation is stuck on the session)",
                          call);
    if (rv == CKR_KEY_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID)
        /* A logout or token reset invalidates the object handles the session found: a new
         * session looks the key up again (and fails plainly if the key is really gone). */
        return mc_err_set(err, MC_ERR_HSM_SESSION, "hsm", NULL,
                          "%s: %s (a stale key handle: the session is replaced)", call,
                          mc_hsm_rv_name(rv));
    if (rv != CKR_OK)
        return rv_err(err, call, rv, NULL);
    if (rawlen != s->sigmax)
        return mc_err_set(err, MC_ERR_HSM_FATAL, "hsm", NULL,
                          "C_Sign returned %zu bytes, expected %zu", rawlen, s->sigmax);
    if (sp.mech == CKM_ECDSA) {
        /* RFC 5480 / RFC 3279 2.2.3: Ecdsa-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } */
        size_t half = rawlen / 2;
        mc_der_w w;
        mc_der_w_init(&w, sig, *siglen);
        size_t m = mc_der_begin(&w, MC_DER_SEQUENCE);
        mc_der_put_uint(&w, raw, half);
        mc_der_put_uint(&w, raw + half, half);
        mc_der_end(&w, m);
        if (w.err)
            return mc_err_set(err, MC_ERR_INVALID, "signature", NULL,
                              "signature buffer of %zu bytes is too small", *siglen);
        *siglen = w.len;
        return MC_OK;
    }
    if (*siglen < rawlen)
        return mc_err_set(err, MC_ERR_INVALID, "signature", NULL,
                          "signature buffer of %zu bytes is too small (need %zu)", *siglen, rawlen);
    memcpy(sig, raw, rawlen);
    *siglen = rawlen;
    return MC_OK;
}

mc_err mc_hsm_sign(mc_hsm_session *s, mc_sigalg alg, const uint8_t *in, size_t inlen, uint8_t *sig,
                   size_t *siglen, mc_errdetail *err)
{
    if (!s || !in || !sig || !siglen)
        return mc_err_set(err, MC_ERR_INVALID, "hsm", NULL, "mc_hsm_sign: NULL argument");
    return sign_core(s, alg, in, inlen, sig, siglen, err);
}

mc_err mc_hsm_sign_raw(mc_hsm_session *s, mc_sigalg alg, const uint8_t *in, size_t inlen,
                       uint8_t *sig, size_t *siglen)
{
    sigspec sp;
    if (!s || !in || !sig || !siglen || sign_check(s, alg, inlen, &sp, NULL))
        return MC_ERR_INVALID;
    /* C_Sign keeps the operation active on CKR_BUFFER_TOO_SMALL, so never let it happen. */
    if (*siglen < s->sigmax)
        return MC_ERR_INVALID;
    if (s->closed)
        return MC_ERR_HSM_SESSION;
    const char *call;
    CK_RV rv = p11_sign(s->f, s->sh, s->key, &sp, in, inlen, sig, siglen, &call);
    return rv == CKR_OPERATION_ACTIVE ? MC_ERR_HSM_SESSION : mc_hsm_rv_class(rv);
}

/* ---- open / close ---- */

/* Signs a fixed digest on the login session and verifies it with the public key read from the
 * token: a public object that does not belong to the private key would otherwise yield
 * certificates nobody can verify. */
static mc_err self_test(mc_hsm *h, CK_OBJECT_HANDLE key, EVP_PKEY *pub, mc_errdetail *err)
{
    static const mc_sigalg algs[] = {
        [MC_KEY_RSA] = MC_SIG_RSA_PKCS1_SHA256, [MC_KEY_P256] = MC_SIG_ECDSA_SHA256,
        [MC_KEY_P384] = MC_SIG_ECDSA_SHA384,    [MC_KEY_P521] = MC_SIG_ECDSA_SHA512,
        [MC_KEY_ED25519] = MC_SIG_ED25519,
    };
    mc_err rc = MC_OK;
    EVP_MD *md = NULL;
    EVP_MD_CTX *mctx = NULL;
    if ((size_t)h->kt >= sizeof algs / sizeof algs[0] || algs[h->kt] == MC_SIG_NONE)
        return mc_err_set(err, MC_ERR_INTERNAL, "hsm", NULL, "no self-test for key type %s",
                          mc_keytype_name(h->kt));
    mc_sigalg alg = algs[h->kt];
    mc_hsm_session s = {h->f, h->login, key, h->kt, h->sigmax, NULL, 0, CKR_OK};
    static const uint8_t msg[] = "mailca key pairing self-test";
    uint8_t dg[EVP_MAX_MD_SIZE];
    unsigned dlen = 0;
    const char *dname = mc_sigalg_digest(alg);
    const uint8_t *in = msg;
    size_t inlen = sizeof msg;
    if (dname) {
        md = EVP_MD_fetch(NULL, dname, HSM_PROPQ);
        if (!md || !EVP_Digest(msg, sizeof msg, dg, &dlen, md, NULL)) {
            rc = mc_err_set(err, MC_ERR_CRYPTO, "hsm", NULL, "digest %s unavailable", dname);
            goto done;
        }
        in = dg;
        inlen = dlen;
    }
    uint8_t sig[SIG_MAX + 16];
    size_t siglen = sizeof sig;
    if ((rc = sign_core(&s, alg, in, inlen, sig, &siglen, err)))
        goto done;
    mctx = EVP_MD_CTX_new();
    if (!mctx || EVP_DigestVerifyInit_ex(mctx, NULL, dname, NULL, HSM_PROPQ, pub, NULL) != 1 ||
        EVP_DigestVerify(mctx, sig, siglen, msg, sizeof msg) != 1)
        rc = mc_err_set(err, MC_ERR_HSM_FATAL, "uri", NULL,
                        "the public key on the token does not match the private key with%s",
                        h->what);
done:
    EVP_MD_CTX_free(mctx);
    EVP_MD_free(md);
    return rc;
}

/* Reads a PIN file named by pin-source into buf (first line). */
static mc_err read_pin_file(const char *path, char *buf, size_t cap, mc_errdetail *err)
{
    FILE *fp = fopen(path, "re");
    if (!fp)
        return mc_err_set(err, MC_ERR_CONFIG, "pin-source", NULL, "cannot open PIN file %s: %s",
                          path, strerror(errno));
    size_t n = fread(buf, 1, cap - 1, fp);
    int full = n == cap - 1 && fgetc(fp) != EOF;
    fclose(fp);
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    if (full || !buf[0]) {
        OPENSSL_cleanse(buf, cap);
        return mc_err_set(err, MC_ERR_CONFIG, "pin-source", NULL,
                          "PIN file %s is empty or too long", path);
    }
    return MC_OK;
}

static void append_what(char *buf, size_t cap, const mc_p11uri *u)
{
    size_t o = 0;
    if (u->has_object)
        o += (size_t)snprintf(buf + o, cap - o, " object=%s", u->object);
    if (u->has_id && o < cap) {
        o += (size_t)snprintf(buf + o, cap - o, " id=");
        for (size_t i = 0; i < u->idlen && o < cap; i++)
            o += (size_t)snprintf(buf + o, cap - o, "%%%02X", u->id[i]);
    }
}

mc_err mc_hsm_open(const mc_hsm_config *cfg, mc_hsm **out, mc_errdetail *err)
{
    mc_err rc = MC_OK;
    mc_hsm *h = NULL;
    EVP_PKEY *pub = NULL;
    mc_p11uri *u = NULL;
    char pinbuf[256];
    const char *pin = NULL;
    *out = NULL;
    if (!cfg || !cfg->key_uri) {
        rc = mc_err_set(err, MC_ERR_CONFIG, "key_uri", NULL, "no pkcs11 key URI configured");
        goto done;
    }
    u = calloc(1, sizeof *u);
    h = calloc(1, sizeof *h);
    if (!u || !h) {
        rc = mc_err_set(err, MC_ERR_NOMEM, "hsm", NULL, "out of memory");
        goto done;
    }
    if ((rc = mc_p11uri_parse(cfg->key_uri, u, err)))
        goto done;
    if (!u->has_object && !u->has_id) {
        rc = mc_err_set(err, MC_ERR_CONFIG, "key_uri", NULL,
                        "pkcs11 URI names no key (give object= and/or id=)");
        goto done;
    }
    if (u->type != MC_P11URI_TYPE_ANY && u->type != MC_P11URI_TYPE_PRIVATE) {
        rc = mc_err_set(err, MC_ERR_CONFIG, "key_uri", NULL,
                        "pkcs11 URI type= must be private for a signing key");
        goto done;
    }
    memcpy(h->label, u->object, sizeof h->label);
    h->by_label = u->has_object;
    memcpy(h->id, u->id, u->idlen);
    h->idlen = u->idlen;
    h->by_id = u->has_id;
    append_what(h->what, sizeof h->what, u);
    describe_token(u, h->tokdesc, sizeof h->tokdesc);

    if ((rc = module_get(cfg->module ? cfg->module : u->module_path, &h->mod, err)))
        goto done;
    h->f = h->mod->f;
    if ((rc = find_token(h->f, u, &h->slot, err)))
        goto done;
    CK_RV rv = h->f->C_OpenSession(h->slot, CKF_SERIAL_SESSION, NULL, NULL, &h->login);
    if (rv != CKR_OK) {
        rc = rv_err(err, "C_OpenSession", rv, NULL);
        goto done;
    }
    h->has_login = 1;

    pin = cfg->pin;
    if (!pin && u->pin_source[0]) {
        if ((rc = read_pin_file(u->pin_source, pinbuf, sizeof pinbuf, err)))
            goto done;
        pin = pinbuf;
    }
    if (!pin) {
        rc = mc_err_set(err, MC_ERR_CONFIG, "pin", NULL, "no user PIN given for the token");
        goto done;
    }
    /* Login state is the token's: another mc_hsm on this token may have logged in already. */
    rv = h->f->C_Login(h->login, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
    if (pin == pinbuf)
        OPENSSL_cleanse(pinbuf, sizeof pinbuf);
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
        rc = rv_err(err, "C_Login", rv, NULL);
        goto done;
    }

    CK_OBJECT_HANDLE key;
    if ((rc = find_key(h, h->login, &key, err)) || (rc = read_public(h, key, &pub, err)) ||
        (rc = self_test(h, key, pub, err)))
        goto done;

    int n = i2d_PUBKEY(pub, &h->spki);
    if (n <= 0) {
        rc = mc_err_set(err, MC_ERR_CRYPTO, "hsm", NULL, "i2d_PUBKEY failed");
        goto done;
    }
    h->spkilen = (size_t)n;
    /* SBR 7.1.3.1: the SPKI algorithm identifier must be one of the byte-exact encodings. */
    mc_der_cur c = mc_der_cur_make(h->spki, h->spkilen);
    mc_der_tlv seq, algid;
    mc_der_cur in;
    if (mc_der_expect(&c, MC_DER_SEQUENCE, &seq) != MC_OK ||
        (in = mc_der_cur_in(&seq), mc_der_expect(&in, MC_DER_SEQUENCE, &algid)) != MC_OK ||
        mc_keytype_from_algid(algid.raw, algid.rawlen) != h->kt) {
        rc = mc_err_set(err, MC_ERR_INTERNAL, "hsm", "SBR 7.1.3.1",
                        "SubjectPublicKeyInfo algorithm identifier is not the SBR encoding for %s",
                        mc_keytype_name(h->kt));
        goto done;
    }
    *out = h;
    h = NULL;
done:
    EVP_PKEY_free(pub);
    free(u);
    if (h)
        mc_hsm_close(h);
    return rc;
}

void mc_hsm_close(mc_hsm *h)
{
    if (!h)
        return;
    /* No C_Logout: other mc_hsm on the same token share the login; closing our last session
     * ends it anyway. */
    if (h->has_login)
        h->f->C_CloseSession(h->login);
    module_put(h->mod);
    OPENSSL_free(h->spki);
    free(h);
}

mc_keytype mc_hsm_keytype(const mc_hsm *h)
{
    return h->kt;
}

void mc_hsm_set_pin_source(mc_hsm *h, mc_hsm_pin_fn fn, void *arg)
{
    h->pin_fn = fn;
    h->pin_arg = arg;
}

mc_bytes mc_hsm_spki(const mc_hsm *h)
{
    return (mc_bytes){h->spki, h->spkilen};
}

/* Opens a PKCS#11 session on h's token, checks it is logged in and finds the key in it. On
 * success *sh and *key are set; on failure no session is left open. */
static mc_err session_start(mc_hsm *h, CK_SESSION_HANDLE *sh, CK_OBJECT_HANDLE *key,
                            mc_errdetail *err)
{
    mc_err rc = MC_OK;
    CK_SESSION_HANDLE n = CK_INVALID_HANDLE;
    CK_RV rv = h->f->C_OpenSession(h->slot, CKF_SERIAL_SESSION, NULL, NULL, &n);
    if (rv != CKR_OK)
        return rv_err(err, "C_OpenSession", rv, NULL);
    /* If the login went away (all sessions closed, token reset), the key is invisible: say so
     * rather than "no such key". */
    CK_SESSION_INFO si;
    rv = h->f->C_GetSessionInfo(n, &si);
    if (rv != CKR_OK) {
        rc = rv_err(err, "C_GetSessionInfo", rv, NULL);
        goto done;
    }
    if (si.state == CKS_RO_PUBLIC_SESSION || si.state == CKS_RW_PUBLIC_SESSION) {
        if (!h->pin_fn) {
            rc = mc_err_set(err, MC_ERR_HSM_SESSION, "hsm", NULL,
                            "C_OpenSession: %s (the token is no longer logged in; reopen mc_hsm)",
                            mc_hsm_rv_name(CKR_USER_NOT_LOGGED_IN));
            goto done;
        }
        /* log in again (a token reset logged everyone out); the PIN lives only for the call */
        char pin[256];
        if ((rc = h->pin_fn(h->pin_arg, pin, sizeof pin, err)) == MC_OK) {
            rv = h->f->C_Login(n, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
            if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN)
                rc = rv_err(err, "C_Login", rv, "(logging in again)");
        }
        OPENSSL_cleanse(pin, sizeof pin);
        if (rc)
            goto done;
    }
    rc = find_key(h, n, key, err);
done:
    if (rc)
        h->f->C_CloseSession(n);
    else
        *sh = n;
    return rc;
}

int mc_hsm_session_device_lost(const mc_hsm_session *s)
{
    switch (s->last_rv) {
    case CKR_DEVICE_ERROR:
    case CKR_DEVICE_REMOVED:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_DEVICE_MEMORY:
        return 1;
    default:
        return 0;
    }
}

const char *mc_hsm_token_desc(const mc_hsm *h)
{
    return h->tokdesc;
}

const char *mc_hsm_library_manufacturer(const mc_hsm *h)
{
    return h->mod->manufacturer;
}

mc_err mc_hsm_session_open(mc_hsm *h, mc_hsm_session **out, mc_errdetail *err)
{
    mc_err rc = MC_OK;
    mc_hsm_session *s = calloc(1, sizeof *s);
    *out = NULL;
    if (!s)
        return mc_err_set(err, MC_ERR_NOMEM, "hsm", NULL, "out of memory (session)");
    s->f = h->f;
    s->kt = h->kt;
    s->sigmax = h->sigmax;
    s->h = h;
    if ((rc = session_start(h, &s->sh, &s->key, err)))
        goto done;
    *out = s;
    s = NULL;
done:
    free(s);
    return rc;
}

mc_err mc_hsm_session_reopen(mc_hsm_session *s, mc_errdetail *err)
{
    if (!s || !s->h)
        return mc_err_set(err, MC_ERR_INVALID, "hsm", NULL, "mc_hsm_session_reopen: no session");
    /* The old handle may already be invalid (that is usually why we are here): its
     * C_CloseSession result does not matter. */
    if (!s->closed)
        s->f->C_CloseSession(s->sh);
    s->closed = 1;
    s->sh = CK_INVALID_HANDLE;
    CK_SESSION_HANDLE sh;
    CK_OBJECT_HANDLE key;
    mc_err rc = session_start(s->h, &sh, &key, err);
    if (rc)
        return rc;
    /* Committed only now: a failed reopen leaves s closed, and signing says MC_ERR_HSM_SESSION. */
    s->sh = sh;
    s->key = key;
    s->closed = 0;
    return MC_OK;
}

void mc_hsm_session_close(mc_hsm_session *s)
{
    if (!s)
        return;
    if (!s->closed)
        s->f->C_CloseSession(s->sh);
    free(s);
}

/* ---- provisioning ---- */

mc_err mc_hsm_token_init(const char *module, const char *label, const char *so_pin,
                         const char *user_pin, mc_errdetail *err)
{
    mc_err rc = MC_OK;
    p11mod *m = NULL;
    CK_SLOT_ID *slots = NULL;
    CK_ULONG n = 0;
    CK_SESSION_HANDLE sh = 0;
    int opened = 0, logged = 0;
    if (!label || !so_pin || !user_pin || strlen(label) > 32)
        return mc_err_set(err, MC_ERR_INVALID, "label", NULL,
                          "token label (at most 32 bytes) and both PINs are required");
    if ((rc = module_get(module, &m, err)))
        return rc;
    CK_FUNCTION_LIST_PTR f = m->f;
    if ((rc = slot_list(f, &slots, &n, err)))
        goto done;
    int have_free = 0;
    CK_SLOT_ID slot = 0;
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        CK_RV rv = f->C_GetTokenInfo(slots[i], &ti);
        if (rv != CKR_OK)
            continue;
        if (ti.flags & CKF_TOKEN_INITIALIZED) {
            /* Tokens are found by label, so a second token with the same one is refused. */
            if (field_eq(ti.label, sizeof ti.label, label)) {
                rc = mc_err_set(err, MC_ERR_INVALID, "label", NULL,
                                "a token labelled '%s' already exists", label);
                goto done;
            }
        } else if (!have_free) {
            have_free = 1;
            slot = slots[i];
        }
    }
    if (!have_free) {
        rc = mc_err_set(err, MC_ERR_HSM_FATAL, "hsm", NULL, "no uninitialised token in %s", module);
        goto done;
    }
    CK_UTF8CHAR padded[32];
    memset(padded, ' ', sizeof padded);
    memcpy(padded, label, strlen(label));
    CK_RV rv = f->C_InitToken(slot, (CK_UTF8CHAR_PTR)so_pin, strlen(so_pin), padded);
    if (rv != CKR_OK) {
        rc = rv_err(err, "C_InitToken", rv, label);
        goto done;
    }
    /* SoftHSM2 gives the initialised token a new slot id: find it again by label. */
    mc_p11uri u;
    memset(&u, 0, sizeof u);
    memcpy(u.token, label, strlen(label) + 1);
    u.has_token = 1;
    if ((rc = find_token(f, &u, &slot, err)))
        goto done;
    rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &sh);
    if (rv != CKR_OK) {
        rc = rv_err(err, "C_OpenSession", rv, label);
        goto done;
    }
    opened = 1;
    rv = f->C_Login(sh, CKU_SO, (CK_UTF8CHAR_PTR)so_pin, strlen(so_pin));
    if (rv != CKR_OK) {
        rc = rv_err(err, "C_Login", rv, "(SO)");
        goto done;
    }
    logged = 1;
    rv = f->C_InitPIN(sh, (CK_UTF8CHAR_PTR)user_pin, strlen(user_pin));
    if (rv != CKR_OK)
        rc = rv_err(err, "C_InitPIN", rv, label);
done:
    if (logged)
        f->C_Logout(sh);
    if (opened)
        f->C_CloseSession(sh);
    free(slots);
    module_put(m);
    return rc;
}

/* True when a private key with this label or id already exists (they must stay unique). */
static mc_err key_exists(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE sh, CK_ATTRIBUTE *a, int *exists,
                         mc_errdetail *err)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE tmpl[2] = {{CKA_CLASS, &cls, sizeof cls}, *a};
    CK_OBJECT_HANDLE o;
    CK_ULONG cnt = 0;
    CK_RV rv = f->C_FindObjectsInit(sh, tmpl, 2);
    if (rv == CKR_OK) {
        rv = f->C_FindObjects(sh, &o, 1, &cnt);
        CK_RV rv2 = f->C_FindObjectsFinal(sh);
        if (rv == CKR_OK)
            rv = rv2;
    }
    if (rv != CKR_OK)
        return rv_err(err, "C_FindObjects", rv, NULL);
    *exists = cnt > 0;
    return MC_OK;
}

mc_err mc_hsm_keygen(const char *module, const char *token_label, const char *pin, mc_keytype kt,
                     unsigned rsa_bits, const char *label, const uint8_t *id, size_t idlen,
                     mc_errdetail *err)
{
    mc_err rc = MC_OK;
    p11mod *m = NULL;
    CK_SESSION_HANDLE sh = 0;
    int opened = 0;
    if (!token_label || !pin || !label || !id || !idlen || idlen > MC_P11URI_ID_MAX ||
        strlen(token_label) > 32 || strlen(label) > MC_P11URI_OBJECT_MAX)
        return mc_err_set(err, MC_ERR_INVALID, "keygen", NULL,
                          "token label, PIN, key label (at most %d bytes) and id (1..%d bytes) "
                          "are required",
                          MC_P11URI_OBJECT_MAX, MC_P11URI_ID_MAX);
    if (kt == MC_KEY_RSA && (rsa_bits < 2048 || rsa_bits > SIG_MAX * 8 || rsa_bits % 8))
        return mc_err_set(err, MC_ERR_INVALID, "rsa_bits", NULL,
                          "RSA key size %u bits: need a multiple of 8 in 2048..%d", rsa_bits,
                          SIG_MAX * 8);
    if (kt != MC_KEY_RSA && kt != MC_KEY_P256 && kt != MC_KEY_P384 && kt != MC_KEY_ED25519)
        return mc_err_set(err, MC_ERR_UNSUPPORTED, "keytype", NULL,
                          "cannot generate %s keys (P-256, P-384, RSA, Ed25519)",
                          mc_keytype_name(kt));
    if ((rc = module_get(module, &m, err)))
        return rc;
    CK_FUNCTION_LIST_PTR f = m->f;
    mc_p11uri u;
    memset(&u, 0, sizeof u);
    memcpy(u.token, token_label, strlen(token_label) + 1);
    u.has_token = 1;
    CK_SLOT_ID slot;
    if ((rc = find_token(f, &u, &slot, err)))
        goto done;
    CK_RV rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &sh);
    if (rv != CKR_OK) {
        rc = rv_err(err, "C_OpenSession", rv, token_label);
        goto done;
    }
    opened = 1;
    rv = f->C_Login(sh, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
        rc = rv_err(err, "C_Login", rv, NULL);
        goto done;
    }
    CK_ATTRIBUTE by_label = {CKA_LABEL, (void *)label, strlen(label)};
    CK_ATTRIBUTE by_id = {CKA_ID, (void *)id, idlen};
    int dup1 = 0, dup2 = 0;
    if ((rc = key_exists(f, sh, &by_label, &dup1, err)) ||
        (rc = key_exists(f, sh, &by_id, &dup2, err)))
        goto done;
    if (dup1 || dup2) {
        rc = mc_err_set(err, MC_ERR_INVALID, "label", NULL,
                        "a private key with label '%s' or the same id exists on token '%s'", label,
                        token_label);
        goto done;
    }

    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG bits = rsa_bits;
    static const uint8_t e65537[] = {0x01, 0x00, 0x01};
    CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_ATTRIBUTE pubt[8] = {
        {CKA_TOKEN, &yes, sizeof yes},
        {CKA_VERIFY, &yes, sizeof yes},
        {CKA_LABEL, (void *)label, strlen(label)},
        {CKA_ID, (void *)id, idlen},
    };
    CK_ULONG npub = 4;
    switch (kt) {
    case MC_KEY_RSA:
        mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
        pubt[npub++] = (CK_ATTRIBUTE){CKA_MODULUS_BITS, &bits, sizeof bits};
        pubt[npub++] = (CK_ATTRIBUTE){CKA_PUBLIC_EXPONENT, (void *)e65537, sizeof e65537};
        break;
    case MC_KEY_P256:
        pubt[npub++] = (CK_ATTRIBUTE){CKA_EC_PARAMS, (void *)oid_p256, sizeof oid_p256};
        break;
    case MC_KEY_P384:
        pubt[npub++] = (CK_ATTRIBUTE){CKA_EC_PARAMS, (void *)oid_p384, sizeof oid_p384};
        break;
    default: /* MC_KEY_ED25519: the RFC 8410 OID. SoftHSM2 2.6.1 takes it and also the
              * PrintableString "edwards25519"; the OID is what the SPKI carries. */
        mech.mechanism = CKM_EC_EDWARDS_KEY_PAIR_GEN;
        pubt[npub++] = (CK_ATTRIBUTE){CKA_EC_PARAMS, (void *)oid_ed25519, sizeof oid_ed25519};
        break;
    }
    CK_ATTRIBUTE privt[] = {
        {CKA_TOKEN, &yes, sizeof yes},     {CKA_PRIVATE, &yes, sizeof yes},
        {CKA_SENSITIVE, &yes, sizeof yes}, {CKA_EXTRACTABLE, &no, sizeof no},
        {CKA_SIGN, &yes, sizeof yes},      {CKA_LABEL, (void *)label, strlen(label)},
        {CKA_ID, (void *)id, idlen},
    };
    CK_OBJECT_HANDLE hpub, hpriv;
    rv = f->C_GenerateKeyPair(sh, &mech, pubt, npub, privt, sizeof privt / sizeof privt[0], &hpub,
                              &hpriv);
    if (rv != CKR_OK)
        rc = rv_err(err, "C_GenerateKeyPair", rv, mc_keytype_name(kt));
done:
    /* No C_Logout: the login belongs to the token and may be shared with open mc_hsm. */
    if (opened)
        f->C_CloseSession(sh);
    module_put(m);
    return rc;
}
