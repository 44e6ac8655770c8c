/*
 * load_check: smimegw-load's --check.  After a milter replaced a body, the
 * rebuilt message must parse as MIME (GMime), and every part that claims to
 * be S/MIME (multipart/signed, application/pkcs7-mime, pkcs7-signature)
 * must hold a CMS structure OpenSSL can parse; a detached signature that
 * carries its signer certificate must also verify over the signed part's
 * bytes (the certificate chain itself is not checked).  This keeps a fast
 * but wrong milter from passing as a good benchmark figure.
 */
#ifndef SMG_LOAD_CHECK_H
#define SMG_LOAD_CHECK_H

#include <stddef.h>

#include "milter/load_msg.h"
#include "milter/mproto.h"

/* Initialises GMime once, before threads start. */
void load_check_init(void);
void load_check_shutdown(void);

/*
 * Checks what the milter returned for msg.  Returns 0 when it is fine (or
 * nothing was replaced), -1 with a reason in why otherwise.  Thread-safe.
 */
int load_check_result(const struct load_msg *msg, const struct mproto_result *res, char *why,
                      size_t whysz);

#endif
