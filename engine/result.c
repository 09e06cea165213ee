/*
 * Results: the one msgpack map each order yields (issued, rejected or failed), and its strict
 * decoder for tests and tools. The format is in docs/orders.md, "Results". Packing validates the
 * whole result before writing a byte, so a broken result never leaves half a map in the stream.
 */
#include "mailca/result.h"

#include <stdio.h>
#include <string.h>

const char *mc_status_name(mc_status s)
{
    switch (s) {
    case MC_STATUS_ISSUED:
        return "issued";
    case MC_STATUS_REJECTED:
        return "rejected";
    case MC_STATUS_FAILED:
        return "failed";
    }
    return "unknown";
}

/* ---- packing ---- */

static int pack_cstr(msgpack_packer *pk, const char *s, size_t n)
{
    return msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, s, n);
}

static int pack_key(msgpack_packer *pk, const char *k)
{
    return pack_cstr(pk, k, strlen(k));
}

mc_err mc_result_pack(msgpack_packer *pk, const mc_result *r)
{
    static const char hexd[] = "0123456789abcdef";
    char hex[2 * MC_RESULT_SERIAL_MAX];
    size_t lv_len = 0, w_len = 0;

    if (!pk || !r)
        return MC_ERR_INTERNAL;
    if (r->status == MC_STATUS_ISSUED) {
        if (!r->serial || r->serial_len < 1 || r->serial_len > MC_RESULT_SERIAL_MAX || !r->cert ||
            r->cert_len == 0 || !r->lint_version)
            return MC_ERR_INTERNAL;
        lv_len = strlen(r->lint_version);
        w_len = r->warnings ? strlen(r->warnings) : 0;
        if (lv_len == 0 || lv_len >= MC_RESULT_LINT_VERSION_MAX || w_len >= MC_RESULT_WARNINGS_MAX)
            return MC_ERR_INTERNAL;
        for (size_t i = 0; i < r->serial_len; i++) {
            hex[2 * i] = hexd[r->serial[i] >> 4];
            hex[2 * i + 1] = hexd[r->serial[i] & 0xf];
        }
    } else if (r->status == MC_STATUS_REJECTED || r->status == MC_STATUS_FAILED) {
        if (r->error.code == MC_OK)
            return MC_ERR_INTERNAL;
    } else {
        return MC_ERR_INTERNAL;
    }

    const char *id = r->order_id ? r->order_id : "";
    size_t id_len = r->order_id ? r->order_id_len : 0;
    const char *status = mc_status_name(r->status);
    int bad = msgpack_pack_map(pk, r->status == MC_STATUS_ISSUED ? 7 : 4) || pack_key(pk, "id") ||
              pack_cstr(pk, id, id_len) || pack_key(pk, "seq") || msgpack_pack_uint64(pk, r->seq) ||
              pack_key(pk, "status") || pack_cstr(pk, status, strlen(status));
    if (!bad && r->status == MC_STATUS_ISSUED) {
        bad = pack_key(pk, "serial") || pack_cstr(pk, hex, 2 * r->serial_len) ||
              pack_key(pk, "certificate") || msgpack_pack_bin(pk, r->cert_len) ||
              msgpack_pack_bin_body(pk, r->cert, r->cert_len) || pack_key(pk, "lint_version") ||
              pack_cstr(pk, r->lint_version, lv_len) || pack_key(pk, "warnings") ||
              pack_cstr(pk, r->warnings ? r->warnings : "", w_len);
    } else if (!bad) {
        const mc_errdetail *d = &r->error;
        const char *code = mc_err_name(d->code);
        /* The detail's strings are NUL-terminated within their buffers (mc_err_set). */
        bad = pack_key(pk, "error") || msgpack_pack_map(pk, 4) || pack_key(pk, "code") ||
              pack_cstr(pk, code, strlen(code)) || pack_key(pk, "field") ||
              pack_cstr(pk, d->field, strnlen(d->field, sizeof d->field)) || pack_key(pk, "rule") ||
              pack_cstr(pk, d->rule, strnlen(d->rule, sizeof d->rule)) || pack_key(pk, "message") ||
              pack_cstr(pk, d->message, strnlen(d->message, sizeof d->message));
    }
    return bad ? MC_ERR_IO : MC_OK;
}

/* ---- decoding ---- */

static int key_eq(const msgpack_object *k, const char *s)
{
    size_t n = strlen(s);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
           memcmp(k->via.str.ptr, s, n) == 0;
}

/* Copies a str of at most cap-1 bytes into dst, NUL-terminated; a NUL inside is refused. */
static mc_err copy_str(const msgpack_object *v, char *dst, size_t cap, const char *field,
                       mc_errdetail *err)
{
    if (v->type != MSGPACK_OBJECT_STR)
        return mc_err_set(err, MC_ERR_INVALID, field, "orders.md results", "must be a str");
    if (v->via.str.size >= cap)
        return mc_err_set(err, MC_ERR_INVALID, field, "orders.md results",
                          "is %u bytes long, the limit is %zu", v->via.str.size, cap - 1);
    if (memchr(v->via.str.ptr, 0, v->via.str.size))
        return mc_err_set(err, MC_ERR_INVALID, field, "orders.md results", "contains a NUL");
    memcpy(dst, v->via.str.ptr, v->via.str.size);
    dst[v->via.str.size] = '\0';
    return MC_OK;
}

static mc_err decode_error(const msgpack_object *v, mc_errdetail *out, mc_errdetail *err)
{
    static const char *const keys[] = {"code", "field", "rule", "message"};
    char path[MC_ERR_FIELD_MAX];
    char code[32];
    if (v->type != MSGPACK_OBJECT_MAP)
        return mc_err_set(err, MC_ERR_INVALID, "error", "orders.md results", "must be a map");
    unsigned seen = 0;
    for (uint32_t i = 0; i < v->via.map.size; i++) {
        const msgpack_object *k = &v->via.map.ptr[i].key, *val = &v->via.map.ptr[i].val;
        int ki = -1;
        for (int j = 0; j < 4; j++)
            if (key_eq(k, keys[j]))
                ki = j;
        if (ki < 0 || (seen & (1u << ki)))
            return mc_err_set(err, MC_ERR_INVALID, "error", "orders.md results",
                              "%s key in the error map",
                              ki < 0 ? "unknown or non-str" : "duplicate");
        seen |= 1u << ki;
        snprintf(path, sizeof path, "error.%s", keys[ki]);
        mc_err e;
        switch (ki) {
        case 0:
            if ((e = copy_str(val, code, sizeof code, path, err)))
                return e;
            out->code = MC_OK;
            for (int c = MC_ERR_NOMEM; c <= MC_ERR_INTERNAL; c++)
                if (strcmp(code, mc_err_name((mc_err)c)) == 0)
                    out->code = (mc_err)c;
            if (out->code == MC_OK)
                return mc_err_set(err, MC_ERR_INVALID, path, "orders.md results",
                                  "\"%s\" is not an error code", code);
            break;
        case 1:
            e = copy_str(val, out->field, sizeof out->field, path, err);
            break;
        case 2:
            e = copy_str(val, out->rule, sizeof out->rule, path, err);
            break;
        default:
            e = copy_str(val, out->message, sizeof out->message, path, err);
            break;
        }
        if (e)
            return e;
    }
    for (int j = 0; j < 4; j++)
        if (!(seen & (1u << j))) {
            snprintf(path, sizeof path, "error.%s", keys[j]);
            return mc_err_set(err, MC_ERR_INVALID, path, "orders.md results",
                              "required field is missing");
        }
    return MC_OK;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

enum { K_ID, K_SEQ, K_STATUS, K_SERIAL, K_CERT, K_LINT, K_WARN, K_ERROR, K_N };
static const char *const result_keys[K_N] = {"id",          "seq",          "status",   "serial",
                                             "certificate", "lint_version", "warnings", "error"};

mc_err mc_result_decode(const msgpack_object *obj, mc_result *r, mc_errdetail *err)
{
    memset(r, 0, sizeof *r);
    mc_err_clear(err);
    if (!obj || obj->type != MSGPACK_OBJECT_MAP)
        return mc_err_set(err, MC_ERR_INVALID, "", "orders.md results",
                          "a result must be a msgpack map");
    const msgpack_object_map *m = &obj->via.map;

    /* The status decides which keys belong, so read it first. */
    for (uint32_t i = 0; i < m->size; i++)
        if (key_eq(&m->ptr[i].key, "status")) {
            const msgpack_object *v = &m->ptr[i].val;
            for (int s = MC_STATUS_ISSUED; s <= MC_STATUS_FAILED; s++)
                if (key_eq(v, mc_status_name((mc_status)s)))
                    r->status = (mc_status)s;
            if (!r->status)
                return mc_err_set(err, MC_ERR_INVALID, "status", "orders.md results",
                                  "must be issued, rejected or failed");
            break;
        }
    if (!r->status)
        return mc_err_set(err, MC_ERR_INVALID, "status", "orders.md results",
                          "required field is missing");
    unsigned allowed = (1u << K_ID) | (1u << K_SEQ) | (1u << K_STATUS);
    if (r->status == MC_STATUS_ISSUED)
        allowed |= (1u << K_SERIAL) | (1u << K_CERT) | (1u << K_LINT) | (1u << K_WARN);
    else
        allowed |= 1u << K_ERROR;

    unsigned seen = 0;
    mc_err e = MC_OK;
    for (uint32_t i = 0; i < m->size && !e; i++) {
        const msgpack_object *k = &m->ptr[i].key, *v = &m->ptr[i].val;
        int ki = -1;
        for (int j = 0; j < K_N; j++)
            if (key_eq(k, result_keys[j]))
                ki = j;
        if (ki < 0 || !(allowed & (1u << ki))) {
            int n = k->type == MSGPACK_OBJECT_STR
                        ? (int)(k->via.str.size > 40 ? 40 : k->via.str.size)
                        : 0;
            return mc_err_set(err, MC_ERR_INVALID, ki < 0 ? "" : result_keys[ki],
                              "orders.md results", "key \"%.*s\" not allowed in a %s result", n,
                              n ? k->via.str.ptr : "", mc_status_name(r->status));
        }
        if (seen & (1u << ki))
            return mc_err_set(err, MC_ERR_INVALID, result_keys[ki], "orders.md results",
                              "key appears more than once");
        seen |= 1u << ki;
        switch (ki) {
        case K_ID:
            if (v->type != MSGPACK_OBJECT_STR)
                return mc_err_set(err, MC_ERR_INVALID, "id", "orders.md results", "must be a str");
            r->order_id = v->via.str.ptr;
            r->order_id_len = v->via.str.size;
            break;
        case K_SEQ:
            if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
                return mc_err_set(err, MC_ERR_INVALID, "seq", "orders.md results",
                                  "must be a non-negative integer");
            r->seq = v->via.u64;
            break;
        case K_STATUS:
            break; /* read above */
        case K_SERIAL: {
            size_t n = v->type == MSGPACK_OBJECT_STR ? v->via.str.size : 0;
            if (n < 2 || n % 2 || n > 2 * MC_RESULT_SERIAL_MAX)
                return mc_err_set(err, MC_ERR_INVALID, "serial", "orders.md results",
                                  "must be 2..%d lower-case hex digits, even count",
                                  2 * MC_RESULT_SERIAL_MAX);
            for (size_t j = 0; j < n; j += 2) {
                int hi = hexval(v->via.str.ptr[j]), lo = hexval(v->via.str.ptr[j + 1]);
                if (hi < 0 || lo < 0)
                    return mc_err_set(err, MC_ERR_INVALID, "serial", "orders.md results",
                                      "must be lower-case hex");
                r->store.serial[j / 2] = (uint8_t)(hi << 4 | lo);
            }
            r->serial = r->store.serial;
            r->serial_len = n / 2;
            break;
        }
        case K_CERT:
            if (v->type != MSGPACK_OBJECT_BIN || v->via.bin.size == 0)
                return mc_err_set(err, MC_ERR_INVALID, "certificate", "orders.md results",
                                  "must be non-empty bin");
            r->cert = (const uint8_t *)v->via.bin.ptr;
            r->cert_len = v->via.bin.size;
            break;
        case K_LINT:
            e = copy_str(v, r->store.lint_version, sizeof r->store.lint_version, "lint_version",
                         err);
            r->lint_version = r->store.lint_version;
            break;
        case K_WARN:
            e = copy_str(v, r->store.warnings, sizeof r->store.warnings, "warnings", err);
            r->warnings = r->store.warnings;
            break;
        case K_ERROR:
            e = decode_error(v, &r->error, err);
            break;
        }
    }
    for (int j = 0; !e && j < K_N; j++)
        if ((allowed & (1u << j)) && !(seen & (1u << j)))
            e = mc_err_set(err, MC_ERR_INVALID, result_keys[j], "orders.md results",
                           "required field is missing");
    return e;
}
