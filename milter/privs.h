/*
 * privs: privilege drop and pid file handling for the daemon.
 */
#ifndef SMG_PRIVS_H
#define SMG_PRIVS_H

#include <sys/types.h>

#include "../src/outcome.h"

/*
 * Resolves spec ("user" or "user:group") to ids; -1 with why in eb.
 */
int privs_resolve(const char *spec, uid_t *uid, gid_t *gid, struct errbuf *eb);
/* setgroups, setgid, setuid, each checked, then verifies root cannot be regained. */
int privs_drop(const char *spec, uid_t uid, gid_t gid, struct errbuf *eb);
/* Writes our pid to path (created 0644, replaced atomically); -1 with why in eb. */
int privs_write_pidfile(const char *path, struct errbuf *eb);
/* Turns off core dumps: the process may hold private keys. */
void privs_no_core(void);

#endif
