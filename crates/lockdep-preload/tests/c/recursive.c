/* A recursive mutex re-locked by its owner is legal; lock orders are still checked, so taking
 * `other` under it and then it under `other` is circular. */
#include <pthread.h>

static pthread_mutex_t other = PTHREAD_MUTEX_INITIALIZER;

int main(void)
{
	pthread_mutexattr_t attr;
	pthread_mutex_t r;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&r, &attr);

	pthread_mutex_lock(&r);
	pthread_mutex_lock(&r);
	if (pthread_mutex_trylock(&r) != 0)
		return 1;
	pthread_mutex_lock(&other);
	pthread_mutex_unlock(&other);
	pthread_mutex_unlock(&r);
	pthread_mutex_unlock(&r);
	pthread_mutex_unlock(&r);

	pthread_mutex_lock(&other);
	pthread_mutex_lock(&r);
	pthread_mutex_unlock(&r);
	pthread_mutex_unlock(&other);
	return 0;
}
