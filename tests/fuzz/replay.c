/*
 * replay: a main() for the fuzz targets without libFuzzer, so that the
 * ordinary (gcc) build runs every seed and every regression input through
 * each target in `make check` (tests/fuzz/replay.sh).  Usage:
 * fuzz_X_replay FILE|DIR...; exits non-zero if a target aborts (the
 * targets abort on a violated invariant).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_msg.h"

/* Targets without their own initialisation leave this NULL. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int
run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	size_t n = 0, cap = 0, k;

	if (f == NULL) {
		perror(path);
		return -1;
	}
	do {
		if (n == cap) {
			cap = cap ? cap * 2 : 65536;
			if ((buf = realloc(buf, cap)) == NULL)
				abort();
		}
		k = fread(buf + n, 1, cap - n, f);
		n += k;
	} while (k > 0);
	fclose(f);
	fprintf(stderr, "replay %s (%zu bytes)\n", path, n);
	(void)LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	return 0;
}

static int
run_path(const char *path)
{
	struct stat st;
	struct dirent **ents;
	int i, n, rc = 0;
	char p[4096];

	if (stat(path, &st) != 0) {
		perror(path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return run_file(path);
	if ((n = scandir(path, &ents, NULL, alphasort)) < 0) {
		perror(path);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (ents[i]->d_name[0] != '.' && strstr(ents[i]->d_name, ".md") == NULL) {
			snprintf(p, sizeof(p), "%s/%s", path, ents[i]->d_name);
			if (run_path(p) != 0)
				rc = -1;
		}
		free(ents[i]);
	}
	free(ents);
	return rc;
}

int
main(int argc, char **argv)
{
	int i, rc = 0;

	if (LLVMFuzzerInitialize != NULL)
		LLVMFuzzerInitialize(&argc, &argv);
	for (i = 1; i < argc; i++)
		if (run_path(argv[i]) != 0)
			rc = 1;
	return rc;
}
