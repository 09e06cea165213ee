/*
 * Validation evidence reuse windows (SBR 4.2.1), checked per mailbox and per identity validation
 * at issuance time. Policy and day counts: include/mailca/evidence.h.
 */
#include "mailca/evidence.h"

#include <stdio.h>
#include <time.h>

#define R_REUSE "SBR 4.2.1"
#define R_FUTURE "orders.md mailboxes.validated_at"

int mc_evidence_window_days(mc_vmethod m)
{
    switch (m) {
    case MC_VM_DOMAIN: /* SBR 4.2.1 item 1: 3.2.2.1 ... no more than 398 days */
    case MC_VM_SMTP:   /* SBR 4.2.1 item 1: 3.2.2.3 ... no more than 398 days */
        return 398;
    case MC_VM_EMAIL: /* SBR 4.2.1 item 1: 3.2.2.2 ... no more than 30 days */
        return 30;
    case MC_VM_ACME: /* not stated by SBR 4.2.1: treated like 3.2.2.2 (evidence.h) */
        return 30;
    }
    return 0;
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

static const char *utc(int64_t t, char *buf, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || !strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, cap, "%lld", (long long)t);
    return buf;
}

mc_err mc_evidence_check_mailbox(const mc_mailbox *m, int64_t now, const char *field,
                                 mc_errdetail *err)
{
    char when[32];
    int addr_len = (int)(m->address.len < 120 ? m->address.len : 120);
    int days = mc_evidence_window_days(m->method);
    if (days == 0)
        return mc_err_set(err, MC_ERR_INVALID, field, "SBR 3.2.2",
                          "mailbox %.*s: unknown validation method %d", addr_len, m->address.p,
                          (int)m->method);
    if (m->validated_at > now && m->validated_at - now > MC_EVIDENCE_SKEW)
        return mc_err_set(err, MC_ERR_INVALID, field, R_FUTURE,
                          "mailbox %.*s: validated_at %s is %lld s after the issuance time",
                          addr_len, m->address.p, utc(m->validated_at, when, sizeof when),
                          (long long)(m->validated_at - now));
    /* SBR 4.2.1: "obtained no more than N days prior to issuing the Certificate". */
    int64_t age = now - m->validated_at;
    if (age > (int64_t)days * MC_EVIDENCE_DAY)
        return mc_err_set(
            err, MC_ERR_INVALID, field, R_REUSE,
            "mailbox %.*s: validation by method %s at %s is %lld days %lld s old; "
            "the reuse window is %d days",
            addr_len, m->address.p, method_name(m->method), utc(m->validated_at, when, sizeof when),
            (long long)(age / MC_EVIDENCE_DAY), (long long)(age % MC_EVIDENCE_DAY), days);
    return MC_OK;
}

mc_err mc_evidence_check(const mc_order *o, int64_t now, mc_errdetail *err)
{
    mc_err rc = MC_OK;
    for (size_t i = 0; i < o->n_mailboxes && rc == MC_OK; i++) {
        char field[MC_ERR_FIELD_MAX];
        snprintf(field, sizeof field, "mailboxes[%zu].validated_at", i);
        rc = mc_evidence_check_mailbox(&o->mailboxes[i], now, field, err);
    }
    return rc;
}

/* One identity validation: present when the type needs it, absent when not, not in the future,
 * within 825 days. */
static mc_err identity_one(const mc_identity_evidence *ev, int needed, const char *kind,
                           const char *section, const char *type_name, int64_t now,
                           mc_errdetail *err)
{
    char field[MC_ERR_FIELD_MAX], when[32];
    snprintf(field, sizeof field, "identity.%s", kind);
    if (!ev->validated_at) {
        if (!needed)
            return MC_OK;
        /* SBR 3.2.3 / 3.2.4: the subject's identity is validated before it is certified */
        return mc_err_set(err, MC_ERR_INVALID, field, section,
                          "a %s certificate needs the completed validation of %s identity "
                          "(SBR %s) and when it was obtained",
                          type_name, kind, section + 4);
    }
    if (!needed)
        return mc_err_set(err, MC_ERR_INVALID, field, "orders.md identity",
                          "a %s certificate names no %s identity: leave it out", type_name, kind);
    snprintf(field, sizeof field, "identity.%s.validated_at", kind);
    if (ev->validated_at > now && ev->validated_at - now > MC_EVIDENCE_SKEW)
        return mc_err_set(err, MC_ERR_INVALID, field, "orders.md identity",
                          "%s identity validated_at %s is %lld s after the issuance time", kind,
                          utc(ev->validated_at, when, sizeof when),
                          (long long)(ev->validated_at - now));
    /* SBR 4.2.1 items 2 and 3: "obtained no more than 825 days prior to issuing" */
    int64_t age = now - ev->validated_at;
    if (age > (int64_t)MC_EVIDENCE_IDENTITY_DAYS * MC_EVIDENCE_DAY)
        return mc_err_set(err, MC_ERR_INVALID, field, R_REUSE,
                          "%s identity validated at %s is %lld days %lld s old; the reuse window "
                          "is %d days",
                          kind, utc(ev->validated_at, when, sizeof when),
                          (long long)(age / MC_EVIDENCE_DAY), (long long)(age % MC_EVIDENCE_DAY),
                          MC_EVIDENCE_IDENTITY_DAYS);
    return MC_OK;
}

mc_err mc_evidence_check_identity(const mc_order *o, mc_certtype type, int64_t now,
                                  mc_errdetail *err)
{
    static const char *const names[] = {[MC_TYPE_MAILBOX] = "mailbox-validated",
                                        [MC_TYPE_ORGANIZATION] = "organization-validated",
                                        [MC_TYPE_SPONSOR] = "sponsor-validated",
                                        [MC_TYPE_INDIVIDUAL] = "individual-validated"};
    const char *tn = type >= MC_TYPE_MAILBOX && type <= MC_TYPE_INDIVIDUAL ? names[type] : "?";
    int org = type == MC_TYPE_ORGANIZATION || type == MC_TYPE_SPONSOR;
    int ind = type == MC_TYPE_INDIVIDUAL || type == MC_TYPE_SPONSOR;
    mc_err e = identity_one(&o->id_org, org, "organization", "SBR 3.2.3", tn, now, err);
    return e ? e : identity_one(&o->id_individual, ind, "individual", "SBR 3.2.4", tn, now, err);
}
