/* AA on a normal mutex: the self-deadlock is reported before the real call hangs (run with
 * LOCKDEP=panic, the process then aborts instead of hanging). */
#include <pthread.h>

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;

int main(void)
{
	pthread_mutex_lock(&m);
	pthread_mutex_lock(&m);
	return 3; /* never reached */
}
