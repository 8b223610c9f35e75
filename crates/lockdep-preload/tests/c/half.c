/* Half of an inversion per process: `half ab` takes a then b, `half ba` b then a. Neither
 * process alone has a cycle; their recordings merged by `lockdep check` do. */
#include <pthread.h>
#include <string.h>

pthread_mutex_t inode_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t journal_lock = PTHREAD_MUTEX_INITIALIZER;

int main(int argc, char **argv)
{
	int ab = argc > 1 && strcmp(argv[1], "ab") == 0;
	pthread_mutex_t *first = ab ? &inode_lock : &journal_lock;
	pthread_mutex_t *second = ab ? &journal_lock : &inode_lock;
	pthread_mutex_lock(first);
	pthread_mutex_lock(second);
	pthread_mutex_unlock(second);
	pthread_mutex_unlock(first);
	return 0;
}
