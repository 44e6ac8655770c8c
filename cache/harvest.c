/*
 * harvest: files are named ADDR,FINGERPRINT.pem and written to a temporary
 * name first, then renamed, so certdir never reads half a file.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "../src/cert.h"
#include "../src/xmalloc.h"
#include "harvest.h"

/* notBefore of the newest certificate kept for addr in dir; 0 if none. */
static time_t
harvest_newest(const char *dir, const char *addr)
{
	size_t alen = strlen(addr);
	struct dirent *de;
	time_t newest = 0;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		char *path;
		FILE *fp;
		X509 *x;

		if (strncmp(de->d_name, addr, alen) != 0 || de->d_name[alen] != ',')
			continue;
		path = xasprintf("%s/%s", dir, de->d_name);
		if ((fp = fopen(path, "r")) != NULL) {
			if ((x = PEM_read_X509(fp, NULL, NULL, NULL)) != NULL) {
				if (cert_not_before(x) > newest)
					newest = cert_not_before(x);
				X509_free(x);
			}
			fclose(fp);
		}
		free(path);
	}
	closedir(d);
	return newest;
}

enum outcome
harvest_store(struct certcache *cc, const char *dir, const char *addr, X509 *cert, unsigned ttl,
              int *stored, struct errbuf *eb)
{
	char fp[65], *path = NULL, *tmp = NULL;
	unsigned char *der = NULL;
	struct rc_entry ent;
	struct errbuf ignored;
	enum outcome rc = OUTCOME_TEMP;
	FILE *f = NULL;
	int len;

	*stored = 0;
	memset(&ent, 0, sizeof(ent));
	if (strchr(addr, '/') != NULL || addr[0] == '.' || strlen(addr) > 254) {
		err_set(eb, "harvest: refusing address \"%s\" as a file name", addr);
		return OUTCOME_PERM;
	}
	if (harvest_newest(dir, addr) >= cert_not_before(cert))
		return OUTCOME_OK;
	cert_fingerprint(cert, fp);
	path = xasprintf("%s/%s,%s.pem", dir, addr, fp);
	tmp = xasprintf("%s/.%s,%s.tmp", dir, addr, fp);
	if ((f = fopen(tmp, "w")) == NULL || PEM_write_X509(f, cert) != 1 || fflush(f) != 0 ||
	    fsync(fileno(f)) != 0) {
		err_set(eb, "harvest: cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	fclose(f);
	f = NULL;
	if (rename(tmp, path) == -1) {
		err_set(eb, "harvest: cannot rename to %s: %s", path, strerror(errno));
		goto out;
	}
	*stored = 1;
	rc = OUTCOME_OK;
	/* Redis and the in-process cache learn of it now rather than after their TTLs. */
	certcache_forget(cc, addr);
	if (certcache_redis(cc) != NULL && (len = i2d_X509(cert, &der)) > 0 &&
	    rc_entry_add(&ent, der, (size_t)len) == 0) {
		ent.kind = RC_CERTS;
		ent.fetched_at = (uint64_t)time(NULL);
		snprintf(ent.source, sizeof(ent.source), "harvest");
		(void)rediscache_put(certcache_redis(cc), addr, &ent, ttl, &ignored);
	}
out:
	if (f != NULL)
		fclose(f);
	if (rc != OUTCOME_OK)
		(void)unlink(tmp);
	rc_entry_clear(&ent);
	OPENSSL_free(der);
	free(path);
	free(tmp);
	return rc;
}
