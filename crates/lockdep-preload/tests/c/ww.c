/* rwlock write, read, write of the first again: recursive locking (glibc returns EDEADLK). */
#include <errno.h>
#include <pthread.h>

static pthread_rwlock_t x = PTHREAD_RWLOCK_INITIALIZER;
static pthread_rwlock_t y = PTHREAD_RWLOCK_INITIALIZER;

int main(void)
{
	pthread_rwlock_wrlock(&x);
	pthread_rwlock_rdlock(&y);
	int rc = pthread_rwlock_wrlock(&x);
	pthread_rwlock_unlock(&y);
	pthread_rwlock_unlock(&x);
	return rc == EDEADLK ? 0 : 1;
}
