/*
 * signals: the reload thread, and the one interposition smimegw needs.
 *
 * libmilter's own signal thread sigwait()s for SIGHUP, SIGTERM and SIGINT
 * and stops the milter on any of them, so out of the box SIGHUP would shut
 * the gateway down.  sigwait() is therefore defined here: the executable's
 * definition comes first in the dynamic linker's lookup, so libmilter's
 * call lands here and waits for everything it asked for except SIGHUP,
 * which the reload thread takes with sigwaitinfo().
 */
#include "autoconf.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "../src/log.h"
#include "../src/xmalloc.h"
#include "gw.h"
#include "runtime.h"
#include "signals.h"

static char *sig_cfgpath;
static char *sig_sockspec;

int
sigwait(const sigset_t *set, int *sig)
{
	sigset_t s;
	int r;

	memcpy(&s, set, sizeof(s));
	sigdelset(&s, SIGHUP);
	do
		r = sigwaitinfo(&s, NULL);
	while (r == -1 && errno == EINTR);
	if (r == -1)
		return errno;
	*sig = r;
	return 0;
}

void
signals_block(void)
{
	sigset_t s;

	sigemptyset(&s);
	sigaddset(&s, SIGHUP);
	sigaddset(&s, SIGTERM);
	sigaddset(&s, SIGINT);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
}

/* Warns about keys whose new value only a restart applies. */
static void
signals_restart_keys(const struct config *old, const struct config *new)
{
	if (strcmp(old->socket, new->socket) != 0)
		log_warnx("reload: Socket changed; the new one takes effect after a restart");
	if (strcmp(old->user, new->user) != 0)
		log_warnx("reload: UserID changed; takes effect after a restart");
	if (strcmp(old->audit_log, new->audit_log) != 0 || old->audit_sync != new->audit_sync)
		log_warnx("reload: AuditLog settings changed; they take effect after a restart");
	if (old->syslog_facility != new->syslog_facility)
		log_warnx("reload: SyslogFacility changed; takes effect after a restart");
}

static void
signals_reload(void)
{
	struct runtime *rt, *old;
	struct config *cfg;
	struct errbuf eb;

	log_notice("SIGHUP: reloading %s", sig_cfgpath);
	if ((cfg = config_load(sig_cfgpath, &eb)) == NULL) {
		log_warnx("reload refused, still running the old configuration: %s", eb.msg);
		return;
	}
	if (sig_sockspec != NULL) {
		free(cfg->socket);
		cfg->socket = xstrdup(sig_sockspec);
	}
	if ((rt = runtime_new(cfg, &eb)) == NULL) {
		log_warnx("reload refused, still running the old configuration: %s: %s",
		          sig_cfgpath, eb.msg);
		return;
	}
	old = runtime_current();
	signals_restart_keys(old->cfg, rt->cfg);
	runtime_unref(old);
	log_setlevel(rt->cfg->log_level);
	runtime_install(rt);
	if (gw.audit != NULL)
		audit_reopen(gw.audit);
	atomic_fetch_add(&gw.reloads, 1);
	log_notice("reloaded %s%s", sig_cfgpath,
	           rt->ks != NULL ? "; key store, trust anchors and tables re-read" : "");
}

static void *
signals_thread(void *arg)
{
	sigset_t s;
	int sig;

	(void)arg;
	sigemptyset(&s);
	sigaddset(&s, SIGHUP);
	for (;;) {
		if ((sig = sigwaitinfo(&s, NULL)) == -1) {
			if (errno != EINTR)
				log_warn("sigwaitinfo");
			continue;
		}
		signals_reload();
	}
	return NULL;
}

int
signals_start(const char *cfgpath, const char *sockspec)
{
	pthread_t t;

	sig_cfgpath = xstrdup(cfgpath);
	sig_sockspec = sockspec != NULL ? xstrdup(sockspec) : NULL;
	if (pthread_create(&t, NULL, signals_thread, NULL) != 0)
		return -1;
	pthread_detach(t);
	return 0;
}
