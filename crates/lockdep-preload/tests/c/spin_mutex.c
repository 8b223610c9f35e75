/* A sleeping lock (a mutex) taken under a spinlock: an invalid wait context. */
#include <pthread.h>

static pthread_spinlock_t spin;
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;

int main(void)
{
	pthread_spin_init(&spin, PTHREAD_PROCESS_PRIVATE);
	pthread_spin_lock(&spin);
	pthread_mutex_lock(&m);
	pthread_mutex_unlock(&m);
	pthread_spin_unlock(&spin);
	pthread_spin_destroy(&spin);
	return 0;
}
