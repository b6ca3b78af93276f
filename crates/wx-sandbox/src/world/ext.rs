//! Per-app state of the endpoint groups: each group keeps one typed value per app here
//! (created on first use), so adding a group never adds fields to `App`.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;

/// A map from a group's state type to its value.
#[derive(Default)]
pub(crate) struct Extensions(HashMap<TypeId, Box<dyn Any + Send>>);

impl Extensions {
    /// The group state of type `T`, created with `T::default()` on first use.
    pub(crate) fn get_mut<T: Default + Send + 'static>(&mut self) -> &mut T {
        self.0
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Box::new(T::default()))
            .downcast_mut::<T>()
            .unwrap_or_else(|| unreachable!("the entry of a TypeId holds that type"))
    }

    /// The group state of type `T`, if it was ever created.
    pub(crate) fn get<T: 'static>(&self) -> Option<&T> {
        self.0.get(&TypeId::of::<T>())?.downcast_ref::<T>()
    }
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Extensions")
            .field("groups", &self.0.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Counter(u32);

    #[test]
    fn state_is_created_once_and_kept() {
        let mut e = Extensions::default();
        assert!(e.get::<Counter>().is_none());
        e.get_mut::<Counter>().0 += 1;
        e.get_mut::<Counter>().0 += 1;
        assert_eq!(e.get::<Counter>().map(|c| c.0), Some(2));
    }
}
