/*
 * certdir: RecipientCertDir as a certcache source.  See certdir.h.  The
 * index is a sorted array of (address, certificate) pairs searched with
 * bsearch; an address may appear with several certificates.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "src/cert.h"
#include "src/log.h"
#include "src/xmalloc.h"

#include "certdir.h"

struct pair {
	char *addr;
	X509 *cert; /* one reference per pair */
};

struct index {
	struct pair *v;
	size_t n;
	size_t skipped;
};

struct certdir {
	char *dir;
	pthread_rwlock_t lock; /* guards idx, mtime, checked */
	struct index idx;
	struct timespec mtime;   /* of the directory at the last rebuild */
	time_t checked;          /* last mtime check (monotonic seconds) */
	pthread_mutex_t rebuild; /* one rebuild at a time; taken before lock */
};

static void
index_clear(struct index *ix)
{
	size_t i;

	for (i = 0; i < ix->n; i++) {
		free(ix->v[i].addr);
		X509_free(ix->v[i].cert);
	}
	free(ix->v);
	memset(ix, 0, sizeof(*ix));
}

static int
pair_cmp(const void *a, const void *b)
{
	return strcmp(((const struct pair *)a)->addr, ((const struct pair *)b)->addr);
}

/* Reads up to CERTDIR_MAX_PER_FILE certificates from a PEM or DER file into sk. */
static int
read_file(const char *path, STACK_OF(X509) * sk)
{
	unsigned char *buf = NULL;
	const unsigned char *p;
	struct stat st;
	BIO *bio = NULL;
	FILE *f = NULL;
	X509 *x;
	int n = 0;

	if ((f = fopen(path, "rb")) == NULL || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size <= 0 || st.st_size > (off_t)CERTDIR_MAX_FILE_SIZE)
		goto out;
	buf = xmalloc((size_t)st.st_size);
	if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
		goto out;
	if ((bio = BIO_new_mem_buf(buf, (int)st.st_size)) == NULL)
		goto out;
	while (n < CERTDIR_MAX_PER_FILE && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (sk_X509_push(sk, x) == 0) {
			X509_free(x);
			break;
		}
		n++;
	}
	if (n == 0) {
		p = buf;
		x = d2i_X509(NULL, &p, (long)st.st_size);
		if (x != NULL && p == buf + st.st_size && sk_X509_push(sk, x) != 0)
			n = 1;
		else
			X509_free(x);
	}
out:
	err_openssl_clear();
	BIO_free(bio);
	free(buf);
	if (f != NULL)
		fclose(f);
	return n;
}

enum outcome
certdir_walk(const char *dir, certdir_walk_fn fn, void *arg, size_t *skipped, struct errbuf *eb)
{
	STACK_OF(X509) *sk = NULL;
	struct dirent *de;
	size_t nfiles = 0, ne, i;
	DIR *d = NULL;
	char **emails, *path;
	enum outcome o = OUTCOME_TEMP;
	X509 *x;

	*skipped = 0;
	if ((d = opendir(dir)) == NULL) {
		err_set(eb, "%s: %s", dir, strerror(errno));
		goto out;
	}
	if ((sk = sk_X509_new_null()) == NULL)
		goto out;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (++nfiles > CERTDIR_MAX_FILES) {
			log_warnx("%s: more than %d files; ignoring the rest", dir, CERTDIR_MAX_FILES);
			break;
		}
		path = xasprintf("%s/%s", dir, de->d_name);
		if (read_file(path, sk) == 0)
			(*skipped)++;
		free(path);
		while ((x = sk_X509_shift(sk)) != NULL) {
			emails = cert_emails(x, &ne);
			for (i = 0; i < ne; i++)
				fn(arg, emails[i], x);
			cert_strv_free(emails);
			X509_free(x);
		}
	}
	o = OUTCOME_OK;
out:
	sk_X509_pop_free(sk, X509_free);
	if (d != NULL)
		closedir(d);
	return o;
}

struct index_fill {
	struct index *ix;
	size_t cap;
};

static void
index_add(void *arg, const char *addr, X509 *x)
{
	struct index_fill *f = arg;
	struct index *ix = f->ix;

	if (ix->n == f->cap) {
		f->cap = f->cap == 0 ? 64 : f->cap * 2;
		ix->v = xreallocarray(ix->v, f->cap, sizeof(*ix->v));
	}
	X509_up_ref(x);
	ix->v[ix->n].addr = xstrdup(addr);
	ix->v[ix->n++].cert = x;
}

/* Builds a fresh index of dir into ix. */
static enum outcome
index_build(const char *dir, struct index *ix, struct timespec *mtime, struct errbuf *eb)
{
	struct index_fill f = {ix, 0};
	struct errbuf why;
	struct stat st;

	memset(ix, 0, sizeof(*ix));
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		err_set(eb, "RecipientCertDir %s: %s", dir,
			errno != 0 ? strerror(errno) : "not a directory");
		return OUTCOME_TEMP;
	}
	*mtime = st.st_mtim;
	if (certdir_walk(dir, index_add, &f, &ix->skipped, &why) != OUTCOME_OK) {
		err_set(eb, "RecipientCertDir %s", why.msg);
		return OUTCOME_TEMP;
	}
	if (ix->n > 0)
		qsort(ix->v, ix->n, sizeof(*ix->v), pair_cmp);
	return OUTCOME_OK;
}

static time_t
mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

enum outcome
certdir_reload(struct certdir *cd, struct errbuf *eb)
{
	struct index fresh, old;
	struct timespec mtime;
	enum outcome o;

	pthread_mutex_lock(&cd->rebuild);
	o = index_build(cd->dir, &fresh, &mtime, eb);
	if (o == OUTCOME_OK) {
		pthread_rwlock_wrlock(&cd->lock);
		old = cd->idx;
		cd->idx = fresh;
		cd->mtime = mtime;
		cd->checked = mono_now();
		pthread_rwlock_unlock(&cd->lock);
		index_clear(&old);
		if (fresh.skipped > 0)
			log_notice("RecipientCertDir %s: %zu file(s) without a certificate skipped",
			           cd->dir, fresh.skipped);
	}
	pthread_mutex_unlock(&cd->rebuild);
	return o;
}

struct certdir *
certdir_new(const char *dir, struct errbuf *eb)
{
	struct certdir *cd = xcalloc(1, sizeof(*cd));

	cd->dir = xstrdup(dir);
	pthread_rwlock_init(&cd->lock, NULL);
	pthread_mutex_init(&cd->rebuild, NULL);
	if (certdir_reload(cd, eb) != OUTCOME_OK) {
		certdir_free(cd);
		return NULL;
	}
	return cd;
}

void
certdir_free(struct certdir *cd)
{
	if (cd == NULL)
		return;
	index_clear(&cd->idx);
	pthread_rwlock_destroy(&cd->lock);
	pthread_mutex_destroy(&cd->rebuild);
	free(cd->dir);
	free(cd);
}

size_t
certdir_naddrs(struct certdir *cd)
{
	size_t n;

	pthread_rwlock_rdlock(&cd->lock);
	n = cd->idx.n;
	pthread_rwlock_unlock(&cd->lock);
	return n;
}

size_t
certdir_nskipped(struct certdir *cd)
{
	size_t n;

	pthread_rwlock_rdlock(&cd->lock);
	n = cd->idx.skipped;
	pthread_rwlock_unlock(&cd->lock);
	return n;
}

/* Rebuilds if the directory changed; checks at most once per second. */
static enum outcome
maybe_reload(struct certdir *cd, struct errbuf *eb)
{
	struct stat st;
	time_t now = mono_now();
	int stale;

	pthread_rwlock_rdlock(&cd->lock);
	stale = cd->checked != now;
	pthread_rwlock_unlock(&cd->lock);
	if (!stale)
		return OUTCOME_OK;
	if (stat(cd->dir, &st) != 0) {
		err_set(eb, "RecipientCertDir %s: %s", cd->dir, strerror(errno));
		return OUTCOME_TEMP;
	}
	pthread_rwlock_wrlock(&cd->lock);
	stale = st.st_mtim.tv_sec != cd->mtime.tv_sec || st.st_mtim.tv_nsec != cd->mtime.tv_nsec;
	cd->checked = now;
	pthread_rwlock_unlock(&cd->lock);
	return stale ? certdir_reload(cd, eb) : OUTCOME_OK;
}

enum outcome
certdir_lookup(void *arg, const char *addr, STACK_OF(X509) * *out, struct errbuf *eb)
{
	struct certdir *cd = arg;
	struct pair key, *hit;
	char lower[RC_MAX_ADDR + 1];
	size_t i, n = strlen(addr), lo;
	enum outcome o;

	*out = NULL;
	if (n == 0 || n > RC_MAX_ADDR)
		return OUTCOME_OK;
	for (i = 0; i <= n; i++)
		lower[i] = (char)(addr[i] >= 'A' && addr[i] <= 'Z' ? addr[i] + 32 : addr[i]);
	if ((o = maybe_reload(cd, eb)) != OUTCOME_OK)
		return o;
	key.addr = lower;
	pthread_rwlock_rdlock(&cd->lock);
	/* An empty directory has no array: bsearch() must not see a NULL base. */
	hit = cd->idx.n == 0 ? NULL
	                     : bsearch(&key, cd->idx.v, cd->idx.n, sizeof(*cd->idx.v), pair_cmp);
	if (hit != NULL) {
		lo = (size_t)(hit - cd->idx.v);
		while (lo > 0 && strcmp(cd->idx.v[lo - 1].addr, lower) == 0)
			lo--;
		*out = sk_X509_new_null();
		for (i = lo;
		     *out != NULL && i < cd->idx.n && strcmp(cd->idx.v[i].addr, lower) == 0 &&
		     sk_X509_num(*out) < RC_MAX_CERTS;
		     i++) {
			X509_up_ref(cd->idx.v[i].cert);
			if (sk_X509_push(*out, cd->idx.v[i].cert) == 0)
				X509_free(cd->idx.v[i].cert);
		}
	}
	pthread_rwlock_unlock(&cd->lock);
	return OUTCOME_OK;
}

struct certsource
certdir_source(struct certdir *cd)
{
	struct certsource s = {"certdir", certdir_lookup, cd};

	return s;
}
