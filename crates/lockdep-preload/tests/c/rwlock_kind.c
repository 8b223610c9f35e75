/* A read of `cache` under `table`, and `table` under a read of `cache`. With glibc's default
 * (reader-preferring) rwlock a read is a recursive read, and this is no deadlock; with
 * PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP (compiled with -DWRITER_PREFERRING) a waiting
 * writer blocks the second reader: circular. */
#define _GNU_SOURCE
#include <pthread.h>

static pthread_rwlock_t cache;
static pthread_mutex_t table = PTHREAD_MUTEX_INITIALIZER;

int main(void)
{
	pthread_rwlockattr_t attr;
	pthread_rwlockattr_init(&attr);
#ifdef WRITER_PREFERRING
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
	pthread_rwlock_init(&cache, &attr);

	pthread_rwlock_rdlock(&cache);
	pthread_mutex_lock(&table);
	pthread_mutex_unlock(&table);
	pthread_rwlock_unlock(&cache);

	pthread_mutex_lock(&table);
	pthread_rwlock_rdlock(&cache);
	pthread_rwlock_unlock(&cache);
	pthread_mutex_unlock(&table);

	/* A read under a read of the same lock: fine for the reader-preferring kind only. */
	pthread_rwlock_rdlock(&cache);
	pthread_rwlock_rdlock(&cache);
	pthread_rwlock_unlock(&cache);
	pthread_rwlock_unlock(&cache);
	return 0;
}
