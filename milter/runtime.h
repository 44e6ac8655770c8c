/*
 * runtime: everything the daemon derives from one configuration: the
 * config itself, trust store, key store and policy objects.  A runtime is
 * immutable once built and reference-counted: each connection pins the
 * runtime it started with, so a reload can build a new one while messages
 * in flight finish on the old.
 */
#ifndef SMG_RUNTIME_H
#define SMG_RUNTIME_H

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "../cache/certcache.h"
#include "../cache/certdir.h"
#include "../src/config.h"
#include "../src/encrypt.h"
#include "../src/keystore.h"
#include "../src/netlist.h"
#include "../src/policy.h"
#include "../src/sign.h"
#include "../src/trust.h"

struct runtime {
	atomic_int refs;
	struct config *cfg;
	struct trust *trust; /* NULL without TrustAnchors */
	struct keystore *ks; /* NULL without KeyStore */
	struct policy_domains *internal;
	struct netlist *trusted;
	struct policy_groups *groups; /* NULL without GroupFile */
	struct policy_table *signpol; /* NULL without SignPolicy */
	struct policy_signcfg signcfg;

	/* Outbound encryption. */
	struct policy_table *encpol; /* NULL without EncryptPolicy */
	struct encryptor *enc;
	struct certdir *rcptdir;    /* NULL without RecipientCertDir */
	struct certdir *harvestdir; /* NULL without HarvestDir */
	struct certcache *cc;       /* recipient certificates: LRU, Redis, sources */

	/* Inbound. */
	struct policy_table *decpol; /* NULL without DecryptPolicy */
	char authserv_id[256];       /* AuthservID or the host name */

	/* Signers made on first use, one per signing identity (see runtime_signer). */
	pthread_mutex_t signers_lock;
	struct runtime_signer *signers; /* open addressing on the identity pointer */
	size_t nsigners, signers_cap;
};

/*
 * Builds a runtime from cfg, taking ownership of cfg (freed on failure
 * too).  NULL with the reason in eb: every error names the key or file.
 */
struct runtime *runtime_new(struct config *cfg, struct errbuf *eb);
/*
 * The signer for a signing identity of user addr, made on first use and
 * kept for the life of the runtime (signers precompute their attributes,
 * so making one per message would waste work).  The encryption-key
 * preference names the user's newest encryption certificate at that time
 * when it is not the signing certificate itself.
 *
 * XXX A cached signer keeps the preference it was made with until the next
 * reload, even if a newer encryption certificate becomes valid meanwhile.
 */
struct audit_cert;
/* With an AuditLog, *acert (if acert is not NULL) describes the signing
 * certificate for audit records, made once with the signer; else NULL. */
enum outcome runtime_signer(struct runtime *, const struct ks_identity *, const char *addr,
                            time_t now, const struct signer **out,
                            const struct audit_cert **acert, struct errbuf *);

/* EncryptPolicy action values (policy_table_lookup results). */
extern const struct policy_word runtime_encrypt_words[];
/* DecryptPolicy action values. */
enum { RUNTIME_DECRYPT = 1, RUNTIME_NODECRYPT = 0 };
extern const struct policy_word runtime_decrypt_words[];

/*
 * The certificate to encrypt to for addr among certs from the certificate
 * cache (whose validator checked chain, key type and usage on the way in):
 * valid now, allowing encryption, naming addr, the newest such; NULL if
 * none qualifies.
 */
X509 *runtime_pick_rcpt_cert(const struct runtime *, const char *addr, STACK_OF(X509) * certs,
                             time_t now);

/* The runtime new connections start with; the caller gets a reference. */
struct runtime *runtime_current(void);
/* Makes rt current, taking over the caller's reference, and drops the old one's. */
void runtime_install(struct runtime *rt);

/* Takes a reference. */
struct runtime *runtime_ref(struct runtime *);
/* Drops a reference; the last one frees everything.  NULL is a no-op. */
void runtime_unref(struct runtime *);

#endif
