// Outbound HTTP from a C function: copy the faas_fetch block into yours.
//
// The function may call only the hosts it was deployed with:
//   curl -X POST 'http://127.0.0.1:8080/deploy?name=fetch&lang=c&allow=api.example.com' --data-binary @examples/fetch.c
//   curl -X POST 'http://127.0.0.1:8080/invoke?fn=fetch' --data-binary 'https://api.example.com/status'
//
// This example's input: a first line `URL` (GET) or `METHOD URL`, then the
// request body. It prints the status line, then the response body; a
// refused or failed request prints `FAILED <kind>: <why>` and the call goes
// on.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* faas-fetch: begin ------------------------------------------------------
 * Outbound HTTP through the platform's client (no sockets: the request is
 * written to, and the answer read from, the file /run/faas/fetch, which
 * exists only when the function was deployed with allow=HOST).
 *
 *   struct faas_response r;
 *   int rc = faas_fetch("POST", "https://api.example.com/items",
 *                       "Content-Type: application/json\n",   // or NULL
 *                       body, body_len, &r);
 *   if (rc == 0) { r.status, r.body (r.body_len bytes, NUL-terminated too),
 *                  faas_header(&r, "content-type") ...; faas_response_free(&r); }
 *   else          { r.error says why: FAAS_DENIED (host not granted,
 *                  private address, too many requests), FAAS_TIMEOUT (the
 *                  call's deadline), FAAS_ERROR (connection, TLS, response
 *                  over the size cap), FAAS_NO_CHANNEL (no grants) }
 */
#include <fcntl.h>
#include <strings.h>
#include <unistd.h>

enum { FAAS_DENIED = -1, FAAS_TIMEOUT = -2, FAAS_ERROR = -3, FAAS_NO_CHANNEL = -4 };

struct faas_response {
    int status;          /* HTTP status */
    const char *url;     /* the final URL (after redirects) */
    const char *headers; /* "name: value\n" lines, names in lowercase as sent */
    const char *body;    /* body_len bytes, followed by a NUL */
    size_t body_len;
    char error[512];     /* why, when faas_fetch did not return 0 */
    char *raw_;          /* the whole answer (freed by faas_response_free) */
};

static int faas_write_all(int fd, const void *data, size_t len) {
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int faas_fetch(const char *method, const char *url, const char *headers,
                      const void *body, size_t body_len, struct faas_response *r) {
    memset(r, 0, sizeof *r);
    int fd = open("/run/faas/fetch", O_RDWR);
    if (fd < 0) {
        snprintf(r->error, sizeof r->error, "no outbound channel: deploy with allow=HOST");
        return FAAS_NO_CHANNEL;
    }
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap + 1);
    int ok = buf != NULL && faas_write_all(fd, method, strlen(method)) == 0 &&
             faas_write_all(fd, " ", 1) == 0 && faas_write_all(fd, url, strlen(url)) == 0 &&
             faas_write_all(fd, "\n", 1) == 0 &&
             (headers == NULL || faas_write_all(fd, headers, strlen(headers)) == 0) &&
             faas_write_all(fd, "\n", 1) == 0 &&
             (body_len == 0 || faas_write_all(fd, body, body_len) == 0);
    for (ssize_t n; ok && (n = read(fd, buf + len, cap - len)) != 0;) {
        if (n < 0) { ok = 0; break; }
        len += (size_t)n;
        if (len == cap) {
            char *bigger = realloc(buf, cap * 2 + 1);
            if (bigger == NULL) { ok = 0; break; }
            buf = bigger;
            cap *= 2;
        }
    }
    close(fd);
    if (!ok) {
        free(buf);
        snprintf(r->error, sizeof r->error, "cannot exchange the request with the platform");
        return FAAS_ERROR;
    }
    buf[len] = '\0';
    r->raw_ = buf;
    /* The head ends at the first empty line; the body follows it. */
    char *end = strstr(buf, "\n\n");
    if (end == NULL) {
        snprintf(r->error, sizeof r->error, "no answer");
        return FAAS_ERROR;
    }
    *end = '\0';
    r->body = end + 2;
    r->body_len = len - (size_t)(end + 2 - buf);
    char *nl = strchr(buf, '\n');
    if (nl != NULL) *nl = '\0';
    r->headers = nl != NULL ? nl + 1 : end;
    char *rest = strchr(buf, ' ');
    rest = rest != NULL ? (*rest = '\0', rest + 1) : end;
    if (strcmp(buf, "ok") != 0) {
        snprintf(r->error, sizeof r->error, "%s", rest);
        return strcmp(buf, "denied") == 0 ? FAAS_DENIED
             : strcmp(buf, "timeout") == 0 ? FAAS_TIMEOUT : FAAS_ERROR;
    }
    r->status = atoi(rest);
    char *space = strchr(rest, ' ');
    r->url = space != NULL ? space + 1 : url;
    return 0;
}

/* The value of header `name` (any case), copied into out; 0 if absent. */
static int faas_header(const struct faas_response *r, const char *name, char *out, size_t size) {
    size_t n = strlen(name);
    for (const char *line = r->headers; line != NULL && *line != '\0';) {
        const char *eol = strchr(line, '\n');
        size_t len = eol != NULL ? (size_t)(eol - line) : strlen(line);
        if (len > n && line[n] == ':' && strncasecmp(line, name, n) == 0) {
            const char *v = line + n + 1;
            while (*v == ' ') v++;
            size_t vlen = (size_t)(line + len - v);
            if (size > 0) {
                if (vlen >= size) vlen = size - 1;
                memcpy(out, v, vlen);
                out[vlen] = '\0';
            }
            return 1;
        }
        line = eol != NULL ? eol + 1 : NULL;
    }
    return 0;
}

static void faas_response_free(struct faas_response *r) {
    free(r->raw_);
    r->raw_ = NULL;
}
/* faas-fetch: end ------------------------------------------------------ */

int main(void) {
    /* The payload: `[METHOD ]URL`, a line break, then the body. */
    static char input[1 << 20];
    size_t len = fread(input, 1, sizeof input - 1, stdin);
    input[len] = '\0';
    char *nl = memchr(input, '\n', len);
    const char *body = nl != NULL ? nl + 1 : input + len;
    size_t body_len = (size_t)(input + len - body);
    if (nl != NULL) *nl = '\0';
    char *url = strchr(input, ' ');
    const char *method = "GET";
    if (url != NULL) { *url++ = '\0'; method = input; } else { url = input; }

    struct faas_response r;
    int rc = faas_fetch(method, url, NULL, body, body_len, &r);
    if (rc != 0) {
        const char *kind = rc == FAAS_DENIED ? "denied" : rc == FAAS_TIMEOUT ? "timeout"
                         : rc == FAAS_NO_CHANNEL ? "no-channel" : "error";
        printf("FAILED %s: %s\n", kind, r.error);
        faas_response_free(&r);
        return 0;
    }
    char type[128] = "";
    faas_header(&r, "content-type", type, sizeof type);
    printf("%d %s\n", r.status, type);
    fwrite(r.body, 1, r.body_len, stdout);
    faas_response_free(&r);
    return 0;
}
