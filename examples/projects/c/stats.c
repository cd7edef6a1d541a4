#include <ctype.h>
#include "stats.h"

struct counts count(const char *text) {
    struct counts c = {0, 0, 0};
    int in_word = 0;
    for (const char *p = text; *p; p++) {
        c.bytes++;
        if (*p == '\n')
            c.lines++;
        if (isspace((unsigned char)*p)) {
            in_word = 0;
        } else if (!in_word) {
            in_word = 1;
            c.words++;
        }
    }
    return c;
}
