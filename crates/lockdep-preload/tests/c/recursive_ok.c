#define _GNU_SOURCE
/* A recursive mutex re-locked by its owner, in a consistent order with another lock: no report. */
#include <pthread.h>

static pthread_mutex_t r = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static pthread_mutex_t inner = PTHREAD_MUTEX_INITIALIZER;

static void nested(int depth)
{
	pthread_mutex_lock(&r);
	if (depth > 0)
		nested(depth - 1);
	else {
		pthread_mutex_lock(&inner);
		pthread_mutex_unlock(&inner);
	}
	pthread_mutex_unlock(&r);
}

int main(void)
{
	for (int i = 0; i < 3; i++)
		nested(4);
	return 0;
}
