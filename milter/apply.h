/*
 * apply: hands an engine rewrite to the MTA: header edits through
 * smfi_chgheader/smfi_addheader, then the new body through
 * smfi_replacebody, chunk by chunk, straight from the iolist segments.
 */
#ifndef SMG_APPLY_H
#define SMG_APPLY_H

#include <libmilter/mfapi.h>

#include "../src/rewrite.h"

/*
 * Applies rw at end of message.  leadspc says whether the MTA expects
 * header values with their leading space.  Returns 0, or -1 after a
 * libmilter call failed (the connection to the MTA is then unusable and
 * the MTA applies milter_default_action; no half-written body is
 * accepted by Postfix because the transaction does not complete).
 */
int apply_rewrite(SMFICTX *, const struct rewrite *rw, int leadspc, const char *qid);

#endif
