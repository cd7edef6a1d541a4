// The seed's first function: greets, then echoes whatever it gets on stdin.
#include <stdio.h>

int main(void) {
    printf("Hello from FAAS!\n");
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) {
        fwrite(buf, 1, n, stdout);
    }
    return 0;
}
