/*
 * smgcache-bench: prints certificate-cache lookups per second from the LRU
 * and, given a Redis address, from Redis.  Usage: smgcache-bench [host:port
 * | unix:/path] [millis].  Uses keys under "smgbench:" and deletes them.
 */
#include "autoconf.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "cache/cachebench.h"
#include "src/log.h"

int
main(int argc, char **argv)
{
	unsigned millis = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 1000;

	signal(SIGPIPE, SIG_IGN);
	log_init("smgcache-bench", 1, LOG_MAIL);
	return cachebench_run(stdout, argc > 1 ? argv[1] : NULL, millis) == 0 ? 0 : 1;
}
