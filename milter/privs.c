/*
 * privs: dropping root after the milter socket is bound (Postfix
 * chroot_uid.c style: resolve first, then setgroups, setgid, setuid, and
 * check that each one took).
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../src/xmalloc.h"
#include "privs.h"

int
privs_resolve(const char *spec, uid_t *uid, gid_t *gid, struct errbuf *eb)
{
	char *user = xstrdup(spec), *group;
	struct passwd *pw;
	struct group *gr;
	int rc = -1;

	if ((group = strchr(user, ':')) != NULL)
		*group++ = '\0';
	if ((pw = getpwnam(user)) == NULL) {
		err_set(eb, "UserID: no such user \"%s\"", user);
		goto out;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	if (group != NULL && *group != '\0') {
		if ((gr = getgrnam(group)) == NULL) {
			err_set(eb, "UserID: no such group \"%s\"", group);
			goto out;
		}
		*gid = gr->gr_gid;
	}
	rc = 0;
out:
	free(user);
	return rc;
}

int
privs_drop(const char *spec, uid_t uid, gid_t gid, struct errbuf *eb)
{
	char *user = xstrdup(spec), *colon;
	int rc = -1;

	if ((colon = strchr(user, ':')) != NULL)
		*colon = '\0';
	if (getuid() != 0 && geteuid() != 0) {
		if (getuid() == uid) {
			rc = 0;
			goto out;
		}
		err_set(eb, "UserID %s: not started as root, cannot change user", user);
		goto out;
	}
	if (initgroups(user, gid) == -1) {
		err_set(eb, "initgroups(%s): %s", user, strerror(errno));
		goto out;
	}
	if (setgid(gid) == -1 || setegid(gid) == -1) {
		err_set(eb, "setgid(%ld): %s", (long)gid, strerror(errno));
		goto out;
	}
	if (setuid(uid) == -1 || seteuid(uid) == -1) {
		err_set(eb, "setuid(%ld): %s", (long)uid, strerror(errno));
		goto out;
	}
	if (uid != 0 && (setuid(0) != -1 || seteuid(0) != -1)) {
		err_set(eb, "privileges could be regained after dropping to %s", user);
		goto out;
	}
	privs_no_core();
	rc = 0;
out:
	free(user);
	return rc;
}

int
privs_write_pidfile(const char *path, struct errbuf *eb)
{
	char tmp[4096 + 16], buf[32];
	int fd = -1, n, rc = -1;

	n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		err_set(eb, "PidFile %s: path too long", path);
		return -1;
	}
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644)) == -1) {
		err_set(eb, "PidFile %s: %s", tmp, strerror(errno));
		goto out;
	}
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (write(fd, buf, (size_t)n) != n || fsync(fd) == -1) {
		err_set(eb, "PidFile %s: write: %s", tmp, strerror(errno));
		goto out;
	}
	if (rename(tmp, path) == -1) {
		err_set(eb, "PidFile %s: rename: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (fd != -1)
		close(fd);
	if (rc == -1)
		(void)unlink(tmp);
	return rc;
}

void
privs_no_core(void)
{
	struct rlimit rl = {0, 0};

	(void)setrlimit(RLIMIT_CORE, &rl);
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}
