/*
 * certdir: a certificate source for certcache over a directory of recipient
 * certificates (RecipientCertDir): PEM (one or more certificates) or DER
 * files, indexed by every e-mail address in each certificate's
 * subjectAltName rfc822Name and subject emailAddress, lowercased.
 *
 * The index is rebuilt on demand: a lookup checks the directory's mtime at
 * most once per second and rebuilds when it changed, so adding, removing or
 * renaming a file is noticed; replace a file by writing a new one and
 * renaming it over the old (editing in place does not change the
 * directory's mtime; certdir_reload forces a rebuild).  The rebuild happens
 * outside the lock and the new index is swapped in, so lookups never wait
 * for file I/O of another thread's rebuild for long.
 *
 * Certificates from here are not validated: certcache's validator does that.
 * Thread-safe: lookups from many threads; the index is guarded by an rwlock
 * (a leaf lock, never held while calling out).
 */
#ifndef SMG_CACHE_CERTDIR_H
#define SMG_CACHE_CERTDIR_H

#include <stddef.h>

#include <openssl/x509.h>

#include "src/outcome.h"

#include "certcache.h"

#define CERTDIR_MAX_FILES     4096
#define CERTDIR_MAX_FILE_SIZE (1u << 20)
#define CERTDIR_MAX_PER_FILE  16

struct certdir;

/* A source over dir, indexed now; NULL with the reason in eb if dir cannot be read. */
struct certdir *certdir_new(const char *dir, struct errbuf *eb);

/* Receives one (address, certificate) pair; take a reference to keep cert. */
typedef void (*certdir_walk_fn)(void *arg, const char *addr, X509 *cert);
/*
 * Calls fn for every address of every certificate of dir, read by the
 * index's rules (PEM with one or more certificates, else one DER; dot files
 * ignored; size and count limits); *skipped counts unreadable files.  For
 * tools (smimegw-keys cache warm) that need the whole directory.
 */
enum outcome certdir_walk(const char *dir, certdir_walk_fn fn, void *arg, size_t *skipped,
			  struct errbuf *eb);
void certdir_free(struct certdir *);
/* Rebuilds the index now.  Unreadable or malformed files are skipped and counted. */
enum outcome certdir_reload(struct certdir *, struct errbuf *eb);
/* Addresses indexed, and files skipped at the last rebuild. */
size_t certdir_naddrs(struct certdir *);
size_t certdir_nskipped(struct certdir *);
/*
 * certsource.lookup: OK with the certificates for addr (a new stack, NULL
 * if none), TEMP if the directory cannot be read.
 */
enum outcome certdir_lookup(void *certdir, const char *addr, STACK_OF(X509) * *out,
                            struct errbuf *eb);
/* The struct certsource for certcache_add_source, named "certdir". */
struct certsource certdir_source(struct certdir *);

#endif
