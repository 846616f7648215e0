/* The demo's program: a static binary, so it runs in a FROM-scratch image. */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
	const char *commit = getenv("COMMIT");
	printf("hello from a FROM-scratch image baked by scratchd (commit %s)\n",
	       commit ? commit : "unknown");
	return 0;
}
