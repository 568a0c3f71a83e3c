/* nnp: the nonewprivs image's program, setuid root. It prints the
 * effective uid: 0 when the setuid bit worked, the caller's when
 * no_new_privs kept it from working. */
#include <stdio.h>
#include <unistd.h>

int main(void) {
	printf("Effective uid: %d\n", (int)geteuid());
	return 0;
}
