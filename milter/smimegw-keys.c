/*
 * smimegw-keys: the admin tool for the key store.  Imports PKCS#12 files
 * and PEM certificate/key pairs, lists and removes identities, and checks
 * the store (permissions, key/certificate pairs, chains).  It works on the
 * directory only; the daemon picks changes up when it reloads.
 *
 * "cache" looks after the recipient-certificate cache the daemons share in
 * Redis (cache/rediscache.h): counts and a positive/negative breakdown,
 * deleting our keys (never FLUSHALL), and warming it from the same sources
 * the daemon asks (key store, RecipientCertDir, HarvestDir, in that order)
 * with the same checks its cache validator makes, so that nothing warmed is
 * refused when read back.
 *
 * Exit codes: 0 success, 1 failure, 64 usage error.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>

#include "../cache/certdir.h"
#include "../cache/rediscache.h"

#include "../src/cert.h"
#include "../src/config.h"
#include "../src/encrypt.h"
#include "../src/keystore.h"
#include "../src/log.h"
#include "../src/trust.h"
#include "../src/xmalloc.h"

#define EX_OK_    0
#define EX_FAIL_  1
#define EX_USAGE_ 64

#define PASSWORD_MAX 1024

static const char usage_text[] =
    "usage: smimegw-keys [options] COMMAND [ARGS]\n"
    "\n"
    "Commands:\n"
    "  import USER FILE.p12|FILE.pfx   import every key and certificate of a PKCS#12 file\n"
    "  import USER CERT.pem KEY.pem    import a PEM certificate (+ chain) and its PEM key\n"
    "  list [USER]                     show identities: purpose, dates, state, fingerprint\n"
    "  remove USER FINGERPRINT         delete one identity (a unique prefix of >= 8 hex\n"
    "                                  digits is enough)\n"
    "  check                           validate the whole store; exit 1 on any problem\n"
    "  cache stats                     count our keys in Redis (positive/negative entries)\n"
    "  cache flush                     delete our keys (RedisKeyPrefix cert:*) from Redis\n"
    "  cache warm                      load the usable encryption certificates of the key\n"
    "                                  store, RecipientCertDir and HarvestDir into Redis\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE        read KeyStore, TrustAnchors, Intermediates and UserID\n"
    "                           (and for 'cache': Redis*, CacheTTL, RecipientCertDir,\n"
    "                           HarvestDir, AllowUntrustedRecipientCerts) from FILE\n"
    "                           (default " SMG_DEFAULT_CONFIG ")\n"
    "  -k, --keystore DIR       the key store directory (overrides KeyStore)\n"
    "  -t, --trust FILE|DIR     trust anchors (overrides TrustAnchors)\n"
    "  -i, --intermediates F    intermediate CA certificates (overrides Intermediates)\n"
    "  -p, --password-file F    read the PKCS#12 password from the first line of F\n"
    "                           (else it is asked on the terminal, or read from stdin)\n"
    "  -o, --owner USER         make imported files belong to USER (the daemon's user;\n"
    "                           default: UserID from the config when run as root)\n"
    "  -f, --force              import a certificate that does not name USER\n"
    "      --redis HOST:PORT    the Redis for 'cache' (overrides Redis; also\n"
    "                           [v6addr]:port or unix:/path)\n"
    "  -h, --help               show this help\n"
    "\n"
    "States in 'list': current, superseded (valid, but a newer certificate with the\n"
    "same purpose exists), expired, not-yet-valid.\n"
    "Exit status: 0 success, 1 failure, 64 usage error.\n";

static void
usage(void)
{
	fputs(usage_text, stderr);
	exit(EX_USAGE_);
}

struct opts {
	const char *config;
	const char *keystore;
	const char *trust;
	const char *intermediates;
	const char *password_file;
	const char *owner;
	const char *redis;
	int force;
	struct config *cfg;
};

/* Reads the password: file, terminal without echo, or stdin. */
static char *
read_password(const struct opts *o, const char *what)
{
	char buf[PASSWORD_MAX];
	struct termios t, saved;
	FILE *f = NULL, *tty = NULL;
	char *pw = NULL;
	size_t len;
	int echo_off = 0;

	if (o->password_file != NULL) {
		if ((f = fopen(o->password_file, "r")) == NULL) {
			fprintf(stderr, "smimegw-keys: %s: %s\n", o->password_file,
			        strerror(errno));
			return NULL;
		}
	} else if (isatty(STDIN_FILENO) && (tty = fopen("/dev/tty", "r+")) != NULL) {
		f = tty;
		fprintf(tty, "Password for %s: ", what);
		fflush(tty);
		if (tcgetattr(fileno(tty), &saved) == 0) {
			t = saved;
			t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
			echo_off = tcsetattr(fileno(tty), TCSANOW, &t) == 0;
		}
	} else
		f = stdin;
	if (fgets(buf, sizeof(buf), f) == NULL)
		buf[0] = '\0';
	if (echo_off) {
		(void)tcsetattr(fileno(tty), TCSANOW, &saved);
		fputc('\n', tty);
	}
	len = strcspn(buf, "\r\n");
	buf[len] = '\0';
	pw = xstrdup(buf);
	OPENSSL_cleanse(buf, sizeof(buf));
	if (f != stdin)
		fclose(f);
	return pw;
}

static int
has_ext(const char *path, const char *ext)
{
	size_t a = strlen(path), b = strlen(ext);

	return a > b && strcasecmp(path + a - b, ext) == 0;
}

static int
cmd_import(struct opts *o, const char *dir, int argc, char **argv)
{
	struct ks_import_opts io;
	struct ks_imported got;
	struct errbuf eb;
	struct passwd *pw;
	enum outcome r;
	char *pass = NULL;
	size_t i;

	if (argc != 2 && argc != 3)
		usage();
	memset(&io, 0, sizeof(io));
	memset(&got, 0, sizeof(got));
	io.force = o->force;
	if (o->owner != NULL) {
		if ((pw = getpwnam(o->owner)) == NULL) {
			fprintf(stderr, "smimegw-keys: --owner %s: no such user\n", o->owner);
			return EX_FAIL_;
		}
		io.set_owner = 1;
		io.owner = pw->pw_uid;
		io.group = pw->pw_gid;
	}
	if (argc == 2) {
		if (has_ext(argv[1], ".pem") || has_ext(argv[1], ".crt")) {
			fprintf(stderr,
			        "smimegw-keys: %s: a PEM certificate needs its key file "
			        "too: import USER CERT.pem KEY.pem\n",
			        argv[1]);
			return EX_USAGE_;
		}
		if ((pass = read_password(o, argv[1])) == NULL)
			return EX_FAIL_;
		r = keystore_import_pkcs12(dir, argv[0], argv[1], pass, &io, &got, &eb);
		OPENSSL_cleanse(pass, strlen(pass));
		free(pass);
	} else
		r = keystore_import_pem(dir, argv[0], argv[1], argv[2], &io, &got, &eb);
	if (r != OUTCOME_OK) {
		fprintf(stderr, "smimegw-keys: import failed: %s\n", eb.msg);
		return EX_FAIL_;
	}
	for (i = 0; i < got.n; i++)
		printf("imported %s %s for %s\n", got.fp[i], cert_purpose_name(got.purposes[i]),
		       argv[0]);
	return EX_OK_;
}

static struct trust *
load_trust(const struct opts *o, int *failed)
{
	const char *anchors = o->trust, *inter = o->intermediates;
	struct errbuf eb;
	struct trust *t;

	*failed = 0;
	if (anchors == NULL && o->cfg != NULL)
		anchors = o->cfg->trust_anchors;
	if (inter == NULL && o->cfg != NULL)
		inter = o->cfg->intermediates;
	if (anchors == NULL || anchors[0] == '\0')
		return NULL;
	if ((t = trust_load(anchors, inter, &eb)) == NULL) {
		fprintf(stderr, "smimegw-keys: trust anchors: %s\n", eb.msg);
		*failed = 1;
	}
	return t;
}

static int
cmd_list(struct opts *o, const char *dir, int argc, char **argv)
{
	struct keystore *ks;
	struct errbuf eb;
	time_t now = time(NULL);
	size_t u, i, n, w = 4;
	char nb[11], na[11];
	int rc = EX_OK_;

	(void)o;
	if (argc > 1)
		usage();
	if ((ks = keystore_load(dir, NULL, &eb)) == NULL) {
		fprintf(stderr, "smimegw-keys: %s\n", eb.msg);
		return EX_FAIL_;
	}
	for (u = 0; u < keystore_nusers(ks); u++)
		if (strlen(keystore_user(ks, u)) > w)
			w = strlen(keystore_user(ks, u));
	if (argc == 1) {
		const struct ks_identity *const *h = keystore_history(ks, argv[0], &n);

		if (h == NULL) {
			fprintf(stderr, "smimegw-keys: %s: not in the key store\n", argv[0]);
			rc = EX_FAIL_;
			goto out;
		}
		w = strlen(argv[0]) > 4 ? strlen(argv[0]) : 4;
	}
	printf("%-*s  %-7s  %-10s  %-10s  %-13s  %s\n", (int)w, "USER", "PURPOSE", "NOT-BEFORE",
	       "NOT-AFTER", "STATE", "SHA256-FINGERPRINT");
	for (u = 0; u < keystore_nusers(ks); u++) {
		const char *user = keystore_user(ks, u);
		const struct ks_identity *const *h;

		if (argc == 1 && strcasecmp(user, argv[0]) != 0)
			continue;
		h = keystore_history(ks, user, &n);
		for (i = 0; i < n; i++) {
			cert_isodate(ks_identity_not_before(h[i]), nb);
			cert_isodate(ks_identity_not_after(h[i]), na);
			printf("%-*s  %-7s  %-10s  %-10s  %-13s  %s\n", (int)w, user,
			       cert_purpose_name(ks_identity_purposes(h[i])), nb, na,
			       keystore_state(ks, h[i], now), ks_identity_fingerprint(h[i]));
		}
	}
out:
	keystore_free(ks);
	return rc;
}

static int
cmd_remove(struct opts *o, const char *dir, int argc, char **argv)
{
	char fp[CERT_FP_HEXLEN + 1];
	struct errbuf eb;

	(void)o;
	if (argc != 2)
		usage();
	if (keystore_remove(dir, argv[0], argv[1], fp, &eb) != OUTCOME_OK) {
		fprintf(stderr, "smimegw-keys: remove failed: %s\n", eb.msg);
		return EX_FAIL_;
	}
	printf("removed %s for %s\n", fp, argv[0]);
	return EX_OK_;
}

static void
print_problem(void *arg, const char *path, const char *problem)
{
	(void)arg;
	printf("%s: %s\n", path, problem);
}

static int
cmd_check(struct opts *o, const char *dir, int argc, char **argv)
{
	struct trust *t;
	size_t n;
	int failed;

	(void)argv;
	if (argc != 0)
		usage();
	t = load_trust(o, &failed);
	if (failed)
		return EX_FAIL_;
	if (t == NULL)
		printf("note: no TrustAnchors configured, chains not checked\n");
	n = keystore_check(dir, t, time(NULL), print_problem, NULL);
	trust_free(t);
	if (n > 0) {
		printf("%zu problem%s found in %s\n", n, n == 1 ? "" : "s", dir);
		return EX_FAIL_;
	}
	printf("%s: no problems found\n", dir);
	return EX_OK_;
}

/* --- cache stats|flush|warm: the recipient-certificate cache in Redis --- */

#define WARM_BATCH      500   /* entries per pipelined Redis write */
#define TOOL_MIN_CMD_MS 2000  /* bulk commands need more than the daemon's budget */
#define SAMPLE_MAX_KEYS 10000 /* keys decoded for the stats breakdown at most */

/* Where the cache commands find their settings (config, then options). */
struct cache_env {
	const struct config *cfg;
	const char *redis;    /* Redis spec in use */
	const char *keystore; /* "" for none */
	struct trust *trust;  /* NULL if no TrustAnchors */
	struct rediscache *rc;
};

/* One certificate of a source for one address; the pair owns a reference. */
struct warm_pair {
	char *addr;
	X509 *cert;
	time_t not_before;
};

/* Why a certificate was not warmed. */
struct warm_skips {
	size_t dates;     /* expired or not yet valid */
	size_t unusable;  /* not for encryption, wrong address, unsupported key */
	size_t untrusted; /* no chain to TrustAnchors */
	size_t files;     /* files without a certificate (directories only) */
};

/* The result of one source. */
struct warm_count {
	size_t addrs, certs, shadowed;
	struct warm_skips skip;
};

/* Addresses already written by an earlier source (sorted, for bsearch). */
struct addrset {
	char **v;
	size_t n, cap;
};

/* Accumulates the entries of one pipelined write. */
struct warm_batch {
	const char *addrs[WARM_BATCH];
	struct rc_entry ents[WARM_BATCH];
	const struct rc_entry *ptrs[WARM_BATCH];
	unsigned ttls[WARM_BATCH];
	char *owned[WARM_BATCH];
	size_t n;
	size_t written, roundtrips;
};

static int
strp_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
addrset_has(const struct addrset *s, const char *addr)
{
	return s->n > 0 && bsearch(&addr, s->v, s->n, sizeof(*s->v), strp_cmp) != NULL;
}

/* Adds addresses (kept unsorted until addrset_sort). */
static void
addrset_add(struct addrset *s, const char *addr)
{
	if (s->n == s->cap) {
		s->cap = s->cap == 0 ? 64 : s->cap * 2;
		s->v = xreallocarray(s->v, s->cap, sizeof(*s->v));
	}
	s->v[s->n++] = xstrdup(addr);
}

static void
addrset_sort(struct addrset *s)
{
	if (s->n > 1)
		qsort(s->v, s->n, sizeof(*s->v), strp_cmp);
}

static void
addrset_clear(struct addrset *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* Address ascending, then newest notBefore first. */
static int
pair_cmp(const void *a, const void *b)
{
	const struct warm_pair *p = a, *q = b;
	int c = strcmp(p->addr, q->addr);

	if (c != 0)
		return c;
	return p->not_before > q->not_before ? -1 : p->not_before < q->not_before ? 1 : 0;
}

static void
pairs_add(struct warm_pair **v, size_t *n, size_t *cap, const char *addr, X509 *cert)
{
	if (*n == *cap) {
		*cap = *cap == 0 ? 64 : *cap * 2;
		*v = xreallocarray(*v, *cap, sizeof(**v));
	}
	X509_up_ref(cert);
	(*v)[*n].addr = xstrdup(addr);
	(*v)[*n].cert = cert;
	(*v)[*n].not_before = cert_not_before(cert);
	(*n)++;
}

static void
pairs_free(struct warm_pair *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(v[i].addr);
		X509_free(v[i].cert);
	}
	free(v);
}

/*
 * Whether the daemon would use cert for addr now: the same test as its
 * cache validator (milter/runtime.c), so that nothing warmed is rejected
 * when read back.  Counts the reason in sk when not.
 */
static int
warm_usable(const struct cache_env *env, const char *addr, X509 *cert, time_t now,
            struct warm_skips *sk)
{
	struct errbuf eb;

	if (!(cert_purposes(cert) & CERT_ENCRYPT) || !cert_has_email(cert, addr) ||
	    encrypt_check_cert(cert, &eb) != OUTCOME_OK) {
		sk->unusable++;
		return 0;
	}
	if (cert_not_before(cert) > now || cert_not_after(cert) < now) {
		sk->dates++;
		return 0;
	}
	if (env->cfg->allow_untrusted_rcpt_certs)
		return 1;
	/* Chain only, like the daemon: usages were checked above. */
	if (env->trust == NULL ||
	    trust_verify(env->trust, cert, NULL, now, TRUST_PURPOSE_ANY, &eb) != TRUST_OK) {
		sk->untrusted++;
		return 0;
	}
	return 1;
}

/* Writes the batch in one pipelined round trip. */
static enum outcome
batch_flush(const struct cache_env *env, struct warm_batch *b, struct errbuf *eb)
{
	enum outcome o = OUTCOME_OK;
	size_t i;

	if (b->n == 0)
		return OUTCOME_OK;
	o = rediscache_put_many(env->rc, b->addrs, b->ptrs, b->ttls, b->n, eb);
	if (o == OUTCOME_OK) {
		b->written += b->n;
		b->roundtrips++;
	}
	for (i = 0; i < b->n; i++) {
		rc_entry_clear(&b->ents[i]);
		free(b->owned[i]);
	}
	b->n = 0;
	return o;
}

/*
 * Turns one source's pairs into cache entries: per address (not claimed by
 * an earlier source) its usable certificates, newest first, at most
 * RC_MAX_CERTS.  Addresses written are added to claimed.
 */
static enum outcome
warm_pairs(const struct cache_env *env, const char *source, struct warm_pair *v, size_t n,
           struct addrset *claimed, struct warm_batch *b, struct warm_count *cnt, struct errbuf *eb)
{
	struct addrset mine;
	time_t now = time(NULL);
	enum outcome o = OUTCOME_OK;
	size_t i, j, k;
	unsigned char *der;
	struct rc_entry *e;
	int len;

	memset(&mine, 0, sizeof(mine));
	if (n > 1)
		qsort(v, n, sizeof(*v), pair_cmp);
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && strcmp(v[j].addr, v[i].addr) == 0; j++)
			;
		if (strlen(v[i].addr) > RC_MAX_ADDR)
			continue;
		if (addrset_has(claimed, v[i].addr)) {
			cnt->shadowed++;
			continue;
		}
		e = &b->ents[b->n];
		memset(e, 0, sizeof(*e));
		e->kind = RC_CERTS;
		e->fetched_at = (uint64_t)now;
		(void)snprintf(e->source, sizeof(e->source), "%s", source);
		for (k = i; k < j; k++) {
			if (!warm_usable(env, v[k].addr, v[k].cert, now, &cnt->skip))
				continue;
			if (e->n >= RC_MAX_CERTS)
				break;
			der = NULL;
			if ((len = i2d_X509(v[k].cert, &der)) > 0)
				(void)rc_entry_add(e, der, (size_t)len);
			OPENSSL_free(der);
		}
		err_openssl_clear();
		if (e->n == 0) {
			rc_entry_clear(e);
			continue;
		}
		cnt->addrs++;
		cnt->certs += e->n;
		addrset_add(&mine, v[i].addr);
		b->owned[b->n] = xstrdup(v[i].addr);
		b->addrs[b->n] = b->owned[b->n];
		b->ptrs[b->n] = e;
		b->ttls[b->n] = env->cfg->cache_ttl;
		if (++b->n == WARM_BATCH && (o = batch_flush(env, b, eb)) != OUTCOME_OK)
			goto out;
	}
	/* The daemon asks its sources in order: the first that answers wins. */
	for (i = 0; i < mine.n; i++)
		addrset_add(claimed, mine.v[i]);
	addrset_sort(claimed);
out:
	addrset_clear(&mine);
	return o;
}

/* The key store's encryption-capable certificates, per user. */
static enum outcome
collect_keystore(const struct cache_env *env, struct warm_pair **v, size_t *n, size_t *cap,
                 struct errbuf *eb)
{
	struct keystore *ks;
	const struct ks_identity *const *h;
	size_t u, i, nh;

	if ((ks = keystore_load(env->keystore, env->trust, eb)) == NULL)
		return OUTCOME_PERM;
	for (u = 0; u < keystore_nusers(ks); u++) {
		const char *user = keystore_user(ks, u);

		if ((h = keystore_history(ks, user, &nh)) == NULL)
			continue;
		for (i = 0; i < nh; i++)
			if (ks_identity_purposes(h[i]) & CERT_ENCRYPT)
				pairs_add(v, n, cap, user, ks_identity_cert(h[i]));
	}
	keystore_free(ks);
	return OUTCOME_OK;
}

struct warm_collect {
	struct warm_pair **v;
	size_t *n, *cap;
};

static void
collect_one(void *arg, const char *addr, X509 *cert)
{
	struct warm_collect *c = arg;

	pairs_add(c->v, c->n, c->cap, addr, cert);
}

/* Every certificate of a RecipientCertDir-style directory under each of its addresses. */
static enum outcome
collect_dir(const char *what, const char *dir, struct warm_pair **v, size_t *n, size_t *cap,
            struct warm_skips *skip, struct errbuf *eb)
{
	struct warm_collect c = {v, n, cap};
	struct errbuf why;
	size_t skipped = 0;

	if (certdir_walk(dir, collect_one, &c, &skipped, &why) != OUTCOME_OK) {
		err_set(eb, "%s %s", what, why.msg);
		return OUTCOME_PERM;
	}
	skip->files += skipped;
	return OUTCOME_OK;
}

static void
print_count(const char *source, const struct warm_count *c)
{
	printf("%-8s  %zu address%s, %zu certificate%s; skipped %zu expired or not yet valid, "
	       "%zu not for encryption, %zu untrusted",
	       source, c->addrs, c->addrs == 1 ? "" : "es", c->certs, c->certs == 1 ? "" : "s",
	       c->skip.dates, c->skip.unusable, c->skip.untrusted);
	if (c->shadowed > 0)
		printf(", %zu address%s already from an earlier source", c->shadowed,
		       c->shadowed == 1 ? "" : "es");
	if (c->skip.files > 0)
		printf(", %zu file%s without a certificate", c->skip.files,
		       c->skip.files == 1 ? "" : "s");
	putchar('\n');
}

/* cache warm: every usable certificate of the daemon's sources into Redis. */
static int
cache_warm(struct cache_env *env)
{
	static const char *const names[3] = {"keystore", "certdir", "harvest"};
	const char *dirs[3];
	struct warm_batch *b = xcalloc(1, sizeof(*b));
	struct warm_count cnt[3], total;
	struct addrset claimed;
	struct warm_pair *v;
	struct errbuf eb;
	size_t n, cap, s, nkeys = 0, dbsize = 0;
	enum outcome o;
	int rc = EX_OK_, configured;

	memset(cnt, 0, sizeof(cnt));
	memset(&total, 0, sizeof(total));
	memset(&claimed, 0, sizeof(claimed));
	dirs[0] = env->keystore;
	dirs[1] = env->cfg->recipient_cert_dir;
	dirs[2] = env->cfg->harvest_dir;
	if (env->trust == NULL && !env->cfg->allow_untrusted_rcpt_certs)
		printf("note: no TrustAnchors and AllowUntrustedRecipientCerts is off: "
		       "no certificate can be used\n");
	for (s = 0; s < 3; s++) {
		v = NULL;
		n = cap = 0;
		configured = dirs[s] != NULL && dirs[s][0] != '\0';
		if (!configured) {
			printf("%-8s  not configured\n", names[s]);
			continue;
		}
		if (s == 0)
			o = collect_keystore(env, &v, &n, &cap, &eb);
		else
			o = collect_dir(s == 1 ? "RecipientCertDir" : "HarvestDir", dirs[s], &v, &n,
			                &cap, &cnt[s].skip, &eb);
		if (o != OUTCOME_OK) {
			fprintf(stderr, "smimegw-keys: %s: %s\n", names[s], eb.msg);
			rc = EX_FAIL_;
			pairs_free(v, n);
			continue;
		}
		o = warm_pairs(env, names[s], v, n, &claimed, b, &cnt[s], &eb);
		pairs_free(v, n);
		if (o != OUTCOME_OK)
			goto redis_down;
		print_count(names[s], &cnt[s]);
		total.addrs += cnt[s].addrs;
		total.certs += cnt[s].certs;
	}
	if (batch_flush(env, b, &eb) != OUTCOME_OK)
		goto redis_down;
	if (rediscache_stats(env->rc, &nkeys, &dbsize, &eb) != OUTCOME_OK)
		goto redis_down;
	printf("warmed %zu address%s (%zu certificate%s) in %zu round trip%s, TTL %u s; "
	       "Redis %s now holds %zu of our keys\n",
	       total.addrs, total.addrs == 1 ? "" : "es", total.certs, total.certs == 1 ? "" : "s",
	       b->roundtrips, b->roundtrips == 1 ? "" : "s", env->cfg->cache_ttl, env->redis,
	       nkeys);
	goto out;
redis_down:
	fprintf(stderr, "smimegw-keys: cannot write to Redis at %s: %s\n", env->redis, eb.msg);
	rc = EX_FAIL_;
out:
	addrset_clear(&claimed);
	free(b);
	return rc;
}

/* How many of our entries are positive, negative or unreadable. */
struct sample {
	size_t pos, neg, bad, certs;
};

/* rediscache_foreach visitor: counts one entry (NULL: unreadable). */
static void
sample_one(void *arg, const char *addr, const struct rc_entry *e)
{
	struct sample *sm = arg;

	(void)addr;
	if (e == NULL)
		sm->bad++;
	else if (e->kind == RC_NONE)
		sm->neg++;
	else {
		sm->pos++;
		sm->certs += e->n;
	}
}

/* cache stats: key counts and what the entries hold. */
static int
cache_stats(struct cache_env *env)
{
	struct sample sm;
	struct errbuf eb;
	size_t nkeys, dbsize, seen;
	int complete;

	if (rediscache_stats(env->rc, &nkeys, &dbsize, &eb) != OUTCOME_OK) {
		fprintf(stderr, "smimegw-keys: cannot reach Redis at %s: %s\n", env->redis, eb.msg);
		return EX_FAIL_;
	}
	printf("redis:       %s\n", env->redis);
	printf("prefix:      %scert:\n", env->cfg->redis_prefix);
	printf("keys:        %zu\n", nkeys);
	printf("dbsize:      %zu\n", dbsize);
	memset(&sm, 0, sizeof(sm));
	if (rediscache_foreach(env->rc, SAMPLE_MAX_KEYS, sample_one, &sm, &seen, &complete, &eb) !=
	    OUTCOME_OK) {
		printf("breakdown:   unavailable (Redis stopped answering)\n");
		return EX_FAIL_;
	}
	printf("positive:    %zu (%zu certificate%s)\n", sm.pos, sm.certs,
	       sm.certs == 1 ? "" : "s");
	printf("negative:    %zu\n", sm.neg);
	printf("unreadable:  %zu\n", sm.bad);
	if (!complete)
		printf("note: breakdown from the first %zu keys only\n", seen);
	return EX_OK_;
}

/* cache flush: deletes our keys only (SCAN + UNLINK, never FLUSHALL). */
static int
cache_flush(struct cache_env *env)
{
	struct errbuf eb;
	size_t n;

	if (rediscache_flush(env->rc, &n, &eb) != OUTCOME_OK) {
		fprintf(stderr, "smimegw-keys: cannot reach Redis at %s: %s\n", env->redis, eb.msg);
		return EX_FAIL_;
	}
	printf("deleted %zu key%s matching %scert:* from Redis %s\n", n, n == 1 ? "" : "s",
	       env->cfg->redis_prefix, env->redis);
	return EX_OK_;
}

/* cache stats|flush|warm: sets up the config, trust and Redis handle. */
static int
cmd_cache(struct opts *o, int argc, char **argv)
{
	struct cache_env env;
	struct errbuf eb;
	unsigned cmd_ms;
	int failed, rc = EX_FAIL_;

	if (argc != 1 || (strcmp(argv[0], "stats") != 0 && strcmp(argv[0], "flush") != 0 &&
	                  strcmp(argv[0], "warm") != 0))
		usage();
	memset(&env, 0, sizeof(env));
	env.cfg = o->cfg;
	env.redis = o->redis != NULL ? o->redis : o->cfg->redis;
	env.keystore = o->keystore != NULL ? o->keystore : o->cfg->keystore;
	if (env.redis == NULL || env.redis[0] == '\0') {
		fprintf(stderr,
		        "smimegw-keys: no Redis: set Redis in %s or use --redis HOST:PORT\n",
		        o->cfg->path != NULL ? o->cfg->path : "the config");
		return EX_FAIL_;
	}
	cmd_ms = o->cfg->redis_command_timeout > TOOL_MIN_CMD_MS ? o->cfg->redis_command_timeout
	                                                         : TOOL_MIN_CMD_MS;
	if ((env.rc = rediscache_new(env.redis, o->cfg->redis_connect_timeout, cmd_ms,
	                             o->cfg->redis_prefix, &eb)) == NULL) {
		fprintf(stderr, "smimegw-keys: %s\n", eb.msg);
		return EX_FAIL_;
	}
	/* The breaker's warnings would only repeat the error printed below. */
	log_setlevel(LOG_ERR);
	/* Report an unreachable Redis at once, not after reading every source. */
	if (rediscache_ping(env.rc, &eb) != OUTCOME_OK) {
		fprintf(stderr, "smimegw-keys: %s\n", eb.msg);
		rediscache_free(env.rc);
		return EX_FAIL_;
	}
	if (strcmp(argv[0], "stats") == 0)
		rc = cache_stats(&env);
	else if (strcmp(argv[0], "flush") == 0)
		rc = cache_flush(&env);
	else {
		env.trust = load_trust(o, &failed);
		if (!failed)
			rc = cache_warm(&env);
		trust_free(env.trust);
	}
	rediscache_free(env.rc);
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"keystore", required_argument, NULL, 'k'},
	    {"trust", required_argument, NULL, 't'},
	    {"intermediates", required_argument, NULL, 'i'},
	    {"password-file", required_argument, NULL, 'p'},
	    {"owner", required_argument, NULL, 'o'},
	    {"force", no_argument, NULL, 'f'},
	    {"redis", required_argument, NULL, 'R'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct opts o;
	struct errbuf eb;
	const char *dir, *cmd;
	int ch, rc;

	memset(&o, 0, sizeof(o));
	log_init("smimegw-keys", 1, LOG_MAIL);
	while ((ch = getopt_long(argc, argv, "c:k:t:i:p:o:fh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o.config = optarg;
			break;
		case 'k':
			o.keystore = optarg;
			break;
		case 't':
			o.trust = optarg;
			break;
		case 'i':
			o.intermediates = optarg;
			break;
		case 'p':
			o.password_file = optarg;
			break;
		case 'o':
			o.owner = optarg;
			break;
		case 'f':
			o.force = 1;
			break;
		case 'R':
			o.redis = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return EX_OK_;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	cmd = argv[0];
	if (strcmp(cmd, "help") == 0) {
		fputs(usage_text, stdout);
		return EX_OK_;
	}
	if (strcmp(cmd, "import") != 0 && strcmp(cmd, "list") != 0 && strcmp(cmd, "remove") != 0 &&
	    strcmp(cmd, "check") != 0 && strcmp(cmd, "cache") != 0) {
		fprintf(stderr, "smimegw-keys: unknown command '%s'\n", cmd);
		usage();
	}
	if (strcmp(cmd, "cache") == 0) {
		/* Without -c, the default config if there is one, else the defaults. */
		if (o.config == NULL && access(SMG_DEFAULT_CONFIG, F_OK) != 0)
			o.cfg = config_defaults();
		else if ((o.cfg = config_load(o.config != NULL ? o.config : SMG_DEFAULT_CONFIG,
		                              &eb)) == NULL) {
			fprintf(stderr, "smimegw-keys: %s\n", eb.msg);
			return EX_FAIL_;
		}
		rc = cmd_cache(&o, argc - 1, argv + 1);
		config_free(o.cfg);
		return rc;
	}
	if (o.keystore == NULL || o.config != NULL) {
		const char *path = o.config != NULL ? o.config : SMG_DEFAULT_CONFIG;

		if ((o.cfg = config_load(path, &eb)) == NULL) {
			fprintf(stderr, "smimegw-keys: %s\n", eb.msg);
			return EX_FAIL_;
		}
	}
	dir = o.keystore != NULL ? o.keystore : o.cfg->keystore;
	if (dir == NULL || dir[0] == '\0') {
		fprintf(stderr,
		        "smimegw-keys: no key store: set KeyStore in %s or use "
		        "--keystore DIR\n",
		        o.cfg != NULL ? o.cfg->path : "the config");
		config_free(o.cfg);
		return EX_FAIL_;
	}
	if (o.owner == NULL && o.cfg != NULL && o.cfg->user != NULL && o.cfg->user[0] != '\0' &&
	    geteuid() == 0)
		o.owner = o.cfg->user;
	if (strcmp(cmd, "import") == 0)
		rc = cmd_import(&o, dir, argc - 1, argv + 1);
	else if (strcmp(cmd, "list") == 0)
		rc = cmd_list(&o, dir, argc - 1, argv + 1);
	else if (strcmp(cmd, "remove") == 0)
		rc = cmd_remove(&o, dir, argc - 1, argv + 1);
	else
		rc = cmd_check(&o, dir, argc - 1, argv + 1);
	config_free(o.cfg);
	return rc;
}
