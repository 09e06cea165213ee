/*
 * Packing and unpacking of the pipeline's messages (format in include/mailca/wire.h).
 */
#include "mailca/wire.h"

#include <stdio.h>
#include <string.h>

int mc_wire_file_write(void *data, const char *buf, size_t len)
{
    return len == 0 || fwrite(buf, 1, len, (FILE *)data) == len ? 0 : -1;
}

void mc_wire_pack_str(msgpack_packer *pk, const char *s, size_t len)
{
    msgpack_pack_str(pk, len);
    msgpack_pack_str_body(pk, s, len);
}

void mc_wire_pack_cstr(msgpack_packer *pk, const char *s)
{
    mc_wire_pack_str(pk, s ? s : "", s ? strlen(s) : 0);
}

void mc_wire_pack_bin(msgpack_packer *pk, const void *p, size_t len)
{
    msgpack_pack_bin(pk, len);
    msgpack_pack_bin_body(pk, p, len);
}

void mc_wire_pack_intent(msgpack_packer *pk, const mc_wire_intent *w)
{
    const mc_intent *i = &w->in;
    msgpack_pack_array(pk, 19);
    msgpack_pack_uint64(pk, w->seq);
    msgpack_pack_uint64(pk, w->t0);
    mc_wire_pack_cstr(pk, i->order_id);
    mc_wire_pack_cstr(pk, i->account);
    mc_wire_pack_cstr(pk, i->profile);
    mc_wire_pack_bin(pk, i->profile_hash, 32);
    mc_wire_pack_bin(pk, i->serial, i->serial_len);
    mc_wire_pack_bin(pk, i->tbs, i->tbs_len);
    mc_wire_pack_bin(pk, i->tbs_hash, 32);
    msgpack_pack_int64(pk, i->not_before);
    msgpack_pack_int64(pk, i->not_after);
    mc_wire_pack_cstr(pk, i->mailboxes);
    mc_wire_pack_cstr(pk, i->evidence);
    mc_wire_pack_cstr(pk, i->lint_warnings);
    mc_wire_pack_cstr(pk, i->lint_version);
    mc_wire_pack_cstr(pk, i->engine_version);
    mc_wire_pack_cstr(pk, i->replaces); /* "" when none */
    mc_wire_pack_bin(pk, i->spki_sha256, i->spki_sha256 ? 32 : 0);
    mc_wire_pack_cstr(pk, i->lint_enforced); /* "" when lint was off */
}

void mc_wire_pack_verdict(msgpack_packer *pk, const mc_wire_verdict *v)
{
    if (v->action != MC_WIRE_RESUME) {
        msgpack_pack_array(pk, 1);
        msgpack_pack_int(pk, v->action);
        return;
    }
    msgpack_pack_array(pk, 3);
    msgpack_pack_int(pk, v->action);
    mc_wire_pack_bin(pk, v->serial, v->serial_len);
    mc_wire_pack_bin(pk, v->tbs, v->tbs_len);
}

void mc_wire_pack_result(msgpack_packer *pk, const mc_wire_result *w)
{
    const mc_result *r = &w->r;
    msgpack_pack_array(pk, 12);
    msgpack_pack_uint64(pk, r->seq);
    msgpack_pack_uint64(pk, w->t0);
    mc_wire_pack_str(pk, r->order_id ? r->order_id : "", r->order_id ? r->order_id_len : 0);
    msgpack_pack_int(pk, (int)r->status);
    mc_wire_pack_bin(pk, r->serial, r->serial_len);
    mc_wire_pack_bin(pk, r->cert, r->cert_len);
    mc_wire_pack_cstr(pk, r->warnings);
    msgpack_pack_int(pk, (int)r->error.code);
    mc_wire_pack_cstr(pk, r->error.field);
    mc_wire_pack_cstr(pk, r->error.rule);
    mc_wire_pack_cstr(pk, r->error.message);
    mc_wire_pack_cstr(pk, w->profile);
}

static const char *str_dup(const msgpack_object *o, mc_arena *a)
{
    if (o->type != MSGPACK_OBJECT_STR)
        return NULL;
    char *s = mc_arena_alloc(a, o->via.str.size + 1);
    if (!s)
        return NULL;
    memcpy(s, o->via.str.ptr, o->via.str.size);
    s[o->via.str.size] = '\0';
    return s;
}

static int bin(const msgpack_object *o, const uint8_t **p, size_t *len)
{
    if (o->type != MSGPACK_OBJECT_BIN)
        return 0;
    *p = (const uint8_t *)o->via.bin.ptr;
    *len = o->via.bin.size;
    return 1;
}

static int u64(const msgpack_object *o, uint64_t *v)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return 0;
    *v = o->via.u64;
    return 1;
}

static int i64(const msgpack_object *o, int64_t *v)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX)
        *v = (int64_t)o->via.u64;
    else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        *v = o->via.i64;
    else
        return 0;
    return 1;
}

static void copy_field(char *dst, size_t cap, const msgpack_object *o)
{
    size_t n = o->type == MSGPACK_OBJECT_STR ? o->via.str.size : 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(dst, o->via.str.ptr, n);
    dst[n] = '\0';
}

mc_err mc_wire_unpack_intent(const msgpack_object *o, mc_arena *a, mc_wire_intent *w)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 19)
        return MC_ERR_INTERNAL;
    const msgpack_object *e = o->via.array.ptr;
    mc_intent *i = &w->in;
    memset(w, 0, sizeof *w);
    size_t hl = 0, th = 0, kh = 0;
    if (!u64(&e[0], &w->seq) || !u64(&e[1], &w->t0) || !(i->order_id = str_dup(&e[2], a)) ||
        !(i->account = str_dup(&e[3], a)) || !(i->profile = str_dup(&e[4], a)) ||
        !bin(&e[5], &i->profile_hash, &hl) || hl != 32 || !bin(&e[6], &i->serial, &i->serial_len) ||
        !bin(&e[7], &i->tbs, &i->tbs_len) || !bin(&e[8], &i->tbs_hash, &th) || th != 32 ||
        !i64(&e[9], &i->not_before) || !i64(&e[10], &i->not_after) ||
        !(i->mailboxes = str_dup(&e[11], a)) || !(i->evidence = str_dup(&e[12], a)) ||
        !(i->lint_warnings = str_dup(&e[13], a)) || !(i->lint_version = str_dup(&e[14], a)) ||
        !(i->engine_version = str_dup(&e[15], a)) || !(i->replaces = str_dup(&e[16], a)) ||
        !bin(&e[17], &i->spki_sha256, &kh) || (kh != 0 && kh != 32) ||
        !(i->lint_enforced = str_dup(&e[18], a)))
        return MC_ERR_INTERNAL;
    if (!i->lint_enforced[0])
        i->lint_enforced = NULL;
    if (!i->replaces[0])
        i->replaces = NULL;
    if (!kh)
        i->spki_sha256 = NULL;
    return MC_OK;
}

mc_err mc_wire_unpack_verdict(const msgpack_object *o, mc_wire_verdict *v)
{
    memset(v, 0, sizeof *v);
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 1 ||
        o->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return MC_ERR_INTERNAL;
    v->action = (int)o->via.array.ptr[0].via.u64;
    if (v->action == MC_WIRE_RESUME &&
        (o->via.array.size != 3 || !bin(&o->via.array.ptr[1], &v->serial, &v->serial_len) ||
         !bin(&o->via.array.ptr[2], &v->tbs, &v->tbs_len)))
        return MC_ERR_INTERNAL;
    return v->action <= MC_WIRE_KEY_COMPROMISED ? MC_OK : MC_ERR_INTERNAL;
}

mc_err mc_wire_unpack_result(const msgpack_object *o, mc_arena *a, mc_wire_result *w)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 12)
        return MC_ERR_INTERNAL;
    const msgpack_object *e = o->via.array.ptr;
    mc_result *r = &w->r;
    memset(w, 0, sizeof *w);
    uint64_t status = 0, code = 0;
    if (!u64(&e[0], &r->seq) || !u64(&e[1], &w->t0) || !(r->order_id = str_dup(&e[2], a)) ||
        !u64(&e[3], &status) || status < MC_STATUS_ISSUED || status > MC_STATUS_FAILED ||
        !bin(&e[4], &r->serial, &r->serial_len) || !bin(&e[5], &r->cert, &r->cert_len) ||
        !(r->warnings = str_dup(&e[6], a)) || !u64(&e[7], &code) ||
        !(w->profile = str_dup(&e[11], a)))
        return MC_ERR_INTERNAL;
    r->order_id_len = e[2].via.str.size;
    r->status = (mc_status)status;
    r->error.code = (mc_err)code;
    copy_field(r->error.field, sizeof r->error.field, &e[8]);
    copy_field(r->error.rule, sizeof r->error.rule, &e[9]);
    copy_field(r->error.message, sizeof r->error.message, &e[10]);
    return MC_OK;
}
