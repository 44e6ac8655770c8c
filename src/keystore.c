/*
 * keystore: loading the key store into an immutable snapshot, lookups for
 * signing, encryption and decryption, and the import/remove/check
 * operations behind smimegw-keys.  The on-disk layout is described in
 * keystore.h.
 */
#include "autoconf.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

#include "cert.h"
#include "kari.h"
#include "keystore.h"
#include "ossl.h"
#include "log.h"
#include "trust.h"
#include "xmalloc.h"

#define KS_MAX_P12_CERTS 256 /* certificates in one PKCS#12 file */
#define KS_MAX_P12_DEPTH 3   /* nested SafeContents bags */

struct ks_identity {
	char *user;
	char *path; /* the .crt file */
	X509 *cert;
	EVP_PKEY *key;
	STACK_OF(X509) * chain;
	char fp[CERT_FP_HEXLEN + 1];
	unsigned purposes;
	time_t not_before, not_after;
};

struct ks_user {
	const char *addr;               /* == ids[0]->user */
	struct ks_identity *const *ids; /* into keystore.ids, newest first */
	size_t n;
};

struct keystore {
	struct ks_identity **ids; /* sorted by user, then notBefore descending */
	size_t nids;
	struct ks_user *users; /* sorted by address */
	size_t nusers;
	struct ks_identity **by_issuer; /* sorted by issuer name + serial */
	struct ks_identity **by_skid;   /* identities with a SKID, sorted by it */
	size_t nskid;
};

/* --- identities ------------------------------------------------------------ */

static void
identity_free(struct ks_identity *id)
{
	if (id == NULL)
		return;
	free(id->user);
	free(id->path);
	X509_free(id->cert);
	if (id->key != NULL)
		kari_forget(id->key);
	EVP_PKEY_free(id->key);
	sk_X509_pop_free(id->chain, X509_free);
	free(id);
}

const char *
ks_identity_user(const struct ks_identity *id)
{
	return id->user;
}

X509 *
ks_identity_cert(const struct ks_identity *id)
{
	return id->cert;
}

EVP_PKEY *
ks_identity_key(const struct ks_identity *id)
{
	return id->key;
}

STACK_OF(X509) * ks_identity_chain(const struct ks_identity *id)
{
	return id->chain;
}

const char *
ks_identity_fingerprint(const struct ks_identity *id)
{
	return id->fp;
}

unsigned
ks_identity_purposes(const struct ks_identity *id)
{
	return id->purposes;
}

time_t
ks_identity_not_before(const struct ks_identity *id)
{
	return id->not_before;
}

time_t
ks_identity_not_after(const struct ks_identity *id)
{
	return id->not_after;
}

const char *
ks_identity_path(const struct ks_identity *id)
{
	return id->path;
}

static int
valid_at(const struct ks_identity *id, time_t now)
{
	return id->not_before != (time_t)-1 && id->not_after != (time_t)-1 &&
	       id->not_before <= now && now <= id->not_after;
}

/* --- addresses -------------------------------------------------------------- */

int
keystore_addr_normalize(const char *addr, char out[KS_MAX_ADDR_LEN + 1])
{
	size_t i, len, at = 0, nat = 0;

	len = strlen(addr);
	if (len < 3 || len > KS_MAX_ADDR_LEN)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)addr[i];

		/* Also keeps the name safe as a single path component. */
		if (c <= 0x20 || c >= 0x7f || c == '/' || c == '\\')
			return -1;
		if (c == '@') {
			at = i;
			nat++;
		}
		out[i] = (char)tolower(c);
	}
	out[len] = '\0';
	if (nat != 1 || at == 0 || at == len - 1 || out[0] == '.')
		return -1;
	return 0;
}

/* --- reading files ----------------------------------------------------------- */

/*
 * Reads a whole regular file of at most KS_MAX_FILE_SIZE bytes into a new
 * buffer.  For private keys (is_key) the file must not be accessible by
 * group or others and must belong to the running user unless that is root.
 * On error returns NULL and sets why (no path in it).
 */
static unsigned char *
read_file(const char *path, int is_key, size_t *lenp, char *why, size_t whysz)
{
	struct stat st;
	unsigned char *buf = NULL;
	size_t off = 0;
	ssize_t r;
	int fd;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd == -1) {
		(void)snprintf(why, whysz, "%s", strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1) {
		(void)snprintf(why, whysz, "%s", strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		(void)snprintf(why, whysz, "not a regular file");
		goto fail;
	}
	if (is_key && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		(void)snprintf(why, whysz,
		               "private key is accessible by group or others (mode %04o); "
		               "chmod 600 it",
		               (unsigned)(st.st_mode & 07777));
		goto fail;
	}
	if (is_key && geteuid() != 0 && st.st_uid != geteuid()) {
		(void)snprintf(why, whysz, "private key is owned by uid %u, not by uid %u",
		               (unsigned)st.st_uid, (unsigned)geteuid());
		goto fail;
	}
	if (st.st_size > (off_t)KS_MAX_FILE_SIZE) {
		(void)snprintf(why, whysz, "file larger than %u bytes", KS_MAX_FILE_SIZE);
		goto fail;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	while (off < (size_t)st.st_size) {
		r = read(fd, buf + off, (size_t)st.st_size - off);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0) {
			(void)snprintf(why, whysz, "%s", r == 0 ? "short read" : strerror(errno));
			goto fail;
		}
		off += (size_t)r;
	}
	buf[off] = '\0';
	close(fd);
	*lenp = off;
	return buf;
fail:
	if (buf != NULL) {
		OPENSSL_cleanse(buf, (size_t)st.st_size);
		free(buf);
	}
	close(fd);
	return NULL;
}

/* Decodes a PEM certificate followed by up to KS_MAX_CHAIN chain certificates. */
static X509 *
decode_cert_chain(const unsigned char *buf, size_t len, STACK_OF(X509) * *chainp, char *why,
                  size_t whysz)
{
	BIO *b;
	X509 *cert = NULL, *x;
	STACK_OF(X509) * chain;

	chain = sk_X509_new_null();
	b = BIO_new_mem_buf(buf, (int)len);
	if (b == NULL || chain == NULL)
		goto fail;
	cert = PEM_read_bio_X509(b, NULL, NULL, NULL);
	if (cert == NULL) {
		(void)snprintf(why, whysz, "no PEM certificate");
		goto fail;
	}
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		if (sk_X509_num(chain) >= KS_MAX_CHAIN) {
			X509_free(x);
			(void)snprintf(why, whysz, "more than %d chain certificates", KS_MAX_CHAIN);
			goto fail;
		}
		(void)sk_X509_push(chain, x);
	}
	ERR_clear_error();
	BIO_free(b);
	*chainp = chain;
	return cert;
fail:
	ERR_clear_error();
	BIO_free(b);
	X509_free(cert);
	sk_X509_pop_free(chain, X509_free);
	return NULL;
}

static EVP_PKEY *
decode_key(const unsigned char *buf, size_t len)
{
	BIO *b;
	EVP_PKEY *k;

	b = BIO_new_mem_buf(buf, (int)len);
	if (b == NULL)
		return NULL;
	/* An empty passphrase callback: encrypted keys fail instead of prompting. */
	k = PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)"");
	BIO_free(b);
	ERR_clear_error();
	return k;
}

/* --- scanning the store (shared by load and check) ------------------------- */

struct scan {
	const char *dir;
	const struct trust *trust;
	time_t now;
	int checking; /* keystore_check: report everything, keep going */
	size_t nproblems;
	void (*report)(void *, const char *, const char *);
	void *arg;
	struct errbuf *eb; /* load: the first problem */
	struct ks_identity **ids;
	size_t nids, cap;
};

static void problem(struct scan *, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
problem(struct scan *s, const char *path, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (s->nproblems++ == 0 && s->eb != NULL)
		err_set(s->eb, "%s: %s", path, msg);
	if (s->report != NULL)
		s->report(s->arg, path, msg);
}

static int
is_hex_fp(const char *s, size_t len)
{
	size_t i;

	if (len != CERT_FP_HEXLEN)
		return 0;
	for (i = 0; i < len; i++)
		if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
			return 0;
	return 1;
}

/* Verification time for a chain check: now, clamped into the validity period. */
static time_t
check_time(const struct ks_identity *id, time_t now)
{
	/* OpenSSL treats the exact notAfter second as expired: stay one inside. */
	if (now <= id->not_before)
		return id->not_before + 1;
	if (now >= id->not_after)
		return id->not_after - 1;
	return now;
}

/* Loads one <fp>.crt and its <fp>.key; 0 or -1 (problem recorded). */
static int
scan_identity(struct scan *s, const char *user, const char *udir, const char *name)
{
	struct ks_identity *id = NULL;
	unsigned char *cbuf = NULL, *kbuf = NULL;
	size_t clen = 0, klen = 0;
	char why[256], *kpath = NULL, base[CERT_FP_HEXLEN + 1];
	struct errbuf detail;
	enum trust_status ts;
	int rc = -1;

	id = xcalloc(1, sizeof(*id));
	id->user = xstrdup(user);
	id->path = xasprintf("%s/%s", udir, name);
	memcpy(base, name, CERT_FP_HEXLEN);
	base[CERT_FP_HEXLEN] = '\0';
	kpath = xasprintf("%s/%s.key", udir, base);

	cbuf = read_file(id->path, 0, &clen, why, sizeof(why));
	if (cbuf == NULL) {
		problem(s, id->path, "%s", why);
		goto out;
	}
	id->cert = decode_cert_chain(cbuf, clen, &id->chain, why, sizeof(why));
	if (id->cert == NULL) {
		problem(s, id->path, "%s", why);
		goto out;
	}
	cert_fingerprint(id->cert, id->fp);
	if (strcmp(id->fp, base) != 0) {
		problem(s, id->path, "file name does not match the certificate's fingerprint %s",
		        id->fp);
		goto out;
	}
	id->purposes = cert_purposes(id->cert);
	id->not_before = cert_not_before(id->cert);
	id->not_after = cert_not_after(id->cert);
	if (id->not_before == (time_t)-1 || id->not_after == (time_t)-1) {
		problem(s, id->path, "unreadable validity dates");
		goto out;
	}
	kbuf = read_file(kpath, 1, &klen, why, sizeof(why));
	if (kbuf == NULL) {
		problem(s, kpath, "%s", why);
		goto out;
	}
	id->key = decode_key(kbuf, klen);
	if (id->key == NULL) {
		problem(s, kpath, "not a PEM private key (or encrypted)");
		goto out;
	}
	if (X509_check_private_key(id->cert, id->key) != 1) {
		ERR_clear_error();
		problem(s, kpath, "private key does not match certificate %s", id->path);
		goto out;
	}
	if (s->trust != NULL) {
		ts = trust_verify(s->trust, id->cert, id->chain, check_time(id, s->now),
		                  TRUST_PURPOSE_ANY, &detail);
		if (ts != TRUST_OK) {
			if (s->checking)
				problem(s, id->path, "chain does not verify: %s: %s",
				        trust_status_name(ts), detail.msg);
			else
				log_warnx("key store: %s: chain does not verify: %s", id->path,
				          detail.msg);
		}
	}
	if (s->nids == s->cap) {
		s->cap = s->cap == 0 ? 64 : s->cap * 2;
		s->ids = xreallocarray(s->ids, s->cap, sizeof(*s->ids));
	}
	s->ids[s->nids++] = id;
	id = NULL;
	rc = 0;
out:
	if (kbuf != NULL) {
		OPENSSL_cleanse(kbuf, klen);
		free(kbuf);
	}
	free(cbuf);
	free(kpath);
	identity_free(id);
	return rc;
}

static int
strp_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the non-hidden entry names of a directory, sorted; NULL on error. */
static char **
list_dir(const char *path, size_t max, size_t *np, char *why, size_t whysz)
{
	DIR *d;
	struct dirent *de;
	char **v = NULL;
	size_t n = 0, cap = 0;

	d = opendir(path);
	if (d == NULL) {
		(void)snprintf(why, whysz, "%s", strerror(errno));
		return NULL;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == max) {
			(void)snprintf(why, whysz, "more than %zu entries", max);
			goto fail;
		}
		if (n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			v = xreallocarray(v, cap, sizeof(*v));
		}
		v[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (n > 0)
		qsort(v, n, sizeof(*v), strp_cmp);
	*np = n;
	return v != NULL ? v : xcalloc(1, sizeof(*v));
fail:
	closedir(d);
	while (n > 0)
		free(v[--n]);
	free(v);
	return NULL;
}

static void
strv_free_n(char **v, size_t n)
{
	size_t i;

	for (i = 0; v != NULL && i < n; i++)
		free(v[i]);
	free(v);
}

static int
has_suffix(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);

	return a >= b && strcmp(s + a - b, suf) == 0;
}

/* Walks one user's directory.  0, or -1 to stop the load. */
static int
scan_user(struct scan *s, const char *user)
{
	char **names = NULL, *udir, why[128], norm[KS_MAX_ADDR_LEN + 1], *p;
	struct stat st;
	size_t n = 0, i;
	int rc = -1;

	udir = xasprintf("%s/%s", s->dir, user);
	if (lstat(udir, &st) == -1) {
		problem(s, udir, "%s", strerror(errno));
		goto out;
	}
	if (!S_ISDIR(st.st_mode)) {
		if (s->checking)
			problem(s, udir, "unexpected file in the key store");
		rc = 0;
		goto out;
	}
	if (keystore_addr_normalize(user, norm) == -1 || strcmp(norm, user) != 0) {
		problem(s, udir, "directory name is not a lowercase e-mail address");
		goto out;
	}
	if (s->checking && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
		problem(s, udir, "directory is accessible by group or others (mode %04o)",
		        (unsigned)(st.st_mode & 07777));
	names = list_dir(udir, 2 * KS_MAX_PER_USER + 16, &n, why, sizeof(why));
	if (names == NULL) {
		problem(s, udir, "%s", why);
		goto out;
	}
	for (i = 0; i < n; i++) {
		size_t len = strlen(names[i]);

		if (has_suffix(names[i], ".crt") && is_hex_fp(names[i], len - 4)) {
			if (scan_identity(s, user, udir, names[i]) == -1 && !s->checking)
				goto out;
		} else if (has_suffix(names[i], ".key") && is_hex_fp(names[i], len - 4)) {
			if (!s->checking)
				continue;
			p = xasprintf("%s/%.*s.crt", udir, CERT_FP_HEXLEN, names[i]);
			if (access(p, F_OK) == -1) {
				free(p);
				p = xasprintf("%s/%s", udir, names[i]);
				problem(s, p, "private key without a certificate");
			}
			free(p);
		} else if (s->checking) {
			p = xasprintf("%s/%s", udir, names[i]);
			problem(s, p, "unexpected file in the key store");
			free(p);
		}
	}
	rc = 0;
out:
	strv_free_n(names, n);
	free(udir);
	return rc;
}

/* Walks the store; 0 if every user was read (problems are counted in s). */
static int
scan_store(struct scan *s)
{
	char **users, why[128];
	size_t n = 0, i;
	int rc = 0;

	users = list_dir(s->dir, KS_MAX_USERS, &n, why, sizeof(why));
	if (users == NULL) {
		problem(s, s->dir, "%s", why);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (scan_user(s, users[i]) == -1 && !s->checking) {
			rc = -1;
			break;
		}
	}
	strv_free_n(users, n);
	return rc;
}

/* --- the snapshot ------------------------------------------------------------ */

static int
id_cmp_user_newest(const void *a, const void *b)
{
	const struct ks_identity *x = *(struct ks_identity *const *)a;
	const struct ks_identity *y = *(struct ks_identity *const *)b;
	int c;

	if ((c = strcmp(x->user, y->user)) != 0)
		return c;
	if (x->not_before != y->not_before)
		return x->not_before > y->not_before ? -1 : 1;
	return strcmp(x->fp, y->fp);
}

static int
id_cmp_issuer(const void *a, const void *b)
{
	X509 *x = (*(struct ks_identity *const *)a)->cert;
	X509 *y = (*(struct ks_identity *const *)b)->cert;
	int c;

	if ((c = X509_NAME_cmp(X509_get_issuer_name(x), X509_get_issuer_name(y))) != 0)
		return c;
	return ASN1_INTEGER_cmp(X509_get0_serialNumber(x), X509_get0_serialNumber(y));
}

static int
skid_cmp(const ASN1_OCTET_STRING *a, const ASN1_OCTET_STRING *b)
{
	return ASN1_OCTET_STRING_cmp(a, b);
}

static int
id_cmp_skid(const void *a, const void *b)
{
	return skid_cmp(cert_skid((*(struct ks_identity *const *)a)->cert),
	                cert_skid((*(struct ks_identity *const *)b)->cert));
}

struct keystore *
keystore_load(const char *dir, const struct trust *trust, struct errbuf *eb)
{
	struct scan s;
	struct keystore *ks;
	size_t i, j;

	memset(&s, 0, sizeof(s));
	s.dir = dir;
	s.trust = trust;
	s.now = time(NULL);
	s.eb = eb;
	if (scan_store(&s) == -1 || s.nproblems > 0) {
		for (i = 0; i < s.nids; i++)
			identity_free(s.ids[i]);
		free(s.ids);
		return NULL;
	}
	ks = xcalloc(1, sizeof(*ks));
	ks->ids = s.ids;
	ks->nids = s.nids;
	if (ks->nids == 0)
		return ks;
	qsort(ks->ids, ks->nids, sizeof(*ks->ids), id_cmp_user_newest);
	ks->users = xcalloc(ks->nids, sizeof(*ks->users));
	for (i = 0; i < ks->nids; i = j) {
		for (j = i + 1; j < ks->nids && strcmp(ks->ids[j]->user, ks->ids[i]->user) == 0;
		     j++)
			;
		ks->users[ks->nusers].addr = ks->ids[i]->user;
		ks->users[ks->nusers].ids = ks->ids + i;
		ks->users[ks->nusers].n = j - i;
		ks->nusers++;
	}
	ks->by_issuer = xcalloc(ks->nids, sizeof(*ks->by_issuer));
	memcpy(ks->by_issuer, ks->ids, ks->nids * sizeof(*ks->ids));
	qsort(ks->by_issuer, ks->nids, sizeof(*ks->by_issuer), id_cmp_issuer);
	ks->by_skid = xcalloc(ks->nids, sizeof(*ks->by_skid));
	for (i = 0; i < ks->nids; i++)
		if (cert_skid(ks->ids[i]->cert) != NULL)
			ks->by_skid[ks->nskid++] = ks->ids[i];
	if (ks->nskid > 0)
		qsort(ks->by_skid, ks->nskid, sizeof(*ks->by_skid), id_cmp_skid);
	return ks;
}

void
keystore_free(struct keystore *ks)
{
	size_t i;

	if (ks == NULL)
		return;
	for (i = 0; i < ks->nids; i++)
		identity_free(ks->ids[i]);
	free(ks->ids);
	free(ks->users);
	free(ks->by_issuer);
	free(ks->by_skid);
	free(ks);
}

static const struct ks_user *
find_user(const struct keystore *ks, const char *addr)
{
	char norm[KS_MAX_ADDR_LEN + 1];
	size_t lo = 0, hi, mid;
	int c;

	if (ks == NULL || keystore_addr_normalize(addr, norm) == -1)
		return NULL;
	hi = ks->nusers;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = strcmp(norm, ks->users[mid].addr);
		if (c == 0)
			return &ks->users[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static const struct ks_identity *
newest_valid(const struct keystore *ks, const char *addr, time_t now, unsigned purpose)
{
	const struct ks_user *u;
	size_t i;

	if ((u = find_user(ks, addr)) == NULL)
		return NULL;
	for (i = 0; i < u->n; i++)
		if ((u->ids[i]->purposes & purpose) != 0 && valid_at(u->ids[i], now))
			return u->ids[i];
	return NULL;
}

const struct ks_identity *
keystore_signer(const struct keystore *ks, const char *addr, time_t now)
{
	return newest_valid(ks, addr, now, CERT_SIGN);
}

const struct ks_identity *
keystore_encrypter(const struct keystore *ks, const char *addr, time_t now)
{
	return newest_valid(ks, addr, now, CERT_ENCRYPT);
}

const struct ks_identity *const *
keystore_history(const struct keystore *ks, const char *addr, size_t *n)
{
	const struct ks_user *u;

	if ((u = find_user(ks, addr)) == NULL) {
		*n = 0;
		return NULL;
	}
	*n = u->n;
	return (const struct ks_identity *const *)u->ids;
}

const struct ks_identity *
keystore_find_issuer_serial(const struct keystore *ks, const X509_NAME *issuer,
                            const ASN1_INTEGER *serial)
{
	size_t lo = 0, hi, mid;
	int c;

	if (ks == NULL || issuer == NULL || serial == NULL)
		return NULL;
	hi = ks->nids;
	while (lo < hi) {
		X509 *x;

		mid = lo + (hi - lo) / 2;
		x = ks->by_issuer[mid]->cert;
		c = X509_NAME_cmp(issuer, X509_get_issuer_name(x));
		if (c == 0)
			c = ASN1_INTEGER_cmp(serial, X509_get0_serialNumber(x));
		if (c == 0)
			return ks->by_issuer[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

const struct ks_identity *
keystore_find_skid(const struct keystore *ks, const ASN1_OCTET_STRING *skid)
{
	size_t lo = 0, hi, mid;
	int c;

	if (ks == NULL || skid == NULL)
		return NULL;
	hi = ks->nskid;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = skid_cmp(skid, cert_skid(ks->by_skid[mid]->cert));
		if (c == 0)
			return ks->by_skid[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

const struct ks_identity *
keystore_find_fingerprint(const struct keystore *ks, const char *fp)
{
	size_t i;

	for (i = 0; ks != NULL && i < ks->nids; i++)
		if (strcasecmp(ks->ids[i]->fp, fp) == 0)
			return ks->ids[i];
	return NULL;
}

size_t
keystore_nusers(const struct keystore *ks)
{
	return ks != NULL ? ks->nusers : 0;
}

const char *
keystore_user(const struct keystore *ks, size_t i)
{
	return i < ks->nusers ? ks->users[i].addr : NULL;
}

size_t
keystore_nidentities(const struct keystore *ks)
{
	return ks != NULL ? ks->nids : 0;
}

const char *
keystore_state(const struct keystore *ks, const struct ks_identity *id, time_t now)
{
	const struct ks_user *u;
	size_t i;

	if (now > id->not_after)
		return "expired";
	if (now < id->not_before)
		return "not-yet-valid";
	if ((u = find_user(ks, id->user)) == NULL)
		return "current";
	for (i = 0; i < u->n; i++) {
		const struct ks_identity *o = u->ids[i];

		if (o == id || !valid_at(o, now) || o->not_before <= id->not_before)
			continue;
		if (id->purposes != 0 && (o->purposes & id->purposes) == id->purposes)
			return "superseded";
	}
	return "current";
}

/* --- check ------------------------------------------------------------------- */

size_t
keystore_check(const char *dir, const struct trust *trust, time_t now,
               void (*report)(void *, const char *, const char *), void *arg)
{
	struct scan s;
	size_t i;

	memset(&s, 0, sizeof(s));
	s.dir = dir;
	s.trust = trust;
	s.now = now;
	s.checking = 1;
	s.report = report;
	s.arg = arg;
	(void)scan_store(&s);
	for (i = 0; i < s.nids; i++)
		identity_free(s.ids[i]);
	free(s.ids);
	return s.nproblems;
}

/* --- import ------------------------------------------------------------------ */

/* Creates path as a 0700 directory if missing, and chowns it if asked. */
static int
ensure_dir(const char *path, const struct ks_import_opts *o, struct errbuf *eb)
{
	struct stat st;

	if (mkdir(path, 0700) == -1 && errno != EEXIST) {
		err_set(eb, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (lstat(path, &st) == -1 || !S_ISDIR(st.st_mode)) {
		err_set(eb, "%s: not a directory", path);
		return -1;
	}
	if (o->set_owner && chown(path, o->owner, o->group) == -1) {
		err_set(eb, "%s: chown: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Writes one PEM file atomically (temporary file, then rename) with mode. */
static int
write_pem(const char *udir, const char *name, mode_t mode, X509 *cert, STACK_OF(X509) * chain,
          EVP_PKEY *key, const struct ks_import_opts *o, struct errbuf *eb)
{
	char *tmp, *path;
	FILE *fp = NULL;
	int fd, i, ok = 0, rc = -1;

	tmp = xasprintf("%s/.%s.tmp", udir, name);
	path = xasprintf("%s/%s", udir, name);
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd == -1) {
		err_set(eb, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	if (fchmod(fd, mode) == -1 || (o->set_owner && fchown(fd, o->owner, o->group) == -1)) {
		err_set(eb, "%s: %s", tmp, strerror(errno));
		close(fd);
		goto out;
	}
	if ((fp = fdopen(fd, "w")) == NULL) {
		err_set(eb, "%s: %s", tmp, strerror(errno));
		close(fd);
		goto out;
	}
	if (key != NULL) {
		/* PEM_write_PrivateKey writes unencrypted PKCS#8 ("PRIVATE KEY"). */
		ok = PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL);
	} else {
		ok = PEM_write_X509(fp, cert);
		for (i = 0; ok && chain != NULL && i < sk_X509_num(chain); i++)
			ok = PEM_write_X509(fp, sk_X509_value(chain, i));
	}
	if (!ok) {
		err_openssl(eb, tmp);
		goto out;
	}
	if (fflush(fp) != 0 || fsync(fileno(fp)) == -1) {
		err_set(eb, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	if (fclose(fp) != 0) {
		fp = NULL;
		err_set(eb, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	fp = NULL;
	if (rename(tmp, path) == -1) {
		err_set(eb, "%s: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (fp != NULL)
		fclose(fp);
	if (rc == -1)
		(void)unlink(tmp);
	free(tmp);
	free(path);
	return rc;
}

/* Checks a pair before anything is written: key matches, addresses fit user. */
static int
pair_check(const char *user, X509 *cert, EVP_PKEY *key, const struct ks_import_opts *o,
           struct errbuf *eb)
{
	char **emails, *subj;
	size_t n;
	int rc = -1;

	subj = cert_subject(cert);
	emails = cert_emails(cert, &n);
	if (X509_check_private_key(cert, key) != 1) {
		ERR_clear_error();
		err_set(eb, "private key does not match its certificate (%s)", subj);
		goto out;
	}
	if (n == 0) {
		err_set(eb, "certificate has no e-mail address (%s)", subj);
		goto out;
	}
	if (!o->force && !cert_has_email(cert, user)) {
		err_set(eb, "certificate is for %s%s, not %s (use --force to import anyway)",
		        emails[0], n > 1 ? " and others" : "", user);
		goto out;
	}
	rc = 0;
out:
	cert_strv_free(emails);
	free(subj);
	return rc;
}

/* Writes <fp>.key then <fp>.crt under dir/user. */
static int
pair_write(const char *dir, const char *user, X509 *cert, EVP_PKEY *key, STACK_OF(X509) * chain,
           const struct ks_import_opts *o, struct ks_imported *out, struct errbuf *eb)
{
	char fp[CERT_FP_HEXLEN + 1], *udir, *name = NULL;
	int rc = -1;

	udir = xasprintf("%s/%s", dir, user);
	if (ensure_dir(dir, o, eb) == -1 || ensure_dir(udir, o, eb) == -1)
		goto out;
	cert_fingerprint(cert, fp);
	name = xasprintf("%s.key", fp);
	if (write_pem(udir, name, 0600, NULL, NULL, key, o, eb) == -1)
		goto out;
	free(name);
	name = xasprintf("%s.crt", fp);
	if (write_pem(udir, name, 0644, cert, chain, NULL, o, eb) == -1)
		goto out;
	if (out != NULL && out->n < KS_MAX_IMPORT) {
		memcpy(out->fp[out->n], fp, sizeof(fp));
		out->purposes[out->n] = cert_purposes(cert);
		out->n++;
	}
	rc = 0;
out:
	free(name);
	free(udir);
	return rc;
}

struct p12_contents {
	EVP_PKEY *keys[KS_MAX_IMPORT];
	size_t nkeys;
	STACK_OF(X509) * certs;
};

/* Collects keys and certificates from a list of safe bags (recursing into nested ones). */
static int
p12_bags(struct p12_contents *c, const STACK_OF(PKCS12_SAFEBAG) * bags, const char *pass, int depth,
         struct errbuf *eb)
{
	int i;

	if (depth > KS_MAX_P12_DEPTH) {
		err_set(eb, "PKCS#12 bags nested too deeply");
		return -1;
	}
	for (i = 0; i < sk_PKCS12_SAFEBAG_num(bags); i++) {
		const PKCS12_SAFEBAG *bag = sk_PKCS12_SAFEBAG_value(bags, i);
		PKCS8_PRIV_KEY_INFO *p8 = NULL;
		EVP_PKEY *k;
		X509 *x;

		switch (PKCS12_SAFEBAG_get_nid(bag)) {
		case NID_keyBag:
		case NID_pkcs8ShroudedKeyBag:
			if (c->nkeys == KS_MAX_IMPORT) {
				err_set(eb, "more than %d private keys in the file", KS_MAX_IMPORT);
				return -1;
			}
			if (PKCS12_SAFEBAG_get_nid(bag) == NID_keyBag)
				k = EVP_PKCS82PKEY(PKCS12_SAFEBAG_get0_p8inf(bag));
			else {
				p8 = PKCS12_decrypt_skey(bag, pass, -1);
				if (p8 == NULL) {
					err_openssl(eb, "cannot decrypt the private key (wrong "
					                "password or unsupported cipher)");
					return -1;
				}
				k = EVP_PKCS82PKEY(p8);
				PKCS8_PRIV_KEY_INFO_free(p8);
			}
			if (k == NULL) {
				err_openssl(eb, "cannot decode the private key");
				return -1;
			}
			c->keys[c->nkeys++] = k;
			break;
		case NID_certBag:
			if (PKCS12_SAFEBAG_get_bag_nid(bag) != NID_x509Certificate)
				break;
			if (sk_X509_num(c->certs) >= KS_MAX_P12_CERTS) {
				err_set(eb, "more than %d certificates in the file",
				        KS_MAX_P12_CERTS);
				return -1;
			}
			x = PKCS12_SAFEBAG_get1_cert(bag);
			if (x == NULL) {
				err_openssl(eb, "cannot decode a certificate");
				return -1;
			}
			(void)sk_X509_push(c->certs, x);
			break;
		case NID_safeContentsBag:
			if (p12_bags(c, PKCS12_SAFEBAG_get0_safes(bag), pass, depth + 1, eb) == -1)
				return -1;
			break;
		default:
			break; /* CRL bags, secret bags: not ours */
		}
	}
	return 0;
}

enum outcome
keystore_import_pkcs12(const char *dir, const char *user, const char *path, const char *password,
                       const struct ks_import_opts *o, struct ks_imported *out, struct errbuf *eb)
{
	struct p12_contents c;
	X509 *leaf[KS_MAX_IMPORT];
	PKCS12 *p12 = NULL;
	STACK_OF(PKCS7) *safes = NULL;
	STACK_OF(PKCS12_SAFEBAG) *bags = NULL;
	STACK_OF(X509) *chain = NULL;
	unsigned char *buf = NULL;
	char why[256], norm[KS_MAX_ADDR_LEN + 1];
	const char *pass = password != NULL ? password : "";
	const unsigned char *p;
	size_t len = 0, i;
	enum outcome rc = OUTCOME_PERM;
	int j;

	memset(&c, 0, sizeof(c));
	memset(leaf, 0, sizeof(leaf));
	c.certs = sk_X509_new_null();
	chain = sk_X509_new_null();
	(void)ossl_load_legacy();
	if (keystore_addr_normalize(user, norm) == -1) {
		err_set(eb, "%s: not a valid e-mail address", user);
		goto out;
	}
	if ((buf = read_file(path, 0, &len, why, sizeof(why))) == NULL) {
		err_set(eb, "%s: %s", path, why);
		goto out;
	}
	p = buf;
	p12 = d2i_PKCS12(NULL, &p, (long)len);
	if (p12 == NULL) {
		ERR_clear_error();
		err_set(eb, "%s: not a PKCS#12 file", path);
		goto out;
	}
	if (PKCS12_mac_present(p12)) {
		if (PKCS12_verify_mac(p12, pass, -1) != 1) {
			/* An empty password may have been encoded as "no password". */
			if (pass[0] == '\0' && PKCS12_verify_mac(p12, NULL, 0) == 1)
				pass = NULL;
			else {
				ERR_clear_error();
				err_set(eb, "%s: wrong password", path);
				goto out;
			}
		}
	}
	if ((safes = PKCS12_unpack_authsafes(p12)) == NULL) {
		err_openssl(eb, "cannot read the PKCS#12 contents");
		goto out;
	}
	for (j = 0; j < sk_PKCS7_num(safes); j++) {
		PKCS7 *p7 = sk_PKCS7_value(safes, j);

		if (PKCS7_type_is_data(p7))
			bags = PKCS12_unpack_p7data(p7);
		else if (PKCS7_type_is_encrypted(p7))
			bags = PKCS12_unpack_p7encdata(p7, pass, pass != NULL ? -1 : 0);
		else
			continue;
		if (bags == NULL) {
			if (!PKCS12_mac_present(p12) && PKCS7_type_is_encrypted(p7)) {
				ERR_clear_error();
				err_set(eb, "%s: wrong password (or an unsupported cipher)", path);
			} else
				err_openssl(eb, "cannot decrypt the PKCS#12 certificates");
			goto out;
		}
		if (p12_bags(&c, bags, pass, 0, eb) == -1)
			goto out;
		sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
		bags = NULL;
	}
	if (c.nkeys == 0) {
		err_set(eb, "%s: no private key in the file", path);
		goto out;
	}
	/* Pair every key with its certificate; the other certificates form the chain. */
	for (i = 0; i < c.nkeys; i++) {
		for (j = 0; j < sk_X509_num(c.certs) && leaf[i] == NULL; j++) {
			X509 *x = sk_X509_value(c.certs, j);

			if (X509_check_private_key(x, c.keys[i]) == 1)
				leaf[i] = x;
		}
		ERR_clear_error();
		if (leaf[i] == NULL) {
			err_set(eb,
			        "%s: private key does not match its certificate (no "
			        "certificate in the file belongs to key %zu)",
			        path, i + 1);
			goto out;
		}
	}
	for (j = 0; j < sk_X509_num(c.certs); j++) {
		X509 *x = sk_X509_value(c.certs, j);
		int is_leaf = 0;

		for (i = 0; i < c.nkeys; i++)
			is_leaf |= leaf[i] == x;
		if (!is_leaf && sk_X509_num(chain) < KS_MAX_CHAIN)
			(void)sk_X509_push(chain, x);
	}
	for (i = 0; i < c.nkeys; i++) {
		if (pair_check(norm, leaf[i], c.keys[i], o, eb) == -1) {
			char tmp[ERRBUF_SIZE];

			(void)snprintf(tmp, sizeof(tmp), "%s", eb->msg);
			err_set(eb, "%s: %s", path, tmp);
			goto out;
		}
	}
	for (i = 0; i < c.nkeys; i++) {
		if (pair_write(dir, norm, leaf[i], c.keys[i], chain, o, out, eb) == -1) {
			rc = OUTCOME_TEMP;
			goto out;
		}
	}
	rc = OUTCOME_OK;
out:
	sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
	sk_PKCS7_pop_free(safes, PKCS7_free);
	PKCS12_free(p12);
	sk_X509_free(chain); /* shallow: the certificates belong to c.certs */
	sk_X509_pop_free(c.certs, X509_free);
	for (i = 0; i < c.nkeys; i++)
		EVP_PKEY_free(c.keys[i]);
	free(buf);
	ERR_clear_error();
	return rc;
}

enum outcome
keystore_import_pem(const char *dir, const char *user, const char *certpath, const char *keypath,
                    const struct ks_import_opts *o, struct ks_imported *out, struct errbuf *eb)
{
	unsigned char *cbuf = NULL, *kbuf = NULL;
	size_t clen = 0, klen = 0;
	char why[256], norm[KS_MAX_ADDR_LEN + 1], tmp[ERRBUF_SIZE];
	X509 *cert = NULL;
	STACK_OF(X509) *chain = NULL;
	EVP_PKEY *key = NULL;
	enum outcome rc = OUTCOME_PERM;

	if (keystore_addr_normalize(user, norm) == -1) {
		err_set(eb, "%s: not a valid e-mail address", user);
		goto out;
	}
	if ((cbuf = read_file(certpath, 0, &clen, why, sizeof(why))) == NULL) {
		err_set(eb, "%s: %s", certpath, why);
		goto out;
	}
	if ((cert = decode_cert_chain(cbuf, clen, &chain, why, sizeof(why))) == NULL) {
		err_set(eb, "%s: %s", certpath, why);
		goto out;
	}
	/* The source key may have any mode: it is the admin's file, not ours. */
	if ((kbuf = read_file(keypath, 0, &klen, why, sizeof(why))) == NULL) {
		err_set(eb, "%s: %s", keypath, why);
		goto out;
	}
	if ((key = decode_key(kbuf, klen)) == NULL) {
		err_set(eb, "%s: not an unencrypted PEM private key", keypath);
		goto out;
	}
	if (pair_check(norm, cert, key, o, eb) == -1) {
		(void)snprintf(tmp, sizeof(tmp), "%s", eb->msg);
		err_set(eb, "%s: %s", certpath, tmp);
		goto out;
	}
	if (pair_write(dir, norm, cert, key, chain, o, out, eb) == -1) {
		rc = OUTCOME_TEMP;
		goto out;
	}
	rc = OUTCOME_OK;
out:
	if (kbuf != NULL) {
		OPENSSL_cleanse(kbuf, klen);
		free(kbuf);
	}
	free(cbuf);
	X509_free(cert);
	sk_X509_pop_free(chain, X509_free);
	EVP_PKEY_free(key);
	ERR_clear_error();
	return rc;
}

enum outcome
keystore_remove(const char *dir, const char *user, const char *prefix,
                char fp_out[CERT_FP_HEXLEN + 1], struct errbuf *eb)
{
	char norm[KS_MAX_ADDR_LEN + 1], lower[CERT_FP_HEXLEN + 1], why[128];
	char **names = NULL, *udir = NULL, *path = NULL, *match = NULL;
	size_t n = 0, i, plen, nmatch = 0;
	enum outcome rc = OUTCOME_PERM;

	plen = strlen(prefix);
	if (keystore_addr_normalize(user, norm) == -1) {
		err_set(eb, "%s: not a valid e-mail address", user);
		goto out;
	}
	if (plen < 8 || plen > CERT_FP_HEXLEN) {
		err_set(eb, "fingerprint prefix must have 8 to 64 hex digits");
		goto out;
	}
	for (i = 0; i < plen; i++) {
		if (!isxdigit((unsigned char)prefix[i])) {
			err_set(eb, "%s: not a hex fingerprint", prefix);
			goto out;
		}
		lower[i] = (char)tolower((unsigned char)prefix[i]);
	}
	lower[plen] = '\0';
	udir = xasprintf("%s/%s", dir, norm);
	if ((names = list_dir(udir, 2 * KS_MAX_PER_USER + 16, &n, why, sizeof(why))) == NULL) {
		err_set(eb, "%s: no such user in the key store (%s)", norm, why);
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (has_suffix(names[i], ".crt") && is_hex_fp(names[i], strlen(names[i]) - 4) &&
		    strncmp(names[i], lower, plen) == 0) {
			nmatch++;
			match = names[i];
		}
	}
	if (nmatch == 0) {
		err_set(eb, "%s has no certificate with fingerprint %s", norm, lower);
		goto out;
	}
	if (nmatch > 1) {
		err_set(eb, "fingerprint prefix %s is ambiguous for %s (%zu matches)", lower, norm,
		        nmatch);
		goto out;
	}
	memcpy(fp_out, match, CERT_FP_HEXLEN);
	fp_out[CERT_FP_HEXLEN] = '\0';
	/* The certificate first: without it the identity no longer exists. */
	path = xasprintf("%s/%s.crt", udir, fp_out);
	if (unlink(path) == -1) {
		err_set(eb, "%s: %s", path, strerror(errno));
		rc = OUTCOME_TEMP;
		goto out;
	}
	free(path);
	path = xasprintf("%s/%s.key", udir, fp_out);
	if (unlink(path) == -1 && errno != ENOENT) {
		err_set(eb, "%s: %s", path, strerror(errno));
		rc = OUTCOME_TEMP;
		goto out;
	}
	rc = OUTCOME_OK;
out:
	strv_free_n(names, n);
	free(udir);
	free(path);
	return rc;
}
