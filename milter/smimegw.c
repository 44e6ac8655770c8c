/*
 * smimegw: the S/MIME gateway milter daemon.
 *
 * Start-up order matters for security: read and check the config, bind the
 * milter socket as the starting user (usually root), write the pid file,
 * then drop to UserID before the first message is read.  Shutdown (SIGTERM)
 * stops accepting connections, lets in-flight messages finish for up to
 * ShutdownTimeout seconds, tempfails whatever is left, and only then exits.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gmime/gmime.h>
#include <hiredis/hiredis.h>
#include <libmilter/mfapi.h>
#include <openssl/crypto.h>

#include "../src/config.h"
#include "../src/log.h"
#include "../src/xmalloc.h"
#include "callbacks.h"
#include "connio.h"
#include "gw.h"
#include "privs.h"
#include "runtime.h"
#include "signals.h"

#define EX_USAGE_  64
#define EX_CONFIG_ 78
#define EX_OSERR_  71

struct gw gw;

static void
usage(void)
{
	fprintf(stderr,
	        "usage: smimegw [-fnV] [-c config] [-p socket]\n"
	        "  -c FILE   configuration file (default %s)\n"
	        "  -f        stay in the foreground and log to stderr\n"
	        "  -n        check the configuration and exit\n"
	        "  -p SPEC   milter socket: unix:/path or inet:PORT@HOST\n"
	        "  -V        print the version and exit\n",
	        SMG_DEFAULT_CONFIG);
	exit(EX_USAGE_);
}

static void
print_version(void)
{
	unsigned major, minor, patch;

	smfi_version(&major, &minor, &patch);
	printf("smimegw %s\n", PACKAGE_VERSION);
	printf("  OpenSSL %s\n", OpenSSL_version(OPENSSL_VERSION_STRING));
	printf("  GMime %u.%u.%u\n", gmime_major_version, gmime_minor_version, gmime_micro_version);
	printf("  hiredis %d.%d.%d\n", HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
	printf("  libmilter %u.%u.%u\n", major, minor, patch);
}

/* Detaches from the terminal; the parent exits once the child runs. */
static int
daemonize(void)
{
	pid_t pid;
	int fd;

	if ((pid = fork()) == -1)
		return -1;
	if (pid != 0)
		_exit(0);
	if (setsid() == -1)
		return -1;
	if ((pid = fork()) == -1)
		return -1;
	if (pid != 0)
		_exit(0);
	if (chdir("/") == -1)
		return -1;
	if ((fd = open("/dev/null", O_RDWR)) != -1) {
		(void)dup2(fd, STDIN_FILENO);
		(void)dup2(fd, STDOUT_FILENO);
		(void)dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	return 0;
}

/* Returns the path of a unix socket spec, or NULL for inet sockets. */
static const char *
socket_path(const char *spec)
{
	if (strncmp(spec, "unix:", 5) == 0)
		return spec + 5;
	if (strncmp(spec, "local:", 6) == 0)
		return spec + 6;
	return NULL;
}

/* Waits for in-flight messages after the listener stopped. */
static void
drain(unsigned timeout)
{
	struct timespec tick = {0, 50 * 1000 * 1000};
	unsigned long waited = 0, limit = (unsigned long)timeout * 20;
	long left;

	atomic_store(&gw.stopping, 1);
	while ((left = atomic_load(&gw.inflight)) > 0 && waited < limit) {
		nanosleep(&tick, NULL);
		waited++;
	}
	if (left > 0) {
		log_warnx("%ld message(s) still in flight after %u s: tempfailing them", left,
		          timeout);
		atomic_store(&gw.force_tempfail, 1);
		/* Let each one reach its next callback and answer with a tempfail. */
		for (waited = 0; atomic_load(&gw.inflight) > 0 && waited < 40; waited++)
			nanosleep(&tick, NULL);
	}
}

/* SIGUSR1 (logrotate) asks the audit writer to reopen its file. */
static void
on_usr1(int sig)
{
	(void)sig;
	if (gw.audit != NULL)
		audit_reopen(gw.audit);
}

static void
install_usr1(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	if (sigaction(SIGUSR1, &sa, NULL) == -1)
		log_warn("sigaction(SIGUSR1)");
}

int
main(int argc, char **argv)
{
	const char *cfgpath = SMG_DEFAULT_CONFIG, *sockspec = NULL, *path;
	int ch, check_only = 0, foreground = 0, rc = EX_OSERR_;
	struct config *cfg = NULL;
	struct runtime *rt = NULL;
	struct errbuf eb;
	uid_t uid = 0;
	gid_t gid = 0;
	int drop = 0, wrote_pid = 0;

	privs_no_core();
	xmalloc_tune();
	/* hiredis writes with write(2): a Redis that dies mid-write must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	while ((ch = getopt(argc, argv, "c:fnp:Vh")) != -1) {
		switch (ch) {
		case 'c':
			cfgpath = optarg;
			break;
		case 'f':
			foreground = 1;
			break;
		case 'n':
			check_only = 1;
			break;
		case 'p':
			sockspec = optarg;
			break;
		case 'V':
			print_version();
			return 0;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	log_init("smimegw", 1, LOG_MAIL);
	if ((cfg = config_load(cfgpath, &eb)) == NULL) {
		fprintf(stderr, "smimegw: %s\n", eb.msg);
		return EX_CONFIG_;
	}
	if (sockspec != NULL) {
		if (config_parse_socket(sockspec, &eb) == -1) {
			fprintf(stderr, "smimegw: -p %s: %s\n", sockspec, eb.msg);
			rc = EX_USAGE_;
			goto out;
		}
		free(cfg->socket);
		cfg->socket = strdup(sockspec);
	}
	if (*cfg->user != '\0') {
		if (privs_resolve(cfg->user, &uid, &gid, &eb) == -1) {
			fprintf(stderr, "smimegw: %s: %s\n", cfgpath, eb.msg);
			rc = EX_CONFIG_;
			goto out;
		}
		drop = 1;
	}
	/* Keys, trust and policy load before privileges drop, and -n checks them too. */
	if ((rt = runtime_new(cfg, &eb)) == NULL) {
		cfg = NULL; /* freed by runtime_new */
		fprintf(stderr, "smimegw: %s: %s\n", cfgpath, eb.msg);
		rc = EX_CONFIG_;
		goto out;
	}
	if (check_only) {
		printf("smimegw: %s: configuration OK\n", cfgpath);
		rc = 0;
		goto out;
	}

	log_init("smimegw", foreground, cfg->syslog_facility);
	log_setlevel(cfg->log_level);
	runtime_install(runtime_ref(rt));
	if (rt->ks != NULL)
		log_info("key store %s: %zu user(s), %zu identities", cfg->keystore,
		         keystore_nusers(rt->ks), keystore_nidentities(rt->ks));

	/*
	 * libmilter drops the connection on a packet over 64 KB by default, but
	 * Postfix passes header fields up to header_size_limit (100 KB).
	 */
	(void)smfi_setmaxdatasize(1024 * 1024);
	if (smfi_setconn(cfg->socket) != MI_SUCCESS ||
	    smfi_settimeout((int)cfg->milter_timeout) != MI_SUCCESS ||
	    smfi_register(callbacks_desc) != MI_SUCCESS) {
		log_warnx("cannot set up libmilter for %s", cfg->socket);
		goto out;
	}
	if (smfi_opensocket(true) != MI_SUCCESS) {
		log_warn("cannot open milter socket %s", cfg->socket);
		goto out;
	}
	if ((path = socket_path(cfg->socket)) != NULL) {
		if (chmod(path, cfg->socket_mode) == -1)
			log_warn("chmod %s", path);
		if (drop && chown(path, uid, gid) == -1)
			log_warn("chown %s", path);
	}
	if (!foreground && daemonize() == -1) {
		log_warn("cannot become a daemon");
		goto out;
	}
	/* Before the first thread: every thread inherits the mask. */
	signals_block();
	if (*cfg->pidfile != '\0') {
		if (privs_write_pidfile(cfg->pidfile, &eb) == -1) {
			log_warnx("%s", eb.msg);
			goto out;
		}
		wrote_pid = 1;
	}
	if (drop) {
		if (privs_drop(cfg->user, uid, gid, &eb) == -1) {
			log_warnx("cannot drop privileges: %s", eb.msg);
			goto out;
		}
	} else if (geteuid() == 0) {
		log_warnx("running as root: set UserID to an unprivileged user");
	}
	/* The writer thread must start after fork and as the user that owns the log. */
	if ((gw.audit = audit_open(cfg, &eb)) == NULL && eb.msg[0] != '\0') {
		log_warnx("AuditLog %s: %s", cfg->audit_log, eb.msg);
		rc = EX_CONFIG_;
		goto out;
	}
	install_usr1();
	if (signals_start(cfgpath, sockspec) == -1) {
		log_warnx("cannot start the reload thread");
		goto out;
	}
	/* For benchmarks: the same binary without read-ahead (milter/connio.c). */
	if (getenv("SMIMEGW_NO_READAHEAD") != NULL)
		connio_readahead(0);
	connio_timeout((int)cfg->milter_timeout);
	log_notice("smimegw %s starting on %s", PACKAGE_VERSION, cfg->socket);
	if (smfi_main() != MI_SUCCESS)
		log_warnx("milter listener ended with an error");
	log_notice("stopping: %ld message(s) in flight", atomic_load(&gw.inflight));
	drain(cfg->shutdown_timeout);
	runtime_install(NULL);
	audit_close(gw.audit);
	gw.audit = NULL;
	log_notice("stopped after %lu message(s)", atomic_load(&gw.messages));
	rc = 0;
out:
	if (wrote_pid && cfg != NULL && unlink(cfg->pidfile) == -1 && errno != ENOENT)
		log_warn("cannot remove %s", cfg->pidfile);
	/* Threads that outlived the drain may still read the runtime. */
	if (atomic_load(&gw.inflight) == 0) {
		if (rt != NULL)
			runtime_unref(rt);
		else
			config_free(cfg);
	}
	return rc;
}
