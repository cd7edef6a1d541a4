// primes: reads {"n": 30} and prints every prime <= n (sieve of Eratosthenes):
//   {"n":30,"count":10,"primes":[2,3,5,7,11,13,17,19,23,29]}
// For n > 100 it prints only the count and the largest prime:
//   {"n":1000000,"count":78498,"largest":999983}
// n must be an integer from 0 to 1000000. On bad input it prints
// {"error":"..."} on stderr and exits 1.
//
// The payload is checked by a small, strict JSON parser (RFC 8259: UTF-8,
// escapes, surrogate pairs, number grammar, nesting depth); keys other than
// "n" are allowed and ignored; for a repeated key the last one wins.
#include <stdio.h>
#include <stdlib.h>

#define MAX_N 1000000UL
#define LIST_MAX 100UL
#define MAX_DEPTH 512
#define KEY_CAP 8

static void fail(const char *msg) {
    // msg never holds a quote or a backslash, so it needs no escaping.
    fprintf(stderr, "{\"error\":\"%s\"}\n", msg);
    exit(1);
}

typedef struct {
    const unsigned char *s;
    size_t len, pos;
    int depth;
    int found_n;    // the top-level object has an "n" member
    size_t n_pos;   // where the (last) value of "n" starts
} Parser;

static int peek(const Parser *p) { return p->pos < p->len ? p->s[p->pos] : -1; }

static void skip_ws(Parser *p) {
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static int literal(Parser *p, const char *word) {
    for (; *word; word++, p->pos++) {
        if (peek(p) != (unsigned char)*word) return 0;
    }
    return 1;
}

static int hex4(Parser *p, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int c = peek(p);
        if (c >= '0' && c <= '9') v = v * 16 + (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v = v * 16 + (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v = v * 16 + (unsigned)(c - 'A' + 10);
        else return 0;
        p->pos++;
    }
    *out = v;
    return 1;
}

// Appends a byte to a bounded key buffer; *n counts every byte.
static void put(unsigned char *out, size_t *n, unsigned char b) {
    if (out && *n < KEY_CAP) out[*n] = b;
    (*n)++;
}

static void put_utf8(unsigned char *out, size_t *n, unsigned cp) {
    if (cp < 0x80) {
        put(out, n, (unsigned char)cp);
    } else if (cp < 0x800) {
        put(out, n, (unsigned char)(0xC0 | (cp >> 6)));
        put(out, n, (unsigned char)(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        put(out, n, (unsigned char)(0xE0 | (cp >> 12)));
        put(out, n, (unsigned char)(0x80 | ((cp >> 6) & 0x3F)));
        put(out, n, (unsigned char)(0x80 | (cp & 0x3F)));
    } else {
        put(out, n, (unsigned char)(0xF0 | (cp >> 18)));
        put(out, n, (unsigned char)(0x80 | ((cp >> 12) & 0x3F)));
        put(out, n, (unsigned char)(0x80 | ((cp >> 6) & 0x3F)));
        put(out, n, (unsigned char)(0x80 | (cp & 0x3F)));
    }
}

// Length of the well-formed UTF-8 sequence at p->pos (lead byte >= 0x80), 0 if none.
static size_t utf8_len(const Parser *p) {
    const unsigned char *s = p->s + p->pos;
    size_t left = p->len - p->pos;
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t n;
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else return 0;
    if (left < n || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < n; i++) {
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    }
    return n;
}

// A string at p->pos. Its decoded bytes go to out (first KEY_CAP kept), their count to *n.
static int parse_string(Parser *p, unsigned char *out, size_t *n) {
    size_t count = 0;
    p->pos++;  // opening quote
    for (;;) {
        int c = peek(p);
        if (c < 0x20) return 0;  // end of input (-1) or a raw control character
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c == '\\') {
            p->pos++;
            int e = peek(p);
            p->pos++;
            switch (e) {
            case '"': put(out, &count, '"'); break;
            case '\\': put(out, &count, '\\'); break;
            case '/': put(out, &count, '/'); break;
            case 'b': put(out, &count, '\b'); break;
            case 'f': put(out, &count, '\f'); break;
            case 'n': put(out, &count, '\n'); break;
            case 'r': put(out, &count, '\r'); break;
            case 't': put(out, &count, '\t'); break;
            case 'u': {
                unsigned cp, lo;
                if (!hex4(p, &cp)) return 0;
                if (cp >= 0xDC00 && cp <= 0xDFFF) return 0;  // lone low surrogate
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (!literal(p, "\\u") || !hex4(p, &lo)) return 0;
                    if (lo < 0xDC00 || lo > 0xDFFF) return 0;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                put_utf8(out, &count, cp);
                break;
            }
            default: return 0;
            }
        } else if (c < 0x80) {
            put(out, &count, (unsigned char)c);
            p->pos++;
        } else {
            size_t k = utf8_len(p);
            if (k == 0) return 0;
            for (size_t i = 0; i < k; i++) put(out, &count, p->s[p->pos + i]);
            p->pos += k;
        }
    }
    if (n) *n = count;
    return 1;
}

// A number at p->pos. Sets *integral (no fraction, no exponent), *negative and
// *value (the integer part, saturated just above MAX_N).
static int parse_number(Parser *p, int *integral, int *negative, unsigned long *value) {
    unsigned long v = 0;
    *negative = 0;
    *integral = 1;
    if (peek(p) == '-') {
        *negative = 1;
        p->pos++;
    }
    int c = peek(p);
    if (c == '0') {
        p->pos++;
    } else if (c >= '1' && c <= '9') {
        while ((c = peek(p)) >= '0' && c <= '9') {
            v = v * 10 + (unsigned long)(c - '0');
            if (v > MAX_N) v = MAX_N + 1;
            p->pos++;
        }
    } else {
        return 0;
    }
    if (peek(p) == '.') {
        *integral = 0;
        p->pos++;
        if (!((c = peek(p)) >= '0' && c <= '9')) return 0;
        while ((c = peek(p)) >= '0' && c <= '9') p->pos++;
    }
    if (peek(p) == 'e' || peek(p) == 'E') {
        *integral = 0;
        p->pos++;
        if (peek(p) == '+' || peek(p) == '-') p->pos++;
        if (!((c = peek(p)) >= '0' && c <= '9')) return 0;
        while ((c = peek(p)) >= '0' && c <= '9') p->pos++;
    }
    *value = v;
    return 1;
}

static int parse_value(Parser *p);

static int parse_object(Parser *p) {
    int top = p->depth == 1;
    p->pos++;  // '{'
    skip_ws(p);
    if (peek(p) == '}') {
        p->pos++;
        return 1;
    }
    for (;;) {
        unsigned char key[KEY_CAP];
        size_t key_len;
        if (peek(p) != '"' || !parse_string(p, key, &key_len)) return 0;
        skip_ws(p);
        if (peek(p) != ':') return 0;
        p->pos++;
        skip_ws(p);
        if (top && key_len == 1 && key[0] == 'n') {
            p->found_n = 1;
            p->n_pos = p->pos;
        }
        if (!parse_value(p)) return 0;
        skip_ws(p);
        if (peek(p) == '}') {
            p->pos++;
            return 1;
        }
        if (peek(p) != ',') return 0;
        p->pos++;
        skip_ws(p);
    }
}

static int parse_array(Parser *p) {
    p->pos++;  // '['
    skip_ws(p);
    if (peek(p) == ']') {
        p->pos++;
        return 1;
    }
    for (;;) {
        if (!parse_value(p)) return 0;
        skip_ws(p);
        if (peek(p) == ']') {
            p->pos++;
            return 1;
        }
        if (peek(p) != ',') return 0;
        p->pos++;
        skip_ws(p);
    }
}

static int parse_value(Parser *p) {
    int c = peek(p), ok, integral, negative;
    unsigned long value;
    switch (c) {
    case '{':
    case '[':
        if (++p->depth > MAX_DEPTH) return 0;
        ok = c == '{' ? parse_object(p) : parse_array(p);
        p->depth--;
        return ok;
    case '"': return parse_string(p, NULL, NULL);
    case 't': return literal(p, "true");
    case 'f': return literal(p, "false");
    case 'n': return literal(p, "null");
    default:
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p, &integral, &negative, &value);
        return 0;
    }
}

static unsigned char *read_stdin(size_t *len) {
    size_t cap = 4096, n = 0, got;
    unsigned char *buf = malloc(cap);
    if (!buf) fail("out of memory");
    while ((got = fread(buf + n, 1, cap - n, stdin)) > 0) {
        n += got;
        if (n == cap) {
            unsigned char *bigger = realloc(buf, cap *= 2);
            if (!bigger) fail("out of memory");
            buf = bigger;
        }
    }
    if (ferror(stdin)) fail("cannot read stdin");
    *len = n;
    return buf;
}

int main(void) {
    Parser p = {0};
    p.s = read_stdin(&p.len);

    skip_ws(&p);
    int is_object = peek(&p) == '{';
    if (!parse_value(&p)) fail("payload is not valid JSON");
    skip_ws(&p);
    if (p.pos != p.len) fail("payload is not valid JSON");
    if (!is_object) fail("payload must be a JSON object");
    if (!p.found_n) fail("missing key n");

    int integral = 0, negative = 0;
    unsigned long n = 0;
    p.pos = p.n_pos;
    int c = peek(&p);
    if (c == '-' || (c >= '0' && c <= '9')) parse_number(&p, &integral, &negative, &n);
    if (!integral || (negative && n != 0) || n > MAX_N) fail("n must be an integer from 0 to 1000000");

    unsigned char *composite = calloc(n + 1, 1);
    if (!composite) fail("out of memory");
    for (unsigned long i = 2; i * i <= n; i++) {
        if (composite[i]) continue;
        for (unsigned long j = i * i; j <= n; j += i) composite[j] = 1;
    }

    unsigned long count = 0, largest = 0;
    for (unsigned long i = 2; i <= n; i++) {
        if (!composite[i]) {
            count++;
            largest = i;
        }
    }

    if (n > LIST_MAX) {
        printf("{\"n\":%lu,\"count\":%lu,\"largest\":%lu}\n", n, count, largest);
    } else {
        printf("{\"n\":%lu,\"count\":%lu,\"primes\":[", n, count);
        const char *sep = "";
        for (unsigned long i = 2; i <= n; i++) {
            if (!composite[i]) {
                printf("%s%lu", sep, i);
                sep = ",";
            }
        }
        printf("]}\n");
    }
    return 0;
}
