/*
 * runtime: loading the config-derived objects in dependency order (trust
 * before keys, groups before tables) so that each error names what failed.
 */
#include "autoconf.h"

#include <stdlib.h>

#include "../src/log.h"
#include "../src/xmalloc.h"
#include "runtime.h"

struct runtime *
runtime_new(struct config *cfg, struct errbuf *eb)
{
	struct runtime *rt = xcalloc(1, sizeof(*rt));
	struct errbuf why;

	atomic_init(&rt->refs, 1);
	rt->cfg = cfg;
	if (*cfg->trust_anchors != '\0' || *cfg->intermediates != '\0') {
		if ((rt->trust = trust_load(cfg->trust_anchors, cfg->intermediates, &why)) == NULL) {
			err_set(eb, "TrustAnchors: %s", why.msg);
			goto fail;
		}
	}
	if (*cfg->keystore != '\0') {
		if ((rt->ks = keystore_load(cfg->keystore, rt->trust, &why)) == NULL) {
			err_set(eb, "KeyStore: %s", why.msg);
			goto fail;
		}
	}
	if ((rt->internal = policy_domains_new(&cfg->internal_domains, &why)) == NULL) {
		err_set(eb, "InternalDomains: %s", why.msg);
		goto fail;
	}
	if ((rt->trusted = netlist_new(&cfg->trusted_networks, &why)) == NULL) {
		err_set(eb, "TrustedNetworks: %s", why.msg);
		goto fail;
	}
	if (*cfg->group_file != '\0' &&
	    (rt->groups = policy_groups_load(cfg->group_file, &why)) == NULL) {
		err_set(eb, "GroupFile: %s", why.msg);
		goto fail;
	}
	if (*cfg->sign_policy != '\0' &&
	    (rt->signpol = policy_table_load(cfg->sign_policy, policy_sign_words, rt->groups,
					     &why)) == NULL) {
		err_set(eb, "SignPolicy: %s", why.msg);
		goto fail;
	}
	rt->signcfg.internal = rt->internal;
	rt->signcfg.trusted = rt->trusted;
	rt->signcfg.table = rt->signpol;
	rt->signcfg.sign_by_default = cfg->sign_by_default;
	return rt;
fail:
	runtime_unref(rt);
	return NULL;
}

struct runtime *
runtime_ref(struct runtime *rt)
{
	atomic_fetch_add(&rt->refs, 1);
	return rt;
}

void
runtime_unref(struct runtime *rt)
{
	if (rt == NULL || atomic_fetch_sub(&rt->refs, 1) != 1)
		return;
	policy_table_free(rt->signpol);
	policy_groups_free(rt->groups);
	netlist_free(rt->trusted);
	policy_domains_free(rt->internal);
	keystore_free(rt->ks);
	trust_free(rt->trust);
	config_free(rt->cfg);
	free(rt);
}
