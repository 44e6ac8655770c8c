/*
 * runtime: loading the config-derived objects in dependency order (trust
 * before keys, groups before tables) so that each error names what failed.
 */
#include "autoconf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../src/auditcert.h"
#include "../src/cert.h"
#include "../src/log.h"
#include "../src/xmalloc.h"
#include "runtime.h"

const struct policy_word runtime_encrypt_words[] = {
    {"encrypt", ENCRYPT_MODE_ENCRYPT},
    {"noencrypt", ENCRYPT_MODE_NO},
    {"if-cert", ENCRYPT_MODE_IF_CERT},
    {NULL, 0},
};

/* The cheap checks: address, usage and dates (repeated at every use). */
static int
runtime_cert_current(const char *addr, X509 *cert, time_t now)
{
	return (cert_purposes(cert) & CERT_ENCRYPT) && cert_has_email(cert, addr) &&
	       cert_not_before(cert) <= now && cert_not_after(cert) >= now;
}

/*
 * Whether cert may carry mail for addr: the cheap checks, the key type, and
 * the chain.  Done once when a certificate enters the cache; the cache lives
 * no longer than this runtime's trust anchors and CRLs.
 */
static int
runtime_cert_usable(const struct runtime *rt, const char *addr, X509 *cert, time_t now)
{
	struct errbuf eb;

	if (!runtime_cert_current(addr, cert, now) || encrypt_check_cert(cert, &eb) != OUTCOME_OK)
		return 0;
	if (rt->cfg->allow_untrusted_rcpt_certs)
		return 1;
	/*
	 * Chain only: OpenSSL's S/MIME encryption purpose demands keyEncipherment
	 * and so refuses ECDH (keyAgreement) certificates; usage and extended
	 * usage were checked above.
	 */
	return rt->trust != NULL &&
	       trust_verify(rt->trust, cert, NULL, now, TRUST_PURPOSE_ANY, &eb) == TRUST_OK;
}

static int
runtime_validate(void *arg, const char *addr, X509 *cert)
{
	return runtime_cert_usable(arg, addr, cert, time(NULL));
}

X509 *
runtime_pick_rcpt_cert(const struct runtime *rt, const char *addr, STACK_OF(X509) * certs,
                       time_t now)
{
	X509 *best = NULL;
	int i;

	for (i = 0; certs != NULL && i < sk_X509_num(certs); i++) {
		X509 *x = sk_X509_value(certs, i);

		/* Cached certificates passed runtime_cert_usable when they entered. */
		if (!runtime_cert_current(addr, x, now))
			continue;
		if (best == NULL || cert_not_before(x) > cert_not_before(best))
			best = x;
	}
	return best;
}

/* Certificate source: the key store's encryption certificates of local users. */
static enum outcome
runtime_ks_lookup(void *arg, const char *addr, STACK_OF(X509) * *out, struct errbuf *eb)
{
	const struct runtime *rt = arg;
	const struct ks_identity *const *hist;
	size_t i, n = 0;

	(void)eb;
	*out = NULL;
	if (rt->ks == NULL || (hist = keystore_history(rt->ks, addr, &n)) == NULL)
		return OUTCOME_OK;
	for (i = 0; i < n; i++) {
		X509 *x = ks_identity_cert(hist[i]);

		if (!(ks_identity_purposes(hist[i]) & CERT_ENCRYPT))
			continue;
		if (*out == NULL)
			*out = sk_X509_new_null();
		X509_up_ref(x);
		sk_X509_push(*out, x);
	}
	return OUTCOME_OK;
}

/* Builds the encryption half: policy table, encryptor, certificate cache and its sources. */
static int
runtime_load_encryption(struct runtime *rt, struct errbuf *eb)
{
	struct config *cfg = rt->cfg;
	struct certsource src;
	struct errbuf why;

	if (*cfg->encrypt_policy != '\0' &&
	    (rt->encpol = policy_table_load(cfg->encrypt_policy, runtime_encrypt_words, rt->groups,
	                                    &why)) == NULL) {
		err_set(eb, "EncryptPolicy: %s", why.msg);
		return -1;
	}
	if (encryptor_new(&rt->enc, &why) != OUTCOME_OK) {
		err_set(eb, "encryption: %s", why.msg);
		return -1;
	}
	if ((rt->cc = certcache_new(cfg, &why)) == NULL) {
		err_set(eb, "Redis: %s", why.msg);
		return -1;
	}
	certcache_set_validator(rt->cc, runtime_validate, rt);
	src.name = "keystore";
	src.lookup = runtime_ks_lookup;
	src.arg = rt;
	certcache_add_source(rt->cc, &src);
	if (*cfg->recipient_cert_dir != '\0') {
		if ((rt->rcptdir = certdir_new(cfg->recipient_cert_dir, &why)) == NULL) {
			err_set(eb, "RecipientCertDir: %s", why.msg);
			return -1;
		}
		src = certdir_source(rt->rcptdir);
		certcache_add_source(rt->cc, &src);
	}
	if (*cfg->harvest_dir != '\0') {
		if ((rt->harvestdir = certdir_new(cfg->harvest_dir, &why)) == NULL) {
			err_set(eb, "HarvestDir: %s", why.msg);
			return -1;
		}
		src = certdir_source(rt->harvestdir);
		src.name = "harvest";
		certcache_add_source(rt->cc, &src);
	}
	return 0;
}

const struct policy_word runtime_decrypt_words[] = {
    {"decrypt", RUNTIME_DECRYPT},
    {"nodecrypt", RUNTIME_NODECRYPT},
    {NULL, 0},
};

static int
runtime_load_inbound(struct runtime *rt, struct errbuf *eb)
{
	struct config *cfg = rt->cfg;
	struct errbuf why;

	if (*cfg->decrypt_policy != '\0' &&
	    (rt->decpol = policy_table_load(cfg->decrypt_policy, runtime_decrypt_words, rt->groups,
	                                    &why)) == NULL) {
		err_set(eb, "DecryptPolicy: %s", why.msg);
		return -1;
	}
	if (*cfg->authserv_id != '\0') {
		if (strlcpy_checked(rt->authserv_id, cfg->authserv_id, sizeof(rt->authserv_id)) ==
		    -1) {
			err_set(eb, "AuthservID: longer than %zu bytes",
			        sizeof(rt->authserv_id) - 1);
			return -1;
		}
	} else if (gethostname(rt->authserv_id, sizeof(rt->authserv_id)) == -1) {
		strlcpy_checked(rt->authserv_id, "localhost", sizeof(rt->authserv_id));
	}
	rt->authserv_id[sizeof(rt->authserv_id) - 1] = '\0';
	return 0;
}

struct runtime_signer {
	const struct ks_identity *id;
	struct signer *signer;
	struct audit_cert *acert; /* NULL without an AuditLog */
};

struct runtime *
runtime_new(struct config *cfg, struct errbuf *eb)
{
	struct runtime *rt = xcalloc(1, sizeof(*rt));
	struct errbuf why;

	atomic_init(&rt->refs, 1);
	pthread_mutex_init(&rt->signers_lock, NULL);
	rt->cfg = cfg;
	if (*cfg->trust_anchors != '\0' || *cfg->intermediates != '\0') {
		if ((rt->trust = trust_load(cfg->trust_anchors, cfg->intermediates, &why)) ==
		    NULL) {
			err_set(eb, "TrustAnchors: %s", why.msg);
			goto fail;
		}
	}
	if (*cfg->crl_file != '\0') {
		if (rt->trust == NULL) {
			err_set(eb, "CrlFile: needs TrustAnchors");
			goto fail;
		}
		if (trust_load_crls(rt->trust, cfg->crl_file, &why) != OUTCOME_OK) {
			err_set(eb, "CrlFile: %s", why.msg);
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
	if (runtime_load_encryption(rt, eb) == -1 || runtime_load_inbound(rt, eb) == -1)
		goto fail;
	rt->signcfg.internal = rt->internal;
	rt->signcfg.trusted = rt->trusted;
	rt->signcfg.table = rt->signpol;
	rt->signcfg.sign_by_default = cfg->sign_by_default;
	return rt;
fail:
	runtime_unref(rt);
	return NULL;
}

static size_t
runtime_slot(const struct runtime *rt, const struct ks_identity *id)
{
	uintptr_t h = (uintptr_t)id;

	h ^= h >> 17;
	h *= 0x9e3779b97f4a7c15ULL;
	return (size_t)(h >> 7) & (rt->signers_cap - 1);
}

/* Inserts into the table; the caller holds the lock and has made room. */
static void
runtime_put(struct runtime *rt, const struct runtime_signer *e)
{
	size_t i = runtime_slot(rt, e->id);

	while (rt->signers[i].id != NULL)
		i = (i + 1) & (rt->signers_cap - 1);
	rt->signers[i] = *e;
	rt->nsigners++;
}

static void
runtime_grow(struct runtime *rt)
{
	struct runtime_signer *old = rt->signers;
	size_t i, oldcap = rt->signers_cap;

	rt->signers_cap = oldcap == 0 ? 64 : oldcap * 2;
	rt->signers = xcalloc(rt->signers_cap, sizeof(*rt->signers));
	rt->nsigners = 0;
	for (i = 0; i < oldcap; i++)
		if (old[i].id != NULL)
			runtime_put(rt, &old[i]);
	free(old);
}

enum outcome
runtime_signer(struct runtime *rt, const struct ks_identity *id, const char *addr, time_t now,
               const struct signer **out, const struct audit_cert **acert,
               struct errbuf *eb)
{
	struct signer_params sp;
	const struct ks_identity *enc;
	struct runtime_signer e = {id, NULL, NULL};
	enum outcome rc = OUTCOME_OK;
	size_t i;

	pthread_mutex_lock(&rt->signers_lock);
	if (rt->signers_cap > 0) {
		for (i = runtime_slot(rt, id); rt->signers[i].id != NULL;
		     i = (i + 1) & (rt->signers_cap - 1))
			if (rt->signers[i].id == id) {
				e = rt->signers[i];
				goto out;
			}
	}
	memset(&sp, 0, sizeof(sp));
	sp.cert = ks_identity_cert(id);
	sp.key = ks_identity_key(id);
	sp.chain = ks_identity_chain(id);
	enc = rt->ks != NULL ? keystore_encrypter(rt->ks, addr, now) : NULL;
	sp.enc_cert = enc != NULL && enc != id ? ks_identity_cert(enc) : NULL;
	sp.digest = (enum sign_digest)rt->cfg->sign_digest;
	sp.padding = (enum rsa_padding)rt->cfg->rsa_padding;
	if ((rc = signer_new(&sp, &e.signer, eb)) != OUTCOME_OK)
		goto out;
	if (*rt->cfg->audit_log != '\0') {
		e.acert = xmalloc(sizeof(*e.acert));
		audit_cert_fill(e.acert, sp.cert);
	}
	if ((rt->nsigners + 1) * 2 > rt->signers_cap)
		runtime_grow(rt);
	runtime_put(rt, &e);
out:
	pthread_mutex_unlock(&rt->signers_lock);
	*out = e.signer;
	if (acert != NULL)
		*acert = e.acert;
	return rc;
}

/* The current runtime; the lock only covers reading and swapping the pointer. */
static pthread_mutex_t runtime_lock = PTHREAD_MUTEX_INITIALIZER;
static struct runtime *runtime_cur;

struct runtime *
runtime_current(void)
{
	struct runtime *rt;

	pthread_mutex_lock(&runtime_lock);
	rt = runtime_cur != NULL ? runtime_ref(runtime_cur) : NULL;
	pthread_mutex_unlock(&runtime_lock);
	return rt;
}

void
runtime_install(struct runtime *rt)
{
	struct runtime *old;

	pthread_mutex_lock(&runtime_lock);
	old = runtime_cur;
	runtime_cur = rt;
	pthread_mutex_unlock(&runtime_lock);
	runtime_unref(old);
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
	for (size_t i = 0; i < rt->signers_cap; i++)
		signer_free(rt->signers[i].signer), free(rt->signers[i].acert);
	free(rt->signers);
	pthread_mutex_destroy(&rt->signers_lock);
	certcache_free(rt->cc);
	certdir_free(rt->harvestdir);
	certdir_free(rt->rcptdir);
	encryptor_free(rt->enc);
	policy_table_free(rt->encpol);
	policy_table_free(rt->decpol);
	policy_table_free(rt->signpol);
	policy_groups_free(rt->groups);
	netlist_free(rt->trusted);
	policy_domains_free(rt->internal);
	keystore_free(rt->ks);
	trust_free(rt->trust);
	config_free(rt->cfg);
	free(rt);
}
