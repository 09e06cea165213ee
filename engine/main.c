/* mailca command line: placeholder until the CLI lands in this session. */
#include <stdio.h>
int main(void)
{
    puts("mailca");
    return 0;
}
