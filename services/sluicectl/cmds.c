/* cmds.c - sluicectl apply and delete, and the helpers the commands share. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ctl.h"
#include "sluice/config.h"
#include "sluice/envelope.h"
#include "sluice/file.h"
#include "sluice/kinds.h"
#include "sluice/resource.h"
#include "sluice/v1/events.pb-c.h"

#define HDR_FILENAME "Sluice-Filename"
#define HDR_DRY_RUN "Sluice-Dry-Run"

/* ---- apply / delete ------------------------------------------------------ */

static bool is_config_file(const char *n)
{
    size_t l = strlen(n);
    return n[0] != '.' && ((l > 5 && strcmp(n + l - 5, ".yaml") == 0) ||
                           (l > 4 && strcmp(n + l - 4, ".yml") == 0) ||
                           (l > 5 && strcmp(n + l - 5, ".json") == 0));
}

int ctl_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Expands -f arguments (files, directories, "-") into a sorted list. */
static int expand_paths(char ***out, size_t *n, char **args, size_t nargs)
{
    *out = NULL;
    *n = 0;
    for (size_t i = 0; i < nargs; i++) {
        struct stat sb;
        if (strcmp(args[i], "-") != 0 && stat(args[i], &sb) != 0) {
            fprintf(stderr, "error: the path \"%s\" does not exist\n", args[i]);
            return -1;
        }
        size_t first = *n;
        if (strcmp(args[i], "-") != 0 && S_ISDIR(sb.st_mode)) {
            DIR *d = opendir(args[i]);
            for (struct dirent *de; d && (de = readdir(d));) {
                if (!is_config_file(de->d_name))
                    continue;
                char **p = realloc(*out, (*n + 1) * sizeof(*p));
                size_t l = strlen(args[i]) + strlen(de->d_name) + 2;
                if (!p)
                    return -1;
                *out = p;
                (*out)[*n] = malloc(l);
                snprintf((*out)[*n], l, "%s/%s", args[i], de->d_name);
                (*n)++;
            }
            if (d)
                closedir(d);
            qsort(*out + first, *n - first, sizeof(char *), ctl_cmp_str);
        } else {
            char **p = realloc(*out, (*n + 1) * sizeof(*p));
            if (!p)
                return -1;
            *out = p;
            (*out)[(*n)++] = strdup(args[i]);
        }
    }
    return 0;
}

static void free_paths(char **p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(p[i]);
    free(p);
}

natsMsg *ctl_api_request(ctl *c, sl_nats *nc, const char *subject, sl_content_type ct, const char *proto,
                         const void *data, size_t len, const char *fname, bool dry_run)
{
    natsMsg *m = NULL, *reply = NULL;
    sl_envelope_opts eo = {NULL, "sluicectl", NULL};
    if (sl_envelope_msg_new(&m, subject, ct, proto, data, len, &eo) != SL_OK) {
        fprintf(stderr, "error: %s\n", sl_error_msg());
        return NULL;
    }
    if (fname)
        natsMsgHeader_Set(m, HDR_FILENAME, fname);
    if (dry_run)
        natsMsgHeader_Set(m, HDR_DRY_RUN, "true");
    natsStatus s = natsConnection_RequestMsg(&reply, sl_nats_conn(nc), m, c->timeout_ms);
    natsMsg_Destroy(m);
    if (s == NATS_NO_RESPONDERS) {
        fprintf(stderr, "error: nothing answers on %s: is %s running?\n", subject,
                strncmp(subject, "sluice.api.secret.", 18) == 0 ? "sluice-secret-watcher" : "sluice-config-watcher");
        return NULL;
    }
    if (s != NATS_OK) {
        fprintf(stderr, "error: %s: %s\n", subject, natsStatus_GetText(s));
        return NULL;
    }
    return reply;
}

/* A result's warnings on stderr, after its line: stdout is flushed first,
 * so where both streams go to one pipe or file each warning is a line of
 * its own after the resource it is about, and a multi-line warning is a
 * "Warning:" line per line. */
static void print_warnings(const Sluice__V1__ResourceResult *r)
{
    fflush(stdout);
    for (size_t j = 0; j < r->n_warnings; j++) {
        const char *p = r->warnings[j];
        while (*p) {
            size_t len = strcspn(p, "\n");
            while (len && (p[len - 1] == '\r' || p[len - 1] == ' '))
                len--;
            if (len)
                fprintf(stderr, "Warning: %.*s\n", (int)len, p);
            p += strcspn(p, "\n");
            if (*p)
                p++;
        }
    }
    fflush(stderr);
}

int ctl_print_results(Sluice__V1__ResourceResult **rs, size_t n, bool dry_run, bool deleting)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        const Sluice__V1__ResourceResult *r = rs[i];
        char kref[128];
        const Sluice__V1__ObjectRef *o = r->resource;
        ctl_kind_ref(kref, sizeof(kref), o && o->kind[0] ? o->kind : "unknown");
        const char *ns = o ? o->namespace_ : "", *name = o && o->name[0] ? o->name : "(unnamed)";
        if (r->state == SLUICE__V1__STATUS__STATE__Rejected) {
            bad++;
            fflush(stdout);
            fprintf(stderr, "error: %s/%s/%s %s:\n", kref, ns, name,
                    deleting ? "could not be deleted" : "is invalid");
            for (size_t j = 0; j < r->n_errors; j++)
                fprintf(stderr, "  %s\n", r->errors[j]);
            print_warnings(r);
            continue;
        }
        const char *verb = deleting       ? "deleted"
                           : r->unchanged ? "unchanged"
                           : r->created   ? "created"
                                          : "configured";
        printf("%s/%s/%s %s%s\n", kref, ns, name, verb, dry_run ? " (server dry run)" : "");
        print_warnings(r);
    }
    fflush(stdout);
    return bad;
}

int ctl_cmd_apply(ctl *c, int argc, char **argv)
{
    char **files = NULL, **paths = NULL;
    size_t nfiles = 0, npaths = 0;
    bool dry_run = false;
    int code = 1;
    sl_nats *nc = NULL;

    files = calloc((size_t)argc, sizeof(char *));
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("Usage: sluicectl apply -f FILE|DIR|- [-f ...] [--dry-run]\n"
                   "Creates or updates the resources in YAML/JSON files through the apply API\n"
                   "(sluice.api.apply). A directory applies every *.yaml, *.yml, *.json in it.\n");
            free(files);
            return 0;
        }
        if (ctl_opt(argc, argv, &i, "-f", "--filename", &v)) {
            if (!v) {
                free(files);
                return ctl_usage_error("apply", "flag needs an argument: -f");
            }
            files[nfiles++] = (char *)v;
        } else if (strcmp(argv[i], "--dry-run") == 0 || strcmp(argv[i], "--dry-run=server") == 0) {
            dry_run = true;
        } else {
            free(files);
            return ctl_usage_error("apply", "unknown argument \"%s\"", argv[i]);
        }
    }
    if (nfiles == 0) {
        free(files);
        return ctl_usage_error("apply", "must specify -f");
    }
    if (expand_paths(&paths, &npaths, files, nfiles) != 0)
        goto out;
    if (!(nc = ctl_connect(c)))
        goto out;
    code = 0;
    for (size_t i = 0; i < npaths; i++) {
        size_t len;
        char *text;
        if (sl_file_read(&text, &len, paths[i]) != SL_OK) {
            fprintf(stderr, "error: %s\n", sl_error_msg());
            code = 1;
            continue;
        }
        size_t pl = strlen(paths[i]);
        sl_content_type ct = pl > 5 && strcmp(paths[i] + pl - 5, ".json") == 0 ? SL_CT_JSON
                                                                                : SL_CT_YAML;
        const char *fname = strcmp(paths[i], "-") == 0 ? "<stdin>" : paths[i];
        /* Secrets go to the secret-watcher, never through the config API;
         * first, so that what refers to them finds them. */
        ctl_split sp;
        if (ctl_split_secrets(&sp, text, len, fname) != SL_OK) {
            fprintf(stderr, "error: %s: out of memory\n", fname);
            code = 1;
            ctl_wipe_free(text, len);
            continue;
        }
        if (sp.secrets && ctl_apply_secret_text(c, nc, sp.secrets, sp.len, ct, fname, dry_run) != 0)
            code = 1;
        natsMsg *reply = NULL;
        if (!sp.secrets || sp.config)
            reply = ctl_api_request(c, nc, "sluice.api.apply", ct, NULL, sp.config ? sp.config : text, len, fname,
                                    dry_run);
        bool sent = !sp.secrets || sp.config;
        ctl_split_deinit(&sp);
        ctl_wipe_free(text, len);
        if (!sent)
            continue;
        if (!reply) {
            code = 1;
            break;
        }
        if (ctl_apply_reply(reply, fname, dry_run) != 0)
            code = 1;
    }
out:
    free_paths(paths, npaths);
    free(files);
    ctl_close(nc);
    return code;
}

/* A reply's request-level error and its results: 0, or 1. */
static int print_response(const char *error, Sluice__V1__ResourceResult **rs, size_t n, bool dry_run,
                          bool deleting)
{
    int code = 0;
    if (error[0]) {
        fprintf(stderr, "error: %s\n", error);
        code = 1;
    }
    if (ctl_print_results(rs, n, dry_run, deleting))
        code = 1;
    return code;
}

int ctl_apply_reply(natsMsg *reply, const char *fname, bool dry_run)
{
    Sluice__V1__ApplyResponse *resp = ctl_unpack(&sluice__v1__apply_response__descriptor, natsMsg_GetData(reply),
                                                 (size_t)natsMsg_GetDataLength(reply));
    natsMsg_Destroy(reply);
    if (!resp) {
        fprintf(stderr, "error: %s: the reply is not an ApplyResponse\n", fname);
        return 1;
    }
    int code = print_response(resp->error, resp->results, resp->n_results, dry_run, false);
    sluice__v1__apply_response__free_unpacked(resp, NULL);
    return code;
}

int ctl_delete_reply(natsMsg *reply, bool dry_run)
{
    Sluice__V1__DeleteResponse *resp = ctl_unpack(
        &sluice__v1__delete_response__descriptor, natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply));
    if (!resp) {
        fprintf(stderr, "error: the reply is not a DeleteResponse\n");
        return 1;
    }
    int code = print_response(resp->error, resp->results, resp->n_results, dry_run, true);
    sluice__v1__delete_response__free_unpacked(resp, NULL);
    return code;
}

natsMsg *ctl_delete_request(ctl *c, sl_nats *nc, const char *subject, Sluice__V1__ObjectRef **refs, size_t n,
                           bool dry_run)
{
    Sluice__V1__DeleteRequest req = SLUICE__V1__DELETE_REQUEST__INIT;
    req.resources = refs;
    req.n_resources = n;
    req.dry_run = dry_run;
    req.source = "sluicectl";
    size_t len = sluice__v1__delete_request__get_packed_size(&req);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        fprintf(stderr, "error: out of memory\n");
        return NULL;
    }
    sluice__v1__delete_request__pack(&req, buf);
    natsMsg *reply = ctl_api_request(c, nc, subject, SL_CT_PROTOBUF, sluice__v1__delete_request__descriptor.name, buf,
                                     len, NULL, dry_run);
    free(buf);
    return reply;
}

int ctl_cmd_delete(ctl *c, int argc, char **argv)
{
    const char *file = NULL, *ns = NULL, *pos[2] = {NULL, NULL};
    int npos = 0, code = 1;
    bool dry_run = false;
    sl_nats *nc = NULL;
    natsMsg *reply = NULL;

    for (int i = 1; i < argc; i++) {
        const char *v;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("Usage: sluicectl delete KIND NAME [-n NAMESPACE] [--dry-run]\n"
                   "       sluicectl delete -f FILE [--dry-run]\n");
            return 0;
        }
        if (ctl_opt(argc, argv, &i, "-f", "--filename", &v)) {
            if (!v)
                return ctl_usage_error("delete", "flag needs an argument: -f");
            file = v;
        } else if (ctl_opt(argc, argv, &i, "-n", "--namespace", &v)) {
            if (!v)
                return ctl_usage_error("delete", "flag needs an argument: -n");
            ns = v;
        } else if (strcmp(argv[i], "--dry-run") == 0) {
            dry_run = true;
        } else if (argv[i][0] == '-') {
            return ctl_usage_error("delete", "unknown flag %s", argv[i]);
        } else if (npos < 2) {
            pos[npos++] = argv[i];
        } else {
            return ctl_usage_error("delete", "too many arguments");
        }
    }
    if (!file && npos != 2)
        return ctl_usage_error("delete", "give KIND NAME or -f FILE");
    const sl_kind *k = NULL;
    if (!file && !(k = sl_kind_lookup(pos[0]))) {
        fprintf(stderr, "error: the server doesn't have a resource type \"%s\"\n", pos[0]);
        return 1;
    }
    if (!(nc = ctl_connect(c)))
        return 1;
    if (file) {
        size_t len;
        char *text;
        if (sl_file_read(&text, &len, file) != SL_OK) {
            fprintf(stderr, "error: %s\n", sl_error_msg());
            goto out;
        }
        size_t fl = strlen(file);
        ctl_split sp;
        int secrets_code = 0;
        if (ctl_split_secrets(&sp, text, len, file) != SL_OK) {
            ctl_wipe_free(text, len);
            goto out;
        }
        /* the Secret documents: by name to the secret-watcher */
        if (sp.secrets)
            secrets_code = ctl_delete_secret_docs(c, nc, sp.secrets, sp.len, file, dry_run);
        if (!sp.secrets || sp.config)
            reply = ctl_api_request(c, nc, "sluice.api.delete",
                                    fl > 5 && strcmp(file + fl - 5, ".json") == 0 ? SL_CT_JSON : SL_CT_YAML, NULL,
                                    sp.config ? sp.config : text, len, file, dry_run);
        else
            code = secrets_code;
        ctl_split_deinit(&sp);
        ctl_wipe_free(text, len);
        if (reply)
            code = ctl_delete_reply(reply, dry_run) || secrets_code;
    } else {
        Sluice__V1__ObjectRef o = SLUICE__V1__OBJECT_REF__INIT, *ro[] = {&o};
        o.kind = (char *)k->kind;
        o.namespace_ = (char *)(ns ? ns : SL_RESOURCE_DEFAULT_NAMESPACE);
        o.name = (char *)pos[1];
        /* secrets: the secret-watcher's API (cmds_secret.c) */
        reply = ctl_delete_request(c, nc, strcmp(k->bucket, SL_BUCKET_SECRETS) == 0 ? CTL_SECRET_DELETE
                                                                                    : "sluice.api.delete",
                                   ro, 1, dry_run);
        if (reply)
            code = ctl_delete_reply(reply, dry_run);
    }
out:
    natsMsg_Destroy(reply);
    ctl_close(nc);
    return code;
}
