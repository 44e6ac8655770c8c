/*
 * harvest: keeps certificates of correspondents whose signatures verified,
 * so that mail back to them can be encrypted.  A harvested certificate is
 * written to the harvest directory (a RecipientCertDir-style source, read
 * by certdir) and to Redis, and the in-process cache forgets the address.
 * A certificate is never stored when one at least as new (by notBefore) is
 * already kept for the address.
 */
#ifndef SMG_CACHE_HARVEST_H
#define SMG_CACHE_HARVEST_H

#include <openssl/x509.h>

#include "certcache.h"

/*
 * Stores cert for addr (lowercase).  Returns OK when stored, OK with
 * *stored 0 when an equal or newer one was already kept, PERM/TEMP with eb
 * on a write failure.  Redis trouble is ignored (the file is the record).
 */
enum outcome harvest_store(struct certcache *, const char *dir, const char *addr, X509 *cert,
                           unsigned ttl, int *stored, struct errbuf *eb);

#endif
