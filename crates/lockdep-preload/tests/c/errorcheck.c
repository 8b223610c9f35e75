/* An error-checking mutex: a re-lock is reported (recursive locking) and fails with EDEADLK; an
 * unlock by a thread that does not hold it is reported (bad unlock balance) and fails with EPERM. */
#include <errno.h>
#include <pthread.h>

static pthread_mutex_t m;
static int unlock_rc;

static void *foreign_unlock(void *arg)
{
	(void)arg;
	unlock_rc = pthread_mutex_unlock(&m);
	return NULL;
}

int main(void)
{
	pthread_mutexattr_t attr;
	pthread_t t;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
	pthread_mutex_init(&m, &attr);

	pthread_mutex_lock(&m);
	int relock_rc = pthread_mutex_lock(&m);
	pthread_create(&t, NULL, foreign_unlock, NULL);
	pthread_join(t, NULL);
	pthread_mutex_unlock(&m);
	return relock_rc == EDEADLK && unlock_rc == EPERM ? 0 : 1;
}
