/*
 * smimegw-keys: the admin tool for the key store.  Imports PKCS#12 files
 * and PEM certificate/key pairs, lists and removes identities, and checks
 * the store (permissions, key/certificate pairs, chains).  It works on the
 * directory only; the daemon picks changes up when it reloads.
 *
 * Exit codes: 0 success, 1 failure, 64 usage error.
 */
#include "autoconf.h"

#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "../src/cert.h"
#include "../src/config.h"
#include "../src/keystore.h"
#include "../src/log.h"
#include "../src/trust.h"
#include "../src/xmalloc.h"

#define EX_OK_    0
#define EX_FAIL_  1
#define EX_USAGE_ 64

#define PASSWORD_MAX 1024

static const char usage_text[] =
    "usage: smimegw-keys [options] COMMAND [ARGS]\n"
    "\n"
    "Commands:\n"
    "  import USER FILE.p12|FILE.pfx   import every key and certificate of a PKCS#12 file\n"
    "  import USER CERT.pem KEY.pem    import a PEM certificate (+ chain) and its PEM key\n"
    "  list [USER]                     show identities: purpose, dates, state, fingerprint\n"
    "  remove USER FINGERPRINT         delete one identity (a unique prefix of >= 8 hex\n"
    "                                  digits is enough)\n"
    "  check                           validate the whole store; exit 1 on any problem\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE        read KeyStore, TrustAnchors, Intermediates and UserID\n"
    "                           from FILE (default " SMG_DEFAULT_CONFIG ")\n"
    "  -k, --keystore DIR       the key store directory (overrides KeyStore)\n"
    "  -t, --trust FILE|DIR     trust anchors (overrides TrustAnchors)\n"
    "  -i, --intermediates F    intermediate CA certificates (overrides Intermediates)\n"
    "  -p, --password-file F    read the PKCS#12 password from the first line of F\n"
    "                           (else it is asked on the terminal, or read from stdin)\n"
    "  -o, --owner USER         make imported files belong to USER (the daemon's user;\n"
    "                           default: UserID from the config when run as root)\n"
    "  -f, --force              import a certificate that does not name USER\n"
    "  -h, --help               show this help\n"
    "\n"
    "States in 'list': current, superseded (valid, but a newer certificate with the\n"
    "same purpose exists), expired, not-yet-valid.\n"
    "Exit status: 0 success, 1 failure, 64 usage error.\n";

static void
usage(void)
{
	fputs(usage_text, stderr);
	exit(EX_USAGE_);
}

struct opts {
	const char *config;
	const char *keystore;
	const char *trust;
	const char *intermediates;
	const char *password_file;
	const char *owner;
	int force;
	struct config *cfg;
};

/* Reads the password: file, terminal without echo, or stdin. */
static char *
read_password(const struct opts *o, const char *what)
{
	char buf[PASSWORD_MAX];
	struct termios t, saved;
	FILE *f = NULL, *tty = NULL;
	char *pw = NULL;
	size_t len;
	int echo_off = 0;

	if (o->password_file != NULL) {
		if ((f = fopen(o->password_file, "r")) == NULL) {
			fprintf(stderr, "smimegw-keys: %s: %s\n", o->password_file,
			        strerror(errno));
			return NULL;
		}
	} else if (isatty(STDIN_FILENO) && (tty = fopen("/dev/tty", "r+")) != NULL) {
		f = tty;
		fprintf(tty, "Password for %s: ", what);
		fflush(tty);
		if (tcgetattr(fileno(tty), &saved) == 0) {
			t = saved;
			t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
			echo_off = tcsetattr(fileno(tty), TCSANOW, &t) == 0;
		}
	} else
		f = stdin;
	if (fgets(buf, sizeof(buf), f) == NULL)
		buf[0] = '\0';
	if (echo_off) {
		(void)tcsetattr(fileno(tty), TCSANOW, &saved);
		fputc('\n', tty);
	}
	len = strcspn(buf, "\r\n");
	buf[len] = '\0';
	pw = xstrdup(buf);
	OPENSSL_cleanse(buf, sizeof(buf));
	if (f != stdin)
		fclose(f);
	return pw;
}

static int
has_ext(const char *path, const char *ext)
{
	size_t a = strlen(path), b = strlen(ext);

	return a > b && strcasecmp(path + a - b, ext) == 0;
}

static int
cmd_import(struct opts *o, const char *dir, int argc, char **argv)
{
	struct ks_import_opts io;
	struct ks_imported got;
	struct errbuf eb;
	struct passwd *pw;
	enum outcome r;
	char *pass = NULL;
	size_t i;

	if (argc != 2 && argc != 3)
		usage();
	memset(&io, 0, sizeof(io));
	memset(&got, 0, sizeof(got));
	io.force = o->force;
	if (o->owner != NULL) {
		if ((pw = getpwnam(o->owner)) == NULL) {
			fprintf(stderr, "smimegw-keys: --owner %s: no such user\n", o->owner);
			return EX_FAIL_;
		}
		io.set_owner = 1;
		io.owner = pw->pw_uid;
		io.group = pw->pw_gid;
	}
	if (argc == 2) {
		if (has_ext(argv[1], ".pem") || has_ext(argv[1], ".crt")) {
			fprintf(stderr,
			        "smimegw-keys: %s: a PEM certificate needs its key file "
			        "too: import USER CERT.pem KEY.pem\n",
			        argv[1]);
			return EX_USAGE_;
		}
		if ((pass = read_password(o, argv[1])) == NULL)
			return EX_FAIL_;
		r = keystore_import_pkcs12(dir, argv[0], argv[1], pass, &io, &got, &eb);
		OPENSSL_cleanse(pass, strlen(pass));
		free(pass);
	} else
		r = keystore_import_pem(dir, argv[0], argv[1], argv[2], &io, &got, &eb);
	if (r != OUTCOME_OK) {
		fprintf(stderr, "smimegw-keys: import failed: %s\n", eb.msg);
		return EX_FAIL_;
	}
	for (i = 0; i < got.n; i++)
		printf("imported %s %s for %s\n", got.fp[i], cert_purpose_name(got.purposes[i]),
		       argv[0]);
	return EX_OK_;
}

static struct trust *
load_trust(const struct opts *o, int *failed)
{
	const char *anchors = o->trust, *inter = o->intermediates;
	struct errbuf eb;
	struct trust *t;

	*failed = 0;
	if (anchors == NULL && o->cfg != NULL)
		anchors = o->cfg->trust_anchors;
	if (inter == NULL && o->cfg != NULL)
		inter = o->cfg->intermediates;
	if (anchors == NULL || anchors[0] == '\0')
		return NULL;
	if ((t = trust_load(anchors, inter, &eb)) == NULL) {
		fprintf(stderr, "smimegw-keys: trust anchors: %s\n", eb.msg);
		*failed = 1;
	}
	return t;
}

static int
cmd_list(struct opts *o, const char *dir, int argc, char **argv)
{
	struct keystore *ks;
	struct errbuf eb;
	time_t now = time(NULL);
	size_t u, i, n, w = 4;
	char nb[11], na[11];
	int rc = EX_OK_;

	(void)o;
	if (argc > 1)
		usage();
	if ((ks = keystore_load(dir, NULL, &eb)) == NULL) {
		fprintf(stderr, "smimegw-keys: %s\n", eb.msg);
		return EX_FAIL_;
	}
	for (u = 0; u < keystore_nusers(ks); u++)
		if (strlen(keystore_user(ks, u)) > w)
			w = strlen(keystore_user(ks, u));
	if (argc == 1) {
		const struct ks_identity *const *h = keystore_history(ks, argv[0], &n);

		if (h == NULL) {
			fprintf(stderr, "smimegw-keys: %s: not in the key store\n", argv[0]);
			rc = EX_FAIL_;
			goto out;
		}
		w = strlen(argv[0]) > 4 ? strlen(argv[0]) : 4;
	}
	printf("%-*s  %-7s  %-10s  %-10s  %-13s  %s\n", (int)w, "USER", "PURPOSE", "NOT-BEFORE",
	       "NOT-AFTER", "STATE", "SHA256-FINGERPRINT");
	for (u = 0; u < keystore_nusers(ks); u++) {
		const char *user = keystore_user(ks, u);
		const struct ks_identity *const *h;

		if (argc == 1 && strcasecmp(user, argv[0]) != 0)
			continue;
		h = keystore_history(ks, user, &n);
		for (i = 0; i < n; i++) {
			cert_isodate(ks_identity_not_before(h[i]), nb);
			cert_isodate(ks_identity_not_after(h[i]), na);
			printf("%-*s  %-7s  %-10s  %-10s  %-13s  %s\n", (int)w, user,
			       cert_purpose_name(ks_identity_purposes(h[i])), nb, na,
			       keystore_state(ks, h[i], now), ks_identity_fingerprint(h[i]));
		}
	}
out:
	keystore_free(ks);
	return rc;
}

static int
cmd_remove(struct opts *o, const char *dir, int argc, char **argv)
{
	char fp[CERT_FP_HEXLEN + 1];
	struct errbuf eb;

	(void)o;
	if (argc != 2)
		usage();
	if (keystore_remove(dir, argv[0], argv[1], fp, &eb) != OUTCOME_OK) {
		fprintf(stderr, "smimegw-keys: remove failed: %s\n", eb.msg);
		return EX_FAIL_;
	}
	printf("removed %s for %s\n", fp, argv[0]);
	return EX_OK_;
}

static void
print_problem(void *arg, const char *path, const char *problem)
{
	(void)arg;
	printf("%s: %s\n", path, problem);
}

static int
cmd_check(struct opts *o, const char *dir, int argc, char **argv)
{
	struct trust *t;
	size_t n;
	int failed;

	(void)argv;
	if (argc != 0)
		usage();
	t = load_trust(o, &failed);
	if (failed)
		return EX_FAIL_;
	if (t == NULL)
		printf("note: no TrustAnchors configured, chains not checked\n");
	n = keystore_check(dir, t, time(NULL), print_problem, NULL);
	trust_free(t);
	if (n > 0) {
		printf("%zu problem%s found in %s\n", n, n == 1 ? "" : "s", dir);
		return EX_FAIL_;
	}
	printf("%s: no problems found\n", dir);
	return EX_OK_;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"keystore", required_argument, NULL, 'k'},
	    {"trust", required_argument, NULL, 't'},
	    {"intermediates", required_argument, NULL, 'i'},
	    {"password-file", required_argument, NULL, 'p'},
	    {"owner", required_argument, NULL, 'o'},
	    {"force", no_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct opts o;
	struct errbuf eb;
	const char *dir, *cmd;
	int ch, rc;

	memset(&o, 0, sizeof(o));
	log_init("smimegw-keys", 1, LOG_MAIL);
	while ((ch = getopt_long(argc, argv, "c:k:t:i:p:o:fh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o.config = optarg;
			break;
		case 'k':
			o.keystore = optarg;
			break;
		case 't':
			o.trust = optarg;
			break;
		case 'i':
			o.intermediates = optarg;
			break;
		case 'p':
			o.password_file = optarg;
			break;
		case 'o':
			o.owner = optarg;
			break;
		case 'f':
			o.force = 1;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return EX_OK_;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	cmd = argv[0];
	if (strcmp(cmd, "help") == 0) {
		fputs(usage_text, stdout);
		return EX_OK_;
	}
	if (strcmp(cmd, "import") != 0 && strcmp(cmd, "list") != 0 && strcmp(cmd, "remove") != 0 &&
	    strcmp(cmd, "check") != 0) {
		fprintf(stderr, "smimegw-keys: unknown command '%s'\n", cmd);
		usage();
	}
	if (o.keystore == NULL || o.config != NULL) {
		const char *path = o.config != NULL ? o.config : SMG_DEFAULT_CONFIG;

		if ((o.cfg = config_load(path, &eb)) == NULL) {
			fprintf(stderr, "smimegw-keys: %s\n", eb.msg);
			return EX_FAIL_;
		}
	}
	dir = o.keystore != NULL ? o.keystore : o.cfg->keystore;
	if (dir == NULL || dir[0] == '\0') {
		fprintf(stderr,
		        "smimegw-keys: no key store: set KeyStore in %s or use "
		        "--keystore DIR\n",
		        o.cfg != NULL ? o.cfg->path : "the config");
		config_free(o.cfg);
		return EX_FAIL_;
	}
	if (o.owner == NULL && o.cfg != NULL && o.cfg->user != NULL && o.cfg->user[0] != '\0' &&
	    geteuid() == 0)
		o.owner = o.cfg->user;
	if (strcmp(cmd, "import") == 0)
		rc = cmd_import(&o, dir, argc - 1, argv + 1);
	else if (strcmp(cmd, "list") == 0)
		rc = cmd_list(&o, dir, argc - 1, argv + 1);
	else if (strcmp(cmd, "remove") == 0)
		rc = cmd_remove(&o, dir, argc - 1, argv + 1);
	else
		rc = cmd_check(&o, dir, argc - 1, argv + 1);
	config_free(o.cfg);
	return rc;
}
