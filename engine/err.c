/*
 * Error details: one place that turns codes into names and formats messages, so that every
 * module reports errors the same way.
 */
#include "mailca/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void copy_trunc(char *dst, size_t cap, const char *src)
{
    if (!src)
        src = "";
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

mc_err mc_err_set(mc_errdetail *d, mc_err code, const char *field, const char *rule,
                  const char *fmt, ...)
{
    if (!d)
        return code;
    d->code = code;
    copy_trunc(d->field, sizeof d->field, field);
    copy_trunc(d->rule, sizeof d->rule, rule);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->message, sizeof d->message, fmt, ap);
    va_end(ap);
    return code;
}

void mc_err_clear(mc_errdetail *d)
{
    if (!d)
        return;
    d->code = MC_OK;
    d->field[0] = d->rule[0] = d->message[0] = '\0';
}

const char *mc_err_name(mc_err code)
{
    switch (code) {
    case MC_OK:
        return "ok";
    case MC_ERR_NOMEM:
        return "nomem";
    case MC_ERR_IO:
        return "io";
    case MC_ERR_INVALID:
        return "invalid";
    case MC_ERR_UNSUPPORTED:
        return "unsupported";
    case MC_ERR_CSR:
        return "csr";
    case MC_ERR_LINT:
        return "lint";
    case MC_ERR_PROFILE:
        return "profile";
    case MC_ERR_CONFIG:
        return "config";
    case MC_ERR_CRYPTO:
        return "crypto";
    case MC_ERR_HSM:
        return "hsm";
    case MC_ERR_HSM_SESSION:
        return "hsm-session";
    case MC_ERR_HSM_FATAL:
        return "hsm-fatal";
    case MC_ERR_STORE:
        return "store";
    case MC_ERR_DUPLICATE:
        return "duplicate";
    case MC_ERR_ZMQ:
        return "zmq";
    case MC_ERR_CAA:
        return "caa";
    case MC_ERR_DNS:
        return "dns";
    case MC_ERR_INTERNAL:
        return "internal";
    }
    return "unknown";
}

const char *mc_err_format(const mc_errdetail *d, char *buf, size_t len)
{
    if (!len)
        return buf;
    snprintf(buf, len, "%s%s%s%s%s%s%s", mc_err_name(d->code), d->field[0] ? ": " : "", d->field,
             ": ", d->message, d->rule[0] ? " [" : "", d->rule[0] ? d->rule : "");
    if (d->rule[0]) {
        size_t n = strlen(buf);
        if (n + 1 < len) {
            buf[n] = ']';
            buf[n + 1] = '\0';
        }
    }
    return buf;
}

/* Appends src at *o, keeping room for the NUL. */
static void field_append(char *buf, size_t cap, size_t *o, const char *src, size_t n)
{
    if (*o + 1 >= cap)
        return;
    if (n > cap - 1 - *o)
        n = cap - 1 - *o;
    memcpy(buf + *o, src, n);
    *o += n;
}

const char *mc_err_field(char *buf, size_t cap, const char *a, const char *b)
{
    size_t o = 0;
    if (!cap)
        return buf;
    field_append(buf, cap, &o, a, strlen(a));
    if (b) {
        field_append(buf, cap, &o, ".", 1);
        field_append(buf, cap, &o, b, strlen(b));
    }
    buf[o] = '\0';
    return buf;
}

const char *mc_err_field_index(char *buf, size_t cap, const char *name, size_t i)
{
    char digits[24];
    size_t n = sizeof digits, o = 0;
    if (!cap)
        return buf;
    do
        digits[--n] = (char)('0' + i % 10);
    while ((i /= 10) && n > 0);
    field_append(buf, cap, &o, name, strlen(name));
    field_append(buf, cap, &o, "[", 1);
    field_append(buf, cap, &o, digits + n, sizeof digits - n);
    field_append(buf, cap, &o, "]", 1);
    buf[o] = '\0';
    return buf;
}

int mc_err_retryable(mc_err code)
{
    return code == MC_ERR_HSM || code == MC_ERR_HSM_SESSION || code == MC_ERR_STORE ||
           code == MC_ERR_ZMQ || code == MC_ERR_NOMEM || code == MC_ERR_DNS;
}
