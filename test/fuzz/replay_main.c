/* replay_main.c - runs a fuzz target over stored inputs without libFuzzer.
 *
 *   fuzz_replay_<target> PATH...
 *
 * gcc has no libFuzzer, so the sanitizer pass (`make asan`) links each
 * test/fuzz/fuzz_<target>.c with this main instead: every file named, and
 * every regular file in every directory named (in name order), goes once
 * through LLVMFuzzerTestOneInput, in this one process. A crash, sanitizer
 * report, leak at exit or abort() fails the run, as it would fail the
 * fuzzer. A directory that does not exist is skipped (the crashers/
 * directory of a target that never had one); no input at all is an error.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Feeds the file at path to the target; 0, or -1 when it cannot be read. */
static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long len;
    int rc = -1;

    if (!f)
        goto out;
    if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto out;
    /* One byte more so that an empty file is not a NULL pointer. */
    if (!(buf = malloc((size_t)len + 1)) || fread(buf, 1, (size_t)len, f) != (size_t)len)
        goto out;
    fprintf(stderr, "replay: %s (%ld bytes)\n", path, len);
    LLVMFuzzerTestOneInput(buf, (size_t)len);
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "replay: cannot read %s: %s\n", path, strerror(errno));
    free(buf);
    if (f)
        fclose(f);
    return rc;
}

static int regular(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

int main(int argc, char **argv)
{
    size_t n = 0;
    int failed = 0;

    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) != 0) {
            fprintf(stderr, "replay: %s does not exist, skipped\n", argv[i]);
            continue;
        }
        if (!S_ISDIR(sb.st_mode)) {
            failed |= run_file(argv[i]) != 0;
            n++;
            continue;
        }
        struct dirent **ents = NULL;
        int k = scandir(argv[i], &ents, regular, alphasort);
        if (k < 0) {
            fprintf(stderr, "replay: cannot list %s: %s\n", argv[i], strerror(errno));
            failed = 1;
            continue;
        }
        for (int j = 0; j < k; j++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], ents[j]->d_name);
            if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
                failed |= run_file(path) != 0;
                n++;
            }
            free(ents[j]);
        }
        free(ents);
    }
    fprintf(stderr, "replay: %zu inputs\n", n);
    if (!n) {
        fprintf(stderr, "replay: no input found\n");
        return 1;
    }
    return failed;
}
