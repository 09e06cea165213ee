/*
 * mc_query: `mailca query` and the selector options it shares with `mailca revoke`
 * (include/mailca/query.h). The store selects and streams (mc_store_query); this module parses
 * the command line and writes each row as it arrives, so nothing grows with the result.
 */
#include "mailca/query.h"

#include "mailca/config.h"
#include "mailca/lint.h"
#include "mailca/revoke.h"
#include "mailca/text.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum {
    QS_SERIAL = 0,
    QS_ACCOUNT,
    QS_KEY,
    QS_PROFILE,
    QS_PROFILE_HASH,
    QS_AFTER,
    QS_BEFORE,
    QS_LINT_VERSION,
    QS_LINT_ENFORCED,
    QS_LINT_WARNING,
    QS_ENGINE_VERSION,
    QS_METHOD,
    QS_DOMAIN,
    QS_STATUS,
    QS_EXPIRED_AT,
    QS_UNEXPIRED_AT,
    QS_CAA_UNCHECKED,
    QS_COUNT_
};

const struct option mc_query_sel_options[] = {
    {"serial", 1, 0, MC_QUERY_OPT_BASE + QS_SERIAL},
    {"account", 1, 0, MC_QUERY_OPT_BASE + QS_ACCOUNT},
    {"key-sha256", 1, 0, MC_QUERY_OPT_BASE + QS_KEY},
    {"profile", 1, 0, MC_QUERY_OPT_BASE + QS_PROFILE},
    {"profile-hash", 1, 0, MC_QUERY_OPT_BASE + QS_PROFILE_HASH},
    {"issued-after", 1, 0, MC_QUERY_OPT_BASE + QS_AFTER},
    {"issued-before", 1, 0, MC_QUERY_OPT_BASE + QS_BEFORE},
    {"lint-version", 1, 0, MC_QUERY_OPT_BASE + QS_LINT_VERSION},
    {"lint-enforced", 1, 0, MC_QUERY_OPT_BASE + QS_LINT_ENFORCED},
    {"lint-warning", 1, 0, MC_QUERY_OPT_BASE + QS_LINT_WARNING},
    {"engine-version", 1, 0, MC_QUERY_OPT_BASE + QS_ENGINE_VERSION},
    {"method", 1, 0, MC_QUERY_OPT_BASE + QS_METHOD},
    {"domain", 1, 0, MC_QUERY_OPT_BASE + QS_DOMAIN},
    {"status", 1, 0, MC_QUERY_OPT_BASE + QS_STATUS},
    {"expired-at", 1, 0, MC_QUERY_OPT_BASE + QS_EXPIRED_AT},
    {"unexpired-at", 1, 0, MC_QUERY_OPT_BASE + QS_UNEXPIRED_AT},
    {"caa-unchecked", 0, 0, MC_QUERY_OPT_BASE + QS_CAA_UNCHECKED},
    {0, 0, 0, 0},
};
_Static_assert(sizeof mc_query_sel_options / sizeof mc_query_sel_options[0] == QS_COUNT_ + 1,
               "one option per selector criterion");

const char mc_query_sel_usage[] =
    "  selectors (all given must hold; each at most once):\n"
    "    --serial HEX          --account A           --key-sha256 HEX (subject key SPKI)\n"
    "    --profile P           --profile-hash HEX    --engine-version V\n"
    "    --issued-after T      --issued-before T     (notBefore in [after, before))\n"
    "    --expired-at T        --unexpired-at T      (notAfter before T / at or after T)\n"
    "    --lint-version V      (the lint set of the build that issued, or lint-disabled)\n"
    "    --lint-enforced V     (the lint set whose error lints blocked issuance)\n"
    "    --lint-warning ID     (a lint id among the recorded warnings)\n"
    "    --method M            (SBR 3.2.2 mailbox validation: 3.2.2.1 3.2.2.2 3.2.2.3 3.2.2.4)\n"
    "    --domain D            (the exact domain of a subject mailbox)\n"
    "    --status issued|revoked\n"
    "    --caa-unchecked       (issued with CAA lookups off: evidence caa_checked false)\n"
    "  T: seconds since the epoch, YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ (UTC) or now\n";

void mc_query_selopts_init(mc_query_selopts *o)
{
    memset(o, 0, sizeof *o);
}

/* 64 hex digits into 32 bytes: two halves through the serial parser (which takes up to 20). */
static int hex32(const char *hex, uint8_t *out)
{
    char half[33];
    size_t l1 = 0, l2 = 0;
    if (strlen(hex) != 64)
        return 0;
    memcpy(half, hex, 32);
    half[32] = '\0';
    return mc_store_serial_parse(half, out, &l1) &&
           mc_store_serial_parse(hex + 32, out + 16, &l2) && l1 == 16 && l2 == 16;
}

static int bad(mc_errdetail *err, const char *flag, const char *rule, const char *fmt,
               const char *val)
{
    char field[MC_ERR_FIELD_MAX];
    snprintf(field, sizeof field, "--%s", flag);
    mc_err_set(err, MC_ERR_INVALID, field, rule, fmt, val);
    return -1;
}

/* A time option: mc_revoke_time_parse's forms, or "now". */
static int time_opt(const char *flag, const char *val, int64_t now, int64_t *out, mc_errdetail *err)
{
    char field[MC_ERR_FIELD_MAX];
    if (strcmp(val, "now") == 0) {
        *out = now;
        return 0;
    }
    snprintf(field, sizeof field, "--%s", flag);
    return mc_revoke_time_parse(val, field, out, err) == MC_OK ? 0 : -1;
}

/* A lint set version as `mailca version` prints it: a misspelt set would select nothing and
 * look like an answer. */
static int lint_set_opt(const char *flag, const char *val, mc_errdetail *err)
{
    char field[MC_ERR_FIELD_MAX];
    snprintf(field, sizeof field, "--%s", flag);
    if (mc_lint_set_check(val, field, err) != MC_OK) {
        err->code = MC_ERR_INVALID;
        return -1;
    }
    return 0;
}

int mc_query_sel_option(mc_query_selopts *o, int ch, const char *val, int64_t now,
                        mc_errdetail *err)
{
    int k = ch - MC_QUERY_OPT_BASE;
    if (k < 0 || k >= QS_COUNT_)
        return 0;
    const char *flag = mc_query_sel_options[k].name;
    mc_store_sel *s = &o->sel;
    size_t len = 0;
    if (o->seen & (1u << k))
        return bad(err, flag, NULL,
                   "given twice (criteria are ANDed: one value each; run one query per value), "
                   "second value '%s'",
                   val);
    o->seen |= 1u << k;
    if (k != QS_CAA_UNCHECKED && !val[0])
        return bad(err, flag, NULL, "empty value%s (leave the option out to select any)", "");
    switch (k) {
    case QS_SERIAL:
        if (!mc_store_serial_parse(val, o->serial, &len))
            return bad(err, flag, "RFC 5280 4.1.2.2",
                       "'%s' is not a hex serial of 1..20 bytes (an even number of digits)", val);
        s->serial = o->serial;
        s->serial_len = len;
        break;
    case QS_ACCOUNT:
        s->account = val;
        break;
    case QS_KEY:
        if (!hex32(val, o->key))
            return bad(err, flag, NULL, "'%s' is not a SHA-256 (64 hex digits)", val);
        s->spki_sha256 = o->key;
        break;
    case QS_PROFILE:
        s->profile = val;
        break;
    case QS_PROFILE_HASH:
        if (!hex32(val, o->profile_hash))
            return bad(err, flag, NULL, "'%s' is not a SHA-256 (64 hex digits)", val);
        s->profile_hash = o->profile_hash;
        break;
    case QS_AFTER:
        if (time_opt(flag, val, now, &s->issued_after, err) != 0)
            return -1;
        s->has |= MC_SEL_ISSUED_AFTER;
        break;
    case QS_BEFORE:
        if (time_opt(flag, val, now, &s->issued_before, err) != 0)
            return -1;
        s->has |= MC_SEL_ISSUED_BEFORE;
        break;
    case QS_EXPIRED_AT:
        if (time_opt(flag, val, now, &s->expired_at, err) != 0)
            return -1;
        s->has |= MC_SEL_EXPIRED;
        break;
    case QS_UNEXPIRED_AT:
        if (time_opt(flag, val, now, &s->unexpired_at, err) != 0)
            return -1;
        s->has |= MC_SEL_UNEXPIRED;
        break;
    case QS_LINT_VERSION:
        /* or what lint-disabled runs record */
        if (strcmp(val, "lint-disabled") != 0 && lint_set_opt(flag, val, err) != 0)
            return -1;
        s->lint_version = val;
        break;
    case QS_LINT_ENFORCED:
        if (lint_set_opt(flag, val, err) != 0)
            return -1;
        s->lint_enforced = val;
        break;
    case QS_LINT_WARNING: {
        /* a misspelt lint id would select nothing and look like an answer: only ids this build
         * knows (mailca lint --list) */
        size_t nd = 0;
        const mc_lint_def *defs = mc_lint_defs(&nd);
        int known = 0;
        for (size_t i = 0; i < nd && !known; i++)
            known = strcmp(defs[i].id, val) == 0;
        if (!known)
            return bad(err, flag, NULL, "'%s' is not a lint id of this build (mailca lint --list)",
                       val);
        s->lint_id = val;
        break;
    }
    case QS_ENGINE_VERSION:
        s->engine_version = val;
        break;
    case QS_METHOD:
        s->method = val;
        break;
    case QS_DOMAIN:
        s->domain = val;
        break;
    case QS_STATUS:
        s->status = val;
        break;
    case QS_CAA_UNCHECKED:
        s->caa_unchecked = 1;
        break;
    }
    /* what the store refuses (a method outside SBR 3.2.2, a malformed domain, a status), said
     * now with the option's name */
    mc_store_sel one;
    memset(&one, 0, sizeof one);
    one.method = s->method && k == QS_METHOD ? s->method : NULL;
    one.domain = s->domain && k == QS_DOMAIN ? s->domain : NULL;
    one.status = s->status && k == QS_STATUS ? s->status : NULL;
    mc_errdetail e1;
    if (mc_store_sel_check(&one, NULL, &e1) != MC_OK) {
        char field[MC_ERR_FIELD_MAX];
        snprintf(field, sizeof field, "--%s", flag);
        mc_err_set(err, MC_ERR_INVALID, field, e1.rule[0] ? e1.rule : NULL, "%s", e1.message);
        return -1;
    }
    return 1;
}

mc_err mc_query_sel_finish(mc_query_selopts *o, int *criteria, mc_errdetail *err)
{
    const mc_store_sel *s = &o->sel;
    if ((s->has & MC_SEL_ISSUED_AFTER) && (s->has & MC_SEL_ISSUED_BEFORE) &&
        s->issued_after >= s->issued_before)
        return mc_err_set(err, MC_ERR_INVALID, "--issued-before", NULL,
                          "%lld is not after --issued-after %lld: the window [after, before) "
                          "is empty",
                          (long long)s->issued_before, (long long)s->issued_after);
    return mc_store_sel_check(s, criteria, err);
}

/* --- output ---------------------------------------------------------------------------------- */

static const char *const field_names[MC_QF_COUNT_] = {
    [MC_QF_SERIAL] = "serial",
    [MC_QF_ORDER_ID] = "order_id",
    [MC_QF_ACCOUNT] = "account",
    [MC_QF_PROFILE] = "profile",
    [MC_QF_PROFILE_HASH] = "profile_hash",
    [MC_QF_LINT_VERSION] = "lint_version",
    [MC_QF_LINT_ENFORCED] = "lint_enforced",
    [MC_QF_LINT_WARNINGS] = "lint_warnings",
    [MC_QF_ENGINE_VERSION] = "engine_version",
    [MC_QF_NOT_BEFORE] = "not_before",
    [MC_QF_NOT_AFTER] = "not_after",
    [MC_QF_STATUS] = "status",
    [MC_QF_REVOKED_AT] = "revoked_at",
    [MC_QF_REASON] = "reason",
    [MC_QF_MAILBOXES] = "mailboxes",
    [MC_QF_EVIDENCE] = "evidence",
};

const char *mc_query_field_name(mc_query_field f)
{
    return f < MC_QF_COUNT_ ? field_names[f] : "?";
}

mc_err mc_query_fields_parse(const char *list, mc_query_fields *out, mc_errdetail *err)
{
    memset(out, 0, sizeof *out);
    if (!list) {
        for (int i = 0; i < MC_QF_COUNT_; i++)
            out->f[out->n++] = (mc_query_field)i;
        return MC_OK;
    }
    unsigned seen = 0;
    const char *p = list;
    for (;;) {
        size_t len = strcspn(p, ",");
        int found = -1;
        for (int i = 0; i < MC_QF_COUNT_ && found < 0; i++)
            if (strlen(field_names[i]) == len && strncmp(p, field_names[i], len) == 0)
                found = i;
        if (found < 0)
            return mc_err_set(err, MC_ERR_INVALID, "--fields", NULL,
                              "'%.*s' is not a field (serial order_id account profile "
                              "profile_hash lint_version lint_enforced lint_warnings "
                              "engine_version not_before not_after status revoked_at reason "
                              "mailboxes evidence)",
                              (int)(len > 64 ? 64 : len), p);
        if (seen & (1u << found))
            return mc_err_set(err, MC_ERR_INVALID, "--fields", NULL, "'%s' is listed twice",
                              field_names[found]);
        seen |= 1u << found;
        out->f[out->n++] = (mc_query_field)found;
        if (!p[len])
            break;
        p += len + 1;
    }
    return MC_OK;
}

void mc_query_write_header(FILE *f, mc_query_format fmt, const mc_query_fields *fields)
{
    if (fmt != MC_QUERY_CSV)
        return;
    for (size_t i = 0; i < fields->n; i++)
        fprintf(f, "%s%s", i ? "," : "", field_names[fields->f[i]]);
    fputs("\r\n", f);
}

static void json_str(FILE *f, const char *t, size_t len)
{
    const unsigned char *p = (const unsigned char *)t;
    fputc('"', f);
    for (size_t i = 0; i < len;) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc(c, f);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            switch (c) {
            case '\n':
                fputs("\\n", f);
                break;
            case '\r':
                fputs("\\r", f);
                break;
            case '\t':
                fputs("\\t", f);
                break;
            default:
                /* DEL needs no escape in JSON but is as invisible as the others */
                fprintf(f, "\\u%04x", c);
            }
            i++;
        } else {
            size_t l = mc_utf8_seq_len(p + i, len - i);
            if (l == 0) {
                fputs("\\ufffd", f);
                i++;
            } else {
                fwrite(p + i, 1, l, f);
                i += l;
            }
        }
    }
    fputc('"', f);
}

static void json_text(FILE *f, const char *t)
{
    if (t)
        json_str(f, t, strlen(t));
    else
        fputs("null", f);
}

/* A comma-separated list as a JSON array ("" is []). */
static void json_list(FILE *f, const char *t)
{
    if (!t) {
        fputs("null", f);
        return;
    }
    fputc('[', f);
    for (const char *p = t; *p;) {
        size_t len = strcspn(p, ",");
        if (p != t)
            fputc(',', f);
        json_str(f, p, len);
        p += len;
        if (*p == ',')
            p++;
    }
    fputc(']', f);
}

/* A CSV field (RFC 4180 2.5-2.7): quoted when it holds a comma, a quote, a line break or another
 * control character, quotes doubled. */
static void csv_text(FILE *f, const char *t)
{
    if (!t)
        return;
    int quote = 0;
    for (const unsigned char *p = (const unsigned char *)t; *p && !quote; p++)
        quote = *p == ',' || *p == '"' || *p < 0x20 || *p == 0x7f;
    if (!quote) {
        fputs(t, f);
        return;
    }
    fputc('"', f);
    for (const char *p = t; *p; p++) {
        if (*p == '"')
            fputc('"', f);
        fputc(*p, f);
    }
    fputc('"', f);
}

static const char *iso_time(int64_t t, char *buf, size_t cap)
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (!gmtime_r(&tt, &tm) || strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, cap, "%lld", (long long)t);
    return buf;
}

mc_err mc_query_write_row(FILE *f, mc_query_format fmt, const mc_query_fields *fields,
                          const mc_store_row *row, mc_errdetail *err)
{
    char hex[2 * 32 + 1], tbuf[40];
    int json = fmt == MC_QUERY_JSONL;
    if (json)
        fputc('{', f);
    for (size_t i = 0; i < fields->n; i++) {
        mc_query_field k = fields->f[i];
        const char *text = NULL; /* a text value; list: a comma-separated list */
        int list = 0, null = 0;
        if (i)
            fputc(',', f);
        if (json)
            fprintf(f, "\"%s\":", field_names[k]);
        switch (k) {
        case MC_QF_SERIAL:
            text = mc_store_serial_hex(hex, row->serial, row->serial_len);
            break;
        case MC_QF_ORDER_ID:
            text = row->order_id;
            break;
        case MC_QF_ACCOUNT:
            text = row->account;
            break;
        case MC_QF_PROFILE:
            text = row->profile;
            break;
        case MC_QF_PROFILE_HASH:
            if (row->profile_hash && row->profile_hash_len == 32) {
                mc_store_serial_hex(hex, row->profile_hash, 16);
                mc_store_serial_hex(hex + 32, row->profile_hash + 16, 16);
                text = hex;
            }
            break;
        case MC_QF_LINT_VERSION:
            text = row->lint_version;
            break;
        case MC_QF_LINT_ENFORCED:
            text = row->lint_enforced;
            break;
        case MC_QF_LINT_WARNINGS:
            text = row->lint_warnings;
            list = 1;
            break;
        case MC_QF_ENGINE_VERSION:
            text = row->engine_version;
            break;
        case MC_QF_NOT_BEFORE:
            text = iso_time(row->not_before, tbuf, sizeof tbuf);
            break;
        case MC_QF_NOT_AFTER:
            text = iso_time(row->not_after, tbuf, sizeof tbuf);
            break;
        case MC_QF_STATUS:
            text = row->status;
            break;
        case MC_QF_REVOKED_AT:
            if (row->revoked_at >= 0)
                text = iso_time(row->revoked_at, tbuf, sizeof tbuf);
            break;
        case MC_QF_REASON:
            if (row->reason >= 0)
                text = mc_revoke_reason_name(row->reason);
            break;
        case MC_QF_MAILBOXES:
            text = row->mailboxes;
            list = 1;
            break;
        case MC_QF_EVIDENCE:
            text = row->evidence;
            break;
        case MC_QF_COUNT_:
            null = 1;
            break;
        }
        if (!json)
            csv_text(f, null ? NULL : text);
        else if (list)
            json_list(f, text);
        else
            json_text(f, null ? NULL : text);
    }
    fputs(json ? "}\n" : "\r\n", f);
    if (ferror(f))
        return mc_err_set(err, MC_ERR_IO, "output", NULL, "query: writing a row failed");
    return MC_OK;
}

/* --- the command ----------------------------------------------------------------------------- */

static int usage(FILE *to, int status)
{
    fprintf(to,
            "usage: mailca query [--config FILE] [selectors...] [--count | --format jsonl|csv]\n"
            "                    [--fields F1,F2,...]\n"
            "  Lists the certificates the selectors select, in the order they were recorded,\n"
            "  one per line (JSON Lines by default; CSV per RFC 4180 with a header line), or\n"
            "  only their number (--count). No selector: every certificate.\n"
            "%s"
            "  fields: serial order_id account profile profile_hash lint_version lint_enforced\n"
            "          lint_warnings engine_version not_before not_after status revoked_at\n"
            "          reason mailboxes evidence (default: all, in this order)\n"
            "  Exit status: 0 when the query ran (also with no rows), 1 on an error.\n",
            mc_query_sel_usage);
    return status;
}

static int fail(const mc_errdetail *e)
{
    char buf[600];
    fprintf(stderr, "mailca query: %s\n", mc_err_format(e, buf, sizeof buf));
    return 1;
}

typedef struct out_ctx {
    FILE *f;
    mc_query_format fmt;
    const mc_query_fields *fields;
    mc_errdetail *err;
} out_ctx;

static mc_err out_row(void *arg, const mc_store_row *row)
{
    out_ctx *c = arg;
    return mc_query_write_row(c->f, c->fmt, c->fields, row, c->err);
}

int mc_query_main(int argc, char **argv)
{
    enum { O_CONFIG = 'c', O_COUNT = 'n', O_FORMAT = 'f', O_FIELDS = 'F', O_HELP = 'h' };
    struct option lo[QS_COUNT_ + 6];
    memcpy(lo, mc_query_sel_options, QS_COUNT_ * sizeof lo[0]);
    lo[QS_COUNT_] = (struct option){"config", 1, 0, O_CONFIG};
    lo[QS_COUNT_ + 1] = (struct option){"count", 0, 0, O_COUNT};
    lo[QS_COUNT_ + 2] = (struct option){"format", 1, 0, O_FORMAT};
    lo[QS_COUNT_ + 3] = (struct option){"fields", 1, 0, O_FIELDS};
    lo[QS_COUNT_ + 4] = (struct option){"help", 0, 0, O_HELP};
    lo[QS_COUNT_ + 5] = (struct option){0, 0, 0, 0};
    const char *cfgp = NULL, *format = NULL, *field_list = NULL;
    int count = 0, ch;
    int64_t now = (int64_t)time(NULL);
    mc_query_selopts so;
    mc_query_fields fields;
    mc_query_format fmt = MC_QUERY_JSONL;
    mc_errdetail e;
    mc_err_clear(&e);
    mc_query_selopts_init(&so);
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        int took = mc_query_sel_option(&so, ch, optarg ? optarg : "", now, &e);
        if (took < 0)
            return fail(&e);
        if (took > 0)
            continue;
        switch (ch) {
        case O_CONFIG:
            cfgp = optarg;
            break;
        case O_COUNT:
            count = 1;
            break;
        case O_FORMAT:
            format = optarg;
            break;
        case O_FIELDS:
            field_list = optarg;
            break;
        case O_HELP:
            return usage(stdout, 0);
        default:
            return usage(stderr, 2);
        }
    }
    if (optind != argc)
        return usage(stderr, 2);
    if (count && (format || field_list)) {
        mc_err_set(&e, MC_ERR_INVALID, "--count", NULL,
                   "prints only the number: --format and --fields do not apply");
        return fail(&e);
    }
    if (format && strcmp(format, "jsonl") == 0)
        fmt = MC_QUERY_JSONL;
    else if (format && strcmp(format, "csv") == 0)
        fmt = MC_QUERY_CSV;
    else if (format) {
        mc_err_set(&e, MC_ERR_INVALID, "--format", NULL, "'%s' is not jsonl or csv", format);
        return fail(&e);
    }
    if (mc_query_fields_parse(field_list, &fields, &e) != MC_OK ||
        mc_query_sel_finish(&so, NULL, &e) != MC_OK)
        return fail(&e);

    mc_config cfg;
    mc_store *s = NULL;
    int64_t rows = 0;
    if (mc_config_load(mc_config_path(cfgp), &cfg, &e) != MC_OK)
        return fail(&e);
    mc_err rc = mc_store_open(cfg.store_sqlite, &s, &e);
    out_ctx c = {stdout, fmt, &fields, &e};
    if (rc == MC_OK && !count)
        mc_query_write_header(stdout, fmt, &fields);
    if (rc == MC_OK)
        rc = mc_store_query(s, &so.sel, count ? NULL : out_row, &c, &rows, &e);
    mc_store_close(s);
    if (rc == MC_OK && count)
        printf("%lld\n", (long long)rows);
    if (rc == MC_OK && fflush(stdout) != 0)
        rc = mc_err_set(&e, MC_ERR_IO, "output", NULL, "query: writing the output failed");
    return rc == MC_OK ? 0 : fail(&e);
}
