//! Interrupt-like contexts for userspace: entering and leaving them, disabling and enabling them.
