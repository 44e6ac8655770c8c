/*
 * runtime: everything the daemon derives from one configuration: the
 * config itself, trust store, key store and policy objects.  A runtime is
 * immutable once built and reference-counted: each connection pins the
 * runtime it started with, so a reload can build a new one while messages
 * in flight finish on the old.
 */
#ifndef SMG_RUNTIME_H
#define SMG_RUNTIME_H

#include <stdatomic.h>

#include "../src/config.h"
#include "../src/keystore.h"
#include "../src/netlist.h"
#include "../src/policy.h"
#include "../src/trust.h"

struct runtime {
	atomic_int refs;
	struct config *cfg;
	struct trust *trust;	    /* NULL without TrustAnchors */
	struct keystore *ks;	    /* NULL without KeyStore */
	struct policy_domains *internal;
	struct netlist *trusted;
	struct policy_groups *groups; /* NULL without GroupFile */
	struct policy_table *signpol; /* NULL without SignPolicy */
	struct policy_signcfg signcfg;
};

/*
 * Builds a runtime from cfg, taking ownership of cfg (freed on failure
 * too).  NULL with the reason in eb: every error names the key or file.
 */
struct runtime *runtime_new(struct config *cfg, struct errbuf *eb);
/* Takes a reference. */
struct runtime *runtime_ref(struct runtime *);
/* Drops a reference; the last one frees everything.  NULL is a no-op. */
void runtime_unref(struct runtime *);

#endif
