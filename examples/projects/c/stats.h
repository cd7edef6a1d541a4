#ifndef STATS_H
#define STATS_H
#include <stddef.h>

struct counts {
    size_t bytes, words, lines;
};

struct counts count(const char *text);
#endif
