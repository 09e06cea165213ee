/*
 * mc_revoke: `mailca revoke` (include/mailca/revoke.h). The store does the work
 * (mc_store_revoke: one selection, then set-based chunks); this module parses the command line
 * (the selectors are `mailca query`'s, engine/query.c), names reasons and prints what changed.
 */
#include "mailca/revoke.h"

#include "mailca/audit.h"
#include "mailca/config.h"
#include "mailca/query.h"
#include "mailca/store.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const struct {
    const char *name;
    int code;
} reasons[] = {
    /* RFC 5280 5.3.1 CRLReason */
    {"unspecified", 0},        {"keyCompromise", 1}, {"cACompromise", 2},
    {"affiliationChanged", 3}, {"superseded", 4},    {"cessationOfOperation", 5},
    {"certificateHold", 6},    {"removeFromCRL", 8}, {"privilegeWithdrawn", 9},
    {"aACompromise", 10},
};

const char *mc_revoke_reason_name(int reason)
{
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        if (reasons[i].code == reason)
            return reasons[i].name;
    return "?";
}

mc_err mc_revoke_reason_parse(const char *name, int *reason, mc_errdetail *err)
{
    for (size_t i = 0; name && i < sizeof reasons / sizeof reasons[0]; i++) {
        if (strcasecmp(name, reasons[i].name) != 0)
            continue;
        /* SBR 7.2.2 and 4.9.13: see store.h "revocation" for why these are refused */
        if (!mc_crl_reason_allowed(reasons[i].code))
            return mc_err_set(err, MC_ERR_INVALID, "reason",
                              reasons[i].code == 6 ? "SBR 4.9.13" : "SBR 7.2.2",
                              "reason '%s' (%d) is not used for subscriber certificates here "
                              "(unspecified, keyCompromise, affiliationChanged, superseded, "
                              "cessationOfOperation, privilegeWithdrawn)",
                              name, reasons[i].code);
        *reason = reasons[i].code;
        return MC_OK;
    }
    return mc_err_set(err, MC_ERR_INVALID, "reason", "RFC 5280 5.3.1",
                      "reason '%s' is not an RFC 5280 CRLReason name", name ? name : "");
}

mc_err mc_revoke_time_parse(const char *text, const char *field, int64_t *out, mc_errdetail *err)
{
    struct tm tm;
    char *end = NULL;
    memset(&tm, 0, sizeof tm);
    if (text && text[0] >= '0' && text[0] <= '9') {
        long long v = strtoll(text, &end, 10);
        if (end && *end == '\0') {
            *out = v;
            return MC_OK;
        }
        end = strptime(text, "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (!end || *end) {
            memset(&tm, 0, sizeof tm);
            end = strptime(text, "%Y-%m-%d", &tm);
        }
        if (end && *end == '\0') {
            *out = (int64_t)timegm(&tm);
            return MC_OK;
        }
    }
    return mc_err_set(err, MC_ERR_INVALID, field, NULL,
                      "'%s' is not a time (seconds since the epoch, YYYY-MM-DD or "
                      "YYYY-MM-DDTHH:MM:SSZ)",
                      text ? text : "");
}

static int usage(FILE *to, int status)
{
    fprintf(to,
            "usage: mailca revoke [--config FILE] selectors... --reason NAME [--dry-run]\n"
            "  Revokes the certificates the selectors select (at least one selector: never\n"
            "  every certificate by accident); --dry-run prints the counts, writes nothing.\n"
            "  `mailca query` with the same selectors lists them first.\n"
            "%s"
            "  NAME: unspecified keyCompromise affiliationChanged superseded\n"
            "        cessationOfOperation privilegeWithdrawn (RFC 5280; SBR 4.9.1.1, 7.2.2)\n",
            mc_query_sel_usage);
    return status;
}

static int fail(const mc_errdetail *e)
{
    char buf[600];
    fprintf(stderr, "mailca revoke: %s\n", mc_err_format(e, buf, sizeof buf));
    return 1;
}

/* The audit record of a revocation: the command's selection as typed (every argument but the
 * config's path), the reason and what changed; failed names the error of a partial one. */
static mc_err audit_revoke(mc_store *s, const char *event, int argc, char **argv, int reason,
                           const mc_revoke_counts *c, const mc_errdetail *failed, mc_errdetail *err)
{
    mc_audit_json j;
    size_t cap = 1;
    for (int i = 1; i < argc; i++)
        cap += strlen(argv[i]) + 1;
    char *sel = malloc(cap);
    if (!sel)
        return mc_err_set(err, MC_ERR_NOMEM, NULL, NULL, "audit: revoke");
    size_t len = 0;
    sel[0] = '\0';
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0) {
            i++;
            continue;
        }
        if (strncmp(argv[i], "--config=", 9) == 0)
            continue;
        len += (size_t)snprintf(sel + len, cap - len, "%s%s", len ? " " : "", argv[i]);
    }
    mc_audit_json_begin(&j);
    mc_audit_json_str(&j, "reason", mc_revoke_reason_name(reason));
    if (c) {
        mc_audit_json_int(&j, "selected", c->selected);
        mc_audit_json_int(&j, "revoked", c->revoked);
        mc_audit_json_int(&j, "reason_updated", c->reason_updated);
        mc_audit_json_int(&j, "unchanged", c->unchanged);
        mc_audit_json_int(&j, "keys_compromised", c->keys_compromised);
        mc_audit_json_str(&j, "error", failed ? failed->message : NULL);
    }
    const char *detail = mc_audit_json_end(&j);
    mc_err rc = detail ? mc_audit_record(s, event, sel, detail, err)
                       : mc_err_set(err, MC_ERR_NOMEM, NULL, NULL, "audit: revoke");
    mc_audit_json_free(&j);
    free(sel);
    return rc;
}

int mc_revoke_main(int argc, char **argv)
{
    enum { O_CONFIG = 'c', O_REASON = 'r', O_DRY = 'n', O_HELP = 'h', O_OWN = 5 };
    size_t nsel = 0;
    while (mc_query_sel_options[nsel].name)
        nsel++;
    struct option lo[64];
    if (nsel + O_OWN > sizeof lo / sizeof lo[0])
        return 1;
    memcpy(lo, mc_query_sel_options, nsel * sizeof lo[0]);
    lo[nsel] = (struct option){"config", 1, 0, O_CONFIG};
    lo[nsel + 1] = (struct option){"reason", 1, 0, O_REASON};
    lo[nsel + 2] = (struct option){"dry-run", 0, 0, O_DRY};
    lo[nsel + 3] = (struct option){"help", 0, 0, O_HELP};
    lo[nsel + 4] = (struct option){0, 0, 0, 0};
    const char *cfgp = NULL, *reason_name = NULL;
    int dry = 0, ch, reason = 0, criteria = 0;
    int64_t now = (int64_t)time(NULL);
    mc_query_selopts so;
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
        case O_REASON:
            reason_name = optarg;
            break;
        case O_DRY:
            dry = 1;
            break;
        case O_HELP:
            return usage(stdout, 0);
        default:
            return usage(stderr, 2);
        }
    }
    if (optind != argc || !reason_name)
        return usage(stderr, 2);
    if (mc_revoke_reason_parse(reason_name, &reason, &e) != MC_OK ||
        mc_query_sel_finish(&so, &criteria, &e) != MC_OK)
        return fail(&e);
    /* never every certificate by accident (the store refuses it too) */
    if (criteria == 0) {
        mc_err_set(&e, MC_ERR_INVALID, "selector", NULL,
                   "no selector given: name the certificates to revoke (mailca revoke --help)");
        return fail(&e);
    }
    mc_config cfg;
    mc_store *s = NULL;
    mc_revoke_counts c = {0};
    if (mc_config_load(mc_config_path(cfgp), &cfg, &e) != MC_OK)
        return fail(&e);
    mc_err rc = mc_store_open(cfg.store_sqlite, &s, &e);
    /* SBR 5.4.1 2.i: recorded before anything is revoked (nothing is when it cannot be), and
     * again with what changed */
    if (rc == MC_OK && !dry)
        rc = audit_revoke(s, "revoke.start", argc, argv, reason, NULL, NULL, &e);
    if (rc == MC_OK)
        rc = mc_store_revoke(s, &so.sel, reason, now, dry, &c, &e);
    /* SBR 5.4.1 2.i: the revocation in the audit log, also a partial one (chunks committed
     * before an error stay revoked) */
    if (s && !dry && (rc == MC_OK || c.revoked > 0 || c.reason_updated > 0)) {
        mc_errdetail ae;
        if (audit_revoke(s, "revoke", argc, argv, reason, &c, rc == MC_OK ? NULL : &e, &ae) !=
            MC_OK) {
            mc_store_close(s);
            fprintf(stderr, "mailca revoke: the revocation is done but could not be recorded in "
                            "the audit log (SBR 5.4.1):\n");
            return fail(&ae);
        }
    }
    mc_store_close(s);
    if (rc != MC_OK)
        return fail(&e);
    printf("mailca revoke: %s%lld selected, %lld %s (%s), %lld %s to keyCompromise, %lld "
           "already revoked\n",
           dry ? "dry run, nothing written: " : "", (long long)c.selected, (long long)c.revoked,
           dry ? "would be revoked" : "revoked", mc_revoke_reason_name(reason),
           (long long)c.reason_updated, dry ? "would change reason" : "changed reason",
           (long long)c.unchanged);
    if (c.keys_compromised > 0)
        printf("mailca revoke: %lld subject key(s) %s as compromised: orders for them are "
               "refused from then on (SBR 6.1.1.3)\n",
               (long long)c.keys_compromised, dry ? "would be recorded" : "recorded");
    return 0;
}
