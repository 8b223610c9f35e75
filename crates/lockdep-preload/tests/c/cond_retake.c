/* A condvar wait releases its mutex and retakes it before returning. Waiting while holding
 * `stats` retakes `queue` under `stats`, against the order queue -> stats: circular. */
#include <pthread.h>
#include <time.h>

static pthread_mutex_t queue = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t stats = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t nonempty = PTHREAD_COND_INITIALIZER;

int main(void)
{
	struct timespec deadline;
	pthread_mutex_lock(&queue);
	pthread_mutex_lock(&stats);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_nsec += 10 * 1000 * 1000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&nonempty, &queue, &deadline);
	pthread_mutex_unlock(&stats);
	pthread_mutex_unlock(&queue);
	return 0;
}
