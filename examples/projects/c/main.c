/* A C project: main.c reads stdin, stats.c counts, stats.h declares. */
#include <stdio.h>
#include "stats.h"

int main(void) {
    static char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, stdin);
    text[n] = '\0';
    struct counts c = count(text);
    printf("{\"bytes\":%zu,\"words\":%zu,\"lines\":%zu}\n", c.bytes, c.words, c.lines);
    return 0;
}
