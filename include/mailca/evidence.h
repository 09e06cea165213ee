/*
 * mc_evidence: are an order's mailbox validations still reusable at issuance time (SBR 4.2.1)?
 *
 * Each mailbox carries the method that validated it (SBR 3.2.2.1 - 3.2.2.4) and when
 * (validated_at). SBR 4.2.1 lets a completed validation be reused only within a window before
 * issuance:
 *   - 3.2.2.1 (authority over the domain) and 3.2.2.3 (operator of the mail server): obtained no
 *     more than 398 days prior to issuing;
 *   - 3.2.2.2 (email a Random Value): no more than 30 days;
 *   - 3.2.2.4 (ACME for S/MIME, RFC 8823): SBR 4.2.1 states no window; mailca applies the 30 days
 *     of the other per-mailbox method (smime-br-reference.md section 8 Q2, conservative).
 * A day is 86,400 seconds; a validation exactly at the window's edge is still inside it
 * ("no more than"). A validated_at later than now plus MC_EVIDENCE_SKEW is refused: evidence
 * cannot postdate its use.
 *
 * Pure functions, no allocation, thread-safe.
 */
#ifndef MAILCA_EVIDENCE_H
#define MAILCA_EVIDENCE_H

#include "mailca/err.h"
#include "mailca/order.h"
#include "mailca/profile.h"

#include <stdint.h>

#define MC_EVIDENCE_DAY 86400
#define MC_EVIDENCE_SKEW 300 /* seconds a validation may lie in the future (clock skew) */

/* The SBR 4.2.1 reuse window of a method in days (398 or 30), or 0 for an unknown method. */
int mc_evidence_window_days(mc_vmethod m);

/* Checks one mailbox's validation against its window at time now (Unix seconds, the issuance
 * time). field (may be NULL) names the mailbox in err ("mailboxes[2].validated_at").
 * Returns MC_OK or MC_ERR_INVALID with rule "SBR 4.2.1" (expired; the message names the mailbox,
 * its method, its age and the window) or "orders.md mailboxes.validated_at" (in the future). */
mc_err mc_evidence_check_mailbox(const mc_mailbox *m, int64_t now, const char *field,
                                 mc_errdetail *err);

/* Checks every mailbox of the order (the first failure wins, field "mailboxes[i].validated_at"). */
mc_err mc_evidence_check(const mc_order *o, int64_t now, mc_errdetail *err);

/* SBR 4.2.1 items 2 and 3: organization identity (SBR 3.2.3) and individual identity (SBR 3.2.4)
 * validated no more than MC_EVIDENCE_IDENTITY_DAYS before issuing. */
#define MC_EVIDENCE_IDENTITY_DAYS 825

/* The identity validations a certificate type rests on, at time now: organization-validated
 * needs identity.organization, individual-validated identity.individual, sponsor-validated
 * both (its subject names the organization and the individual); mailbox-validated certificates
 * name no identity, so an order for one that carries either is refused (nothing an order says
 * is ignored). MC_ERR_INVALID naming identity.<kind>[.validated_at] with rule "SBR 3.2.3" /
 * "SBR 3.2.4" (missing), "SBR 4.2.1" (older than 825 days) or "orders.md identity" (in the
 * future, or not used by the type). */
mc_err mc_evidence_check_identity(const mc_order *o, mc_certtype type, int64_t now,
                                  mc_errdetail *err);

#endif
