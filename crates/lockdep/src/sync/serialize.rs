//! The `serde` feature: the instrumented locks serialise as their data, as parking_lot's do.
//!
//! Serialising takes the lock (validated like any acquisition). A deserialised lock has no
//! construction site of its own in the program, so it is classed like a `Default`-made one:
//! this module's site refined at its first acquisition (`docs/SEMANTICS.md` §10).

use std::panic::Location;

use lock_api::{GetThreadId, RawMutex, RawRwLock};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::lock::map::LockMap;
use crate::sync::mutex::GenericMutex;
use crate::sync::remutex::GenericReentrantMutex;
use crate::sync::rwlock::GenericRwLock;

#[track_caller]
fn deserialised_map() -> LockMap {
    crate::sync::primitive_map(LockMap::from_default_site(Location::caller()))
}

impl<R: RawMutex, T: ?Sized + Serialize> Serialize for GenericMutex<R, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.lock().serialize(serializer)
    }
}

impl<'de, R: RawMutex, T: Deserialize<'de>> Deserialize<'de> for GenericMutex<R, T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(|v| GenericMutex::with_map(v, deserialised_map()))
    }
}

impl<R: RawRwLock, T: ?Sized + Serialize> Serialize for GenericRwLock<R, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.read().serialize(serializer)
    }
}

impl<'de, R: RawRwLock, T: Deserialize<'de>> Deserialize<'de> for GenericRwLock<R, T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(|v| GenericRwLock::with_map(v, deserialised_map()))
    }
}

impl<R: RawMutex, G: GetThreadId, T: ?Sized + Serialize> Serialize
    for GenericReentrantMutex<R, G, T>
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.lock().serialize(serializer)
    }
}

impl<'de, R: RawMutex, G: GetThreadId, T: Deserialize<'de>> Deserialize<'de>
    for GenericReentrantMutex<R, G, T>
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(|v| GenericReentrantMutex::with_map(v, deserialised_map()))
    }
}
