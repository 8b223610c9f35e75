//! The seeds' annotations: allocation and reclaim contexts, the mmu-notifier map,
//! non-blocking sections, might_sleep, priming.
