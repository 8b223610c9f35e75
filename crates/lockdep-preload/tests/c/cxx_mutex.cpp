// C++ std::mutex (constant-initialised: no pthread_mutex_init call), an inversion.
#include <mutex>
#include <thread>

std::mutex accounts;
std::mutex audit;

int main()
{
	std::thread([] {
		std::lock_guard<std::mutex> a(accounts);
		std::lock_guard<std::mutex> b(audit);
	}).join();
	std::thread([] {
		std::lock_guard<std::mutex> b(audit);
		std::lock_guard<std::mutex> a(accounts);
	}).join();
	return 0;
}
