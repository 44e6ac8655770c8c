/*
 * signals: SIGHUP reloads the configuration, key store, trust anchors,
 * policy tables and certificate directories as one new runtime; in-flight
 * messages finish on the snapshot they started with.  A new config with an
 * error is refused with a log line and the old one keeps running.
 * SIGTERM and SIGINT stay with libmilter (stop accepting, then main()
 * drains); SIGUSR1 reopens the audit log.
 */
#ifndef SMG_SIGNALS_H
#define SMG_SIGNALS_H

/*
 * Blocks SIGHUP, SIGTERM and SIGINT in the calling thread; call it in
 * main() before any thread is created, so that every thread inherits the
 * mask and no thread dies of a default signal action.
 */
void signals_block(void);
/*
 * Starts the reload thread.  cfgpath is re-read on SIGHUP; sockspec, if not
 * NULL, overrides Socket as -p did.  -1 if the thread cannot start.
 */
int signals_start(const char *cfgpath, const char *sockspec);

#endif
