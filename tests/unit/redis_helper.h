/*
 * redis_helper: starts a private redis-server for a test on a free loopback
 * port, in a temporary directory, with persistence off (--save ''
 * --appendonly no), and kills it at the end.  Tests skip (with a message)
 * only when no redis-server binary is found ($REDIS_SERVER, then PATH).
 */
#ifndef SMG_TESTS_REDIS_HELPER_H
#define SMG_TESTS_REDIS_HELPER_H

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

struct redis_srv {
	pid_t pid;
	int port;
	char dir[64];
	char bin[256];
	char spec[64];
};

/* Finds redis-server; 0 if absent. */
static int
redis_find(struct redis_srv *s)
{
	const char *env = getenv("REDIS_SERVER");
	const char *cands[] = {"/usr/bin/redis-server", "/usr/local/bin/redis-server",
	                       "/usr/sbin/redis-server"};
	size_t i;

	if (env != NULL && env[0] != '\0' && access(env, X_OK) == 0) {
		snprintf(s->bin, sizeof(s->bin), "%s", env);
		return 1;
	}
	for (i = 0; i < sizeof(cands) / sizeof(cands[0]); i++) {
		if (access(cands[i], X_OK) == 0) {
			snprintf(s->bin, sizeof(s->bin), "%s", cands[i]);
			return 1;
		}
	}
	return 0;
}

/* A loopback port nobody listens on right now. */
static int
redis_free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd, port = -1;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/* A blocking hiredis connection to the test server (for checks). */
static redisContext *
redis_admin(const struct redis_srv *s)
{
	struct timeval tv = {1, 0};
	redisContext *c = redisConnectWithTimeout("127.0.0.1", s->port, tv);

	if (c != NULL && c->err == 0)
		redisSetTimeout(c, tv);
	return c;
}

/* Starts (or restarts, on the same port and dir) the server; 0 on success. */
static int
redis_start(struct redis_srv *s)
{
	char portstr[16], logf[128];
	redisContext *c;
	redisReply *r;
	int i, fd;

	if (s->dir[0] == '\0') {
		snprintf(s->dir, sizeof(s->dir), "/tmp/smgredisXXXXXX");
		if (mkdtemp(s->dir) == NULL)
			return -1;
	}
	if (s->port <= 0 && (s->port = redis_free_port()) <= 0)
		return -1;
	snprintf(s->spec, sizeof(s->spec), "127.0.0.1:%d", s->port);
	snprintf(portstr, sizeof(portstr), "%d", s->port);
	snprintf(logf, sizeof(logf), "%s/redis.log", s->dir);
	if ((s->pid = fork()) < 0)
		return -1;
	if (s->pid == 0) {
		if ((fd = open(logf, O_WRONLY | O_CREAT | O_APPEND, 0600)) >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(s->bin, s->bin, "--port", portstr, "--bind", "127.0.0.1", "--save", "",
		      "--appendonly", "no", "--dir", s->dir, "--daemonize", "no", (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 200; i++) {
		struct timespec ts = {0, 10 * 1000 * 1000};

		if ((c = redis_admin(s)) != NULL && c->err == 0) {
			r = redisCommand(c, "PING");
			if (r != NULL && r->type == REDIS_REPLY_STATUS) {
				freeReplyObject(r);
				redisFree(c);
				return 0;
			}
			if (r != NULL)
				freeReplyObject(r);
		}
		if (c != NULL)
			redisFree(c);
		nanosleep(&ts, NULL);
	}
	return -1;
}

/* Kills the server (SIGKILL) and waits for it. */
static void
redis_kill(struct redis_srv *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGCONT);
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
		s->pid = 0;
	}
}

/* Kills the server and removes its directory. */
static void
redis_stop(struct redis_srv *s)
{
	char cmd[128];

	redis_kill(s);
	if (s->dir[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", s->dir);
		s->dir[0] = '\0';
	}
}

/* The "calls=N" of cmdstat_<cmd> in INFO commandstats, 0 if absent. */
static long
redis_calls(const struct redis_srv *s, const char *cmd)
{
	redisContext *c = redis_admin(s);
	redisReply *r;
	char needle[64];
	const char *p;
	long n = 0;

	if (c == NULL)
		return -1;
	r = redisCommand(c, "INFO commandstats");
	snprintf(needle, sizeof(needle), "cmdstat_%s:calls=", cmd);
	if (r != NULL && r->type == REDIS_REPLY_STRING && (p = strstr(r->str, needle)) != NULL)
		n = strtol(p + strlen(needle), NULL, 10);
	if (r != NULL)
		freeReplyObject(r);
	redisFree(c);
	return n;
}

/* Runs a command on an admin connection, ignoring the reply. */
static void
redis_do(const struct redis_srv *s, const char *cmd)
{
	redisContext *c = redis_admin(s);
	redisReply *r;

	if (c == NULL)
		return;
	if ((r = redisCommand(c, cmd)) != NULL)
		freeReplyObject(r);
	redisFree(c);
}

static double
elapsed_ms(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1000.0 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

#endif
